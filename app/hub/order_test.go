package hub_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

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
	return &hub.Event{Type: "new_message", ConversationID: 1, MessageID: 100 + seq, Seq: seq}
}

func (l *log) LastSeqs(_ context.Context, ids []int64) (map[int64]int64, error) {
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
	if want := ids(2, 5); !slices.Equal(c.ids, want) {
		t.Fatalf("delivered %v, want %v", c.ids, want)
	}
	repeats, fills, resyncs := h.OrderStats()
	if repeats != 3 || fills != 1 || resyncs != 0 {
		t.Errorf("repeats %d fills %d resyncs %d, want 3 1 0", repeats, fills, resyncs)
	}
	// Events of other kinds pass as they come.
	h.Publish(hub.ConversationTopic(1), &hub.Event{Type: "typing", ConversationID: 1})
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
	if want := []string{hub.EventResync, "new_message"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

type subscriberFunc struct{ f func(hub.Topic, *hub.Event) }

func (s *subscriberFunc) Deliver(t hub.Topic, ev *hub.Event) { s.f(t, ev) }
