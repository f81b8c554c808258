package chat

import (
	"cmp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// snippetWords is about how many words a snippet shows around the first
// match: a line of a search result.
const snippetWords = 16

// FoldWord is a word as search compares it: lower case, without
// diacritics ("Zürich" and "ZURICH" are both "zurich"), as SQLite's
// unicode61 tokenizer with remove_diacritics folds the words it indexes.
func FoldWord(w string) string {
	ascii := true
	for i := 0; i < len(w); i++ {
		if w[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(w)
	}
	var b strings.Builder
	b.Grow(len(w))
	for _, r := range norm.NFD.String(w) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// textWord is one word of a message: its place in the text and its folded
// form.
type textWord struct {
	start, end int
	folded     string
}

// words splits text as SearchTerms splits a question, keeping each word's
// place.
func words(text string) []textWord {
	var out []textWord
	start := -1
	for i, r := range text {
		word := unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
		switch {
		case word && start < 0:
			start = i
		case !word && start >= 0:
			out = append(out, textWord{start, i, FoldWord(text[start:i])})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, textWord{start, len(text), FoldWord(text[start:])})
	}
	return out
}

// SearchText is a question's terms folded, ready to be compared with
// message texts: every term but the last whole, the last as a prefix.
type SearchText struct {
	terms []string
}

// NewSearchText folds terms (SearchTerms of a question).
func NewSearchText(terms []string) SearchText {
	folded := make([]string, len(terms))
	for i, t := range terms {
		folded[i] = FoldWord(t)
	}
	return SearchText{folded}
}

// match is the index of the term w matches, or -1.
func (q SearchText) match(w string) int {
	last := len(q.terms) - 1
	for i, t := range q.terms {
		if w == t || (i == last && strings.HasPrefix(w, t)) {
			return i
		}
	}
	return -1
}

// Matches reports whether text has every term of q, as Relevance and
// Snippet compare words: every term but the last whole, the last as a
// prefix.
func (q SearchText) Matches(text string) bool {
	found := make([]bool, len(q.terms))
	left := len(q.terms)
	for _, w := range words(text) {
		if i := q.match(w.folded); i >= 0 && !found[i] {
			found[i] = true
			if left--; left == 0 {
				return true
			}
		}
	}
	return left == 0
}

// Relevance scores text for q, higher for a better match: BM25's term
// frequency part (k1 = 1.2, b = 0.75) summed over the terms, with
// avgWords the average length in words of the texts compared. Every text
// compared holds every term, so the terms' document frequencies (BM25's
// IDF) would weigh all of them alike and are left out.
func (q SearchText) Relevance(text string, avgWords float64) float64 {
	const k1, b = 1.2, 0.75
	ws := words(text)
	tf := make([]float64, len(q.terms))
	for _, w := range ws {
		if i := q.match(w.folded); i >= 0 {
			tf[i]++
		}
	}
	if avgWords <= 0 {
		avgWords = 1
	}
	norm := k1 * (1 - b + b*float64(len(ws))/avgWords)
	var score float64
	for _, f := range tf {
		score += f * (k1 + 1) / (f + norm)
	}
	return score
}

// WordCount is how many words text has, as Relevance counts them.
func WordCount(text string) int { return len(words(text)) }

// Snippet is a short part of text, about snippetWords words from a little
// before its first match, with SnippetStart and SnippetEnd around each
// matched word and "…" where text was cut. It is not HTML-escaped
// (SnippetHTML does that).
func (q SearchText) Snippet(text string) string {
	ws := words(text)
	first := 0
	for i, w := range ws {
		if q.match(w.folded) >= 0 {
			first = i
			break
		}
	}
	from := max(0, first-snippetWords/4)
	to := min(len(ws), from+snippetWords)
	from = max(0, to-snippetWords)
	var b strings.Builder
	pos := 0
	if from > 0 {
		b.WriteString("…")
		pos = ws[from].start
	}
	for _, w := range ws[from:to] {
		b.WriteString(text[pos:w.start])
		if q.match(w.folded) >= 0 {
			b.WriteString(SnippetStart)
			b.WriteString(text[w.start:w.end])
			b.WriteString(SnippetEnd)
		} else {
			b.WriteString(text[w.start:w.end])
		}
		pos = w.end
	}
	if to < len(ws) {
		b.WriteString("…")
	} else {
		b.WriteString(text[pos:])
	}
	return b.String()
}

// SearchCandidate is a message a store found for a search, before it is
// ranked: its id and content.
type SearchCandidate struct {
	ID      int64
	Content string
}

// RankCandidates orders candidates by text's Relevance, best first, then
// newest (higher id) first, and returns the ids of limit of them after
// offset.
func RankCandidates(cands []SearchCandidate, text SearchText, offset, limit int) []int64 {
	if offset >= len(cands) {
		return nil
	}
	type scored struct {
		id    int64
		score float64
	}
	total := 0
	counts := make([]int, len(cands))
	for i, c := range cands {
		counts[i] = WordCount(c.Content)
		total += counts[i]
	}
	avg := float64(total) / float64(len(cands))
	all := make([]scored, len(cands))
	for i, c := range cands {
		all[i] = scored{c.ID, text.Relevance(c.Content, avg)}
	}
	slices.SortFunc(all, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(b.id, a.id)
	})
	all = all[offset:min(len(all), offset+limit)]
	ids := make([]int64, len(all))
	for i, s := range all {
		ids[i] = s.id
	}
	return ids
}

// OrderHits puts msgs in the order of ids, each with its Snippet; an id
// with no message (deleted meanwhile) is left out.
func OrderHits(ids []int64, msgs []Message, text SearchText) []SearchHit {
	byID := make(map[int64]*Message, len(msgs))
	for i := range msgs {
		byID[msgs[i].ID] = &msgs[i]
	}
	hits := make([]SearchHit, 0, len(ids))
	for _, id := range ids {
		if m := byID[id]; m != nil && !m.IsDeleted {
			hits = append(hits, SearchHit{Message: *m, Snippet: text.Snippet(m.Content)})
		}
	}
	return hits
}
