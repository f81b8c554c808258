package ws_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

// A client flooding typing frames: the others get at most one a second
// from it, and its last state still arrives.
func TestTypingFlood_OthersGetAtMostOnePerSecond(t *testing.T) {
	timingTest(t) // it measures the gaps between frames on arrival
	// No frame limit in the way: the typing gate alone.
	conv, watcher, flooder := typingPair(t, servertest.Start(t))

	// The watcher notes when each typing frame arrives, while the flood
	// goes on.
	type seen struct {
		at       time.Time
		isTyping any
	}
	done := make(chan struct{})
	got := make(chan []seen)
	go func() {
		var all []seen
		for {
			select {
			case f := <-watcher.frames:
				if f.typ() == "typing" {
					all = append(all, seen{time.Now(), f["is_typing"]})
				}
			case <-done:
				got <- all
				return
			}
		}
	}()
	const length = 2500 * time.Millisecond
	start := time.Now()
	sent := 0
	for ; time.Since(start) < length; sent++ {
		frame := fmt.Sprintf(`{"type":"typing","conversation_id":%d,"is_typing":%t}`, conv, sent%2 == 0)
		if err := flooder.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	flooder.send(map[string]any{"type": "typing", "conversation_id": conv, "is_typing": false})
	sent++
	// Once the server has handled every frame (a loaded machine may lag
	// behind the sender), the state held back last is due within a
	// second.
	nextWithin(t, flooder, "pong", 30*time.Second, map[string]any{"type": "ping"})
	took := time.Since(start)
	time.Sleep(1500 * time.Millisecond)
	close(done)
	all := <-got
	var times []time.Time
	var last any
	for _, f := range all {
		times = append(times, f.at)
		last = f.isTyping
	}
	t.Logf("%d typing frames handled in %v, %d forwarded", sent, took, len(times))
	if max := int(took/time.Second) + 2; len(times) > max || len(times) < 2 {
		t.Errorf("%d typing frames forwarded in %v, want 2 to %d", len(times), took, max)
	}
	for i := 1; i < len(times); i++ {
		// The server spaces them by a second; the receiving side may
		// see them closer when one was delayed on its way (a loaded
		// machine), but never back to back.
		if gap := times[i].Sub(times[i-1]); gap < 500*time.Millisecond {
			t.Errorf("typing frames %d and %d arrived %v apart", i-1, i, gap)
		}
	}
	if last != false {
		t.Errorf("the last typing frame forwarded says is_typing=%v, want the final false", last)
	}
}

// A client flooding read receipts: the others get one only when its read
// mark moves forward.
func TestReadReceiptFlood_OnlyWhenTheMarkMoves(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	m1, m2, m3 := s.Send(t, bob, conv, "one"), s.Send(t, bob, conv, "two"), s.Send(t, bob, conv, "three")
	watcher := dial(t, s, "/ws/chat/", bob.Access)
	watcher.join(conv)
	flooder := dial(t, s, "/ws/chat/", alice.Access)

	for _, id := range []int64{m1, m3, m2, m1, m3} {
		frame := fmt.Sprintf(`{"type":"read_receipt","conversation_id":%d,"message_id":%d}`, conv, id)
		for range 40 {
			if err := flooder.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
				t.Fatal(err)
			}
		}
	}
	nextWithin(t, flooder, "pong", 30*time.Second, map[string]any{"type": "ping"}) // every receipt before it is handled

	// Every receipt forwarded was queued for the watcher before its own
	// pong: they are the read_receipt frames ahead of it.
	watcher.send(map[string]any{"type": "ping", "request_id": "after"})
	var got []int64
	for {
		f := watcher.nextAny()
		if f.typ() == "read_receipt" {
			got = append(got, f.int("message_id"))
		}
		if f.typ() == "pong" && f["request_id"] == "after" {
			break
		}
	}
	if !slices.Equal(got, []int64{m1, m3}) {
		t.Errorf("200 receipts forwarded as %v, want exactly the moves to %d and %d", got, m1, m3)
	}
	c := s.Do(t, http.MethodGet, fmt.Sprintf("/api/conversations/%d/", conv), bob.Access, nil).Map(t)
	for _, p := range c["participants"].([]any) {
		pm := p.(map[string]any)
		if int64(pm["user"].(map[string]any)["id"].(float64)) == alice.ID && int64(pm["last_read_message_id"].(float64)) != m3 {
			t.Errorf("alice's read mark is %v, want %d", pm["last_read_message_id"], m3)
		}
	}
}

// MAX_BODY_BYTES bounds both a REST body (413) and a socket frame (1009),
// at the configured size, not only the default.
func TestMaxBodyBytes_BoundsBodiesAndFrames(t *testing.T) {
	const limit = 4096
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.MaxBodyBytes = limit }))
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	// A JSON object of exactly n bytes.
	sized := func(typ string, n int) []byte {
		head := `{"type":"` + typ + `","conversation_id":` + itoa(conv) + `,"content":"`
		return []byte(head + strings.Repeat("x", n-len(head)-2) + `"}`)
	}

	path := fmt.Sprintf("/api/conversations/%d/messages/", conv)
	if r := s.Do(t, http.MethodPost, path, alice.Access, sized("rest", limit+1)); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body of %d bytes: %d, want 413", limit+1, r.Status)
	}
	if r := s.Do(t, http.MethodPost, path, alice.Access, sized("rest", 3000)); r.Status != http.StatusCreated {
		t.Errorf("a body of 3000 bytes: %d %s, want 201", r.Status, r.Body)
	}

	c := dial(t, s, "/ws/chat/", alice.Access)
	if err := c.conn.WriteMessage(websocket.TextMessage, sized("new_message", 3000)); err != nil {
		t.Fatal(err)
	}
	c.next("message_ack")
	if err := c.conn.WriteMessage(websocket.TextMessage, sized("new_message", limit+1)); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.closeCode(); code != 1009 {
		t.Errorf("a frame of %d bytes: close %d, want 1009", limit+1, code)
	}
}

// nextWithin sends f on c and waits up to d for a frame of type typ: for
// the answer to a frame queued behind a flood.
func nextWithin(t *testing.T, c *client, typ string, d time.Duration, f map[string]any) frame {
	t.Helper()
	c.send(f)
	deadline := time.After(d)
	for {
		select {
		case got, ok := <-c.frames:
			if !ok {
				t.Fatalf("connection closed (%v) while waiting for %q", c.closeErr(), typ)
			}
			if got.typ() == typ {
				return got
			}
		case <-deadline:
			t.Fatalf("no %q frame within %v", typ, d)
		}
	}
}

// TestTypingGate_OnePerSecondOnTheServersClock: on a clock that stands
// still, a burst of typing frames forwards the first, holds the rest, and
// forwards the last state held once its second is over; after the clock
// moves a second on, the next is forwarded at once.
func TestTypingGate_OnePerSecondOnTheServersClock(t *testing.T) {
	clock := servertest.NewClock()
	conv, watcher, flooder := typingPair(t, servertest.Start(t, servertest.WithNow(clock.Now)))

	for i := range 20 {
		flooder.send(map[string]any{"type": "typing", "conversation_id": conv, "is_typing": i%2 == 0})
	}
	flooder.send(map[string]any{"type": "typing", "conversation_id": conv, "is_typing": false})
	if f := watcher.next("typing"); f["is_typing"] != true {
		t.Fatalf("first typing = %v, want the first state", f)
	}
	// The held state goes out when the second ends (a real timer).
	if f := watcher.next("typing"); f["is_typing"] != false {
		t.Fatalf("second typing = %v, want the last state held", f)
	}
	clock.Advance(time.Second)
	flooder.send(map[string]any{"type": "typing", "conversation_id": conv, "is_typing": true})
	if f := watcher.next("typing"); f["is_typing"] != true {
		t.Fatalf("third typing = %v, want the new state at once", f)
	}
	// Nothing else was forwarded: the frames ahead of the watcher's pong.
	watcher.send(map[string]any{"type": "ping", "request_id": "end"})
	for {
		f := watcher.nextAny()
		if f.typ() == "typing" {
			t.Fatalf("a fourth typing frame: %v", f)
		}
		if f.typ() == "pong" && f["request_id"] == "end" {
			break
		}
	}
}

// typingPair is a conversation of two users with a socket each, both
// joined: one types, the other watches.
func typingPair(t *testing.T, s *servertest.Server) (conv int64, watcher, flooder *client) {
	t.Helper()
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv = s.Conversation(t, alice, bob)
	watcher = dial(t, s, "/ws/chat/", bob.Access)
	watcher.join(conv)
	flooder = dial(t, s, "/ws/chat/", alice.Access)
	flooder.join(conv)
	return conv, watcher, flooder
}
