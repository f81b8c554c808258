package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// InsertMessages implements chat.Store: the whole batch is one transaction
// (group commit), in four round trips however long it is (see
// insertMessages). Another node's batch into the same conversation waits
// for this one's commit, so seq follows commit order across nodes.
func (s *Store) InsertMessages(ctx context.Context, batch []chat.NewMessage) ([]chat.Inserted, error) {
	out := make([]chat.Inserted, len(batch))
	err := s.tx(ctx, func(tx pgx.Tx) error {
		clear(out) // a retry starts over
		return insertMessages(ctx, tx, batch, out)
	})
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	return out, nil
}

// The statements of a send.
const (
	// Senders first, then conversations, each in ascending id order: the
	// order every writer here takes them in, so that two nodes' batches
	// (or a batch and a DeleteUser) never wait on each other in a cycle.
	// KEY SHARE on a sender is what the message's foreign key would take
	// anyway, only earlier; a sender deleted meanwhile is then simply gone.
	sqlLockSenders       = `SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`
	sqlLockConversations = `SELECT id FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`
	sqlMembers           = `
		SELECT p.conversation_id, p.user_id FROM participants p
		WHERE (p.conversation_id, p.user_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))`
	sqlOriginals = `SELECT ` + sqlq.MessageColumns + sqlq.MessageFrom + `
		WHERE (m.sender_id, m.client_id) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))`
	// The insert takes the next seq of its conversation, and only when a
	// row was inserted moves last_seq (and the conversation's activity)
	// on: a concurrent duplicate that ON CONFLICT absorbs takes no
	// number, so seq has no holes. This transaction holds the
	// conversation's row lock (sqlLockConversations) from before its
	// first insert to its commit, which is what makes last_seq + 1 safe
	// and makes ids, taken at the insert, grow with seq.
	sqlInsertMessage = `
		WITH ins AS (
			INSERT INTO messages (conversation_id, seq, sender_id, content, client_id, created_at)
			SELECT $1, c.last_seq + 1, $2, $3, $4, $5 FROM conversations c WHERE c.id = $1
			ON CONFLICT (sender_id, client_id) DO NOTHING
			RETURNING id, seq
		), bump AS (
			UPDATE conversations c SET last_seq = ins.seq, updated_at = $5,
				last_message_id = greatest(coalesce(c.last_message_id, 0), ins.id)
			FROM ins WHERE c.id = $1
		)
		SELECT id, seq FROM ins`
)

type memberKey struct{ conv, user int64 }

type clientKey struct {
	sender   int64
	clientID string
}

// insertMessages stores batch into out, in input order:
//
//  1. lock the senders and conversations, and read who is a participant
//     and which (sender, client_id) pairs already exist — every message
//     is checked before anything is inserted, because a statement that
//     fails would abort the transaction and the whole batch with it;
//  2. insert every message that passed, pipelined;
//  3. only if some insert met a concurrent duplicate (from another node,
//     or earlier in this batch): read the originals.
func insertMessages(ctx context.Context, tx pgx.Tx, batch []chat.NewMessage, out []chat.Inserted) error {
	var convs, senders, memberConvs, memberUsers, origSenders []int64
	var origClientIDs []string
	for _, nm := range batch {
		convs = append(convs, nm.ConversationID)
		senders = append(senders, nm.Sender.ID)
		memberConvs = append(memberConvs, nm.ConversationID)
		memberUsers = append(memberUsers, nm.Sender.ID)
		if nm.ClientID != "" {
			origSenders = append(origSenders, nm.Sender.ID)
			origClientIDs = append(origClientIDs, nm.ClientID)
		}
	}
	slices.Sort(convs)
	slices.Sort(senders)
	convs, senders = slices.Compact(convs), slices.Compact(senders)

	members := make(map[memberKey]bool, len(batch))
	originals := map[clientKey]chat.Message{}
	b := &pgx.Batch{}
	b.Queue(sqlLockSenders, senders)
	b.Queue(sqlLockConversations, convs)
	b.Queue(sqlMembers, memberConvs, memberUsers).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var k memberKey
			if err := rows.Scan(&k.conv, &k.user); err != nil {
				return err
			}
			members[k] = true
		}
		return rows.Err()
	})
	if len(origSenders) > 0 {
		b.Queue(sqlOriginals, origSenders, origClientIDs).Query(func(rows pgx.Rows) error {
			return collectOriginals(rows, originals)
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("check: %w", err)
	}

	b = &pgx.Batch{}
	var absorbed []int // inserts that ON CONFLICT absorbed
	for i := range batch {
		nm := &batch[i]
		if m, ok := originals[clientKey{nm.Sender.ID, nm.ClientID}]; ok && nm.ClientID != "" {
			out[i] = retried(nm, m)
			continue
		}
		if !members[memberKey{nm.ConversationID, nm.Sender.ID}] {
			out[i].Err = chat.ErrNotFound
			continue
		}
		var clientID *string
		if nm.ClientID != "" {
			clientID = &nm.ClientID
		}
		at := ms(nm.At)
		b.Queue(sqlInsertMessage, nm.ConversationID, nm.Sender.ID, nm.Content, clientID, at).Query(func(rows pgx.Rows) error {
			var id, seq int64
			inserted := false
			for rows.Next() {
				if err := rows.Scan(&id, &seq); err != nil {
					return err
				}
				inserted = true
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if !inserted {
				absorbed = append(absorbed, i)
				return nil
			}
			m := chat.Message{
				ID:             id,
				ConversationID: nm.ConversationID,
				Seq:            seq,
				Sender:         nm.Sender,
				Content:        nm.Content,
				CreatedAt:      chat.UnixMilli(at),
			}
			if clientID != nil {
				cid := *clientID
				m.ClientID = &cid
			}
			out[i] = chat.Inserted{Message: m, Created: true}
			return nil
		})
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		if err := readOwn(ctx, tx, out); err != nil {
			return err
		}
	}
	if len(absorbed) == 0 {
		return nil
	}

	origSenders, origClientIDs = origSenders[:0], origClientIDs[:0]
	for _, i := range absorbed {
		origSenders = append(origSenders, batch[i].Sender.ID)
		origClientIDs = append(origClientIDs, batch[i].ClientID)
	}
	rows, err := tx.Query(ctx, sqlOriginals, origSenders, origClientIDs)
	if err != nil {
		return fmt.Errorf("originals: %w", err)
	}
	if err := collectOriginals(rows, originals); err != nil {
		return fmt.Errorf("originals: %w", err)
	}
	for _, i := range absorbed {
		nm := &batch[i]
		if m, ok := originals[clientKey{nm.Sender.ID, nm.ClientID}]; ok {
			out[i] = retried(nm, m)
		} else {
			// The duplicate's transaction rolled back after all; what
			// was asked is gone with it. Not a participant, as far as
			// the sender can tell; a retry will insert it.
			out[i].Err = chat.ErrNotFound
		}
	}
	return nil
}

// readOwn moves each sender's unread position to the newest message they
// stored in the batch: one statement per conversation and sender, all in one
// round trip (sqlq.ReadOwn).
func readOwn(ctx context.Context, tx pgx.Tx, out []chat.Inserted) error {
	type key struct{ conv, sender int64 }
	newest := make(map[key]*chat.Message, 1)
	for i := range out {
		if m := &out[i].Message; out[i].Created {
			k := key{m.ConversationID, m.Sender.ID}
			if n := newest[k]; n == nil || m.Seq > n.Seq {
				newest[k] = m
			}
		}
	}
	if len(newest) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for k, m := range newest {
		b.Queue(sqlq.ReadOwn, k.conv, k.sender, m.Seq)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("read own: %w", err)
	}
	return nil
}

func collectOriginals(rows pgx.Rows, into map[clientKey]chat.Message) error {
	for rows.Next() {
		m, err := sqlq.ScanMessage(rows)
		if err != nil {
			return err
		}
		into[clientKey{m.Sender.ID, *m.ClientID}] = m
	}
	return rows.Err()
}

// retried is the outcome of nm when its (sender, client_id) already names
// m: the original of a retried send, or a conflict when m is in another
// conversation (nothing of which is shown).
func retried(nm *chat.NewMessage, m chat.Message) chat.Inserted {
	if m.ConversationID != nm.ConversationID {
		return chat.Inserted{Err: errClientIDElsewhere}
	}
	return chat.Inserted{Message: m}
}

var errClientIDElsewhere = &chat.Error{Code: chat.CodeConflict,
	Detail: "This client_id was already used for a message in another conversation."}

// LastSeqs implements chat.Store.
func (s *Store) LastSeqs(ctx context.Context, convIDs []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(convIDs))
	rows, err := s.pool.Query(ctx, `SELECT id, last_seq FROM conversations WHERE id = ANY($1)`, convIDs)
	if err != nil {
		return nil, fmt.Errorf("last seqs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, fmt.Errorf("last seqs: %w", err)
		}
		out[id] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("last seqs: %w", err)
	}
	return out, nil
}

// EditMessage implements chat.Store.
func (s *Store) EditMessage(ctx context.Context, id int64, content string, at time.Time) (chat.Message, error) {
	m, err := sqlq.ScanMessage(s.pool.QueryRow(ctx, `
		WITH m AS (
			UPDATE messages SET content = $1, edited_at = $2 WHERE id = $3 AND deleted_at IS NULL
			RETURNING *
		)
		SELECT `+sqlq.MessageColumns+` FROM m JOIN users u ON u.id = m.sender_id`, content, ms(at), id))
	if err != nil {
		return chat.Message{}, fmt.Errorf("edit message: %w", notFound(err))
	}
	return m, nil
}

// DeleteMessage implements chat.Store. The content is erased, not kept.
func (s *Store) DeleteMessage(ctx context.Context, id int64, at time.Time) (chat.Message, bool, error) {
	var m chat.Message
	var changed bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE messages SET content = '', deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL`, ms(at), id)
		if err != nil {
			return err
		}
		changed = tag.RowsAffected() > 0
		m, err = sqlq.ScanMessage(tx.QueryRow(ctx, sqlq.MessageByID, id))
		return notFound(err)
	})
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("delete message: %w", err)
	}
	return m, changed, nil
}

// MarkRead implements chat.Store.
func (s *Store) MarkRead(ctx context.Context, convID, userID, msgID int64) (chat.ReadMark, bool, error) {
	var mark chat.ReadMark
	var moved bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sqlq.MarkRead, msgID, convID, userID)
		if err != nil {
			return err
		}
		moved = tag.RowsAffected() > 0
		var last int64
		if err := tx.QueryRow(ctx, sqlq.ReadMark, convID, userID).Scan(&last, &mark.UnreadCount); err != nil {
			return notFound(err)
		}
		mark.LastReadMessageID = chat.OptID(last)
		return nil
	})
	if err != nil {
		return chat.ReadMark{}, false, fmt.Errorf("mark read: %w", err)
	}
	return mark, moved, nil
}
