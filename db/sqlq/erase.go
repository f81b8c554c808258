package sqlq

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/confab/confab/app/chat"
)

// Deleting an account (chat.Store.DeleteUser, EraseMessages,
// FinishErasure): the SQL both stores run, in this order, in their own
// transactions. docs/operations.md ("Deleted accounts") lists what is
// erased and what remains; keep it in step with these statements.

// DeletedName is what a deleted account's username and display name
// become: with a space, never a valid username.
const DeletedName = chat.DeletedName

// EraseProfile turns live account $1 into its tombstone at $2: the
// profile erased, the password unusable, every token refused (the epoch
// moves on), and the username kept in username_key until $3, or freed at
// once when $3 is not after $2. No row when there is no such live account.
const EraseProfile = `UPDATE users SET username = '` + DeletedName + `', display_name = '` + DeletedName + `', display_key = '',
		username_key = CASE WHEN CAST($3 AS BIGINT) > CAST($2 AS BIGINT) THEN username_key ELSE '#' || id END,
		password_hash = '', token_epoch = token_epoch + 1, kept_session = '',
		deleted_at = CAST($2 AS BIGINT), reserved_until = CAST($3 AS BIGINT)
	WHERE id = $1 AND deleted_at IS NULL
	RETURNING id`

// LeaveAll takes user $1 out of every conversation, counting one member
// fewer in each and giving each change version $2; run before
// AccountErasures (which removes the participant rows).
const LeaveAll = `UPDATE conversations SET member_count = member_count - 1, version = $2
	WHERE id IN (SELECT conversation_id FROM participants WHERE user_id = $1)`

// ReleaseUnsent releases at $2 the blobs of the uploads of user $1 that
// no message carries, and DropUnsent removes those uploads: the files go
// once the grace period has passed. Uploads that messages carry go as
// those messages are tombstoned (EraseMessages).
var (
	ReleaseUnsent = ReleaseBlobsOf(`owner_id = $1 AND message_id IS NULL`)
	DropUnsent    = `DELETE FROM uploads WHERE owner_id = $1 AND message_id IS NULL`
)

// AccountErasures are the rows of user $1 that go with the account, in
// the transaction that makes it a tombstone: logins (every refresh
// chain), devices (and their pending pushes, by cascade), memberships
// (with their read marks and mutes), departures and the reports they
// made (reports of them and of their messages stay for staff; the audit
// log keeps what staff did, with the names of the time).
// The blocks the user made go, and those that name them, which no
// longer block anyone who can act.
var AccountErasures = []string{
	`DELETE FROM refresh_tokens WHERE user_id = $1`,
	`DELETE FROM devices WHERE user_id = $1`,
	`DELETE FROM participants WHERE user_id = $1`,
	`DELETE FROM departures WHERE user_id = $1`,
	`DELETE FROM reports WHERE reporter_id = $1`,
	`DELETE FROM blocks WHERE blocker_id = $1`,
	`DELETE FROM blocks WHERE blocked_id = $1`,
}

// ReleaseUsernames frees, at $1, the usernames whose reservation has
// ended: their tombstones' username_key becomes '#' and the id.
const ReleaseUsernames = `UPDATE users SET username_key = '#' || id
	WHERE deleted_at IS NOT NULL AND reserved_until <= $1 AND username_key NOT LIKE '#%'`

// UsernamesToRelease counts the reservations ReleaseUsernames would end
// at $1.
const UsernamesToRelease = `SELECT count(*) FROM users
	WHERE deleted_at IS NOT NULL AND reserved_until <= $1 AND username_key NOT LIKE '#%'`

// ReservedUsername reads the tombstone that holds username_key $1:
// its id and until when it is reserved.
const ReservedUsername = `SELECT id, deleted_at IS NOT NULL, coalesce(reserved_until, 0) FROM users WHERE username_key = $1`

// FreeUsername releases tombstone $1's username_key.
const FreeUsername = `UPDATE users SET username_key = '#' || id WHERE id = $1 AND deleted_at IS NOT NULL`

// PendingErasures lists the deleted accounts whose messages are not all
// tombstoned yet.
const PendingErasures = `SELECT id FROM users WHERE deleted_at IS NOT NULL AND erased_at IS NULL ORDER BY id`

// SentIDs lists the ids of user $1's messages, oldest first; LiveSentIDs
// only those not deleted yet. Read through messages_client_id, whose key
// leads with sender_id.
const (
	SentIDs     = `SELECT id FROM messages WHERE sender_id = $1 ORDER BY id`
	LiveSentIDs = `SELECT id FROM messages WHERE sender_id = $1 AND deleted_at IS NULL ORDER BY id`
)

// IDList is ids as a literal SQL list ("1,2,3"): integers the store read
// itself, so nothing to escape, and one text for both dialects.
func IDList(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// EraseConversations reads the version of each conversation of the
// messages in list, before they are tombstoned.
func EraseConversations(list string) string {
	return `SELECT id, version FROM conversations
		WHERE id IN (SELECT conversation_id FROM messages WHERE id IN (` + list + `))`
}

// EraseMessages tombstones, at $2, the messages in list that user $1 sent
// and that are not deleted yet: content and mentions erased, and the nth
// of them (by id) takes version $3 + n.
func EraseMessages(list string) string {
	return `WITH b AS (
			SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM messages
			WHERE id IN (` + list + `) AND sender_id = $1 AND deleted_at IS NULL)
		UPDATE messages SET content = '', mentions = NULL, deleted_at = $2, version = $3 + b.n
		FROM b WHERE messages.id = b.id`
}

// ErasedMessages reads back the messages in list whose version is above
// $1 (those EraseMessages just tombstoned), in version order.
func ErasedMessages(list string) string {
	return `SELECT ` + MessageColumns + MessageFrom + `WHERE m.id IN (` + list + `) AND m.version > $1 ORDER BY m.version`
}

// MessagesIn reads the messages in list, by id.
func MessagesIn(list string) string {
	return `SELECT ` + MessageColumns + MessageFrom + `WHERE m.id IN (` + list + `) ORDER BY m.id`
}

// EraseDetails drop what the tombstoned messages in list carried: their
// reactions, then their attachments, whose blobs are released at $1
// first (release), so that their files stay for the grace period.
func EraseDetails(list string) (reactions, release, uploads string) {
	return `DELETE FROM reactions WHERE message_id IN (` + list + `)`,
		`UPDATE blobs SET updated_at = $1 WHERE sha256 IN (SELECT sha256 FROM uploads WHERE message_id IN (` + list + `))`,
		`DELETE FROM uploads WHERE message_id IN (` + list + `)`
}

// FinishErasure marks user $1's erasure done at $2, when none of their
// messages is left with content.
const FinishErasure = `UPDATE users SET erased_at = $2
	WHERE id = $1 AND deleted_at IS NOT NULL AND erased_at IS NULL
	  AND NOT EXISTS (SELECT 1 FROM messages WHERE sender_id = $1 AND deleted_at IS NULL)`

// Erased reads whether user $1's erasure is done.
const Erased = `SELECT erased_at IS NOT NULL FROM users WHERE id = $1`

// DropDeliveries removes the pushes about user $1's messages, sent or
// not: their payloads may quote the content.
const DropDeliveries = `DELETE FROM deliveries WHERE message_id IN (SELECT id FROM messages WHERE sender_id = $1)`

// PrevVersions sets the PrevVersion of each of msgs (in version order)
// from the versions their conversations had before (before, by id), and
// returns each conversation's new version.
func PrevVersions(msgs []chat.Message, before map[int64]int64) map[int64]int64 {
	last := make(map[int64]int64, len(before))
	for id, v := range before {
		last[id] = v
	}
	for i := range msgs {
		m := &msgs[i]
		m.PrevVersion = last[m.ConversationID]
		last[m.ConversationID] = m.Version
	}
	return last
}

// PendingErasures implements chat.Store.
func (r Reader) PendingErasures(ctx context.Context) ([]int64, error) {
	ids, err := collect(ctx, r.Q, 0, ScanID, PendingErasures)
	if err != nil {
		return nil, fmt.Errorf("pending erasures: %w", err)
	}
	return ids, nil
}

// SentMessageIDs implements chat.Store.
func (r Reader) SentMessageIDs(ctx context.Context, userID int64, liveOnly bool) ([]int64, error) {
	q := SentIDs
	if liveOnly {
		q = LiveSentIDs
	}
	ids, err := collect(ctx, r.Q, 0, ScanID, q, userID)
	if err != nil {
		return nil, fmt.Errorf("sent message ids: %w", err)
	}
	return ids, nil
}

// MessagesByIDs implements chat.Store.
func (r Reader) MessagesByIDs(ctx context.Context, ids []int64) ([]chat.Message, error) {
	if len(ids) == 0 {
		return []chat.Message{}, nil
	}
	msgs, err := collect(ctx, r.Q, len(ids), ScanMessage, MessagesIn(IDList(ids)))
	if err != nil {
		return nil, fmt.Errorf("messages by ids: %w", err)
	}
	return msgs, nil
}
