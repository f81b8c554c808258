package ws_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/cluster/redistest"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/db/postgres/pgtest"
)

// nextOf returns the next frame of one of types, discarding the others.
func (c *client) nextOf(types ...string) frame {
	c.t.Helper()
	for {
		if f := c.nextAny(); slices.Contains(types, f.typ()) {
			return f
		}
	}
}

func setBlock(t *testing.T, s *servertest.Server, blocker servertest.User, blocked int64, block bool) {
	t.Helper()
	method := http.MethodPut
	if !block {
		method = http.MethodDelete
	}
	if r := s.Do(t, method, "/api/users/"+itoa(blocked)+"/block/", blocker.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("%s block: %d %s", method, r.Status, r.Body)
	}
}

// typingFrom has u's socket, joined to conv, say it is typing.
func typingFrom(c *client, conv int64) {
	c.send(map[string]any{"type": "typing", "conversation_id": conv})
}

// A blocker's sockets get no typing from the user they block and no
// mention of theirs as a mention (a socket that has not joined the
// conversation gets it as a plain message notification; a joined one has
// the new_message), but still get their group messages; the block takes
// effect on sockets already open, and unblocking undoes it. Another
// member sees everything.
func TestBlock_SocketDropsTypingAndMentionsNotMessages(t *testing.T) {
	s := servertest.Start(t)
	ann, bob, cy := s.Register(t, "ann"), s.Register(t, "bob"), s.Register(t, "cy")
	group := s.Conversation(t, ann, bob, cy)
	annIn := dial(t, s, "/ws/chat/", ann.Access)
	annIn.join(group)
	annAway := dial(t, s, "/ws/chat/", ann.Access) // joined to nothing
	cyIn := dial(t, s, "/ws/chat/", cy.Access)
	cyIn.join(group)
	bobIn := dial(t, s, "/ws/chat/", bob.Access)
	bobIn.join(group)

	setBlock(t, s, ann, bob.ID, true) // on sockets already open

	// bob types, then cy: ann's joined socket gets cy's only; cy gets
	// bob's.
	typingFrom(bobIn, group)
	if f := cyIn.next("typing"); f.int("user_id") != bob.ID {
		t.Fatalf("cy got typing %v, want bob's", f)
	}
	typingFrom(cyIn, group)
	if f := annIn.next("typing"); f.int("user_id") != cy.ID {
		t.Errorf("ann got typing %v, want cy's only: she blocks bob", f)
	}

	// bob mentions both of them.
	bobIn.send(map[string]any{"type": "new_message", "conversation_id": group, "content": "hey @" + ann.Username + " and @" + cy.Username})
	ack := bobIn.next("message_ack")
	id := ack.obj("message").int("id")
	if f := annIn.next("new_message"); f.obj("message").int("id") != id {
		t.Errorf("ann's joined socket got %v, want bob's message %d (her client hides it)", f, id)
	}
	if f := annAway.nextOf("notification"); f["reason"] != "message" || f.obj("message").int("id") != id {
		t.Errorf("ann's other socket got %v, want a plain message notification of %d", f, id)
	}
	if f := cyIn.nextOf("notification"); f["reason"] != "mention" {
		t.Errorf("cy got %v, want bob's mention", f)
	}
	// cy mentions ann: a mention, to both of ann's sockets; the joined
	// one's first notification is this one, not bob's.
	cyIn.send(map[string]any{"type": "new_message", "conversation_id": group, "content": "@" + ann.Username + " look"})
	cyID := cyIn.next("message_ack").obj("message").int("id")
	for name, c := range map[string]*client{"joined": annIn, "away": annAway} {
		if f := c.nextOf("notification"); f["reason"] != "mention" || f.obj("message").int("id") != cyID {
			t.Errorf("ann's %s socket: %v, want cy's mention %d", name, f, cyID)
		}
	}

	// A socket opened after the block reads it from the store.
	annLater := dial(t, s, "/ws/chat/", ann.Access)
	annLater.join(group)
	time.Sleep(1100 * time.Millisecond) // past the typing interval of both
	typingFrom(bobIn, group)
	if f := cyIn.next("typing"); f.int("user_id") != bob.ID {
		t.Fatalf("cy got typing %v, want bob's", f)
	}
	typingFrom(cyIn, group)
	if f := annLater.next("typing"); f.int("user_id") != cy.ID {
		t.Errorf("a socket opened after the block got typing %v, want cy's only", f)
	}
	if f := annIn.next("typing"); f.int("user_id") != cy.ID {
		t.Errorf("ann got typing %v, want cy's only", f)
	}

	// In the direct conversation, bob cannot write to her at all.
	direct := s.Conversation(t, ann, bob)
	bobIn.send(map[string]any{"type": "new_message", "conversation_id": direct, "content": "please", "request_id": "r1"})
	if f := bobIn.next("error"); f["code"] != "blocked" || f["request_id"] != "r1" {
		t.Errorf("bob's send to ann: %v, want a blocked error frame", f)
	}
	bobIn.send(map[string]any{"type": "ping"})
	bobIn.next("pong") // the socket stays open

	setBlock(t, s, ann, bob.ID, false)
	time.Sleep(1100 * time.Millisecond) // past bob's typing interval
	typingFrom(bobIn, group)
	if f := annIn.next("typing"); f.int("user_id") != bob.ID {
		t.Errorf("after unblocking, ann got typing %v, want bob's", f)
	}
	bobIn.send(map[string]any{"type": "new_message", "conversation_id": group, "content": "@" + ann.Username + " again"})
	bobIn.next("message_ack")
	if f := annAway.nextOf("notification"); f["reason"] != "mention" {
		t.Errorf("after unblocking, ann's other socket got %v, want a mention", f)
	}
}

// Across nodes: a block made on node B filters, on the blocker's sockets
// on node A, the typing and mentions that the blocked user sends on node
// B: the block's own event and the typing both cross through Redis
// (CONFAB_TEST_DATABASE_URL and redis-server; skipped without them,
// except under CI=true).
func TestBlock_TakesEffectAcrossNodes(t *testing.T) {
	dbURL := pgtest.URL(t)
	rds := redistest.Start(t)
	prefix := "blocktest" + strings.ReplaceAll(t.Name(), "/", "_") + time.Now().Format("150405.000000") + ":"
	join := func(c *config.Config, o *server.Options) {
		c.DatabaseURL, c.RedisURL = dbURL, rds.URL()
		o.Cluster.Prefix = prefix
	}
	a := servertest.Start(t, join)
	b := servertest.Start(t, join)
	ann, bob, cy := a.Register(t, "ann"), a.Register(t, "bob"), a.Register(t, "cy")
	group := a.Conversation(t, ann, bob, cy)

	annOnA := dial(t, a, "/ws/chat/", ann.Access)
	annOnA.join(group)
	annAwayOnA := dial(t, a, "/ws/chat/", ann.Access)
	bobOnB := dial(t, b, "/ws/chat/", bob.Access)
	bobOnB.join(group)
	cyOnB := dial(t, b, "/ws/chat/", cy.Access)
	cyOnB.join(group)

	// Before the block, bob's typing crosses to ann's node.
	typingFrom(bobOnB, group)
	if f := annOnA.next("typing"); f.int("user_id") != bob.ID {
		t.Fatalf("ann on node A got %v, want bob's typing from node B", f)
	}
	time.Sleep(1100 * time.Millisecond) // past bob's typing interval

	setBlock(t, b, ann, bob.ID, true) // on node B, which publishes it to A
	typingFrom(bobOnB, group)
	typingFrom(cyOnB, group)
	if f := annOnA.next("typing"); f.int("user_id") != cy.ID {
		t.Errorf("ann on node A got typing %v, want cy's only: she blocked bob on node B", f)
	}
	bobOnB.send(map[string]any{"type": "new_message", "conversation_id": group, "content": "@" + ann.Username + " hello"})
	id := bobOnB.next("message_ack").obj("message").int("id")
	if f := annOnA.next("new_message"); f.obj("message").int("id") != id {
		t.Errorf("ann on node A got %v, want bob's group message %d", f, id)
	}
	if f := annAwayOnA.nextOf("notification"); f["reason"] != "message" || f.obj("message").int("id") != id {
		t.Errorf("ann's other socket on node A got %v, want a plain message notification", f)
	}
}
