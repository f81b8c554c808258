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
// its FTS5 query (their words, convWord), so that the index itself keeps
// only the viewer's messages: the lists of a few conversations are short,
// and FTS5 skips through a common word's to meet them. A viewer in more
// conversations sees a large share of all messages; the search then
// walks the word's matches newest first and keeps the viewer's, which
// soon reach chat.SearchCandidates.
const maxFilteredConversations = 200

// fewConversations is how many conversations a search names in its
// query, at most, without first walking a question's matches in every
// conversation (searchCandidates): FTS5 steps through a few lists cheaply.
const fewConversations = 16

// sqlSearchCandidates finds the newest matches on messages_fts
// (migration 00010): $1 the FTS5 query (ftsQuery), $2 the viewer, $3 how
// many, $4 the upper id bound (sqlq.SearchBelow). FTS5 walks its index
// by rowid, newest first, and stops there: neither bm25() nor snippet()
// runs in SQL, as both read more of the index than the page needs (bm25
// counts every message with each word, to weigh it); the ranking and the
// snippet are made in Go from the content (chat.SearchText).
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

// convWord is the index's word for conversation id (migration 00010):
// U+E000, which no search term holds, then the id.
func convWord(id int64) string { return "\uE000" + strconv.FormatInt(id, 10) }

// ftsQuery makes the FTS5 query of terms: each a quoted string (so that
// nothing in it is FTS5 syntax: AND, NEAR, *, -, column filters), all of
// them required, the last a prefix when prefix is set. With convs, only
// messages of those conversations match; with no terms, every message of
// theirs does.
func ftsQuery(terms []string, prefix bool, convs []int64) string {
	var b strings.Builder
	if len(convs) > 0 {
		b.WriteString("(")
		for i, c := range convs {
			if i > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString(`"` + convWord(c) + `"`)
		}
		b.WriteString(")")
		if len(terms) == 0 {
			return b.String()
		}
		b.WriteString(" AND ")
	}
	star := ""
	if prefix {
		star = "*"
	}
	b.WriteString("(" + sqlq.FullText(terms, `"`, " ", star) + ")")
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

// prefixIndexed is the longest prefix messages_fts keeps an index of
// (prefix = '2 3', migration 00010). FTS5 reads a prefix of two or three
// characters from its index as it reads a word, newest first, and stops
// at the LIMIT; any other prefix it first merges every word's list that
// starts with it, in memory, whole: "coffee"* read all of coffee's
// matches in the million messages of docs/performance.md before the
// first row, when the newest 300 are all a search needs.
const prefixIndexed = 3

// prefixScanned is how many rows a search reads, at most, of a question
// whose last word it checks in Go (the rows of a longer last word's
// indexed prefix, or of the question without a last word of one
// character), before it asks the whole question instead: FTS5 merges a
// longer prefix's lists whole (10 ms for coffee's in a million
// messages), so reading a few thousand rows first is cheaper even when
// most words that share the first three letters are not the one asked.
const prefixScanned = 12 * chat.SearchCandidates

// everywhereScanned is how many rows a question of several words reads
// at most, in every conversation, before it names the viewer's
// (searchCandidates): more than such a question commonly has, and few
// enough that reading them costs little when it has more.
const everywhereScanned = 2 * chat.SearchCandidates

// recentScanned is how many of all messages, newest first, a search of
// one character alone reads, at most, for a viewer in more
// conversations than a query names (maxFilteredConversations): they are
// a large share of all messages.
const recentScanned = 4 * prefixScanned

// sqlSearchScan reads the matches of FTS5 query $1 below $4, newest
// first, $3 of them, whether viewer $2 may find them or not: the id, the
// content, and whether they may.
const sqlSearchScan = `
	SELECT m.id, m.content, m.deleted_at IS NULL AND p.user_id IS NOT NULL
	FROM messages_fts f
	JOIN messages m ON m.id = f.rowid
	LEFT JOIN participants p ON p.conversation_id = m.conversation_id AND p.user_id = $2
	WHERE messages_fts MATCH $1 AND f.rowid < $4
	ORDER BY f.rowid DESC
	LIMIT $3`

// sqlRecentMessages is sqlSearchScan of every message: $1 the viewer, $2
// how many, $3 the bound.
const sqlRecentMessages = `
	SELECT m.id, m.content, m.deleted_at IS NULL AND p.user_id IS NOT NULL
	FROM messages m
	LEFT JOIN participants p ON p.conversation_id = m.conversation_id AND p.user_id = $1
	WHERE m.id < $3
	ORDER BY m.id DESC
	LIMIT $2`

// searchCandidates reads the window's matches, newest first, asking the
// cheapest question that finds them first:
//
//   - A question of several words has few matches, commonly: for a
//     viewer in more than fewConversations, the search first walks them
//     all, in every conversation, and keeps the viewer's, reading at
//     most everywhereScanned; naming that many conversations in the
//     query makes FTS5 step through all of their lists at every match.
//   - A last term of ASCII letters and digits (which FTS5 and
//     chat.FoldWord fold alike) whose length has no prefix index is
//     searched without it: a longer one by its indexed prefix, one of a
//     single character by the question's other words (or the viewer's
//     newest messages, when it is the only one); the rows with no word
//     starting with it are left out in Go (chat.SearchText.Matches).
//
// Each term is one word of the index (TestSearchTermsAreIndexWords).
func (s *Store) searchCandidates(ctx context.Context, q chat.SearchQuery, convs []int64) ([]chat.SearchCandidate, error) {
	below := sqlq.SearchBelow(q)
	head, last := q.Terms[:len(q.Terms)-1], q.Terms[len(q.Terms)-1]
	terms, prefix, match := q.Terms, true, func(string) bool { return true }
	reduced := ascii(last) && (len(last) == 1 || len(last) > prefixIndexed)
	if reduced {
		match = chat.NewSearchText([]string{last}).Matches
		if len(last) == 1 {
			terms, prefix = head, false
		} else {
			terms = append(slices.Clone(head), strings.ToLower(last[:prefixIndexed]))
		}
	}
	if len(convs) > fewConversations && len(q.Terms) > 1 {
		cands, complete, err := s.scan(ctx, match, everywhereScanned, sqlSearchScan, ftsQuery(terms, prefix, nil), q.Viewer, everywhereScanned, below)
		if err != nil || complete {
			return cands, err
		}
	}
	if reduced {
		var cands []chat.SearchCandidate
		var complete bool
		var err error
		if len(terms) == 0 && len(convs) == 0 {
			cands, complete, err = s.scan(ctx, match, recentScanned, sqlRecentMessages, q.Viewer, recentScanned, below)
		} else {
			cands, complete, err = s.scan(ctx, match, prefixScanned, sqlSearchScan, ftsQuery(terms, prefix, convs), q.Viewer, prefixScanned, below)
		}
		if err != nil || complete {
			return cands, err
		}
	}
	rows, err := s.Q.Query(ctx, sqlSearchCandidates, ftsQuery(q.Terms, true, convs), q.Viewer, chat.SearchCandidates, below)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlq.Collect(rows, chat.SearchCandidates, sqlq.ScanCandidate)
}

// scan runs query with args, which reads rows of (id, content, whether
// the viewer may find it) newest first, at most limit of them, and keeps
// the rows the viewer may find whose content matches, up to
// chat.SearchCandidates. complete reports that they are the window's
// matches: enough were kept, or the query had no more rows.
func (s *Store) scan(ctx context.Context, match func(string) bool, limit int, query string, args ...any) (cands []chat.SearchCandidate, complete bool, err error) {
	rows, err := s.Q.Query(ctx, query, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	scanned := 0
	for rows.Next() {
		scanned++
		var c chat.SearchCandidate
		var visible bool
		if err := rows.Scan(&c.ID, &c.Content, &visible); err != nil {
			return nil, false, err
		}
		if visible && match(c.Content) {
			if cands = append(cands, c); len(cands) == chat.SearchCandidates {
				return cands, true, nil
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	return cands, scanned < limit, nil
}

// ascii reports whether term is only ASCII letters and digits.
func ascii(term string) bool {
	for i := 0; i < len(term); i++ {
		if c := term[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
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
