package ws_test

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/confab/confab/app/server/servertest"
)

// After many clients connect, chat and leave, the server's goroutines and
// heap are back where they started.
func TestClientsLeaveNoTrace(t *testing.T) {
	longTest(t)
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)

	settle := func() (int, uint64) {
		http.DefaultClient.CloseIdleConnections()
		var m runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&m)
		return runtime.NumGoroutine(), m.HeapAlloc
	}
	// Warm up: pools, the first connection's lazily made parts, and what
	// a message sets going after its commit (the search indexer, the
	// push dispatcher, and the connections of the pool they read from).
	w := dial(t, s, "/ws/chat/", alice.Access)
	w.join(conv)
	w.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "warm up"})
	w.next("new_message")
	w.close()
	time.Sleep(600 * time.Millisecond)
	g0, h0 := settle()

	const n = 300
	for round := range 3 {
		clients := make([]*client, 0, n)
		for i := range n {
			u := alice
			if i%2 == 1 {
				u = bob
			}
			c := dial(t, s, "/ws/chat/", u.Access)
			c.join(conv)
			clients = append(clients, c)
		}
		clients[0].send(map[string]any{"type": "new_message", "conversation_id": conv, "content": fmt.Sprint("round ", round)})
		clients[1].send(map[string]any{"type": "typing", "conversation_id": conv})
		for _, c := range clients {
			c.next("new_message")
		}
		for _, c := range clients {
			c.close()
		}
	}

	deadline := time.Now().Add(5 * time.Second)
	g1, h1 := settle()
	for g1 > g0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		g1, h1 = settle()
	}
	if g1 > g0 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after clients left, %d before:\n%s", g1, g0, buf[:runtime.Stack(buf, true)])
	}
	// The heap may keep a little (pools, maps that do not shrink), never
	// anything proportional to the 900 connections that came and went.
	if h1 > h0+2<<20 {
		t.Fatalf("heap grew from %d to %d bytes after clients left", h0, h1)
	}
	if n := s.WS.Conns(); n != 0 {
		t.Fatalf("server still tracks %d connections", n)
	}
}
