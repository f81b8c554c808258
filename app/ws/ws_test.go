package ws_test

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

// The seed's own example: a script connects to /ws/chat/?token=…, pings,
// and gets pong after connection_established.
func TestSeedExample_PingPong(t *testing.T) {
	s := servertest.Start(t)
	alice := s.Register(t, "alice")
	c := dialNoWait(t, s, "/ws/chat/", alice.Access)

	first := c.nextAny()
	if first.typ() != "connection_established" {
		t.Fatalf("first frame = %v, want connection_established", first)
	}
	if first.obj("user").int("id") != alice.ID {
		t.Errorf("connection_established user = %v, want id %d", first["user"], alice.ID)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", first["server_time"].(string)); err != nil {
		t.Errorf("server_time %q is not ISO-8601 with milliseconds", first["server_time"])
	}
	c.send(map[string]any{"type": "ping", "timestamp": "2024-01-01T00:00:00Z"})
	pong := c.next("pong")
	if pong["timestamp"] != "2024-01-01T00:00:00Z" {
		t.Errorf("pong timestamp = %v, want the one sent", pong["timestamp"])
	}
	if pong["server_time"] == nil {
		t.Error("pong has no server_time")
	}
}

func TestRequestIDEchoedOnDirectReplies(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	c := dial(t, s, "/ws/chat/", alice.Access)

	c.send(map[string]any{"type": "ping", "request_id": "r1"})
	if f := c.next("pong"); f["request_id"] != "r1" {
		t.Errorf("pong request_id = %v", f["request_id"])
	}
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "request_id": "r2"})
	if f := c.next("joined"); f["request_id"] != "r2" {
		t.Errorf("joined request_id = %v", f["request_id"])
	}
	c.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "hi", "client_id": "c1", "request_id": "r3"})
	if f := c.next("message_ack"); f["request_id"] != "r3" || f["client_id"] != "c1" {
		t.Errorf("message_ack = %v", f)
	}
	c.send(map[string]any{"type": "leave_conversation", "conversation_id": conv, "request_id": "r4"})
	if f := c.next("left"); f["request_id"] != "r4" || f.int("conversation_id") != conv {
		t.Errorf("left = %v", f)
	}
	c.send(map[string]any{"type": "nope", "request_id": "r5"})
	if f := c.next("error"); f["request_id"] != "r5" || f["code"] != "unknown_type" {
		t.Errorf("error = %v", f)
	}
}

func TestHandshake(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.AllowedOrigins = []string{"https://app.example.com"}
	}))
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	conv := s.Conversation(t, alice, bob)

	t.Run("origin not allowed is 403 before the upgrade", func(t *testing.T) {
		h := http.Header{"Origin": {"https://evil.example.com"}}
		_, resp, err := dialRaw(t, s.WSURL("/ws/chat/?token="+alice.Access), h)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial with a foreign origin: err=%v resp=%v, want HTTP 403", err, resp)
		}
	})
	t.Run("allowed and same-host origins connect", func(t *testing.T) {
		for _, origin := range []string{"https://app.example.com", s.URL} {
			conn, _, err := dialRaw(t, s.WSURL("/ws/chat/?token="+alice.Access), http.Header{"Origin": {origin}})
			if err != nil {
				t.Fatalf("origin %s: %v", origin, err)
			}
			wrap(t, conn).next("connection_established")
		}
	})
	t.Run("bearer header authenticates", func(t *testing.T) {
		conn, _, err := dialRaw(t, s.WSURL("/ws/chat/"), http.Header{"Authorization": {"Bearer " + alice.Access}})
		if err != nil {
			t.Fatal(err)
		}
		wrap(t, conn).next("connection_established")
	})

	s.Chat.DeleteUser(t.Context(), carol.ID)
	for name, token := range map[string]string{
		"no token":     "",
		"garbage":      "garbage",
		"refresh":      alice.Refresh,
		"deleted user": carol.Access,
	} {
		t.Run("4001 "+name, func(t *testing.T) {
			c := dialNoWait(t, s, "/ws/chat/", token)
			if code, _ := c.closeCode(); code != 4001 {
				t.Fatalf("close code = %d, want 4001", code)
			}
		})
	}
	t.Run("4004 unknown conversation and not a participant look the same", func(t *testing.T) {
		dave := s.Register(t, "dave")
		for _, path := range []string{"/ws/conversations/999999/", "/ws/conversations/" + itoa(conv) + "/", "/ws/conversations/abc/"} {
			c := dialNoWait(t, s, path, dave.Access)
			if code, _ := c.closeCode(); code != 4004 {
				t.Fatalf("%s: close code = %d, want 4004", path, code)
			}
		}
	})
	t.Run("URL form joins", func(t *testing.T) {
		c := dialNoWait(t, s, "/ws/conversations/"+itoa(conv), alice.Access) // no trailing slash
		if f := c.nextAny(); f.typ() != "connection_established" {
			t.Fatalf("first frame %v", f)
		}
		if f := c.nextAny(); f.typ() != "joined" || f.int("conversation_id") != conv {
			t.Fatalf("second frame %v, want joined", f)
		}
	})
}

func TestExpiredTokenIsRejected(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := servertest.Start(t, servertest.WithNow(clock))
	alice := s.Register(t, "alice")
	mu.Lock()
	now = now.Add(16 * time.Minute)
	mu.Unlock()
	c := dialNoWait(t, s, "/ws/chat/", alice.Access)
	if code, _ := c.closeCode(); code != 4001 {
		t.Fatalf("close code = %d, want 4001", code)
	}
}

// Two users with two devices each: every frame and event of the contract.
func TestEventsTwoUsersTwoDevices(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)

	a1 := dial(t, s, "/ws/chat/", alice.Access)
	a2 := dial(t, s, "/ws/chat/", alice.Access)
	b1 := dial(t, s, "/ws/chat/", bob.Access)
	j := a1.join(conv)
	if ids := j["online_user_ids"].([]any); len(ids) != 2 || j["recovered"] != true {
		t.Errorf("joined = %v, want both users online and recovered", j)
	}
	a2.join(conv)
	b1.join(conv)

	// Presence: bob's second device changes nothing; bob going fully
	// offline and back is seen by alice's joined connections.
	b2 := dial(t, s, "/ws/chat/", bob.Access)
	a1.none("presence", 200*time.Millisecond)
	b2.close()
	b1.close()
	for _, c := range []*client{a1, a2} {
		if f := c.next("presence"); f.int("user_id") != bob.ID || f["status"] != "offline" {
			t.Errorf("presence = %v, want bob offline", f)
		}
	}
	b1 = dial(t, s, "/ws/chat/", bob.Access)
	for _, c := range []*client{a1, a2} {
		if f := c.next("presence"); f.int("user_id") != bob.ID || f["status"] != "online" {
			t.Errorf("presence = %v, want bob online", f)
		}
	}
	b2 = dial(t, s, "/ws/chat/", bob.Access)
	b1.join(conv)

	// new_message over the socket: ack to the sender, the event to every
	// joined connection, a notification to bob's unjoined device.
	a1.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "  hello bob  ", "client_id": "m1"})
	// The sender's own connection is joined: it sees the broadcast (sent
	// at commit) and then the ack.
	echo := a1.next("new_message")
	ack := a1.next("message_ack")
	msg := ack.obj("message")
	if msg["content"] != "hello bob" || msg.obj("sender").int("id") != alice.ID || ack["client_id"] != "m1" {
		t.Fatalf("ack = %v", ack)
	}
	if echo.obj("message").int("id") != msg.int("id") {
		t.Errorf("sender's new_message = %v", echo)
	}
	for i, c := range []*client{a2, b1} {
		if f := c.next("new_message"); f.obj("message").int("id") != msg.int("id") {
			t.Errorf("client %d: new_message = %v", i, f)
		}
	}
	if f := b2.next("notification"); f.int("conversation_id") != conv || f.obj("message").int("id") != msg.int("id") {
		t.Errorf("notification = %v", f)
	}
	a2.none("notification", 100*time.Millisecond)

	// The same client_id again is acknowledged with the original and
	// broadcast to nobody.
	a1.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "hello bob", "client_id": "m1"})
	if f := a1.next("message_ack"); f.obj("message").int("id") != msg.int("id") {
		t.Errorf("retried ack = %v", f)
	}
	b1.none("new_message", 200*time.Millisecond)

	// typing: to the others, not back to the sender's connection.
	b1.send(map[string]any{"type": "typing", "conversation_id": conv})
	for _, c := range []*client{a1, a2} {
		f := c.next("typing")
		if f.int("user_id") != bob.ID || f["username"] != bob.Username || f["is_typing"] != true {
			t.Errorf("typing = %v", f)
		}
	}
	b1.none("typing", 200*time.Millisecond)
	// ...and at most one per second per connection and conversation; the
	// last state held back in that second follows when it ends.
	b1.send(map[string]any{"type": "typing", "conversation_id": conv, "is_typing": true})
	b1.send(map[string]any{"type": "typing", "conversation_id": conv, "is_typing": false})
	a1.none("typing", 300*time.Millisecond)
	if f := a1.next("typing"); f["is_typing"] != false {
		t.Errorf("held-back typing = %v, want the stop", f)
	}
	a1.none("typing", 1200*time.Millisecond)

	// read_receipt: persisted and broadcast; a backwards mark is not.
	b1.send(map[string]any{"type": "read_receipt", "conversation_id": conv, "message_id": msg.int("id")})
	if f := a1.next("read_receipt"); f.int("user_id") != bob.ID || f.int("message_id") != msg.int("id") || f["read_at"] == nil {
		t.Errorf("read_receipt = %v", f)
	}
	b1.send(map[string]any{"type": "read_receipt", "conversation_id": conv, "message_id": msg.int("id")})
	a1.none("read_receipt", 200*time.Millisecond)
	var got struct {
		Participants []struct {
			User              struct{ ID int64 }
			LastReadMessageID int64 `json:"last_read_message_id"`
		}
	}
	s.Do(t, "GET", "/api/conversations/"+itoa(conv)+"/", alice.Access, nil).JSON(t, &got)
	for _, p := range got.Participants {
		if p.User.ID == bob.ID && p.LastReadMessageID != msg.int("id") {
			t.Errorf("bob's stored read mark = %d, want %d", p.LastReadMessageID, msg.int("id"))
		}
	}

	// A REST send, edit and delete produce the same events.
	id := s.Send(t, bob, conv, "over rest")
	if f := a1.next("new_message"); f.obj("message").int("id") != id || f.obj("message")["content"] != "over rest" {
		t.Errorf("REST new_message = %v", f)
	}
	if r := s.Do(t, "PATCH", "/api/messages/"+itoa(id)+"/", bob.Access, map[string]string{"content": "edited"}); r.Status != 200 {
		t.Fatalf("edit: %d %s", r.Status, r.Body)
	}
	if f := a2.next("message_updated"); f.obj("message")["content"] != "edited" || f.obj("message")["edited_at"] == nil {
		t.Errorf("message_updated = %v", f)
	}
	if r := s.Do(t, "DELETE", "/api/messages/"+itoa(id)+"/", bob.Access, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if f := a1.next("message_deleted"); f.obj("message")["is_deleted"] != true || f.obj("message")["content"] != "" {
		t.Errorf("message_deleted = %v", f)
	}

	// conversation_updated reaches every connection of every participant.
	carol := s.Register(t, "carol")
	group := s.Conversation(t, alice, bob, carol)
	for _, c := range []*client{a1, a2, b1, b2} {
		if f := c.next("conversation_updated"); f.obj("conversation").int("id") != group {
			t.Errorf("conversation_updated = %v", f)
		}
	}

	// leave: no more events of that conversation.
	a2.send(map[string]any{"type": "leave_conversation", "conversation_id": conv})
	a2.next("left")
	s.Send(t, bob, conv, "after leave")
	a1.next("new_message")
	a2.none("new_message", 200*time.Millisecond)
}

func TestBadFramesGetErrorsAndKeepTheConnection(t *testing.T) {
	s := servertest.Start(t)
	alice, bob, eve := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "eve")
	conv := s.Conversation(t, alice, bob)
	c := dial(t, s, "/ws/chat/", alice.Access)
	e := dial(t, s, "/ws/chat/", eve.Access)

	cases := []struct {
		name  string
		frame string
		code  string
	}{
		{"invalid json", `{"type":`, "invalid_json"},
		{"not an object", `[1,2]`, "invalid_json"},
		{"no type", `{"conversation_id":1}`, "invalid"},
		{"unknown type", `{"type":"fly"}`, "unknown_type"},
		{"join without id", `{"type":"join_conversation"}`, "invalid"},
		{"wrong type of field", `{"type":"join_conversation","conversation_id":"one"}`, "invalid"},
		{"message without content", `{"type":"new_message","conversation_id":` + itoa(conv) + `}`, "invalid"},
		{"blank message", `{"type":"new_message","conversation_id":` + itoa(conv) + `,"content":"   "}`, "invalid"},
		{"too long message", `{"type":"new_message","conversation_id":` + itoa(conv) + `,"content":"` + strings.Repeat("x", 4001) + `"}`, "invalid"},
		{"join unknown conversation", `{"type":"join_conversation","conversation_id":987654}`, "not_found"},
		{"read receipt without message", `{"type":"read_receipt","conversation_id":` + itoa(conv) + `}`, "invalid"},
		{"authenticate with garbage", `{"type":"authenticate","token":"x"}`, "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.conn.WriteMessage(websocket.TextMessage, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			if f := c.next("error"); f["code"] != tc.code || f["detail"] == "" {
				t.Errorf("error frame = %v, want code %s", f, tc.code)
			}
		})
	}
	t.Run("binary frame", func(t *testing.T) {
		c.conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		if f := c.next("error"); f["code"] != "invalid_json" {
			t.Errorf("error frame = %v", f)
		}
	})
	t.Run("a non-participant can do nothing in the conversation", func(t *testing.T) {
		for _, fr := range []map[string]any{
			{"type": "join_conversation", "conversation_id": conv},
			{"type": "new_message", "conversation_id": conv, "content": "let me in"},
			{"type": "typing", "conversation_id": conv},
			{"type": "read_receipt", "conversation_id": conv, "message_id": 1},
		} {
			e.send(fr)
			if f := e.next("error"); f["code"] != "not_found" {
				t.Errorf("%v: error = %v, want not_found", fr["type"], f)
			}
		}
	})
	c.send(map[string]any{"type": "ping"})
	c.next("pong")
}

func TestOversizedFrameCloses1009(t *testing.T) {
	s := servertest.Start(t)
	alice := s.Register(t, "alice")
	other := dial(t, s, "/ws/chat/", alice.Access)
	c := dial(t, s, "/ws/chat/", alice.Access)
	c.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","timestamp":"`+strings.Repeat("x", 100<<10)+`"}`))
	if code, _ := c.closeCode(); code != 1009 {
		t.Fatalf("close code = %d, want 1009", code)
	}
	other.send(map[string]any{"type": "ping"})
	other.next("pong")
}

func TestFrameFloodIsRateLimited(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WSFramesPerSecond, c.WSFrameBurst = 20, 60
	}))
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	calm := dial(t, s, "/ws/chat/", bob.Access)
	calm.join(conv)
	c := dial(t, s, "/ws/chat/", alice.Access)
	for i := range 500 {
		if err := c.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","request_id":"`+itoa(int64(i))+`"}`)); err != nil {
			break // closed under us: that is the point
		}
	}
	limited := c.next("error")
	if limited["code"] != "rate_limited" {
		t.Errorf("error = %v, want rate_limited", limited)
	}
	if code, _ := c.closeCode(); code != 4029 {
		t.Errorf("close code = %d, want 4029", code)
	}
	// Everyone else is served as before.
	id := s.Send(t, alice, conv, "still here")
	if f := calm.next("new_message"); f.obj("message").int("id") != id {
		t.Errorf("new_message = %v", f)
	}
}

// 5 senders × 100 messages at once: every receiver sees all 500, in one
// order, ids increasing.
func TestOrderingUnderConcurrentSenders(t *testing.T) {
	s := servertest.Start(t)
	owner := s.Register(t, "owner")
	var senders []servertest.User
	for i := range 5 {
		senders = append(senders, s.Register(t, fmt.Sprintf("sender%d", i)))
	}
	conv := s.Conversation(t, owner, senders...)
	var receivers []*client
	for _, u := range append([]servertest.User{owner}, senders[:2]...) {
		c := dial(t, s, "/ws/chat/", u.Access)
		c.join(conv)
		receivers = append(receivers, c)
	}
	wsSender := dial(t, s, "/ws/chat/", senders[4].Access)

	var wg sync.WaitGroup
	for i, u := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 100 {
				content := fmt.Sprintf("%d-%d", i, n)
				var err error
				if i == 4 { // one sender over the socket, the rest over REST
					err = wsSender.conn.WriteJSON(map[string]any{"type": "new_message", "conversation_id": conv, "content": content})
				} else {
					_, err = postMessage(s, u, conv, content)
				}
				if err != nil {
					t.Errorf("sender %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var first []int64
	for ri, c := range receivers {
		var ids []int64
		for len(ids) < 500 {
			ids = append(ids, c.next("new_message").obj("message").int("id"))
		}
		for k := 1; k < len(ids); k++ {
			if ids[k] <= ids[k-1] {
				t.Fatalf("receiver %d: id %d after %d", ri, ids[k], ids[k-1])
			}
		}
		if first == nil {
			first = ids
		} else if fmt.Sprint(ids) != fmt.Sprint(first) {
			t.Fatalf("receiver %d saw another order", ri)
		}
		c.none("new_message", 100*time.Millisecond)
	}
}

// A client drops, messages keep flowing, it reconnects with
// last_message_id while they keep flowing: each arrives exactly once, in
// order.
func TestRecoveryRace(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)

	stop := make(chan struct{})
	var sent []int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id, err := postMessage(s, alice, conv, fmt.Sprintf("m%d", i))
			if err != nil {
				t.Errorf("sender: %v", err)
				return
			}
			mu.Lock()
			sent = append(sent, id)
			mu.Unlock()
		}
	}()

	var got []int64
	seen := map[int64]bool{}
	receive := func(f frame) {
		id := f.obj("message").int("id")
		if seen[id] {
			t.Fatalf("message %d delivered twice", id)
		}
		if len(got) > 0 && id <= got[len(got)-1] {
			t.Fatalf("message %d after %d", id, got[len(got)-1])
		}
		seen[id] = true
		got = append(got, id)
	}
	for round := range 5 {
		c := dial(t, s, "/ws/chat/", bob.Access)
		req := map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": 0}
		if len(got) > 0 {
			req["last_message_id"] = got[len(got)-1]
		}
		c.send(req)
		var joined frame
		for joined == nil {
			f := c.nextAny()
			switch f.typ() {
			case "new_message":
				receive(f)
			case "joined":
				joined = f
			}
		}
		if joined["recovered"] != true {
			t.Fatalf("round %d: joined = %v", round, joined)
		}
		for range 20 + round*7 {
			receive(c.next("new_message"))
		}
		c.close()
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	// Finally catch up once more and compare with everything committed.
	c := dial(t, s, "/ws/chat/", bob.Access)
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": got[len(got)-1]})
	for {
		f := c.nextAny()
		if f.typ() == "joined" {
			break
		}
		if f.typ() == "new_message" {
			receive(f)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(sent) {
		t.Fatalf("received %d messages, %d were sent", len(got), len(sent))
	}
	for i := range sent {
		if got[i] != sent[i] {
			t.Fatalf("message %d: got id %d, sent %d", i, got[i], sent[i])
		}
	}
}

func TestRecoveryPastTheLimitAsksForReload(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	first := s.Send(t, alice, conv, "first")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 126 {
				if _, err := postMessage(s, alice, conv, fmt.Sprintf("%d-%d", w, i)); err != nil {
					t.Errorf("sender %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	c := dial(t, s, "/ws/chat/", bob.Access)
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": first})
	f := c.nextAny()
	if f.typ() != "joined" || f["recovered"] != false {
		t.Fatalf("frame = %v, want joined with recovered:false", f)
	}
	// Exactly 1000 missed is still recovered.
	c2 := dial(t, s, "/ws/chat/", bob.Access)
	c2.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": first + 8})
	n := 0
	for {
		f := c2.nextAny()
		if f.typ() == "joined" {
			if f["recovered"] != true || f.int("missed") != int64(n) || n != 1000 {
				t.Fatalf("joined = %v after %d replayed", f, n)
			}
			break
		}
		n++
	}
}

func TestSlowConsumerIsClosed4008(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.WSSendQueue = 16 }))
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)

	// The slow client joins, then never reads again.
	conn, _, err := dialRaw(t, s.WSURL("/ws/chat/?token="+bob.Access), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.WriteJSON(map[string]any{"type": "join_conversation", "conversation_id": conv})
	healthy := dial(t, s, "/ws/chat/", alice.Access)
	healthy.join(conv)

	// It reads again once the server has given up on it (the drop
	// counter moves): what was sent ends in a 4008 close. A client must
	// read within writeWait of that for the close frame to be written at
	// all (else the server drops the connection without one), so it does
	// not wait for the senders, which a busy machine makes slow.
	closed := make(chan int, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for !droppedSlow(s) {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		conn.SetReadDeadline(time.Now().Add(waitFor))
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					closed <- ce.Code
				} else {
					closed <- 0
				}
				return
			}
		}
	}()

	big := strings.Repeat("x", 3900)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if _, err := postMessage(s, alice, conv, fmt.Sprintf("%d-%d %s", w, i, big)); err != nil {
					t.Errorf("sender %d: %v", w, err)
					return
				}
			}
		}()
	}
	// The healthy client keeps receiving all the while.
	for range 1600 {
		healthy.next("new_message")
	}
	wg.Wait()

	select {
	case code := <-closed:
		if code != 4008 {
			t.Fatalf("slow client close code = %d, want 4008", code)
		}
	case <-time.After(waitFor):
		t.Fatal("the slow client was not dropped")
	}
}

// droppedSlow reports whether the server has dropped a socket for being
// too slow, from its metrics.
func droppedSlow(s *servertest.Server) bool {
	r, err := s.Request(http.MethodGet, "/metrics", "", nil)
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(r.Body)) {
		if n, ok := strings.CutPrefix(line, `confab_ws_dropped_total{reason="slow"} `); ok {
			return strings.TrimSpace(n) != "0"
		}
	}
	return false
}

func TestTicketsAreSingleUseAndShortLived(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := servertest.Start(t, servertest.WithNow(clock))
	alice := s.Register(t, "alice")

	ticket := func() string {
		var out struct {
			Ticket    string `json:"ticket"`
			ExpiresIn int    `json:"expires_in"`
		}
		r := s.Do(t, "POST", "/api/auth/ws-ticket/", alice.Access, nil)
		if r.Status != 200 {
			t.Fatalf("ticket: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &out)
		if out.ExpiresIn != 30 || out.Ticket == "" {
			t.Fatalf("ticket = %+v", out)
		}
		return out.Ticket
	}
	open := func(q string) *client {
		conn, _, err := dialRaw(t, s.WSURL("/ws/chat/?"+q), nil)
		if err != nil {
			t.Fatal(err)
		}
		return wrap(t, conn)
	}

	tk := ticket()
	open("ticket=" + tk).next("connection_established")
	if code, _ := open("ticket=" + tk).closeCode(); code != 4001 {
		t.Errorf("second use: close code %d, want 4001", code)
	}
	if code, _ := open("token=" + ticket()).closeCode(); code != 4001 {
		t.Errorf("ticket as token: close code %d, want 4001", code)
	}
	if r := s.Do(t, "GET", "/api/users/me/", ticket(), nil); r.Status != 401 {
		t.Errorf("ticket as REST bearer: %d, want 401", r.Status)
	}
	old := ticket()
	advance(31 * time.Second)
	if code, _ := open("ticket=" + old).closeCode(); code != 4001 {
		t.Errorf("expired ticket: close code %d, want 4001", code)
	}
}

func TestTokenExpiryOnOpenSocket(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.AccessTokenTTL = 3 * time.Second }))
	alice := s.Register(t, "alice")

	t.Run("closed 4001 without a fresh token", func(t *testing.T) {
		c := dial(t, s, "/ws/chat/", alice.Access)
		// Less than 60 s left: told at once.
		if f := c.next("token_expiring"); f["expires_at"] == nil {
			t.Errorf("token_expiring = %v", f)
		}
		code, reason := c.closeCode()
		if code != 4001 || reason != "token expired" {
			t.Fatalf("close = %d %q, want 4001 token expired", code, reason)
		}
	})
	t.Run("authenticate keeps it open", func(t *testing.T) {
		timingTest(t) // it renews the token at set times before its expiry
		u := s.Register(t, "bob")
		c := dial(t, s, "/ws/chat/", u.Access)
		c.next("token_expiring")
		time.Sleep(1500 * time.Millisecond)
		var fresh struct{ Access string }
		s.Do(t, "POST", "/api/auth/token/", "", map[string]string{"username": u.Username, "password": servertest.Password}).JSON(t, &fresh)
		c.send(map[string]any{"type": "authenticate", "token": fresh.Access, "request_id": "a"})
		f := c.next("authenticated")
		if f["request_id"] != "a" || f["expires_at"] == nil {
			t.Fatalf("authenticated = %v", f)
		}
		exp, _ := time.Parse("2006-01-02T15:04:05.000Z", f["expires_at"].(string))
		// Past the first token's expiry the socket still answers.
		time.Sleep(time.Until(exp) - 700*time.Millisecond)
		c.send(map[string]any{"type": "ping"})
		c.next("pong")
		if code, _ := c.closeCode(); code != 4001 {
			t.Fatalf("close code = %d, want 4001 once the renewed token expires", code)
		}
	})
	t.Run("another user's token is refused", func(t *testing.T) {
		u := s.Register(t, "carol")
		c := dial(t, s, "/ws/chat/", u.Access)
		c.send(map[string]any{"type": "authenticate", "token": alice.Access})
		if f := c.next("error"); f["code"] != "forbidden" {
			t.Fatalf("error = %v", f)
		}
	})
}

func TestDeletedUserIsClosedAtOnce(t *testing.T) {
	s := servertest.Start(t)
	alice := s.Register(t, "alice")
	c := dial(t, s, "/ws/chat/", alice.Access)
	if err := s.Chat.DeleteUser(t.Context(), alice.ID); err != nil {
		t.Fatal(err)
	}
	if code, reason := c.closeCode(); code != 4001 || reason != "account deleted" {
		t.Fatalf("close %d %q, want 4001 \"account deleted\"", code, reason)
	}
}

// The other participants see a deleted account leave each of its
// conversations at once, as conversation_updated, as if it had left.
func TestDeletedUserLeavesEveryConversationLive(t *testing.T) {
	s := servertest.Start(t)
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	group := s.Conversation(t, alice, bob, carol)
	direct := s.Conversation(t, bob, alice)
	a := dial(t, s, "/ws/chat/", alice.Access)
	if r := s.Do(t, http.MethodDelete, "/api/users/me/", bob.Access, map[string]string{"password": servertest.Password}); r.Status != http.StatusNoContent {
		t.Fatalf("delete account: %d %s", r.Status, r.Body)
	}
	want := map[int64]int{group: 2, direct: 1}
	for range want {
		conv := a.next("conversation_updated").obj("conversation")
		id := conv.int("id")
		n, ok := want[id]
		if !ok {
			t.Fatalf("conversation_updated for %d, want one of %v", id, want)
		}
		delete(want, id)
		if conv.int("member_count") != int64(n) {
			t.Errorf("conversation %d: member_count %v, want %d", id, conv["member_count"], n)
		}
		for _, p := range conv["participants"].([]any) {
			if p.(map[string]any)["id"] == float64(bob.ID) {
				t.Errorf("conversation %d still lists the deleted account: %v", id, conv["participants"])
			}
		}
	}
}

// A password change ends every other session of the user: the other
// session's refresh and access tokens get 401 and its sockets (opened with
// a token or a ticket) close with 4001, while the session that changed
// the password keeps its socket and its tokens.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	s := servertest.Start(t)
	alice := s.Register(t, "alice") // the phone's session
	var laptop struct{ Access, Refresh string }
	s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": alice.Username, "password": servertest.Password}).JSON(t, &laptop)
	var ticket struct{ Ticket string }
	s.Do(t, http.MethodPost, "/api/auth/ws-ticket/", alice.Access, nil).JSON(t, &ticket)

	phoneSock := dial(t, s, "/ws/chat/", alice.Access)
	phoneTicketSock := wrap(t, mustDialURL(t, s.WSURL("/ws/chat/?ticket="+ticket.Ticket)))
	phoneTicketSock.next("connection_established")
	laptopSock := dial(t, s, "/ws/chat/", laptop.Access)

	r := s.Do(t, http.MethodPatch, "/api/users/me/", laptop.Access, map[string]string{"password": "a brand new password"})
	if r.Status != http.StatusOK {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	for name, c := range map[string]*client{"token": phoneSock, "ticket": phoneTicketSock} {
		if code, reason := c.closeCode(); code != 4001 {
			t.Errorf("the other session's socket (%s): closed %d %q, want 4001", name, code, reason)
		}
	}
	if r := s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": alice.Refresh}); r.Status != http.StatusUnauthorized {
		t.Errorf("the other session's refresh: %d, want 401", r.Status)
	}
	if r := s.Do(t, http.MethodGet, "/api/users/me/", alice.Access, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("the other session's access token: %d, want 401", r.Status)
	}
	if code, _ := dialNoWait(t, s, "/ws/chat/", alice.Access).closeCode(); code != 4001 {
		t.Errorf("a new socket with the other session's token: %d, want 4001", code)
	}

	// The laptop carries on: its socket, its access token, its refresh.
	laptopSock.send(map[string]any{"type": "ping"})
	if f := laptopSock.nextAny(); f.typ() != "pong" {
		t.Errorf("the changing session's socket: %v, want pong", f)
	}
	if r := s.Do(t, http.MethodGet, "/api/users/me/", laptop.Access, nil); r.Status != http.StatusOK {
		t.Errorf("the changing session's access token: %d", r.Status)
	}
	if r := s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": laptop.Refresh}); r.Status != http.StatusOK {
		t.Errorf("the changing session's refresh: %d %s", r.Status, r.Body)
	}
}

func mustDialURL(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	conn, resp, err := dialRaw(t, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	return conn
}

func TestShutdownClosesSockets1001WithoutLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	var clients []*client
	for range 20 {
		c := dial(t, s, "/ws/chat/", alice.Access)
		c.join(conv)
		clients = append(clients, c)
	}
	s.Send(t, bob, conv, "before shutdown")
	s.Close()
	for _, c := range clients {
		if code, _ := c.closeCode(); code != 1001 {
			t.Fatalf("close code = %d, want 1001", code)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after shutdown, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestSilentClientIsDropped(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WSPingInterval, c.WSPongTimeout = 100*time.Millisecond, 400*time.Millisecond
	}))
	alice := s.Register(t, "alice")

	// A client that answers pings stays; one that ignores them is dropped.
	alive := dial(t, s, "/ws/chat/", alice.Access)
	conn, _, err := dialRaw(t, s.WSURL("/ws/chat/?token="+alice.Access), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetPingHandler(func(string) error { return nil })
	silent := wrap(t, conn)

	start := time.Now()
	silent.closeCode()
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("silent client dropped after %v, before the pong timeout", d)
	}
	alive.send(map[string]any{"type": "ping"})
	alive.next("pong")
}

func TestConnectionLimits(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WSMaxConnsPerUser, c.WSMaxConnsPerIP, c.WSMaxJoined = 3, 5, 2
	}))
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")

	t.Run("per user", func(t *testing.T) {
		var open []*client
		for range 3 {
			open = append(open, dial(t, s, "/ws/chat/", alice.Access))
		}
		over := dialNoWait(t, s, "/ws/chat/", alice.Access)
		if code, reason := over.closeCode(); code != 4029 || !strings.Contains(reason, "user") {
			t.Fatalf("fourth socket: close %d %q, want 4029 for the user", code, reason)
		}
		// Closing one makes room again.
		open[0].close()
		deadline := time.Now().Add(2 * time.Second)
		for {
			c := dialNoWait(t, s, "/ws/chat/", alice.Access)
			if f := c.nextAnyOrClose(); f != nil && f.typ() == "connection_established" {
				open[0] = c
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no room after a socket closed")
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Run("per address", func(t *testing.T) {
			dial(t, s, "/ws/chat/", bob.Access)
			dial(t, s, "/ws/chat/", bob.Access)
			over := dialNoWait(t, s, "/ws/chat/", bob.Access) // the sixth from 127.0.0.1
			if code, reason := over.closeCode(); code != 4029 || !strings.Contains(reason, "address") {
				t.Fatalf("sixth socket: close %d %q, want 4029 for the address", code, reason)
			}
		})
	})
	t.Run("joins per socket", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.WSMaxJoined = 2 }))
		alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
		c := dial(t, s, "/ws/chat/", alice.Access)
		for i := range 3 {
			carol := s.Register(t, fmt.Sprint("carol", i))
			conv := s.Conversation(t, alice, bob, carol)
			c.send(map[string]any{"type": "join_conversation", "conversation_id": conv})
			f := c.nextAny()
			for f.typ() != "joined" && f.typ() != "error" {
				f = c.nextAny()
			}
			if i < 2 && f.typ() != "joined" {
				t.Fatalf("join %d: %v", i, f)
			}
			if i == 2 && (f.typ() != "error" || f["code"] != "invalid") {
				t.Fatalf("join past the limit: %v, want an invalid error", f)
			}
		}
	})
}

// A client that keeps sending far past its rate is closed with 4029 even
// though some of its frames still get through between refusals.
func TestSustainedFloodIsClosed4029(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WSFramesPerSecond, c.WSFrameBurst = 20, 60
	}))
	alice := s.Register(t, "alice")
	c := dial(t, s, "/ws/chat/", alice.Access)
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(2500 * time.Microsecond) // 400 frames a second: 20 times the rate
	defer tick.Stop()
	pongs := 0
loop:
	for time.Now().Before(deadline) {
		<-tick.C
		if err := c.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
			break
		}
		for {
			select {
			case f, ok := <-c.frames:
				if !ok {
					break loop
				}
				if f.typ() == "pong" {
					pongs++
				}
				continue
			default:
			}
			break
		}
	}
	if code, _ := c.closeCode(); code != 4029 {
		t.Fatalf("close code = %d, want 4029", code)
	}
	if pongs == 0 {
		t.Fatal("no frame got through at all: the flood was not interleaved with allowed frames")
	}
}

// The frame budget of a user holds across all their sockets: two sockets,
// each well within its own bucket, share WS_USER_FRAME_BURST, and past it
// a frame gets the same rate_limited error the per-socket limit gives.
// Another user's budget is their own.
func TestFrameBudgetPerUserAcrossSockets(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WSFramesPerSecond, c.WSFrameBurst = 1000, 1000
		c.WSUserFramesPerSecond, c.WSUserFrameBurst = 0.001, 6 // none come back during the test
	}))
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	phone, laptop := dial(t, s, "/ws/chat/", alice.Access), dial(t, s, "/ws/chat/", alice.Access)
	ping := func(c *client, n int) {
		c.send(map[string]any{"type": "ping", "request_id": n})
	}
	for i := range 4 {
		ping(phone, i)
		if f := phone.nextAny(); f.typ() != "pong" {
			t.Fatalf("phone frame %d: %v, want pong", i, f)
		}
	}
	for i := range 2 { // the budget's last two
		ping(laptop, i)
		if f := laptop.nextAny(); f.typ() != "pong" {
			t.Fatalf("laptop frame %d: %v, want pong", i, f)
		}
	}
	ping(laptop, 2)
	if f := laptop.nextAny(); f.typ() != "error" || f["code"] != "rate_limited" {
		t.Fatalf("laptop frame past the user's budget: %v, want error rate_limited", f)
	}
	ping(phone, 4)
	if f := phone.nextAny(); f.typ() != "error" || f["code"] != "rate_limited" {
		t.Fatalf("phone frame past the user's budget: %v, want error rate_limited", f)
	}
	other := dial(t, s, "/ws/chat/", bob.Access)
	ping(other, 0)
	if f := other.nextAny(); f.typ() != "pong" {
		t.Fatalf("another user: %v, want pong", f)
	}
}
