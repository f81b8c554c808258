package sqlq

import (
	"context"
	"fmt"
	"time"

	"github.com/confab/confab/app/notify"
)

// Push notifications' outbox (migrations db/migrations/00013 and
// db/postgres/migrations/00011): the queries both stores share. Each
// store keeps only its locking: PostgreSQL takes the mark's row FOR
// UPDATE SKIP LOCKED and claims deliveries FOR UPDATE SKIP LOCKED,
// SQLite's single writer needs neither.
const (
	// PushBehind says whether a message is above the push mark.
	PushBehind = `SELECT EXISTS (SELECT 1 FROM messages WHERE id > (SELECT id FROM push_mark))`
	// PushMark reads the mark (SQLite: the write transaction is the lock).
	PushMark = `SELECT id FROM push_mark`
	// PushSetMark moves the mark to $1.
	PushSetMark = `UPDATE push_mark SET id = $1`

	// pushMessages are the first $2 messages above mark $1, in id order,
	// with their sender's name.
	pushMessages = `
	SELECT m.id, m.conversation_id, m.seq, m.sender_id, coalesce(nullif(u.display_name, ''), u.username),
		m.content, coalesce(m.mentions, ''), m.deleted_at IS NOT NULL, m.created_at
	FROM messages m JOIN users u ON u.id = m.sender_id
	WHERE m.id > $1 ORDER BY m.id LIMIT $2`
	// pushBatchConversations are the conversations of the messages in
	// (mark $1, top $2].
	pushBatchConversations = `SELECT DISTINCT conversation_id FROM messages WHERE id > $1 AND id <= $2`
	// pushRecipients are the participants with a device of the
	// conversations of the messages in ($1, $2].
	pushRecipients = `
	SELECT p.conversation_id, p.user_id, coalesce(p.muted_until, 0), p.joined_at
	FROM participants p
	WHERE p.conversation_id IN (` + pushBatchConversations + `)
	  AND EXISTS (SELECT 1 FROM devices d WHERE d.user_id = p.user_id)`
	// pushBlocks are the blocks of the senders of the messages in ($1,
	// $2] by users with a device (sender, blocker): one probe of
	// blocks_blocked per sender, empty for those nobody blocks.
	pushBlocks = `
	SELECT b.blocked_id, b.blocker_id FROM blocks b
	WHERE b.blocked_id IN (SELECT DISTINCT sender_id FROM messages WHERE id > $1 AND id <= $2)
	  AND EXISTS (SELECT 1 FROM devices d WHERE d.user_id = b.blocker_id)`
	// pushUnread is the total unread count (the badge) of each of those
	// participants: one index range of participants_user per user.
	pushUnread = `
	SELECT p.user_id, CAST(sum(` + unreadCount + `) AS BIGINT)
	FROM participants p JOIN conversations c ON c.id = p.conversation_id
	WHERE p.user_id IN (
		SELECT r.user_id FROM participants r
		WHERE r.conversation_id IN (` + pushBatchConversations + `)
		  AND EXISTS (SELECT 1 FROM devices d WHERE d.user_id = r.user_id))
	GROUP BY p.user_id`

	// PushUpsert makes push ($1 user, $2 conversation, $3 message, $4
	// collapse, $5 payload) one pending delivery per device of the user,
	// due at $6, made at $7; a device's pending delivery for the
	// conversation (deliveries_pending) takes the newer message and
	// payload instead, keeping when it is due, its attempts and its age.
	// It returns the platform of each device it made or updated a
	// delivery for (the queued counts).
	PushUpsert = `
	INSERT INTO deliveries (device_id, user_id, conversation_id, message_id, collapse, payload, state, attempts, next_at, created_at, updated_at)
	SELECT d.id, d.user_id, CAST($2 AS BIGINT), CAST($3 AS BIGINT), CAST($4 AS TEXT), CAST($5 AS TEXT), 'pending', 0,
		CAST($6 AS BIGINT), CAST($7 AS BIGINT), CAST($7 AS BIGINT)
	FROM devices d WHERE d.user_id = $1
	ON CONFLICT (device_id, conversation_id) WHERE state = 'pending' DO UPDATE SET
		message_id = excluded.message_id, collapse = excluded.collapse, payload = excluded.payload,
		updated_at = excluded.updated_at
	RETURNING (SELECT v.platform FROM devices v WHERE v.id = deliveries.device_id)`

	// PushPending counts the pending deliveries by platform: a range of
	// deliveries_due.
	PushPending = `
	SELECT d.platform, count(*) FROM deliveries x JOIN devices d ON d.id = x.device_id
	WHERE x.state = 'pending' GROUP BY d.platform`
	// PushPrune deletes up to $2 deliveries done and last changed before
	// $1: a range of deliveries_done (migrations db/migrations/00015 and
	// db/postgres/migrations/00013).
	PushPrune = `
	DELETE FROM deliveries WHERE id IN (
		SELECT id FROM deliveries WHERE state <> 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT $2)`

	// PushFinish records a claimed delivery's outcome: delivery $1,
	// state $2, claimed with message $3, at $4, next due $5, error $6. A
	// delivery sent while a newer message was coalesced into it stays
	// pending, due at once, for that message.
	PushFinish = `
	UPDATE deliveries SET
		state = CASE WHEN CAST($2 AS TEXT) = 'sent' AND message_id <> CAST($3 AS BIGINT) THEN 'pending' ELSE CAST($2 AS TEXT) END,
		next_at = CASE WHEN CAST($2 AS TEXT) = 'sent' AND message_id <> CAST($3 AS BIGINT) THEN CAST($4 AS BIGINT) ELSE CAST($5 AS BIGINT) END,
		last_error = $6, updated_at = CAST($4 AS BIGINT)
	WHERE id = $1 AND state = 'pending'`
	// PushDue says whether a pending delivery is due at $1.
	PushDue = `SELECT EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending' AND next_at <= $1)`
	// PushDropRead deletes the pending deliveries due at $1 that have
	// nothing left to tell: their user has read the conversation up to
	// the message (participants.last_read_seq), or is no longer in it.
	// A claim runs it first, so that PUSH_DELAY's grace holds back the
	// pushes a recipient made needless meanwhile.
	PushDropRead = `
	DELETE FROM deliveries WHERE state = 'pending' AND next_at <= $1 AND NOT EXISTS (
		SELECT 1 FROM participants p JOIN messages m ON m.id = deliveries.message_id
		WHERE p.conversation_id = deliveries.conversation_id AND p.user_id = deliveries.user_id
		  AND p.last_read_seq < m.seq)`
	// PushDrop deletes claimed delivery $1 unless a newer message than
	// its claim's $2 was coalesced into it; PushDueNow then makes such a
	// delivery ($1) due at $2 again, for the newer message.
	PushDrop   = `DELETE FROM deliveries WHERE id = $1 AND state = 'pending' AND message_id = $2`
	PushDueNow = `UPDATE deliveries SET next_at = $2, updated_at = $2 WHERE id = $1 AND state = 'pending'`

	// PushGone marks delivery $1 gone at $2 and PushDeleteDevice deletes
	// its device $1, whose deliveries go with it.
	PushGone         = `UPDATE deliveries SET state = 'gone', last_error = $3, updated_at = $2 WHERE id = $1`
	PushDeleteDevice = `DELETE FROM devices WHERE id = $1`

	// PushDeliveryColumns are what ScanDelivery reads, of deliveries
	// (x) joined with their devices (d).
	PushDeliveryColumns = `x.id, x.conversation_id, x.message_id, x.payload, x.attempts, x.created_at,
		d.id, d.user_id, d.platform, d.token, coalesce(d.p256dh, ''), coalesce(d.auth, '')`
)

// ScanDelivery reads PushDeliveryColumns.
func ScanDelivery(row Row) (notify.Delivery, error) {
	var d notify.Delivery
	var payload string
	var created int64
	err := row.Scan(&d.ID, &d.ConversationID, &d.MessageID, &payload, &d.Attempts, &created,
		&d.Device.ID, &d.Device.UserID, &d.Device.Platform, &d.Device.Token, &d.Device.P256dh, &d.Device.Auth)
	d.Payload, d.CreatedAt = []byte(payload), msTime(created)
	return d, err
}

// ReadPushBatch reads up to limit messages above mark with their
// recipients and the recipients' unread counts, in q (the deciding
// transaction), and returns them with the greatest id read (mark when
// none).
func ReadPushBatch(ctx context.Context, q Querier, mark int64, limit int) (notify.PushBatch, int64, error) {
	b := notify.PushBatch{Unread: map[int64]int{}}
	rows, err := q.Query(ctx, pushMessages, mark, limit)
	if err != nil {
		return b, 0, fmt.Errorf("push messages: %w", err)
	}
	top := mark
	for rows.Next() {
		var m notify.PushMessage
		var mentions string
		var created int64
		if err := rows.Scan(&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.SenderName,
			&m.Content, &mentions, &m.Deleted, &created); err != nil {
			rows.Close()
			return b, 0, fmt.Errorf("push messages: %w", err)
		}
		m.Mentions, m.CreatedAt = parseMentions(mentions), msTime(created)
		b.Messages = append(b.Messages, m)
		top = m.ID
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, 0, fmt.Errorf("push messages: %w", err)
	}
	if len(b.Messages) == 0 {
		return b, mark, nil
	}
	byConv := map[int64][]notify.Recipient{}
	rows, err = q.Query(ctx, pushRecipients, mark, top)
	if err != nil {
		return b, 0, fmt.Errorf("push recipients: %w", err)
	}
	for rows.Next() {
		var conv, joined int64
		var r notify.Recipient
		if err := rows.Scan(&conv, &r.UserID, &r.MutedUntil, &joined); err != nil {
			rows.Close()
			return b, 0, fmt.Errorf("push recipients: %w", err)
		}
		r.JoinedAt = msTime(joined)
		byConv[conv] = append(byConv[conv], r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, 0, fmt.Errorf("push recipients: %w", err)
	}
	if len(byConv) == 0 {
		return b, top, nil // nobody in these conversations has a device
	}
	blockedBy := map[int64][]int64{} // sender → recipients who block them
	rows, err = q.Query(ctx, pushBlocks, mark, top)
	if err != nil {
		return b, 0, fmt.Errorf("push blocks: %w", err)
	}
	for rows.Next() {
		var sender, blocker int64
		if err := rows.Scan(&sender, &blocker); err != nil {
			rows.Close()
			return b, 0, fmt.Errorf("push blocks: %w", err)
		}
		blockedBy[sender] = append(blockedBy[sender], blocker)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, 0, fmt.Errorf("push blocks: %w", err)
	}
	for i := range b.Messages {
		m := &b.Messages[i]
		m.BlockedBy = blockedBy[m.SenderID]
		for _, r := range byConv[m.ConversationID] {
			if r.UserID != m.SenderID {
				m.Recipients = append(m.Recipients, r)
			}
		}
	}
	rows, err = q.Query(ctx, pushUnread, mark, top)
	if err != nil {
		return b, 0, fmt.Errorf("push unread: %w", err)
	}
	for rows.Next() {
		var user, n int64
		if err := rows.Scan(&user, &n); err != nil {
			rows.Close()
			return b, 0, fmt.Errorf("push unread: %w", err)
		}
		b.Unread[user] = int(n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, 0, fmt.Errorf("push unread: %w", err)
	}
	return b, top, nil
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// A user's outbox (GET /api/push/deliveries/), for the console's
// developer panel. Both read the index deliveries_user (user_id, id):
// the user's rows only, newest first for the list.
const (
	// pushUserCounts counts user $1's deliveries by state.
	pushUserCounts = `SELECT state, count(*) FROM deliveries WHERE user_id = $1 GROUP BY state`
	// pushUserLatest are user $1's newest $2 deliveries, with their
	// devices' platforms.
	pushUserLatest = `
	SELECT x.id, x.device_id, d.platform, x.conversation_id, x.message_id, x.state, x.attempts,
		coalesce(x.last_error, ''), x.created_at, x.updated_at, x.next_at
	FROM deliveries x JOIN devices d ON d.id = x.device_id
	WHERE x.user_id = $1 ORDER BY x.id DESC LIMIT $2`
)

// UserDeliveries implements notify.Store.
func (r Reader) UserDeliveries(ctx context.Context, userID int64, limit int) (notify.UserOutbox, error) {
	counts, err := collectMap[string, int](ctx, r.Q, pushUserCounts, userID)
	if err != nil {
		return notify.UserOutbox{}, fmt.Errorf("user deliveries: %w", err)
	}
	latest, err := collect(ctx, r.Q, limit, scanSent, pushUserLatest, userID, limit)
	if err != nil {
		return notify.UserOutbox{}, fmt.Errorf("user deliveries: %w", err)
	}
	return notify.UserOutbox{Counts: counts, Latest: latest}, nil
}

func scanSent(row Row) (notify.Sent, error) {
	var d notify.Sent
	var created, updated, next int64
	err := row.Scan(&d.ID, &d.DeviceID, &d.Platform, &d.ConversationID, &d.MessageID, &d.State, &d.Attempts,
		&d.LastError, &created, &updated, &next)
	d.CreatedAt, d.UpdatedAt, d.NextAt = msTime(created), msTime(updated), msTime(next)
	return d, err
}
