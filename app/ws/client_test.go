package ws_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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

// postMessage sends a message over REST and returns its id. It reports
// failure as an error, so that goroutines other than the test's own can
// use it (they may not stop the test).
func postMessage(s *servertest.Server, from servertest.User, convID int64, content string) (int64, error) {
	body, err := json.Marshal(map[string]string{"content": content})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/api/conversations/"+itoa(convID)+"/messages/", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+from.Access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var m struct {
		ID int64 `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("send: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return 0, err
	}
	return m.ID, nil
}

// timingTest skips a test that measures wall-clock time unless
// CONFAB_TIMING_TESTS=1 asks for it: on a loaded machine its figures say
// more about the machine than about the server.
func timingTest(t *testing.T) {
	t.Helper()
	if os.Getenv("CONFAB_TIMING_TESTS") != "1" {
		t.Skip("measures wall-clock time; set CONFAB_TIMING_TESTS=1 to run it")
	}
}

// longTest skips a long test under -short.
func longTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("long; skipped with -short")
	}
}
