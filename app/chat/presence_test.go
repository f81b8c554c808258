package chat_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// askingHub is the real hub, counting how often the service asks it who
// is online.
type askingHub struct {
	*hub.Hub
	asks atomic.Int64
}

func (a *askingHub) OnlineAmong(ctx context.Context, userIDs []int64) []int64 {
	a.asks.Add(1)
	return a.Hub.OnlineAmong(ctx, userIDs)
}

func TestPresence_ListingsAskOnceForEveryone(t *testing.T) {
	var asking *askingHub
	f := newFixtureWith(t, 5, chat.Options{}, wrapping{pub: func(h *hub.Hub) chat.Publisher {
		asking = &askingHub{Hub: h}
		return asking
	}})
	ctx := context.Background()
	me := f.users[0].ID
	var convs []int64
	for _, u := range f.users[1:] {
		c, _, err := f.svc.CreateConversation(ctx, me, []int64{u.ID}, "", false)
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, c.ID)
	}
	group := f.group(t)
	online := map[int64]bool{f.users[1].ID: true, f.users[3].ID: true}
	for id := range online {
		f.hub.Connect(ctx, id)
	}
	check := func(what string, ps []chat.Participant) {
		t.Helper()
		for _, p := range ps {
			if p.User.IsOnline != online[p.User.ID] {
				t.Errorf("%s: user %d is_online %v", what, p.User.ID, p.User.IsOnline)
			}
		}
	}
	asks := func(what string, want int64, f func()) {
		t.Helper()
		asking.asks.Store(0)
		f()
		if n := asking.asks.Load(); n != want {
			t.Errorf("%s asked the hub %d times, want %d", what, n, want)
		}
	}

	asks("listing conversations", 1, func() {
		list, err := f.svc.Conversations(ctx, me, 0, "")
		if err != nil || len(list.Results) != len(convs)+1 {
			t.Fatalf("conversations: %d, %v", len(list.Results), err)
		}
		for _, c := range list.Results {
			check("conversations", c.Participants)
		}
	})
	asks("one conversation", 1, func() {
		c, err := f.svc.Conversation(ctx, me, group)
		if err != nil {
			t.Fatal(err)
		}
		check("conversation", c.Participants)
	})
	asks("joining", 1, func() {
		ids, err := f.svc.OnlineUserIDs(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{f.users[1].ID, f.users[3].ID}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Errorf("online in the group: %v, want %v", ids, want)
		}
	})
	asks("searching users", 1, func() {
		us, err := f.svc.SearchUsers(ctx, "user", 100)
		if err != nil || len(us) != len(f.users) {
			t.Fatalf("search: %d, %v", len(us), err)
		}
		for _, u := range us {
			if u.IsOnline != online[u.ID] {
				t.Errorf("search: user %d is_online %v", u.ID, u.IsOnline)
			}
		}
	})
	asks("renaming a group (every participant's update, then the answer)", 2, func() {
		if _, err := f.svc.RenameConversation(ctx, me, group, "renamed"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPresence_NobodyOnlineIsAnEmptyList(t *testing.T) {
	f := newFixture(t, 2)
	ids, err := f.svc.OnlineUserIDs(context.Background(), f.group(t))
	if err != nil || ids == nil || len(ids) != 0 {
		t.Fatalf("online ids %#v, %v; want an empty, non-nil list (it encodes as [])", ids, err)
	}
}
