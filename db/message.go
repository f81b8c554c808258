package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// InsertMessages implements chat.Store: the whole batch is one transaction,
// so one fsync covers every message in it (group commit). A message costs
// two statements, a membership lookup (which reads last_seq) and the
// insert; each conversation's activity and last_seq are updated once per
// batch, after the inserts (batchTouch), and so is each sender's unread
// position (readOwn): per conversation and per sender, never per member.
//
// It runs on the write connection's driver directly (sendConn), with
// statements prepared once per connection: this is the one writer
// goroutine every sender waits on, and database/sql's per-statement
// machinery was a third of its time for a statement.
func (s *Store) InsertMessages(ctx context.Context, batch []chat.NewMessage) ([]chat.Inserted, error) {
	out := make([]chat.Inserted, len(batch))
	hooks := s.webhooks() // once per batch: off costs one atomic load
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		sc, err := s.sendConn(ctx, dc)
		if err != nil {
			return err
		}
		return sc.tx(ctx, func() error {
			// The batch's versions: one per message, in batch order
			// (a refused message leaves its number unused).
			var row [1]driver.Value
			if _, err := sc.query(sc.clock, row[:], int64(len(batch))); err != nil {
				return fmt.Errorf("take versions: %w", err)
			}
			last, _ := row[0].(int64)
			base := last - int64(len(batch))
			var touched batchTouch
			for i := range batch {
				// The statements run without ctx (see sendConn); the
				// batch's deadline is checked between messages.
				if err := ctx.Err(); err != nil {
					return err
				}
				nm := &batch[i]
				nth, prev := touched.next(nm.ConversationID)
				r, err := sc.insertMessage(nm, nth, prev, base+int64(i)+1)
				if err != nil && chat.ErrorCode(err) == chat.CodeInternal {
					return err
				}
				r.Err = err
				out[i] = r
				if r.Created {
					touched.add(nm.ConversationID, r.Message.ID, ms(nm.At), r.Message.Version)
				}
			}
			for _, t := range touched {
				if err := sc.exec(sc.touch, t.at, t.id, t.n, t.version, t.conv); err != nil {
					return err
				}
			}
			if hooks.Has("message.created") {
				if err := sc.keepCreated(out); err != nil {
					return err
				}
			}
			return sc.readOwn(out)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	s.nudgeSearchIndexer() // the index follows in its own transaction
	return out, nil
}

// batchTouch is, per conversation, how many messages a batch stored (the
// seqs it took past last_seq) and the newest of them. A batch touches few
// conversations: a slice scanned linearly beats a map here.
type batchTouch []touch

type touch struct{ conv, n, id, at, version int64 }

// next is the place the next message of conv takes in this batch (1 for
// its first), and the version of the message before it in the batch (-1
// for its first: the conversation's, as read).
func (b batchTouch) next(conv int64) (nth, prev int64) {
	for i := range b {
		if b[i].conv == conv {
			return b[i].n + 1, b[i].version
		}
	}
	return 1, -1
}

func (b *batchTouch) add(conv, id, at, version int64) {
	for i := range *b {
		if t := &(*b)[i]; t.conv == conv {
			t.n, t.id, t.at, t.version = t.n+1, id, at, version
			return
		}
	}
	*b = append(*b, touch{conv, 1, id, at, version})
}

// The statements of a send, prepared once per write connection (sendConn).
const (
	// sqlMember checks that the sender is a participant and reads the
	// conversation's last_seq as it was before this batch (the touch
	// moves it only at the end). It is its own statement: inside the
	// insert, as an EXISTS on participants with the bound sender, it made
	// SQLite expire the prepared insert at every new binding and compile
	// it again at every step, a third of the CPU of a batch.
	//
	// The ids are bound through CAST: SQLite marks a bare parameter
	// compared with a column the chosen index does not cover to be
	// compiled again whenever its value moves to or from 0 or 1 (its
	// guess for boolean columns), which conversation 1 and user 1 did at
	// every change of sender, 8–10 % of the writer's CPU.
	//
	// Its third column is the block check (sqlq.DirectBlocked): nothing
	// more for a group, one probe of blocks_blocked for a direct
	// conversation, in the statement the send runs anyway. It is named:
	// the driver copies each column's name at every query, and unnamed
	// it would be the whole expression.
	sqlMember = `
		SELECT c.last_seq, c.version, ` + sqlq.DirectBlocked + ` AS blocked FROM participants p JOIN conversations c ON c.id = p.conversation_id
		WHERE p.conversation_id = CAST(? AS INTEGER) AND p.user_id = CAST(? AS INTEGER)`
	// sqlInsertMessage is a plain insert of bound values: seq is
	// last_seq plus the message's place among those this batch stored in
	// the conversation, and the touch then moves last_seq past them, in
	// the same transaction. Only the one writer (BEGIN IMMEDIATE) ever
	// does this, so this is the same as taking "last_seq = last_seq + 1
	// RETURNING last_seq" before each insert, without a second statement
	// per message and without handing out a number when nothing is
	// inserted. Its id comes back as the last insert rowid, not through
	// RETURNING (which SQLite runs through a temporary table), and a
	// repeated client_id inserts nothing: no row changed. A seq that
	// collided would fail on messages_seq, never pass silently.
	//
	// The send's statements use anonymous ? placeholders: for a numbered
	// ?N the driver copies the parameter's name into a Go string at every
	// bind, an allocation per argument per message.
	sqlInsertMessage = `
		INSERT INTO messages (conversation_id, seq, sender_id, content, client_id, created_at, reply_to_id, mentions, version, created_version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (sender_id, client_id) DO NOTHING`
	// sqlReplyTo reads the original of a reply, by primary key: the
	// writer checks its conversation before the insert, in the batch's
	// transaction, so no other write comes between. Only a reply runs
	// it: a plain send costs what it did.
	sqlReplyTo  = `SELECT ` + sqlq.ReplyColumns + sqlq.ReplyOriginal + `WHERE r.id = ?`
	sqlOriginal = sqlq.MessageByClientID
	// sqlFreeUpload reads an upload of the sender's that no message
	// carries yet, as an attachment shows it; sqlAttachUpload attaches
	// it. Only a send with attachments runs them.
	sqlFreeUpload        = `SELECT ` + sqlq.AttachmentColumns + ` FROM uploads u WHERE u.id = ? AND u.owner_id = ? AND u.message_id IS NULL`
	sqlAttachUpload      = `UPDATE uploads SET message_id = ?, conversation_id = ?, position = ? WHERE id = ?`
	sqlTouchConversation = `
		UPDATE conversations SET updated_at = ?, last_message_id = max(coalesce(last_message_id, 0), ?), last_seq = last_seq + ?,
			version = ?
		WHERE id = ?`
	// sqlKeepWebhook is sqlq.WebhookInsert with anonymous placeholders.
	sqlKeepWebhook = `INSERT INTO webhook_events (webhook_id, type, data, next_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`
	// sqlTakeVersions is sqlq.TakeVersions for the batch.
	sqlTakeVersions = `UPDATE feed_clock SET version = version + ? WHERE id = 1 RETURNING version`
)

// keepCreated writes a message.created event for each message the batch
// stored (not for a retried send's original): one prepared insert each,
// only with webhooks on.
func (sc *sendConn) keepCreated(out []chat.Inserted) error {
	for i := range out {
		if !out[i].Created {
			continue
		}
		m := &out[i].Message
		w, err := sqlq.NewWebhook("message.created", m.CreatedAt.Time, m)
		if err != nil {
			return err
		}
		if err := sc.exec(sc.hook, w.ID, w.Type, w.Data, w.At, w.At, w.At); err != nil {
			return fmt.Errorf("keep webhook: %w", err)
		}
	}
	return nil
}

// readOwn moves each sender's unread position to the newest message they
// stored in the batch, once per conversation and sender (sqlq.ReadOwn).
func (sc *sendConn) readOwn(out []chat.Inserted) error {
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
		if err := sc.exec(sc.readOwnStmt, k.conv, k.sender, m.Seq); err != nil {
			return fmt.Errorf("read own: %w", err)
		}
	}
	return nil
}

// insertMessage stores nm as the nth message of this batch in its
// conversation.
func (sc *sendConn) insertMessage(nm *chat.NewMessage, nth, prev, version int64) (chat.Inserted, error) {
	var clientID any
	if nm.ClientID != "" {
		clientID = nm.ClientID
	}
	at := ms(nm.At)
	var row [3]driver.Value // last_seq, version, blocked
	member, err := sc.query(sc.member, row[:], nm.ConversationID, nm.Sender.ID)
	if err != nil {
		return chat.Inserted{}, err
	}
	if !member {
		if nm.ClientID == "" {
			return chat.Inserted{}, chat.ErrNotFound // not a participant
		}
		// A retried send returns the original even once the sender
		// has left; otherwise not a participant.
		return sc.original(nm)
	}
	if blocked, _ := row[2].(int64); blocked != 0 {
		if nm.ClientID != "" {
			// A retried send returns the original, sent before the
			// block; otherwise blocked.
			if orig, err := sc.original(nm); chat.ErrorCode(err) != chat.CodeNotFound {
				return orig, err
			}
		}
		return chat.Inserted{}, chat.ErrBlocked
	}
	var replyTo *chat.ReplyTo
	var replyToID any
	if nm.ReplyToID != 0 {
		if replyTo, err = sc.replyOriginal(nm); err != nil {
			return chat.Inserted{}, err
		}
		replyToID = nm.ReplyToID
	}
	var attachments chat.Attachments
	if len(nm.AttachmentIDs) > 0 {
		if attachments, err = sc.freeUploads(nm); err != nil {
			if nm.ClientID != "" && chat.ErrorCode(err) == chat.CodeInvalid {
				// A retried send's uploads are its original's.
				if orig, oerr := sc.original(nm); oerr == nil {
					return orig, nil
				}
			}
			return chat.Inserted{}, err
		}
	}
	lastSeq, _ := row[0].(int64)
	seq := lastSeq + nth
	if prev < 0 {
		prev, _ = row[1].(int64)
	}
	res, err := sc.execResult(sc.insert, nm.ConversationID, seq, nm.Sender.ID, nm.Content, clientID, at,
		replyToID, mentionsArg(nm.Mentions), version, version)
	if err != nil {
		return chat.Inserted{}, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return chat.Inserted{}, err
		}
		// (sender, client_id) is taken: a retried send (return the
		// original) or a client_id used in another conversation.
		return sc.original(nm)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return chat.Inserted{}, err
	}
	for i, a := range attachments {
		if err := sc.exec(sc.attach, id, nm.ConversationID, int64(i), a.ID); err != nil {
			return chat.Inserted{}, err
		}
	}
	m := chat.Message{
		ID:             id,
		ConversationID: nm.ConversationID,
		Seq:            seq,
		Sender:         nm.Sender,
		Content:        nm.Content,
		CreatedAt:      chat.UnixMilli(at),
		ReplyTo:        replyTo,
		Mentions:       nm.Mentions,
		Version:        version,
		CreatedVersion: version,
		PrevVersion:    prev,
		Attachments:    attachments,
	}
	if nm.ClientID != "" {
		cid := nm.ClientID
		m.ClientID = &cid
	}
	return chat.Inserted{Message: m, Created: true}, nil
}

// freeUploads reads the uploads nm attaches, in its order: ErrAttachments
// unless each is an upload of its sender's that no message carries yet.
// The batch's transaction holds the one writer, so nothing attaches them
// between this read and the insert.
func (sc *sendConn) freeUploads(nm *chat.NewMessage) (chat.Attachments, error) {
	out := make(chat.Attachments, len(nm.AttachmentIDs))
	var row [7]driver.Value
	for i, id := range nm.AttachmentIDs {
		found, err := sc.query(sc.upload, row[:], id, nm.Sender.ID)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, chat.ErrAttachments
		}
		if out[i], err = sqlq.ScanAttachment(valuesRow(row[:])); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mentionsArg binds sqlq.Mentions: nil (NULL) for none, without boxing a
// nil pointer into a non-nil interface.
func mentionsArg(ids []int64) any {
	if m := sqlq.Mentions(ids); m != nil {
		return *m
	}
	return nil
}

// replyOriginal returns the original nm answers, as the reply shows it:
// ErrReplyTo unless it is a message of nm's conversation.
func (sc *sendConn) replyOriginal(nm *chat.NewMessage) (*chat.ReplyTo, error) {
	var row [7]driver.Value
	found, err := sc.query(sc.replyTo, row[:], nm.ReplyToID)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, chat.ErrReplyTo
	}
	conv, rt, err := sqlq.ScanReply(valuesRow(row[:]))
	if err != nil {
		return nil, err
	}
	if conv != nm.ConversationID {
		return nil, chat.ErrReplyTo
	}
	return rt, nil
}

// original returns the message that (sender, client_id) of nm already
// names: a retried send. ErrNotFound when there is none (the sender is not a
// participant), CodeConflict when it is in another conversation.
func (sc *sendConn) original(nm *chat.NewMessage) (chat.Inserted, error) {
	var row [21]driver.Value // sqlq.MessageColumns
	found, err := sc.query(sc.byClientID, row[:], nm.Sender.ID, nm.ClientID)
	if err != nil {
		return chat.Inserted{}, err
	}
	if !found {
		return chat.Inserted{}, chat.ErrNotFound
	}
	m, err := sqlq.ScanMessage(valuesRow(row[:]))
	if err != nil {
		return chat.Inserted{}, err
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
	return s.lastOf(ctx, "last_seq", convIDs)
}

// LastVersions implements chat.Store.
func (s *Store) LastVersions(ctx context.Context, convIDs []int64) (map[int64]int64, error) {
	return s.lastOf(ctx, "version", convIDs)
}

// lastOf reads column (last_seq or version) of each conversation.
func (s *Store) lastOf(ctx context.Context, column string, convIDs []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(convIDs))
	for len(convIDs) > 0 {
		chunk := convIDs[:min(len(convIDs), 500)]
		convIDs = convIDs[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		q := `SELECT id, ` + column + ` FROM conversations WHERE id IN (?` + strings.Repeat(`, ?`, len(chunk)-1) + `)`
		rows, err := s.read.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("last %s: %w", column, err)
		}
		for rows.Next() {
			var id, seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("last %s: %w", column, err)
			}
			out[id] = seq
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("last %s: %w", column, err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("last %s: %w", column, err)
		}
	}
	return out, nil
}

// EditMessage implements chat.Store.
func (s *Store) EditMessage(ctx context.Context, id int64, content string, mentions []int64, at time.Time) (chat.Message, error) {
	var m chat.Message
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var conv int64
		err := tx.QueryRowContext(ctx, `UPDATE messages SET content = ?, mentions = ?, edited_at = ? WHERE id = ? AND deleted_at IS NULL
			RETURNING conversation_id`, content, mentionsArg(mentions), ms(at), id).Scan(&conv)
		if err != nil {
			return notFound(err)
		}
		_, prev, err := bumpMessage(ctx, tx, conv, id)
		if err != nil {
			return err
		}
		m, err = sqlq.ScanMessage(tx.QueryRowContext(ctx, sqlq.MessageByID, id))
		m.PrevVersion = prev
		if err != nil {
			return err
		}
		return s.keepWebhook(ctx, tx, "message.updated", at, &m)
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
		var err error
		m, changed, err = deleteMessage(ctx, tx, id, at, false)
		if err != nil || !changed {
			return err // deleted before: its event was written then
		}
		return s.keepWebhook(ctx, tx, "message.deleted", at, &m)
	})
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("delete message: %w", err)
	}
	return m, changed, nil
}

// deleteMessage tombstones message id in tx, as staff removing it when
// moderated, and returns it as it is now; changed is false when it was
// already deleted.
func deleteMessage(ctx context.Context, tx *sql.Tx, id int64, at time.Time, moderated bool) (chat.Message, bool, error) {
	var by *int64
	if moderated {
		t := ms(at)
		by = &t
	}
	var conv, prev int64
	changed := false
	err := tx.QueryRowContext(ctx, `UPDATE messages SET content = '', deleted_at = ?, moderated_at = ? WHERE id = ? AND deleted_at IS NULL
		RETURNING conversation_id`, ms(at), by, id).Scan(&conv)
	switch {
	case err == nil:
		changed = true
		if _, prev, err = bumpMessage(ctx, tx, conv, id); err != nil {
			return chat.Message{}, false, err
		}
		if _, err := tx.ExecContext(ctx, sqlq.ClearReactions, id); err != nil {
			return chat.Message{}, false, fmt.Errorf("clear reactions: %w", err)
		}
		// Its files go with it (the file store's garbage collector
		// removes them once nothing else holds them).
		if _, err := tx.ExecContext(ctx, sqlq.ReleaseBlobsOf(`message_id = $1`), id, ms(at)); err != nil {
			return chat.Message{}, false, fmt.Errorf("remove attachments: %w", err)
		}
		if _, err := tx.ExecContext(ctx, sqlq.RemoveAttachments, id); err != nil {
			return chat.Message{}, false, fmt.Errorf("remove attachments: %w", err)
		}
	case !errors.Is(err, sql.ErrNoRows):
		return chat.Message{}, false, err
	}
	m, err := sqlq.ScanMessage(tx.QueryRowContext(ctx, sqlq.MessageByID, id))
	if err != nil {
		return chat.Message{}, false, notFound(err)
	}
	m.PrevVersion = prev
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

// Feed implements chat.Store.
func (s *Store) Feed(ctx context.Context, user int64, after chat.SyncKey, limit int) (chat.FeedRead, error) {
	return s.Reader.Feed(ctx, user, after, limit, func(args ...any) ([]chat.Conversation, error) {
		return s.conversations(ctx, fixed(sqlq.FeedConversationsSQLite), args...)
	})
}
