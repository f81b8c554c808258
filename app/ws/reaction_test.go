package ws_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/confab/confab/app/server/servertest"
)

// rawFrames dials as token, joins conv, and returns a function that
// reads the socket's frames as sent, up to the first of type typ.
func rawFrames(t *testing.T, s *servertest.Server, token string, conv int64) func(typ string) []byte {
	t.Helper()
	conn, resp, err := dialRaw(t, s.WSURL("/ws/chat/")+"?token="+token, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	next := func(typ string) []byte {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(waitFor))
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			var f struct{ Type string }
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatalf("frame %q: %v", data, err)
			}
			if f.Type == typ {
				return data
			}
		}
	}
	next("connection_established")
	if err := conn.WriteJSON(map[string]any{"type": "join_conversation", "conversation_id": conv}); err != nil {
		t.Fatal(err)
	}
	next("joined")
	return next
}

// TestReactionUpdated_SameBytesForEverySubscriber: two participants
// joined to a conversation receive one reaction_updated frame per change,
// byte for byte the same, with the change's version; the replays on join
// (since_version and last_message_id) carry the reactions with the
// joiner's own me.
func TestReactionUpdated_SameBytesForEverySubscriber(t *testing.T) {
	s := servertest.Start(t)
	alice, bob, cat := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "cat")
	conv := s.Conversation(t, alice, bob, cat)
	msg := s.Send(t, alice, conv, "react")
	since := dial(t, s, "/ws/chat/", cat.Access).join(conv).int("version")
	a := rawFrames(t, s, alice.Access, conv)
	b := rawFrames(t, s, bob.Access, conv)

	r := s.Do(t, http.MethodPut, "/api/messages/"+itoa(msg)+"/reactions/"+url.PathEscape("👨‍👩‍👧")+"/", cat.Access, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	fa, fb := a("reaction_updated"), b("reaction_updated")
	if !bytes.Equal(fa, fb) {
		t.Errorf("the subscribers got different frames:\n%s\n%s", fa, fb)
	}
	var ev map[string]any
	if err := json.Unmarshal(fa, &ev); err != nil {
		t.Fatal(err)
	}
	if ev["emoji"] != "👨‍👩‍👧" || ev["count"] != 1.0 || ev["added"] != true || int64(ev["user_id"].(float64)) != cat.ID ||
		int64(ev["message_id"].(float64)) != msg || int64(ev["conversation_id"].(float64)) != conv || ev["version"].(float64) <= 0 {
		t.Errorf("reaction_updated = %s", fa)
	}

	// The frames carry the change's version, as the hub orders them.
	if int64(ev["version"].(float64)) <= since {
		t.Errorf("reaction_updated version %v, not past the join's %d", ev["version"], since)
	}

	// A since_version replay has the message as changed, reactions and
	// the joiner's me included.
	d := dial(t, s, "/ws/chat/", cat.Access)
	d.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "since_version": since})
	upd := d.next("message_updated").obj("message")
	if rs, _ := upd["reactions"].([]any); len(rs) != 1 || rs[0].(map[string]any)["me"] != true {
		t.Errorf("since_version replay: reactions %v, want one with me true", upd["reactions"])
	}

	// The replay carries the reactions, with the joiner's me.
	c := dial(t, s, "/ws/chat/", cat.Access)
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": 0})
	m := c.next("new_message").obj("message")
	rs, _ := m["reactions"].([]any)
	if len(rs) != 1 || rs[0].(map[string]any)["me"] != true || rs[0].(map[string]any)["count"] != 1.0 {
		t.Errorf("replayed reactions %v, want one with me true", m["reactions"])
	}
}
