package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

// withSlowClientTimeouts makes HTTP_READ_HEADER_TIMEOUT and
// HTTP_READ_TIMEOUT short enough to test.
func withSlowClientTimeouts() servertest.Option {
	return servertest.WithConfig(func(c *config.Config) {
		c.ReadHeaderTimeout, c.ReadTimeout = 300*time.Millisecond, time.Second
	})
}

// drip writes b a byte at a time, every, until it is written or the
// connection fails, and reports on done whether it wrote all of b.
func drip(conn net.Conn, b []byte, every time.Duration, done chan<- bool) {
	for i := range b {
		if _, err := conn.Write(b[i : i+1]); err != nil {
			done <- false
			return
		}
		time.Sleep(every)
	}
	done <- true
}

// A client that sends its headers too slowly is cut off after
// HTTP_READ_HEADER_TIMEOUT, unanswered, while others are served.
func TestSlowHeaders_AreCutOff(t *testing.T) {
	s := servertest.Start(t, withSlowClientTimeouts())
	conn, err := net.Dial("tcp", s.HTTP.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	// 2.5 s of headers at this pace.
	dripped := make(chan bool, 1)
	go drip(conn, []byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("a", 40)+"\r\n\r\n"), 40*time.Millisecond, dripped)

	wantStatus(t, s.Do(t, http.MethodGet, "/healthz", "", nil), http.StatusOK) // meanwhile
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, _ := io.ReadAll(conn) // until the server closes
	took := time.Since(start)
	if timingTests() && (took < 250*time.Millisecond || took > 1500*time.Millisecond) {
		t.Errorf("the connection was closed after %v, want about the 300 ms header timeout", took)
	}
	if bytes.Contains(answer, []byte(" 200 ")) {
		t.Errorf("a request whose headers never finished was answered: %q", answer)
	}
	// Whatever the machine's pace, the server cut the client off before
	// its headers were all sent.
	if <-dripped {
		t.Errorf("the slow client sent all its headers (in %v) before the server closed the connection", took)
	}
}

// A client that sends its body too slowly is cut off after
// HTTP_READ_TIMEOUT with a 408, nothing is stored, and no server error
// is logged: it is the client's fault.
func TestSlowBody_IsCutOffWith408(t *testing.T) {
	s := servertest.Start(t, withSlowClientTimeouts())
	a, b := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, a, b)
	conn, err := net.Dial("tcp", s.HTTP.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"content":"this body arrives one byte at a time"}`
	fmt.Fprintf(conn, "POST /api/conversations/%d/messages/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", conv, a.Access, len(body))
	start := time.Now()
	go drip(conn, []byte(body), 100*time.Millisecond, make(chan bool, 1)) // 5 s at this pace

	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	wantError(t, servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: got}, http.StatusRequestTimeout, "request_timeout")
	// The 408 itself says the server stopped waiting for the body; how
	// soon is a wall-clock measure.
	if timingTests() && (took < 900*time.Millisecond || took > 2500*time.Millisecond) {
		t.Errorf("answered after %v, want about the 1 s read timeout", took)
	}
	if r := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), a.Access, nil); len(r.Map(t)["results"].([]any)) != 0 {
		t.Errorf("a message was stored from a body that never arrived: %s", r.Body)
	}
	if logs := s.Logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("a slow client was logged as a server error:\n%s", logs)
	}
}

// The HTTP read timeouts bound a request, not a socket: an upgraded
// connection lives past them.
func TestSlowClientTimeouts_DoNotCloseSockets(t *testing.T) {
	s := servertest.Start(t, withSlowClientTimeouts())
	u := s.Register(t, "alice")
	ws, _, err := websocket.DefaultDialer.Dial(s.WSURL("/ws/chat/?token="+u.Access), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var f map[string]any
	if err := ws.ReadJSON(&f); err != nil || f["type"] != "connection_established" {
		t.Fatalf("greeting %v, %v", f, err)
	}
	time.Sleep(1500 * time.Millisecond) // past both timeouts
	if err := ws.WriteJSON(map[string]string{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	if err := ws.ReadJSON(&f); err != nil || f["type"] != "pong" {
		t.Fatalf("after the HTTP timeouts: %v, %v; want pong", f, err)
	}
}
