package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

// testBlocks: a block is made once and taken back once (each again
// changes nothing), is one-way, lists newest first, is refused for a
// user that does not exist, and goes with either account.
func testBlocks(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c, d := mustUser(t, s, "ada"), mustUser(t, s, "bea"), mustUser(t, s, "cy"), mustUser(t, s, "dee")

	for _, step := range []struct {
		blocked int64
		at      time.Duration
		want    bool
	}{{b.ID, 1, true}, {c.ID, 2, true}, {b.ID, 3, false}} {
		changed, err := s.Block(ctx, a.ID, step.blocked, t0.Add(step.at*time.Second))
		if err != nil || changed != step.want {
			t.Errorf("block %d: changed %v, %v; want %v", step.blocked, changed, err, step.want)
		}
	}
	if _, err := s.Block(ctx, a.ID, 999999, t0); chat.ErrorCode(err) != chat.CodeNotFound {
		t.Errorf("blocking a user that does not exist: %v, want not_found", err)
	}
	users, err := s.BlockedUsers(ctx, a.ID)
	if err != nil || len(users) != 2 || users[0].ID != c.ID || users[1].ID != b.ID || users[0].Username != "cy" {
		t.Errorf("blocked users: %+v %v; want cy (the newest), then bea", users, err)
	}
	if ids, err := s.BlockedIDs(ctx, a.ID); err != nil || !slices.Equal(ids, []int64{b.ID, c.ID}) {
		t.Errorf("blocked ids: %v %v; want %v", ids, err, []int64{b.ID, c.ID})
	}
	// One-way: nobody is blocked by b, and b's list is empty (not null).
	if users, err := s.BlockedUsers(ctx, b.ID); err != nil || users == nil || len(users) != 0 {
		t.Errorf("bea's block list: %#v %v; want empty", users, err)
	}
	if ids, err := s.BlockersAmong(ctx, b.ID, []int64{a.ID, c.ID, d.ID}); err != nil || !slices.Equal(ids, []int64{a.ID}) {
		t.Errorf("who of ada, cy, dee blocks bea: %v %v; want ada", ids, err)
	}
	if ids, err := s.BlockersAmong(ctx, a.ID, []int64{b.ID, c.ID}); err != nil || len(ids) != 0 {
		t.Errorf("who blocks ada: %v %v; want nobody", ids, err)
	}
	if ids, err := s.BlockersAmong(ctx, a.ID, nil); err != nil || len(ids) != 0 {
		t.Errorf("among nobody: %v %v", ids, err)
	}

	for _, want := range []bool{true, false} {
		if changed, err := s.Unblock(ctx, a.ID, b.ID); err != nil || changed != want {
			t.Errorf("unblock: changed %v, %v; want %v", changed, err, want)
		}
	}
	if ids, _ := s.BlockedIDs(ctx, a.ID); !slices.Equal(ids, []int64{c.ID}) {
		t.Errorf("after unblocking bea: %v, want only cy", ids)
	}

	// Either account's deletion takes the block with it.
	if _, err := s.Block(ctx, d.ID, a.ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, c.ID, t0, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, d.ID, t0, t0); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.BlockedIDs(ctx, a.ID); err != nil || len(ids) != 0 {
		t.Errorf("ada's blocks after cy's account went: %v %v", ids, err)
	}
	if ids, err := s.BlockersAmong(ctx, a.ID, []int64{d.ID}); err != nil || len(ids) != 0 {
		t.Errorf("dee's block of ada after dee's account went: %v %v", ids, err)
	}
}

// testBlocksSend: in a direct conversation, a sender the other
// participant blocks is refused (ErrBlocked), the other way round is
// not, a retried send still gets its original, and a group is not
// affected.
func testBlocksSend(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c := mustUser(t, s, "ada"), mustUser(t, s, "bea"), mustUser(t, s, "cy")
	direct := mustConversation(t, s, false, a, b)
	group := mustConversation(t, s, true, a, b, c)
	orig, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: direct, Sender: b.Lite(), Content: "before", ClientID: "k1", At: t0}})
	if err != nil || orig[0].Err != nil {
		t.Fatal(err, orig[0].Err)
	}
	if _, err := s.Block(ctx, a.ID, b.ID, t0); err != nil {
		t.Fatal(err)
	}
	before := len(all(t, s, direct))
	res, err := s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: direct, Sender: b.Lite(), Content: "after", At: t0},
		{ConversationID: direct, Sender: b.Lite(), Content: "after, with an id", ClientID: "k2", At: t0},
		{ConversationID: direct, Sender: b.Lite(), Content: "before", ClientID: "k1", At: t0},
		{ConversationID: direct, Sender: a.Lite(), Content: "the blocker writes", At: t0},
		{ConversationID: group, Sender: b.Lite(), Content: "in the group", At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []chat.Code{chat.CodeBlocked, chat.CodeBlocked, "", "", ""} {
		if got := chat.ErrorCode(res[i].Err); got != want {
			t.Errorf("message %d: %v, want %q", i, res[i].Err, want)
		}
	}
	if res[2].Created || res[2].Message.ID != orig[0].Message.ID {
		t.Errorf("a retried send after the block: %+v, want its original %d", res[2], orig[0].Message.ID)
	}
	if !res[3].Created || !res[4].Created {
		t.Errorf("the blocker's message %+v, the group message %+v: want both stored", res[3], res[4])
	}
	if got := len(all(t, s, direct)); got != before+1 {
		t.Errorf("the direct conversation has %d messages, want %d: only the blocker's is new", got, before+1)
	}
	// Seq has no hole where the refused ones were.
	msgs := all(t, s, direct)
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Errorf("seq %d at %d", m.Seq, i)
		}
	}
	if _, err := s.Unblock(ctx, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	mustSend(t, s, b, direct, "unblocked")
}
