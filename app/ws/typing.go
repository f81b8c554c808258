package ws

import (
	"context"
	"sync"
	"time"

	"github.com/confab/confab/app/chat"
)

// typingInterval is the least time between two typing frames forwarded
// for one connection and conversation.
const typingInterval = time.Second

// typingGate forwards at most one typing frame per conversation per
// second for a connection. The last state held back during that second is
// forwarded when it ends, if it differs from the last one forwarded: a
// quick "stopped typing" is late, never lost.
type typingGate struct {
	mu    sync.Mutex
	convs map[int64]*typingConv
}

type typingConv struct {
	last      time.Time // when a frame was last forwarded
	lastState bool
	held      bool // a state is waiting for the second to end
	state     bool
	timer     *time.Timer
}

// typing handles one typing frame.
func (c *conn) typing(ctx context.Context, convID int64, isTyping bool) *frameError {
	now := c.h.opt.Now()
	g := &c.typingGate
	g.mu.Lock()
	tc := g.convs[convID]
	// While a held state waits for its timer, the timer forwards the
	// latest: sending this one too would make two in one second.
	if tc != nil && (now.Sub(tc.last) < typingInterval || tc.timer != nil) {
		tc.held, tc.state = true, isTyping
		if tc.timer == nil {
			tc.timer = time.AfterFunc(tc.last.Add(typingInterval).Sub(now), func() { c.releaseTyping(convID) })
		}
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()

	if err := c.h.opt.Chat.Typing(ctx, c.lite(), convID, isTyping, c.id); err != nil {
		return c.serviceError("typing", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.convs == nil {
		g.convs = map[int64]*typingConv{}
	}
	if tc = g.convs[convID]; tc == nil {
		if len(g.convs) >= c.h.opt.MaxJoined { // forget idle ones rather than grow
			for id, old := range g.convs {
				if old.timer == nil {
					delete(g.convs, id)
				}
			}
		}
		tc = &typingConv{}
		g.convs[convID] = tc
	}
	tc.last, tc.lastState = now, isTyping
	return nil
}

// releaseTyping forwards the state held back during the last second.
func (c *conn) releaseTyping(convID int64) {
	g := &c.typingGate
	g.mu.Lock()
	tc := g.convs[convID]
	if tc == nil || isClosed(c.quit) {
		g.mu.Unlock()
		return
	}
	tc.timer = nil
	send := tc.held && tc.state != tc.lastState
	state := tc.state
	tc.held = false
	if send {
		tc.last, tc.lastState = c.h.opt.Now(), state
	}
	g.mu.Unlock()
	if send {
		ctx, cancel := c.ops.start(c.h.ctx, c.h.opt.FrameTimeout)
		defer cancel()
		if err := c.h.opt.Chat.Typing(ctx, c.lite(), convID, state, c.id); err != nil {
			c.serviceError("typing", err)
		}
	}
}

// stopTyping stops the gate's timers when the connection ends.
func (c *conn) stopTyping() {
	g := &c.typingGate
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, tc := range g.convs {
		if tc.timer != nil {
			tc.timer.Stop()
		}
	}
	g.convs = nil
}

func (c *conn) lite() chat.UserLite {
	return c.user.Lite()
}
