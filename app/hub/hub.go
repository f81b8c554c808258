// Package hub fans live events out to subscribers by topic. A topic is a
// conversation (the connections that joined it) or a user (every
// connection of that user).
//
// Publish never blocks: it hands the same *Event to every subscriber's
// Deliver, which must queue or drop without waiting, and it never waits
// for the store: with a Sequence, a gap in a conversation's versions is
// read by a filler goroutine while that conversation's later events wait
// their turn. The hub owns its fillers; Close stops them. The hub knows no
// SQL, no HTTP and no WebSocket; it also tracks which users are online.
package hub

import (
	"context"
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
	// MessageID is set on events about a message; recovery uses it to
	// skip what a replay already sent.
	MessageID int64
	// Version is the conversation version of the change the event
	// reports (a message created, edited, deleted or reacted to), zero
	// for an event that is no change (typing, presence). A hub with a
	// Sequence delivers a conversation's versioned events in version
	// order, each once, with no change missing.
	Version int64
	// Prev is the conversation's version before the change: versions
	// come from one clock for every conversation, so a conversation's
	// are not consecutive, and Prev says which one an event follows.
	Prev int64
	// Sheddable events (typing, presence) may be dropped for a connection
	// whose queue is nearly full.
	Sheddable bool
	// Origin is the connection that caused the event; it does not get it
	// back (typing). Zero for none.
	Origin uint64
	// Actor is the user whose doing the event reports, where a recipient
	// may refuse it for who did it (a typing user, a message's sender in
	// a notification): a subscriber drops what comes from a user it
	// blocks without reading Data. Zero for none.
	Actor int64
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
	// PublishUsers carries one event for the user topics of many users
	// (a message's notifications): one hop between nodes, not one per
	// user.
	PublishUsers(userIDs []int64, ev *Event)
}

// Presence tells whether users are online on any node. The default hub
// counts only its own connections.
type Presence interface {
	// Connect records the user's first connection on this node and
	// reports whether it is their first on any node.
	Connect(ctx context.Context, userID int64) (first bool, err error)
	// Disconnect records that this node holds no connection of the user
	// any more, and reports whether no node does.
	Disconnect(ctx context.Context, userID int64) (last bool, err error)
	// OnlineAmong returns those of userIDs that some node holds a
	// connection of, in the order given, asking in one round trip
	// however many users there are.
	OnlineAmong(ctx context.Context, userIDs []int64) ([]int64, error)
}

// Sequence is the stored order of each conversation's changes: its
// versions. With one, a hub delivers every versioned event (Event.Version
// set) of a conversation in version order with nothing missing,
// whichever way the events arrive: from this node or from other nodes
// through a broker, in any order. The changes a skipped version stands
// for are read from the store before the event that skipped it; a
// repeated version is dropped. Versions have holes (a change with no
// event on the conversation's topic, like a rename): what the store does
// not have is not coming.
type Sequence interface {
	// LastVersions returns the version of each conversation (absent: 0).
	LastVersions(ctx context.Context, convIDs []int64) (map[int64]int64, error)
	// Between returns the events of convID's changes with
	// after < version < before (before 0: no bound), ascending, at most
	// limit: each message created or changed in that range once, in its
	// current state.
	Between(ctx context.Context, convID, after, before int64, limit int) ([]*Event, error)
}

// EventResync tells a conversation's subscribers that the hub could not
// fill a gap in its changes (the store failed, or the gap was too long to
// replay): they must recover from the store themselves.
const EventResync = "\x00resync"

// Options configure a hub; the zero value is a single node's hub.
type Options struct {
	// Broker carries events to other nodes; nil: this node only.
	Broker Broker
	// Presence tracks users across nodes; nil: a user is online while
	// this node holds a connection of theirs.
	Presence Presence
	// Sequence orders each conversation's changes and fills gaps from
	// the store; nil: events are delivered as they come.
	Sequence Sequence
}

const shardCount = 64

// Hub maps topics to subscribers. The zero value is not usable: call New.
type Hub struct {
	shards   [shardCount]shard
	presence [shardCount]presenceShard
	broker   Broker
	global   Presence
	seq      Sequence

	// publishes and deliveries count deliver calls and the subscribers
	// they reached, for metrics (Stats).
	publishes, deliveries atomic.Uint64
	// Ordered delivery: events dropped as repeats, gaps filled from the
	// store, and resyncs sent (Stats).
	repeats, fills, resyncs atomic.Uint64

	// The fillers: one goroutine per conversation with a gap being read.
	// ctx ends at Close, which waits for them.
	ctx       context.Context
	cancel    context.CancelFunc
	fillMu    sync.Mutex
	closed    bool
	fillers   sync.WaitGroup
	closeOnce sync.Once
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

	// With a Sequence: order serializes a conversation's ordered
	// deliveries; last is the highest version delivered (or known to be
	// in the store before the topic had subscribers). Guarded by order.
	order sync.Mutex
	last  int64
	// While a filler reads a gap from the store (filling), the topic's
	// events wait in held, in arrival order; want asks the filler to
	// read up to that version (CatchUp). Past maxHeld the held events
	// are dropped (overflow, with skip their highest version). fillDone closes
	// when the filler stops. Guarded by order; filling is also read
	// without it, so that an event of another kind passes with no lock
	// while no filler runs.
	filling  atomic.Bool
	held     []*Event
	want     int64
	overflow bool
	skip     int64
	fillDone chan struct{}
}

// New returns an empty hub. With a Sequence, Close stops the goroutines
// that fill gaps.
func New(opt Options) *Hub {
	h := &Hub{broker: opt.Broker, global: opt.Presence, seq: opt.Sequence}
	h.ctx, h.cancel = context.WithCancel(context.Background())
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

// Close stops the hub's fillers (a read in progress is cancelled and its
// conversation resyncs) and waits for them. Events published after Close
// are still delivered, but a gap then resyncs at once instead of being
// read.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.fillMu.Lock()
		h.closed = true
		h.fillMu.Unlock()
		h.cancel()
	})
	h.fillers.Wait()
}

// Subscribe adds s to topic t. Subscribing twice is harmless.
//
// With a Sequence, a conversation's first subscriber reads the
// conversation's version before it is added: it gets every change
// committed after that read, in order, and the store has every one before.
// The read happens in the subscriber's goroutine, under no lock a
// publisher takes, so publishing never waits for it. It must come before
// the subscriber is added: read later, it could count a message committed
// meanwhile as delivered when its event has yet to arrive.
func (h *Hub) Subscribe(t Topic, s Subscriber) {
	sh := h.shard(t)
	var last int64
	if h.seq != nil && !t.user {
		sh.mu.RLock()
		exists := sh.topics[t] != nil
		sh.mu.RUnlock()
		if !exists {
			last = h.lastVersion(t.id)
		}
	}
	sh.mu.Lock()
	tp := sh.topics[t]
	if tp == nil {
		tp = &topic{subs: map[Subscriber]struct{}{}, last: last}
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

// PublishUsers delivers ev to the user topic of each of userIDs: Publish
// for each, with the broker told once.
func (h *Hub) PublishUsers(userIDs []int64, ev *Event) {
	h.ReceiveUsers(userIDs, ev)
	if h.broker != nil && len(userIDs) > 0 {
		h.broker.PublishUsers(userIDs, ev)
	}
}

// Receive delivers an event that came from another node.
func (h *Hub) Receive(t Topic, ev *Event) { h.deliver(t, ev) }

// ReceiveUsers delivers an event for many users that came from another
// node (and PublishUsers's own).
func (h *Hub) ReceiveUsers(userIDs []int64, ev *Event) {
	for _, id := range userIDs {
		h.deliver(UserTopic(id), ev)
	}
}

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
	if h.seq != nil && !t.user && (ev.Version > 0 || tp.filling.Load()) {
		h.deliverOrdered(sh, t, tp, ev)
		return
	}
	if snap == nil {
		snap = h.snapshot(sh, t, tp)
	}
	h.fanout(t, snap, ev)
}

// snapshot returns tp's subscriber list, building it if a change cleared
// it; nil once tp is no longer t's topic.
func (h *Hub) snapshot(sh *shard, t Topic, tp *topic) []Subscriber {
	sh.mu.RLock()
	snap := tp.snap
	sh.mu.RUnlock()
	if snap != nil {
		return snap
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.topics[t] != tp {
		return nil
	}
	if tp.snap == nil {
		tp.snap = make([]Subscriber, 0, len(tp.subs))
		for s := range tp.subs {
			tp.snap = append(tp.snap, s)
		}
	}
	return tp.snap
}

func (h *Hub) fanout(t Topic, snap []Subscriber, ev *Event) {
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

// OrderStats returns, since New, how many versioned events were dropped
// as already delivered, how many gaps were filled from the store, and how
// many resyncs were sent.
func (h *Hub) OrderStats() (repeats, fills, resyncs uint64) {
	return h.repeats.Load(), h.fills.Load(), h.resyncs.Load()
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
