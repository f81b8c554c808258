// Package hub fans live events out to subscribers by topic. A topic is a
// conversation (the connections that joined it) or a user (every
// connection of that user).
//
// Publish never blocks: it hands the same *Event to every subscriber's
// Deliver, which must queue or drop without waiting. The hub knows no SQL,
// no HTTP and no WebSocket; it also tracks which users are online.
package hub

import (
	"strconv"
	"sync"
	"sync/atomic"
)

// Topic names a set of subscribers: the connections joined to a
// conversation, or every connection of a user. It is a small value, so
// naming a topic allocates nothing.
type Topic struct {
	user bool
	id   int64
}

// ConversationTopic is the topic of connections joined to conversation id.
func ConversationTopic(id int64) Topic { return Topic{id: id} }

// UserTopic is the topic of every connection of user id.
func UserTopic(id int64) Topic { return Topic{user: true, id: id} }

// IsConversation reports whether t is a conversation topic.
func (t Topic) IsConversation() bool { return !t.user }

// ID is the conversation's or the user's id.
func (t Topic) ID() int64 { return t.id }

// String is "conversation:<id>" or "user:<id>", for logs and a broker.
func (t Topic) String() string {
	if t.user {
		return "user:" + strconv.FormatInt(t.id, 10)
	}
	return "conversation:" + strconv.FormatInt(t.id, 10)
}

// Event is one encoded event. It is shared by all subscribers and must not
// be modified after Publish.
type Event struct {
	Type string
	// Data is the complete JSON frame, encoded once per publish.
	Data []byte
	// ConversationID is the conversation the event is about, if any.
	ConversationID int64
	// MessageID is set on new_message events; recovery uses it to skip
	// what a replay already sent.
	MessageID int64
	// Sheddable events (typing, presence) may be dropped for a connection
	// whose queue is nearly full.
	Sheddable bool
	// Origin is the connection that caused the event; it does not get it
	// back (typing). Zero for none.
	Origin uint64
}

// Subscriber receives events. Deliver must not block.
type Subscriber interface {
	Deliver(t Topic, ev *Event)
}

// Broker carries events between nodes. The hub publishes every local event
// to it; the broker hands events from other nodes to Receive. The default
// hub has none: a single node delivers everything itself.
type Broker interface {
	Publish(t Topic, ev *Event)
}

const shardCount = 64

// Hub maps topics to subscribers. The zero value is not usable: call New.
type Hub struct {
	shards   [shardCount]shard
	presence [shardCount]presenceShard
	broker   Broker

	// publishes and deliveries count deliver calls and the subscribers
	// they reached, for metrics (Stats).
	publishes, deliveries atomic.Uint64
}

type shard struct {
	mu     sync.RWMutex
	topics map[Topic]*topic
}

type topic struct {
	subs map[Subscriber]struct{}
	// snap is the subscriber list Publish iterates; nil after a change,
	// rebuilt by the next Publish. Subscribing is O(1) and publishing
	// allocates nothing while the set is stable.
	snap []Subscriber
}

type presenceShard struct {
	mu    sync.Mutex
	conns map[int64]int
}

// New returns an empty hub. broker may be nil.
func New(broker Broker) *Hub {
	h := &Hub{broker: broker}
	for i := range h.shards {
		h.shards[i].topics = map[Topic]*topic{}
		h.presence[i].conns = map[int64]int{}
	}
	return h
}

func (h *Hub) shard(t Topic) *shard {
	// Ids are sequential: a multiplicative hash spreads neighbours over
	// the shards (and keeps a user and a conversation of one id apart).
	x := uint64(t.id)
	if t.user {
		x ^= 0x632be59bd9b4e019
	}
	x *= 0x9e3779b97f4a7c15
	return &h.shards[(x>>32)%shardCount]
}

// Subscribe adds s to topic t. Subscribing twice is harmless.
func (h *Hub) Subscribe(t Topic, s Subscriber) {
	sh := h.shard(t)
	sh.mu.Lock()
	tp := sh.topics[t]
	if tp == nil {
		tp = &topic{subs: map[Subscriber]struct{}{}}
		sh.topics[t] = tp
	}
	if _, ok := tp.subs[s]; !ok {
		tp.subs[s] = struct{}{}
		tp.snap = nil
	}
	sh.mu.Unlock()
}

// Unsubscribe removes s from topic t.
func (h *Hub) Unsubscribe(t Topic, s Subscriber) {
	sh := h.shard(t)
	sh.mu.Lock()
	if tp := sh.topics[t]; tp != nil {
		if _, ok := tp.subs[s]; ok {
			delete(tp.subs, s)
			tp.snap = nil
			if len(tp.subs) == 0 {
				delete(sh.topics, t)
			}
		}
	}
	sh.mu.Unlock()
}

// Publish delivers ev to every subscriber of t, in the caller's goroutine.
// Events published one after another by one goroutine reach each
// subscriber in that order.
func (h *Hub) Publish(t Topic, ev *Event) {
	h.deliver(t, ev)
	if h.broker != nil {
		h.broker.Publish(t, ev)
	}
}

// Receive delivers an event that came from another node.
func (h *Hub) Receive(t Topic, ev *Event) { h.deliver(t, ev) }

func (h *Hub) deliver(t Topic, ev *Event) {
	h.publishes.Add(1)
	sh := h.shard(t)
	sh.mu.RLock()
	tp := sh.topics[t]
	if tp == nil {
		sh.mu.RUnlock()
		return
	}
	snap := tp.snap
	sh.mu.RUnlock()
	if snap == nil {
		sh.mu.Lock()
		if tp = sh.topics[t]; tp == nil {
			sh.mu.Unlock()
			return
		}
		if tp.snap == nil {
			tp.snap = make([]Subscriber, 0, len(tp.subs))
			for s := range tp.subs {
				tp.snap = append(tp.snap, s)
			}
		}
		snap = tp.snap
		sh.mu.Unlock()
	}
	for _, s := range snap {
		s.Deliver(t, ev)
	}
	h.deliveries.Add(uint64(len(snap)))
}

// Stats returns how many events were published (locally or received from
// another node, one per topic) and how many subscriber deliveries they
// made, since New.
func (h *Hub) Stats() (publishes, deliveries uint64) {
	return h.publishes.Load(), h.deliveries.Load()
}

// Subscribers returns how many subscribers t has.
func (h *Hub) Subscribers(t Topic) int {
	sh := h.shard(t)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if tp := sh.topics[t]; tp != nil {
		return len(tp.subs)
	}
	return 0
}

func (h *Hub) presenceShard(userID int64) *presenceShard {
	return &h.presence[uint64(userID)%shardCount]
}

// Connect counts a new connection of userID and reports whether it is the
// user's first (the user just came online).
func (h *Hub) Connect(userID int64) (first bool) {
	p := h.presenceShard(userID)
	p.mu.Lock()
	p.conns[userID]++
	first = p.conns[userID] == 1
	p.mu.Unlock()
	return first
}

// Disconnect counts a closed connection of userID and reports whether it
// was the user's last (the user just went offline).
func (h *Hub) Disconnect(userID int64) (last bool) {
	p := h.presenceShard(userID)
	p.mu.Lock()
	if n := p.conns[userID]; n <= 1 {
		delete(p.conns, userID)
		last = n == 1
	} else {
		p.conns[userID] = n - 1
	}
	p.mu.Unlock()
	return last
}

// Online reports whether userID has at least one open connection.
func (h *Hub) Online(userID int64) bool {
	p := h.presenceShard(userID)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[userID] > 0
}
