package chat_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// stalledStore is the real store, except that its group commit can be
// made to hang: while stall is set, InsertMessages waits for its context
// to end, as a database that stopped answering would; while gate is open
// (non-nil), it waits for the gate before really committing.
type stalledStore struct {
	*countingStore
	stall   atomic.Bool
	gate    chan struct{}
	entered chan struct{}
}

func (s *stalledStore) InsertMessages(ctx context.Context, batch []chat.NewMessage) ([]chat.Inserted, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	if s.stall.Load() {
		<-ctx.Done()
		return nil, fmt.Errorf("insert messages: %w", ctx.Err())
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.countingStore.InsertMessages(ctx, batch)
}

func stalledFixture(t *testing.T, opt chat.Options, gated bool) (*fixture, *stalledStore) {
	t.Helper()
	var ss *stalledStore
	f := newFixtureWith(t, 2, opt, wrapping{store: func(c *countingStore) chat.Store {
		ss = &stalledStore{countingStore: c, entered: make(chan struct{}, 64)}
		if gated {
			ss.gate = make(chan struct{})
		}
		return ss
	}})
	return f, ss
}

// settles waits for the number of goroutines to come back to at most
// base: nothing the test started is still waiting.
func settles(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSend_HungDatabaseFailsWithinTheCommitDeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	f, ss := stalledFixture(t, chat.Options{CommitTimeout: deadline}, false)
	conv := f.group(t)
	base := runtime.NumGoroutine()
	ss.stall.Store(true)

	type result struct {
		err     error
		elapsed time.Duration
	}
	const senders = 8
	results := make(chan result, senders)
	for i := range senders {
		go func() {
			start := time.Now()
			_, _, err := f.svc.SendMessage(context.Background(), f.users[i%2], conv, "into the void", fmt.Sprintf("hung-%d", i))
			results <- result{err, time.Since(start)}
		}()
	}
	// Every sender is answered within the deadline of each commit its
	// message waited behind (one at most, plus its own), and slack for
	// a loaded machine.
	bound := 2*deadline + 3*time.Second
	for range senders {
		select {
		case r := <-results:
			if !errors.Is(r.err, chat.ErrMaybeStored) || chat.ErrorCode(r.err) != chat.CodeUnavailable {
				t.Errorf("send to a hung database: %v, want ErrMaybeStored (unavailable)", r.err)
			}
			if r.elapsed > bound {
				t.Errorf("send answered after %v, want within %v", r.elapsed, bound)
			}
		case <-time.After(bound + time.Second):
			t.Fatal("a send to a hung database is still waiting")
		}
	}

	// The database answers again: the writer serves the next send, and
	// a retry of a message that may have been stored is safe.
	ss.stall.Store(false)
	m, created, err := f.svc.SendMessage(context.Background(), f.users[0], conv, "into the void", "hung-0")
	if err != nil || !created {
		t.Fatalf("send once the database answers: created %v, %v", created, err)
	}
	again, created, err := f.svc.SendMessage(context.Background(), f.users[0], conv, "into the void", "hung-0")
	if err != nil || created || again.ID != m.ID {
		t.Fatalf("retry with the same client_id: id %d created %v %v, want id %d not created", again.ID, created, err, m.ID)
	}
	settles(t, base)
}

func TestSend_CallerGivesUpDuringTheCommitThenRetries(t *testing.T) {
	f, ss := stalledFixture(t, chat.Options{}, true)
	conv := f.group(t)
	rec := &recorder{}
	f.hub.Subscribe(hub.ConversationTopic(conv), rec)
	base := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := f.svc.SendMessage(ctx, f.users[0], conv, "did it land?", "retry-me")
		errc <- err
	}()
	<-ss.entered // the writer has taken it and is committing
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, chat.ErrMaybeStored) {
			t.Fatalf("caller gave up during the commit: %v, want ErrMaybeStored", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SendMessage kept waiting for the commit after its caller gave up")
	}

	// A send the writer has not taken yet is simply not stored: the
	// caller's own error comes back.
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if _, _, err := f.svc.SendMessage(short, f.users[1], conv, "never taken", "not-taken"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send not taken before the caller's deadline: %v, want context.DeadlineExceeded", err)
	}

	close(ss.gate) // the commit goes through after all
	m, created, err := f.svc.SendMessage(context.Background(), f.users[0], conv, "did it land?", "retry-me")
	if err != nil || created {
		t.Fatalf("retry: created %v, %v; want the stored original", created, err)
	}
	page, err := f.svc.Messages(context.Background(), f.users[0].ID, conv, chat.PageQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, p := range page.Results {
		if p.ClientID != nil && *p.ClientID == "retry-me" {
			stored++
			if p.ID != m.ID {
				t.Errorf("stored id %d, retry returned %d", p.ID, m.ID)
			}
		}
		if p.ClientID != nil && *p.ClientID == "not-taken" {
			t.Error("a send that was never taken was stored")
		}
	}
	if stored != 1 {
		t.Fatalf("%d messages with client_id retry-me, want exactly 1", stored)
	}
	rec.mu.Lock()
	delivered := slices.Clone(rec.ids)
	rec.mu.Unlock()
	if !slices.Equal(delivered, []int64{m.ID}) {
		t.Errorf("delivered %v, want [%d] once", delivered, m.ID)
	}
	settles(t, base)
}
