package notify_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/app/push"
	"github.com/confab/confab/db"
)

// world is a SQLite database with two users in a conversation, the
// second with a Web Push device.
type world struct {
	s    *db.Store
	a, b chat.User
	conv int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, filepath.Join(t.TempDir(), "confab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := &world{s: s}
	now := time.Now()
	for _, u := range []*chat.User{&w.a, &w.b} {
		name := "ann"
		if u == &w.b {
			name = "bob"
		}
		if *u, err = s.CreateUser(ctx, name, name, "hash", now); err != nil {
			t.Fatal(err)
		}
	}
	if w.conv, _, err = s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{w.a.ID, w.b.ID}, At: now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RegisterDevice(ctx, notify.Device{UserID: w.b.ID, Platform: notify.PlatformWebPush,
		Token: "https://push.example/bob", P256dh: "k", Auth: "a", UpdatedAt: now}, 10); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) send(t *testing.T, content string) {
	t.Helper()
	res, err := w.s.InsertMessages(context.Background(), []chat.NewMessage{{ConversationID: w.conv,
		Sender: chat.UserLite{ID: w.a.ID}, Content: content, At: time.Now()}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
}

// presence answers who is online, or, while down, holds each lookup
// until its deadline, as Redis that does not answer does.
type presence struct {
	mu     sync.Mutex
	down   bool
	online map[int64]bool
	asked  int
}

func (p *presence) LookupOnline(ctx context.Context, ids []int64) ([]int64, error) {
	p.mu.Lock()
	p.asked++
	down := p.down
	var on []int64
	for _, id := range ids {
		if p.online[id] {
			on = append(on, id)
		}
	}
	p.mu.Unlock()
	if down {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return on, nil
}

func (p *presence) set(down bool, online map[int64]bool) {
	p.mu.Lock()
	p.down, p.online = down, online
	p.mu.Unlock()
}

func (p *presence) lookups() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked
}

// sent records what the Web Push provider was asked to send.
type sent struct {
	mu sync.Mutex
	n  []push.Notification
}

func (s *sent) provider() notify.Provider {
	return notify.ProviderFunc(func(_ context.Context, _ notify.Device, n push.Notification) error {
		s.mu.Lock()
		s.n = append(s.n, n)
		s.mu.Unlock()
		return nil
	})
}

func (s *sent) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.n)
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDispatcher_PresenceTimeoutHoldsTheBatchBack: while presence does
// not answer, each lookup ends at its deadline, the batch is decided
// again in later rounds, and nobody, who may be online, is pushed to;
// once presence answers that the recipient is offline, they get their
// push. Close is not held up by the lookups.
func TestDispatcher_PresenceTimeoutHoldsTheBatchBack(t *testing.T) {
	w := newWorld(t)
	p := &presence{down: true}
	var got sent
	d := notify.NewDispatcher(w.s, p, notify.DispatchOptions{
		Providers: map[string]notify.Provider{notify.PlatformWebPush: got.provider()},
		Every:     10 * time.Millisecond, Idle: 50 * time.Millisecond, Delay: time.Millisecond,
		PresenceTimeout: 20 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	d.Start()
	defer d.Close()
	w.send(t, "hi")
	eventually(t, "three lookups", func() bool { return p.lookups() >= 3 })
	if n, err := w.s.PendingDeliveries(context.Background()); err != nil || len(n) != 0 || got.count() != 0 {
		t.Fatalf("pending %v (%v), %d sent while presence was down", n, err, got.count())
	}
	p.set(false, nil)
	eventually(t, "the push sent", func() bool { return got.count() == 1 })

	// Down again: a second message waits, and Close does not.
	p.set(true, nil)
	asked := p.lookups()
	w.send(t, "again")
	eventually(t, "a lookup", func() bool { return p.lookups() > asked })
	done := make(chan struct{})
	go func() { d.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited on a presence lookup")
	}
	if got.count() != 1 {
		t.Fatalf("%d pushes, want 1: the second was decided while presence was down", got.count())
	}
}

// rounds records when the dispatcher's decide loop read the outbox.
type rounds struct {
	notify.Outbox
	mu sync.Mutex
	at []time.Time
}

func (r *rounds) DecidePushes(ctx context.Context, limit int, now time.Time, delay time.Duration,
	decide func(context.Context, notify.PushBatch) ([]notify.Push, error)) (notify.Decided, error) {
	r.mu.Lock()
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	return r.Outbox.DecidePushes(ctx, limit, now, delay, decide)
}

func (r *rounds) times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.at...)
}

// TestDispatcher_IdleBacksOffAndNudgeCutsItShort: an idle dispatcher
// reads the outbox ever less often (the gap between rounds doubles);
// a nudge, as each commit gives, makes the next round come at once
// rather than at the end of the idle wait, and the push goes out.
func TestDispatcher_IdleBacksOffAndNudgeCutsItShort(t *testing.T) {
	w := newWorld(t)
	r := &rounds{Outbox: w.s}
	var got sent
	d := notify.NewDispatcher(r, &presence{}, notify.DispatchOptions{
		Providers: map[string]notify.Provider{notify.PlatformWebPush: got.provider()},
		Every:     20 * time.Millisecond, Idle: time.Hour, Delay: time.Millisecond})
	d.Start()
	defer d.Close()
	// Wait for a round that came a second or more after the one before:
	// the idle wait has grown past a second, and the next round, unless
	// nudged, is two seconds or more away.
	const gap = time.Second
	var last time.Time
	eventually(t, "a gap of a second between rounds", func() bool {
		at := r.times()
		if n := len(at); n >= 2 && at[n-1].Sub(at[n-2]) >= gap {
			last = at[n-1]
			return true
		}
		return false
	})
	before := len(r.times())
	w.send(t, "hi")
	nudged := time.Now()
	d.Nudge()
	eventually(t, "a round after the nudge", func() bool { return len(r.times()) > before })
	next := r.times()[before]
	if next.Sub(nudged) >= gap || next.Sub(last) >= 2*gap {
		t.Fatalf("the round after the nudge came %v after it (%v after the last round): it waited out the idle wait",
			next.Sub(nudged), next.Sub(last))
	}
	eventually(t, "the push sent", func() bool { return got.count() == 1 })
}
