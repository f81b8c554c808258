package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/confab/confab/app/push"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type onlineSet map[int64]bool

func (o onlineSet) LookupOnline(_ context.Context, ids []int64) ([]int64, error) {
	var on []int64
	for _, id := range ids {
		if o[id] {
			on = append(on, id)
		}
	}
	return on, nil
}

func newTestDispatcher(online onlineSet, preview string) *Dispatcher {
	return NewDispatcher(nil, online, DispatchOptions{Preview: preview, Now: func() time.Time { return t0 }})
}

// TestDecide_Rules: who of a message's recipients gets a push.
func TestDecide_Rules(t *testing.T) {
	const (
		offline, online, muted, mutedMentioned, mutedPast, late, blocking, blockingMentioned = 10, 11, 12, 13, 14, 15, 16, 17
	)
	d := newTestDispatcher(onlineSet{online: true}, "")
	future, past := t0.Add(time.Hour).UnixMilli(), t0.Add(-time.Hour).UnixMilli()
	m := PushMessage{ID: 7, ConversationID: 3, Seq: 2, SenderID: 1, SenderName: "Ann", Content: "hi",
		Mentions: []int64{mutedMentioned, blockingMentioned}, CreatedAt: t0,
		Recipients: []Recipient{{UserID: offline}, {UserID: online}, {UserID: muted, MutedUntil: future},
			{UserID: mutedMentioned, MutedUntil: MutedForever}, {UserID: mutedPast, MutedUntil: past},
			{UserID: late, JoinedAt: t0.Add(time.Second)}, {UserID: blocking}, {UserID: blockingMentioned}},
		BlockedBy: []int64{blocking, blockingMentioned}}
	deleted := m
	deleted.ID, deleted.Deleted = 8, true
	pushes, err := d.decide(context.Background(), PushBatch{Messages: []PushMessage{m, deleted}, Unread: map[int64]int{offline: 4}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]Push{}
	for _, p := range pushes {
		got[p.UserID] = p
	}
	for _, id := range []int64{offline, mutedMentioned, mutedPast} {
		if p, ok := got[id]; !ok || p.MessageID != 7 || p.Collapse != "conv-3" {
			t.Errorf("user %d: push %+v, want one for message 7", id, p)
		}
	}
	if len(got) != 3 {
		t.Errorf("pushes to %v, want only offline, mentioned and no-longer-muted (none to who blocks the sender)", got)
	}
	var pl Payload
	if err := json.Unmarshal(got[offline].Payload, &pl); err != nil {
		t.Fatal(err)
	}
	if pl.Title != "New message from Ann" || pl.Body != "" || pl.Badge != 4 ||
		pl.Data["conversation_id"] != "3" || pl.Data["message_id"] != "7" || pl.Data["seq"] != "2" {
		t.Errorf("payload %+v", pl)
	}
}

// TestDecide_NewestPerConversation: of a batch's messages of one
// conversation, each user gets the newest only.
func TestDecide_NewestPerConversation(t *testing.T) {
	d := newTestDispatcher(nil, "")
	r := []Recipient{{UserID: 2}}
	var batch PushBatch
	for id := int64(1); id <= 3; id++ {
		batch.Messages = append(batch.Messages, PushMessage{ID: id, ConversationID: 9, SenderID: 1, CreatedAt: t0, Recipients: r})
	}
	pushes, err := d.decide(context.Background(), batch)
	if err != nil || len(pushes) != 1 || pushes[0].MessageID != 3 {
		t.Fatalf("pushes %+v, %v; want one for message 3", pushes, err)
	}
}

// TestOutcome: what becomes of a delivery after each kind of error.
func TestOutcome(t *testing.T) {
	d := newTestDispatcher(nil, "")
	fresh := Delivery{Attempts: 1, CreatedAt: t0}
	old := Delivery{Attempts: 12, CreatedAt: t0.Add(-time.Hour + time.Second)}
	for _, tt := range []struct {
		name  string
		dl    Delivery
		err   error
		state string
	}{
		{"sent", fresh, nil, DeliverySent},
		{"gone", fresh, fmt.Errorf("webpush: %w", push.ErrGone), DeliveryGone},
		{"retry", fresh, &push.RetryError{Err: errors.New("503")}, DeliveryPending},
		{"deadline", fresh, context.DeadlineExceeded, DeliveryPending},
		{"refused", fresh, errors.New("400 bad request"), DeliveryFailed},
		{"no provider", fresh, errNoProvider(PlatformAPNs), DeliveryFailed},
		{"too old to retry", old, &push.RetryError{Err: errors.New("503")}, DeliveryFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := d.outcome(tt.dl, tt.err)
			if o.State != tt.state {
				t.Fatalf("state %s, want %s (%+v)", o.State, tt.state, o)
			}
			if o.State == DeliveryPending && !o.NextAt.After(t0) {
				t.Fatalf("retry at %v, not after now", o.NextAt)
			}
		})
	}
	o := d.outcome(fresh, &push.RetryError{After: 5 * time.Minute, Err: errors.New("429")})
	if o.NextAt.Before(t0.Add(5 * time.Minute)) {
		t.Errorf("Retry-After 5m: next at %v", o.NextAt.Sub(t0))
	}
}

// TestBackoff: 1s, 2s, 4s … with up to a quarter more, capped at 10 min.
func TestBackoff(t *testing.T) {
	d := newTestDispatcher(nil, "")
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 512 * time.Second, 11: 10 * time.Minute, 40: 10 * time.Minute} {
		for range 20 {
			if b := d.Backoff(attempt); b < base || b > min(base+base/4, 10*time.Minute) {
				t.Fatalf("attempt %d: backoff %v, want %v plus up to a quarter", attempt, b, base)
			}
		}
	}
}
