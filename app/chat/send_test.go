package chat_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/db"
)

// countingStore is the real store with a count of group commits: it
// changes nothing, it only watches InsertMessages.
type countingStore struct {
	*db.Store
	commits, msgs atomic.Int64
}

func (c *countingStore) InsertMessages(ctx context.Context, batch []chat.NewMessage) ([]chat.Inserted, error) {
	c.commits.Add(1)
	c.msgs.Add(int64(len(batch)))
	return c.Store.InsertMessages(ctx, batch)
}

// recorder is a hub.Subscriber that keeps what it is given.
type recorder struct {
	mu  sync.Mutex
	ids []int64
}

func (r *recorder) Deliver(_ hub.Topic, ev *hub.Event) {
	if ev.Type != chat.EventNewMessage {
		return
	}
	r.mu.Lock()
	r.ids = append(r.ids, ev.MessageID)
	r.mu.Unlock()
}

type fixture struct {
	store *countingStore
	hub   *hub.Hub
	svc   *chat.Service
	users []chat.UserLite
}

func newFixture(tb testing.TB, users int) *fixture {
	tb.Helper()
	return newFixtureWith(tb, users, chat.Options{}, wrapping{})
}

// wrapping puts test doubles around the real store and hub: each is
// used when set.
type wrapping struct {
	store func(*countingStore) chat.Store
	pub   func(*hub.Hub) chat.Publisher
}

// newFixtureWith builds the service with opt, on the store and hub as
// wrapped by w.
func newFixtureWith(tb testing.TB, users int, opt chat.Options, w wrapping) *fixture {
	tb.Helper()
	ctx := context.Background()
	st, err := db.Open(ctx, filepath.Join(tb.TempDir(), "chat.db"))
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{store: &countingStore{Store: st}, hub: hub.New(hub.Options{})}
	var store chat.Store = f.store
	if w.store != nil {
		store = w.store(f.store)
	}
	var pub chat.Publisher = f.hub
	if w.pub != nil {
		pub = w.pub(f.hub)
	}
	f.svc = chat.NewService(store, pub, opt)
	tb.Cleanup(func() {
		f.svc.Close()
		st.Close()
	})
	for i := range users {
		u, err := st.CreateUser(ctx, fmt.Sprintf("user%d", i), fmt.Sprintf("User %d", i), "hash", time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		f.users = append(f.users, u.Lite())
	}
	return f
}

// group makes one conversation of every user.
func (f *fixture) group(tb testing.TB) int64 {
	tb.Helper()
	ids := make([]int64, 0, len(f.users)-1)
	for _, u := range f.users[1:] {
		ids = append(ids, u.ID)
	}
	c, _, err := f.svc.CreateConversation(context.Background(), f.users[0].ID, ids, "all", true)
	if err != nil {
		tb.Fatal(err)
	}
	return c.ID
}

func TestSend_ConcurrentSendsArriveInIDOrder(t *testing.T) {
	f := newFixture(t, 16)
	conv := f.group(t)
	rec := &recorder{}
	f.hub.Subscribe(hub.ConversationTopic(conv), rec)

	const per = 40
	var wg sync.WaitGroup
	mine := make([][]int64, len(f.users))
	for i, u := range f.users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				m, created, err := f.svc.SendMessage(context.Background(), u, conv, fmt.Sprintf("%d/%d", i, j), "")
				if err != nil || !created {
					t.Errorf("send: %v %v", created, err)
					return
				}
				mine[i] = append(mine[i], m.ID)
			}
		}()
	}
	wg.Wait()

	rec.mu.Lock()
	got := rec.ids
	rec.mu.Unlock()
	if len(got) != len(f.users)*per {
		t.Fatalf("%d events, want %d", len(got), len(f.users)*per)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("event %d has id %d after %d: delivery order is not id order", i, got[i], got[i-1])
		}
	}
	// Each sender's own messages are in the order they were sent.
	for i, ids := range mine {
		for j := 1; j < len(ids); j++ {
			if ids[j] <= ids[j-1] {
				t.Errorf("sender %d: id %d after %d", i, ids[j], ids[j-1])
			}
		}
	}
	// And the history agrees with what was delivered.
	page, err := f.svc.Messages(context.Background(), f.users[0].ID, conv, chat.PageQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	tail := got[len(got)-100:]
	for i, m := range page.Results {
		if m.ID != tail[i] {
			t.Fatalf("history %d is id %d, delivered %d", i, m.ID, tail[i])
		}
	}
	t.Logf("%d messages in %d commits", f.store.msgs.Load(), f.store.commits.Load())
}

func TestSend_AfterCloseIsUnavailable(t *testing.T) {
	f := newFixture(t, 2)
	conv := f.group(t)
	f.svc.Close()
	done := make(chan error, 1)
	go func() {
		_, _, err := f.svc.SendMessage(context.Background(), f.users[0], conv, "late", "")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, chat.ErrUnavailable) {
			t.Errorf("send after Close: %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("send after Close hangs")
	}
}

// BenchmarkSendMessage_GroupCommit measures the service's send path on a
// real SQLite file (synchronous=FULL) with 16 concurrent senders, without
// HTTP, and reports how many messages each commit carried.
func BenchmarkSendMessage_GroupCommit(b *testing.B) {
	for _, shared := range []bool{true, false} {
		name := "own-conversation"
		if shared {
			name = "shared-conversation"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b, 17)
			ctx := context.Background()
			convs := make([]int64, len(f.users))
			if shared {
				g := f.group(b)
				for i := range convs {
					convs[i] = g
				}
			} else {
				for i := 1; i < len(f.users); i++ {
					c, _, err := f.svc.CreateConversation(ctx, f.users[i].ID, []int64{f.users[0].ID}, "", false)
					if err != nil {
						b.Fatal(err)
					}
					convs[i] = c.ID
				}
			}
			var next atomic.Int64
			f.store.commits.Store(0)
			f.store.msgs.Store(0)
			b.SetParallelism(8) // 16 goroutines on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 1 + int(next.Add(1)-1)%(len(f.users)-1)
				u := f.users[i]
				for pb.Next() {
					if _, _, err := f.svc.SendMessage(ctx, u, convs[i], "benchmark message", ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if c := f.store.commits.Load(); c > 0 {
				b.ReportMetric(float64(f.store.msgs.Load())/float64(c), "msgs/commit")
			}
		})
	}
}
