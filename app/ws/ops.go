package ws

import (
	"context"
	"slices"
	"sync"
	"time"
)

// ops gives a socket's operations (its setup, each frame, a typing state
// held back) their contexts, and cancels them when the socket closes.
// Each context comes from the handler's, which Shutdown (or the end of
// Options.Context) cancels, bounded by FrameTimeout.
//
// A socket has no context object of its own: a cancelCtx per socket kept,
// for the socket's whole life, its done channel and the map of its
// children once a frame had used it, about 700 bytes of heap per idle
// socket (measured with 3,000). Running operations are few and short.
type ops struct {
	mu     sync.Mutex
	closed bool
	next   uint64
	live   []liveOp // nil when none runs
}

type liveOp struct {
	id     uint64
	cancel context.CancelFunc
}

// start returns the context of one operation and the function that ends
// it. Once the socket has closed, the context starts cancelled.
func (o *ops) start(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		cancel()
		return ctx, cancel
	}
	o.next++
	id := o.next
	o.live = append(o.live, liveOp{id, cancel})
	o.mu.Unlock()
	return ctx, func() {
		o.mu.Lock()
		o.live = slices.DeleteFunc(o.live, func(op liveOp) bool { return op.id == id })
		if len(o.live) == 0 {
			o.live = nil
		}
		o.mu.Unlock()
		cancel()
	}
}

// stop cancels the running operations, and every later one at its start.
func (o *ops) stop() {
	o.mu.Lock()
	o.closed = true
	live := o.live
	o.live = nil
	o.mu.Unlock()
	for _, op := range live {
		op.cancel()
	}
}

// stopped reports whether the socket has closed.
func (o *ops) stopped() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}
