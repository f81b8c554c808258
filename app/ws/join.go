package ws

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// maxReplay is the most missed messages (or changes) a join replays; past
// it the join answers recovered:false and the client reloads over REST.
const maxReplay = 1000

// joins is one connection's joined conversations and their recoveries.
// The hub's Deliver, the reader (join, leave) and the writer (the replay)
// all use it, under its lock.
//
// A join with last_message_id or since_version goes through these states:
//
//	begin      joined, recovering: live events of the conversation are held
//	ready      the replay and the joined reply wait for the writer
//	take       the writer sends the replay, the reply, then the held events
//	           it has not already sent; live events flow from then on
//
// A failure after begin (the online lookup, the replay read) ends the join
// with abort: the conversation is left, nothing stays held, and the frame
// gets an error. A connection holding more events than its queue while
// recovering is closed with 4008, like one whose queue overflows.
type joins struct {
	mu sync.Mutex
	m  map[int64]*joinState
	// max is how many conversations may be joined at once; held is how
	// many live events one recovering conversation may hold.
	max, held int
}

// joinState is one joined conversation.
type joinState struct {
	recovering bool
	// ready is set once the replay and reply wait for the writer.
	ready bool
	buf   []*hub.Event // live events held while recovering
	// Filled by the reader for the writer.
	replay []chat.Message
	reply  *hub.Event
	after  int64
	// A since_version recovery replays changes instead (since is set),
	// up to the conversation's version when they were read.
	since   bool
	changes []chat.Change
	version int64
}

// recovery is what a join's reader hands its writer.
type recovery struct {
	replay  []chat.Message // last_message_id: the messages after it
	after   int64          // last_message_id
	since   bool           // a since_version recovery: changes, version
	changes []chat.Change
	version int64
	reply   *hub.Event
}

func newJoins(max, held int) joins {
	return joins{m: map[int64]*joinState{}, max: max, held: held}
}

// begin joins convID, recovering when recover is set: from now on its
// live events are held until the writer takes the replay. It fails when
// the connection has joined as many conversations as it may.
func (j *joins) begin(convID int64, recover bool) *frameError {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.m[convID]
	if st == nil {
		if len(j.m) >= j.max {
			return &frameError{codeInvalid, "Too many joined conversations; leave some first."}
		}
		st = &joinState{}
		j.m[convID] = st
	}
	if recover {
		// A newer recovery replaces one still under way: its replay
		// starts from the newer last_message_id.
		st.recovering, st.ready, st.buf, st.replay, st.reply = true, false, nil, nil, nil
	}
	return nil
}

// holdResult is what Deliver does with a conversation's live event.
type holdResult int

const (
	holdSend     holdResult = iota // joined and live: queue it
	holdDrop                       // not joined (left; the unsubscribe is on its way)
	holdHeld                       // recovering: held for after the replay
	holdOverflow                   // recovering and holding too many: close with 4008
)

// hold decides the fate of a live event of its conversation.
func (j *joins) hold(ev *hub.Event) holdResult {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.m[ev.ConversationID]
	switch {
	case st == nil:
		return holdDrop
	case !st.recovering:
		return holdSend
	case len(st.buf) >= j.held:
		return holdOverflow
	}
	st.buf = append(st.buf, ev)
	return holdHeld
}

// ready hands a recovery's replay and joined reply to the writer. It
// returns false if the conversation was left meanwhile, or a newer join
// began a recovery of its own.
func (j *joins) ready(convID int64, r recovery) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.m[convID]
	if st == nil || !st.recovering || st.ready {
		return false
	}
	st.ready, st.replay, st.reply, st.after = true, r.replay, r.reply, r.after
	st.since, st.changes, st.version = r.since, r.changes, r.version
	return true
}

// take ends a recovery for the writer: it returns the recovery and the
// events held meanwhile, and live events flow from then on. ok is false
// when there is nothing to send (left meanwhile, or already taken).
func (j *joins) take(convID int64) (r recovery, held []*hub.Event, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.m[convID]
	if st == nil || !st.ready {
		return recovery{}, nil, false
	}
	r = recovery{replay: st.replay, after: st.after, since: st.since, changes: st.changes, version: st.version, reply: st.reply}
	held = st.buf
	st.replay, st.reply, st.buf, st.recovering, st.ready, st.changes = nil, nil, nil, false, false, nil
	return r, held, true
}

// leave forgets convID; it reports whether it was joined.
func (j *joins) leave(convID int64) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, ok := j.m[convID]
	delete(j.m, convID)
	return ok
}

// joined reports whether convID is joined.
func (j *joins) joined(convID int64) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, ok := j.m[convID]
	return ok
}

// recovering reports whether convID is joined and recovering.
func (j *joins) recovering(convID int64) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.m[convID]
	return st != nil && st.recovering
}

// clear forgets every conversation and returns their ids.
func (j *joins) clear() []int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	ids := make([]int64, 0, len(j.m))
	for id := range j.m {
		ids = append(ids, id)
	}
	clear(j.m)
	return ids
}

// join subscribes to a conversation. With lastMessageID it replays every
// message after it before any live one; with sinceVersion, every message
// created or changed after that version, in its current state. Live
// events are held from the moment of subscribing, the missed ones read
// from the store, and the writer sends the replay, then the reply, then
// the held events it has not already sent.
//
// The conversation's version, in the reply, is read after subscribing and
// before the changes: every change up to it is in the store (versions
// become visible in order), and every one after it comes live.
//
// A join that fails after subscribing leaves the conversation (even one
// joined before this frame): the client is told with an error frame and
// joins again.
func (c *conn) join(ctx context.Context, convID int64, lastMessageID, sinceVersion *int64, rid json.RawMessage) *frameError {
	h := c.h
	if err := h.opt.Chat.CheckMember(ctx, convID, c.user.ID); err != nil {
		return c.serviceError("join", err)
	}
	recover := lastMessageID != nil || sinceVersion != nil
	if ferr := c.joins.begin(convID, recover); ferr != nil {
		return ferr
	}
	h.opt.Hub.Subscribe(hub.ConversationTopic(convID), c)

	online, err := h.opt.Chat.OnlineUserIDs(ctx, convID)
	if err != nil {
		c.leave(convID)
		return c.serviceError("join", err)
	}
	version, err := h.opt.Chat.ConversationVersion(ctx, convID)
	if err != nil {
		c.leave(convID)
		return c.serviceError("join", err)
	}
	jf := joinedFrame{Type: "joined", ConversationID: convID, OnlineUserIDs: online, Recovered: true, Version: version, RequestID: rid}
	if !recover {
		c.enqueue(reply("joined", jf))
		return nil
	}
	var r recovery
	if sinceVersion != nil {
		changes, err := h.opt.Chat.Changes(ctx, c.user.ID, convID, *sinceVersion, version, maxReplay+1)
		if err != nil {
			c.leave(convID)
			return c.serviceError("join", err)
		}
		if len(changes) > maxReplay {
			jf.Recovered = false
			changes = nil
		}
		jf.Missed = len(changes)
		r = recovery{since: true, changes: changes, version: version}
	} else {
		page, err := h.opt.Chat.Missed(ctx, c.user.ID, convID, *lastMessageID, maxReplay)
		if err != nil {
			c.leave(convID)
			return c.serviceError("join", err)
		}
		if page.HasMore {
			jf.Recovered = false
			page.Results = nil
		}
		jf.Missed = len(page.Results)
		r = recovery{replay: page.Results, after: *lastMessageID}
	}
	r.reply = reply("joined", jf)
	if c.joins.ready(convID, r) {
		c.enqueue(&hub.Event{Type: ctrlRecovered, ConversationID: convID})
	}
	return nil
}

// leave stops a joined conversation's events: the client left it, is no
// longer among its participants (removed, or left from another device), or
// its join failed.
func (c *conn) leave(convID int64) {
	if c.joins.leave(convID) {
		c.h.opt.Hub.Unsubscribe(hub.ConversationTopic(convID), c)
	}
}

// writeRecovery sends a join's replay, its joined reply, then the live
// events held meanwhile, skipping what the replay already sent.
func (c *conn) writeRecovery(convID int64, w *frameWriter) {
	r, held, ok := c.joins.take(convID)
	if !ok {
		return
	}
	if w.lastSent == nil {
		w.lastSent = map[int64]sentMark{}
	}
	mark := w.lastSent[convID]
	if r.since {
		// The replay is the conversation as of r.version: anything at
		// or below it that comes live is already reflected.
		for i := range r.changes {
			ch := &r.changes[i]
			ev := ch.Event()
			if ch.Created {
				mark.id = max(mark.id, ch.Message.ID)
			}
			w.s.text(ev.Type, ev.Data)
			w.flushIfFull()
		}
		mark.version = max(mark.version, r.version)
		w.lastSent[convID] = mark
	} else {
		// The client asked for everything after `after`: start from there.
		mark.id = r.after
		w.lastSent[convID] = mark
		for i := range r.replay {
			w.add(chat.MessageEvent(&r.replay[i]))
			w.flushIfFull()
		}
	}
	w.add(r.reply)
	w.flushIfFull()
	for _, ev := range held {
		w.add(ev)
		w.flushIfFull()
	}
}
