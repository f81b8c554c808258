// Package ws is Confab's WebSocket edge: the handshake, one connection's
// read and write loops, frame decoding and dispatch, joins with recovery,
// token expiry, rate limits and backpressure.
//
// Each connection has exactly one reader (the handler's goroutine) and one
// writer goroutine, and a bounded queue between the hub and the writer:
// the hub never waits for a socket. The package holds no rules of its own;
// every frame that changes something calls app/chat.
package ws

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/hub"
)

// Close codes of the contract.
const (
	CloseNormal    = websocket.CloseNormalClosure // 1000
	CloseGoingAway = websocket.CloseGoingAway     // 1001: server shutting down
	CloseTooBig    = websocket.CloseMessageTooBig // 1009
	// CloseTryAgainLater (1013): the handshake could not be checked
	// because the database did not answer; reconnect with backoff.
	CloseTryAgainLater = websocket.CloseTryAgainLater
	CloseUnauthorized  = 4001
	CloseNotFound      = 4004
	CloseTooSlow       = 4008
	CloseRateLimited   = 4029
)

// Timing of a connection.
const (
	// writeWait bounds every write (the deadline in force is moved
	// once it is less than writeWait/2 away); a peer that cannot take a
	// frame in that time is gone.
	writeWait = 10 * time.Second
	// expiryWarning is how long before its token expires a socket is told.
	expiryWarning = 60 * time.Second
	// defaultFrameTimeout bounds the service calls of one client frame
	// (Options.FrameTimeout).
	defaultFrameTimeout = 10 * time.Second
	// presenceTimeout bounds publishing a closed socket's "offline",
	// which runs after the socket's own context is cancelled.
	presenceTimeout = 5 * time.Second
)

// Chat is what the edge asks of the chat service (*chat.Service). Errors
// are chat.Error values; any other error is answered as internal.
type Chat interface {
	// CheckMember returns ErrNotFound unless userID takes part in convID.
	CheckMember(ctx context.Context, convID, userID int64) error
	OnlineUserIDs(ctx context.Context, convID int64) ([]int64, error)
	// Missed returns up to limit messages after afterID, oldest first,
	// with their reactions as viewer sees them; HasMore says there were
	// more.
	Missed(ctx context.Context, viewer, convID, afterID int64, limit int) (chat.Page, error)
	// ConversationVersion returns the conversation's version.
	ConversationVersion(ctx context.Context, convID int64) (int64, error)
	// Changes returns the messages created or changed in (after, upTo],
	// in order, at most limit, as viewer sees them.
	Changes(ctx context.Context, viewer, convID, after, upTo int64, limit int) ([]chat.Change, error)
	// Send stores and publishes a message; Sent.JSON is the message
	// encoded, for the ack.
	Send(ctx context.Context, sender chat.UserLite, convID int64, content, clientID string, replyToID int64, attachmentIDs ...int64) (chat.Sent, error)
	MarkRead(ctx context.Context, reader, convID, msgID int64) (chat.ReadMark, error)
	Typing(ctx context.Context, user chat.UserLite, convID int64, isTyping bool, origin uint64) error
	Presence(ctx context.Context, userID int64, status string) error
	// BlockedIDs returns the ids of the users userID blocks.
	BlockedIDs(ctx context.Context, userID int64) ([]int64, error)
}

// Hub is what the edge asks of the live fan-out (*hub.Hub).
type Hub interface {
	Subscribe(t hub.Topic, s hub.Subscriber)
	Unsubscribe(t hub.Topic, s hub.Subscriber)
	// Connect and Disconnect count a user's sockets; they report the
	// first and the last, when presence changes.
	Connect(ctx context.Context, userID int64) (first bool)
	Disconnect(ctx context.Context, userID int64) (last bool)
}

var (
	_ Chat = (*chat.Service)(nil)
	_ Hub  = (*hub.Hub)(nil)
)

// Metrics receives the WebSocket edge's counts. Every method must be safe
// for concurrent use and cheap.
type Metrics interface {
	ConnOpened()
	ConnClosed(code int)
	FrameIn(typ string)
	FrameOut(typ string)
	Dropped(reason string) // "slow" or "rate_limited"
}

type nopMetrics struct{}

func (nopMetrics) ConnOpened()     {}
func (nopMetrics) ConnClosed(int)  {}
func (nopMetrics) FrameIn(string)  {}
func (nopMetrics) FrameOut(string) {}
func (nopMetrics) Dropped(string)  {}

// Options configures the edge. Zero durations and sizes take the
// contract's defaults.
type Options struct {
	Auth *auth.Service
	Chat Chat
	Hub  Hub
	Log  *slog.Logger
	// Context is the parent of every socket's context; nil means
	// context.Background. Cancelling it, or Shutdown, cancels the
	// service calls of every socket.
	Context context.Context
	// FrameTimeout bounds the service calls one client frame makes
	// (default 10s).
	FrameTimeout time.Duration
	// Metrics may be nil.
	Metrics Metrics
	// AllowedOrigins besides the server's own host; "*" allows any.
	AllowedOrigins []string
	PingInterval   time.Duration // 25s
	PongTimeout    time.Duration // 60s
	// WriteDelay is how long a socket's writer waits, once something is
	// queued, before it writes: the events that arrive meanwhile go out
	// in the same write. Zero writes at once.
	WriteDelay    time.Duration
	MaxFrameBytes int64 // 64 KiB
	// FramesPerSecond and FrameBurst size the per-connection token bucket.
	FramesPerSecond float64 // 20
	FrameBurst      int     // 60
	// UserFramesPerSecond and UserFrameBurst size the bucket all the
	// connections of one user (on this node) share; zero means
	// userBudgetFactor times the connection's.
	UserFramesPerSecond float64
	UserFrameBurst      int
	// QueueSize is how many frames may wait for one slow connection
	// before it is closed with 4008 (default 256).
	QueueSize int
	// MaxJoined is how many conversations one connection may join at once
	// (default 500).
	MaxJoined int
	// MaxConnsPerIP and MaxConnsPerUser bound open sockets per client
	// address and per user (defaults 1000 and 50); past them a new socket
	// is closed with 4029.
	MaxConnsPerIP   int
	MaxConnsPerUser int
	// ClientIP returns a request's client address (TRUST_PROXY aware);
	// nil means the connection's remote address.
	ClientIP func(*http.Request) string
	Now      func() time.Time
}

// Handler serves the WebSocket endpoints.
type Handler struct {
	opt      Options
	upgrader websocket.Upgrader
	nextID   atomic.Uint64
	// unavailable throttles the log lines of an outage (logInternal).
	unavailable chat.Throttle
	// ctx is every socket's parent; Shutdown cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	conns   map[*conn]struct{}
	perIP   map[string]int
	perUser map[int64]int
	// budgets are the users' frame buckets, shared by their connections.
	// A bucket outlives its user's last connection until it is full
	// again (sweepBudgets), so that reconnecting does not refill it.
	budgets map[int64]*rate.Limiter
	closing bool
	wg      sync.WaitGroup

	stopPings chan struct{}
	pingsDone chan struct{}

	// presence serializes each user's online/offline transitions, so that
	// a quick reconnect never publishes "online" before "offline".
	presence [64]sync.Mutex
}

// New returns a Handler.
func New(opt Options) *Handler {
	if opt.Context == nil {
		opt.Context = context.Background()
	}
	if opt.FrameTimeout <= 0 {
		opt.FrameTimeout = defaultFrameTimeout
	}
	if opt.PingInterval <= 0 {
		opt.PingInterval = 25 * time.Second
	}
	if opt.PongTimeout <= 0 {
		opt.PongTimeout = 60 * time.Second
	}
	if opt.MaxFrameBytes <= 0 {
		opt.MaxFrameBytes = 64 << 10
	}
	if opt.FramesPerSecond <= 0 {
		opt.FramesPerSecond = 20
	}
	if opt.FrameBurst <= 0 {
		opt.FrameBurst = 60
	}
	if opt.UserFramesPerSecond <= 0 {
		opt.UserFramesPerSecond = userBudgetFactor * opt.FramesPerSecond
	}
	if opt.UserFrameBurst <= 0 {
		opt.UserFrameBurst = userBudgetFactor * opt.FrameBurst
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = 256
	}
	if opt.MaxJoined <= 0 {
		opt.MaxJoined = 500
	}
	if opt.MaxConnsPerIP <= 0 {
		opt.MaxConnsPerIP = 1000
	}
	if opt.MaxConnsPerUser <= 0 {
		opt.MaxConnsPerUser = 50
	}
	if opt.ClientIP == nil {
		opt.ClientIP = func(r *http.Request) string {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				return r.RemoteAddr
			}
			return host
		}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Metrics == nil {
		opt.Metrics = nopMetrics{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opt: opt, conns: map[*conn]struct{}{}, perIP: map[string]int{}, perUser: map[int64]int{},
		budgets:   map[int64]*rate.Limiter{},
		stopPings: make(chan struct{}), pingsDone: make(chan struct{})}
	h.ctx, h.cancel = context.WithCancel(opt.Context)
	go h.pinger()
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Client frames are small; a larger one is read in several
		// calls. Every idle socket keeps this buffer.
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		// The origin was checked before Upgrade, with a JSON answer.
		CheckOrigin: func(*http.Request) bool { return true },
		// A request that is not a WebSocket handshake gets the same
		// JSON error body as every other refusal.
		Error: func(w http.ResponseWriter, _ *http.Request, status int, _ error) {
			writeJSONError(w, status, "bad_request", "Expected a WebSocket handshake.")
		},
	}
	return h
}

// ServeChat serves /ws/chat/.
func (h *Handler) ServeChat(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "") }

// ServeConversation serves /ws/conversations/<id>/: the connection starts
// joined to that conversation.
func (h *Handler) ServeConversation(w http.ResponseWriter, r *http.Request, id string) {
	if id == "" {
		id = "0"
	}
	h.serve(w, r, id)
}

// originAllowed is Channels' AllowedHostsOriginValidator: no Origin (native
// apps, scripts) is allowed; a browser's must be this host or listed.
func (h *Handler) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return config.OriginListed(h.opt.AllowedOrigins, origin)
}

func writeJSONError(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"detail": detail, "code": code})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, convPath string) {
	if !h.originAllowed(r) {
		writeJSONError(w, http.StatusForbidden, "forbidden", "Origin not allowed.")
		return
	}
	h.mu.Lock()
	closing := h.closing
	if !closing {
		h.wg.Add(1)
	}
	h.mu.Unlock()
	if closing {
		writeJSONError(w, http.StatusServiceUnavailable, "unavailable", "The server is shutting down.")
		return
	}
	defer h.wg.Done()

	// Authenticate before the upgrade, but answer after it: browsers can
	// read a close code, not a refused handshake's status.
	user, sess, expires, authErr := h.authenticate(r)

	// Echo's RequestID middleware sets the id on the response.
	requestID := w.Header().Get("X-Request-Id")
	if requestID == "" {
		requestID = r.Header.Get("X-Request-Id")
	}
	hw := &hijacker{ResponseWriter: w}
	ws, err := h.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	if authErr != nil {
		if serversFault(chatError(authErr)) {
			h.logInternal("authenticate", authErr, 0, 0, requestID)
		}
		code, reason := refusal(authErr)
		closeNow(ws, hw.conn, code, reason)
		return
	}
	var convID int64
	if convPath != "" {
		convID, err = strconv.ParseInt(convPath, 10, 64)
		if err == nil && convID > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), h.opt.FrameTimeout)
			err = h.opt.Chat.CheckMember(ctx, convID, user.ID)
			cancel()
			if err != nil && serversFault(chatError(err)) {
				h.logInternal("join", err, 0, user.ID, requestID)
			}
		}
		if err != nil && chatError(err).code == codeUnavailable {
			closeNow(ws, hw.conn, CloseTryAgainLater, "try again later")
			return
		}
		if err != nil || convID <= 0 {
			closeNow(ws, hw.conn, CloseNotFound, "conversation not found")
			return
		}
	}
	ip := h.opt.ClientIP(r)
	h.mu.Lock()
	switch {
	case h.closing:
		h.mu.Unlock()
		closeNow(ws, hw.conn, CloseGoingAway, "server shutting down")
		return
	case h.perIP[ip] >= h.opt.MaxConnsPerIP:
		h.mu.Unlock()
		h.opt.Metrics.Dropped("rate_limited")
		closeNow(ws, hw.conn, CloseRateLimited, "too many connections from this address")
		return
	case h.perUser[user.ID] >= h.opt.MaxConnsPerUser:
		h.mu.Unlock()
		h.opt.Metrics.Dropped("rate_limited")
		closeNow(ws, hw.conn, CloseRateLimited, "too many connections for this user")
		return
	}
	budget := h.budgets[user.ID]
	if budget == nil {
		budget = rate.NewLimiter(rate.Limit(h.opt.UserFramesPerSecond), h.opt.UserFrameBurst)
		h.budgets[user.ID] = budget
	}
	c := newConn(h, ws, hw.conn, user, sess.SID, expires, requestID, budget)
	h.conns[c] = struct{}{}
	h.perIP[ip]++
	h.perUser[user.ID]++
	h.wg.Add(1) // for the connection's own goroutine, before ours ends
	h.mu.Unlock()
	// The reader gets a fresh goroutine, and the handler's returns: its
	// stack grew deep through net/http, the middleware and the setup's
	// queries, and an idle socket should not keep that much memory for
	// its whole life.
	// Not the request's context: it would keep the request alive, and
	// the socket outlives it. Its operations get theirs from h.ctx.
	start := c.open(convID, sess)
	go func() {
		defer h.wg.Done()
		c.serve(start)
		h.mu.Lock()
		delete(h.conns, c)
		if h.perIP[ip]--; h.perIP[ip] <= 0 {
			delete(h.perIP, ip)
		}
		if h.perUser[user.ID]--; h.perUser[user.ID] <= 0 {
			delete(h.perUser, user.ID)
		}
		h.mu.Unlock()
	}()
}

// refusal is the close code and reason of a socket whose credentials
// were refused with err.
func refusal(err error) (code int, reason string) {
	switch {
	case chatError(err).code == codeUnavailable:
		// The token may be fine: the database did not answer. A client
		// told 4001 would throw its tokens away.
		return CloseTryAgainLater, "try again later"
	case chat.ErrorCode(err) == chat.CodeAccountDisabled:
		return CloseUnauthorized, reasonAccountDisabled
	}
	// Refused all the same: the store failing says no more.
	return CloseUnauthorized, "unauthorized"
}

// authenticate reads ?ticket=, ?token= or the Authorization header. It
// returns the user, the session and the expiry of the token.
func (h *Handler) authenticate(r *http.Request) (chat.User, auth.Session, time.Time, error) {
	q := r.URL.Query()
	// Bounded like a frame's work: a database that does not answer must
	// not hold the handshake open.
	ctx, cancel := context.WithTimeout(r.Context(), h.opt.FrameTimeout)
	defer cancel()
	if t := q.Get("ticket"); t != "" {
		u, tk, err := h.opt.Auth.RedeemTicket(ctx, t)
		return u, tk.Session, tk.AccessExp, err
	}
	token := q.Get("token")
	if token == "" {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			token = strings.TrimSpace(h[7:])
		}
	}
	if token == "" {
		return chat.User{}, auth.Session{}, time.Time{}, auth.ErrTokenNotValid
	}
	u, claims, err := h.opt.Auth.Authenticate(ctx, token)
	if err != nil {
		return chat.User{}, auth.Session{}, time.Time{}, err
	}
	return u, claims.Session, claims.Expiry(), nil
}

// closeNow sends a close frame and drops a connection that never got a
// writer of its own.
func closeNow(ws *websocket.Conn, gc *gorillaConn, code int, reason string) {
	s := socket{nc: gc.Conn, metrics: nopMetrics{}}
	s.close(closePayload(code, reason), time.Second)
	ws.Close()
}

// pingSlots spreads pings over the interval: each tick pings one slot's
// connections, so that 10,000 sockets do not all wake at once.
const pingSlots = 16

// pinger asks every connection to send a ping once per PingInterval. One
// goroutine for all, instead of a ticker per connection.
func (h *Handler) pinger() {
	defer close(h.pingsDone)
	t := time.NewTicker(h.opt.PingInterval / pingSlots)
	defer t.Stop()
	var due []*conn
	for slot := uint64(0); ; slot = (slot + 1) % pingSlots {
		select {
		case <-h.stopPings:
			return
		case <-t.C:
		}
		h.mu.Lock()
		for c := range h.conns {
			if c.id%pingSlots == slot {
				due = append(due, c)
			}
		}
		if slot == 0 {
			h.sweepBudgets()
		}
		h.mu.Unlock()
		for _, c := range due {
			c.push(&hub.Event{Type: ctrlPing}, true)
		}
		clear(due)
		due = due[:0]
	}
}

// userBudgetFactor is how many connections' worth of frames one user may
// send across all of theirs, by default: a phone, a laptop and a browser
// tab each at full rate, but not fifty sockets of one account at fifty
// times the rate.
const userBudgetFactor = 3

// sweepBudgets forgets the buckets of users without a connection once
// they are full again: forgetting them then changes nothing. h.mu is held.
func (h *Handler) sweepBudgets() {
	now := time.Now()
	for id, b := range h.budgets {
		if h.perUser[id] == 0 && b.TokensAt(now) >= float64(b.Burst()) {
			delete(h.budgets, id)
		}
	}
}

// Shutdown closes every connection with 1001 and waits, until ctx is done,
// for their goroutines to end. New connections are refused from then on.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if !h.closing {
		close(h.stopPings)
	}
	h.closing = true
	for c := range h.conns {
		c.kill(CloseGoingAway, "server shutting down")
	}
	h.mu.Unlock()
	h.cancel()
	<-h.pingsDone
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Conns returns the number of open connections.
func (h *Handler) Conns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

func (h *Handler) presenceLock(userID int64) *sync.Mutex {
	return &h.presence[uint64(userID)%uint64(len(h.presence))]
}
