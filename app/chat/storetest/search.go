package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/confab/confab/app/chat"
)

// search runs q as viewer and returns the ids found, in order, and the
// hits.
func search(tb testing.TB, s chat.Store, viewer chat.User, conv int64, q string, offset, limit int) ([]int64, []chat.SearchHit) {
	tb.Helper()
	page, err := s.SearchMessages(context.Background(), chat.SearchQuery{
		Viewer: viewer.ID, Terms: chat.SearchTerms(q), ConversationID: conv, Offset: offset, Limit: limit,
	})
	if err != nil {
		tb.Fatalf("search %q: %v", q, err)
	}
	var got []int64
	for _, h := range page.Hits {
		got = append(got, h.Message.ID)
	}
	return got, page.Hits
}

func testSearchMessages(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	ann, bob, cat := mustUser(t, s, "ann"), mustUser(t, s, "bob"), mustUser(t, s, "cat")
	ab := mustConversation(t, s, false, ann, bob)
	bc := mustConversation(t, s, false, bob, cat)
	group := mustConversation(t, s, true, ann, bob, cat)

	cafe := mustSend(t, s, ann, ab, "Meet at the Café Zürich tomorrow")
	lunch := mustSend(t, s, bob, ab, "lunch tomorrow? the cafe again")
	secret := mustSend(t, s, bob, bc, "cafe secret between bob and cat")
	gone := mustSend(t, s, ann, group, "cafe plans, deleted later")
	edited := mustSend(t, s, cat, group, "original wording about the cafe")
	html := mustSend(t, s, ann, group, `<script>alert("x")</script> & cafe`)
	if _, _, err := s.DeleteMessage(ctx, gone.ID, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EditMessage(ctx, edited.ID, "reworded: tea house instead", nil, t0); err != nil {
		t.Fatal(err)
	}

	sortIDs := func(ids []int64) []int64 { ids = slices.Clone(ids); slices.Sort(ids); return ids }
	for _, tc := range []struct {
		name   string
		viewer chat.User
		conv   int64
		q      string
		want   []int64 // in any order
	}{
		{"OnlyConversationsOfTheViewer", ann, 0, "cafe", []int64{cafe.ID, lunch.ID, html.ID}},
		{"OtherViewerOtherConversations", cat, 0, "cafe", []int64{secret.ID, html.ID}},
		{"DiacriticsAndCaseIgnored", ann, 0, "CAFÉ zurich", []int64{cafe.ID}},
		{"PrefixOnTheLastWord", ann, 0, "tomorrow caf", []int64{cafe.ID, lunch.ID}},
		{"PrefixOnlyOnTheLastWord", ann, 0, "caf tomorrow", nil},
		{"EveryWordRequired", ann, 0, "cafe lunch", []int64{lunch.ID}},
		{"OneConversation", ann, group, "cafe", []int64{html.ID}},
		{"EditReplacesTheOldWords", cat, 0, "original", nil},
		{"EditedWordsFound", cat, 0, "tea hous", []int64{edited.ID}},
		{"DeletedNeverFound", ann, 0, "plans", nil},
		{"SyntaxIsJustSeparators", ann, 0, `"cafe" -zurich* ( meet:*`, []int64{cafe.ID}},
		{"OperatorsAreWords", cat, 0, "bob AND", []int64{secret.ID}},
		{"NearIsAWord", cat, 0, "NEAR(", nil},
		{"QuotesAndEmojiAreSeparators", ann, 0, `alert("x") 🎉 & | !`, []int64{html.ID}},
		{"OnlySeparators", ann, 0, `" * - ( 🎉`, nil},
		{"NoMatch", ann, 0, "nothing", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := search(t, s, tc.viewer, tc.conv, tc.q, 0, 50)
			if !slices.Equal(sortIDs(got), sortIDs(tc.want)) {
				t.Errorf("search %q as %s = %v, want %v", tc.q, tc.viewer.Username, got, tc.want)
			}
		})
	}

	t.Run("SnippetMarksTheMatchedWords", func(t *testing.T) {
		_, hits := search(t, s, ann, 0, "zurich", 0, 50)
		if len(hits) != 1 {
			t.Fatalf("hits = %v", hits)
		}
		want := chat.SnippetStart + "Zürich" + chat.SnippetEnd
		if !strings.Contains(hits[0].Snippet, want) || !strings.Contains(hits[0].Snippet, "Meet") {
			t.Errorf("snippet = %q, want it to contain %q", hits[0].Snippet, want)
		}
		if hits[0].Message.Content != cafe.Content || hits[0].Message.Sender.Username != "ann" {
			t.Errorf("message = %+v", hits[0].Message)
		}
	})
}

// testSearchRanking: a better match comes first; among equal matches the
// newer; pages by offset neither repeat nor skip.
func testSearchRanking(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ann, bob := mustUser(t, s, "ann"), mustUser(t, s, "bob")
	conv := mustConversation(t, s, false, ann, bob)
	var same []int64
	for range 5 {
		same = append(same, mustSend(t, s, ann, conv, "one apple among many other words in a longer sentence here").ID)
	}
	best := mustSend(t, s, bob, conv, "apple apple apple")
	mustSend(t, s, bob, conv, "pear")

	got, _ := search(t, s, ann, 0, "apple", 0, 50)
	want := []int64{best.ID}
	for i := len(same) - 1; i >= 0; i-- {
		want = append(want, same[i])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ranked %v, want %v (best, then newest first)", got, want)
	}
	var paged []int64
	for off := 0; off < 10; off += 2 {
		ids, _ := search(t, s, ann, 0, "apple", off, 2)
		paged = append(paged, ids...)
	}
	if !slices.Equal(paged, want) {
		t.Errorf("pages of 2 = %v, want %v", paged, want)
	}
	if ids, _ := search(t, s, ann, 0, "*** ", 0, 50); len(ids) != 0 {
		t.Errorf("no terms found %v", ids)
	}
}

// testSearchManyConversations: a viewer in many conversations (more than
// a store may name in one query) still finds only their own, and not a
// conversation's messages once they have left it, however many newer
// messages of others there are.
func testSearchManyConversations(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	ann, bob, cat := mustUser(t, s, "ann"), mustUser(t, s, "bob"), mustUser(t, s, "cat")
	for i := range 205 { // more than the 200 the SQLite store names in a query
		conv := mustConversation(t, s, true, ann, bob)
		mustSend(t, s, bob, conv, fmt.Sprintf("status report %d", i))
	}
	secret := mustConversation(t, s, false, bob, cat)
	mustSend(t, s, bob, secret, "status report for cat only")
	left := mustConversation(t, s, true, ann, bob)
	mustSend(t, s, bob, left, "status report after ann left")
	if err := s.RemoveParticipant(ctx, left, ann.ID, t0); err != nil {
		t.Fatal(err)
	}
	// Newer than all of ann's, and more than a store may read of the
	// newest messages for a one-letter question.
	noise := make([]chat.NewMessage, 6100)
	for i := range noise {
		noise[i] = chat.NewMessage{ConversationID: secret, Sender: bob.Lite(), Content: fmt.Sprintf("noise %d", i), At: t0}
	}
	if _, err := s.InsertMessages(ctx, noise); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		viewer chat.User
		q      string
		want   int
	}{
		{ann, "status", 50}, // a full page
		{ann, "s", 50},
		{ann, "n", 0},
		{ann, "report 7", 11}, // 7 and 70–79: the last word is a prefix
		{ann, "report 204", 1},
		{ann, "cat only", 0},
		{ann, "after left", 0},
		{cat, "status", 1},
		{bob, "after left", 1},
	} {
		if got, _ := search(t, s, tc.viewer, 0, tc.q, 0, 50); len(got) != tc.want {
			t.Errorf("search %q as %s found %d, want %d", tc.q, tc.viewer.Username, len(got), tc.want)
		}
	}
}

// testSearchWindows: a search ranks the SearchCandidates newest matches
// below its bound and says which they were, so that the next window
// starts below the oldest of them.
func testSearchWindows(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	ann, bob := mustUser(t, s, "ann"), mustUser(t, s, "bob")
	conv := mustConversation(t, s, false, ann, bob)
	n := chat.SearchCandidates + 10
	ids := make([]int64, n) // oldest first
	for i := range ids {
		ids[i] = mustSend(t, s, ann, conv, fmt.Sprintf("window word %d", i)).ID
	}
	mustSend(t, s, ann, conv, "unrelated")
	window := func(below int64, offset, limit int) chat.SearchPage {
		t.Helper()
		page, err := s.SearchMessages(ctx, chat.SearchQuery{
			Viewer: bob.ID, Terms: []string{"window"}, Below: below, Offset: offset, Limit: limit,
		})
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
	first := window(0, 0, 50)
	if first.Candidates != chat.SearchCandidates || first.Newest != ids[n-1] || first.Oldest != ids[10] || len(first.Hits) != 50 {
		t.Fatalf("first window: %d candidates, ids %d–%d, %d hits; want %d, %d–%d, 50",
			first.Candidates, first.Oldest, first.Newest, len(first.Hits), chat.SearchCandidates, ids[10], ids[n-1])
	}
	if past := window(0, chat.SearchCandidates, 50); len(past.Hits) != 0 || past.Candidates != chat.SearchCandidates {
		t.Errorf("past the window: %d hits, %d candidates", len(past.Hits), past.Candidates)
	}
	older := window(first.Oldest, 0, 50)
	if older.Candidates != 10 || older.Newest != ids[9] || older.Oldest != ids[0] || len(older.Hits) != 10 {
		t.Fatalf("older window: %d candidates, ids %d–%d, %d hits", older.Candidates, older.Oldest, older.Newest, len(older.Hits))
	}
	for _, h := range older.Hits {
		if h.Message.ID >= first.Oldest {
			t.Errorf("older window holds %d, not below %d", h.Message.ID, first.Oldest)
		}
	}
	if none := window(ids[0], 0, 50); none.Candidates != 0 || len(none.Hits) != 0 {
		t.Errorf("below the oldest: %d candidates, %d hits", none.Candidates, len(none.Hits))
	}
}

// testSearchCommonPrefix: a last word whose first letters begin many
// more messages than it (a store may search by such a prefix first) is
// still found, and only where it is.
func testSearchCommonPrefix(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	ann, bob := mustUser(t, s, "ann"), mustUser(t, s, "bob")
	conv := mustConversation(t, s, false, ann, bob)
	rare := mustSend(t, s, ann, conv, "the thermodynamics lecture")
	batch := make([]chat.NewMessage, 2000) // newer, and more than a few windows
	for i := range batch {
		batch[i] = chat.NewMessage{ConversationID: conv, Sender: ann.Lite(), Content: fmt.Sprintf("then there %d", i), At: t0}
	}
	if _, err := s.InsertMessages(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"thermodynamics", "thermo", "lecture thermodyn", "THERMODYNAMICS"} {
		if got, _ := search(t, s, bob, 0, q, 0, 50); !slices.Equal(got, []int64{rare.ID}) {
			t.Errorf("search %q = %v, want [%d]", q, got, rare.ID)
		}
	}
	if got, _ := search(t, s, bob, 0, "therefore", 0, 50); len(got) != 0 {
		t.Errorf("search therefore = %v", got)
	}
	if got, _ := search(t, s, bob, 0, "there", 0, 50); len(got) != 50 {
		t.Errorf("search there found %d, want a full page", len(got))
	}
}

// testSearchAnyWayIn: whichever way a store reads a question's matches
// (by its other words when the last has one letter, by the newest
// messages when that letter is the whole question, by every
// conversation's matches first for a viewer in many), it finds all of the
// viewer's and none of anyone else's, however many newer messages of
// others come first.
func testSearchAnyWayIn(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	ann, bob, cat := mustUser(t, s, "ann"), mustUser(t, s, "bob"), mustUser(t, s, "cat")
	var mine []int64 // ann's conversations
	for range 20 {
		mine = append(mine, mustConversation(t, s, true, ann, bob))
	}
	zebra := mustSend(t, s, bob, mine[0], "zebra crossing ahead")
	alpha := mustSend(t, s, bob, mine[1], "alpha beta mine")
	// A private-use character and a conversation's id, as a store may
	// index the conversation of a message, in another's message.
	others := mustConversation(t, s, false, bob, cat)
	zulu := mustSend(t, s, cat, others, fmt.Sprintf("alpha beta zulu \uE000%d", mine[0]))
	send := func(conv int64, n int, format string) {
		t.Helper()
		batch := make([]chat.NewMessage, n)
		for i := range batch {
			batch[i] = chat.NewMessage{ConversationID: conv, Sender: bob.Lite(), Content: fmt.Sprintf(format, i), At: t0}
		}
		if _, err := s.InsertMessages(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// Newer, and more than a store reads before it asks another way.
	send(others, 4000, "alpha beta %d for bob and cat")
	send(mine[2], 2000, "then there %d")

	for _, tc := range []struct {
		viewer chat.User
		q      string
		want   []int64
	}{
		{ann, "alpha beta", []int64{alpha.ID}},
		{ann, "alpha b", []int64{alpha.ID}},
		{ann, "beta m", []int64{alpha.ID}},
		{ann, "alpha beta z", nil},
		{ann, "z", []int64{zebra.ID}},
		{ann, "zebra c", []int64{zebra.ID}},
		{ann, "zulu", nil},
		{cat, "z", []int64{zulu.ID}},
		{cat, "alpha beta zu", []int64{zulu.ID}},
	} {
		got, _ := search(t, s, tc.viewer, 0, tc.q, 0, 50)
		if !slices.Equal(got, tc.want) {
			t.Errorf("search %q as %s = %v, want %v", tc.q, tc.viewer.Username, got, tc.want)
		}
	}
	if got, _ := search(t, s, cat, 0, "alpha b", 0, 50); len(got) != 50 {
		t.Errorf("search %q as cat found %d, want a full page", "alpha b", len(got))
	}
}
