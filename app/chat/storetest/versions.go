package storetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

// version is conv's version.
func version(tb testing.TB, s chat.Store, conv int64) int64 {
	tb.Helper()
	m, err := s.LastVersions(context.Background(), []int64{conv})
	if err != nil {
		tb.Fatal(err)
	}
	return m[conv]
}

// feedAll reads user's whole feed after cursor, in pages of limit, and
// returns the pages' entries and the cursor at the end.
func feedAll(tb testing.TB, s chat.Store, user int64, after chat.SyncKey, limit int) (pages []chat.SyncPage, end chat.SyncKey) {
	tb.Helper()
	for range 1000 {
		read, err := s.Feed(context.Background(), user, after, limit)
		if err != nil {
			tb.Fatal(err)
		}
		p := chat.FeedPage(read, after, limit)
		pages = append(pages, p)
		if after, err = chat.DecodeSyncCursor(p.Cursor); err != nil {
			tb.Fatal(err)
		}
		if !p.HasMore {
			return pages, after
		}
	}
	tb.Fatal("the feed does not end")
	return nil, after
}

// testVersions: every change a participant sees takes a new version,
// given to the conversation and (for a message) to the message; Changes
// returns each message created or changed after a version once, in its
// current state, in order.
func testVersions(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
	g := mustConversation(t, s, true, a, b)
	v0 := version(t, s, g)
	if v0 <= 0 {
		t.Fatalf("a new conversation has version %d, want > 0", v0)
	}
	step := func(what string, prev int64) int64 {
		t.Helper()
		v := version(t, s, g)
		if v <= prev {
			t.Fatalf("%s: version %d, want more than %d", what, v, prev)
		}
		return v
	}
	m1 := mustSend(t, s, a, g, "one")
	v1 := step("send", v0)
	if m1.Version != v1 || m1.CreatedVersion != v1 {
		t.Errorf("sent message: version %d created %d, want %d", m1.Version, m1.CreatedVersion, v1)
	}
	m2 := mustSend(t, s, b, g, "two")
	v2 := step("second send", v1)
	if m1.PrevVersion != v0 || m2.PrevVersion != v1 {
		t.Errorf("sends follow versions %d and %d, want %d and %d", m1.PrevVersion, m2.PrevVersion, v0, v1)
	}
	e, err := s.EditMessage(ctx, m1.ID, "one, edited", nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	v3 := step("edit", v2)
	if e.Version != v3 || e.CreatedVersion != v1 || e.PrevVersion != v2 {
		t.Errorf("edited message: version %d created %d, want %d and %d", e.Version, e.CreatedVersion, v3, v1)
	}
	if err := s.SetTitle(ctx, g, "renamed", t0); err != nil {
		t.Fatal(err)
	}
	v4 := step("rename", v3)
	if err := s.AddParticipant(ctx, g, c.ID, chat.RoleMember, t0); err != nil {
		t.Fatal(err)
	}
	v5 := step("member added", v4)
	d, changed, err := s.DeleteMessage(ctx, m2.ID, t0)
	if err != nil || !changed {
		t.Fatal(err, changed)
	}
	v6 := step("delete", v5)
	if d.Version != v6 || d.PrevVersion != v5 {
		t.Errorf("deleted message: version %d, want %d", d.Version, v6)
	}
	if _, changed, _ := s.DeleteMessage(ctx, m2.ID, t0); changed || version(t, s, g) != v6 {
		t.Errorf("deleting again: changed %v, version %d; want no change at %d", changed, version(t, s, g), v6)
	}
	if err := s.RemoveParticipant(ctx, g, c.ID, t0); err != nil {
		t.Fatal(err)
	}
	v7 := step("member removed", v6)
	// One batch, two conversations: each message follows the one
	// before it in its own conversation.
	h := mustConversation(t, s, true, a, b)
	vh := version(t, s, h)
	res, err := s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: g, Sender: a.Lite(), Content: "g1", At: t0},
		{ConversationID: h, Sender: a.Lite(), Content: "h1", At: t0},
		{ConversationID: g, Sender: a.Lite(), Content: "g2", At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	g1, h1, g2 := res[0].Message, res[1].Message, res[2].Message
	if g1.PrevVersion != v7 || h1.PrevVersion != vh || g2.PrevVersion != g1.Version || !(g1.Version < h1.Version && h1.Version < g2.Version) {
		t.Errorf("a batch: g1 %d after %d, h1 %d after %d, g2 %d after %d; want g1 after %d, h1 after %d, g2 after g1",
			g1.Version, g1.PrevVersion, h1.Version, h1.PrevVersion, g2.Version, g2.PrevVersion, v7, vh)
	}
	v7 = g2.Version
	if other := mustConversation(t, s, true, b, c); version(t, s, other) <= v7 {
		t.Errorf("another conversation's version %d, want past %d: one clock for all", version(t, s, other), v7)
	}
	if cv, err := s.Conversation(ctx, g, a.ID); err != nil || cv.Version != v7 {
		t.Errorf("conversation object: version %d (%v), want %d", cv.Version, err, v7)
	}

	type want struct {
		id      int64
		created bool
		key     int64
		content string
		deleted bool
	}
	check := func(after, before int64, limit int, wants ...want) {
		t.Helper()
		got, err := s.Changes(ctx, g, after, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		var gotW []want
		for _, ch := range got {
			gotW = append(gotW, want{ch.Message.ID, ch.Created, ch.Key(), ch.Message.Content, ch.Message.IsDeleted})
		}
		if !slices.Equal(gotW, wants) {
			t.Errorf("Changes(%d, %d, %d) = %+v, want %+v", after, before, limit, gotW, wants)
		}
	}
	// From before anything: both messages are new, in the order they
	// were created, each in its current state.
	news := []want{{g1.ID, true, g1.Version, "g1", false}, {g2.ID, true, g2.Version, "g2", false}}
	check(v0, 0, 10, append([]want{{m1.ID, true, v1, "one, edited", false}, {m2.ID, true, v2, "", true}}, news...)...)
	// After the first send: the second is new, the first changed.
	check(v1, 0, 10, append([]want{{m2.ID, true, v2, "", true}, {m1.ID, false, v3, "one, edited", false}}, news...)...)
	// After the edit: only the deletion.
	check(v3, 0, 10, append([]want{{m2.ID, false, v6, "", true}}, news...)...)
	check(g2.Version, 0, 10)
	// Bounded above (exclusive) and by the limit.
	check(v1, v3, 10, want{m2.ID, true, v2, "", true})
	check(v0, 0, 1, want{m1.ID, true, v1, "one, edited", false})
	if got, err := s.Changes(ctx, 999999, 0, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("an unknown conversation: %v %v, want none", got, err)
	}
}

// testFeed: a user's feed holds their conversations as they change, their
// departures, and the messages of the conversations they are in, each
// once, in version order, in pages.
func testFeed(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
	start, err := s.CurrentVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from := chat.SyncKey{Version: start, Kind: chat.FeedEnd}
	g := mustConversation(t, s, true, a, b)
	d := mustConversation(t, s, false, a, c)
	other := mustConversation(t, s, false, b, c) // not alice's
	mustSend(t, s, b, other, "not for alice")
	m1 := mustSend(t, s, b, g, "hello")
	m2 := mustSend(t, s, c, d, "hi")
	if _, err := s.EditMessage(ctx, m1.ID, "hello!", nil, t0); err != nil {
		t.Fatal(err)
	}

	pages, end := feedAll(t, s, a.ID, from, 100)
	if len(pages) != 1 {
		t.Fatalf("%d pages, want 1", len(pages))
	}
	p := pages[0]
	var convs []int64
	for _, cv := range p.Conversations {
		convs = append(convs, cv.ID)
	}
	// Each conversation once, where its last change puts it: d (its
	// message) before g (the edit).
	if !slices.Equal(convs, []int64{d, g}) {
		t.Errorf("conversations %v, want [%d %d]", convs, d, g)
	}
	if !slices.Equal(ids(p.Messages), []int64{m2.ID, m1.ID}) || p.Messages[1].Content != "hello!" {
		t.Errorf("messages %v, want [%d %d] with the edit", p.Messages, m2.ID, m1.ID)
	}
	if len(p.RemovedConversationIDs) != 0 {
		t.Errorf("removed %v, want none", p.RemovedConversationIDs)
	}

	// Nothing new: the cursor stays, with nothing in the page.
	if pages, again := feedAll(t, s, a.ID, end, 100); len(pages[0].Messages)+len(pages[0].Conversations) != 0 || again != end {
		t.Errorf("an idle feed: %+v, cursor %+v, want nothing and %+v", pages[0], again, end)
	}

	// Alice leaves g: it is removed, and its messages no longer come.
	if err := s.RemoveParticipant(ctx, g, a.ID, t0); err != nil {
		t.Fatal(err)
	}
	mustSend(t, s, b, g, "after alice left")
	pages, end2 := feedAll(t, s, a.ID, end, 100)
	if p := pages[0]; !slices.Equal(p.RemovedConversationIDs, chat.IDs{g}) || len(p.Messages) != 0 || len(p.Conversations) != 0 {
		t.Errorf("after leaving: %+v, want g removed and nothing else", p)
	}
	// Added back: g comes again, and no longer as removed.
	if err := s.AddParticipant(ctx, g, a.ID, chat.RoleMember, t0); err != nil {
		t.Fatal(err)
	}
	pages, _ = feedAll(t, s, a.ID, end2, 100)
	if p := pages[0]; len(p.Conversations) != 1 || p.Conversations[0].ID != g || len(p.RemovedConversationIDs) != 0 {
		t.Errorf("after rejoining: %+v, want g back", p)
	}

	// Pages of one entry hold the same entries, in the same order.
	whole, _ := feedAll(t, s, a.ID, from, 1000)
	paged, _ := feedAll(t, s, a.ID, from, 1)
	// A page lists each kind apart: in order within the page.
	flat := func(pages []chat.SyncPage) (out []string) {
		for _, p := range pages {
			var page []chat.SyncKey
			for _, id := range p.RemovedConversationIDs {
				page = append(page, chat.SyncKey{Kind: chat.FeedDeparture, ID: id})
			}
			for _, cv := range p.Conversations {
				page = append(page, chat.SyncKey{Version: cv.Version, Kind: chat.FeedConversation, ID: cv.ID})
			}
			for _, m := range p.Messages {
				page = append(page, chat.SyncKey{Version: m.Version, Kind: chat.FeedMessage, ID: m.ID})
			}
			slices.SortFunc(page, func(a, b chat.SyncKey) int {
				return cmp.Or(cmp.Compare(a.Version, b.Version), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
			})
			for _, k := range page {
				out = append(out, fmt.Sprint(k))
			}
		}
		return out
	}
	if len(paged) < 3 {
		t.Errorf("%d pages of one, want several", len(paged))
	}
	for _, p := range paged[:len(paged)-1] {
		if n := len(p.Messages) + len(p.Conversations) + len(p.RemovedConversationIDs); n != 1 || !p.HasMore {
			t.Errorf("a page of one: %d entries, has_more %v", n, p.HasMore)
		}
	}
	if w, p := flat(whole), flat(paged); !slices.Equal(w, p) {
		t.Errorf("paged feed %v, want %v", p, w)
	}
}

// testFeedGapless: with writers on several nodes at once, a user following
// their feed page by page sees every change exactly once, in order: no
// change ever becomes visible behind a cursor they already hold.
func testFeedGapless(t *testing.T, open func(t *testing.T) chat.Store) {
	nodes := []chat.Store{open(t), open(t), open(t)}
	s := nodes[0]
	ctx := context.Background()
	const writers = 6
	users := make([]chat.User, writers)
	for i := range users {
		users[i] = mustUser(t, s, fmt.Sprintf("writer%d", i))
	}
	reader := mustUser(t, s, "reader")
	convs := []int64{
		mustConversation(t, s, true, append(users, reader)...),
		mustConversation(t, s, true, append(users, reader)...),
		mustConversation(t, s, true, append(users[:3], reader)...),
	}
	start, err := s.CurrentVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := nodes[w%len(nodes)]
			var mine []int64
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var batch []chat.NewMessage
				for k := range 1 + n%3 {
					conv := convs[(w+n+k)%len(convs)]
					if conv == convs[2] && w >= 3 {
						conv = convs[0]
					}
					batch = append(batch, chat.NewMessage{ConversationID: conv, Sender: users[w].Lite(),
						Content: fmt.Sprintf("%d/%d/%d", w, n, k), At: t0})
				}
				res, err := node.InsertMessages(ctx, batch)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				for _, r := range res {
					if r.Err == nil {
						mine = append(mine, r.Message.ID)
					}
				}
				if n%4 == 3 && len(mine) > 0 { // and edit one of their own
					id := mine[(n/4)%len(mine)]
					if _, err := node.EditMessage(ctx, id, fmt.Sprintf("edited at %d", n), nil, t0); err != nil {
						t.Errorf("writer %d edit: %v", w, err)
						return
					}
				}
			}
		}()
	}

	// The reader follows its feed on the nodes in turn while they write.
	seen := map[int64]int64{} // message id → the last version seen
	var keys []chat.SyncKey
	after := chat.SyncKey{Version: start, Kind: chat.FeedEnd}
	follow := func(i int) {
		read, err := nodes[i%len(nodes)].Feed(ctx, reader.ID, after, 20)
		if err != nil {
			t.Fatal(err)
		}
		p := chat.FeedPage(read, after, 20)
		for _, m := range p.Messages {
			keys = append(keys, chat.SyncKey{Version: m.Version, Kind: chat.FeedMessage, ID: m.ID})
			seen[m.ID] = m.Version
		}
		if after, err = chat.DecodeSyncCursor(p.Cursor); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		follow(i)
	}
	close(stop)
	wg.Wait()
	for i := 0; i < 1000; i++ { // to the end
		before := after
		follow(i)
		if after == before {
			break
		}
	}

	// Every message the reader may see, at its last version, was seen.
	var missed, stale int
	for _, conv := range convs {
		for _, m := range all(t, s, conv) {
			v, ok := seen[m.ID]
			switch {
			case !ok:
				missed++
			case v != m.Version:
				stale++
			}
		}
	}
	if missed+stale > 0 || len(seen) == 0 {
		t.Errorf("of %d messages the reader followed, %d never seen and %d seen only at an older version", len(seen), missed, stale)
	}
	// Each entry once, in order.
	for i := 1; i < len(keys); i++ {
		if keys[i].Version <= keys[i-1].Version {
			t.Fatalf("entry %d at version %d after one at %d: out of order or repeated", i, keys[i].Version, keys[i-1].Version)
		}
	}
}
