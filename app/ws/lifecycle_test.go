package ws_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/app/ws"
)

// TestFrameTimeout_BoundsAServiceCall: a frame whose service call does not
// answer gets an unavailable error within FrameTimeout (a database that
// stops answering looks like this), logged once, and the socket goes on.
func TestFrameTimeout_BoundsAServiceCall(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	e := startEdge(t, s, func(o *ws.Options) { o.FrameTimeout = 50 * time.Millisecond })
	e.chat.sendWait = make(chan struct{})
	c := e.dial(t, alice.Access)
	c.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "hi", "request_id": "m1"})
	if f := c.nextAny(); f.typ() != "error" || f["code"] != "unavailable" || f["request_id"] != "m1" {
		t.Fatalf("frame = %v, want error unavailable for m1", f)
	}
	healthy(t, c, "message_ack")
	logs := e.logs.String()
	if strings.Count(logs, "ws internal error") != 1 || !strings.Contains(logs, "op=new_message") ||
		!strings.Contains(logs, "deadline exceeded") || !strings.Contains(logs, "request_id=req-1") {
		t.Fatalf("want one internal error with the deadline and the ids:\n%s", logs)
	}
}

// TestShutdown_CancelsFramesAndStillPublishesOffline: Shutdown cancels a
// frame's service call at once, and the user's "offline" is still
// published, on a context that is not cancelled but has a deadline.
func TestShutdown_CancelsFramesAndStillPublishesOffline(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	e := startEdge(t, s, func(o *ws.Options) { o.FrameTimeout = time.Hour })
	started := make(chan struct{})
	e.chat.sendWait = started
	c := e.dial(t, alice.Access)
	c.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "hi"})
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (the frame's call was not cancelled)", err)
	}
	if code, _ := c.closeCode(); code != ws.CloseGoingAway {
		t.Fatalf("close code = %d, want 1001", code)
	}
	e.chat.mu.Lock()
	offline := e.chat.offlineCtx
	e.chat.mu.Unlock()
	if offline == nil {
		t.Fatal("no offline presence after the socket closed")
	}
	if _, ok := offline.Deadline(); !ok {
		t.Fatal("the offline presence ran without a deadline")
	}
	if strings.Contains(e.logs.String(), "ws internal error") {
		t.Fatalf("a cancelled call was logged as an internal error:\n%s", e.logs.String())
	}
}

// TestOptionsContext_CancelsSockets: cancelling the context given at
// construction cancels what the sockets are doing.
func TestOptionsContext_CancelsSockets(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	base, stop := context.WithCancel(context.Background())
	e := startEdge(t, s, func(o *ws.Options) { o.Context, o.FrameTimeout = base, time.Hour })
	started := make(chan struct{})
	e.chat.sendWait = started
	c := e.dial(t, alice.Access)
	c.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "hi", "request_id": "m1"})
	<-started
	stop()
	if f := c.nextAny(); f.typ() != "error" || f["request_id"] != "m1" {
		t.Fatalf("frame = %v, want the error of the cancelled frame", f)
	}
}

// TestUpgrade_InternalErrorIsLogged: a store failing during the upgrade
// closes the socket as before (4004 for the URL form's join), and the
// failure is logged with the upgrade's request id.
func TestUpgrade_InternalErrorIsLogged(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	e := startEdge(t, s, nil)
	e.chat.set(func(f *faultyChat) { f.checkErr = errDown })
	conn, resp, err := dialRaw(t, strings.TrimSuffix(e.url, "/ws/chat/")+"/ws/conversations/"+itoa(conv)+"/?token="+alice.Access, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	if code, _ := wrap(t, conn).closeCode(); code != ws.CloseNotFound {
		t.Fatalf("close code = %d, want 4004", code)
	}
	logs := e.logs.String()
	if strings.Count(logs, "ws internal error") != 1 || !strings.Contains(logs, "request_id=req-1") ||
		!strings.Contains(logs, errDown.Error()) {
		t.Fatalf("want one internal error with the request id:\n%s", logs)
	}
}

// TestClientPing_AnsweredByTheWriter: the pong to a client's ping comes
// through the connection's writer, with the ping's payload, and a flood
// of pings leaves the socket working.
func TestClientPing_AnsweredByTheWriter(t *testing.T) {
	s := servertest.Start(t)
	alice := s.Register(t, "alice")
	conn, resp, err := dialRaw(t, s.WSURL("/ws/chat/?token="+alice.Access), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	pongs := make(chan string, 2000)
	conn.SetPongHandler(func(data string) error {
		select {
		case pongs <- data:
		default:
		}
		return nil
	})
	c := wrap(t, conn)
	c.next("connection_established")
	for i := range 1000 {
		if err := conn.WriteControl(websocket.PingMessage, []byte(strconv.Itoa(i)), time.Now().Add(waitFor)); err != nil {
			t.Fatal(err)
		}
	}
	c.send(map[string]any{"type": "ping", "request_id": "after"})
	if f := c.next("pong"); f["request_id"] != "after" {
		t.Fatalf("pong = %v", f)
	}
	// Pongs are in order; some may have been shed, never the first.
	if first := <-pongs; first != "0" {
		t.Fatalf("first pong %q, want the first ping's payload", first)
	}
	last := 0
	for len(pongs) > 0 {
		n, err := strconv.Atoi(<-pongs)
		if err != nil || n <= last {
			t.Fatalf("pong %d after %d (%v)", n, last, err)
		}
		last = n
	}
}
