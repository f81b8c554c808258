package postgres

import (
	"context"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// sqlSearch is the message search on messages.search (migration 00007):
// $1 the tsquery (tsQuery), $2 the viewer, $3 a conversation or 0 for all
// of the viewer's, $4 the limit, $5 the offset. ts_rank is larger for a
// better match. ts_headline runs on the rows of the page only (it parses
// the content again), with the markers of chat.SnippetStart/SnippetEnd and
// about as many words as SQLite's snippet.
const sqlSearch = `
	WITH q AS (SELECT to_tsquery('confab_search', $1) AS q)
	SELECT ` + sqlq.MessageColumns + `,
		ts_headline('confab_search', m.content, q.q,
			'StartSel=' || chr(2) || ', StopSel=' || chr(3) || ', MaxWords=16, MinWords=6, ShortWord=0, MaxFragments=1, FragmentDelimiter=…')
	FROM (
		SELECT m.id, ts_rank(m.search, q.q) AS rank
		FROM q, messages m
		JOIN participants p ON p.conversation_id = m.conversation_id AND p.user_id = $2
		WHERE m.search @@ q.q AND m.deleted_at IS NULL AND ($3::bigint = 0 OR m.conversation_id = $3)
		ORDER BY rank DESC, m.id DESC
		LIMIT $4 OFFSET $5
	) hit
	CROSS JOIN q
	JOIN messages m ON m.id = hit.id
	JOIN users u ON u.id = m.sender_id ` + sqlq.ReplyJoins + `
	ORDER BY hit.rank DESC, m.id DESC`

// tsQuery makes the to_tsquery text of terms: each quoted, so that
// nothing is tsquery syntax, all of them required (&), the last a prefix
// (:*). Terms hold no backslash (chat.SearchTerms), the one other
// character a quoted tsquery word treats specially.
func tsQuery(terms []string) string { return sqlq.FullText(terms, "'", " & ", ":*") }

// SearchMessages implements chat.Store.
func (s *Store) SearchMessages(ctx context.Context, q chat.SearchQuery) ([]chat.SearchHit, error) {
	if len(q.Terms) == 0 || q.Limit <= 0 {
		return []chat.SearchHit{}, nil
	}
	return s.SearchHits(ctx, q.Limit, sqlSearch, tsQuery(q.Terms), q.Viewer, q.ConversationID, q.Limit, q.Offset)
}
