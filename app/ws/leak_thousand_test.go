package ws_test

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

// After 1,000 clients connect, chat and leave, the server holds nothing of
// them: no goroutine, no connection, no subscription, nobody online, and
// a heap back at its baseline. The clients come the two ways a socket
// opens (/ws/chat/ then a join that recovers, and /ws/conversations/ID/),
// send messages, typing and read receipts, and leave the two ways a
// socket ends: with a close frame, and by dropping the TCP connection.
func TestThousandClientsChatAndLeaveNoTrace(t *testing.T) {
	longTest(t)
	const (
		rounds   = 8
		warm     = 2 // rounds that grow the pools to a crowd's size
		perRound = 250
		senders  = 10 // per round, one message each
	)
	s := servertest.Start(t)
	users := make([]servertest.User, 10)
	for i := range users {
		users[i] = s.Register(t, fmt.Sprint("user", i))
	}
	conv := s.Conversation(t, users[0], users[1:]...)
	last := s.Send(t, users[0], conv, "before the crowd")

	// The test's own leftovers do not count: the server's log lines
	// (kept in memory by servertest) and the clients' cleanups, which
	// each round's subtest releases.
	settle := func() (int, uint64) {
		s.Logs.Reset()
		http.DefaultClient.CloseIdleConnections()
		var m runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&m)
		return runtime.NumGoroutine(), m.HeapAlloc
	}
	// Warm up the lazily made parts (pools, prepared statements, the
	// first recovery) before the baseline.
	for _, path := range []string{"/ws/chat/", "/ws/conversations/" + itoa(conv) + "/"} {
		c := dial(t, s, path, users[1].Access)
		c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": 0})
		c.next("joined")
		c.close()
	}
	time.Sleep(100 * time.Millisecond)
	g0, h0 := settle()

	var hWarm uint64
	for round := range rounds {
		if round == warm {
			// The connection pools (database, Redis) and the hub's maps
			// grow to what a crowd needs in the first rounds and keep that
			// size, however many rounds follow; the heap baseline is taken
			// after them.
			time.Sleep(100 * time.Millisecond)
			_, hWarm = settle()
		}
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			clients := make([]*client, 0, perRound)
			for i := range perRound {
				u := users[i%len(users)]
				var c *client
				if i%2 == 0 {
					c = dial(t, s, "/ws/chat/", u.Access)
					c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": last})
				} else {
					c = dial(t, s, "/ws/conversations/"+itoa(conv)+"/", u.Access)
				}
				c.next("joined")
				clients = append(clients, c)
			}
			for i := range senders {
				c := clients[i]
				c.send(map[string]any{"type": "typing", "conversation_id": conv})
				c.send(map[string]any{"type": "new_message", "conversation_id": conv,
					"content": fmt.Sprintf("round %d message %d", round, i), "client_id": fmt.Sprintf("r%d-%d", round, i)})
			}
			// Every joined socket gets every message, its own included; a
			// sender's also gets its ack.
			for i, c := range clients {
				sent := i < senders
				news, acks := 0, 0
				for news < senders || (sent && acks == 0) {
					switch f := c.nextAny(); f.typ() {
					case "new_message":
						news++
					case "message_ack":
						acks++
						last = max(last, f.obj("message").int("id"))
						c.send(map[string]any{"type": "read_receipt", "conversation_id": conv, "message_id": f.obj("message").int("id")})
					}
				}
				if news != senders || (sent && acks != 1) || (!sent && acks != 0) {
					t.Fatalf("client %d: %d acks and %d messages, sent %v", i, acks, news, sent)
				}
			}
			for i, c := range clients {
				if i%2 == 0 {
					c.close()
				} else { // gone without a close frame
					c.conn.Close()
					<-c.done
					c.ref.Store(nil)
				}
			}
		})
		if t.Failed() {
			t.FailNow()
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	g1, h1 := settle()
	for (g1 > g0 || s.WS.Conns() != 0) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		g1, h1 = settle()
	}
	t.Logf("goroutines %d → %d, heap %d → %d (after the warm-up) → %d bytes after %d clients", g0, g1, h0, hWarm, h1, rounds*perRound)
	if n := s.WS.Conns(); n != 0 {
		t.Fatalf("the server still tracks %d connections", n)
	}
	if g1 > g0 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after the clients left, %d before:\n%s", g1, g0, buf[:runtime.Stack(buf, true)])
	}
	if n := s.Hub.Subscribers(hub.ConversationTopic(conv)); n != 0 {
		t.Errorf("the conversation still has %d subscribers", n)
	}
	for _, u := range users {
		if n := s.Hub.Subscribers(hub.UserTopic(u.ID)); n != 0 {
			t.Errorf("user %d's topic still has %d subscribers", u.ID, n)
		}
		if s.Hub.Online(t.Context(), u.ID) {
			t.Errorf("user %d is still online", u.ID)
		}
	}
	// Past the warm-up, the heap is where the warmed pools left it: a
	// leak of 1 KiB per client of the last 1,500 would fail this check.
	if h1 > hWarm+1<<20 {
		t.Fatalf("heap grew from %d (after the first %d clients; %d before them) to %d bytes after %d more clients left",
			hWarm, warm*perRound, h0, h1, (rounds-warm)*perRound)
	}
}
