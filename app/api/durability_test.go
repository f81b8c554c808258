package api_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

func TestRestart_KeepsDataAndTokens(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "durable"), s.Register(t, "stable")
	conv := s.Conversation(t, a, b)
	first := s.Send(t, a, conv, "first")
	edited := s.Send(t, b, conv, "draft")
	deleted := s.Send(t, a, conv, "gone soon")
	wantStatus(t, send(t, s, a, conv, map[string]string{"content": "idempotent", "client_id": "k1"}), http.StatusCreated)
	wantStatus(t, s.Do(t, http.MethodPatch, p("/api/messages/%d/", edited), b.Access, map[string]string{"content": "final"}), http.StatusOK)
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", deleted), a.Access, nil), http.StatusNoContent)
	wantStatus(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/read/", conv), b.Access, map[string]any{"message_id": first}), http.StatusOK)

	snapshot := func() [][]byte {
		t.Helper()
		var out [][]byte
		for _, path := range []string{
			"/api/users/me/",
			"/api/conversations/",
			p("/api/conversations/%d/", conv),
			p("/api/conversations/%d/messages/", conv),
		} {
			for _, u := range []servertest.User{a, b} {
				r := s.Do(t, http.MethodGet, path, u.Access, nil)
				wantStatus(t, r, http.StatusOK)
				out = append(out, r.Body)
			}
		}
		return out
	}
	before := snapshot()
	url := s.URL

	s.Restart()
	if s.URL != url {
		t.Fatalf("restart moved the server from %s to %s", url, s.URL)
	}
	// The old access tokens still work (the signing key is in the
	// database), and every answer is what it was.
	after := snapshot()
	for i := range before {
		if !bytes.Equal(before[i], after[i]) {
			t.Errorf("answer %d changed across the restart:\nbefore %s\nafter  %s", i, before[i], after[i])
		}
	}
	r := s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": a.Refresh})
	wantStatus(t, r, http.StatusOK)
	r = s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": b.Username, "password": servertest.Password})
	wantStatus(t, r, http.StatusOK)

	// A retried send after the restart still finds the original.
	r = send(t, s, a, conv, map[string]string{"content": "idempotent", "client_id": "k1"})
	wantStatus(t, r, http.StatusOK)
	// Ids keep growing.
	if id := s.Send(t, a, conv, "after restart"); id <= deleted {
		t.Errorf("new message id %d, not above %d", id, deleted)
	}
}
