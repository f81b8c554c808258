package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

// When the last admin leaves a group, the longest-standing member becomes
// admin: a group is never left without anyone who can manage it.
func TestGroup_LastAdminLeavingPromotesTheOldestMember(t *testing.T) {
	s := servertest.Start(t)
	owner, bob, carol := s.Register(t, "owner"), s.Register(t, "bob"), s.Register(t, "carol")
	conv := s.Conversation(t, owner, bob, carol)

	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/conversations/%d/participants/%d/", conv, owner.ID), owner.Access, nil), http.StatusNoContent)
	c := s.Do(t, http.MethodGet, p("/api/conversations/%d/", conv), bob.Access, nil).Map(t)
	if role := participant(t, c, bob.ID)["role"]; role != "admin" {
		t.Fatalf("bob's role after the only admin left = %v, want admin", role)
	}
	if role := participant(t, c, carol.ID)["role"]; role != "member" {
		t.Fatalf("carol's role = %v, want member (one admin is enough)", role)
	}
	// And the new admin can act as one.
	wantStatus(t, s.Do(t, http.MethodPatch, p("/api/conversations/%d/", conv), bob.Access, map[string]string{"title": "bob's now"}), http.StatusOK)
}

// Someone added to a group starts with nothing unread, not the whole
// history before they came.
func TestGroup_NewMemberStartsWithNothingUnread(t *testing.T) {
	s := servertest.Start(t)
	owner, bob, carol, dave := s.Register(t, "owner"), s.Register(t, "bob"), s.Register(t, "carol"), s.Register(t, "dave")
	conv := s.Conversation(t, owner, bob, carol)
	for range 5 {
		s.Send(t, bob, conv, "before dave")
	}
	wantStatus(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", conv), owner.Access, map[string]int64{"user_id": dave.ID}), http.StatusCreated)
	c := s.Do(t, http.MethodGet, p("/api/conversations/%d/", conv), dave.Access, nil).Map(t)
	if n := num(c["unread_count"]); n != 0 {
		t.Fatalf("dave's unread_count = %d right after joining, want 0", n)
	}
	s.Send(t, bob, conv, "after dave")
	c = s.Do(t, http.MethodGet, p("/api/conversations/%d/", conv), dave.Access, nil).Map(t)
	if n := num(c["unread_count"]); n != 1 {
		t.Fatalf("dave's unread_count = %d after one new message, want 1", n)
	}
}

// A client_id names one message: a retry in the same conversation returns
// it, a reuse in another conversation is a conflict and shows nothing of
// the first one.
func TestSend_ClientIDReusedInAnotherConversationConflicts(t *testing.T) {
	s := servertest.Start(t)
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	first := s.Conversation(t, alice, bob)
	second := s.Conversation(t, alice, carol)
	body := map[string]string{"content": "for bob only", "client_id": "c-1"}
	wantStatus(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/messages/", first), alice.Access, body), http.StatusCreated)
	wantStatus(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/messages/", first), alice.Access, body), http.StatusOK)
	r := s.Do(t, http.MethodPost, p("/api/conversations/%d/messages/", second), alice.Access, map[string]string{"content": "hi carol", "client_id": "c-1"})
	wantError(t, r, http.StatusConflict, "conflict")
	if strings.Contains(string(r.Body), "for bob only") {
		t.Fatalf("the conflict shows the other conversation's message: %s", r.Body)
	}
	if n := count(t, s, `SELECT count(*) FROM messages WHERE conversation_id = ?`, second); n != 0 {
		t.Fatalf("%d messages stored in the second conversation, want none", n)
	}
}

// A method a known route does not take is 405 with Allow, as DRF answers;
// an unknown path stays 404.
func TestRoutes_WrongMethodIs405(t *testing.T) {
	s := servertest.Start(t)
	alice := s.Register(t, "alice")
	for _, tc := range []struct {
		method, path, allow string
	}{
		{http.MethodPut, "/api/conversations/", "GET, POST"},
		{http.MethodDelete, "/api/auth/token/", "POST"},
		{http.MethodGet, "/api/messages/5/", "PATCH, DELETE"},
		{http.MethodPut, "/api/users/me", "GET, PATCH, DELETE"},
	} {
		r := s.Do(t, tc.method, tc.path, alice.Access, nil)
		wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
		if got := r.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
	wantError(t, s.Do(t, http.MethodPost, "/api/nothing/", alice.Access, nil), http.StatusNotFound, "not_found")
	wantError(t, s.Do(t, http.MethodGet, "/api/messages/abc/", alice.Access, nil), http.StatusNotFound, "not_found")
	// The health checks answer with or without a trailing slash.
	for _, path := range []string{"/healthz", "/healthz/", "/readyz/"} {
		if r := s.Do(t, http.MethodGet, path, "", nil); r.Status != http.StatusOK {
			t.Errorf("GET %s: %d", path, r.Status)
		}
	}
}
