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

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// Internal control events travel through the send queue, so that they keep
// their place among the frames queued before them.
const (
	ctrlRecovered = "\x00recovered" // a join with recovery is ready to send
	ctrlExpiry    = "\x00expiry"    // the token's expiry timer fired
	ctrlPing      = "\x00ping"      // time to send a ping control frame
	ctrlPong      = "\x00pong"      // answer the peer's ping; Data is its payload
	ctrlClose     = "\x00close"     // write the close frame and end
)

// conn is one WebSocket connection.
//
// An idle connection holds one goroutine, its reader. Its writer runs only
// while there is something to write: the first frame queued starts it, and
// it ends when the queue is empty. Pings and the token's expiry arrive as
// control events in the same queue.
type conn struct {
	h  *Handler
	ws *websocket.Conn
	gc *gorillaConn // the network connection under ws
	id uint64
	// requestID is the upgrade request's X-Request-Id, for the logs.
	requestID string
	user      chat.User
	// ops are the contexts of the socket's running operations,
	// cancelled when it closes.
	ops ops
	// expires is the Unix-nanosecond expiry of the token in force.
	expires atomic.Int64
	// sid is the session (refresh chain) of the token in force; the
	// socket closes when a password change ends it.
	sid    atomic.Pointer[string]
	warned atomic.Bool // token_expiring sent for the token in force
	expiry *time.Timer

	qmu     sync.Mutex // guards the queue
	queue   []*hub.Event
	spare   []*hub.Event // the writer's last batch, reused while busy
	writing bool         // a writer goroutine is running (or the socket is closed)
	// writer is c.writeLoop, made once: a go statement on a method
	// value made on the spot allocates it each time.
	writer func()

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

	joins joins
	// blocks are the users this one blocks: their typing and mentions
	// are dropped in Deliver.
	blocks blockSet

	// Writer-only state (one writer at a time; the queue lock hands it
	// from one to the next).
	fw frameWriter

	// Reader-only state.
	limiter *rate.Limiter
	// budget is the bucket of all the user's connections on this node.
	budget     *rate.Limiter
	strikes    int           // refusals in a row, to answer only the first few
	refusals   *rate.Limiter // refusals over time; made at the first one
	typingGate typingGate
}

// newConn takes over a socket just upgraded: from here on only its
// writer writes to gc.
func newConn(h *Handler, ws *websocket.Conn, gc *gorillaConn, user chat.User, sid string, expires time.Time, requestID string, budget *rate.Limiter) *conn {
	c := &conn{
		h:          h,
		ws:         ws,
		gc:         gc,
		id:         h.nextID.Add(1),
		requestID:  requestID,
		user:       user,
		quit:       make(chan struct{}),
		readerDone: make(chan struct{}),
		closed:     make(chan struct{}),
		joins:      newJoins(h.opt.MaxJoined, h.opt.QueueSize),
		limiter:    rate.NewLimiter(rate.Limit(h.opt.FramesPerSecond), h.opt.FrameBurst),
		budget:     budget,
	}
	c.fw.c = c
	c.writer = c.writeLoop
	c.fw.s = socket{nc: gc.Conn, metrics: h.opt.Metrics}
	gc.own()
	c.expires.Store(expires.UnixNano())
	c.sid.Store(&sid)
	// Armed in run, once connection_established is queued ahead of it.
	c.expiry = time.AfterFunc(time.Duration(math.MaxInt64), func() { c.push(&hub.Event{Type: ctrlExpiry}, true) })
	return c
}

// reasonAccountDisabled is the close reason of every socket of an account
// staff deactivated, with 4001.
const reasonAccountDisabled = "account disabled"

// kill asks the writer to close the connection with code. Only the first
// call counts. It never blocks, so the hub may call it.
func (c *conn) kill(code int, reason string) {
	c.killOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.quit)
		c.ops.stop()
		c.push(&hub.Event{Type: ctrlClose}, true)
	})
}

// Deliver implements hub.Subscriber. It runs in the publisher's goroutine
// and never blocks.
func (c *conn) Deliver(t hub.Topic, ev *hub.Event) {
	if ev.Origin == c.id {
		return
	}
	if ev.Actor != 0 {
		if blocked, instead := c.blockedEvent(ev); blocked {
			if instead == nil {
				return
			}
			ev = instead
		}
	}
	switch {
	case ev.Type == chat.EventBlocked || ev.Type == chat.EventUnblocked:
		c.blocks.change(ev.Actor, ev.Type == chat.EventBlocked)
		return
	case ev.Type == chat.EventUserDeleted:
		c.kill(CloseUnauthorized, "account deleted")
		return
	case ev.Type == chat.EventAccountDisabled:
		c.kill(CloseUnauthorized, reasonAccountDisabled)
		return
	case ev.Type == chat.EventSessionsRevoked:
		// Data is the session that changed the password: it stays.
		if sid := *c.sid.Load(); sid == "" || sid != string(ev.Data) {
			c.kill(CloseUnauthorized, "password changed")
		}
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
		// A joined connection gets the new_message instead; but a
		// mention is for the user wherever they are looking.
		if c.joins.joined(ev.ConversationID) && !chat.IsMention(ev) {
			return
		}
	case t.IsConversation() && ev.ConversationID != 0:
		switch c.joins.hold(ev) {
		case holdDrop, holdHeld:
			return
		case holdOverflow:
			c.h.opt.Metrics.Dropped("slow")
			c.kill(CloseTooSlow, "too slow")
			return
		}
	}
	c.enqueue(ev)
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
		go c.writer()
	}
}

// open does a new connection's setup, in the handler's goroutine: the
// greeting, subscriptions, presence, the URL form's join. It returns the
// time it started, for the close log line.
func (c *conn) open(convID int64, sess auth.Session) time.Time {
	h := c.h
	start := h.opt.Now()
	h.opt.Metrics.ConnOpened()
	h.opt.Log.Info("ws open", "conn_id", c.id, "user_id", c.user.ID, "request_id", c.requestID)

	ctx, cancel := c.ops.start(h.ctx, h.opt.FrameTimeout)
	defer cancel()
	// Others learn the user is online before the client learns it is
	// connected; the client's own events start after its greeting.
	c.goOnline(ctx)
	c.enqueue(reply("connection_established", establishedFrame{
		Type: "connection_established", User: c.userNow(), ServerTime: chat.Time{Time: h.opt.Now()}}))
	h.opt.Hub.Subscribe(hub.UserTopic(c.user.ID), c)
	if !c.recheck(ctx, sess) || !c.loadBlocks(ctx) {
		return start
	}
	if convID != 0 {
		if ferr := c.join(ctx, convID, nil, nil, nil); ferr != nil {
			c.sendError(nil, ferr)
		}
	}
	c.expiry.Reset(c.untilWarning())
	return start
}

// recheck refuses the connection if its account was deactivated, or its
// session ended, since the handshake checked them: the event that closes
// a socket for that may have been published before it subscribed.
func (c *conn) recheck(ctx context.Context, sess auth.Session) bool {
	err := c.h.opt.Auth.Recheck(ctx, c.user.ID, sess)
	if err == nil {
		return true
	}
	if serversFault(chatError(err)) {
		c.internalError("recheck account", err)
	}
	code, reason := refusal(err)
	c.kill(code, reason)
	return false
}

// serve reads until the connection ends, then cleans up. It runs in a
// goroutine of its own, started after open: the setup's database calls
// grow a goroutine's stack, and an idle socket should not keep that
// stack for its whole life.
func (c *conn) serve(start time.Time) {
	h := c.h
	peerCode := c.reader()
	close(c.readerDone)
	c.expiry.Stop()
	c.stopTyping()
	c.kill(CloseNormal, "") // ends the connection if the reader ended first
	<-c.closed

	h.opt.Hub.Unsubscribe(hub.UserTopic(c.user.ID), c)
	for _, id := range c.joins.clear() {
		h.opt.Hub.Unsubscribe(hub.ConversationTopic(id), c)
	}
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
			c.internalError("presence online", err)
		}
	}
}

// goOffline runs once the connection's operations are cancelled: others
// still learn the user went offline, within presenceTimeout, even while
// the server shuts down.
func (c *conn) goOffline() {
	mu := c.h.presenceLock(c.user.ID)
	mu.Lock()
	defer mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.h.ctx), presenceTimeout)
	defer cancel()
	if c.h.opt.Hub.Disconnect(ctx, c.user.ID) {
		if err := c.h.opt.Chat.Presence(ctx, c.user.ID, "offline"); err != nil {
			c.internalError("presence offline", err)
		}
	}
}

// reader reads frames until the connection fails or closes; it returns the
// peer's close code, if it sent one.
func (c *conn) reader() int {
	h := c.h
	c.ws.SetReadLimit(h.opt.MaxFrameBytes)
	c.ws.SetReadDeadline(time.Now().Add(h.opt.PongTimeout))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(h.opt.PongTimeout))
	})
	// The pong goes out through the writer, in its place among the
	// frames queued before it. Pings are not rate limited like frames:
	// their pongs are shed when the queue fills (RFC 6455 5.5.3 lets a
	// pong answer only the latest ping), so that a ping flood cannot
	// grow the queue.
	c.ws.SetPingHandler(func(data string) error {
		c.push(&hub.Event{Type: ctrlPong, Data: []byte(data), Sheddable: true}, false)
		return nil
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
		ctx, cancel := c.ops.start(h.ctx, h.opt.FrameTimeout)
		ferr = c.dispatch(ctx, f)
		cancel()
		if ferr != nil {
			c.sendError(f.requestID(), ferr)
		}
	}
}

// allowFrame applies the connection's token bucket, then the user's. A
// refused frame gets a rate_limited error either way; a connection that
// keeps going past a whole burst of refusals is closed with 4029.
func (c *conn) allowFrame() bool {
	if c.limiter.Allow() && c.budget.Allow() {
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
		if f.SinceVersion != nil && *f.SinceVersion < 0 {
			return &frameError{codeInvalid, "Field since_version must not be negative."}
		}
		return c.join(ctx, id, f.LastMessageID, f.SinceVersion, rid)

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
		if f.Content == nil && len(f.AttachmentIDs) == 0 {
			return &frameError{codeInvalid, "Field content is required."}
		}
		var content string
		if f.Content != nil {
			content = *f.Content
		}
		var clientID string
		if f.ClientID != nil {
			clientID = *f.ClientID
		}
		var replyTo int64
		if f.ReplyToID != nil {
			replyTo = *f.ReplyToID
		}
		u := c.lite()
		s, err := h.opt.Chat.Send(ctx, u, id, content, clientID, replyTo, f.AttachmentIDs...)
		if err != nil {
			return c.serviceError("new_message", err)
		}
		c.enqueue(ackEvent(&s, rid))

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
			return c.serviceError("read_receipt", err)
		}

	case typeAuthenticate:
		if f.Token == nil || *f.Token == "" {
			return &frameError{codeInvalid, "Field token is required."}
		}
		u, claims, err := h.opt.Auth.Authenticate(ctx, *f.Token)
		if err != nil {
			// A token that is not valid is not logged; a database that
			// did not answer is, and says so: the token may be fine.
			if fe := c.serviceError("authenticate", err); fe.code == codeUnavailable {
				return fe
			}
		}
		if err != nil || u.ID != c.user.ID {
			return &frameError{codeForbidden, "That token is not valid for this connection."}
		}
		c.expires.Store(claims.Expiry().UnixNano())
		c.sid.Store(&claims.SID)
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
