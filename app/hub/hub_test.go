package hub_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/confab/confab/app/hub"
)

// counter is a subscriber that counts what it gets and keeps the order of
// message ids.
type counter struct {
	n   atomic.Int64
	mu  sync.Mutex
	ids []int64
}

func (c *counter) Deliver(_ hub.Topic, ev *hub.Event) {
	c.n.Add(1)
	if ev.MessageID != 0 {
		c.mu.Lock()
		c.ids = append(c.ids, ev.MessageID)
		c.mu.Unlock()
	}
}

func TestPublishReachesOnlyTheTopic(t *testing.T) {
	h := hub.New(hub.Options{})
	a, b := &counter{}, &counter{}
	h.Subscribe(hub.ConversationTopic(1), a)
	h.Subscribe(hub.ConversationTopic(1), a) // twice is once
	h.Subscribe(hub.ConversationTopic(2), b)
	h.Publish(hub.ConversationTopic(1), &hub.Event{Type: "x"})
	if a.n.Load() != 1 || b.n.Load() != 0 {
		t.Fatalf("deliveries a=%d b=%d, want 1 and 0", a.n.Load(), b.n.Load())
	}
	h.Unsubscribe(hub.ConversationTopic(1), a)
	h.Publish(hub.ConversationTopic(1), &hub.Event{Type: "x"})
	if a.n.Load() != 1 {
		t.Fatalf("delivered after unsubscribe")
	}
	if n := h.Subscribers(hub.ConversationTopic(1)); n != 0 {
		t.Fatalf("subscribers = %d after the last left", n)
	}
}

func TestOrderIsPublishOrder(t *testing.T) {
	h := hub.New(hub.Options{})
	subs := make([]*counter, 50)
	for i := range subs {
		subs[i] = &counter{}
		h.Subscribe(hub.ConversationTopic(7), subs[i])
	}
	// Subscribers come and go while one goroutine publishes.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c := &counter{}
			h.Subscribe(hub.ConversationTopic(7), c)
			h.Unsubscribe(hub.ConversationTopic(7), c)
		}
	}()
	for id := int64(1); id <= 2000; id++ {
		h.Publish(hub.ConversationTopic(7), &hub.Event{Type: "new_message", MessageID: id})
	}
	close(stop)
	wg.Wait()
	for i, s := range subs {
		if len(s.ids) != 2000 {
			t.Fatalf("subscriber %d got %d events", i, len(s.ids))
		}
		for k, id := range s.ids {
			if id != int64(k+1) {
				t.Fatalf("subscriber %d: event %d has id %d", i, k, id)
			}
		}
	}
}

func TestPresenceCountsConnections(t *testing.T) {
	ctx := t.Context()
	h := hub.New(hub.Options{})
	if !h.Connect(ctx, 5) {
		t.Error("first connection is not reported as first")
	}
	if h.Connect(ctx, 5) {
		t.Error("second connection reported as first")
	}
	if h.Disconnect(ctx, 5) {
		t.Error("closing one of two reported as last")
	}
	if !h.Online(ctx, 5) {
		t.Error("user with one connection is not online")
	}
	if !h.Disconnect(ctx, 5) || h.Online(ctx, 5) {
		t.Error("closing the last connection did not take the user offline")
	}
	if h.Disconnect(ctx, 5) {
		t.Error("an extra disconnect reported as last")
	}
}

// A single node answers presence from its own counts: no I/O, and one
// allocation (the answer) for any number of users.
func TestOnlineAmong_SingleNodeIsLocalAndLight(t *testing.T) {
	ctx := t.Context()
	h := hub.New(hub.Options{})
	h.Connect(ctx, 2)
	h.Connect(ctx, 4)
	h.Connect(ctx, 4)
	users := []int64{5, 4, 3, 2, 1}
	if got := h.OnlineAmong(ctx, users); !slices.Equal(got, []int64{4, 2}) {
		t.Errorf("online among %v = %v, want [4 2]", users, got)
	}
	if a := testing.AllocsPerRun(100, func() { h.OnlineAmong(ctx, users) }); a > 1 {
		t.Errorf("%.1f allocations, want at most 1", a)
	}
	if a := testing.AllocsPerRun(100, func() { h.OnlineAmong(ctx, []int64{7, 8, 9}) }); a != 0 {
		t.Errorf("nobody online: %.1f allocations, want 0", a)
	}
}

// The payload is encoded once by the publisher; fan-out itself allocates
// nothing, whatever the number of subscribers.
func TestPublishAllocatesNothingPerSubscriber(t *testing.T) {
	for _, n := range []int{1, 100, 10000} {
		h := hub.New(hub.Options{})
		for range n {
			h.Subscribe(hub.ConversationTopic(1), &counter{})
		}
		ev := &hub.Event{Type: "typing", Data: []byte(`{"type":"typing"}`)}
		topic := hub.ConversationTopic(1)
		h.Publish(topic, ev) // builds the snapshot once
		allocs := testing.AllocsPerRun(100, func() { h.Publish(topic, ev) })
		if allocs != 0 {
			t.Errorf("%d subscribers: %.1f allocations per publish, want 0", n, allocs)
		}
	}
}

// queue is a subscriber like a connection: a bounded channel drained by
// its own goroutine.
type queue struct{ ch chan *hub.Event }

func (q *queue) Deliver(_ hub.Topic, ev *hub.Event) {
	select {
	case q.ch <- ev:
	default:
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			h := hub.New(hub.Options{})
			var wg sync.WaitGroup
			queues := make([]*queue, n)
			for i := range queues {
				queues[i] = &queue{ch: make(chan *hub.Event, 256)}
				h.Subscribe(hub.ConversationTopic(1), queues[i])
				wg.Add(1)
				go func(q *queue) {
					defer wg.Done()
					for range q.ch {
					}
				}(queues[i])
			}
			ev := &hub.Event{Type: "new_message", Data: make([]byte, 300)}
			topic := hub.ConversationTopic(1)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.Publish(topic, ev)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "deliveries/s")
			for _, q := range queues {
				close(q.ch)
			}
			wg.Wait()
		})
	}
}
