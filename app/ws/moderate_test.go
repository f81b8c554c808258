package ws_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/moderate"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/app/ws"
)

// A message staff removed reaches joined sockets as the usual
// message_deleted, saying removed_by_moderator; a since_version rejoin
// replays it the same way, and a last_message_id replay shows the
// tombstone so too.
func TestModeratorRemoval_OnTheSocket(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	mod := s.Staff(t, "mod")
	conv := s.Conversation(t, ann, bob)
	msg := s.Send(t, bob, conv, "something vile")
	a := dial(t, s, "/ws/chat/", ann.Access)
	since := a.join(conv).int("version")
	r := s.Do(t, http.MethodPost, "/api/reports/", ann.Access, map[string]any{"message_id": msg, "reason": "abuse"})
	if r.Status != http.StatusCreated {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	id := int64(r.Map(t)["id"].(float64))
	if r := s.Do(t, http.MethodPost, "/api/admin/reports/"+itoa(id)+"/resolve/", mod.Access, map[string]string{"action": "remove_message"}); r.Status != http.StatusOK {
		t.Fatalf("resolve: %d %s", r.Status, r.Body)
	}
	live := a.next("message_deleted").obj("message")
	if live.int("id") != msg || live["removed_by_moderator"] != true || live["is_deleted"] != true || live["content"] != "" {
		t.Errorf("live message_deleted: %v", live)
	}

	b := dial(t, s, "/ws/chat/", bob.Access)
	b.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "since_version": since})
	if m := b.next("message_deleted").obj("message"); m.int("id") != msg || m["removed_by_moderator"] != true {
		t.Errorf("since_version replay: %v", m)
	}
	c := dial(t, s, "/ws/chat/", bob.Access)
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": 0})
	if m := c.next("new_message").obj("message"); m.int("id") != msg || m["removed_by_moderator"] != true || m["is_deleted"] != true {
		t.Errorf("last_message_id replay: %v", m)
	}
}

// deactivatingHub deactivates a user just before a socket of theirs
// subscribes to the user's events: the event that closes their sockets
// is published while the new socket is not listening yet.
type deactivatingHub struct {
	ws.Hub
	user  int64
	do    func() error
	once  sync.Once
	doErr chan error
}

func (h *deactivatingHub) Subscribe(t hub.Topic, s hub.Subscriber) {
	if t == hub.UserTopic(h.user) {
		h.once.Do(func() { h.doErr <- h.do() })
	}
	h.Hub.Subscribe(t, s)
}

// A deactivation that lands between a socket's handshake and its
// subscription still closes it: the socket checks the account again once
// it listens.
func TestDeactivation_WhileTheSocketConnects(t *testing.T) {
	s := servertest.Start(t)
	bob := s.Register(t, "bob")
	mod := s.Staff(t, "mod")
	dh := &deactivatingHub{Hub: s.Hub, user: bob.ID, doErr: make(chan error, 1)}
	dh.do = func() error {
		_, err := s.Moderate.SetActive(context.Background(), moderate.Actor{ID: mod.ID, Name: mod.Username}, bob.ID, false, "spam")
		return err
	}
	e := startEdge(t, s, func(o *ws.Options) { o.Hub = dh })
	conn, resp, err := dialRaw(t, e.url+"?token="+bob.Access, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	c := wrap(t, conn)
	if err := <-dh.doErr; err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	if code, reason := c.closeCode(); code != 4001 || reason != "account disabled" {
		t.Errorf("socket closed with %d %q, want 4001 \"account disabled\"", code, reason)
	}
}
