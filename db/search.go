package db

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// maxFilteredConversations is how many conversations a search names in
// its FTS5 query (conversation_id : (…)), so that the index itself keeps
// only the viewer's messages: the doclists of a few conversations are
// short, and FTS5 skips through a common word's to meet them. A viewer in
// more conversations sees a large share of all messages; the search then
// walks the word's matches newest first and keeps the viewer's, which
// soon reach chat.SearchCandidates.
const maxFilteredConversations = 200

// sqlSearchCandidates finds the newest matches on messages_fts
// (migration 00009): $1 the FTS5 query (ftsQuery), $2 the viewer, $3 how
// many, $4 the upper id bound (sqlq.SearchBelow). FTS5 walks its index by rowid, newest first, and stops there:
// neither bm25() nor snippet() runs in SQL, as both read more of the
// index than the page needs (bm25 counts every message with each word,
// to weigh it); the ranking and the snippet are made in Go from the
// content (chat.SearchText).
const sqlSearchCandidates = `
	SELECT m.id, m.content
	FROM messages_fts f
	JOIN messages m ON m.id = f.rowid
	JOIN participants p ON p.conversation_id = m.conversation_id AND p.user_id = $2
	WHERE messages_fts MATCH $1 AND f.rowid < $4 AND m.deleted_at IS NULL
	ORDER BY f.rowid DESC
	LIMIT $3`

// sqlViewerConversations lists the conversations a search may name, one
// more than it names at most: then it names none.
const sqlViewerConversations = `SELECT conversation_id FROM participants WHERE user_id = ? LIMIT ?`

// ftsQuery makes the FTS5 query of terms in the content column: each a
// quoted string (so that nothing in it is FTS5 syntax: AND, NEAR, *, -,
// column filters), all of them required, the last a prefix. With convs,
// only messages of those conversations match.
func ftsQuery(terms []string, convs []int64) string {
	q := "{content} : (" + sqlq.FullText(terms, `"`, " ", "*") + ")"
	if len(convs) == 0 {
		return q
	}
	var b strings.Builder
	b.WriteString("{conversation_id} : (")
	for i, c := range convs {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('"')
		b.WriteString(strconv.FormatInt(c, 10))
		b.WriteByte('"')
	}
	b.WriteString(") AND ")
	b.WriteString(q)
	return b.String()
}

// SearchMessages implements chat.Store.
func (s *Store) SearchMessages(ctx context.Context, q chat.SearchQuery) (chat.SearchPage, error) {
	none := chat.SearchPage{Hits: []chat.SearchHit{}}
	if len(q.Terms) == 0 || q.Limit <= 0 {
		return none, nil
	}
	// What was sent before this search is found by it: the index first
	// takes in the messages it has not yet.
	if err := s.searchReady(ctx); err != nil {
		return chat.SearchPage{}, fmt.Errorf("search messages: %w", err)
	}
	convs := []int64{q.ConversationID}
	if q.ConversationID == 0 {
		var err error
		convs, err = s.viewerConversations(ctx, q.Viewer)
		if err != nil {
			return chat.SearchPage{}, err
		}
		if len(convs) == 0 {
			return none, nil
		}
		if len(convs) > maxFilteredConversations {
			convs = nil
		}
	}
	cands, err := s.searchCandidates(ctx, q, convs)
	if err != nil {
		return chat.SearchPage{}, fmt.Errorf("search messages: %w", err)
	}
	return s.SearchPage(ctx, q, cands)
}

// prefixIndexed is the prefix length messages_fts keeps an index of
// (prefix = '3', migration 00009). FTS5 reads a prefix of that length
// from its index as it reads a word, newest first, and stops at the
// LIMIT; any other prefix it first merges every word's list that starts
// with it, in memory, whole: "coffee"* read all of coffee's 130,000
// matches in the million messages of docs/performance.md before the
// first row, 10 ms, when the newest 300 are all a search needs. (A last
// word of one or two characters still costs that: an index of two-letter
// prefixes too cost the indexer more than it allows.)
const prefixIndexed = 3

// prefixScanned is how many rows a search on the indexed prefix of a
// longer last word reads, at most, to keep chat.SearchCandidates whose
// word really starts with the whole of it; when the prefix is that much
// commoner than the word, the search asks FTS5 for the word's prefix
// itself.
const prefixScanned = 5 * chat.SearchCandidates

// searchCandidates reads the window's matches, newest first. A last term
// longer than prefixIndexed (of ASCII letters and digits, which FTS5 and
// chat.FoldWord fold alike) is first searched by its indexed prefix, and
// the rows whose content has no word starting with the whole term are
// left out (chat.SearchText.Matches).
func (s *Store) searchCandidates(ctx context.Context, q chat.SearchQuery, convs []int64) ([]chat.SearchCandidate, error) {
	below := sqlq.SearchBelow(q)
	last := q.Terms[len(q.Terms)-1]
	if short, ok := indexedPrefix(last); ok {
		terms := append(slices.Clone(q.Terms[:len(q.Terms)-1]), short)
		rows, err := s.Q.Query(ctx, sqlSearchCandidates, ftsQuery(terms, convs), q.Viewer, prefixScanned, below)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		word := chat.NewSearchText([]string{last})
		var cands []chat.SearchCandidate
		scanned := 0
		for rows.Next() {
			scanned++
			c, err := sqlq.ScanCandidate(rows)
			if err != nil {
				return nil, err
			}
			if word.Matches(c.Content) {
				if cands = append(cands, c); len(cands) == chat.SearchCandidates {
					return cands, nil
				}
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if scanned < prefixScanned {
			return cands, nil // every match of the prefix was read
		}
		rows.Close()
	}
	rows, err := s.Q.Query(ctx, sqlSearchCandidates, ftsQuery(q.Terms, convs), q.Viewer, chat.SearchCandidates, below)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlq.Collect(rows, chat.SearchCandidates, sqlq.ScanCandidate)
}

// indexedPrefix is the first prefixIndexed characters of term, folded,
// when term is longer and only ASCII letters and digits.
func indexedPrefix(term string) (string, bool) {
	if len(term) <= prefixIndexed {
		return "", false
	}
	for i := 0; i < len(term); i++ {
		if c := term[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return "", false
		}
	}
	return strings.ToLower(term[:prefixIndexed]), true
}

// viewerConversations returns up to maxFilteredConversations+1 of the
// conversations viewer is in.
func (s *Store) viewerConversations(ctx context.Context, viewer int64) ([]int64, error) {
	rows, err := s.read.QueryContext(ctx, sqlViewerConversations, viewer, maxFilteredConversations+1)
	if err != nil {
		return nil, fmt.Errorf("search messages: %w", err)
	}
	defer rows.Close()
	var convs []int64
	for rows.Next() {
		var c int64
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("search messages: %w", err)
		}
		convs = append(convs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search messages: %w", err)
	}
	return convs, nil
}
