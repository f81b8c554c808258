package ws

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// Internal control events travel through the send queue, so that they keep
// their place among the frames queued before them.
const (
	ctrlRecovered = "\x00recovered" // a join with recovery is ready to send
	ctrlExpiry    = "\x00expiry"    // the token's expiry timer fired
	ctrlPing      = "\x00ping"      // time to send a ping control frame
	ctrlClose     = "\x00close"     // write the close frame and end
)

// conn is one WebSocket connection.
//
// An idle connection holds one goroutine, its reader. Its writer runs only
// while there is something to write: the first frame queued starts it, and
// it ends when the queue is empty. Pings and the token's expiry arrive as
// control events in the same queue.
type conn struct {
	h    *Handler
	ws   *websocket.Conn
	id   uint64
	user chat.User
	// expires is the Unix-nanosecond expiry of the token in force.
	expires atomic.Int64
	warned  atomic.Bool // token_expiring sent for the token in force
	expiry  *time.Timer

	qmu     sync.Mutex // guards the queue
	queue   []*hub.Event
	spare   []*hub.Event // the writer's last batch, reused while busy
	writing bool         // a writer goroutine is running (or the socket is closed)

	quit chan struct{} // closed by kill
	// readerDone is closed when the reader has returned: the writer
	// waits for it after its close frame, so that the peer's unread
	// frames do not turn the close into a reset.
	readerDone chan struct{}
	// closed is closed once the writer has closed the socket.
	closed chan struct{}
	// closeCode and closeReason are set once, before quit is closed.
	closeCode   int
	closeReason string
	killOnce    sync.Once

	mu     sync.Mutex // guards joined
	joined map[int64]*joinState

	// Writer-only state (one writer at a time; the queue lock hands it
	// from one to the next).
	fw frameWriter

	// Reader-only state.
	limiter    *rate.Limiter
	strikes    int           // refusals in a row, to answer only the first few
	refusals   *rate.Limiter // refusals over time; made at the first one
	typingGate typingGate
}

// joinState is one joined conversation.
type joinState struct {
	// While recovering, live events of the conversation are held in buf
	// until the replay has been written.
	recovering bool
	buf        []*hub.Event
	// Filled by the reader for the writer's ctrlRecovered.
	replay []chat.Message
	reply  *hub.Event
	after  int64
}

func newConn(h *Handler, ws *websocket.Conn, user chat.User, expires time.Time) *conn {
	c := &conn{
		h:          h,
		ws:         ws,
		id:         h.nextID.Add(1),
		user:       user,
		quit:       make(chan struct{}),
		readerDone: make(chan struct{}),
		closed:     make(chan struct{}),
		joined:     map[int64]*joinState{},
		limiter:    rate.NewLimiter(rate.Limit(h.opt.FramesPerSecond), h.opt.FrameBurst),
	}
	c.fw.c = c
	c.expires.Store(expires.UnixNano())
	// Armed in run, once connection_established is queued ahead of it.
	c.expiry = time.AfterFunc(time.Duration(math.MaxInt64), func() { c.push(&hub.Event{Type: ctrlExpiry}, true) })
	return c
}

// kill asks the writer to close the connection with code. Only the first
// call counts. It never blocks, so the hub may call it.
func (c *conn) kill(code int, reason string) {
	c.killOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.quit)
		c.push(&hub.Event{Type: ctrlClose}, true)
	})
}

// Deliver implements hub.Subscriber. It runs in the publisher's goroutine
// and never blocks.
func (c *conn) Deliver(t hub.Topic, ev *hub.Event) {
	if ev.Origin == c.id {
		return
	}
	switch {
	case ev.Type == chat.EventUserDeleted:
		c.kill(CloseUnauthorized, "user deleted")
		return
	case ev.Type == chat.EventParticipantRemoved:
		c.leave(ev.ConversationID)
		return
	case ev.Type == hub.EventResync:
		// The node lost track of this conversation's messages: the
		// client recovers them with last_message_id, as after 4008.
		c.h.opt.Metrics.Dropped("resync")
		c.kill(CloseTooSlow, "missed events; rejoin with last_message_id")
		return
	case ev.Type == chat.EventNotification:
		c.mu.Lock()
		_, joined := c.joined[ev.ConversationID]
		c.mu.Unlock()
		if joined { // it gets the new_message instead
			return
		}
	case t.IsConversation() && ev.ConversationID != 0:
		c.mu.Lock()
		st := c.joined[ev.ConversationID]
		switch {
		case st == nil: // left: the unsubscribe is on its way
			c.mu.Unlock()
			return
		case st.recovering:
			if len(st.buf) >= c.h.opt.QueueSize {
				c.mu.Unlock()
				c.h.opt.Metrics.Dropped("slow")
				c.kill(CloseTooSlow, "too slow")
				return
			}
			st.buf = append(st.buf, ev)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	c.enqueue(ev)
}

// leave stops a joined conversation's events: the user is no longer among
// its participants (removed, or left from another device).
func (c *conn) leave(convID int64) {
	c.mu.Lock()
	_, joined := c.joined[convID]
	delete(c.joined, convID)
	c.mu.Unlock()
	if joined {
		c.h.opt.Hub.Unsubscribe(hub.ConversationTopic(convID), c)
	}
}

// enqueue queues a frame without waiting. Sheddable events are dropped
// when the queue is three-quarters full; anything else that does not fit
// closes the connection with 4008: the client recovers on reconnect.
func (c *conn) enqueue(ev *hub.Event) { c.push(ev, false) }

// push queues ev and starts a writer if none runs. Control events (force)
// are never refused for space.
func (c *conn) push(ev *hub.Event, force bool) {
	limit := c.h.opt.QueueSize
	c.qmu.Lock()
	switch n := len(c.queue); {
	case force:
	case ev.Sheddable && n >= limit*3/4:
		c.qmu.Unlock()
		return
	case n >= limit:
		c.qmu.Unlock()
		c.h.opt.Metrics.Dropped("slow")
		c.kill(CloseTooSlow, "too slow")
		return
	}
	c.queue = append(c.queue, ev)
	start := !c.writing
	c.writing = true
	c.qmu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// open does a new connection's setup, in the handler's goroutine: the
// greeting, subscriptions, presence, the URL form's join. It returns the
// time it started, for the close log line.
func (c *conn) open(ctx context.Context, convID int64) time.Time {
	h := c.h
	start := h.opt.Now()
	h.opt.Metrics.ConnOpened()
	h.opt.Log.Info("ws open", "conn_id", c.id, "user_id", c.user.ID)

	// Others learn the user is online before the client learns it is
	// connected; the client's own events start after its greeting.
	c.goOnline(ctx)
	c.enqueue(reply("connection_established", establishedFrame{
		Type: "connection_established", User: c.userNow(), ServerTime: chat.Time{Time: h.opt.Now()}}))
	h.opt.Hub.Subscribe(hub.UserTopic(c.user.ID), c)
	if convID != 0 {
		c.join(ctx, convID, nil, nil)
	}
	c.expiry.Reset(c.untilWarning())
	return start
}

// serve reads until the connection ends, then cleans up. It runs in a
// goroutine of its own, started after open: the setup's database calls
// grow a goroutine's stack, and an idle socket should not keep that
// stack for its whole life.
func (c *conn) serve(ctx context.Context, start time.Time) {
	h := c.h
	peerCode := c.reader(ctx)
	close(c.readerDone)
	c.expiry.Stop()
	c.stopTyping()
	c.kill(CloseNormal, "") // ends the connection if the reader ended first
	<-c.closed

	h.opt.Hub.Unsubscribe(hub.UserTopic(c.user.ID), c)
	c.mu.Lock()
	for id := range c.joined {
		h.opt.Hub.Unsubscribe(hub.ConversationTopic(id), c)
	}
	c.joined = nil
	c.mu.Unlock()
	c.goOffline()

	code := c.closeCode
	if peerCode != 0 && c.closeCode == CloseNormal {
		code = peerCode
	}
	h.opt.Metrics.ConnClosed(code)
	h.opt.Log.Info("ws close", "conn_id", c.id, "user_id", c.user.ID, "code", code,
		"reason", c.closeReason, "duration_ms", h.opt.Now().Sub(start).Milliseconds())
}

// untilWarning is how long until the token in force needs a warning.
func (c *conn) untilWarning() time.Duration {
	exp := time.Unix(0, c.expires.Load())
	return max(exp.Sub(c.h.opt.Now())-expiryWarning, 0)
}

func (c *conn) userNow() chat.User {
	u := c.user
	u.IsOnline = true
	return u
}

func (c *conn) goOnline(ctx context.Context) {
	mu := c.h.presenceLock(c.user.ID)
	mu.Lock()
	defer mu.Unlock()
	if c.h.opt.Hub.Connect(ctx, c.user.ID) {
		if err := c.h.opt.Chat.Presence(ctx, c.user.ID, "online"); err != nil {
			c.h.opt.Log.Warn("presence", "err", err, "user_id", c.user.ID)
		}
	}
}

func (c *conn) goOffline() {
	mu := c.h.presenceLock(c.user.ID)
	mu.Lock()
	defer mu.Unlock()
	if c.h.opt.Hub.Disconnect(context.Background(), c.user.ID) {
		if err := c.h.opt.Chat.Presence(context.Background(), c.user.ID, "offline"); err != nil {
			c.h.opt.Log.Warn("presence", "err", err, "user_id", c.user.ID)
		}
	}
}

// reader reads frames until the connection fails or closes; it returns the
// peer's close code, if it sent one.
func (c *conn) reader(ctx context.Context) int {
	h := c.h
	c.ws.SetReadLimit(h.opt.MaxFrameBytes)
	c.ws.SetReadDeadline(time.Now().Add(h.opt.PongTimeout))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(h.opt.PongTimeout))
	})
	closing := false
	var closeBy time.Time
	drained := int64(0)
	for {
		mt, data, err := c.ws.ReadMessage()
		if !closing {
			select {
			case <-c.quit:
				// Closing: read (and drop) until the peer answers the
				// close frame, for a second at most.
				closing = true
				closeBy = time.Now().Add(time.Second)
				c.ws.SetReadDeadline(closeBy)
			default:
			}
		}
		if err == nil && closing {
			// A peer still flooding after the close frame is not read
			// at its pace: TCP holds it back until the second is up.
			if drained += int64(len(data)); drained > 2*h.opt.MaxFrameBytes {
				time.Sleep(time.Until(closeBy))
				return 0
			}
			continue
		}
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce):
				return ce.Code
			case errors.Is(err, websocket.ErrReadLimit):
				c.kill(CloseTooBig, "frame too large")
			}
			return 0
		}
		c.ws.SetReadDeadline(time.Now().Add(h.opt.PongTimeout))
		if !c.allowFrame() {
			continue
		}
		if mt != websocket.TextMessage {
			c.sendError(nil, &frameError{codeInvalidJSON, "Frames must be JSON text, not binary."})
			continue
		}
		f, ferr := decodeFrame(data)
		if ferr != nil {
			h.opt.Metrics.FrameIn("invalid")
			c.sendError(f.requestID(), ferr)
			continue
		}
		h.opt.Metrics.FrameIn(f.Type)
		if ferr := c.dispatch(ctx, f); ferr != nil {
			c.sendError(f.requestID(), ferr)
		}
	}
}

// allowFrame applies the token bucket. A refused frame gets a
// rate_limited error; a connection that keeps going past a whole burst of
// refusals is closed with 4029.
func (c *conn) allowFrame() bool {
	if c.limiter.Allow() {
		c.strikes = 0
		return true
	}
	c.strikes++
	// Refusals drain a bucket of their own, as large as the frame
	// bucket: a client that keeps sending well past its rate is closed,
	// whether or not some of its frames still get through.
	if c.refusals == nil {
		c.refusals = rate.NewLimiter(rate.Limit(c.h.opt.FramesPerSecond), c.h.opt.FrameBurst)
	}
	if !c.refusals.Allow() {
		c.h.opt.Metrics.Dropped("rate_limited")
		c.kill(CloseRateLimited, "too many frames")
		return false
	}
	if c.strikes <= 10 { // answer the first few; the rest are dropped silently
		c.sendError(nil, &frameError{codeRateLimited, "Too many frames; slow down."})
	}
	return false
}

func (c *conn) sendError(requestID json.RawMessage, e *frameError) {
	c.enqueue(reply("error", errorFrame{Type: "error", Code: e.code, Detail: e.detail, RequestID: requestID}))
}

func (c *conn) dispatch(ctx context.Context, f *inFrame) *frameError {
	h := c.h
	rid := f.requestID()
	switch f.Type {
	case typePing:
		ts := f.Timestamp
		if len(ts) == 0 {
			ts = json.RawMessage("null")
		}
		c.enqueue(reply("pong", pongFrame{Type: "pong", Timestamp: ts, ServerTime: chat.Time{Time: h.opt.Now()}, RequestID: rid}))

	case typeJoin:
		id, ferr := f.conversationID()
		if ferr != nil {
			return ferr
		}
		if f.LastMessageID != nil && *f.LastMessageID < 0 {
			return &frameError{codeInvalid, "Field last_message_id must not be negative."}
		}
		return c.join(ctx, id, f.LastMessageID, rid)

	case typeLeave:
		id, ferr := f.conversationID()
		if ferr != nil {
			return ferr
		}
		c.leave(id)
		c.enqueue(reply("left", leftFrame{Type: "left", ConversationID: id, RequestID: rid}))

	case typeNewMessage:
		id, ferr := f.conversationID()
		if ferr != nil {
			return ferr
		}
		if f.Content == nil {
			return &frameError{codeInvalid, "Field content is required."}
		}
		var clientID string
		if f.ClientID != nil {
			clientID = *f.ClientID
		}
		u := chat.UserLite{ID: c.user.ID, Username: c.user.Username, DisplayName: c.user.DisplayName}
		m, _, err := h.opt.Chat.SendMessage(ctx, u, id, *f.Content, clientID)
		if err != nil {
			return chatError(err)
		}
		c.enqueue(reply("message_ack", ackFrame{Type: "message_ack", ClientID: m.ClientID, Message: &m, RequestID: rid}))

	case typeTyping:
		id, ferr := f.conversationID()
		if ferr != nil {
			return ferr
		}
		return c.typing(ctx, id, f.IsTyping == nil || *f.IsTyping)

	case typeReadReceipt:
		id, ferr := f.conversationID()
		if ferr != nil {
			return ferr
		}
		if f.MessageID == nil {
			return &frameError{codeInvalid, "Field message_id is required."}
		}
		if _, err := h.opt.Chat.MarkRead(ctx, c.user.ID, id, *f.MessageID); err != nil {
			return chatError(err)
		}

	case typeAuthenticate:
		if f.Token == nil || *f.Token == "" {
			return &frameError{codeInvalid, "Field token is required."}
		}
		u, claims, err := h.opt.Auth.Authenticate(ctx, *f.Token)
		if err != nil || u.ID != c.user.ID {
			return &frameError{codeForbidden, "That token is not valid for this connection."}
		}
		c.expires.Store(claims.Expiry().UnixNano())
		c.warned.Store(false)
		c.expiry.Reset(c.untilWarning())
		c.enqueue(reply("authenticated", expiryFrame{Type: "authenticated", ExpiresAt: chat.Time{Time: claims.Expiry()}, RequestID: rid}))

	default:
		return &frameError{codeUnknownType, "Unknown frame type " + truncate(f.Type, 64) + "."}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// maxReplay is the most missed messages a join replays; past it the join
// answers recovered:false and the client reloads over REST.
const maxReplay = 1000

// join subscribes to a conversation. With lastMessageID it replays every
// message after it before any live one: live events are held from the
// moment of subscribing, the missed ones read from the store, and the
// writer sends the replay, then the reply, then the held events it has not
// already sent.
func (c *conn) join(ctx context.Context, convID int64, lastMessageID *int64, rid json.RawMessage) *frameError {
	h := c.h
	if err := h.opt.Chat.CheckMember(ctx, convID, c.user.ID); err != nil {
		return chatError(err)
	}
	c.mu.Lock()
	st := c.joined[convID]
	if st == nil && len(c.joined) >= h.opt.MaxJoined {
		c.mu.Unlock()
		return &frameError{codeInvalid, "Too many joined conversations; leave some first."}
	}
	if st == nil {
		st = &joinState{}
		c.joined[convID] = st
	}
	if lastMessageID != nil {
		st.recovering, st.buf = true, nil
	}
	c.mu.Unlock()
	h.opt.Hub.Subscribe(hub.ConversationTopic(convID), c)

	online, err := h.opt.Chat.OnlineUserIDs(ctx, convID)
	if err != nil {
		return chatError(err)
	}
	jf := joinedFrame{Type: "joined", ConversationID: convID, OnlineUserIDs: online, Recovered: true, RequestID: rid}
	if lastMessageID == nil {
		c.enqueue(reply("joined", jf))
		return nil
	}
	page, err := h.opt.Chat.Missed(ctx, convID, *lastMessageID, maxReplay)
	if err != nil {
		c.mu.Lock()
		if st := c.joined[convID]; st != nil {
			st.recovering = false
		}
		c.mu.Unlock()
		return chatError(err)
	}
	if page.HasMore {
		jf.Recovered = false
		page.Results = nil
	}
	jf.Missed = len(page.Results)
	c.mu.Lock()
	if st := c.joined[convID]; st != nil {
		st.replay, st.reply, st.after = page.Results, reply("joined", jf), *lastMessageID
	}
	c.mu.Unlock()
	c.enqueue(&hub.Event{Type: ctrlRecovered, ConversationID: convID})
	return nil
}
