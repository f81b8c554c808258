package sqlq

import "github.com/confab/confab/app/chat"

// Reactions (see chat.Reaction), in both dialects.
const (
	// ReactionMessage reads message $1's conversation and whether it is
	// deleted, for a reaction to it.
	ReactionMessage = `SELECT conversation_id, deleted_at IS NOT NULL FROM messages WHERE id = $1`
	// ReactionEmojis counts the distinct emoji of message $1's reactions,
	// and the reactions with emoji $2: whether $2 would be a new one.
	ReactionEmojis = `SELECT count(DISTINCT emoji), coalesce(sum(CASE WHEN emoji = $2 THEN 1 ELSE 0 END), 0)
		FROM reactions WHERE message_id = $1`
	// AddReaction stores user $3's reaction $2 to message $1 at $4;
	// nothing when it is there already.
	AddReaction = `INSERT INTO reactions (message_id, emoji, user_id, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (message_id, emoji, user_id) DO NOTHING`
	// RemoveReaction removes user $3's reaction $2 to message $1.
	RemoveReaction = `DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3`
	// ReactionCount counts message $1's reactions with emoji $2.
	ReactionCount = `SELECT count(*) FROM reactions WHERE message_id = $1 AND emoji = $2`
	// ClearReactions removes every reaction to message $1 (a tombstone
	// keeps none).
	ClearReactions = `DELETE FROM reactions WHERE message_id = $1`
)

// ReactionsOf reads the reactions of the messages that ids selects
// (SQLite: an IN list; PostgreSQL: = ANY), with whether user $1 is among
// each emoji's: one row per message and emoji, a message's emoji in order
// of first use (then by emoji, for two in the same millisecond), which
// ScanReactions groups.
func ReactionsOf(ids string) string {
	return `SELECT message_id, emoji, count(*), max(CASE WHEN user_id = $1 THEN 1 ELSE 0 END), min(created_at) AS first_at
		FROM reactions WHERE message_id ` + ids + `
		GROUP BY message_id, emoji
		ORDER BY message_id, first_at, emoji`
}

// ScanReactions adds the rows of a ReactionsOf query to out, by message;
// Me is set only when viewer is not 0.
func ScanReactions(rows Rows, viewer int64, out map[int64]chat.Reactions) error {
	for rows.Next() {
		var (
			id, firstAt int64
			r           chat.Reaction
			me          int64
		)
		if err := rows.Scan(&id, &r.Emoji, &r.Count, &me, &firstAt); err != nil {
			return err
		}
		if viewer != 0 {
			m := me != 0
			r.Me = &m
		}
		out[id] = append(out[id], r)
	}
	return rows.Err()
}
