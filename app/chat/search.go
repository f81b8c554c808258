package chat

import (
	"context"
	"fmt"
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Message search: page sizes, the longest question, and the markers.
const (
	DefaultSearchPageSize = 20
	MaxSearchPageSize     = 50
	MaxSearchLength       = 200 // characters of q
	// SearchCandidates is how many matching messages a search ranks at
	// once, a window of recency: relevance is computed for the newest
	// this many, not for every message that has the words, so that a
	// common word costs the same in a year of history as in a week. When
	// their pages are used up, the next pages rank the next this many
	// older matches, and so on until none is left.
	SearchCandidates = 300
)

// SnippetStart and SnippetEnd are what a store puts around each matched
// word of a snippet: control characters, so that Service.SearchMessages
// can HTML-escape everything else before it turns them into <b> and </b>.
const (
	SnippetStart = "\x02"
	SnippetEnd   = "\x03"
)

// SearchQuery is one page of a message search, as a store runs it.
type SearchQuery struct {
	// Viewer is who searches: only conversations Viewer is in are searched.
	Viewer int64
	// Terms are the words of the question (SearchTerms), never empty: a
	// message matches when it has every term, the last as a prefix.
	Terms []string
	// ConversationID, when not zero, searches that conversation only.
	ConversationID int64
	// Below, when not zero, searches only messages with an id below it:
	// the window is the SearchCandidates newest matches under it.
	Below int64
	// Offset results of the window, ranked, are skipped, then at most
	// Limit returned.
	Offset, Limit int
}

// SearchPage is what a store returns for a SearchQuery: the page of hits
// and the window they were ranked in.
type SearchPage struct {
	Hits []SearchHit
	// Candidates is how many matches the window held (at most
	// SearchCandidates); fewer than SearchCandidates means no match is
	// older than the window's.
	Candidates int
	// Newest and Oldest are the highest and lowest message ids of the
	// window's matches, 0 when it held none.
	Newest, Oldest int64
}

// SearchHit is one message found and its snippet: a short part of its
// content, HTML-escaped, with each matched word in <b>…</b>.
type SearchHit struct {
	Message Message `json:"message"`
	Snippet string  `json:"snippet"`
}

// SearchResults is a page of a message search, best first; Next is the
// cursor of the page after it, nil on the last.
type SearchResults struct {
	Results []SearchHit `json:"results"`
	Next    *string     `json:"next"`
}

// SearchTerms splits a question into the words a store searches for: runs
// of letters, digits and combining marks. Everything else (quotes, *,
// parentheses, hyphens, emoji) only separates words, so that no search
// syntax of either store ever passes through from a user.
func SearchTerms(q string) []string {
	return strings.FieldsFunc(q, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.IsMark(r)
	})
}

// SearchMessages finds messages with every word of q (case and diacritics
// aside, the last word as a prefix) in the conversations viewer is in, or
// in convID only when it is not zero (ErrNotFound when viewer is not in
// it), never a deleted one, by relevance then recency within windows of
// SearchCandidates matches, newest window first: limit of them
// (DefaultSearchPageSize when 0, at most MaxSearchPageSize), after the
// cursor before ("" for the first page). A q of no words (only
// punctuation or emoji) finds nothing.
func (s *Service) SearchMessages(ctx context.Context, viewer int64, q string, convID int64, limit int, before string) (SearchResults, error) {
	v := Invalid{}
	switch n := utf8.RuneCountInString(strings.TrimSpace(q)); {
	case !utf8.ValidString(q):
		v.Add("q", "Must be valid UTF-8.")
	case n == 0:
		v.Add("q", "This field may not be blank.")
	case n > MaxSearchLength:
		v.Add("q", fmt.Sprintf("Ensure this field has no more than %d characters.", MaxSearchLength))
	}
	if limit == 0 {
		limit = DefaultSearchPageSize
	}
	if limit < 1 || limit > MaxSearchPageSize {
		v.Add("limit", fmt.Sprintf("Must be an integer between 1 and %d.", MaxSearchPageSize))
	}
	pos, err := decodeSearchCursor(before)
	if err != nil {
		v.Add("before", "Not a valid cursor: use the next of a previous page.")
	}
	if err := v.Err(); err != nil {
		return SearchResults{}, err
	}
	if convID != 0 {
		if err := s.CheckMember(ctx, convID, viewer); err != nil {
			return SearchResults{}, err
		}
	}
	out := SearchResults{Results: []SearchHit{}}
	terms := SearchTerms(q)
	if len(terms) == 0 {
		return out, nil
	}
	hits, next, err := s.searchWindows(ctx, SearchQuery{
		Viewer: viewer, Terms: terms, ConversationID: convID,
		Below: pos.below, Offset: pos.offset, Limit: limit,
	})
	if err != nil {
		return SearchResults{}, err
	}
	if next != (searchPos{}) {
		c := next.encode()
		out.Next = &c
	}
	msgs := make([]Message, len(hits))
	for i := range hits {
		hits[i].Snippet = SnippetHTML(hits[i].Snippet)
		msgs[i] = hits[i].Message
	}
	// Each hit's message carries its reactions, as every message of a
	// REST answer does.
	if err := s.withDetails(ctx, viewer, msgs); err != nil {
		return SearchResults{}, err
	}
	for i := range hits {
		hits[i].Message.Reactions, hits[i].Message.Attachments = msgs[i].Reactions, msgs[i].Attachments
	}
	out.Results = append(out.Results, hits...)
	return out, nil
}

// searchPos is where a page of a search starts: a window and a place in
// it. below is the window's upper id bound: its SearchCandidates newest
// matches below it are ranked. offset is how many of them, ranked, came
// before (relevance is no column a keyset could follow). The first page's
// window has no bound; the next pages' is bound above its newest match,
// so that messages sent meanwhile shift no window.
type searchPos struct {
	below  int64
	offset int
}

// encode is the opaque cursor of p: tagged "s", the offset, then the
// bound (two numbers: unlike the feed's three).
func (p searchPos) encode() string {
	return encodeInts("s", int64(p.offset), p.below)
}

// decodeSearchCursor reads a cursor made by searchPos.encode: the first
// page for "", an error for anything encode does not make.
func decodeSearchCursor(s string) (searchPos, error) {
	if s == "" {
		return searchPos{}, nil
	}
	n, ok := decodeInts(s, "s", 2)
	if !ok || n[0] < 0 || n[0] >= SearchCandidates || n[1] <= 0 {
		return searchPos{}, errInvalidCursor
	}
	return searchPos{offset: int(n[0]), below: n[1]}, nil
}

// searchWindows returns q.Limit hits from q's window and place on, going
// on into older windows when one is used up, and the place of the next
// page (zero when no match is left). It asks for one hit more than the
// page: is there a next?
func (s *Service) searchWindows(ctx context.Context, q SearchQuery) ([]SearchHit, searchPos, error) {
	limit := q.Limit
	var hits []SearchHit
	for {
		q.Limit = limit + 1 - len(hits)
		page, err := s.store.SearchMessages(ctx, q)
		if err != nil {
			return nil, searchPos{}, err
		}
		if q.Below == 0 && page.Newest > 0 {
			q.Below = page.Newest + 1
		}
		hits = append(hits, page.Hits...)
		end := q.Offset + q.Limit // the window's place after what was asked
		if len(hits) > limit {
			// The extra hit, the last asked for, starts the next page.
			return hits[:limit], searchPos{q.Below, end - 1}, nil
		}
		if end < page.Candidates {
			// Fewer than asked although the window goes on: a message
			// was deleted meanwhile.
			return hits, searchPos{q.Below, end}, nil
		}
		if page.Candidates < SearchCandidates || page.Oldest <= 1 {
			return hits, searchPos{}, nil // no older match
		}
		// This window is used up: the next holds the older matches.
		q.Below, q.Offset = page.Oldest, 0
	}
}

// SnippetHTML turns a store's snippet, with SnippetStart and SnippetEnd
// around matched words, into HTML: the text escaped, the marks <b> and
// </b>. A marker character that was in the content itself can only ever
// open or close one balanced <b>, never anything else.
func SnippetHTML(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	open := false
	for {
		i := strings.IndexAny(s, SnippetStart+SnippetEnd)
		if i < 0 {
			b.WriteString(html.EscapeString(s))
			break
		}
		b.WriteString(html.EscapeString(s[:i]))
		switch {
		case s[i] == SnippetStart[0] && !open:
			b.WriteString("<b>")
			open = true
		case s[i] == SnippetEnd[0] && open:
			b.WriteString("</b>")
			open = false
		}
		s = s[i+1:]
	}
	if open {
		b.WriteString("</b>")
	}
	return b.String()
}
