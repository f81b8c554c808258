package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// InsertMessages implements chat.Store: the whole batch is one transaction,
// so one fsync covers every message in it (group commit). A message costs
// two statements, a membership lookup and the insert (which takes its seq
// itself); each conversation's activity and last_seq are updated once per
// batch.
func (s *Store) InsertMessages(ctx context.Context, batch []chat.NewMessage) ([]chat.Inserted, error) {
	out := make([]chat.Inserted, len(batch))
	readOwnStmt, err := s.stmt(ctx, s.write, sqlq.ReadOwn)
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	var st insertStmts
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{{&st.member, sqlMember}, {&st.insert, sqlInsertMessage}, {&st.original, sqlOriginal}, {&st.touch, sqlTouchConversation}} {
		var err error
		if *p.dst, err = s.stmt(ctx, s.write, p.query); err != nil {
			return nil, fmt.Errorf("insert messages: %w", err)
		}
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		in := insertStmts{
			member:   tx.StmtContext(ctx, st.member),
			insert:   tx.StmtContext(ctx, st.insert),
			original: tx.StmtContext(ctx, st.original),
			touch:    tx.StmtContext(ctx, st.touch),
		}
		// Per conversation: how many messages this batch stored (the
		// seqs it took past last_seq) and the newest of them.
		type touch struct{ n, id, at int64 }
		var touched map[int64]*touch
		for i := range batch {
			nm := &batch[i]
			t := touched[nm.ConversationID]
			if t == nil {
				t = &touch{}
			}
			r, err := insertMessage(ctx, &in, nm, t.n+1)
			if err != nil && chat.ErrorCode(err) == chat.CodeInternal {
				return err
			}
			r.Err = err
			out[i] = r
			if r.Created {
				if touched == nil {
					touched = make(map[int64]*touch, 1)
				}
				t.n, t.id, t.at = t.n+1, r.Message.ID, ms(nm.At)
				touched[nm.ConversationID] = t
			}
		}
		for conv, t := range touched {
			if _, err := in.touch.ExecContext(ctx, t.at, t.id, t.n, conv); err != nil {
				return err
			}
		}
		return readOwn(ctx, tx.StmtContext(ctx, readOwnStmt), out)
	})
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	return out, nil
}

// The statements of a send, prepared once (Store.stmt).
const (
	// Membership is its own statement (sqlMember), run before the insert.
	// Inside the insert, as an EXISTS on participants with the bound
	// sender, it made SQLite expire the prepared insert at every new
	// binding and compile it again at every step: a third of the CPU of a
	// batch, gone with the split (BenchmarkInsertMessages: about 1.45× the
	// messages per second). Nothing is inserted for a repeated client_id.
	//
	// Its seq is last_seq plus its place (?6) among the messages this
	// batch stored in the conversation; the touch then moves last_seq past
	// them, in the same transaction. Only the one writer (BEGIN IMMEDIATE)
	// ever does this, so this is the same as taking
	// "last_seq = last_seq + 1 RETURNING last_seq" before each insert —
	// without a second statement per message, which cost a sixth of the
	// send rate, and without handing back a number when nothing is
	// inserted.
	sqlInsertMessage = `
		INSERT INTO messages (conversation_id, seq, sender_id, content, client_id, created_at)
		SELECT ?1, c.last_seq + ?6, ?2, ?3, ?4, ?5 FROM conversations c
		WHERE c.id = ?1
		ON CONFLICT (sender_id, client_id) DO NOTHING
		RETURNING id, seq`
	sqlOriginal          = sqlq.MessageByClientID
	sqlMember            = `SELECT 1 FROM participants WHERE conversation_id = ?1 AND user_id = ?2`
	sqlTouchConversation = `
		UPDATE conversations SET updated_at = ?, last_message_id = max(coalesce(last_message_id, 0), ?), last_seq = last_seq + ?
		WHERE id = ?`
)

// readOwn moves each sender's unread position to the newest message they
// stored in the batch, once per conversation and sender (sqlq.ReadOwn).
func readOwn(ctx context.Context, st *sql.Stmt, out []chat.Inserted) error {
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
	for k, m := range newest {
		if _, err := st.ExecContext(ctx, k.conv, k.sender, m.Seq); err != nil {
			return fmt.Errorf("read own: %w", err)
		}
	}
	return nil
}

type insertStmts struct{ member, insert, original, touch *sql.Stmt }

// insertMessage stores nm as the nth message of this batch in its
// conversation.
func insertMessage(ctx context.Context, st *insertStmts, nm *chat.NewMessage, nth int64) (chat.Inserted, error) {
	var clientID any
	if nm.ClientID != "" {
		clientID = nm.ClientID
	}
	at := ms(nm.At)
	var id, seq int64
	var one int
	err := st.member.QueryRowContext(ctx, nm.ConversationID, nm.Sender.ID).Scan(&one)
	if err == nil {
		err = st.insert.QueryRowContext(ctx, nm.ConversationID, nm.Sender.ID, nm.Content, clientID, at, nth).Scan(&id, &seq)
	}
	if errors.Is(err, sql.ErrNoRows) {
		if nm.ClientID == "" {
			return chat.Inserted{}, chat.ErrNotFound // not a participant
		}
		// Either a retried send (return the original) or not a participant.
		return original(ctx, st, nm)
	}
	if err != nil {
		return chat.Inserted{}, err
	}
	m := chat.Message{
		ID:             id,
		ConversationID: nm.ConversationID,
		Seq:            seq,
		Sender:         nm.Sender,
		Content:        nm.Content,
		CreatedAt:      chat.UnixMilli(at),
	}
	if nm.ClientID != "" {
		cid := nm.ClientID
		m.ClientID = &cid
	}
	return chat.Inserted{Message: m, Created: true}, nil
}

// original returns the message that (sender, client_id) of nm already
// names: a retried send. ErrNotFound when there is none (the sender is not a
// participant), CodeConflict when it is in another conversation.
func original(ctx context.Context, st *insertStmts, nm *chat.NewMessage) (chat.Inserted, error) {
	m, err := sqlq.ScanMessage(st.original.QueryRowContext(ctx, nm.Sender.ID, nm.ClientID))
	if err != nil {
		return chat.Inserted{}, notFound(err)
	}
	if m.ConversationID != nm.ConversationID {
		// Not a retry: the sender used this client_id for another
		// conversation. Nothing of that one is shown here.
		return chat.Inserted{}, errClientIDElsewhere
	}
	return chat.Inserted{Message: m}, nil
}

var errClientIDElsewhere = &chat.Error{Code: chat.CodeConflict,
	Detail: "This client_id was already used for a message in another conversation."}

// LastSeqs implements chat.Store.
func (s *Store) LastSeqs(ctx context.Context, convIDs []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(convIDs))
	for len(convIDs) > 0 {
		chunk := convIDs[:min(len(convIDs), 500)]
		convIDs = convIDs[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		q := `SELECT id, last_seq FROM conversations WHERE id IN (?` + strings.Repeat(`, ?`, len(chunk)-1) + `)`
		rows, err := s.read.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("last seqs: %w", err)
		}
		for rows.Next() {
			var id, seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("last seqs: %w", err)
			}
			out[id] = seq
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("last seqs: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("last seqs: %w", err)
		}
	}
	return out, nil
}

// EditMessage implements chat.Store.
func (s *Store) EditMessage(ctx context.Context, id int64, content string, at time.Time) (chat.Message, error) {
	var m chat.Message
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE messages SET content = ?, edited_at = ? WHERE id = ? AND deleted_at IS NULL`, content, ms(at), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return chat.ErrNotFound
		}
		m, err = sqlq.ScanMessage(tx.QueryRowContext(ctx, sqlq.MessageByID, id))
		return err
	})
	if err != nil {
		return chat.Message{}, fmt.Errorf("edit message: %w", err)
	}
	return m, nil
}

// DeleteMessage implements chat.Store. The content is erased, not kept.
func (s *Store) DeleteMessage(ctx context.Context, id int64, at time.Time) (chat.Message, bool, error) {
	var m chat.Message
	changed := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE messages SET content = '', deleted_at = ? WHERE id = ? AND deleted_at IS NULL`, ms(at), id)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		changed = n > 0
		m, err = sqlq.ScanMessage(tx.QueryRowContext(ctx, sqlq.MessageByID, id))
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
	moved := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlq.MarkRead, msgID, convID, userID)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		moved = n > 0
		var last int64
		if err := tx.QueryRowContext(ctx, sqlq.ReadMark, convID, userID).Scan(&last, &mark.UnreadCount); err != nil {
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
