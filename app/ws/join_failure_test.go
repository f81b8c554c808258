package ws_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/app/ws"
)

// faultyChat is the real chat service with failures a test turns on: a
// step of a join (or any service call) fails, or waits, deterministically.
type faultyChat struct {
	ws.Chat
	mu        sync.Mutex
	checkErr  error // CheckMember
	onlineErr error // OnlineUserIDs
	missedErr error // Missed
	// replayLimit, when set, lowers the replay limit the edge asks for,
	// as if the conversation had more missed messages than it replays.
	replayLimit int
	// beforeMissed runs in the join, after subscribing and before the
	// replay is read.
	beforeMissed func()
	// sendWait makes Send wait for its context to end, and
	// reports that it started.
	sendWait chan struct{}
	// offlineCtx records the context of the last "offline" presence.
	offlineCtx context.Context
}

var errDown = errors.New("database is down")

func (f *faultyChat) CheckMember(ctx context.Context, convID, userID int64) error {
	f.mu.Lock()
	err := f.checkErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.Chat.CheckMember(ctx, convID, userID)
}

func (f *faultyChat) OnlineUserIDs(ctx context.Context, convID int64) ([]int64, error) {
	f.mu.Lock()
	err := f.onlineErr
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.Chat.OnlineUserIDs(ctx, convID)
}

func (f *faultyChat) Missed(ctx context.Context, viewer, convID, afterID int64, limit int) (chat.Page, error) {
	f.mu.Lock()
	err, before := f.missedErr, f.beforeMissed
	if f.replayLimit > 0 {
		limit = f.replayLimit
	}
	f.mu.Unlock()
	if before != nil {
		before()
	}
	if err != nil {
		return chat.Page{}, err
	}
	return f.Chat.Missed(ctx, viewer, convID, afterID, limit)
}

func (f *faultyChat) Send(ctx context.Context, sender chat.UserLite, convID int64, content, clientID string, replyToID int64, attachmentIDs ...int64) (chat.Sent, error) {
	if f.sendWait != nil {
		close(f.sendWait)
		<-ctx.Done()
		return chat.Sent{}, ctx.Err()
	}
	return f.Chat.Send(ctx, sender, convID, content, clientID, replyToID, attachmentIDs...)
}

func (f *faultyChat) Presence(ctx context.Context, userID int64, status string) error {
	if status == "offline" {
		f.mu.Lock()
		f.offlineCtx = ctx
		f.mu.Unlock()
	}
	return f.Chat.Presence(ctx, userID, status)
}

func (f *faultyChat) set(fn func(*faultyChat)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

// edge is a WebSocket handler of its own on a test server's chat service
// and hub, with faultyChat in between. Its upgrades carry an
// X-Request-Id, as Echo's RequestID middleware sets it.
type edge struct {
	*ws.Handler
	url  string
	chat *faultyChat
	logs *servertest.LogBuffer
}

func startEdge(t *testing.T, s *servertest.Server, opt func(*ws.Options)) *edge {
	t.Helper()
	e := &edge{chat: &faultyChat{Chat: s.Chat}, logs: &servertest.LogBuffer{}}
	o := ws.Options{
		Auth: s.Auth, Chat: e.chat, Hub: s.Hub,
		Log:             slog.New(slog.NewTextHandler(e.logs, nil)),
		FramesPerSecond: 1 << 20, FrameBurst: 1 << 20,
	}
	if opt != nil {
		opt(&o)
	}
	e.Handler = ws.New(o)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-"+strconv.FormatInt(n.Add(1), 10))
		if id, ok := strings.CutPrefix(r.URL.Path, "/ws/conversations/"); ok {
			e.ServeConversation(w, r, strings.TrimSuffix(id, "/"))
			return
		}
		e.ServeChat(w, r)
	}))
	e.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/chat/"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
		srv.Close()
	})
	return e
}

func (e *edge) dial(t *testing.T, token string) *client {
	t.Helper()
	conn, resp, err := dialRaw(t, e.url+"?token="+token, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	c := wrap(t, conn)
	c.next("connection_established")
	return c
}

// sendDirect sends a message through the service itself: it runs inside
// a join, in the edge's reader goroutine, where a test may not stop.
func sendDirect(t *testing.T, s *servertest.Server, from servertest.User, convID int64, content string) int64 {
	m, _, err := s.Chat.SendMessage(context.Background(), chat.UserLite{ID: from.ID, Username: from.Username}, convID, content, "")
	if err != nil {
		t.Errorf("send %q: %v", content, err)
	}
	return m.ID
}

// healthy checks the socket still answers, and that no frame of type
// unwanted came before the answer.
func healthy(t *testing.T, c *client, unwanted string) {
	t.Helper()
	c.send(map[string]any{"type": "ping", "request_id": "health"})
	for {
		f := c.nextAny()
		switch {
		case f.typ() == unwanted:
			t.Fatalf("unexpected %q frame: %v", unwanted, f)
		case f.typ() == "pong" && f["request_id"] == "health":
			return
		}
	}
}

// TestJoin_FailureAtEachStep fails each step of a join in turn: the frame
// gets an error, the conversation is not joined (no live event arrives),
// the socket stays healthy, and a later join works, live at once.
func TestJoin_FailureAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		name     string
		recover  bool
		fail     func(*faultyChat)
		wantCode string
		logged   bool // an internal error, logged with the ids
	}{
		{"membership check", false, func(f *faultyChat) { f.checkErr = errDown }, "internal", true},
		{"membership refused", true, func(f *faultyChat) { f.checkErr = chat.ErrNotFound }, "not_found", false},
		{"online lookup", false, func(f *faultyChat) { f.onlineErr = errDown }, "internal", true},
		{"online lookup while recovering", true, func(f *faultyChat) { f.onlineErr = errDown }, "internal", true},
		{"replay read", true, func(f *faultyChat) { f.missedErr = errDown }, "internal", true},
		{"replay read unavailable", true, func(f *faultyChat) {
			f.missedErr = &chat.Error{Code: chat.CodeUnavailable, Detail: "The database is not answering."}
		}, "unavailable", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := servertest.Start(t)
			alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
			conv := s.Conversation(t, alice, bob)
			first := s.Send(t, alice, conv, "before")
			e := startEdge(t, s, nil)
			c := e.dial(t, bob.Access)

			e.chat.set(tc.fail)
			join := map[string]any{"type": "join_conversation", "conversation_id": conv, "request_id": "j1"}
			if tc.recover {
				join["last_message_id"] = first - 1
			}
			c.send(join)
			f := c.nextAny()
			if f.typ() != "error" || f["code"] != tc.wantCode || f["request_id"] != "j1" {
				t.Fatalf("frame = %v, want an error %q for j1", f, tc.wantCode)
			}
			s.Send(t, alice, conv, "while not joined")
			healthy(t, c, "new_message")
			logs := e.logs.String()
			if got := strings.Contains(logs, "ws internal error"); got != tc.logged {
				t.Fatalf("internal error logged = %v, want %v:\n%s", got, tc.logged, logs)
			}
			if tc.logged && (strings.Count(logs, "ws internal error") != 1 || !strings.Contains(logs, "conn_id=") ||
				!strings.Contains(logs, "request_id=req-1") || !strings.Contains(logs, "op=join")) {
				t.Fatalf("want one internal error line with op, conn_id and request_id:\n%s", logs)
			}

			// Before, a failed recovering join stayed recovering, and
			// held live events until the socket was closed with 4008.
			e.chat.set(func(f *faultyChat) { f.checkErr, f.onlineErr, f.missedErr = nil, nil, nil })
			c.join(conv)
			live := s.Send(t, alice, conv, "live")
			if m := c.next("new_message"); m.obj("message").int("id") != live {
				t.Fatalf("live message = %v, want %d", m, live)
			}
		})
	}
}

// TestJoin_TooManyJoinedIsRefusedBeforeSubscribing: the limit refuses a
// join before it subscribes.
func TestJoin_TooManyJoinedIsRefusedBeforeSubscribing(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv1, conv2 := s.Conversation(t, alice, bob), s.Conversation(t, alice, bob, s.Register(t, "carol"))
	e := startEdge(t, s, func(o *ws.Options) { o.MaxJoined = 1 })
	c := e.dial(t, bob.Access)
	c.join(conv1)
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv2, "last_message_id": 0})
	if f := c.nextAny(); f.typ() != "error" || f["code"] != "invalid" {
		t.Fatalf("frame = %v, want error invalid", f)
	}
	s.Send(t, alice, conv2, "not joined")
	healthy(t, c, "new_message")
}

// TestJoin_RecoveryPaths: the paths of a join with last_message_id that
// end with a joined reply (or a 4008).
func TestJoin_RecoveryPaths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		missed int // messages after last_message_id before the join
		fault  func(f *faultyChat, during func())
		// want: the replayed count (past the last missed, one sent
		// during the replay), and the joined reply.
		replayed      int
		wantRecovered bool
	}{
		{"missed messages, one sent during the replay, then live", 3, func(f *faultyChat, during func()) {
			// Committed after subscribing, before the read: the replay
			// has it, and the live copy held meanwhile is skipped.
			f.beforeMissed = during
		}, 4, true},
		{"nothing missed", 0, nil, 0, true},
		{"over the replay limit", 3, func(f *faultyChat, _ func()) { f.replayLimit = 2 }, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := servertest.Start(t)
			alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
			conv := s.Conversation(t, alice, bob)
			last := s.Send(t, alice, conv, "seen")
			for i := range tc.missed {
				s.Send(t, alice, conv, "missed "+strconv.Itoa(i))
			}
			e := startEdge(t, s, nil)
			if tc.fault != nil {
				e.chat.set(func(f *faultyChat) {
					tc.fault(f, func() { sendDirect(t, s, alice, conv, "during the replay") })
				})
			}
			c := e.dial(t, bob.Access)
			c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": last})
			for i := range tc.replayed {
				if f := c.nextAny(); f.typ() != "new_message" || f.obj("message").int("id") != last+1+int64(i) {
					t.Fatalf("frame = %v, want replayed message %d", f, last+1+int64(i))
				}
			}
			if f := c.nextAny(); f.typ() != "joined" || f["recovered"] != tc.wantRecovered || f.int("missed") != int64(tc.replayed) {
				t.Fatalf("frame = %v, want joined recovered:%v missed:%d", f, tc.wantRecovered, tc.replayed)
			}
			live := s.Send(t, alice, conv, "live")
			if g := c.nextAny(); g.typ() != "new_message" || g.obj("message").int("id") != live {
				t.Fatalf("frame = %v, want live message %d, and no repeat", g, live)
			}
		})
	}
}

// TestJoin_RecoveryCutShort: the conversation is left during the join, or
// more is held than the queue may take.
func TestJoin_RecoveryCutShort(t *testing.T) {
	t.Run("left meanwhile", func(t *testing.T) {
		s := servertest.Start(t)
		owner, bob, third := s.Register(t, "owner"), s.Register(t, "bob"), s.Register(t, "third")
		group := s.Conversation(t, owner, bob, third)
		last := s.Send(t, owner, group, "seen")
		e := startEdge(t, s, nil)
		e.chat.set(func(f *faultyChat) {
			f.beforeMissed = func() {
				if err := s.Chat.RemoveParticipant(context.Background(), owner.ID, group, bob.ID); err != nil {
					t.Errorf("remove: %v", err)
				}
			}
		})
		c := e.dial(t, bob.Access)
		c.send(map[string]any{"type": "join_conversation", "conversation_id": group, "last_message_id": last})
		s.Send(t, owner, group, "after bob left")
		healthy(t, c, "joined")
		healthy(t, c, "new_message")
	})

	t.Run("queue overflow while recovering", func(t *testing.T) {
		s := servertest.Start(t)
		alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
		conv := s.Conversation(t, alice, bob)
		last := s.Send(t, alice, conv, "seen")
		e := startEdge(t, s, func(o *ws.Options) { o.QueueSize = 4 })
		e.chat.set(func(f *faultyChat) {
			f.beforeMissed = func() {
				for i := range 5 { // one more than may be held
					sendDirect(t, s, alice, conv, "during "+strconv.Itoa(i))
				}
			}
		})
		c := e.dial(t, bob.Access)
		c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": last})
		if code, _ := c.closeCode(); code != ws.CloseTooSlow {
			t.Fatalf("close code = %d, want 4008", code)
		}
	})
}
