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
	// SearchCandidates is how many of the newest matching messages a
	// search ranks: relevance is computed for these, not for every
	// message that has the words, so that a common word costs the same
	// in a year of history as in a week. Pages end after them.
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
	// Offset results are skipped, then at most Limit returned.
	Offset, Limit int
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
// it), never a deleted one, by relevance then recency: limit of them
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
	// The cursor is how many results came before: relevance is no column
	// a keyset could follow, and it moves as messages come and go.
	pos, err := DecodeCursor(before)
	if err != nil || pos.At != 0 || pos.ID < 0 {
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
	offset := int(pos.ID)
	hits, err := s.store.SearchMessages(ctx, SearchQuery{
		Viewer: viewer, Terms: terms, ConversationID: convID,
		Offset: offset, Limit: limit + 1, // one more: is there a next page?
	})
	if err != nil {
		return SearchResults{}, err
	}
	more := len(hits) > limit
	if more {
		hits = hits[:limit]
	}
	// Pages end with the SearchCandidates ranked: no cursor past them.
	if more && offset+limit < SearchCandidates {
		next := EncodeCursor(Position{ID: int64(offset + limit)})
		out.Next = &next
	}
	msgs := make([]Message, len(hits))
	for i := range hits {
		hits[i].Snippet = SnippetHTML(hits[i].Snippet)
		msgs[i] = hits[i].Message
	}
	// Each hit's message carries its reactions, as every message of a
	// REST answer does.
	if err := s.withReactions(ctx, viewer, msgs); err != nil {
		return SearchResults{}, err
	}
	for i := range hits {
		hits[i].Message.Reactions = msgs[i].Reactions
	}
	out.Results = append(out.Results, hits...)
	return out, nil
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
