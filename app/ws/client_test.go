package ws_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/server/servertest"
)

// client is a real WebSocket client for tests. A background goroutine
// reads every frame into a channel, so a test can wait for the one it
// expects while the others pile up in order.
type client struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan frame
	mu     sync.Mutex
	closed *websocket.CloseError
	done   chan struct{}
	ref    *atomic.Pointer[websocket.Conn]
}

type frame map[string]any

func (f frame) typ() string { s, _ := f["type"].(string); return s }

func (f frame) int(key string) int64 {
	n, _ := f[key].(float64)
	return int64(n)
}

func (f frame) obj(key string) frame {
	m, _ := f[key].(map[string]any)
	return m
}

const waitFor = 5 * time.Second

// dialRaw opens a socket and returns it with the handshake response.
func dialRaw(t testing.TB, url string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitFor}
	return d.Dial(url, header)
}

// dial connects as token to path and waits for connection_established.
func dial(t testing.TB, s *servertest.Server, path, token string) *client {
	t.Helper()
	c := dialNoWait(t, s, path, token)
	c.next("connection_established")
	return c
}

func dialNoWait(t testing.TB, s *servertest.Server, path, token string) *client {
	t.Helper()
	url := s.WSURL(path)
	if token != "" {
		url += "?token=" + token
	}
	conn, resp, err := dialRaw(t, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", path, err, resp)
	}
	return wrap(t, conn)
}

func wrap(t testing.TB, conn *websocket.Conn) *client {
	c := &client{t: t, conn: conn, frames: make(chan frame, 10000), done: make(chan struct{})}
	go c.readLoop()
	// The cleanup holds the connection only until close, so that a test
	// of the server's memory does not count its own clients.
	ref := &atomic.Pointer[websocket.Conn]{}
	ref.Store(conn)
	c.ref = ref
	t.Cleanup(func() {
		if conn := ref.Load(); conn != nil {
			conn.Close()
		}
	})
	return c
}

func (c *client) readLoop() {
	defer close(c.done)
	defer close(c.frames)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.mu.Lock()
				c.closed = ce
				c.mu.Unlock()
			}
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Errorf("server sent a frame that is not a JSON object: %q", data)
			continue
		}
		c.frames <- f
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next frame of type typ, failing on timeout. Frames of
// other types before it are discarded; use nextAny to see every frame.
func (c *client) next(typ string) frame {
	c.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("connection closed (%v) while waiting for %q", c.closeErr(), typ)
			}
			if f.typ() == typ {
				return f
			}
		case <-deadline:
			c.t.Fatalf("no %q frame within %v", typ, waitFor)
		}
	}
}

// nextAny returns the next frame whatever its type.
func (c *client) nextAny() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection closed (%v) while waiting for a frame", c.closeErr())
		}
		return f
	case <-time.After(waitFor):
		c.t.Fatalf("no frame within %v", waitFor)
	}
	return nil
}

// nextAnyOrClose returns the next frame, or nil once the socket closed.
func (c *client) nextAnyOrClose() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			return nil
		}
		return f
	case <-time.After(waitFor):
		c.t.Fatalf("no frame within %v", waitFor)
	}
	return nil
}

// none asserts that no frame of type typ arrives within d.
func (c *client) none(typ string, d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return
			}
			if f.typ() == typ {
				c.t.Fatalf("unexpected %q frame: %v", typ, f)
			}
		case <-deadline:
			return
		}
	}
}

// closeCode waits for the server to close the socket and returns the
// close code (0 when the connection dropped without a close frame).
func (c *client) closeCode() (int, string) {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.frames:
			if ok {
				continue
			}
			ce := c.closeErr()
			if ce == nil {
				return 0, ""
			}
			return ce.Code, ce.Text
		case <-time.After(waitFor):
			c.t.Fatalf("server did not close the socket within %v", waitFor)
		}
	}
}

func (c *client) closeErr() *websocket.CloseError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *client) close() {
	c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.conn.Close()
	<-c.done
	c.ref.Store(nil)
}

func (c *client) join(convID int64) frame {
	c.t.Helper()
	c.send(map[string]any{"type": "join_conversation", "conversation_id": convID})
	return c.next("joined")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
