package hub

import (
	"context"
	"errors"
	"time"
)

// maxFill is the longest gap a hub fills itself; past it, subscribers get
// EventResync and recover from the store.
const maxFill = 1000

// maxHeld bounds the events a conversation holds back while its gap is
// being read from the store; past it, the held events are dropped and the
// subscribers get EventResync.
const maxHeld = 1024

// storeTimeout bounds each store read a hub makes.
const storeTimeout = 5 * time.Second

// deliverOrdered delivers a versioned event in version order: at once
// when it follows the last one delivered (its Prev), dropped when it was
// delivered already, and after the changes it skipped when it skips
// ahead. Those are read from the store
// by a filler goroutine, never by the publisher: until the filler is
// done, the topic's later events (of every kind) are held in arrival
// order, and the filler delivers them after the gap.
func (h *Hub) deliverOrdered(sh *shard, t Topic, tp *topic, ev *Event) {
	tp.order.Lock()
	defer tp.order.Unlock()
	if tp.filling.Load() {
		h.hold(tp, ev)
		return
	}
	if ev.Version == 0 { // the filler finished meanwhile
		h.fanout(t, h.snapshot(sh, t, tp), ev)
		return
	}
	if tp.last < 0 { // the store did not say where it stood
		tp.last = ev.Prev
	}
	if ev.Version <= tp.last {
		h.repeats.Add(1)
		return
	}
	if ev.Prev <= tp.last {
		h.fanout(t, h.snapshot(sh, t, tp), ev)
		tp.last = ev.Version
		return
	}
	tp.held = append(tp.held, ev)
	h.startFill(sh, t, tp)
}

// hold keeps ev until the filler has delivered the gap before it.
// Callers hold tp.order.
func (h *Hub) hold(tp *topic, ev *Event) {
	if tp.overflow || len(tp.held) >= maxHeld {
		if !tp.overflow {
			tp.overflow = true
			for _, e := range tp.held {
				tp.skip = max(tp.skip, e.Version)
			}
			clear(tp.held)
			tp.held = tp.held[:0]
		}
		tp.skip = max(tp.skip, ev.Version)
		return
	}
	tp.held = append(tp.held, ev)
}

// startFill puts tp in the filling state and starts its filler. Callers
// hold tp.order, and tp is not filling.
func (h *Hub) startFill(sh *shard, t Topic, tp *topic) {
	tp.filling.Store(true)
	tp.fillDone = make(chan struct{})
	h.fillMu.Lock()
	if h.closed {
		h.fillMu.Unlock()
		// No filler after Close: what it would read is left to the
		// subscribers' own recovery.
		h.drain(sh, t, tp, func(int64, int64, int) ([]*Event, error) { return nil, errClosed })
		return
	}
	h.fillers.Add(1)
	h.fillMu.Unlock()
	go func() {
		defer h.fillers.Done()
		tp.order.Lock()
		defer tp.order.Unlock()
		h.drain(sh, t, tp, func(after, before int64, limit int) ([]*Event, error) {
			// The store is read without tp.order: publishers of this
			// conversation hold their events meanwhile, and go on.
			tp.order.Unlock()
			defer tp.order.Lock()
			ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
			defer cancel()
			return h.seq.Between(ctx, t.id, after, before, limit)
		})
	}()
}

var errClosed = errors.New("hub closed")

// drain delivers tp's held events in order, reading each gap before them
// (and up to want) with read, then leaves the filling state. Callers hold
// tp.order, which read may release while it waits.
func (h *Hub) drain(sh *shard, t Topic, tp *topic, read func(after, before int64, limit int) ([]*Event, error)) {
	for {
		if tp.overflow {
			// Too much arrived during the read: the subscribers
			// recover from the store instead.
			h.resync(sh, t, tp)
			tp.last = max(tp.last, tp.skip, tp.want)
			tp.overflow, tp.skip = false, 0
		}
		i := 0
		for ; i < len(tp.held); i++ {
			ev := tp.held[i]
			if ev.Version == 0 {
				h.fanout(t, h.snapshot(sh, t, tp), ev)
				continue
			}
			if tp.last < 0 {
				tp.last = ev.Prev
			}
			if ev.Version <= tp.last {
				h.repeats.Add(1)
				continue
			}
			if ev.Prev > tp.last {
				break
			}
			h.fanout(t, h.snapshot(sh, t, tp), ev)
			tp.last = ev.Version
		}
		n := copy(tp.held, tp.held[i:])
		clear(tp.held[n:])
		tp.held = tp.held[:n]

		var before int64
		switch {
		case len(tp.held) > 0:
			before = tp.held[0].Version
		case tp.want > tp.last && tp.last >= 0:
			before = tp.want + 1
		default:
			tp.want = 0
			if cap(tp.held) > 64 {
				tp.held = nil // a long hold's buffer goes with it
			}
			tp.filling.Store(false)
			close(tp.fillDone)
			return
		}
		after := tp.last
		evs, err := read(after, before, maxFill)
		if tp.overflow {
			continue
		}
		if err != nil || len(evs) >= maxFill {
			h.resync(sh, t, tp)
		} else {
			h.fills.Add(1)
			for _, e := range evs {
				if e.Version > tp.last {
					h.fanout(t, h.snapshot(sh, t, tp), e)
					tp.last = e.Version
				}
			}
		}
		// Versions have holes (changes with no event here, messages
		// removed with their author): what the store did not have
		// before the held event is not coming.
		tp.last = max(tp.last, before-1)
	}
}

// resync tells t's subscribers to recover from the store themselves.
func (h *Hub) resync(sh *shard, t Topic, tp *topic) {
	h.resyncs.Add(1)
	h.fanout(t, h.snapshot(sh, t, tp), &Event{Type: EventResync, ConversationID: t.id})
}

func (h *Hub) lastVersion(convID int64) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	m, err := h.seq.LastVersions(ctx, []int64{convID})
	if err != nil {
		// Unknown (-1): the first event sets it. A subscriber joining
		// while the store fails gets an error from its own reads too.
		return -1
	}
	return m[convID]
}

// CatchUp delivers, to every conversation with subscribers here, the
// changes the store has past the last one delivered (new messages, edits,
// deletions, reactions): what other nodes'
// events would have brought had they arrived. A cluster calls it when its
// broker comes back, and every few seconds as a safety net. It does
// nothing without a Sequence.
func (h *Hub) CatchUp(ctx context.Context) error {
	if h.seq == nil {
		return nil
	}
	type entry struct {
		sh *shard
		tp *topic
	}
	topics := map[int64]entry{}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for t, tp := range sh.topics {
			if !t.user {
				topics[t.id] = entry{sh, tp}
			}
		}
		sh.mu.RUnlock()
	}
	ids := make([]int64, 0, len(topics))
	for id := range topics {
		ids = append(ids, id)
	}
	last, err := h.seq.LastVersions(ctx, ids)
	if err != nil {
		return err
	}
	// The fillers read what is missing; CatchUp waits for them (it runs
	// in its caller's goroutine, not a publisher's).
	var wait []chan struct{}
	for id, e := range topics {
		e.tp.order.Lock()
		if n := last[id]; e.tp.last >= 0 && n > max(e.tp.last, e.tp.want) {
			e.tp.want = n
			if !e.tp.filling.Load() {
				h.startFill(e.sh, ConversationTopic(id), e.tp)
			}
		}
		if e.tp.filling.Load() {
			wait = append(wait, e.tp.fillDone)
		}
		e.tp.order.Unlock()
	}
	for _, done := range wait {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
