package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

// GET /api/sync/: without since, the current cursor and nothing else;
// with it, what changed since, in pages; a client that follows it ends
// up with what the REST pages show.
func TestSync_CursorThenChangesInPages(t *testing.T) {
	s := servertest.Start(t)
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	before := s.Send(t, alice, s.Conversation(t, alice, bob), "before the cursor")

	r := s.Do(t, http.MethodGet, "/api/sync/", alice.Access, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("sync: %d %s", r.Status, r.Body)
	}
	m := r.Map(t)
	wantKeys(t, "sync", m, "conversations", "removed_conversation_ids", "messages", "cursor", "has_more")
	if len(m["conversations"].([]any))+len(m["messages"].([]any))+len(m["removed_conversation_ids"].([]any)) != 0 || m["has_more"] != false {
		t.Fatalf("sync without since = %v, want only a cursor", m)
	}
	cursor := m["cursor"].(string)

	group := s.Conversation(t, bob, alice, carol)
	hello := s.Send(t, bob, group, "hello")
	s.Send(t, bob, s.Conversation(t, bob, carol), "not alice's")
	if r := s.Do(t, http.MethodPatch, fmt.Sprintf("/api/messages/%d/", before), alice.Access, map[string]any{"content": "edited"}); r.Status != http.StatusOK {
		t.Fatalf("edit: %d", r.Status)
	}
	if r := s.Do(t, http.MethodPut, fmt.Sprintf("/api/messages/%d/reactions/%s/", before, url.PathEscape("👍")), alice.Access, nil); r.Status != http.StatusOK {
		t.Fatalf("react: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, http.MethodDelete, fmt.Sprintf("/api/conversations/%d/participants/%d/", group, alice.ID), alice.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %d %s", r.Status, r.Body)
	}

	// Pages of two.
	var convs, removed, msgs []int64
	pages := 0
	for {
		r := s.Do(t, http.MethodGet, "/api/sync/?limit=2&since="+url.QueryEscape(cursor), alice.Access, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("sync: %d %s", r.Status, r.Body)
		}
		m := r.Map(t)
		pages++
		for _, c := range m["conversations"].([]any) {
			cv := wantConversation(t, c)
			convs = append(convs, num(cv["id"]))
			// Reactions as alice sees them, in the last message too.
			if last, _ := cv["last_message"].(map[string]any); last != nil && num(last["id"]) == before {
				if rs := last["reactions"].([]any); len(rs) != 1 || rs[0].(map[string]any)["me"] != true {
					t.Errorf("last message reactions %v, want alice's own", rs)
				}
			}
		}
		for _, id := range m["removed_conversation_ids"].([]any) {
			removed = append(removed, num(id))
		}
		for _, msg := range m["messages"].([]any) {
			mm := wantMessage(t, msg)
			msgs = append(msgs, num(mm["id"]))
			if rs := mm["reactions"].([]any); num(mm["id"]) == before && (len(rs) != 1 || rs[0].(map[string]any)["me"] != true) {
				t.Errorf("message reactions %v, want alice's own", rs)
			}
		}
		cursor = m["cursor"].(string)
		if m["has_more"] != true {
			break
		}
	}
	// The group was left: it is removed (its message came before that,
	// while alice was in it, but the feed says where she stands now).
	if len(removed) != 1 || removed[0] != group {
		t.Errorf("removed %v, want [%d]", removed, group)
	}
	if len(msgs) != 1 || msgs[0] != before {
		t.Errorf("messages %v, want only the edit of %d (hello %d is in a conversation alice left)", msgs, before, hello)
	}
	if len(convs) != 1 {
		t.Errorf("conversations %v, want the direct one", convs)
	}
	if pages < 2 {
		t.Errorf("%d pages of two for 3 entries", pages)
	}

	// Caught up: nothing more, the same cursor.
	r = s.Do(t, http.MethodGet, "/api/sync/?since="+url.QueryEscape(cursor), alice.Access, nil)
	if m := r.Map(t); len(m["messages"].([]any)) != 0 || m["cursor"] != cursor {
		t.Errorf("after catching up: %v, want nothing new and cursor %s", m, cursor)
	}

	for _, bad := range []string{"since=", "since=bogus", "since=" + url.QueryEscape(cursor) + "x", "limit=0", "limit=501", "limit=x"} {
		r := s.Do(t, http.MethodGet, "/api/sync/?"+bad, alice.Access, nil)
		if r.Status != http.StatusBadRequest || r.Map(t)["code"] != "invalid" {
			t.Errorf("%s: %d %s, want 400 invalid", bad, r.Status, r.Body)
		}
	}
	if r := s.Do(t, http.MethodGet, "/api/sync/", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", r.Status)
	}
}
