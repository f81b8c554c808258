package chat_test

import (
	"strings"
	"testing"

	"github.com/confab/confab/app/chat"
)

func TestSearchText_SnippetMarksFoldedMatchesAndCutsLongTexts(t *testing.T) {
	for _, tc := range []struct{ q, text, want string }{
		{"cafe zur", "Meet at the Café Zürich!", "Meet at the \x02Café\x03 \x02Zürich\x03!"},
		// Only the last word is a prefix.
		{"caf tomorrow", "cafe tomorrow", "cafe \x02tomorrow\x03"},
		{"ÉCOLE", "l'école", "l'\x02école\x03"},
		{"x", "", ""},
		{"nothing", "no match here", "no match here"},
		{"w20", "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 w22 w23 w24 w25",
			// 16 words: the window moves back when the text ends.
			"…w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 \x02w20\x03 w21 w22 w23 w24 w25"},
		{"start", "start a b c d e f g h i j k l m n o p q",
			"\x02start\x03 a b c d e f g h i j k l m n o…"},
	} {
		got := chat.NewSearchText(chat.SearchTerms(tc.q)).Snippet(tc.text)
		if got != tc.want {
			t.Errorf("Snippet(%q, %q) = %q, want %q", tc.q, tc.text, got, tc.want)
		}
	}
}

func TestSearchText_RelevanceFavoursMoreOccurrencesInShorterTexts(t *testing.T) {
	q := chat.NewSearchText([]string{"apple"})
	long := "one apple among many other words in a longer sentence here"
	avg := float64(chat.WordCount(long)+chat.WordCount("apple apple apple")) / 2
	if a, b := q.Relevance("apple apple apple", avg), q.Relevance(long, avg); a <= b {
		t.Errorf("three apples %v, one apple in a long text %v", a, b)
	}
	if r := q.Relevance("pear", avg); r != 0 {
		t.Errorf("no match scored %v", r)
	}
}

func TestFoldWord_CaseAndDiacritics(t *testing.T) {
	for in, want := range map[string]string{"Zürich": "zurich", "ÉCOLE": "ecole", "plain": "plain", "Ångström": "angstrom", strings.Repeat("A", 3): "aaa"} {
		if got := chat.FoldWord(in); got != want {
			t.Errorf("FoldWord(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSearchText_MatchesEveryTermTheLastAsAPrefix(t *testing.T) {
	text := chat.NewSearchText([]string{"Café", "therm"})
	for _, tc := range []struct {
		content string
		want    bool
	}{
		{"the CAFE thermostat", true},
		{"thermal café", true},
		{"cafe then there", false},   // no word starts with therm
		{"cafeteria thermal", false}, // café only as a prefix, and not the last term
		{"thermal", false},
	} {
		if got := text.Matches(tc.content); got != tc.want {
			t.Errorf("Matches(%q) = %v, want %v", tc.content, got, tc.want)
		}
	}
}
