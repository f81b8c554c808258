// Package storetest holds the behaviour every notify.Store must have, as
// tests that each store's package runs against itself (Run), so that the
// SQLite and the PostgreSQL store keep devices and mutes alike. It knows
// no SQL.
package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/notify"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Store is a store of both users and conversations (to make the owners
// of devices and the conversations they mute) and of devices.
type Store interface {
	chat.Store
	notify.Store
	notify.Outbox
	notify.WebhookOutbox
}

// Run runs every behaviour test of notify.Store, each in a parallel
// subtest. open must return a Store on an empty database of the
// subtest's own, and close it when the test ends.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"RegisterDevice_SameTokenIsTheSameDevice", testSameToken},
		{"RegisterDevice_TokenMovesToAnotherUser", testMoves},
		{"RegisterDevice_PlatformsAreApart", testPlatformsApart},
		{"RegisterDevice_CapDropsLeastRecentlyRegistered", testCap},
		{"DeleteDevice_OnlyOnesOwn", testDelete},
		{"Devices_GoWithTheirUser", testCascade},
		{"SetMuted_PerParticipant", testMuted},
		{"Outbox_CoalescesPerDeviceAndConversation", testOutboxCoalesces},
		{"Outbox_DropsWhatTheRecipientNoLongerNeeds", testOutboxDrops},
		{"Outbox_PrunesDoneDeliveriesAfterRetention", testOutboxPrunes},
		{"UserDeliveries_OnlyTheUsersNewestFirst", testUserDeliveries},
		{"Outbox_SaysWhoBlocksEachSender", testOutboxBlockedBy},
		{"Webhooks_OffWritesNone", testWebhooksOff},
		{"Webhooks_EveryChangeInItsTransaction", testWebhooksWritten},
		{"Webhooks_OnlyTheChosenTypes", testWebhooksChosenOnly},
		{"Webhooks_LeaseRetryFinishPrune", testWebhooksLease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

func mustUser(tb testing.TB, s Store, name string) chat.User {
	tb.Helper()
	u, err := s.CreateUser(context.Background(), name, name, "hash", t0)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func mustRegister(tb testing.TB, s Store, d notify.Device, max int, wantCreated bool) notify.Device {
	tb.Helper()
	got, created, err := s.RegisterDevice(context.Background(), d, max)
	if err != nil {
		tb.Fatal(err)
	}
	if created != wantCreated {
		tb.Fatalf("register %s %q for %d: created %v, want %v", d.Platform, d.Token, d.UserID, created, wantCreated)
	}
	if got.ID == 0 || got.UserID != d.UserID {
		tb.Fatalf("registered %+v", got)
	}
	return got
}

func mustDevices(tb testing.TB, s Store, userID int64) []notify.Device {
	tb.Helper()
	list, err := s.Devices(context.Background(), userID)
	if err != nil {
		tb.Fatal(err)
	}
	return list
}

func fcm(userID int64, token string, at time.Time) notify.Device {
	return notify.Device{UserID: userID, Platform: notify.PlatformFCM, Token: token, UpdatedAt: at}
}

func testSameToken(t *testing.T, s Store) {
	a := mustUser(t, s, "alice")
	first := mustRegister(t, s, fcm(a.ID, "tok-1", t0), 20, true)
	if !first.CreatedAt.Equal(t0) {
		t.Errorf("created_at %v, want %v", first.CreatedAt, t0)
	}
	again := mustRegister(t, s, fcm(a.ID, "tok-1", t0.Add(time.Hour)), 20, false)
	if again.ID != first.ID || !again.CreatedAt.Equal(t0) {
		t.Errorf("again: %+v, want id %d created %v", again, first.ID, t0)
	}
	// A Web Push subscription is the same device by its endpoint; its
	// keys are the latest the browser gave.
	wp := notify.Device{UserID: a.ID, Platform: notify.PlatformWebPush, Token: "https://push.example/1", P256dh: "k1", Auth: "a1", UpdatedAt: t0}
	w1 := mustRegister(t, s, wp, 20, true)
	wp.P256dh, wp.Auth = "k2", "a2"
	w2 := mustRegister(t, s, wp, 20, false)
	if w2.ID != w1.ID {
		t.Errorf("endpoint registered again: id %d, want %d", w2.ID, w1.ID)
	}
	list := mustDevices(t, s, a.ID)
	if len(list) != 2 {
		t.Fatalf("devices %+v, want two", list)
	}
	for _, d := range list {
		switch d.ID {
		case first.ID:
			if d.Platform != notify.PlatformFCM || d.Token != "tok-1" || d.P256dh != "" || d.Auth != "" ||
				!d.CreatedAt.Equal(t0) || !d.UpdatedAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("fcm device %+v", d)
			}
		case w1.ID:
			if d.Platform != notify.PlatformWebPush || d.Token != "https://push.example/1" || d.P256dh != "k2" || d.Auth != "a2" {
				t.Errorf("webpush device %+v", d)
			}
		default:
			t.Errorf("unknown device %+v", d)
		}
	}
}

func testMoves(t *testing.T, s Store) {
	a, b := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	mustRegister(t, s, fcm(a.ID, "phone", t0), 20, true)
	moved := mustRegister(t, s, fcm(b.ID, "phone", t0.Add(time.Hour)), 20, true)
	if !moved.CreatedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("moved device created_at %v, want the move's time", moved.CreatedAt)
	}
	if list := mustDevices(t, s, a.ID); len(list) != 0 {
		t.Errorf("the previous owner still has %+v", list)
	}
	if list := mustDevices(t, s, b.ID); len(list) != 1 || list[0].Token != "phone" || list[0].ID != moved.ID {
		t.Errorf("the new owner has %+v", list)
	}
	if err := s.DeleteDevice(context.Background(), a.ID, moved.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("the previous owner deleted the moved device: %v", err)
	}
}

func testPlatformsApart(t *testing.T, s Store) {
	a := mustUser(t, s, "alice")
	mustRegister(t, s, fcm(a.ID, "same", t0), 20, true)
	mustRegister(t, s, notify.Device{UserID: a.ID, Platform: notify.PlatformAPNs, Token: "same", UpdatedAt: t0}, 20, true)
	if list := mustDevices(t, s, a.ID); len(list) != 2 {
		t.Errorf("devices %+v, want one per platform", list)
	}
}

func testCap(t *testing.T, s Store) {
	a, b := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	other := mustRegister(t, s, fcm(b.ID, "bob's", t0), 3, true)
	var ids []int64
	for i, tok := range []string{"t0", "t1", "t2"} {
		ids = append(ids, mustRegister(t, s, fcm(a.ID, tok, t0.Add(time.Duration(i)*time.Minute)), 3, true).ID)
	}
	// t0 registered again is the most recent now: t1 goes for t3.
	mustRegister(t, s, fcm(a.ID, "t0", t0.Add(time.Hour)), 3, false)
	t3 := mustRegister(t, s, fcm(a.ID, "t3", t0.Add(2*time.Hour)), 3, true)
	var got []int64
	for _, d := range mustDevices(t, s, a.ID) {
		got = append(got, d.ID)
	}
	want := []int64{ids[0], ids[2], t3.ID} // oldest first by created_at
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("devices %v, want %v", got, want)
	}
	// Registered in the same millisecond, the later one is the newer.
	for _, tok := range []string{"u1", "u2", "u3"} {
		mustRegister(t, s, fcm(a.ID, tok, t0.Add(3*time.Hour)), 3, true)
	}
	var toks []string
	for _, d := range mustDevices(t, s, a.ID) {
		toks = append(toks, d.Token)
	}
	if len(toks) != 3 || toks[0] != "u1" || toks[2] != "u3" {
		t.Errorf("devices %v, want u1 u2 u3", toks)
	}
	if list := mustDevices(t, s, b.ID); len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("another user's cap took bob's device: %+v", list)
	}
}

func testDelete(t *testing.T, s Store) {
	ctx := context.Background()
	a, b := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	d := mustRegister(t, s, fcm(a.ID, "tok", t0), 20, true)
	if err := s.DeleteDevice(ctx, b.ID, d.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("someone else's device: %v, want not found", err)
	}
	if err := s.DeleteDevice(ctx, a.ID, d.ID+1000); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("an unknown device: %v, want not found", err)
	}
	if err := s.DeleteDevice(ctx, a.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx, a.ID, d.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("deleted twice: %v, want not found", err)
	}
	if list := mustDevices(t, s, a.ID); len(list) != 0 {
		t.Errorf("left %+v", list)
	}
}

func testCascade(t *testing.T, s Store) {
	a := mustUser(t, s, "alice")
	mustRegister(t, s, fcm(a.ID, "tok", t0), 20, true)
	if err := s.DeleteUser(context.Background(), a.ID, t0, t0); err != nil {
		t.Fatal(err)
	}
	if list := mustDevices(t, s, a.ID); len(list) != 0 {
		t.Errorf("a removed user's devices: %+v", list)
	}
	// The token is free for anyone.
	b := mustUser(t, s, "bob")
	mustRegister(t, s, fcm(b.ID, "tok", t0), 20, true)
}

func testMuted(t *testing.T, s Store) {
	ctx := context.Background()
	a, b, c := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID, b.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	until := func(u chat.User) int64 {
		t.Helper()
		v, err := s.MutedUntil(ctx, u.ID, conv)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if until(a) != 0 || until(b) != 0 {
		t.Error("muted before anyone muted")
	}
	if err := s.SetMuted(ctx, a.ID, conv, notify.MutedForever); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Hour).UnixMilli()
	if err := s.SetMuted(ctx, b.ID, conv, later); err != nil {
		t.Fatal(err)
	}
	if until(a) != notify.MutedForever || until(b) != later {
		t.Errorf("muted until %d and %d, want forever and %d", until(a), until(b), later)
	}
	if err := s.SetMuted(ctx, a.ID, conv, 0); err != nil {
		t.Fatal(err)
	}
	if until(a) != 0 || until(b) != later {
		t.Errorf("after unmuting one: %d and %d", until(a), until(b))
	}
	if err := s.SetMuted(ctx, c.ID, conv, later); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("a non-participant muted: %v", err)
	}
	if _, err := s.MutedUntil(ctx, c.ID, conv); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("a non-participant's mute: %v", err)
	}
	if err := s.SetMuted(ctx, a.ID, conv+1000, later); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("an unknown conversation: %v", err)
	}
}

// testOutboxCoalesces: the mark moves past each batch; a push makes one pending delivery per device, a newer one
// replaces its message; a claim leases it; a send that finishes after a
// newer message was coalesced leaves it pending for that one; gone
// deletes the device.
func testOutboxCoalesces(t *testing.T, s Store) {
	ctx := context.Background()
	a, b := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID, b.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	send := func(content string) int64 {
		t.Helper()
		res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: chat.UserLite{ID: a.ID}, Content: content, At: t0}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
		return res[0].Message.ID
	}
	// The mark starts at the newest message when the table is made (no
	// push for history); this database had none, so this one is above it.
	early := send("before any device")
	var seen []notify.PushMessage
	decide := func(_ context.Context, batch notify.PushBatch) ([]notify.Push, error) {
		var out []notify.Push
		for _, m := range batch.Messages {
			seen = append(seen, m)
			for _, r := range m.Recipients {
				out = append(out, notify.Push{UserID: r.UserID, ConversationID: m.ConversationID, MessageID: m.ID,
					Collapse: notify.Collapse(conv), Payload: []byte(`{"title":"` + m.Content + `"}`)})
			}
		}
		return out, nil
	}
	// Nobody has a device yet: the message is decided with no recipient.
	if r, err := s.DecidePushes(ctx, 10, t0, time.Second, decide); err != nil || r.Read != 1 || len(r.Queued) != 0 || seen[0].ID != early || len(seen[0].Recipients) != 0 {
		t.Fatalf("decide %+v, %v: %+v", r, err, seen)
	}
	seen = nil
	mustRegister(t, s, notify.Device{UserID: b.ID, Platform: notify.PlatformFCM, Token: "b1", UpdatedAt: t0}, 10, true)
	mustRegister(t, s, notify.Device{UserID: b.ID, Platform: notify.PlatformAPNs, Token: "b2", UpdatedAt: t0}, 10, true)
	first, second := send("one"), send("two")
	// Two pushes to two devices: four deliveries queued (the second push
	// coalesced into the first's), by platform.
	if r, err := s.DecidePushes(ctx, 10, t0, time.Second, decide); err != nil || r.Read != 2 || r.Skipped ||
		r.Queued[notify.PlatformFCM] != 2 || r.Queued[notify.PlatformAPNs] != 2 || len(r.Queued) != 2 {
		t.Fatalf("decide: %+v %v", r, err)
	}
	if p, err := s.PendingDeliveries(ctx); err != nil || p[notify.PlatformFCM] != 1 || p[notify.PlatformAPNs] != 1 || len(p) != 2 {
		t.Fatalf("pending %v, %v: want one per device", p, err)
	}
	if len(seen) != 2 || seen[0].ID != first || len(seen[0].Recipients) != 1 || seen[0].Recipients[0].UserID != b.ID || seen[0].SenderName != a.Username {
		t.Fatalf("batch %+v", seen)
	}
	if r, _ := s.DecidePushes(ctx, 10, t0, time.Second, decide); r.Read != 0 {
		t.Fatalf("decided again: %+v", r)
	}
	if got, _ := s.ClaimDeliveries(ctx, t0, t0.Add(time.Minute), 10); len(got) != 0 {
		t.Fatalf("claimed before due: %+v", got)
	}
	now := t0.Add(time.Second)
	claimed, err := s.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %+v, %v; want one per device", claimed, err)
	}
	for _, d := range claimed {
		if d.MessageID != second || string(d.Payload) != `{"title":"two"}` || d.Attempts != 1 || d.Device.UserID != b.ID {
			t.Fatalf("delivery %+v: want the newest message", d)
		}
	}
	if again, _ := s.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10); len(again) != 0 {
		t.Fatalf("claimed twice: %+v", again)
	}
	// A third message arrives while the first device's send is in flight.
	third := send("three")
	if _, err := s.DecidePushes(ctx, 10, now, time.Second, decide); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDelivery(ctx, claimed[0], notify.Outcome{State: notify.DeliverySent}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDelivery(ctx, claimed[1], notify.Outcome{State: notify.DeliveryGone, Error: "gone"}, now); err != nil {
		t.Fatal(err)
	}
	left, err := s.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10)
	if err != nil || len(left) != 1 || left[0].ID != claimed[0].ID || left[0].MessageID != third {
		t.Fatalf("after finishing: %+v, %v; want the first device's delivery pending for message %d", left, err, third)
	}
	if devs, _ := s.Devices(ctx, b.ID); len(devs) != 1 || devs[0].ID != claimed[0].Device.ID {
		t.Fatalf("devices %+v: want the gone one deleted", devs)
	}
}

// testOutboxDrops: a due delivery whose user read the conversation up to
// its message is dropped by the claim, not claimed, while a later
// message makes a new one; a claimed delivery finished as dropped (its
// user came back online) is deleted, unless a newer message was
// coalesced into it meanwhile: then it stays pending, due at once.
func testOutboxDrops(t *testing.T, s Store) {
	ctx := context.Background()
	a, b, c := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID, b.ID, c.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, notify.Device{UserID: b.ID, Platform: notify.PlatformFCM, Token: "b1", UpdatedAt: t0}, 10, true)
	mustRegister(t, s, notify.Device{UserID: c.ID, Platform: notify.PlatformFCM, Token: "c1", UpdatedAt: t0}, 10, true)
	send := func(content string) int64 {
		t.Helper()
		res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: chat.UserLite{ID: a.ID}, Content: content, At: t0}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
		return res[0].Message.ID
	}
	decideAt := func(at time.Time) {
		t.Helper()
		decide := func(_ context.Context, batch notify.PushBatch) ([]notify.Push, error) {
			var out []notify.Push
			for _, m := range batch.Messages {
				for _, r := range m.Recipients {
					out = append(out, notify.Push{UserID: r.UserID, ConversationID: m.ConversationID, MessageID: m.ID,
						Collapse: notify.Collapse(conv), Payload: []byte(`{"title":"` + m.Content + `"}`)})
				}
			}
			return out, nil
		}
		if _, err := s.DecidePushes(ctx, 10, at, 3*time.Second, decide); err != nil {
			t.Fatal(err)
		}
	}
	first := send("one")
	decideAt(t0)
	// Bob reads the message within the wait; carol does not.
	if _, _, err := s.MarkRead(ctx, conv, b.ID, first); err != nil {
		t.Fatal(err)
	}
	due := t0.Add(3 * time.Second)
	claimed, err := s.ClaimDeliveries(ctx, due, due.Add(time.Minute), 10)
	if err != nil || len(claimed) != 1 || claimed[0].Device.UserID != c.ID || claimed[0].MessageID != first {
		t.Fatalf("claimed %+v, %v; want carol's only (bob read the message)", claimed, err)
	}
	later := due.Add(2 * time.Minute) // past the lease
	if again, err := s.ClaimDeliveries(ctx, later, later.Add(time.Minute), 10); err != nil || len(again) != 1 || again[0].ID != claimed[0].ID {
		t.Fatalf("after the lease: %+v, %v; want carol's again and bob's gone", again, err)
	}
	if err := s.FinishDelivery(ctx, claimed[0], notify.Outcome{State: notify.DeliverySent}, later); err != nil {
		t.Fatal(err)
	}

	// A newer message bob has not read is pushed to him.
	second := send("two")
	decideAt(later)
	now := later.Add(3 * time.Second)
	claimed, err = s.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %+v, %v; want bob's and carol's", claimed, err)
	}
	var bob, carol notify.Delivery
	for _, d := range claimed {
		if d.MessageID != second {
			t.Fatalf("delivery %+v: want message %d", d, second)
		}
		if d.Device.UserID == b.ID {
			bob = d
		} else {
			carol = d
		}
	}
	// Both come back online. Bob's delivery is dropped; carol's takes a
	// third message before it is recorded as dropped: it stays, due at
	// once, for that one.
	if err := s.FinishDelivery(ctx, bob, notify.Outcome{State: notify.DeliveryDropped}, now); err != nil {
		t.Fatal(err)
	}
	third := send("three")
	decideAt(now) // bob's new delivery is due at now+3s
	if err := s.FinishDelivery(ctx, carol, notify.Outcome{State: notify.DeliveryDropped}, now); err != nil {
		t.Fatal(err)
	}
	left, err := s.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10)
	if err != nil || len(left) != 1 || left[0].ID != carol.ID || left[0].MessageID != third {
		t.Fatalf("after dropping: %+v, %v; want carol's, due at once, for message %d", left, err, third)
	}
	end := now.Add(time.Hour)
	rest, err := s.ClaimDeliveries(ctx, end, end.Add(time.Minute), 10)
	if err != nil || len(rest) != 2 {
		t.Fatalf("an hour on: %+v, %v; want carol's and bob's new one", rest, err)
	}
	for _, d := range rest {
		if d.ID == bob.ID || d.MessageID != third {
			t.Fatalf("an hour on: %+v; want message %d, and bob's dropped delivery gone", d, third)
		}
	}
}

// testOutboxPrunes: PruneDeliveries deletes the deliveries done (sent,
// failed) before the given time, a batch at a time, and never a pending
// one, however old; PendingDeliveries counts only the pending.
func testOutboxPrunes(t *testing.T, s Store) {
	ctx := context.Background()
	a, b := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	mustRegister(t, s, notify.Device{UserID: b.ID, Platform: notify.PlatformWebPush, Token: "https://push.example/b", P256dh: "k", Auth: "a", UpdatedAt: t0}, 10, true)
	// Three conversations: three deliveries to the one device.
	for range 3 {
		c, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID, b.ID}, At: t0})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: c, Sender: chat.UserLite{ID: a.ID}, Content: "hi", At: t0}}); err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
	}
	decide := func(_ context.Context, batch notify.PushBatch) ([]notify.Push, error) {
		var out []notify.Push
		for _, m := range batch.Messages {
			out = append(out, notify.Push{UserID: b.ID, ConversationID: m.ConversationID, MessageID: m.ID,
				Collapse: notify.Collapse(m.ConversationID), Payload: []byte(`{}`)})
		}
		return out, nil
	}
	if r, err := s.DecidePushes(ctx, 10, t0, 0, decide); err != nil || r.Queued[notify.PlatformWebPush] != 3 {
		t.Fatalf("decide %+v, %v", r, err)
	}
	claimed, err := s.ClaimDeliveries(ctx, t0, t0.Add(time.Minute), 2)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %+v, %v", claimed, err)
	}
	done := t0.Add(time.Second)
	if err := s.FinishDelivery(ctx, claimed[0], notify.Outcome{State: notify.DeliverySent}, done); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDelivery(ctx, claimed[1], notify.Outcome{State: notify.DeliveryFailed, Error: "refused"}, done); err != nil {
		t.Fatal(err)
	}
	if p, err := s.PendingDeliveries(ctx); err != nil || p[notify.PlatformWebPush] != 1 {
		t.Fatalf("pending %v, %v: want the one not sent", p, err)
	}
	if n, err := s.PruneDeliveries(ctx, done, 10); err != nil || n != 0 {
		t.Fatalf("pruned %d, %v: nothing was done before %v", n, err, done)
	}
	later := done.Add(24 * time.Hour)
	if n, err := s.PruneDeliveries(ctx, later, 1); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v: want one, the limit", n, err)
	}
	if n, err := s.PruneDeliveries(ctx, later, 10); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v: want the other done one", n, err)
	}
	if n, err := s.PruneDeliveries(ctx, later, 10); err != nil || n != 0 {
		t.Fatalf("pruned %d, %v: the pending one must stay", n, err)
	}
	left, err := s.ClaimDeliveries(ctx, later, later.Add(time.Minute), 10)
	if err != nil || len(left) != 1 || left[0].ID == claimed[0].ID || left[0].ID == claimed[1].ID {
		t.Fatalf("left %+v, %v: want the pending delivery", left, err)
	}
}

// testUserDeliveries: a user's outbox counts and lists the deliveries
// made for them only, newest first, with their devices' platforms and
// what the sends recorded; limit caps the list, never the counts.
func testUserDeliveries(t *testing.T, s Store) {
	ctx := context.Background()
	a, b, c := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID, b.ID, c.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID, b.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	phone := mustRegister(t, s, notify.Device{UserID: b.ID, Platform: notify.PlatformFCM, Token: "b-phone", UpdatedAt: t0}, 10, true)
	laptop := mustRegister(t, s, notify.Device{UserID: b.ID, Platform: notify.PlatformWebPush, Token: "https://push.example/b", P256dh: "k", Auth: "a", UpdatedAt: t0}, 10, true)
	mustRegister(t, s, notify.Device{UserID: c.ID, Platform: notify.PlatformFCM, Token: "c-phone", UpdatedAt: t0}, 10, true)
	send := func(conv int64) int64 {
		t.Helper()
		res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: chat.UserLite{ID: a.ID}, Content: "hi", At: t0}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
		return res[0].Message.ID
	}
	decide := func(_ context.Context, batch notify.PushBatch) ([]notify.Push, error) {
		var out []notify.Push
		for _, m := range batch.Messages {
			for _, r := range m.Recipients {
				out = append(out, notify.Push{UserID: r.UserID, ConversationID: m.ConversationID, MessageID: m.ID,
					Collapse: notify.Collapse(m.ConversationID), Payload: []byte(`{"title":"hi"}`)})
			}
		}
		return out, nil
	}
	outbox := func(u chat.User, limit int) notify.UserOutbox {
		t.Helper()
		o, err := s.UserDeliveries(ctx, u.ID, limit)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if o := outbox(b, 10); len(o.Counts) != 0 || len(o.Latest) != 0 {
		t.Fatalf("an empty outbox: %+v", o)
	}
	first := send(conv)
	if _, err := s.DecidePushes(ctx, 10, t0, time.Second, decide); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Second)
	claimed, err := s.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claimed %+v, %v; want bob's two and carol's one", claimed, err)
	}
	for _, d := range claimed {
		o := notify.Outcome{State: notify.DeliverySent}
		if d.Device.ID == laptop.ID {
			o = notify.Outcome{State: notify.DeliveryFailed, Error: "push service said 400"}
		}
		if err := s.FinishDelivery(ctx, d, o, now); err != nil {
			t.Fatal(err)
		}
	}
	second := send(other)
	if _, err := s.DecidePushes(ctx, 10, now, time.Second, decide); err != nil {
		t.Fatal(err)
	}

	o := outbox(b, 10)
	if o.Counts[notify.DeliveryPending] != 2 || o.Counts[notify.DeliverySent] != 1 || o.Counts[notify.DeliveryFailed] != 1 || len(o.Counts) != 3 {
		t.Errorf("bob's counts %v, want 2 pending, 1 sent, 1 failed", o.Counts)
	}
	if len(o.Latest) != 4 {
		t.Fatalf("bob's deliveries %+v, want 4", o.Latest)
	}
	for i, d := range o.Latest {
		if i > 0 && d.ID >= o.Latest[i-1].ID {
			t.Errorf("not newest first: %+v", o.Latest)
		}
		if d.DeviceID != phone.ID && d.DeviceID != laptop.ID {
			t.Errorf("delivery %+v to a device not bob's", d)
		}
	}
	for _, d := range o.Latest[:2] {
		if d.ConversationID != other || d.MessageID != second || d.State != notify.DeliveryPending || d.Attempts != 0 ||
			d.LastError != "" || !d.NextAt.Equal(now.Add(time.Second)) || !d.CreatedAt.Equal(now) {
			t.Errorf("pending delivery %+v", d)
		}
	}
	for _, d := range o.Latest[2:] {
		if d.ConversationID != conv || d.MessageID != first || d.Attempts != 1 || !d.UpdatedAt.Equal(now) {
			t.Errorf("finished delivery %+v", d)
		}
		switch d.DeviceID {
		case laptop.ID:
			if d.Platform != notify.PlatformWebPush || d.State != notify.DeliveryFailed || d.LastError != "push service said 400" {
				t.Errorf("the failed delivery %+v", d)
			}
		case phone.ID:
			if d.Platform != notify.PlatformFCM || d.State != notify.DeliverySent || d.LastError != "" {
				t.Errorf("the sent delivery %+v", d)
			}
		}
	}
	if short := outbox(b, 1); len(short.Latest) != 1 || short.Latest[0].ID != o.Latest[0].ID || short.Counts[notify.DeliveryPending] != 2 {
		t.Errorf("limit 1: %+v", short)
	}
	if co := outbox(c, 10); len(co.Latest) != 1 || co.Counts[notify.DeliverySent] != 1 || co.Latest[0].State != notify.DeliverySent {
		t.Errorf("carol's outbox %+v, want her one sent delivery", co)
	}
	if ao := outbox(a, 10); len(ao.Latest) != 0 || len(ao.Counts) != 0 {
		t.Errorf("the sender's outbox %+v, want empty", ao)
	}

	// Carol's phone changes hands: what was made for her goes with the
	// move, and nothing of hers is ever sent to its new owner.
	send(conv)
	if _, err := s.DecidePushes(ctx, 10, now, time.Second, decide); err != nil {
		t.Fatal(err)
	}
	if co := outbox(c, 10); co.Counts[notify.DeliveryPending] != 1 {
		t.Fatalf("carol's outbox before the move %+v, want one pending", co)
	}
	mustRegister(t, s, notify.Device{UserID: b.ID, Platform: notify.PlatformFCM, Token: "c-phone", UpdatedAt: now}, 10, true)
	if co := outbox(c, 10); len(co.Latest) != 0 || len(co.Counts) != 0 {
		t.Errorf("carol's outbox after her phone moved %+v, want empty", co)
	}
	later := now.Add(time.Minute)
	claimed, err = s.ClaimDeliveries(ctx, later, later.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range claimed {
		if d.Device.Token == "c-phone" {
			t.Errorf("claimed %+v after the move: carol's push to her old phone", d)
		}
	}
}

// testOutboxBlockedBy: each message of a batch names the users with a
// device who block its sender (PushMessage.BlockedBy), as of the
// decision, and only those.
func testOutboxBlockedBy(t *testing.T, s Store) {
	ctx := context.Background()
	a, b, c, d := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol"), mustUser(t, s, "dan")
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID, b.ID, c.ID, d.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []chat.User{a, b, c} { // dan has no device
		mustRegister(t, s, notify.Device{UserID: u.ID, Platform: notify.PlatformFCM, Token: u.Username, UpdatedAt: t0}, 10, true)
	}
	for _, blk := range [][2]int64{{b.ID, a.ID}, {d.ID, a.ID}, {a.ID, c.ID}} {
		if _, err := s.Block(ctx, blk[0], blk[1], t0); err != nil {
			t.Fatal(err)
		}
	}
	for _, from := range []chat.User{a, c, b} {
		res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: from.Lite(), Content: "from " + from.Username, At: t0}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
	}
	got := map[string][]int64{}
	decide := func(_ context.Context, batch notify.PushBatch) ([]notify.Push, error) {
		for _, m := range batch.Messages {
			got[m.Content] = m.BlockedBy
		}
		return nil, nil
	}
	if r, err := s.DecidePushes(ctx, 10, t0, time.Second, decide); err != nil || r.Read != 3 {
		t.Fatalf("decide %d, %v", r.Read, err)
	}
	for content, want := range map[string][]int64{"from alice": {b.ID}, "from carol": {a.ID}, "from bob": nil} {
		if !slices.Equal(got[content], want) {
			t.Errorf("%s: blocked by %v, want %v (only those with a device)", content, got[content], want)
		}
	}
}
