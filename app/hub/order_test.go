package hub_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/hub"
)

// log is a conversation's committed messages, as a store holds them:
// seq i+1 is msgs[i], with message id 100+seq.
type log struct {
	mu   sync.Mutex
	last int64
	fail bool
}

func (l *log) commit() *hub.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last++
	return msg(l.last)
}

func msg(seq int64) *hub.Event {
	return &hub.Event{Type: "new_message", ConversationID: 1, MessageID: 100 + seq, Version: seq, Prev: seq - 1}
}

func (l *log) LastVersions(_ context.Context, ids []int64) (map[int64]int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return nil, errors.New("store down")
	}
	return map[int64]int64{1: l.last}, nil
}

func (l *log) Between(_ context.Context, _ int64, after, before int64, limit int) ([]*hub.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return nil, errors.New("store down")
	}
	var evs []*hub.Event
	for s := after + 1; s <= l.last && (before <= 0 || s < before) && len(evs) < limit; s++ {
		evs = append(evs, msg(s))
	}
	return evs, nil
}

func ids(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, 100+s)
	}
	return out
}

func TestOrdered_GapsFilledRepeatsDropped(t *testing.T) {
	st := &log{}
	st.commit() // seq 1, before anyone subscribed
	h := hub.New(hub.Options{Sequence: st})
	var c counter
	h.Subscribe(hub.ConversationTopic(1), &c)

	e2, e3, e4 := st.commit(), st.commit(), st.commit()
	h.Receive(hub.ConversationTopic(1), e4) // arrives first: 2 and 3 come from the store
	h.Receive(hub.ConversationTopic(1), e2) // late: already delivered
	h.Receive(hub.ConversationTopic(1), e3)
	h.Publish(hub.ConversationTopic(1), e4) // twice: dropped
	e5 := st.commit()
	h.Publish(hub.ConversationTopic(1), e5)
	// The gap is read by a filler: wait for it to deliver the last one.
	eventually(t, "2 to 5 delivered", func() bool { return c.n.Load() >= 4 })
	if want := ids(2, 5); !slices.Equal(c.delivered(), want) {
		t.Fatalf("delivered %v, want %v", c.delivered(), want)
	}
	repeats, fills, resyncs := h.OrderStats()
	if repeats != 3 || fills != 1 || resyncs != 0 {
		t.Errorf("repeats %d fills %d resyncs %d, want 3 1 0", repeats, fills, resyncs)
	}
	// Events of other kinds pass as they come.
	h.Publish(hub.ConversationTopic(1), &hub.Event{Type: "typing", ConversationID: 1})
	eventually(t, "the typing event delivered", func() bool { return c.n.Load() >= 5 })
	if c.n.Load() != 5 {
		t.Errorf("%d deliveries, want 5", c.n.Load())
	}
}

func TestOrdered_CatchUpBringsWhatNoEventDid(t *testing.T) {
	st := &log{}
	h := hub.New(hub.Options{Sequence: st})
	var c counter
	h.Subscribe(hub.ConversationTopic(1), &c)
	st.commit()
	st.commit() // committed elsewhere; their events were lost
	if err := h.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := ids(1, 2); !slices.Equal(c.ids, want) {
		t.Fatalf("delivered %v, want %v", c.ids, want)
	}
}

func TestOrdered_UnfillableGapResyncs(t *testing.T) {
	st := &log{}
	h := hub.New(hub.Options{Sequence: st})
	var got []string
	var mu sync.Mutex
	sub := &subscriberFunc{func(_ hub.Topic, ev *hub.Event) {
		mu.Lock()
		got = append(got, ev.Type)
		mu.Unlock()
	}}
	h.Subscribe(hub.ConversationTopic(1), sub)
	st.commit()
	e2 := st.commit()
	st.fail = true
	h.Receive(hub.ConversationTopic(1), e2)
	snapshot := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	eventually(t, "two events delivered", func() bool { return len(snapshot()) >= 2 })
	if want := []string{hub.EventResync, "new_message"}; !slices.Equal(snapshot(), want) {
		t.Fatalf("delivered %v, want %v", snapshot(), want)
	}
}

type subscriberFunc struct{ f func(hub.Topic, *hub.Event) }

func (s *subscriberFunc) Deliver(t hub.Topic, ev *hub.Event) { s.f(t, ev) }

// eventually waits (up to 10 s) for what a filler goroutine delivers.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *counter) delivered() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

// gated is a store whose gap reads wait until the test opens the gate
// (or the hub gives up on them): a database that has stopped answering.
type gated struct {
	*log
	entered chan struct{}
	gate    chan struct{}
}

func newGated() *gated {
	return &gated{log: &log{}, entered: make(chan struct{}, 16), gate: make(chan struct{})}
}

func (g *gated) Between(ctx context.Context, convID, after, before int64, limit int) ([]*hub.Event, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.log.Between(ctx, convID, after, before, limit)
}

// trace records every event's type and message id, in delivery order.
type trace struct {
	mu  sync.Mutex
	got []string
}

func (tr *trace) Deliver(_ hub.Topic, ev *hub.Event) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if ev.MessageID != 0 {
		tr.got = append(tr.got, ev.Type+"#"+strconv.FormatInt(ev.MessageID, 10))
		return
	}
	tr.got = append(tr.got, ev.Type)
}

func (tr *trace) events() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.got)
}

// returns fails the test unless f returns within 5 s: a publisher
// must never wait for the store.
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s waited for the store", what)
	}
}

// hungFill returns a hub, with one subscriber, whose store hangs reading
// the gap that message seq skip opens: the subscriber has none before it.
func hungFill(t *testing.T, skip int) (*gated, *hub.Hub, *trace) {
	t.Helper()
	st := newGated()
	h := hub.New(hub.Options{Sequence: st})
	t.Cleanup(h.Close)
	tr := &trace{}
	h.Subscribe(hub.ConversationTopic(1), tr)
	var ev *hub.Event
	for range skip {
		ev = st.commit()
	}
	returns(t, "a publish that skips ahead", func() { h.Publish(hub.ConversationTopic(1), ev) })
	<-st.entered // the filler is reading the gap, and the store hangs
	return st, h, tr
}

func TestOrdered_PublishDoesNotWaitForTheStoreAndOrderHolds(t *testing.T) {
	st, h, tr := hungFill(t, 3)
	conv, e3 := hub.ConversationTopic(1), msg(3)
	e4, e5 := st.commit(), st.commit()
	returns(t, "publishes during the fill", func() {
		h.Publish(conv, &hub.Event{Type: "typing", ConversationID: 1})
		h.Receive(conv, e5) // skips 4 again
		h.Receive(conv, e4)
		h.Receive(conv, e3) // a repeat
		h.Publish(conv, &hub.Event{Type: "message_updated", ConversationID: 1})
	})
	if got := tr.events(); len(got) != 0 {
		t.Fatalf("delivered %v while the gap before them was unread", got)
	}
	close(st.gate)
	want := []string{"new_message#101", "new_message#102", "new_message#103", "typing",
		"new_message#104", "new_message#105", "message_updated"}
	eventually(t, "all delivered", func() bool { return len(tr.events()) >= len(want) })
	if got := tr.events(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	// Once the filler is done, events pass at once again.
	e6 := st.commit()
	h.Publish(conv, e6)
	eventually(t, "6 delivered", func() bool { return len(tr.events()) == len(want)+1 })
	if repeats, fills, resyncs := h.OrderStats(); repeats != 2 || fills != 2 || resyncs != 0 {
		t.Errorf("repeats %d fills %d resyncs %d, want 2 2 0", repeats, fills, resyncs)
	}
}

func TestOrdered_TooMuchDuringAFillResyncs(t *testing.T) {
	st, h, tr := hungFill(t, 2)
	conv := hub.ConversationTopic(1)
	var last *hub.Event
	returns(t, "thousands of publishes during the fill", func() {
		for range 5000 {
			last = st.commit()
			h.Publish(conv, last)
		}
	})
	close(st.gate)
	eventually(t, "a resync", func() bool { return len(tr.events()) >= 1 })
	next := st.commit()
	h.Publish(conv, next)
	want := []string{hub.EventResync, "new_message#" + strconv.FormatInt(next.MessageID, 10)}
	eventually(t, "the next message", func() bool { return len(tr.events()) >= 2 })
	if got := tr.events(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v (what was held is in the store, up to %d)", got, want, last.MessageID)
	}
}

func TestOrdered_CloseStopsAHungFill(t *testing.T) {
	st, h, tr := hungFill(t, 2)
	conv := hub.ConversationTopic(1)
	returns(t, "Close", h.Close) // the read is cancelled, and Close waits for the filler
	if got, want := tr.events(), []string{hub.EventResync, "new_message#102"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	// After Close a gap resyncs at once: nothing is left to read it.
	st.commit()
	e4 := st.commit()
	returns(t, "a publish after Close", func() { h.Publish(conv, e4) })
	if got := tr.events(); len(got) != 4 || got[2] != hub.EventResync || got[3] != "new_message#104" {
		t.Fatalf("after Close: delivered %v", got)
	}
}

// slowStart is a store whose LastVersions hangs until released.
type slowStart struct {
	*log
	entered chan struct{}
	release chan struct{}
}

func (s *slowStart) LastVersions(ctx context.Context, ids []int64) (map[int64]int64, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.log.LastVersions(ctx, ids)
}

func TestOrdered_PublishDoesNotWaitForAFirstSubscriber(t *testing.T) {
	st := &slowStart{log: &log{}, entered: make(chan struct{}, 2), release: make(chan struct{})}
	h := hub.New(hub.Options{Sequence: st})
	defer h.Close()
	var first, second counter
	close(st.release)
	h.Subscribe(hub.ConversationTopic(1), &first)
	st.release = make(chan struct{})
	subscribed := make(chan struct{})
	go func() {
		defer close(subscribed)
		// Conversation 2's first subscriber reads where the store stands.
		h.Subscribe(hub.ConversationTopic(2), &second)
	}()
	<-st.entered // conversation 1's
	<-st.entered // conversation 2's, which now hangs
	// Meanwhile every conversation, that one included, publishes freely.
	returns(t, "publishes while a first subscriber reads the store", func() {
		h.Publish(hub.ConversationTopic(1), st.commit())
		h.Publish(hub.ConversationTopic(2), &hub.Event{Type: "typing", ConversationID: 2})
	})
	if first.n.Load() != 1 {
		t.Errorf("conversation 1 got %d events, want 1", first.n.Load())
	}
	close(st.release)
	<-subscribed
	if n := h.Subscribers(hub.ConversationTopic(2)); n != 1 {
		t.Errorf("conversation 2 has %d subscribers, want 1", n)
	}
}

// Versions come from one clock for every conversation: a conversation's
// are not consecutive. An event that follows the last one delivered (its
// Prev) goes at once, whatever the distance; only one that skips a
// change (its Prev is past the last) waits for the store, and a change
// with no event of its own (a rename) is read as nothing and passed.
func TestOrdered_PrevNotConsecutiveVersions(t *testing.T) {
	st := &log{last: 5}
	h := hub.New(hub.Options{Sequence: st})
	var c counter
	h.Subscribe(hub.ConversationTopic(1), &c)
	ev := func(v, prev int64) *hub.Event {
		return &hub.Event{Type: "new_message", ConversationID: 1, MessageID: 100 + v, Version: v, Prev: prev}
	}
	h.Receive(hub.ConversationTopic(1), ev(10, 5))
	h.Receive(hub.ConversationTopic(1), ev(17, 10))
	if _, fills, _ := h.OrderStats(); fills != 0 || !slices.Equal(c.delivered(), []int64{110, 117}) {
		t.Fatalf("delivered %v with %d fills, want 110 and 117 at once", c.delivered(), fills)
	}
	// 20 was a rename: no event, nothing in the store to fill.
	h.Receive(hub.ConversationTopic(1), ev(30, 20))
	eventually(t, "30 delivered", func() bool { return c.n.Load() >= 3 })
	repeats, fills, resyncs := h.OrderStats()
	if !slices.Equal(c.delivered(), []int64{110, 117, 130}) || fills != 1 || resyncs != 0 || repeats != 0 {
		t.Fatalf("delivered %v, repeats %d fills %d resyncs %d; want 130 after one fill", c.delivered(), repeats, fills, resyncs)
	}
	h.Receive(hub.ConversationTopic(1), ev(17, 10)) // late: dropped
	if repeats, _, _ := h.OrderStats(); repeats != 1 {
		t.Errorf("a repeat delivered again")
	}
}
