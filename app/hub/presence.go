package hub

import (
	"context"
	"sync"
)

type presenceShard struct {
	mu    sync.Mutex
	conns map[int64]int
}

func (h *Hub) presenceShard(userID int64) *presenceShard {
	return &h.presence[uint64(userID)%shardCount]
}

// Connect counts a new connection of userID and reports whether it is the
// user's first (the user just came online): on any node, with a Presence.
func (h *Hub) Connect(ctx context.Context, userID int64) (first bool) {
	p := h.presenceShard(userID)
	p.mu.Lock()
	p.conns[userID]++
	first = p.conns[userID] == 1
	p.mu.Unlock()
	if first && h.global != nil {
		// Without an answer, the user is announced: a second "online"
		// is harmless, a missing one is not.
		if g, err := h.global.Connect(ctx, userID); err == nil {
			first = g
		}
	}
	return first
}

// Disconnect counts a closed connection of userID and reports whether it
// was the user's last (the user just went offline): on any node, with a
// Presence.
func (h *Hub) Disconnect(ctx context.Context, userID int64) (last bool) {
	p := h.presenceShard(userID)
	p.mu.Lock()
	if n := p.conns[userID]; n <= 1 {
		delete(p.conns, userID)
		last = n == 1
	} else {
		p.conns[userID] = n - 1
	}
	p.mu.Unlock()
	if last && h.global != nil {
		// Without an answer, nothing is announced: the Presence settles
		// it once it answers again.
		g, err := h.global.Disconnect(ctx, userID)
		last = err == nil && g
	}
	return last
}

// Online reports whether userID has at least one open connection: on any
// node, with a Presence.
func (h *Hub) Online(ctx context.Context, userID int64) bool {
	if h.localOnline(userID) {
		return true
	}
	if h.global != nil {
		on, err := h.global.OnlineAmong(ctx, []int64{userID})
		return err == nil && len(on) > 0
	}
	return false
}

// OnlineAmong returns those of userIDs that have at least one open
// connection, in the order given (nil for none). This node's own users are
// counted here, with no I/O; with a Presence, the others are asked of it
// in one call. When the Presence does not answer, only this node's users
// are reported online.
func (h *Hub) OnlineAmong(ctx context.Context, userIDs []int64) []int64 {
	on, _ := h.LookupOnline(ctx, userIDs)
	return on
}

// LookupOnline is OnlineAmong for a caller that must not take "not known"
// for "offline" (the push dispatcher): when the Presence does not answer
// (within ctx), it returns this node's users online and the Presence's
// error.
func (h *Hub) LookupOnline(ctx context.Context, userIDs []int64) ([]int64, error) {
	var on, elsewhere []int64
	for _, id := range userIDs {
		if h.localOnline(id) {
			if on == nil { // one allocation for the answer, none when nobody is online
				on = make([]int64, 0, len(userIDs))
			}
			on = append(on, id)
		} else if h.global != nil {
			elsewhere = append(elsewhere, id)
		}
	}
	if len(elsewhere) == 0 {
		return on, nil
	}
	remote, err := h.global.OnlineAmong(ctx, elsewhere)
	if err != nil {
		return on, err
	}
	if len(remote) == 0 {
		return on, nil
	}
	if len(on) == 0 {
		return remote, nil
	}
	// Merge the two, which are both in userIDs' order.
	merged := make([]int64, 0, len(on)+len(remote))
	i, j := 0, 0
	for _, id := range userIDs {
		switch {
		case i < len(on) && on[i] == id:
			merged = append(merged, id)
			i++
		case j < len(remote) && remote[j] == id:
			merged = append(merged, id)
			j++
		}
	}
	return merged, nil
}

func (h *Hub) localOnline(userID int64) bool {
	p := h.presenceShard(userID)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[userID] > 0
}

// LocalUsers lists the users with a connection on this node.
func (h *Hub) LocalUsers() []int64 {
	var ids []int64
	for i := range h.presence {
		p := &h.presence[i]
		p.mu.Lock()
		for id := range p.conns {
			ids = append(ids, id)
		}
		p.mu.Unlock()
	}
	return ids
}
