// Package sqlq is the SQL that Confab's two stores share: column lists, row
// scanners and read queries, written once against the one schema that
// package db (SQLite) and package postgres (PostgreSQL) both keep, and
// Reader, the reads of chat.Store that are the same query on both, which
// each store embeds over its own pool (Querier).
//
// Placeholders are $1, $2…: PostgreSQL's own, and modernc.org/sqlite binds
// $N to the Nth argument too, so one text serves both. Timestamps are Unix
// milliseconds in both stores. What is left of the dialects in a shared
// query is passed in by the store (see ByteOrderSQLite).
//
// sqlq imports neither driver and never opens a connection, begins a
// transaction or writes: how a write is locked, batched, retried or
// committed stays with each store, where its dialect really differs.
package sqlq

import (
	"database/sql"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confab/confab/app/chat"
)

// Row is what *sql.Row, *sql.Rows and pgx's rows have in common.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result set of either driver, positioned by Next.
type Rows interface {
	Row
	Next() bool
	Err() error
}

// Collect scans every row of rows with scan. It does not close rows.
func Collect[T any](rows Rows, capacity int, scan func(Row) (T, error)) ([]T, error) {
	out := make([]T, 0, max(capacity, 0))
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ScanID reads a row of one id.
func ScanID(row Row) (int64, error) {
	var id int64
	err := row.Scan(&id)
	return id, err
}

// Fold is how every store compares and searches names (username_key,
// display_key): Go's Unicode lower-casing, computed in Go rather than by
// the database, so that both stores agree on "Özil" and "özil".
func Fold(s string) string { return strings.ToLower(s) }

// UserColumns are the columns ScanUser reads, in its order.
const UserColumns = `id, username, display_name, created_at`

// AccountColumns are UserColumns and the credentials ScanAccount reads.
const AccountColumns = UserColumns + `, password_hash, token_epoch, kept_session, is_staff, deactivated_at`

// Account lookups (ScanAccount): a deleted account's tombstone is
// found by neither.
const (
	AccountByID       = `SELECT ` + AccountColumns + ` FROM users WHERE id = $1 AND deleted_at IS NULL`
	AccountByUsername = `SELECT ` + AccountColumns + ` FROM users WHERE username_key = $1 AND deleted_at IS NULL`
)

// ScanUser reads UserColumns, then extra.
func ScanUser(row Row, extra ...any) (chat.User, error) {
	var u chat.User
	var created int64
	dst := append([]any{&u.ID, &u.Username, &u.DisplayName, &created}, extra...)
	if err := row.Scan(dst...); err != nil {
		return chat.User{}, err
	}
	u.CreatedAt = chat.UnixMilli(created)
	return u, nil
}

// ScanAccount reads AccountColumns.
func ScanAccount(row Row) (chat.Account, error) {
	var a chat.Account
	var deactivated sql.NullInt64
	u, err := ScanUser(row, &a.PasswordHash, &a.TokenEpoch, &a.KeptSession, &a.IsStaff, &deactivated)
	if err != nil {
		return chat.Account{}, err
	}
	a.User = u
	if deactivated.Valid {
		t := time.UnixMilli(deactivated.Int64).UTC()
		a.DeactivatedAt = &t
	}
	return a, nil
}

// ByteOrderSQLite and ByteOrderPostgres follow an ORDER BY term to sort
// text byte by byte: SQLite's default, PostgreSQL's "C" collation.
const (
	ByteOrderSQLite   = ``
	ByteOrderPostgres = ` COLLATE "C"`
)

// SearchUsers is the user search: $1 a LIKE pattern (PrefixPattern), $2
// the limit, ordered by username_key in byteOrder. Both keys are folded by
// Fold, so SQLite's LIKE (which folds ASCII only) and PostgreSQL's
// (which folds nothing) match the same rows. Deactivated and deleted
// accounts are left out.
func SearchUsers(byteOrder string) string {
	return `SELECT ` + UserColumns + ` FROM users
		WHERE (username_key LIKE $1 ESCAPE '\' OR display_key LIKE $1 ESCAPE '\') AND deactivated_at IS NULL AND deleted_at IS NULL
		ORDER BY username_key` + byteOrder + `
		LIMIT $2`
}

// SearchAccounts is SearchUsers for staff: AccountColumns, deactivated
// accounts included (deleted ones are not accounts any more).
func SearchAccounts(byteOrder string) string {
	return `SELECT ` + AccountColumns + ` FROM users
		WHERE (username_key LIKE $1 ESCAPE '\' OR display_key LIKE $1 ESCAPE '\') AND deleted_at IS NULL
		ORDER BY username_key` + byteOrder + `
		LIMIT $2`
}

// PrefixPattern is the LIKE pattern for names that start with prefix.
func PrefixPattern(prefix string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(Fold(prefix)) + "%"
}

// MessageColumns are the columns ScanMessage reads, in its order, from
// messages m joined with its sender u (MessageFrom).
// ReplyJoins (the original r of a reply, and its sender ru), in the same
// row: a page reads its previews in its one query.
const MessageColumns = `m.id, m.conversation_id, m.seq, m.sender_id, u.username, u.display_name,
	m.content, m.client_id, m.created_at, m.edited_at, m.deleted_at, m.mentions, m.version, m.created_version, m.moderated_at,
	r.id, r.sender_id, ru.username, ru.display_name, substr(r.content, 1, ` + previewLen + `), r.deleted_at`

// previewLen is chat.MaxPreview: substr counts characters (code points)
// in both databases.
const previewLen = `200`

// ReplyJoins joins a message m with the message it answers, r, and r's
// sender, ru: by primary key, one lookup per reply.
const ReplyJoins = `
	LEFT JOIN messages r ON r.id = m.reply_to_id LEFT JOIN users ru ON ru.id = r.sender_id `

// MessageFrom joins each message with its sender and its original.
const MessageFrom = ` FROM messages m JOIN users u ON u.id = m.sender_id ` + ReplyJoins

// Message reads: by id, and by (sender, client_id) for a retried send.
const (
	MessageByID       = `SELECT ` + MessageColumns + MessageFrom + `WHERE m.id = $1`
	MessageByClientID = `SELECT ` + MessageColumns + MessageFrom + `WHERE m.sender_id = $1 AND m.client_id = $2`
)

// messageDest receives MessageColumns, NULL for a message that is not
// there (the last message of a conversation without one).
type messageDest struct {
	id, conv, seq, sender, created, edited, deleted sql.NullInt64
	username, displayName, content, clientID        sql.NullString
	mentions                                        sql.NullString
	version, createdVersion, moderated              sql.NullInt64
	reply                                           replyDest
}

// replyDest receives the original's columns: NULL for no reply.
type replyDest struct {
	id, sender, deleted            sql.NullInt64
	username, displayName, preview sql.NullString
}

func (d *messageDest) targets() []any {
	r := &d.reply
	return []any{&d.id, &d.conv, &d.seq, &d.sender, &d.username, &d.displayName,
		&d.content, &d.clientID, &d.created, &d.edited, &d.deleted, &d.mentions, &d.version, &d.createdVersion, &d.moderated,
		&r.id, &r.sender, &r.username, &r.displayName, &r.preview, &r.deleted}
}

// replyTo returns the original read, or nil for none.
func (r *replyDest) replyTo() *chat.ReplyTo {
	if !r.id.Valid {
		return nil
	}
	rt := &chat.ReplyTo{
		ID:             r.id.Int64,
		Sender:         chat.UserLite{ID: r.sender.Int64, Username: r.username.String, DisplayName: r.displayName.String},
		ContentPreview: r.preview.String,
		IsDeleted:      r.deleted.Valid,
	}
	if rt.IsDeleted {
		rt.ContentPreview = ""
	}
	return rt
}

// ReplyColumns are what ScanReply reads: an original (r, its sender ru,
// ReplyOriginal) that a message to store answers, with its conversation,
// for the writer to check.
const ReplyColumns = `r.id, r.conversation_id, r.sender_id, ru.username, ru.display_name, substr(r.content, 1, ` + previewLen + `), r.deleted_at`

// ReplyOriginal joins an original r with its sender ru.
const ReplyOriginal = ` FROM messages r JOIN users ru ON ru.id = r.sender_id `

// ScanReply reads ReplyColumns: the original as a reply shows it, and its
// conversation.
func ScanReply(row Row) (conv int64, rt *chat.ReplyTo, err error) {
	var d replyDest
	var c sql.NullInt64
	if err := row.Scan(&d.id, &c, &d.sender, &d.username, &d.displayName, &d.preview, &d.deleted); err != nil {
		return 0, nil, err
	}
	return c.Int64, d.replyTo(), nil
}

// Mentions is the stored text of a message's mentions, a JSON array, or
// nil (NULL) for none: most messages, which then bind nothing to copy.
func Mentions(ids []int64) *string {
	if len(ids) == 0 {
		return nil
	}
	b, _ := chat.IDs(ids).MarshalJSON()
	s := string(b)
	return &s
}

// parseMentions reads what Mentions stored; nil for none.
func parseMentions(s string) chat.IDs {
	if len(s) <= 2 {
		return nil
	}
	var ids chat.IDs
	for f := range strings.SplitSeq(s[1:len(s)-1], ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// message returns the message read, or nil when the columns were NULL.
func (d *messageDest) message() *chat.Message {
	if !d.id.Valid {
		return nil
	}
	m := &chat.Message{
		ID:             d.id.Int64,
		ConversationID: d.conv.Int64,
		Seq:            d.seq.Int64,
		Sender:         chat.UserLite{ID: d.sender.Int64, Username: d.username.String, DisplayName: d.displayName.String},
		Content:        d.content.String,
		CreatedAt:      chat.UnixMilli(d.created.Int64),
		Version:        d.version.Int64,
		CreatedVersion: d.createdVersion.Int64,
	}
	if d.clientID.Valid {
		m.ClientID = &d.clientID.String
	}
	if d.edited.Valid {
		t := chat.UnixMilli(d.edited.Int64)
		m.EditedAt = &t
	}
	if d.deleted.Valid {
		m.IsDeleted, m.Content = true, ""
		m.RemovedByModerator = d.moderated.Valid
	}
	m.ReplyTo = d.reply.replyTo()
	m.Mentions = parseMentions(d.mentions.String)
	return m
}

// ScanMessage reads MessageColumns.
func ScanMessage(row Row) (chat.Message, error) {
	var d messageDest
	if err := row.Scan(d.targets()...); err != nil {
		return chat.Message{}, err
	}
	return *d.message(), nil
}

// PageQuery returns the query for one page of convID's history and its
// arguments. It reads one row more than q.Limit, which tells PageOf
// whether there is more.
func PageQuery(convID int64, q chat.PageQuery) (string, []any) {
	n := q.Limit + 1
	switch {
	case q.After > 0 || q.FromStart:
		return `SELECT ` + MessageColumns + MessageFrom + `
			WHERE m.conversation_id = $1 AND m.id > $2 ORDER BY m.id ASC LIMIT $3`, []any{convID, q.After, n}
	case q.Before > 0:
		return `SELECT ` + MessageColumns + MessageFrom + `
			WHERE m.conversation_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3`, []any{convID, q.Before, n}
	default:
		return `SELECT ` + MessageColumns + MessageFrom + `
			WHERE m.conversation_id = $1 ORDER BY m.id DESC LIMIT $2`, []any{convID, n}
	}
}

// PageOf makes the page of q from the rows PageQuery read.
func PageOf(msgs []chat.Message, q chat.PageQuery) chat.Page {
	p := chat.Page{HasMore: len(msgs) > q.Limit}
	if p.HasMore {
		msgs = msgs[:q.Limit]
	}
	if q.After == 0 && !q.FromStart { // read newest first: turn into ascending order
		slices.Reverse(msgs)
	}
	p.Results = msgs
	return p
}

// MessagesBySeq returns the query of chat.Store.MessagesBySeq and its
// arguments; ok is false when limit asks for nothing.
func MessagesBySeq(convID, afterSeq, beforeSeq int64, limit int) (query string, args []any, ok bool) {
	if limit <= 0 {
		return "", nil, false
	}
	if beforeSeq <= 0 {
		beforeSeq = math.MaxInt64
	}
	return `SELECT ` + MessageColumns + MessageFrom + `
		WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq LIMIT $4`,
		[]any{convID, afterSeq, beforeSeq, limit}, true
}

// ReadMark is user $2's read position in conversation $1 and their unread
// count.
const ReadMark = `SELECT p.last_read_message_id, ` + unreadCount + `
	FROM participants p JOIN conversations c ON c.id = p.conversation_id
	WHERE p.conversation_id = $1 AND p.user_id = $2`

// MarkRead moves user $3's read mark in conversation $2 forward to message
// $1, and last_read_seq with it, unless sending already took it further:
// to the seq of the newest message at or before $1 (the message itself,
// unless it went with its deleted author).
const MarkRead = `
	UPDATE participants SET last_read_message_id = $1, last_read_seq = CASE
		WHEN coalesce((` + seqAtOrBefore + `), 0) > last_read_seq THEN (` + seqAtOrBefore + `)
		ELSE last_read_seq END
	WHERE conversation_id = $2 AND user_id = $3 AND last_read_message_id < $1`

const seqAtOrBefore = `SELECT m.seq FROM messages m WHERE m.conversation_id = $2 AND m.id <= $1 ORDER BY m.id DESC LIMIT 1`

// ReadOwn moves sender $2's unread position in conversation $1 to seq $3,
// their newest message of a batch just stored: what one sends, one has
// read, so nothing before it counts as unread to them. Their read receipt
// (last_read_message_id) is left to MarkRead: it moves, and is announced,
// only when they say so. ReadOwn runs once per conversation and sender of
// a batch, in its transaction: never a write per member.
const ReadOwn = `
	UPDATE participants SET last_read_seq = $3
	WHERE conversation_id = $1 AND user_id = $2 AND last_read_seq < $3`

// Membership reads the role of user $2 in conversation $1 and whether it
// is a group.
const Membership = `
	SELECT p.role, c.is_group FROM participants p JOIN conversations c ON c.id = p.conversation_id
	WHERE p.conversation_id = $1 AND p.user_id = $2`

// ConversationIDs lists user $1's conversations, most recent activity first.
const ConversationIDs = `
	SELECT c.id FROM participants p JOIN conversations c ON c.id = p.conversation_id
	WHERE p.user_id = $1
	ORDER BY c.updated_at DESC, c.id DESC`

// ParticipantIDs lists the users of conversation $1.
const ParticipantIDs = `SELECT user_id FROM participants WHERE conversation_id = $1 ORDER BY user_id`

// FullText joins search terms (chat.SearchTerms: letters, digits and
// marks only) into one dialect's full-text query: each term between two
// quote characters (a quote inside doubled, so that no term is ever
// syntax), joined by and, the last followed by prefix.
func FullText(terms []string, quote, and, prefix string) string {
	var b strings.Builder
	for i, t := range terms {
		if i > 0 {
			b.WriteString(and)
		}
		b.WriteString(quote)
		b.WriteString(strings.ReplaceAll(t, quote, quote+quote))
		b.WriteString(quote)
	}
	b.WriteString(prefix)
	return b.String()
}

// Versions (see chat.Conversation.Version).
const (
	// TakeVersions hands out the next $1 versions and returns the last
	// of them. In PostgreSQL the row stays locked until the transaction
	// ends, so versions become visible in the order they were taken:
	// every transaction that changes what participants see takes its
	// versions here, as its first lock.
	TakeVersions = `UPDATE feed_clock SET version = version + $1 WHERE id = 1 RETURNING version`
	// CurrentVersion reads the last version handed out.
	CurrentVersion = `SELECT version FROM feed_clock WHERE id = 1`
	// SetConversationVersion records conversation $2's change $1.
	SetConversationVersion = `UPDATE conversations SET version = $1 WHERE id = $2`
	// Departure records that user $1 left (or was removed from)
	// conversation $2 at version $3.
	Departure = `INSERT INTO departures (user_id, conversation_id, version) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, conversation_id) DO UPDATE SET version = excluded.version`
)

// The reads of versions: a conversation's changes (chat.Store.Changes)
// and a user's feed (chat.Store.Feed).
//
// messages_changed indexes only the messages changed since they were
// created (version > created_version): a send, the hot path, writes no
// entry in it. A message never changed is found through messages_seq
// instead: created versions grow with seq in a conversation, so the
// messages created after a version are those past the newest one created
// at or before it (createdAfterIn, createdFromOf), found walking back from the newest.

// createdAfterIn is the seq past which the messages of conversation $1
// were created after version $2; createdFromOf the one past which those
// of conversation c were created at or after version $2.
const (
	createdAfterIn = `coalesce((SELECT x.seq FROM messages x WHERE x.conversation_id = $1 AND x.created_version <= $2
		ORDER BY x.seq DESC LIMIT 1), 0)`
	createdFromOf = `coalesce((SELECT x.seq FROM messages x WHERE x.conversation_id = c.id AND x.created_version < $2
		ORDER BY x.seq DESC LIMIT 1), 0)`
)

// changeKey is where a message stands among the changes after version
// $2: its creation when that came after $2, else its last change.
const changeKey = `(CASE WHEN m.created_version > $2 THEN m.created_version ELSE m.version END)`

// ChangesChanged reads the messages of conversation $1 changed after
// version $2, with their key below $3, ascending by key, at most $4;
// ChangesCreated those created after $2 (changed since or not: a message
// changed between the two reads is in this one), with a created version
// below $3, ascending, at most $4.
const (
	ChangesChanged = `SELECT ` + MessageColumns + MessageFrom + `
	WHERE m.conversation_id = $1 AND m.version > m.created_version AND m.version > $2 AND ` + changeKey + ` < $3
	ORDER BY ` + changeKey + `, m.id
	LIMIT $4`
	ChangesCreated = `SELECT ` + MessageColumns + MessageFrom + `
	WHERE m.conversation_id = $1 AND m.seq > ` + createdAfterIn + `
	  AND m.created_version > $2 AND m.created_version < $3
	ORDER BY m.seq
	LIMIT $4`
)

// FeedConversations reads viewer $1's conversations whose (version, id)
// is past ($2, $3) and whose version is at most $4, ascending, at most
// $5.
const FeedConversations = conversationSelect + `
	WHERE p.user_id = $1 AND (c.version > $2 OR (c.version = $2 AND c.id > $3)) AND c.version <= $4
	ORDER BY c.version, c.id
	LIMIT $5`

// FeedDepartures reads user $1's departures (from conversations they are
// not in now) past ($2, $3) and at most $4, ascending, at most $5.
const FeedDepartures = `
	SELECT d.conversation_id, d.version FROM departures d
	WHERE d.user_id = $1 AND (d.version > $2 OR (d.version = $2 AND d.conversation_id > $3)) AND d.version <= $4
	  AND NOT EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = d.conversation_id AND p.user_id = $1)
	ORDER BY d.version, d.conversation_id
	LIMIT $5`

// FeedMessagesChanged reads the messages of viewer $1's conversations
// changed since they were created, whose (version, id) is past ($2, $3)
// and whose version is at most $4, ascending, at most $5: through each
// conversation's messages_changed. FeedMessagesCreated reads those never
// changed: only in the conversations whose version moved past $2 (every
// change moves it), each from its first message created after $2.
const (
	FeedMessagesChanged = `SELECT ` + MessageColumns + `
	FROM participants p JOIN messages m ON m.conversation_id = p.conversation_id
	JOIN users u ON u.id = m.sender_id ` + ReplyJoins + `
	WHERE p.user_id = $1 AND m.version > m.created_version
	  AND (m.version > $2 OR (m.version = $2 AND m.id > $3)) AND m.version <= $4
	ORDER BY m.version, m.id
	LIMIT $5`
	FeedMessagesCreated = `SELECT ` + MessageColumns + `
	FROM participants p JOIN conversations c ON c.id = p.conversation_id
	JOIN messages m ON m.conversation_id = c.id AND m.seq > ` + createdFromOf + `
	JOIN users u ON u.id = m.sender_id ` + ReplyJoins + `
	WHERE p.user_id = $1 AND c.version >= $2 AND m.version = m.created_version
	  AND (m.version > $2 OR (m.version = $2 AND m.id > $3)) AND m.version <= $4
	ORDER BY m.version, m.id
	LIMIT $5`
)

// FeedConversationsSQLite and FeedMessagesCreatedSQLite are the same
// reads with the order of their loops fixed for SQLite (it keeps the
// order of a CROSS JOIN): from the viewer's participant rows, as
// PostgreSQL plans them by its statistics. SQLite's averages would
// otherwise start from every conversation or message.
var (
	FeedConversationsSQLite   = crossJoins(FeedConversations)
	FeedMessagesCreatedSQLite = crossJoins(FeedMessagesCreated)
)

func crossJoins(q string) string {
	q = strings.Replace(q, "FROM participants p JOIN conversations c", "FROM participants p CROSS JOIN conversations c", 1)
	return strings.Replace(q, "\n\tJOIN messages m ON m.conversation_id = c.id", "\n\tCROSS JOIN messages m ON m.conversation_id = c.id", 1)
}
