package db

import (
	"context"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// sqlSearch is the message search on messages_fts (migration 00009): $1 the
// FTS5 query (ftsQuery), $2 the viewer, $3 a conversation or 0 for all of
// the viewer's, $4 the limit, $5 the offset. bm25() is smaller for a better
// match; the snippet is at most 16 tokens around the matches.
const sqlSearch = `
	SELECT ` + sqlq.MessageColumns + `,
		snippet(messages_fts, 0, char(2), char(3), '…', 16)
	FROM messages_fts
	JOIN messages m ON m.id = messages_fts.rowid
	JOIN participants p ON p.conversation_id = m.conversation_id AND p.user_id = $2
	JOIN users u ON u.id = m.sender_id ` + sqlq.ReplyJoins + `
	WHERE messages_fts MATCH $1 AND m.deleted_at IS NULL AND ($3 = 0 OR m.conversation_id = $3)
	ORDER BY bm25(messages_fts), m.id DESC
	LIMIT $4 OFFSET $5`

// ftsQuery makes the FTS5 query of terms: each a quoted string (so that
// nothing in it is FTS5 syntax: AND, NEAR, *, -, column filters), all of
// them required, the last a prefix.
func ftsQuery(terms []string) string { return sqlq.FullText(terms, `"`, " ", "*") }

// SearchMessages implements chat.Store.
func (s *Store) SearchMessages(ctx context.Context, q chat.SearchQuery) ([]chat.SearchHit, error) {
	if len(q.Terms) == 0 || q.Limit <= 0 {
		return []chat.SearchHit{}, nil
	}
	return s.SearchHits(ctx, q.Limit, sqlSearch, ftsQuery(q.Terms), q.Viewer, q.ConversationID, q.Limit, q.Offset)
}
