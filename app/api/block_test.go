package api_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

func blockPath(id int64) string { return p("/api/users/%d/block/", id) }

// blockedList returns the ids of GET /api/users/blocked/ as u, checking
// each is the usual public user object.
func blockedList(t *testing.T, s *servertest.Server, u servertest.User) []int64 {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/api/users/blocked/", u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	m := r.Map(t)
	wantKeys(t, "block list", m, "results")
	list, ok := m["results"].([]any)
	if !ok {
		t.Fatalf("results %v, want a list", m["results"])
	}
	for _, v := range list {
		wantUser(t, v)
	}
	return ids(list)
}

// Blocking and unblocking are idempotent 204s; the block list shows the
// blocked users, newest first, and nothing to anyone else; blocking
// oneself or nobody is a clear error.
func TestBlock_PutDeleteIdempotentAndListed(t *testing.T) {
	s := servertest.Start(t)
	ann, bob, cy := s.Register(t, "ann"), s.Register(t, "bob"), s.Register(t, "cy")
	searchBefore := s.Do(t, http.MethodGet, "/api/users/?search=ann", bob.Access, nil)

	if got := blockedList(t, s, ann); len(got) != 0 {
		t.Fatalf("a new user's block list: %v", got)
	}
	for range 2 {
		wantStatus(t, s.Do(t, http.MethodPut, blockPath(bob.ID), ann.Access, nil), http.StatusNoContent)
	}
	wantStatus(t, s.Do(t, http.MethodPut, strings.TrimSuffix(blockPath(cy.ID), "/"), ann.Access, nil), http.StatusNoContent)
	if got := blockedList(t, s, ann); len(got) != 2 || got[0] != cy.ID || got[1] != bob.ID {
		t.Errorf("ann's block list %v, want cy then bob", got)
	}
	// Nobody learns who blocks them: bob's own list is empty, and ann
	// looks the same to him as before.
	if got := blockedList(t, s, bob); len(got) != 0 {
		t.Errorf("bob's block list %v, want empty", got)
	}
	if after := s.Do(t, http.MethodGet, "/api/users/?search=ann", bob.Access, nil); string(after.Body) != string(searchBefore.Body) {
		t.Errorf("ann as bob finds her: before the block %s, after %s", searchBefore.Body, after.Body)
	}

	for range 2 {
		wantStatus(t, s.Do(t, http.MethodDelete, blockPath(bob.ID), ann.Access, nil), http.StatusNoContent)
	}
	if got := blockedList(t, s, ann); len(got) != 1 || got[0] != cy.ID {
		t.Errorf("after unblocking bob: %v, want cy", got)
	}

	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		wantInvalid(t, s.Do(t, method, blockPath(ann.ID), ann.Access, nil), "non_field_errors")
		wantError(t, s.Do(t, method, blockPath(999999), ann.Access, nil), http.StatusNotFound, "not_found")
		wantError(t, s.Do(t, method, "/api/users/abc/block/", ann.Access, nil), http.StatusNotFound, "not_found")
		wantError(t, s.Do(t, method, "/api/users/-3/block/", ann.Access, nil), http.StatusNotFound, "not_found")
		wantError(t, s.Do(t, method, blockPath(bob.ID), "", nil), http.StatusUnauthorized, "not_authenticated")
	}
	wantError(t, s.Do(t, http.MethodGet, "/api/users/blocked/", "", nil), http.StatusUnauthorized, "not_authenticated")
	if n := count(t, s, `SELECT count(*) FROM blocks`); n != 1 {
		t.Errorf("%d blocks stored, want 1 (ann blocks cy)", n)
	}
}

// One user blocks at most chat.MaxBlocks others: past it a block is a
// clear 400 that stores nothing, while blocking someone already blocked
// stays a 204, and unblocking one makes room again.
func TestBlock_AtMostMaxBlocks(t *testing.T) {
	s := servertest.Start(t)
	ann, bob, cy := s.Register(t, "ann"), s.Register(t, "bob"), s.Register(t, "cy")
	// ann blocks bob and MaxBlocks-1 accounts made in the database.
	wantStatus(t, s.Do(t, http.MethodPut, blockPath(bob.ID), ann.Access, nil), http.StatusNoContent)
	s.BlockMany(t, ann, chat.MaxBlocks-1)
	if got := blockedList(t, s, ann); len(got) != chat.MaxBlocks {
		t.Fatalf("%d blocked, want %d", len(got), chat.MaxBlocks)
	}

	past := s.Do(t, http.MethodPut, blockPath(cy.ID), ann.Access, nil)
	wantInvalid(t, past, "non_field_errors")
	if want := fmt.Sprintf("You can block at most %d users.", chat.MaxBlocks); !strings.Contains(string(past.Body), want) {
		t.Errorf("past the limit: %s, want %q", past.Body, want)
	}
	if n := count(t, s, `SELECT count(*) FROM blocks WHERE blocked_id = `+fmt.Sprint(cy.ID)); n != 0 {
		t.Errorf("%d blocks of cy stored past the limit", n)
	}
	wantStatus(t, s.Do(t, http.MethodPut, blockPath(bob.ID), ann.Access, nil), http.StatusNoContent)
	wantStatus(t, s.Do(t, http.MethodDelete, blockPath(bob.ID), ann.Access, nil), http.StatusNoContent)
	wantStatus(t, s.Do(t, http.MethodPut, blockPath(cy.ID), ann.Access, nil), http.StatusNoContent)
	if got := blockedList(t, s, ann); len(got) != chat.MaxBlocks || got[0] != cy.ID {
		t.Errorf("after unblocking bob and blocking cy: %d blocked, first %v; want %d, cy first", len(got), got[:1], chat.MaxBlocks)
	}
}

// A blocked user cannot start a direct conversation with the blocker,
// send in their direct conversation, or add the blocker to a group
// (403 blocked, nothing stored, no event); the blocker still can, both
// stay in their groups and write there, and unblocking lifts it all.
func TestBlock_BlockedUserIsRefusedWhereTheBlockerIs(t *testing.T) {
	s := servertest.Start(t)
	ann, bob, cy, dee := s.Register(t, "ann"), s.Register(t, "bob"), s.Register(t, "cy"), s.Register(t, "dee")
	direct := s.Conversation(t, bob, ann)
	group := s.Conversation(t, ann, bob, cy)
	bobsGroup := s.Conversation(t, bob, cy, dee)
	s.Send(t, bob, direct, "hi ann")
	wantStatus(t, s.Do(t, http.MethodPut, blockPath(bob.ID), ann.Access, nil), http.StatusNoContent)

	events := listen(t, s, hub.ConversationTopic(direct))
	annEvents := listen(t, s, hub.UserTopic(ann.ID))
	before := count(t, s, `SELECT count(*) FROM messages`)
	convs := count(t, s, `SELECT count(*) FROM conversations`)
	refusals := []struct {
		name, method, path string
		body               any
	}{
		{"send in the direct conversation", http.MethodPost, p("/api/conversations/%d/messages/", direct), map[string]string{"content": "please"}},
		{"send with a client_id", http.MethodPost, p("/api/conversations/%d/messages/", direct), map[string]string{"content": "please", "client_id": "c1"}},
		{"start a direct conversation", http.MethodPost, "/api/conversations/", map[string]any{"participant_ids": []int64{ann.ID}}},
		{"start a group with her", http.MethodPost, "/api/conversations/", map[string]any{"participant_ids": []int64{cy.ID, ann.ID}, "is_group": true}},
		{"add her to his group", http.MethodPost, p("/api/conversations/%d/participants/", bobsGroup), map[string]any{"user_id": ann.ID}},
	}
	for _, tc := range refusals {
		m := wantError(t, s.Do(t, tc.method, tc.path, bob.Access, tc.body), http.StatusForbidden, "blocked")
		if regexp.MustCompile(`\bann\b`).MatchString(m["detail"].(string)) {
			t.Errorf("%s: the detail %q names the blocker", tc.name, m["detail"])
		}
	}
	if n := count(t, s, `SELECT count(*) FROM messages`); n != before {
		t.Errorf("%d messages stored by refused sends", n-before)
	}
	if n := count(t, s, `SELECT count(*) FROM conversations`); n != convs {
		t.Errorf("%d conversations made by refused requests", n-convs)
	}
	if n := count(t, s, `SELECT count(*) FROM participants WHERE conversation_id = ?`, bobsGroup); n != 3 {
		t.Errorf("bob's group has %d participants, want 3", n)
	}
	if got := events.ofType("new_message"); len(got) != 0 {
		t.Errorf("refused sends published %d new_message events", len(got))
	}
	if got := annEvents.ofType("conversation_updated"); len(got) != 0 {
		t.Errorf("ann got %d conversation_updated events from refused requests", len(got))
	}

	// The blocker writes to him, and anyone else may add her; in the
	// group both stay and write.
	wantStatus(t, send(t, s, ann, direct, map[string]string{"content": "I still can"}), http.StatusCreated)
	wantStatus(t, send(t, s, bob, group, map[string]string{"content": "in the group"}), http.StatusCreated)
	wantStatus(t, s.Do(t, http.MethodPost, "/api/conversations/", dee.Access, map[string]any{"participant_ids": []int64{ann.ID, bob.ID}, "is_group": true}), http.StatusCreated)
	// Group messages from him still reach her lists and history: her
	// client hides them by her block list.
	r := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", group), ann.Access, nil)
	wantStatus(t, r, http.StatusOK)
	if got := r.Map(t)["results"].([]any); len(got) != 1 {
		t.Errorf("ann's history of the group: %d messages, want bob's one", len(got))
	}

	wantStatus(t, s.Do(t, http.MethodDelete, blockPath(bob.ID), ann.Access, nil), http.StatusNoContent)
	wantStatus(t, send(t, s, bob, direct, map[string]string{"content": "thanks"}), http.StatusCreated)
	wantStatus(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", bobsGroup), bob.Access, map[string]any{"user_id": ann.ID}), http.StatusCreated)
	r = s.Do(t, http.MethodPost, "/api/conversations/", bob.Access, map[string]any{"participant_ids": []int64{ann.ID}})
	wantStatus(t, r, http.StatusOK) // the direct one they have
	if id := num(r.Map(t)["id"]); id != direct {
		t.Errorf("direct conversation %d, want %d", id, direct)
	}
}

// A retried send (the same client_id) after the block still gets its
// original, as the contract promises: nothing new is stored.
func TestBlock_RetriedSendGetsItsOriginal(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	direct := s.Conversation(t, bob, ann)
	body := map[string]string{"content": "sent before", "client_id": "once"}
	r := send(t, s, bob, direct, body)
	wantStatus(t, r, http.StatusCreated)
	id := num(r.Map(t)["id"])
	wantStatus(t, s.Do(t, http.MethodPut, blockPath(bob.ID), ann.Access, nil), http.StatusNoContent)
	r = send(t, s, bob, direct, body)
	wantStatus(t, r, http.StatusOK)
	if got := num(r.Map(t)["id"]); got != id {
		t.Errorf("retried send: message %d, want the original %d", got, id)
	}
}
