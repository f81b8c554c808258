package sqlq

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/confab/confab/app/chat"
)

// Blocks (migrations db/migrations/00016 and db/postgres/migrations/00014):
// the statements both stores share. Block and Unblock are each store's
// own transaction around them.
const (
	// UserExists says whether user $1 exists.
	UserExists = `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`
	// BlockExists says whether $1 blocks $2.
	BlockExists = `SELECT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = $2)`
	// BlockInsert makes $1 block $2 at $3; a block already there stays
	// as it was (no row changed).
	BlockInsert = `INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (blocker_id, blocked_id) DO NOTHING`
	// BlockDelete takes $1's block of $2 back.
	BlockDelete = `DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2`

	// BlockedUsers are the users $1 blocks, the most recent block first.
	BlockedUsers = `SELECT u.id, u.username, u.display_name, u.created_at
		FROM blocks b JOIN users u ON u.id = b.blocked_id
		WHERE b.blocker_id = $1 ORDER BY b.created_at DESC, b.blocked_id DESC`
	// BlockedIDs are the ids of the users $1 blocks.
	BlockedIDs = `SELECT blocked_id FROM blocks WHERE blocker_id = $1 ORDER BY blocked_id`

	// DirectBlocked is the send's check, a column of the statement that
	// checks the sender p is a participant of conversation c: true when
	// c is a direct conversation whose other participant blocks p. A
	// group costs nothing more; a direct conversation one probe of
	// blocks_blocked, which finds nothing for a sender nobody blocks,
	// and a participant lookup for each user who does. (Written as a
	// join of participants and blocks, SQLite read the conversation's
	// participants first and probed blocks for each.)
	DirectBlocked = `CASE WHEN c.is_group THEN false ELSE EXISTS (
			SELECT 1 FROM blocks b WHERE b.blocked_id = p.user_id
			AND EXISTS (SELECT 1 FROM participants o WHERE o.conversation_id = p.conversation_id AND o.user_id = b.blocker_id)) END`
)

// BlockersAmong reads those of users $2…$n+1 who block $1. A
// conversation has at most a thousand participants: one placeholder
// each, the same text on both databases.
func BlockersAmong(n int) string {
	var q strings.Builder
	q.WriteString(`SELECT blocker_id FROM blocks WHERE blocked_id = $1 AND blocker_id IN (`)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("$" + strconv.Itoa(i+2))
	}
	q.WriteString(") ORDER BY blocker_id")
	return q.String()
}

// BlockedUsers implements chat.Store.
func (r Reader) BlockedUsers(ctx context.Context, blocker int64) ([]chat.User, error) {
	users, err := collect(ctx, r.Q, 0, func(row Row) (chat.User, error) { return ScanUser(row) }, BlockedUsers, blocker)
	if err != nil {
		return nil, fmt.Errorf("blocked users: %w", err)
	}
	return users, nil
}

// BlockedIDs implements chat.Store.
func (r Reader) BlockedIDs(ctx context.Context, blocker int64) ([]int64, error) {
	ids, err := collect(ctx, r.Q, 0, ScanID, BlockedIDs, blocker)
	if err != nil {
		return nil, fmt.Errorf("blocked ids: %w", err)
	}
	return ids, nil
}

// BlockersAmong implements chat.Store.
func (r Reader) BlockersAmong(ctx context.Context, blocked int64, users []int64) ([]int64, error) {
	if len(users) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+len(users))
	args = append(args, blocked)
	for _, id := range users {
		args = append(args, id)
	}
	ids, err := collect(ctx, r.Q, 0, ScanID, BlockersAmong(len(users)), args...)
	if err != nil {
		return nil, fmt.Errorf("blockers among: %w", err)
	}
	return ids, nil
}
