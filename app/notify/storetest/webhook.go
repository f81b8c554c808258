package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/app/webhook"
)

// claimAll claims every event due at now (a lease until now+1m).
func claimAll(t *testing.T, s Store, now time.Time) []notify.WebhookEvent {
	t.Helper()
	list, err := s.ClaimWebhooks(context.Background(), now, now.Add(time.Minute), 1000)
	if err != nil {
		t.Fatal(err)
	}
	// In the order they were written: a claim promises no order.
	slices.SortFunc(list, func(a, b notify.WebhookEvent) int { return cmp.Compare(a.ID, b.ID) })
	return list
}

func pending(t *testing.T, s Store) int {
	t.Helper()
	n, err := s.PendingWebhooks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// change makes one change of each kind: a user, a conversation, two
// messages in one batch (and a retry and a refused one), an edit, a
// delete, a title, a participant added and removed.
func change(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	a, b, c := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{Title: "g", IsGroup: true, UserIDs: []int64{a.ID, b.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: conv, Sender: chat.UserLite{ID: a.ID}, Content: "one", ClientID: "x1", At: t0},
		{ConversationID: conv, Sender: chat.UserLite{ID: b.ID}, Content: "two", At: t0},
		{ConversationID: conv, Sender: chat.UserLite{ID: c.ID}, Content: "not a participant", At: t0},
	})
	if err != nil || res[0].Err != nil || res[1].Err != nil || res[2].Err == nil {
		t.Fatal(err, res)
	}
	again, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: chat.UserLite{ID: a.ID}, Content: "one", ClientID: "x1", At: t0}})
	if err != nil || again[0].Created {
		t.Fatal("retry:", err, again)
	}
	if _, err := s.EditMessage(ctx, res[0].Message.ID, "one!", nil, t0); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second delete changes nothing
		if _, _, err := s.DeleteMessage(ctx, res[1].Message.ID, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetTitle(ctx, conv, "renamed", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.AddParticipant(ctx, conv, c.ID, chat.RoleMember, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveParticipant(ctx, conv, c.ID, t0); err != nil {
		t.Fatal(err)
	}
}

func testWebhooksOff(t *testing.T, s Store) {
	change(t, s)
	if n := pending(t, s); n != 0 {
		t.Fatalf("%d events written with webhooks off", n)
	}
	if list := claimAll(t, s, t0.Add(time.Hour)); len(list) != 0 {
		t.Fatalf("claimed %d events with webhooks off", len(list))
	}
}

func testWebhooksWritten(t *testing.T, s Store) {
	s.SetWebhookEvents(webhook.NewSet(webhook.Events))
	change(t, s)
	list := claimAll(t, s, t0)
	var types []string
	ids := map[string]bool{}
	for _, e := range list {
		types = append(types, e.Event.Type)
		if ids[e.Event.ID] || e.Event.ID == "" {
			t.Errorf("webhook id %q empty or repeated", e.Event.ID)
		}
		ids[e.Event.ID] = true
		if e.Attempts != 1 || !e.Event.Timestamp.Equal(t0) || !json.Valid(e.Event.Data) {
			t.Errorf("%s: attempts %d, timestamp %v, data %s", e.Event.Type, e.Attempts, e.Event.Timestamp, e.Event.Data)
		}
		if _, err := e.Event.Body(); err != nil {
			t.Errorf("%s: %v", e.Event.Type, err)
		}
	}
	want := []string{"user.created", "user.created", "user.created", "conversation.created",
		"message.created", "message.created", "message.updated", "message.deleted",
		"conversation.updated", "participant.added", "participant.removed"}
	if !slices.Equal(types, want) {
		t.Fatalf("events, in order:\n%v\nwant\n%v", types, want)
	}
	var m chat.Message
	if err := json.Unmarshal(list[4].Event.Data, &m); err != nil || m.Content != "one" || m.ID == 0 || m.Seq != 1 {
		t.Errorf("message.created data %s (%v)", list[4].Event.Data, err)
	}
	var d map[string]any
	if err := json.Unmarshal(list[9].Event.Data, &d); err != nil || d["role"] != "member" || d["conversation_id"] == nil {
		t.Errorf("participant.added data %s", list[9].Event.Data)
	}
}

func testWebhooksChosenOnly(t *testing.T, s Store) {
	s.SetWebhookEvents(webhook.NewSet([]string{"message.created", "participant.removed"}))
	change(t, s)
	var types []string
	for _, e := range claimAll(t, s, t0) {
		types = append(types, e.Event.Type)
	}
	if want := []string{"message.created", "message.created", "participant.removed"}; !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
}

func testWebhooksLease(t *testing.T, s Store) {
	ctx := context.Background()
	s.SetWebhookEvents(webhook.NewSet([]string{"user.created"}))
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	first := claimAll(t, s, t0)
	if len(first) != 2 {
		t.Fatalf("claimed %d, want 2", len(first))
	}
	if again := claimAll(t, s, t0.Add(time.Second)); len(again) != 0 {
		t.Fatalf("claimed %d leased events again", len(again))
	}
	// The first is sent; the second fails and is due again in 10s.
	if err := s.FinishWebhook(ctx, first[0].ID, notify.WebhookSent, time.Time{}, "", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishWebhook(ctx, first[1].ID, notify.WebhookPending, t0.Add(10*time.Second), "500", t0); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, s); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
	if early := claimAll(t, s, t0.Add(9*time.Second)); len(early) != 0 {
		t.Fatalf("claimed %d before the retry was due", len(early))
	}
	retry := claimAll(t, s, t0.Add(10*time.Second))
	if len(retry) != 1 || retry[0].Event.ID != first[1].Event.ID || retry[0].Attempts != 2 {
		t.Fatalf("retry %+v, want the second event again, attempt 2", retry)
	}
	if err := s.FinishWebhook(ctx, retry[0].ID, notify.WebhookGivenUp, time.Time{}, "gave up", t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A finished event stays finished.
	if err := s.FinishWebhook(ctx, retry[0].ID, notify.WebhookPending, t0, "", t0.Add(11*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, s); n != 0 {
		t.Fatalf("pending %d, want 0", n)
	}
	// Pruning keeps what was done after before.
	if n, err := s.PruneWebhooks(ctx, t0.Add(5*time.Second), 100); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want the sent one", n, err)
	}
	if n, err := s.PruneWebhooks(ctx, t0.Add(time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want the given-up one", n, err)
	}
}
