package postgres

import (
	"context"
	"fmt"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// sqlSearchCandidates finds the newest matches in message_search
// (migration 00008): $1 the tsquery (tsQuery), $2 the viewer, $3 how
// many, $4 the conversation (0: all of the viewer's), $5 the upper id
// bound (sqlq.SearchBelow). The GIN index finds the matches; ranking and
// snippets are made in Go, as for the SQLite store (sqlq.Reader.Search).
const sqlSearchCandidates = `
	SELECT m.id, m.content
	FROM message_search s
	JOIN messages m ON m.id = s.message_id
	JOIN participants p ON p.conversation_id = m.conversation_id AND p.user_id = $2
	WHERE s.search @@ to_tsquery('confab_search', $1) AND m.deleted_at IS NULL
	  AND ($4::bigint = 0 OR m.conversation_id = $4) AND m.id < $5
	ORDER BY m.id DESC
	LIMIT $3`

// tsQuery makes the to_tsquery text of terms: each quoted, so that
// nothing is tsquery syntax, all of them required (&), the last a prefix
// (:*). Terms hold no backslash (chat.SearchTerms), the one other
// character a quoted tsquery word treats specially.
func tsQuery(terms []string) string { return sqlq.FullText(terms, "'", " & ", ":*") }

// SearchMessages implements chat.Store.
func (s *Store) SearchMessages(ctx context.Context, q chat.SearchQuery) (chat.SearchPage, error) {
	if len(q.Terms) == 0 || q.Limit <= 0 {
		return chat.SearchPage{Hits: []chat.SearchHit{}}, nil
	}
	if err := s.searchReady(ctx); err != nil {
		return chat.SearchPage{}, fmt.Errorf("search messages: %w", err)
	}
	return s.Search(ctx, q, sqlSearchCandidates, tsQuery(q.Terms), q.Viewer, chat.SearchCandidates, q.ConversationID, sqlq.SearchBelow(q))
}
