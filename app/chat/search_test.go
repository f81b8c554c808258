package chat_test

import (
	"slices"
	"testing"

	"github.com/confab/confab/app/chat"
)

func TestSnippetHTML_EscapesAllButTheMarks(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a \x02café\x03 <b>&", "a <b>café</b> &lt;b&gt;&amp;"},
		{"\x02x\x03 and \x02y\x03", "<b>x</b> and <b>y</b>"},
		// Marker characters that were in the content itself: still only
		// balanced <b>…</b>.
		{"\x03stray \x02\x02open", "stray <b>open</b>"},
		{`"quoted" 'single'`, "&#34;quoted&#34; &#39;single&#39;"},
	} {
		if got := chat.SnippetHTML(tc.in); got != tc.want {
			t.Errorf("SnippetHTML(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSearchTerms_OnlyWords(t *testing.T) {
	got := chat.SearchTerms(`"Café" NEAR(x* -y) 🎉 o'neil 3.14 a_b`)
	want := []string{"Café", "NEAR", "x", "y", "o", "neil", "3", "14", "a", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("SearchTerms = %q, want %q", got, want)
	}
}
