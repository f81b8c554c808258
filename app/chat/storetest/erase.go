package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

// mustDeleteUser deletes an account and erases all its messages, as the
// service does, with no reservation of its name.
func mustDeleteUser(tb testing.TB, s chat.Store, id int64) []chat.Message {
	tb.Helper()
	ctx := context.Background()
	if err := s.DeleteUser(ctx, id, t0, t0); err != nil {
		tb.Fatal(err)
	}
	return mustErase(tb, s, id)
}

// mustErase tombstones every message of deleted account id, in batches
// of two, and finishes the erasure.
func mustErase(tb testing.TB, s chat.Store, id int64) []chat.Message {
	tb.Helper()
	ctx := context.Background()
	ids, err := s.SentMessageIDs(ctx, id, true)
	if err != nil {
		tb.Fatal(err)
	}
	var erased []chat.Message
	for len(ids) > 0 {
		n := min(len(ids), 2)
		msgs, err := s.EraseMessages(ctx, id, ids[:n], t0.Add(time.Minute))
		if err != nil {
			tb.Fatal(err)
		}
		erased = append(erased, msgs...)
		ids = ids[n:]
	}
	if done, err := s.FinishErasure(ctx, id, t0.Add(time.Minute)); err != nil || !done {
		tb.Fatalf("finish erasure: done %v, %v", done, err)
	}
	return erased
}

func testDeleteUser(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	gone, b, c := mustUser(t, s, "gone"), mustUser(t, s, "ben"), mustUser(t, s, "cy")
	if err := s.InsertRefreshToken(ctx, chat.RefreshToken{Hash: hash("gone's"), UserID: gone.ID, ChainID: "g",
		ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	spoke := mustConversation(t, s, false, b, gone)
	kept := mustSend(t, s, b, spoke, "kept")
	last := mustSend(t, s, gone, spoke, "last")
	group := mustConversation(t, s, true, gone, c, b) // gone created it
	only := mustSend(t, s, gone, group, "only")
	// gone's reaction to ben's message stays, as an anonymous count; the
	// reactions to gone's message go with its content.
	if _, err := s.React(ctx, kept.ID, gone.ID, "👍", true, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.React(ctx, only.ID, b.ID, "🎉", true, t0); err != nil {
		t.Fatal(err)
	}
	untouched := mustConversation(t, s, false, b, c)
	hi := mustSend(t, s, c, untouched, "hi").ID
	before, err := s.LastVersions(ctx, []int64{spoke, group, untouched})
	if err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteUser(ctx, gone.ID, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, gone.ID, t0, t0.Add(time.Hour)); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("second delete: %v, want not found", err)
	}
	if err := s.DeleteUser(ctx, 1<<40, t0, t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown user: %v, want not found", err)
	}
	if _, err := s.UserByID(ctx, gone.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("deleted user found by id: %v", err)
	}
	if _, err := s.UserByUsername(ctx, "gone"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("deleted user found by name: %v", err)
	}
	for _, q := range []string{"gone", "del", ""} {
		users, err := s.SearchUsers(ctx, q, 10)
		if err != nil || slices.ContainsFunc(users, func(u chat.User) bool { return u.ID == gone.ID }) {
			t.Errorf("search %q finds the deleted user: %+v %v", q, users, err)
		}
	}
	err = s.RotateRefreshToken(ctx, hash("gone's"), chat.RefreshToken{Hash: hash("next"), UserID: gone.ID, ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}, t0)
	if !errors.Is(err, chat.ErrTokenNotValid) {
		t.Errorf("refresh of a deleted account: %v, want not valid", err)
	}
	if ids, err := s.ConversationIDs(ctx, gone.ID); err != nil || len(ids) != 0 {
		t.Errorf("a deleted account is still in %v (%v)", ids, err)
	}
	if pending, err := s.PendingErasures(ctx); err != nil || !slices.Equal(pending, []int64{gone.ID}) {
		t.Errorf("pending erasures %v (%v), want [%d]", pending, err, gone.ID)
	}
	after, err := s.LastVersions(ctx, []int64{spoke, group, untouched})
	if err != nil {
		t.Fatal(err)
	}
	if after[spoke] <= before[spoke] || after[group] <= before[group] || after[untouched] != before[untouched] {
		t.Errorf("versions %v then %v: the member gone is a change of its conversations only", before, after)
	}

	erased := mustErase(t, s, gone.ID)
	if got := len(erased); got != 2 {
		t.Errorf("erased %d messages, want 2", got)
	}
	if pending, err := s.PendingErasures(ctx); err != nil || len(pending) != 0 {
		t.Errorf("pending erasures after the erasure: %v %v", pending, err)
	}
	// Others see the conversations as they were, the member gone and
	// their messages as tombstones of "Deleted user".
	for conv, want := range map[int64]int64{spoke: last.ID, group: only.ID, untouched: hi} {
		cv, err := s.Conversation(ctx, conv, b.ID)
		if err != nil {
			t.Errorf("conversation %d: %v", conv, err)
			continue
		}
		if cv.LastMessage == nil || cv.LastMessage.ID != want {
			t.Errorf("conversation %d: last message %+v, want %d", conv, cv.LastMessage, want)
		}
		if cv.Participant(gone.ID) != nil {
			t.Errorf("conversation %d still lists the deleted user", conv)
		}
	}
	if cv, _ := s.Conversation(ctx, group, b.ID); cv.CreatedBy != chat.OptID(gone.ID) || cv.MemberCount != 2 {
		t.Errorf("group: created_by %d, %d members; want %d and 2", cv.CreatedBy, cv.MemberCount, gone.ID)
	}
	for _, conv := range []int64{spoke, group} {
		for _, m := range all(t, s, conv) {
			if m.Sender.ID != gone.ID {
				continue
			}
			if !m.IsDeleted || m.Content != "" || len(m.Mentions) != 0 ||
				m.Sender.Username != chat.DeletedName || m.Sender.DisplayName != chat.DeletedName {
				t.Errorf("message %d of the deleted user: %+v", m.ID, m)
			}
		}
	}
	rs, err := s.Reactions(ctx, b.ID, []int64{kept.ID, only.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs[kept.ID]) != 1 || rs[kept.ID][0].Count != 1 || len(rs[only.ID]) != 0 {
		t.Errorf("reactions after the erasure: %+v", rs)
	}
	// Everything erased is a change the others' sync sees.
	changes, err := s.Changes(ctx, group, before[group], 0, 10)
	if err != nil || len(changes) != 1 || !changes[0].Message.IsDeleted || changes[0].Message.ID != only.ID {
		t.Errorf("changes of the group since the deletion: %+v %v", changes, err)
	}
	cs, err := s.Conversations(ctx, b.ID, chat.Position{}, 10)
	if err != nil || len(cs) != 3 {
		t.Errorf("b has %d conversations (%v), want 3", len(cs), err)
	}
	// What was sent stays listed for the erased account's own export.
	if ids, err := s.SentMessageIDs(ctx, gone.ID, false); err != nil || !slices.Equal(ids, []int64{last.ID, only.ID}) {
		t.Errorf("sent ids %v (%v), want [%d %d]", ids, err, last.ID, only.ID)
	}
}

func testUsernameReserved(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	old := mustUser(t, s, "Taken.Name")
	gone := mustUser(t, s, "quick")
	if err := s.DeleteUser(ctx, old.ID, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Reserved, whatever the case, until the hour is over.
	for _, name := range []string{"Taken.Name", "taken.name"} {
		_, err := s.CreateUser(ctx, name, "", "h", t0.Add(time.Minute))
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Code != chat.CodeInvalid || len(ce.Fields["username"]) == 0 {
			t.Errorf("register %q while reserved: %v, want invalid on username", name, err)
		}
	}
	if n, err := s.ReleaseUsernames(ctx, t0.Add(time.Minute)); err != nil || n != 0 {
		t.Errorf("release before the end: %d %v", n, err)
	}
	// A live account's name is still simply taken.
	if _, err := s.CreateUser(ctx, "QUICK", "", "h", t0); chat.ErrorCode(err) != chat.CodeConflict {
		t.Errorf("register a live name: %v, want conflict", err)
	}
	// Once over, the name is free: at registration...
	u, err := s.CreateUser(ctx, "taken.name", "", "h", t0.Add(time.Hour))
	if err != nil || u.ID == old.ID {
		t.Fatalf("register after the reservation: %+v %v", u, err)
	}
	// ...or by the sweep.
	if err := s.DeleteUser(ctx, gone.ID, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ReleaseUsernames(ctx, t0.Add(2*time.Hour)); err != nil || n != 1 {
		t.Errorf("release after the end: %d %v, want 1", n, err)
	}
	if _, err := s.CreateUser(ctx, "quick", "", "h", t0.Add(2*time.Hour)); err != nil {
		t.Errorf("register a released name: %v", err)
	}
	// No reservation: free at once.
	free := mustUser(t, s, "free")
	if err := s.DeleteUser(ctx, free.ID, t0, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "free", "", "h", t0); err != nil {
		t.Errorf("register the name of an account deleted without reservation: %v", err)
	}
}

func testEraseBatches(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	gone, b := mustUser(t, s, "gone"), mustUser(t, s, "ben")
	c1 := mustConversation(t, s, false, gone, b)
	c2 := mustConversation(t, s, true, b, gone)
	var sent []int64
	for i := range 5 {
		conv := c1
		if i%2 == 1 {
			conv = c2
		}
		sent = append(sent, mustSend(t, s, gone, conv, "secret").ID)
		mustSend(t, s, b, conv, "reply")
	}
	// One of them deleted already: it takes no second version.
	if _, _, err := s.DeleteMessage(ctx, sent[0], t0); err != nil {
		t.Fatal(err)
	}
	before, err := s.LastVersions(ctx, []int64{c1, c2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, gone.ID, t0, t0); err != nil {
		t.Fatal(err)
	}
	mid, err := s.LastVersions(ctx, []int64{c1, c2})
	if err != nil {
		t.Fatal(err)
	}
	if done, err := s.FinishErasure(ctx, gone.ID, t0); err != nil || done {
		t.Errorf("finish with messages left: %v %v, want not done", done, err)
	}
	live, err := s.SentMessageIDs(ctx, gone.ID, true)
	if err != nil || !slices.Equal(live, sent[1:]) {
		t.Fatalf("live ids %v (%v), want %v", live, err, sent[1:])
	}
	// An id that is not theirs, or already erased, is left alone.
	msgs, err := s.EraseMessages(ctx, gone.ID, []int64{sent[0], sent[1], sent[2], sent[2] + 1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].ID != sent[1] || msgs[1].ID != sent[2] {
		t.Fatalf("erased %+v, want %d and %d", msgs, sent[1], sent[2])
	}
	// Each in its conversation's order: its previous version is the
	// conversation's before it.
	prev := map[int64]int64{c1: mid[c1], c2: mid[c2]}
	for _, m := range msgs {
		if m.PrevVersion != prev[m.ConversationID] || m.Version <= m.PrevVersion || !m.IsDeleted || m.Content != "" {
			t.Errorf("erased %d: version %d after %d, want after %d; deleted %v", m.ID, m.Version, m.PrevVersion, prev[m.ConversationID], m.IsDeleted)
		}
		prev[m.ConversationID] = m.Version
	}
	if got, _ := s.Message(ctx, sent[2]+1); got.IsDeleted || got.Content != "reply" {
		t.Errorf("another's message: %+v", got)
	}
	now, err := s.LastVersions(ctx, []int64{c1, c2})
	if err != nil || now[c1] != prev[c1] || now[c2] != prev[c2] {
		t.Errorf("conversation versions %v (%v), want %v", now, err, prev)
	}
	rest := mustErase(t, s, gone.ID)
	if len(rest) != 2 {
		t.Errorf("erased %d more, want 2", len(rest))
	}
	if v, _ := s.LastVersions(ctx, []int64{c1, c2}); v[c1] <= before[c1] || v[c2] <= before[c2] {
		t.Errorf("versions %v, before %v", v, before)
	}
	if done, err := s.FinishErasure(ctx, gone.ID, t0); err != nil || !done {
		t.Errorf("finish again: %v %v, want done", done, err)
	}
	if msgs, err := s.MessagesByIDs(ctx, sent); err != nil || len(msgs) != len(sent) {
		t.Errorf("by ids: %d (%v)", len(msgs), err)
	}
}
