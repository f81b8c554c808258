package chat_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

// stuckStore is the real store whose group commit, while held, does not
// return until released, whatever its context says: a commit stuck in an
// fsync that the disk does not finish, which no deadline interrupts.
type stuckStore struct {
	*countingStore
	entered chan struct{} // a commit began
	release chan struct{} // closed: commits go through
	once    sync.Once
}

// unstick lets every commit through, now and from now on.
func (s *stuckStore) unstick() { s.once.Do(func() { close(s.release) }) }

func (s *stuckStore) InsertMessages(ctx context.Context, batch []chat.NewMessage) ([]chat.Inserted, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	// The fsync finished after all: the commit is durable, however long
	// it took (the real store would see a context that may have ended).
	return s.countingStore.InsertMessages(context.WithoutCancel(ctx), batch)
}

func stuckFixture(t *testing.T, opt chat.Options) (*fixture, *stuckStore) {
	t.Helper()
	var ss *stuckStore
	f := newFixtureWith(t, 2, opt, wrapping{store: func(c *countingStore) chat.Store {
		ss = &stuckStore{countingStore: c, entered: make(chan struct{}, 64), release: make(chan struct{})}
		return ss
	}})
	t.Cleanup(ss.unstick) // registered after the fixture's: runs before the service closes
	return f, ss
}

// waitQueued waits until n senders wait for the writer.
func waitQueued(t *testing.T, svc *chat.Service, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for int64(svc.Queued()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sends queued, want %d", int64(svc.Queued()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// refusals records Options.Refused.
type refusals struct {
	mu      sync.Mutex
	reasons []string
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	r.reasons = append(r.reasons, reason)
	r.mu.Unlock()
}

func (r *refusals) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reasons...)
}

func TestSend_FullQueueRefusesAtOnceWhileTheCommitIsStuck(t *testing.T) {
	const size = 4
	var refused refusals
	f, ss := stuckFixture(t, chat.Options{QueueSize: size, Refused: refused.add})
	conv := f.group(t)
	base := runtime.NumGoroutine()

	type result struct {
		id  string
		err error
	}
	results := make(chan result, size+1)
	send := func(id string) {
		_, _, err := f.svc.SendMessage(context.Background(), f.users[0], conv, "queued "+id, id)
		results <- result{id, err}
	}
	go send("q-0")
	<-ss.entered // the writer holds q-0 in a commit that does not return
	// q-0 counts as queued until its sender has seen it taken: the count
	// errs on the side of refusing.
	waitQueued(t, f.svc, 0)
	for i := 1; i <= size; i++ {
		go send(fmt.Sprint("q-", i))
	}
	waitQueued(t, f.svc, size)

	// The queue is full: the next send is refused while the commit is
	// still stuck, so its answer cannot have waited for the disk.
	_, _, err := f.svc.SendMessage(context.Background(), f.users[1], conv, "one too many", "over")
	if !errors.Is(err, chat.ErrOverloaded) || chat.ErrorCode(err) != chat.CodeOverloaded {
		t.Fatalf("send past a full queue: %v, want ErrOverloaded", err)
	}
	select {
	case r := <-results:
		t.Fatalf("send %s answered (%v) while the commit is stuck", r.id, r.err)
	default:
	}
	if got := refused.list(); len(got) != 1 || got[0] != chat.RefusedQueueFull {
		t.Errorf("refusals reported %v, want [%s]", got, chat.RefusedQueueFull)
	}

	ss.unstick() // the disk answers again: everything queued commits
	for range size + 1 {
		if r := <-results; r.err != nil {
			t.Errorf("queued send %s: %v", r.id, r.err)
		}
	}
	page, err := f.svc.Messages(context.Background(), f.users[0].ID, conv, chat.PageQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, m := range page.Results {
		stored[*m.ClientID] = true
	}
	for i := 0; i <= size; i++ {
		if id := fmt.Sprint("q-", i); !stored[id] {
			t.Errorf("queued send %s is not stored", id)
		}
	}
	if stored["over"] {
		t.Error("the refused send was stored")
	}
	// And the service takes sends again.
	if _, created, err := f.svc.SendMessage(context.Background(), f.users[1], conv, "one too many", "over"); err != nil || !created {
		t.Fatalf("send after the stall: created %v, %v", created, err)
	}
	settles(t, base)
}

func TestSend_NotTakenWithinTheDeadlineIsRefused(t *testing.T) {
	const deadline = 200 * time.Millisecond
	var refused refusals
	f, ss := stuckFixture(t, chat.Options{CommitTimeout: deadline, Refused: refused.add})
	conv := f.group(t)
	base := runtime.NumGoroutine()

	first := make(chan error, 1)
	go func() {
		_, _, err := f.svc.SendMessage(context.Background(), f.users[0], conv, "stuck", "stuck")
		first <- err
	}()
	<-ss.entered
	// A caller whose own deadline (a socket frame's) passes in line is
	// told the same as one the writer never took: overloaded, not stored.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := f.svc.SendMessage(short, f.users[1], conv, "in line", "in-line")
	if chat.ErrorCode(err) != chat.CodeOverloaded || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send whose caller's deadline passed in line: %v, want overloaded wrapping DeadlineExceeded", err)
	}
	// The writer is stuck past its deadline: a send behind it waits at
	// most twice that deadline to be taken, then is told it was not stored.
	_, _, err = f.svc.SendMessage(context.Background(), f.users[1], conv, "behind", "behind")
	if !errors.Is(err, chat.ErrOverloaded) {
		t.Fatalf("send behind a stuck commit: %v, want ErrOverloaded", err)
	}
	if got := refused.list(); len(got) != 2 || got[0] != chat.RefusedQueueTimeout || got[1] != chat.RefusedQueueTimeout {
		t.Errorf("refusals reported %v, want two %s", got, chat.RefusedQueueTimeout)
	}
	// The send in the stuck commit is answered too, while it is still
	// stuck: its outcome is unknown, and the sender is told so.
	select {
	case err := <-first:
		if !errors.Is(err, chat.ErrMaybeStored) {
			t.Errorf("the send in the stuck commit: %v, want ErrMaybeStored", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the send in a commit stuck past its deadline got no answer")
	}
	ss.unstick()
	if _, created, err := f.svc.SendMessage(context.Background(), f.users[1], conv, "behind", "behind"); err != nil || !created {
		t.Fatalf("the refused send, sent again: created %v, %v", created, err)
	}
	settles(t, base)
}
