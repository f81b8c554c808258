package ws_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

// Nothing a socket is opened or renewed with reaches the logs: not the
// access token (nor its signature, which is enough to replay it), not a
// ticket, not a refresh token, not even a bad token.
func TestSocketLogs_NeverShowTokens(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	r := s.Do(t, http.MethodPost, "/api/auth/ws-ticket/", alice.Access, nil)
	ticket, _ := r.Map(t)["ticket"].(string)
	if ticket == "" {
		t.Fatalf("ws-ticket: %d %s", r.Status, r.Body)
	}
	const bad = "not.a-real.token-but-secret-looking"

	c := dial(t, s, "/ws/chat/", alice.Access)
	c.send(map[string]any{"type": "authenticate", "token": alice.Access})
	c.next("authenticated")
	c.send(map[string]any{"type": "authenticate", "token": bad})
	c.next("error")
	c.send(map[string]any{"type": "authenticate", "token": alice.Refresh})
	c.next("error")
	c.close()
	conn, _, err := dialRaw(t, s.WSURL("/ws/chat/?ticket="+ticket), nil)
	if err != nil {
		t.Fatal(err)
	}
	wrap(t, conn).next("connection_established")
	for _, u := range []string{"/ws/chat/?ticket=" + ticket, "/ws/chat/?token=" + bad, "/ws/chat/?token=" + alice.Refresh,
		"/ws/conversations/" + itoa(conv) + "/?token=" + bob.Access} {
		conn, _, err := dialRaw(t, s.WSURL(u), nil)
		if err != nil {
			t.Fatal(err)
		}
		wrap(t, conn).nextAnyOrClose()
	}
	conn, _, err = dialRaw(t, s.WSURL("/ws/chat/"), http.Header{"Authorization": {"Bearer " + bob.Access}})
	if err != nil {
		t.Fatal(err)
	}
	wrap(t, conn).next("connection_established")

	logs := s.Logs.String()
	if !strings.Contains(logs, "/ws/chat/") {
		t.Fatalf("no log lines of the sockets:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"alice's access token": alice.Access, "bob's access token": bob.Access,
		"alice's token signature": alice.Access[strings.LastIndex(alice.Access, ".")+1:],
		"bob's token signature":   bob.Access[strings.LastIndex(bob.Access, ".")+1:],
		"refresh token":           alice.Refresh, "ticket": ticket, "bad token": bad,
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs show %s", name)
		}
	}
}
