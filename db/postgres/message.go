package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// InsertMessages implements chat.Store: the whole batch is one transaction
// (group commit) in two round trips however long it is (see
// insertMessages). Another node's batch into the same conversation waits
// for this one's commit, so seq follows commit order across nodes.
//
// A batch first runs as if every client_id were new, which is the rule: a
// client_id already stored (a retried send) fails the insert, and the
// batch runs again, this time reading the stored ones first.
func (s *Store) InsertMessages(ctx context.Context, batch []chat.NewMessage) ([]chat.Inserted, error) {
	out := make([]chat.Inserted, len(batch))
	readPairs := false
	for attempt := 1; ; attempt++ {
		clear(out) // a retry starts over
		err := s.insertMessages(ctx, batch, out, readPairs)
		if err == nil {
			s.nudgeSearchIndexer() // the index follows, after the commit
			return out, nil
		}
		if attempt == maxAttempts || !(retryable(err) || clientIDRace(err) || errors.Is(err, errReadPairs)) {
			return nil, maybeStored(fmt.Errorf("insert messages: %w", err))
		}
		if clientIDRace(err) && !readPairs || errors.Is(err, errReadPairs) {
			readPairs = true // not a collision with another node: no wait
			continue
		}
		if !backoff(ctx, attempt) {
			return nil, maybeStored(fmt.Errorf("insert messages: %w", err))
		}
	}
}

// maybeStored makes an error of the way to the database (Unavailable) the
// answer a send gets when its commit's outcome is unknown: a connection
// cut while COMMIT was on its way may have committed it, and the client
// must retry with the same client_id.
func maybeStored(err error) error {
	if !unreachable(err) {
		return err
	}
	return &chat.Error{Code: chat.ErrMaybeStored.Code, Detail: chat.ErrMaybeStored.Detail, Err: err}
}

// The statements of a send.
const (
	// Senders first, then conversations, each in ascending id order: the
	// order every writer here takes them in, so that two nodes' batches
	// (or a batch and a DeleteUser) never wait on each other in a cycle.
	// KEY SHARE on a sender is what the message's foreign key would take
	// anyway, only earlier; a sender deleted meanwhile is then simply gone.
	sqlLockSenders       = `SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`
	sqlLockConversations = `SELECT id, version FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`
	// sqlMembers reads which senders are participants, and with each
	// the block check (sqlq.DirectBlocked): nothing more for a group, one
	// probe of blocks_blocked for a direct conversation.
	sqlMembers = `
		SELECT p.conversation_id, p.user_id, ` + sqlq.DirectBlocked + ` AS blocked FROM participants p JOIN conversations c ON c.id = p.conversation_id
		WHERE (p.conversation_id, p.user_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))`
	// sqlReplies reads the originals the batch's replies answer, in the
	// first round trip, in the same transaction as the insert: a reply
	// to a message of another conversation (or none) is refused before
	// the insert, which may skip no row. Queued only when the batch has
	// a reply: a plain batch costs what it did.
	sqlReplies = `SELECT ` + sqlq.ReplyColumns + sqlq.ReplyOriginal + `WHERE r.id = ANY($1)`
	// sqlFreeUploads reads the uploads a batch attaches that no message
	// carries yet, and locks them until the commit; sqlAttachUploads
	// attaches them once the messages have ids.
	sqlFreeUploads = `SELECT u.owner_id, ` + sqlq.AttachmentColumns + ` FROM uploads u
		WHERE u.id = ANY($1) AND u.message_id IS NULL FOR UPDATE`
	sqlAttachUploads = `UPDATE uploads u SET message_id = a.message_id, conversation_id = a.conversation_id, position = a.position
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[]) AS a (id, message_id, conversation_id, position)
		WHERE u.id = a.id`
	sqlOriginals = `SELECT ` + sqlq.MessageColumns + sqlq.MessageFrom + `
		WHERE (m.sender_id, m.client_id) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))`
	// sqlInsertMessages inserts a whole batch (one row per element of
	// its arrays, in array order) and moves each conversation's last_seq
	// and activity on, in one statement. The k-th message of a
	// conversation in the batch takes its last_seq + k: this transaction
	// holds the conversation's row lock (sqlLockConversations) from
	// before the insert to its commit, which is what makes that safe.
	// Rows are inserted in array order, so ids, taken at the insert, grow
	// with seq.
	//
	// The ids are taken while the transaction holds the feed clock's row
	// (sqlq.TakeVersions, the batch's first lock), until its commit: the
	// batches' ids are handed out in the order they commit, so that a
	// visible message has every smaller id visible too (or rolled back).
	// The search index's mark relies on it (migration 00008): whatever
	// else inserts messages must take the clock first as well.
	//
	// No row may be skipped, or its number would be a hole in seq: every
	// sender was checked to be a participant, a (sender, client_id) pair
	// occurs once in the arrays, and there is no ON CONFLICT. A pair
	// already stored (a retried send, or one that another node stores
	// meanwhile) makes the statement fail on messages_client_id instead,
	// and the whole batch runs again (clientIDRace), reading the stored
	// pairs first.
	//
	// own moves each sender's unread position to their newest message of
	// the batch (as sqlq.ReadOwn does): one row per conversation and
	// sender, never a write per member.
	sqlInsertMessages = `
		WITH new AS (
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])
				WITH ORDINALITY AS n (conversation_id, sender_id, content, client_id, created_at, reply_to_id, mentions, i)
		), ins AS (
			INSERT INTO messages (conversation_id, seq, sender_id, content, client_id, created_at, reply_to_id, mentions,
				version, created_version)
			SELECT n.conversation_id, c.last_seq + row_number() OVER (PARTITION BY n.conversation_id ORDER BY n.i),
				n.sender_id, n.content, n.client_id, n.created_at, n.reply_to_id, n.mentions, $8 + n.i, $8 + n.i
			FROM new n JOIN conversations c ON c.id = n.conversation_id
			ORDER BY n.i
			RETURNING id, conversation_id, sender_id, seq, created_at, version
		), bump AS (
			UPDATE conversations c SET last_seq = l.seq, updated_at = l.created_at, version = l.version,
				last_message_id = greatest(coalesce(c.last_message_id, 0), l.id)
			FROM (SELECT DISTINCT ON (conversation_id) * FROM ins ORDER BY conversation_id, seq DESC) l
			WHERE c.id = l.conversation_id
		), own AS (
			UPDATE participants p SET last_read_seq = o.seq
			FROM (SELECT conversation_id, sender_id, max(seq) AS seq FROM ins GROUP BY 1, 2) o
			WHERE p.conversation_id = o.conversation_id AND p.user_id = o.sender_id AND p.last_read_seq < o.seq
		)
		SELECT conversation_id, seq, id, version FROM ins`
)

type memberKey struct{ conv, user int64 }

// freeUpload is an upload no message carries yet, and its owner.
type freeUpload struct {
	owner int64
	a     chat.Attachment
}

// claimUploads returns the attachments nm names, when each is a free
// upload of its sender's that no earlier message of the batch claimed,
// and claims them.
func claimUploads(nm *chat.NewMessage, uploads map[int64]freeUpload, claimed map[int64]bool) (chat.Attachments, bool) {
	as := make(chat.Attachments, len(nm.AttachmentIDs))
	for i, id := range nm.AttachmentIDs {
		u, ok := uploads[id]
		if !ok || u.owner != nm.Sender.ID || claimed[id] {
			return nil, false
		}
		as[i] = u.a
	}
	for _, id := range nm.AttachmentIDs {
		claimed[id] = true
	}
	return as, true
}

type clientKey struct {
	sender   int64
	clientID string
}

// insertMessages stores batch into out, in input order, in one
// transaction of two pipelined round trips:
//
//  1. begin; lock the senders and conversations, and read who is a
//     participant and, with readPairs, which (sender, client_id) pairs
//     already exist — every message is checked before anything is
//     inserted, because a statement that fails aborts the transaction
//     and the whole batch with it;
//  2. insert every message that passed in one statement; read the
//     stored pairs of the messages refused for not being a participant
//     (a retry from someone who left since is still answered with the
//     original); commit.
//
// Without readPairs, a stored pair among the messages inserted fails the
// insert (clientIDRace), and nothing of the batch is stored.
//
// A transaction left open by an error is rolled back, or its connection
// closed.
func (s *Store) insertMessages(ctx context.Context, batch []chat.NewMessage, out []chat.Inserted, readPairs bool) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' && ctx.Err() == nil {
			// Release closes a connection still in a transaction;
			// this keeps it.
			conn.Exec(ctx, `ROLLBACK`)
		}
		conn.Release()
	}()

	var convs, senders, memberConvs, memberUsers, origSenders []int64
	var origClientIDs []string
	var replyIDs, uploadIDs []int64
	for _, nm := range batch {
		if nm.ReplyToID != 0 {
			replyIDs = append(replyIDs, nm.ReplyToID)
		}
		uploadIDs = append(uploadIDs, nm.AttachmentIDs...)
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

	// members maps each sender who is a participant to whether the
	// conversation is direct and the other participant blocks them.
	members := make(map[memberKey]bool, len(batch))
	originals := map[clientKey]chat.Message{}
	var lastVersion int64
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	// The batch's versions first (see sqlq.TakeVersions): one per
	// message, the i-th inserted taking the i-th.
	b.Queue(sqlq.TakeVersions, len(batch)).QueryRow(func(r pgx.Row) error { return r.Scan(&lastVersion) })
	b.Queue(sqlLockSenders, senders)
	versions := make(map[int64]int64, len(convs)) // each conversation's, before the batch
	b.Queue(sqlLockConversations, convs).Query(func(rows pgx.Rows) error {
		var id, v int64
		_, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error {
			versions[id] = v
			return nil
		})
		return err
	})
	b.Queue(sqlMembers, memberConvs, memberUsers).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var k memberKey
			var blocked bool
			if err := rows.Scan(&k.conv, &k.user, &blocked); err != nil {
				return err
			}
			members[k] = blocked
		}
		return rows.Err()
	})
	type original struct {
		conv    int64
		replyTo *chat.ReplyTo
	}
	var replies map[int64]original
	if len(replyIDs) > 0 {
		replies = make(map[int64]original, len(replyIDs))
		b.Queue(sqlReplies, replyIDs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				conv, rt, err := sqlq.ScanReply(rows)
				if err != nil {
					return err
				}
				replies[rt.ID] = original{conv, rt}
			}
			return rows.Err()
		})
	}
	if readPairs && len(origSenders) > 0 {
		b.Queue(sqlOriginals, origSenders, origClientIDs).Query(func(rows pgx.Rows) error {
			return collectOriginals(rows, originals)
		})
	}
	// The uploads the batch attaches, locked until the commit: only a
	// batch with attachments reads them.
	var uploads map[int64]freeUpload
	if len(uploadIDs) > 0 {
		uploads = make(map[int64]freeUpload, len(uploadIDs))
		b.Queue(sqlFreeUploads, uploadIDs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var u freeUpload
				if err := rows.Scan(&u.owner, &u.a.ID, &u.a.Name, &u.a.MIME, &u.a.Size, &u.a.Width, &u.a.Height, &u.a.Thumbnail); err != nil {
					return err
				}
				uploads[u.a.ID] = u
			}
			return rows.Err()
		})
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("check: %w", err)
	}

	var (
		ins     insertArgs
		sent    []int                 // index in batch of each inserted message, in order
		firstOf = map[clientKey]int{} // first message sent with each (sender, client_id)
		again   []int                 // later messages with the same pair
		refused []int                 // non-participants' messages with a client_id
		// attachments of each message that has them, by index in batch;
		// claimed, the uploads taken by the batch's messages so far.
		attachments = map[int]chat.Attachments{}
		claimed     = map[int64]bool{}
	)
	for i := range batch {
		nm := &batch[i]
		k := clientKey{nm.Sender.ID, nm.ClientID}
		if m, ok := originals[k]; ok && nm.ClientID != "" {
			out[i] = retried(nm, m)
			continue
		}
		if blocked, member := members[memberKey{nm.ConversationID, nm.Sender.ID}]; !member || blocked {
			// A retried send is still answered with its original,
			// sent before the sender left or was blocked.
			out[i].Err = chat.ErrNotFound
			if blocked {
				out[i].Err = chat.ErrBlocked
			}
			if !readPairs && nm.ClientID != "" {
				refused = append(refused, i)
			}
			continue
		}
		if nm.ReplyToID != 0 {
			if o, ok := replies[nm.ReplyToID]; !ok || o.conv != nm.ConversationID {
				out[i].Err = chat.ErrReplyTo
				continue
			}
		}
		if nm.ClientID != "" {
			if _, ok := firstOf[k]; ok {
				again = append(again, i)
				continue
			}
		}
		if len(nm.AttachmentIDs) > 0 {
			as, ok := claimUploads(nm, uploads, claimed)
			if !ok {
				if nm.ClientID != "" && !readPairs {
					return errReadPairs
				}
				out[i].Err = chat.ErrAttachments
				continue
			}
			attachments[i] = as
		}
		if nm.ClientID != "" {
			firstOf[k] = i
		}
		ins.add(nm)
		sent = append(sent, i)
	}
	type row struct{ conv, seq, id, version int64 }
	var rows []row
	b = &pgx.Batch{}
	if len(refused) > 0 {
		origSenders, origClientIDs = origSenders[:0], origClientIDs[:0]
		for _, i := range refused {
			origSenders = append(origSenders, batch[i].Sender.ID)
			origClientIDs = append(origClientIDs, batch[i].ClientID)
		}
		b.Queue(sqlOriginals, origSenders, origClientIDs).Query(func(rows pgx.Rows) error {
			return collectOriginals(rows, originals)
		})
	}
	if len(sent) > 0 {
		b.Queue(sqlInsertMessages, ins.convs, ins.senders, ins.contents, ins.clientIDs, ins.ats, ins.replyTos, ins.mentions,
			lastVersion-int64(len(batch))).Query(func(r pgx.Rows) error {
			var x row
			_, err := pgx.ForEachRow(r, []any{&x.conv, &x.seq, &x.id, &x.version}, func() error {
				rows = append(rows, x)
				return nil
			})
			return err
		})
	}
	commit := func(b *pgx.Batch) {
		b.Queue(`COMMIT`).Exec(func(tag pgconn.CommandTag) error {
			if tag.String() != "COMMIT" {
				return pgx.ErrTxCommitRollback
			}
			return nil
		})
	}
	// With message.created chosen, the events need the messages' ids:
	// the commit waits for a third round trip, as attachments do.
	hooks := s.webhooks().Has("message.created") && len(sent) > 0
	if len(attachments) == 0 && !hooks {
		commit(b)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if len(rows) != len(sent) {
		// Not as asked: no statement here lets that happen.
		return fmt.Errorf("insert: %d of %d messages stored", len(rows), len(sent))
	}
	for _, i := range refused {
		nm := &batch[i]
		if m, ok := originals[clientKey{nm.Sender.ID, nm.ClientID}]; ok {
			out[i] = retried(nm, m)
		}
	}

	// The k-th message of a conversation in sent has the k-th smallest
	// seq among its rows.
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(a.conv, b.conv), cmp.Compare(a.seq, b.seq)) })
	next := map[int64]int{} // conversation → index in rows of its next message
	for j, r := range rows {
		if j == 0 || rows[j-1].conv != r.conv {
			next[r.conv] = j
		}
	}
	var attach struct {
		uploads, messages, convs []int64
		positions                []int32
	}
	for _, i := range sent {
		nm := &batch[i]
		r := rows[next[nm.ConversationID]]
		next[nm.ConversationID]++
		m := chat.Message{
			ID:             r.id,
			ConversationID: nm.ConversationID,
			Seq:            r.seq,
			Version:        r.version,
			CreatedVersion: r.version,
			PrevVersion:    versions[nm.ConversationID],
			Sender:         nm.Sender,
			Content:        nm.Content,
			CreatedAt:      chat.UnixMilli(ms(nm.At)),
			Mentions:       nm.Mentions,
		}
		if nm.ReplyToID != 0 {
			m.ReplyTo = replies[nm.ReplyToID].replyTo
		}
		if nm.ClientID != "" {
			cid := nm.ClientID
			m.ClientID = &cid
		}
		versions[nm.ConversationID] = r.version
		if as := attachments[i]; len(as) > 0 {
			m.Attachments = as
			for pos, a := range as {
				attach.uploads = append(attach.uploads, a.ID)
				attach.messages = append(attach.messages, r.id)
				attach.convs = append(attach.convs, nm.ConversationID)
				attach.positions = append(attach.positions, int32(pos))
			}
		}
		out[i] = chat.Inserted{Message: m, Created: true}
	}
	if len(attachments) > 0 || hooks {
		// A third round trip, only for a batch with attachments or
		// webhook events: they need the messages' ids.
		b = &pgx.Batch{}
		if len(attach.uploads) > 0 {
			b.Queue(sqlAttachUploads, attach.uploads, attach.messages, attach.convs, attach.positions)
		}
		if hooks {
			ids, data, ats := make([]string, 0, len(sent)), make([]string, 0, len(sent)), make([]int64, 0, len(sent))
			for _, i := range sent {
				m := &out[i].Message
				w, err := sqlq.NewWebhook("message.created", m.CreatedAt.Time, m)
				if err != nil {
					return err
				}
				ids, data, ats = append(ids, w.ID), append(data, w.Data), append(ats, w.At)
			}
			b.Queue(sqlKeepWebhooks, ids, data, ats)
		}
		commit(b)
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("attach: %w", err)
		}
	}
	// A pair sent twice in one batch: the later one is a retry of the
	// first.
	for _, i := range again {
		nm := &batch[i]
		out[i] = retried(nm, out[firstOf[clientKey{nm.Sender.ID, nm.ClientID}]].Message)
	}
	return nil
}

// insertArgs are the columns of sqlInsertMessages, one element per
// message.
type insertArgs struct {
	convs, senders, ats []int64
	contents            []string
	clientIDs, mentions []*string
	replyTos            []*int64
}

func (a *insertArgs) add(nm *chat.NewMessage) {
	a.convs = append(a.convs, nm.ConversationID)
	a.senders = append(a.senders, nm.Sender.ID)
	a.contents = append(a.contents, nm.Content)
	var clientID *string
	if nm.ClientID != "" {
		clientID = &nm.ClientID
	}
	a.clientIDs = append(a.clientIDs, clientID)
	a.ats = append(a.ats, ms(nm.At))
	var replyTo *int64
	if nm.ReplyToID != 0 {
		replyTo = &nm.ReplyToID
	}
	a.replyTos = append(a.replyTos, replyTo)
	a.mentions = append(a.mentions, sqlq.Mentions(nm.Mentions))
}

// errReadPairs asks for the batch to run again reading the stored
// (sender, client_id) pairs first: a message with a client_id named
// uploads that are attached already, which its original may carry (a
// retried send).
var errReadPairs = errors.New("attachments taken: read the stored client_ids")

// clientIDRace reports an insert that met a (sender, client_id) pair
// already stored, or stored by another node's transaction while this one
// ran: running the batch again with readPairs finds it.
func clientIDRace(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "messages_client_id"
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
	return s.lastOf(ctx, "last_seq", convIDs)
}

// LastVersions implements chat.Store.
func (s *Store) LastVersions(ctx context.Context, convIDs []int64) (map[int64]int64, error) {
	return s.lastOf(ctx, "version", convIDs)
}

// lastOf reads column (last_seq or version) of each conversation.
func (s *Store) lastOf(ctx context.Context, column string, convIDs []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(convIDs))
	rows, err := s.pool.Query(ctx, `SELECT id, `+column+` FROM conversations WHERE id = ANY($1)`, convIDs)
	if err != nil {
		return nil, fmt.Errorf("last %s: %w", column, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, fmt.Errorf("last %s: %w", column, err)
		}
		out[id] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("last %s: %w", column, err)
	}
	return out, nil
}

// EditMessage implements chat.Store.
func (s *Store) EditMessage(ctx context.Context, id int64, content string, mentions []int64, at time.Time) (chat.Message, error) {
	var m chat.Message
	err := s.tx(ctx, func(tx pgx.Tx) error {
		v, err := takeVersion(ctx, tx)
		if err != nil {
			return err
		}
		m, err = sqlq.ScanMessage(tx.QueryRow(ctx, `
			WITH m AS (
				UPDATE messages SET content = $1, edited_at = $2, mentions = $4, version = $5 WHERE id = $3 AND deleted_at IS NULL
				RETURNING *
			)
			SELECT `+sqlq.MessageColumns+` FROM m JOIN users u ON u.id = m.sender_id`+sqlq.ReplyJoins, content, ms(at), id, sqlq.Mentions(mentions), v))
		if err != nil {
			return notFound(err)
		}
		if m.PrevVersion, err = setConversationVersion(ctx, tx, m.ConversationID, v); err != nil {
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
	var changed bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
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
func deleteMessage(ctx context.Context, tx pgx.Tx, id int64, at time.Time, moderated bool) (chat.Message, bool, error) {
	v, err := takeVersion(ctx, tx)
	if err != nil {
		return chat.Message{}, false, err
	}
	var by *int64
	if moderated {
		t := ms(at)
		by = &t
	}
	var conv, prev int64
	changed := false
	err = tx.QueryRow(ctx, `UPDATE messages SET content = '', deleted_at = $1, version = $3, moderated_at = $4 WHERE id = $2 AND deleted_at IS NULL
		RETURNING conversation_id`, ms(at), id, v, by).Scan(&conv)
	switch {
	case err == nil:
		if prev, err = setConversationVersion(ctx, tx, conv, v); err != nil {
			return chat.Message{}, false, err
		}
		if _, err := tx.Exec(ctx, sqlq.ClearReactions, id); err != nil {
			return chat.Message{}, false, fmt.Errorf("clear reactions: %w", err)
		}
		// Its files go with it (the file store's garbage collector
		// removes them once nothing else holds them).
		if _, err := tx.Exec(ctx, sqlq.ReleaseBlobsOf(`message_id = $1`), id, ms(at)); err != nil {
			return chat.Message{}, false, fmt.Errorf("remove attachments: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlq.RemoveAttachments, id); err != nil {
			return chat.Message{}, false, fmt.Errorf("remove attachments: %w", err)
		}
		changed = true
	case errors.Is(err, pgx.ErrNoRows):
	default:
		return chat.Message{}, false, err
	}
	m, err := sqlq.ScanMessage(tx.QueryRow(ctx, sqlq.MessageByID, id))
	if err != nil {
		return chat.Message{}, false, notFound(err)
	}
	m.PrevVersion = prev
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

// Feed implements chat.Store.
func (s *Store) Feed(ctx context.Context, user int64, after chat.SyncKey, limit int) (chat.FeedRead, error) {
	return s.Reader.Feed(ctx, user, after, limit, func(args ...any) ([]chat.Conversation, error) {
		return s.conversations(ctx, sqlq.FeedConversations, args...)
	})
}
