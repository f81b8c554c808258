package ws

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// blockSet is the users a connection's user blocks: the actors
// (hub.Event.Actor) whose typing and mentions Deliver drops. It is read
// on every such event without a lock (an immutable map behind an atomic
// pointer, nil while the user blocks nobody) and replaced whole when the
// user blocks or unblocks someone, which is rare.
//
// The set is loaded once the connection is subscribed to its user's
// topic; a change that arrives before the load is kept (pending) and
// applied over what the load read, whether or not the load saw it: a
// change says how things are for one user, so applying it twice changes
// nothing.
type blockSet struct {
	set atomic.Pointer[map[int64]struct{}]

	mu      sync.Mutex // guards loaded and pending, and serializes writers of set
	loaded  bool
	pending []blockChange
}

type blockChange struct {
	user    int64
	blocked bool
}

// has reports whether user is blocked.
func (b *blockSet) has(user int64) bool {
	p := b.set.Load()
	if p == nil {
		return false
	}
	_, ok := (*p)[user]
	return ok
}

// change records that user was blocked or unblocked.
func (b *blockSet) change(user int64, blocked bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.loaded {
		b.pending = append(b.pending, blockChange{user, blocked})
		return
	}
	b.apply(b.current(), []blockChange{{user, blocked}})
}

// load sets the users blocked as the store has them, then the changes
// that arrived meanwhile.
func (b *blockSet) load(ids []int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	b.apply(m, b.pending)
	b.pending, b.loaded = nil, true
}

// current returns a copy of the set. Callers hold b.mu.
func (b *blockSet) current() map[int64]struct{} {
	m := map[int64]struct{}{}
	if p := b.set.Load(); p != nil {
		for id := range *p {
			m[id] = struct{}{}
		}
	}
	return m
}

// apply makes m, changed by changes, the set. Callers hold b.mu.
func (b *blockSet) apply(m map[int64]struct{}, changes []blockChange) {
	for _, c := range changes {
		if c.blocked {
			m[c.user] = struct{}{}
		} else {
			delete(m, c.user)
		}
	}
	if len(m) == 0 {
		b.set.Store(nil)
		return
	}
	b.set.Store(&m)
}

// loadBlocks reads the user's block list, once subscribed to their
// topic (so that no change is missed between the two). A connection
// whose list cannot be read closes with 1013: the client reconnects, as
// when the database did not answer the handshake, rather than getting
// what its user blocked.
func (c *conn) loadBlocks(ctx context.Context) bool {
	ids, err := c.h.opt.Chat.BlockedIDs(ctx, c.user.ID)
	if err != nil {
		c.internalError("blocked users", err)
		c.kill(CloseTryAgainLater, "try again later")
		return false
	}
	c.blocks.load(ids)
	return true
}

// blockedEvent reports whether ev is what the connection's user does
// not get from a user they block, and returns what they get instead: nil
// for nothing. A typing event is dropped; a mention reaches them as a
// plain message notification where they would get that (not joined to
// the conversation), else it is dropped.
func (c *conn) blockedEvent(ev *hub.Event) (blocked bool, instead *hub.Event) {
	if ev.Actor == 0 || ev.Actor == c.user.ID || !c.blocks.has(ev.Actor) {
		return false, nil
	}
	switch {
	case ev.Type == chat.EventTyping:
		return true, nil
	case chat.IsMention(ev):
		if c.joins.joined(ev.ConversationID) {
			return true, nil // the new_message comes to the joined socket
		}
		return true, chat.MentionAsMessage(ev)
	}
	return false, nil
}
