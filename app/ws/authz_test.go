package ws_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/server/servertest"
)

// relogin gives u fresh tokens.
func relogin(t *testing.T, s *servertest.Server, u *servertest.User) {
	t.Helper()
	r := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": servertest.Password})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", u.Username, r.Status, r.Body)
	}
	m := r.Map(t)
	u.Access, u.Refresh = m["access"].(string), m["refresh"].(string)
}

// quiet fails if any frame of these types reaches c within d.
func quiet(t *testing.T, c *client, d time.Duration, types ...string) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				t.Fatalf("connection closed (%v)", c.closeErr())
			}
			for _, typ := range types {
				if f.typ() == typ {
					t.Errorf("unexpected %s frame: %v", typ, f)
				}
			}
		case <-deadline:
			return
		}
	}
}

// Every client frame × every kind of caller, on the socket: no one joins,
// writes, types or marks read where they do not belong, and a conversation
// they are not in looks exactly like one that does not exist.
func TestAuthorizationMatrix_Socket(t *testing.T) {
	clk := servertest.NewClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	owner, member, other, third := s.Register(t, "owner"), s.Register(t, "member"), s.Register(t, "other"), s.Register(t, "third")
	staff, gone := s.Staff(t, "staff"), s.Register(t, "gone")
	leaver := s.Register(t, "leaver") // deletes their account at the end
	group := s.Conversation(t, owner, member, third, gone, leaver)
	msg := s.Send(t, owner, group, "hello")
	elsewhere := s.Conversation(t, other, third) // the other user's own
	expired := owner.Access
	clk.Advance(16 * time.Minute) // past the access lifetime
	for _, u := range []*servertest.User{&owner, &member, &other, &staff, &gone, &leaver} {
		relogin(t, s, u)
	}
	const missing = 999999

	t.Run("a deactivated user: 4001 account disabled, open sockets closed", func(t *testing.T) {
		// A socket open before, and a ticket issued before.
		open := dial(t, s, "/ws/conversations/"+itoa(group)+"/", gone.Access)
		open.next("joined")
		r := s.Do(t, http.MethodPost, "/api/auth/ws-ticket/", gone.Access, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("ticket: %d %s", r.Status, r.Body)
		}
		ticket := r.Map(t)["ticket"].(string)
		if r := s.Do(t, http.MethodPost, "/api/admin/users/"+itoa(gone.ID)+"/deactivate/", staff.Access, map[string]string{"reason": "matrix"}); r.Status != http.StatusOK {
			t.Fatalf("deactivate: %d %s", r.Status, r.Body)
		}
		if code, reason := open.closeCode(); code != 4001 || reason != "account disabled" {
			t.Errorf("the open socket closed %d %q, want 4001 \"account disabled\"", code, reason)
		}
		for _, path := range []string{"/ws/chat/", "/ws/conversations/" + itoa(group) + "/", "/ws/conversations/" + itoa(missing) + "/", "/ws/chat/?ticket=" + ticket} {
			token := gone.Access
			if strings.Contains(path, "ticket=") {
				token = ""
			}
			c := dialNoWait(t, s, path, token)
			if f := c.nextAnyOrClose(); f != nil {
				t.Errorf("%s: got %v before the close", path, f)
			}
			if code, reason := c.closeCode(); code != 4001 || reason != "account disabled" {
				t.Errorf("%s: close %d %q, want 4001 \"account disabled\"", path, code, reason)
			}
		}
	})

	t.Run("without a valid access token: 4001 before anything", func(t *testing.T) {
		for name, token := range map[string]string{"no token": "", "expired token": expired, "refresh token": owner.Refresh} {
			for _, path := range []string{"/ws/chat/", "/ws/conversations/" + itoa(group) + "/", "/ws/conversations/" + itoa(missing) + "/"} {
				c := dialNoWait(t, s, path, token)
				if f := c.nextAnyOrClose(); f != nil {
					t.Errorf("%s on %s: got %v before the close", name, path, f)
				}
				if code, _ := c.closeCode(); code != 4001 {
					t.Errorf("%s on %s: close %d, want 4001", name, path, code)
				}
			}
		}
	})

	t.Run("the URL form: 4004 alike for a foreign and a missing conversation", func(t *testing.T) {
		foreign := dialNoWait(t, s, "/ws/conversations/"+itoa(group)+"/", other.Access)
		code1, reason1 := foreign.closeCode()
		absent := dialNoWait(t, s, "/ws/conversations/"+itoa(missing)+"/", other.Access)
		code2, reason2 := absent.closeCode()
		if code1 != 4004 || code1 != code2 || reason1 != reason2 {
			t.Errorf("foreign conversation: %d %q; missing one: %d %q; want the same 4004", code1, reason1, code2, reason2)
		}
		for _, u := range []servertest.User{owner, member} {
			c := dialNoWait(t, s, "/ws/conversations/"+itoa(group)+"/", u.Access)
			c.next("connection_established")
			if f := c.next("joined"); f.int("conversation_id") != group {
				t.Errorf("%s: joined %v", u.Username, f)
			}
		}
	})

	// Watchers: a second socket of the owner and of the member, joined,
	// see everything published to the group.
	watchers := []*client{dial(t, s, "/ws/chat/", owner.Access), dial(t, s, "/ws/chat/", member.Access)}
	for _, w := range watchers {
		w.join(group)
	}
	live := []string{"new_message", "typing", "read_receipt", "message_updated", "message_deleted"}

	t.Run("the other user", func(t *testing.T) {
		c := dial(t, s, "/ws/chat/", other.Access)
		// The same frame about a missing conversation, for comparison.
		for _, fr := range []map[string]any{
			{"type": "join_conversation", "conversation_id": group},
			{"type": "join_conversation", "conversation_id": group, "last_message_id": 0},
			{"type": "new_message", "conversation_id": group, "content": "let me in"},
			{"type": "typing", "conversation_id": group},
			{"type": "typing", "conversation_id": group, "is_typing": false},
			{"type": "read_receipt", "conversation_id": group, "message_id": msg},
		} {
			c.send(fr)
			foreign := c.next("error")
			fr["conversation_id"] = missing
			c.send(fr)
			absent := c.next("error")
			if foreign["code"] != "not_found" || foreign["code"] != absent["code"] || foreign["detail"] != absent["detail"] {
				t.Errorf("%v: %v for a foreign conversation, %v for a missing one", fr["type"], foreign, absent)
			}
		}
		// A message of a conversation they are not in, named in their
		// own: the same answer as a message that does not exist.
		c.send(map[string]any{"type": "read_receipt", "conversation_id": elsewhere, "message_id": msg})
		foreign := c.next("error")
		c.send(map[string]any{"type": "read_receipt", "conversation_id": elsewhere, "message_id": missing})
		absent := c.next("error")
		if foreign["code"] != "invalid" || foreign["detail"] != absent["detail"] {
			t.Errorf("read_receipt of a foreign message: %v; of a missing one: %v", foreign, absent)
		}
		// Leaving is harmless and says as little.
		c.send(map[string]any{"type": "leave_conversation", "conversation_id": group})
		left1 := c.next("left")
		c.send(map[string]any{"type": "leave_conversation", "conversation_id": missing})
		left2 := c.next("left")
		if len(left1) != len(left2) {
			t.Errorf("left %v for a foreign conversation, %v for a missing one", left1, left2)
		}
		// Someone else's token does not take over the socket.
		for name, token := range map[string]string{"the owner's": owner.Access, "expired": expired, "a refresh token": other.Refresh} {
			c.send(map[string]any{"type": "authenticate", "token": token})
			if f := c.next("error"); f["code"] != "forbidden" {
				t.Errorf("authenticate with %s token: %v, want forbidden", name, f)
			}
		}
		c.send(map[string]any{"type": "authenticate", "token": other.Access})
		c.next("authenticated")
		c.send(map[string]any{"type": "ping"})
		c.next("pong")

		for _, w := range watchers {
			quiet(t, w, 300*time.Millisecond, live...)
		}
		if r := s.Do(t, http.MethodGet, "/api/conversations/"+itoa(group)+"/messages/", owner.Access, nil); len(r.Map(t)["results"].([]any)) != 1 {
			t.Errorf("the group has messages %s, want only the owner's", r.Body)
		}
	})

	t.Run("staff, in no conversation: like any other user", func(t *testing.T) {
		c := dial(t, s, "/ws/chat/", staff.Access)
		for _, fr := range []map[string]any{
			{"type": "join_conversation", "conversation_id": group},
			{"type": "new_message", "conversation_id": group, "content": "moderating"},
			{"type": "typing", "conversation_id": group},
			{"type": "read_receipt", "conversation_id": group, "message_id": msg},
		} {
			c.send(fr)
			foreign := c.next("error")
			fr["conversation_id"] = missing
			c.send(fr)
			absent := c.next("error")
			if foreign["code"] != "not_found" || foreign["code"] != absent["code"] || foreign["detail"] != absent["detail"] {
				t.Errorf("%v: %v for a foreign conversation, %v for a missing one", fr["type"], foreign, absent)
			}
		}
		// A deactivated user's token does not take over a socket.
		c.send(map[string]any{"type": "authenticate", "token": gone.Access})
		if f := c.next("error"); f["code"] != "forbidden" {
			t.Errorf("authenticate with a deactivated user's token: %v, want forbidden", f)
		}
		for _, w := range watchers {
			quiet(t, w, 300*time.Millisecond, live...)
		}
	})

	// The blocked user: in the group with the owner, who blocks them
	// (after the watchers opened: the block reaches open sockets).
	blocked := s.Register(t, "blocked")
	if r := s.Do(t, http.MethodPost, "/api/conversations/"+itoa(group)+"/participants/", owner.Access, map[string]any{"user_id": blocked.ID}); r.Status != http.StatusCreated {
		t.Fatalf("add the blocked user: %d %s", r.Status, r.Body)
	}
	direct := s.Conversation(t, blocked, owner)
	setBlock(t, s, owner, blocked.ID, true)

	t.Run("the blocked user", func(t *testing.T) {
		c := dial(t, s, "/ws/chat/", blocked.Access)
		// Where the owner blocks them: refused, with the block's code.
		c.send(map[string]any{"type": "new_message", "conversation_id": direct, "content": "hear me"})
		if f := c.next("error"); f["code"] != "blocked" {
			t.Errorf("new_message to the owner: %v, want blocked", f)
		}
		// In the group: they write, type and read like any member; the
		// owner's socket gets their message but not their typing.
		c.join(group)
		c.send(map[string]any{"type": "new_message", "conversation_id": group, "content": "from the blocked user"})
		ack := c.next("message_ack")
		c.send(map[string]any{"type": "typing", "conversation_id": group})
		c.send(map[string]any{"type": "read_receipt", "conversation_id": group, "message_id": ack.obj("message").int("id")})
		c.send(map[string]any{"type": "join_conversation", "conversation_id": direct})
		c.next("joined") // reading their direct conversation is still theirs
		for i, w := range watchers {
			if f := w.next("new_message"); f.obj("message")["content"] != "from the blocked user" {
				t.Errorf("new_message %v", f)
			}
			f := w.nextOf("typing", "read_receipt")
			switch {
			case i == 0 && f.typ() != "read_receipt":
				t.Errorf("the owner got %v from the user they block, want no typing", f)
			case i == 1 && (f.typ() != "typing" || f.int("user_id") != blocked.ID):
				t.Errorf("the member got %v, want the blocked user's typing", f)
			}
		}
		if r := s.Do(t, http.MethodGet, "/api/conversations/"+itoa(direct)+"/messages/", owner.Access, nil); len(r.Map(t)["results"].([]any)) != 0 {
			t.Errorf("the direct conversation has messages %s, want none", r.Body)
		}
		c.send(map[string]any{"type": "leave_conversation", "conversation_id": group})
		c.next("left")
	})

	t.Run("owner and participant", func(t *testing.T) {
		for _, u := range []servertest.User{owner, member} {
			c := dial(t, s, "/ws/chat/", u.Access)
			c.join(group)
			c.send(map[string]any{"type": "new_message", "conversation_id": group, "content": "from " + u.Username})
			ack := c.next("message_ack")
			c.send(map[string]any{"type": "typing", "conversation_id": group})
			c.send(map[string]any{"type": "read_receipt", "conversation_id": group, "message_id": ack.obj("message").int("id")})
			c.send(map[string]any{"type": "authenticate", "token": u.Access})
			c.next("authenticated")
			for _, w := range watchers {
				if f := w.next("new_message"); f.obj("message")["content"] != "from "+u.Username {
					t.Errorf("new_message %v", f)
				}
				if f := w.next("typing"); f.int("user_id") != u.ID {
					t.Errorf("typing %v", f)
				}
				if f := w.next("read_receipt"); f.int("user_id") != u.ID {
					t.Errorf("read_receipt %v", f)
				}
			}
			c.send(map[string]any{"type": "leave_conversation", "conversation_id": group})
			c.next("left")
		}
	})

	t.Run("a deleted user", func(t *testing.T) {
		var ticket struct{ Ticket string }
		s.Do(t, http.MethodPost, "/api/auth/ws-ticket/", leaver.Access, nil).JSON(t, &ticket)
		said := s.Send(t, leaver, group, "soon gone")
		for _, w := range watchers {
			w.next("new_message")
		}
		open := dial(t, s, "/ws/conversations/"+itoa(group)+"/", leaver.Access)
		open.next("joined")
		if r := s.Do(t, http.MethodDelete, "/api/users/me/", leaver.Access, map[string]string{"password": servertest.Password}); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		// Its open socket closes at once; its tokens and its ticket open
		// none.
		if code, reason := open.closeCode(); code != 4001 || reason != "account deleted" {
			t.Errorf("the open socket closed %d %q, want 4001 \"account deleted\"", code, reason)
		}
		for name, path := range map[string]string{
			"token":              "/ws/chat/?token=" + leaver.Access,
			"token, URL form":    "/ws/conversations/" + itoa(group) + "/?token=" + leaver.Access,
			"ticket":             "/ws/chat/?ticket=" + ticket.Ticket,
			"refresh as a token": "/ws/chat/?token=" + leaver.Refresh,
		} {
			c := dialNoWait(t, s, path, "")
			if f := c.nextAnyOrClose(); f != nil {
				t.Errorf("%s: got %v before the close", name, f)
			}
			if code, _ := c.closeCode(); code != 4001 {
				t.Errorf("%s: close %d, want 4001", name, code)
			}
		}
		// Nor does its token take over another's socket.
		c := dial(t, s, "/ws/chat/", other.Access)
		c.send(map[string]any{"type": "authenticate", "token": leaver.Access})
		if f := c.next("error"); f["code"] != "forbidden" {
			t.Errorf("authenticate with a deleted user's token: %v, want forbidden", f)
		}
		// The others see its message go, from "Deleted user".
		for _, w := range watchers {
			f := w.next("message_deleted")
			m := f.obj("message")
			if m.int("id") != said || m["content"] != "" || m.obj("sender")["username"] != chat.DeletedName {
				t.Errorf("message_deleted %v", f)
			}
		}
	})
}

// A participant removed from a conversation stops getting its events on
// a socket that had joined it, and can no longer act in it.
func TestRemovedParticipant_SocketStopsReceiving(t *testing.T) {
	s := servertest.Start(t)
	owner, member, third := s.Register(t, "owner"), s.Register(t, "member"), s.Register(t, "third")
	group := s.Conversation(t, owner, member, third)
	removed := dial(t, s, "/ws/conversations/"+itoa(group)+"/", member.Access)
	removed.next("joined")
	stays := dial(t, s, "/ws/conversations/"+itoa(group)+"/", third.Access)
	stays.next("joined")

	if r := s.Do(t, http.MethodDelete, "/api/conversations/"+itoa(group)+"/participants/"+itoa(member.ID)+"/", owner.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	removed.next("conversation_updated") // the last word about it
	secret := s.Send(t, owner, group, "after you left")
	owc := dial(t, s, "/ws/chat/", owner.Access)
	owc.join(group)
	owc.send(map[string]any{"type": "typing", "conversation_id": group})
	owc.send(map[string]any{"type": "read_receipt", "conversation_id": group, "message_id": secret})
	if f := stays.next("new_message"); f.obj("message").int("id") != secret {
		t.Fatalf("the remaining participant got %v", f)
	}
	stays.next("typing")
	stays.next("read_receipt")
	quiet(t, removed, 300*time.Millisecond, "new_message", "typing", "read_receipt", "message_updated", "message_deleted")

	for _, fr := range []map[string]any{
		{"type": "new_message", "conversation_id": group, "content": "still here?"},
		{"type": "typing", "conversation_id": group},
		{"type": "read_receipt", "conversation_id": group, "message_id": secret},
		{"type": "join_conversation", "conversation_id": group},
	} {
		removed.send(fr)
		if f := removed.next("error"); f["code"] != "not_found" {
			t.Errorf("%v after removal: %v, want not_found", fr["type"], f)
		}
	}
	quiet(t, stays, 300*time.Millisecond, "new_message", "typing", "read_receipt")
}

// downStore answers every account lookup with unavailable while down:
// a database that does not answer.
type downStore struct {
	chat.Store
	down atomic.Bool
}

func (s *downStore) UserByID(ctx context.Context, id int64) (chat.Account, error) {
	if s.down.Load() {
		return chat.Account{}, chat.ErrUnavailable
	}
	return s.Store.UserByID(ctx, id)
}

// An authenticate frame the database cannot check gets unavailable (the
// token may be fine: send it again later), not forbidden, which would
// tell the client its token is bad.
func TestAuthenticateFrame_DatabaseAwayIsUnavailable(t *testing.T) {
	store := &downStore{}
	s := servertest.Start(t, servertest.WithStore(func(st chat.Store) chat.Store { store.Store = st; return store }))
	alice := s.Register(t, "alice")
	c := dial(t, s, "/ws/chat/", alice.Access)
	// The socket's setup reads the account too: it is over when a ping
	// is answered.
	c.send(map[string]any{"type": "ping"})
	c.next("pong")

	store.down.Store(true)
	for i := range 5 {
		rid := fmt.Sprint("a", i)
		c.send(map[string]any{"type": "authenticate", "token": alice.Access, "request_id": rid})
		if f := c.next("error"); f["code"] != "unavailable" || f["request_id"] != rid {
			t.Fatalf("authenticate while the database is away: %v, want an unavailable error frame", f)
		}
	}
	// An outage is logged once per interval, not once per frame.
	if n := strings.Count(s.Logs.String(), "ws internal error"); n != 1 {
		t.Errorf("%d log lines for 5 unavailable frames, want 1:\n%s", n, s.Logs.String())
	}
	store.down.Store(false)
	c.send(map[string]any{"type": "authenticate", "token": alice.Access})
	c.next("authenticated")
}
