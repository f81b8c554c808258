package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

// testConversationsList: a viewer in many conversations of every kind
// (empty, read, unread, with a deleted message, with someone who joined
// later or left) gets each one exactly as Conversation shows it, with the
// participants, member count, last message and unread count the test kept
// track of, most recent activity first; and the same list again in pages.
func testConversationsList(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	v := mustUser(t, s, "viewer")
	others := make([]chat.User, 5)
	for i := range others {
		others[i] = mustUser(t, s, fmt.Sprint("other", i))
	}
	clock := t0
	tick := func() time.Time { clock = clock.Add(time.Minute); return clock }

	type want struct {
		id      int64
		updated time.Time
		members []int64 // in the order they joined
		last    *chat.Message
		unread  int // the viewer's
		read    int64
	}
	const n = 12
	wants := make([]*want, n)
	for i := range wants {
		ids := []int64{v.ID}
		for _, o := range others[:1+i%len(others)] {
			ids = append(ids, o.ID)
		}
		creator := ids
		if i%3 == 1 { // someone else created it: the viewer is a member
			creator = append([]int64{ids[1], ids[0]}, ids[2:]...)
		}
		at := tick()
		id, _, err := s.CreateConversation(ctx, chat.NewConversation{Title: fmt.Sprint("c", i), IsGroup: true, UserIDs: creator, At: at})
		if err != nil {
			t.Fatal(err)
		}
		wants[i] = &want{id: id, updated: at, members: slices.Sorted(slices.Values(ids))} // joined together: by id
	}
	// Someone else's conversation never shows.
	if _, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{others[0].ID, others[1].ID}, At: tick()}); err != nil {
		t.Fatal(err)
	}
	send := func(w *want, from chat.User) chat.Message {
		t.Helper()
		at := tick()
		res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: w.id, Sender: from.Lite(), Content: fmt.Sprint("at ", at.Unix()), At: at}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("insert: %v %v", err, res[0].Err)
		}
		m := res[0].Message
		m.PrevVersion = 0 // the change's, not the message's: not read back
		w.updated, w.last = at, &m
		if from.ID != v.ID {
			w.unread++
		} else { // what one sends, one has read (the read receipt stays)
			w.unread = 0
		}
		return m
	}
	user := func(id int64) chat.User {
		for _, u := range append([]chat.User{v}, others...) {
			if u.ID == id {
				return u
			}
		}
		t.Fatalf("no user %d", id)
		return chat.User{}
	}
	// Messages in an order that is not the conversations': i%4 of them in
	// conversation i, from its members in turn.
	for round := range 3 {
		for i := n - 1; i >= 0; i-- {
			if w := wants[i]; round < i%4 {
				send(w, user(w.members[(round+i)%len(w.members)]))
			}
		}
	}
	for i, w := range wants {
		switch {
		case i%3 == 0 && w.last != nil: // read up to the end, then one more
			if _, _, err := s.MarkRead(ctx, w.id, v.ID, w.last.ID); err != nil {
				t.Fatal(err)
			}
			w.unread, w.read = 0, w.last.ID
			send(w, user(w.members[1]))
		case i == 5: // a deleted message still counts as unread: its tombstone shows
			m := send(w, user(w.members[1]))
			d, _, err := s.DeleteMessage(ctx, m.ID, tick())
			if err != nil {
				t.Fatal(err)
			}
			w.last.Content, w.last.IsDeleted, w.last.Version = "", true, d.Version
		case i == 7: // someone joins later
			at := tick()
			if err := s.AddParticipant(ctx, w.id, others[4].ID, chat.RoleMember, at); err != nil {
				t.Fatal(err)
			}
			w.updated, w.members = at, append(w.members, others[4].ID)
		case i == 10: // someone leaves
			at := tick()
			if err := s.RemoveParticipant(ctx, w.id, others[0].ID, at); err != nil {
				t.Fatal(err)
			}
			w.updated, w.members = at, slices.DeleteFunc(w.members, func(id int64) bool { return id == others[0].ID })
		}
	}

	got, err := s.Conversations(ctx, v.ID, chat.Position{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(wants, func(a, b *want) int {
		if c := b.updated.Compare(a.updated); c != 0 {
			return c
		}
		return int(b.id - a.id)
	})
	if len(got) != len(wants) {
		t.Fatalf("%d conversations, want %d", len(got), len(wants))
	}
	for k, w := range wants {
		c := got[k]
		if c.ID != w.id || !c.UpdatedAt.Equal(w.updated) {
			t.Errorf("place %d: conversation %d updated %v, want %d updated %v", k, c.ID, c.UpdatedAt, w.id, w.updated)
			continue
		}
		var members []int64
		for _, p := range c.Participants {
			members = append(members, p.User.ID)
		}
		if !slices.Equal(members, w.members) || c.MemberCount != len(w.members) {
			t.Errorf("conversation %d: participants %v (count %d), want %v", w.id, members, c.MemberCount, w.members)
		}
		if p := c.Participant(v.ID); p == nil || p.LastReadMessageID != chat.OptID(w.read) {
			t.Errorf("conversation %d: the viewer's entry %+v, want read up to %d", w.id, p, w.read)
		}
		if c.UnreadCount != w.unread {
			t.Errorf("conversation %d: unread %d, want %d", w.id, c.UnreadCount, w.unread)
		}
		if !reflect.DeepEqual(c.LastMessage, w.last) {
			t.Errorf("conversation %d: last message %+v, want %+v", w.id, c.LastMessage, w.last)
		}
		if one, err := s.Conversation(ctx, w.id, v.ID); err != nil || !reflect.DeepEqual(one, c) {
			t.Errorf("conversation %d alone: %+v %v\nin the list: %+v", w.id, one, err, c)
		}
	}
	// In pages of 5, each after the last of the one before: the same list.
	var paged []chat.Conversation
	for before := (chat.Position{}); ; {
		page, err := s.Conversations(ctx, v.ID, before, 5)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if len(page) < 5 {
			break
		}
		before = page[len(page)-1].Position()
	}
	if !reflect.DeepEqual(paged, got) {
		t.Errorf("in pages of 5: %d conversations, not the list of %d", len(paged), len(got))
	}
	// Another member's list counts their own unread messages.
	theirs, err := s.Conversations(ctx, others[0].ID, chat.Position{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range theirs {
		one, err := s.Conversation(ctx, c.ID, others[0].ID)
		if err != nil || !reflect.DeepEqual(one, c) {
			t.Errorf("other's conversation %d alone: %+v %v\nin the list: %+v", c.ID, one, err, c)
		}
	}
	in := 1 // the conversation without the viewer
	for _, w := range wants {
		if slices.Contains(w.members, others[0].ID) {
			in++
		}
	}
	if len(theirs) != in {
		t.Errorf("another member is in %d conversations, want %d", len(theirs), in)
	}
}

// Counter is something a store's package can count of its store
// (statements run, round trips), and how many of it one read of
// conversations may take.
type Counter struct {
	Name  string
	Count func() int64 // how many so far
	Want  int64
	// WantPage is what a page of conversations may take, when not Want.
	WantPage int64
}

// wantPage is what a page of conversations may take.
func (c Counter) wantPage() int64 {
	if c.WantPage != 0 {
		return c.WantPage
	}
	return c.Want
}

// ConversationReadsFixed checks that listing a viewer's conversations,
// and reading one of them, costs each counter its Want whether the viewer
// is in one conversation or in forty: a fixed number of queries, not a few
// per conversation. s must be on an empty database.
func ConversationReadsFixed(t *testing.T, s chat.Store, counters ...Counter) {
	t.Helper()
	ctx := context.Background()
	users := make([]chat.User, 4)
	for i := range users {
		users[i] = mustUser(t, s, fmt.Sprint("user", i))
	}
	viewer := users[0]
	cost := func(what string, convs int, read func() error) {
		t.Helper()
		before := make([]int64, len(counters))
		for i, c := range counters {
			before[i] = c.Count()
		}
		if err := read(); err != nil {
			t.Fatal(err)
		}
		for i, c := range counters {
			want := c.Want
			if what == "listing them" {
				want = c.wantPage()
			}
			if got := c.Count() - before[i]; got != want {
				t.Errorf("in %d conversations, %s took %d %s, want %d", convs, what, got, c.Name, want)
			}
		}
	}
	var made int
	var last int64
	for _, convs := range []int{1, 10, 40} {
		for ; made < convs; made++ {
			a, b := users[1+made%3], users[1+(made+1)%3]
			last = mustConversation(t, s, true, viewer, a, b)
			mustSend(t, s, a, last, "hi")
		}
		cost("listing them", convs, func() error {
			cs, err := s.Conversations(ctx, viewer.ID, chat.Position{}, 100)
			if err == nil && len(cs) != convs {
				err = fmt.Errorf("%d conversations, want %d", len(cs), convs)
			}
			return err
		})
		cost("reading one", convs, func() error { _, err := s.Conversation(ctx, last, viewer.ID); return err })
	}
}

// testBigGroup: a group of 25 shows its first ten members in the order
// they joined and counts all 25; its members come in pages, in that
// order, each after the last of the one before; and the count follows
// every way in and out (joining, leaving, a direct conversation taken up
// again, a deleted account).
func testBigGroup(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	users := make([]chat.User, 25)
	for i := range users {
		users[i] = mustUser(t, s, fmt.Sprint("member", i))
	}
	// Created by users[0] with the next nine at t0, the rest joining one
	// by one later, in an order that is not their ids'.
	g := mustConversation(t, s, true, users[:10]...)
	joined := []int64{} // at the same instant: by id, the order they were made in
	for _, u := range users[:10] {
		joined = append(joined, u.ID)
	}
	for k := len(users) - 1; k >= 10; k-- {
		if err := s.AddParticipant(ctx, g, users[k].ID, chat.RoleMember, t0.Add(time.Duration(len(users)-k)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		joined = append(joined, users[k].ID)
	}
	check := func(what string, want []int64) {
		t.Helper()
		c, err := s.Conversation(ctx, g, users[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		var first []int64
		for _, p := range c.Participants {
			first = append(first, p.User.ID)
		}
		if c.MemberCount != len(want) || !slices.Equal(first, want[:min(len(want), chat.MaxInlineParticipants)]) {
			t.Errorf("%s: %d members, first %v; want %d, first %v", what, c.MemberCount, first, len(want), want[:min(len(want), chat.MaxInlineParticipants)])
		}
		var all []int64
		for after := (chat.Position{}); ; {
			page, err := s.Participants(ctx, g, after, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page {
				all = append(all, p.User.ID)
			}
			if len(page) < 7 {
				break
			}
			after = page[len(page)-1].Position()
		}
		if !slices.Equal(all, want) {
			t.Errorf("%s: participants in pages %v, want %v", what, all, want)
		}
	}
	check("25 members", joined)

	if err := s.RemoveParticipant(ctx, g, users[3].ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	joined = slices.DeleteFunc(joined, func(id int64) bool { return id == users[3].ID })
	check("one left", joined)
	if err := s.DeleteUser(ctx, users[5].ID, t0, t0); err != nil {
		t.Fatal(err)
	}
	joined = slices.DeleteFunc(joined, func(id int64) bool { return id == users[5].ID })
	check("one deleted", joined)

	p, err := s.Participant(ctx, g, users[20].ID)
	if err != nil || p.User.ID != users[20].ID || p.Role != chat.RoleMember {
		t.Errorf("participant %d: %+v %v", users[20].ID, p, err)
	}
	if _, err := s.Participant(ctx, g, users[3].ID); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("participant who left: %v", err)
	}

	// A direct conversation: one leaves, and starting it again brings
	// them back.
	a, b := users[0], users[1]
	direct := mustConversation(t, s, false, a, b)
	if err := s.RemoveParticipant(ctx, direct, b.ID, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Conversation(ctx, direct, a.ID); err != nil || c.MemberCount != 1 {
		t.Errorf("direct after one left: %d members, %v", c.MemberCount, err)
	}
	mustConversation(t, s, false, a, b)
	if c, err := s.Conversation(ctx, direct, a.ID); err != nil || c.MemberCount != 2 || len(c.Participants) != 2 {
		t.Errorf("direct taken up again: %d members, %d shown, %v", c.MemberCount, len(c.Participants), err)
	}
}

// testUnreadFromSeq: the unread count is what came after the reader's mark;
// a newcomer starts with nothing unread; sending makes everything before
// read without moving the read receipt; a deleted message still counts.
func testUnreadFromSeq(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c := mustUser(t, s, "ann"), mustUser(t, s, "ben"), mustUser(t, s, "cy")
	g := mustConversation(t, s, true, a, b)
	unread := func(u chat.User) int {
		t.Helper()
		cv, err := s.Conversation(ctx, g, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return cv.UnreadCount
	}
	m1 := mustSend(t, s, a, g, "1")
	mustSend(t, s, a, g, "2")
	if got := unread(a); got != 0 {
		t.Errorf("ann's own messages: %d unread", got)
	}
	if got := unread(b); got != 2 {
		t.Errorf("ben: %d unread, want 2", got)
	}
	if err := s.AddParticipant(ctx, g, c.ID, chat.RoleMember, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := unread(c); got != 0 {
		t.Errorf("cy on joining: %d unread", got)
	}
	m3 := mustSend(t, s, a, g, "3")
	if _, _, err := s.DeleteMessage(ctx, m3.ID, t0); err != nil {
		t.Fatal(err)
	}
	if got := unread(c); got != 1 {
		t.Errorf("cy after a deleted message: %d unread, want 1", got)
	}
	mark, _, err := s.MarkRead(ctx, g, b.ID, m1.ID)
	if err != nil || mark.UnreadCount != 2 || unread(b) != 2 {
		t.Errorf("ben read the first: %+v %v, list says %d; want 2", mark, err, unread(b))
	}
	// Sending in a batch with others moves only each sender's own mark,
	// to their newest message of it.
	res, err := s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: g, Sender: b.Lite(), Content: "4", At: t0},
		{ConversationID: g, Sender: c.Lite(), Content: "5", At: t0},
		{ConversationID: g, Sender: b.Lite(), Content: "6", At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := unread(b); got != 0 {
		t.Errorf("ben after sending: %d unread", got)
	}
	if got := unread(c); got != 1 { // ben's 6
		t.Errorf("cy after sending 5: %d unread, want 1", got)
	}
	if got := unread(a); got != 3 {
		t.Errorf("ann: %d unread, want 3", got)
	}
	counts, err := s.UnreadCounts(ctx, g)
	if want := map[int64]int{a.ID: 3, b.ID: 0, c.ID: 1}; err != nil || !maps.Equal(counts, want) {
		t.Errorf("unread counts %v %v, want %v", counts, err, want)
	}
	// The read receipt is ben's to move: sending leaves it where it was,
	// and reading his own message then moves it.
	cv, err := s.Conversation(ctx, g, b.ID)
	if p := cv.Participant(b.ID); err != nil || p == nil || p.LastReadMessageID != chat.OptID(m1.ID) {
		t.Errorf("ben's read receipt after sending: %+v %v, want %d", p, err, m1.ID)
	}
	mark, moved, err := s.MarkRead(ctx, g, b.ID, res[0].Message.ID)
	if err != nil || !moved || mark.LastReadMessageID != chat.OptID(res[0].Message.ID) || mark.UnreadCount != 0 {
		t.Errorf("ben reads his own 4 after sending 6: %+v moved=%v %v; want moved, 0 unread", mark, moved, err)
	}
}
