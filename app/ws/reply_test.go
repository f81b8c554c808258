package ws_test

import (
	"testing"
	"time"

	"github.com/confab/confab/app/server/servertest"
)

// TestNewMessage_ReplyAndMention: a new_message frame with reply_to_id
// makes a reply, whose reply_to the ack, the live new_message and the
// replay on join all carry; a reply_to_id of another conversation is an
// invalid error frame. An @username of a participant who is connected but
// not joined to the conversation gets them a notification with reason
// mention, and so does one who is joined (who gets no notification of a
// plain message); an @name of a non-participant notifies nobody.
func TestNewMessage_ReplyAndMention(t *testing.T) {
	s := servertest.Start(t)
	alice, bob, cat, dan := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "cat"), s.Register(t, "dan")
	conv := s.Conversation(t, alice, bob, cat)
	other := s.Conversation(t, alice, dan)
	orig := s.Send(t, bob, conv, "the original")
	elsewhere := s.Send(t, dan, other, "elsewhere")

	a := dial(t, s, "/ws/chat/", alice.Access)
	a.join(conv)
	b := dial(t, s, "/ws/chat/", bob.Access) // connected, not joined
	d := dial(t, s, "/ws/chat/", dan.Access) // not a participant

	a.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "x", "reply_to_id": elsewhere, "request_id": "r1"})
	if f := a.next("error"); f["code"] != "invalid" || f["request_id"] != "r1" {
		t.Errorf("reply to another conversation's message: %v", f)
	}

	a.send(map[string]any{"type": "new_message", "conversation_id": conv, "reply_to_id": orig,
		"content": "@Bob_" + suffix(bob.Username) + " see above, and @" + dan.Username})
	wantReply := func(what string, m frame) {
		t.Helper()
		rt := m.obj("reply_to")
		if rt.int("id") != orig || rt.obj("sender").int("id") != bob.ID || rt["content_preview"] != "the original" || rt["is_deleted"] != false {
			t.Errorf("%s: reply_to = %v", what, m["reply_to"])
		}
		if ms, _ := m["mentions"].([]any); len(ms) != 1 || int64(ms[0].(float64)) != bob.ID {
			t.Errorf("%s: mentions = %v, want [%d]", what, m["mentions"], bob.ID)
		}
	}
	live := a.next("new_message")
	ack := a.next("message_ack")
	wantReply("ack", ack.obj("message"))
	wantReply("new_message", live.obj("message"))

	n := b.next("notification")
	if n["reason"] != "mention" || n.obj("message").int("id") != ack.obj("message").int("id") {
		t.Errorf("bob's notification = %v, want reason mention", n)
	}
	d.none("notification", 100*time.Millisecond)

	// Joined, bob gets the new_message, and still the mention; a plain
	// message to him there notifies nothing.
	b.join(conv)
	a.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "again @" + bob.Username})
	b.next("new_message")
	if n := b.next("notification"); n["reason"] != "mention" {
		t.Errorf("joined bob's notification = %v, want reason mention", n)
	}
	a.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "no name"})
	b.next("new_message")
	b.none("notification", 100*time.Millisecond)

	// The replay on join carries the reply too.
	c := dial(t, s, "/ws/chat/", cat.Access)
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": orig})
	wantReply("replay", c.next("new_message").obj("message"))
}

// suffix is what Register put after a name's underscore: the test's
// @Bob_… differs from bob's username in case only.
func suffix(username string) string {
	for i := range username {
		if username[i] == '_' {
			return username[i+1:]
		}
	}
	return username
}
