package browsertest

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

// TestConsole_SyncOnReconnect: Bob's console goes offline; meanwhile Alice
// edits one message, deletes another, sends a third, reacts to one and
// renames the group over REST. When Bob's console connects again it
// rejoins with since_version, gets the edit, the deletion and the
// reactions replayed before joined (keeping his own reaction his),
// catches the list up through /api/sync/, and shows all of it without a
// reload.
func TestConsole_SyncOnReconnect(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	conv := s.Conversation(t, alice, bob, carol)
	edited := idOf(post(t, s, alice, conv, "Meet at 9", 0))
	deleted := idOf(post(t, s, alice, conv, "Bring snacks", 0))
	seeYou := idOf(post(t, s, alice, conv, "See you", 0))
	react := func(u servertest.User, emoji string) {
		t.Helper()
		if r := s.Do(t, http.MethodPut, fmt.Sprintf("/api/messages/%d/reactions/%s/", seeYou, url.PathEscape(emoji)), u.Access, nil); r.Status != http.StatusOK {
			t.Fatalf("react %s: %d %s", emoji, r.Status, r.Body)
		}
	}
	react(bob, "🎉")

	b := e.signIn(bob)
	b.open(conv)
	b.expectMessages([]string{"Meet at 9", "Bring snacks", "See you"})
	item := fmt.Sprintf(`[data-testid="conversation-item"][data-conversation-id="%d"] [data-testid=conversation-title]`, conv)
	b.waitFor("the list", fmt.Sprintf(`document.querySelector(%q).textContent === 'test'`, item))
	b.waitFor("a sync cursor", `performance.getEntriesByType('resource').some((e) => /\/api\/sync\/$/.test(new URL(e.name).pathname) && !new URL(e.name).search)`)

	// Offline, from the developer panel.
	b.click("devpanel-toggle")
	b.click("dev-connect-toggle")
	b.waitFor("offline", `document.querySelector('[data-testid=connection-status]').dataset.status === 'offline'`)
	b.shot("offline")

	do := func(method, path string, body any, want int) {
		t.Helper()
		if r := s.Do(t, method, path, alice.Access, body); r.Status != want {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
	}
	do(http.MethodPatch, fmt.Sprintf("/api/messages/%d/", edited), map[string]string{"content": "Meet at 10"}, http.StatusOK)
	do(http.MethodDelete, fmt.Sprintf("/api/messages/%d/", deleted), nil, http.StatusNoContent)
	post(t, s, alice, conv, "Sent while you were offline", 0)
	react(alice, "🎉")
	react(alice, "👍")
	do(http.MethodPatch, fmt.Sprintf("/api/conversations/%d/", conv), map[string]string{"title": "Weekend plans"}, http.StatusOK)
	if eval[string](b, `document.querySelector('[data-testid=connection-status]').dataset.status`) != "offline" {
		t.Fatal("bob's console came back on its own")
	}

	b.click("dev-connect-toggle")
	b.waitFor("live again", `document.querySelector('[data-testid=connection-status]').dataset.status === 'live'`)
	b.waitMessage("Sent while you were offline")
	b.waitMessage("Meet at 10")
	b.waitFor("the tombstone", fmt.Sprintf(`(() => { const el = document.querySelector(%q);
	  return el && el.classList.contains('deleted') && el.querySelector('[data-testid=message-content]').textContent === 'Message deleted'; })()`, msgSel(deleted, "")))
	b.waitFor("the new title in the list", fmt.Sprintf(`document.querySelector(%q).textContent === 'Weekend plans'`, item))
	b.waitReaction(seeYou, "🎉", 2, true) // Bob's own, kept through the replay
	b.waitReaction(seeYou, "👍", 1, false)
	b.shot("synced")

	// How it got there: a join with since_version, the changes replayed
	// before its joined, and the list from /api/sync/?since=.
	frames := eval[[]map[string]any](b, `[...document.querySelectorAll('#frame-log > li[data-dir=in], #frame-log > li[data-dir=out]')]
	  .map((li) => { const pre = li.querySelector('pre'); let f = {}; try { f = JSON.parse(pre ? pre.textContent : '{}'); } catch {} return { dir: li.dataset.dir, f }; })`)
	lastJoin := -1
	for i, fr := range frames {
		if fr["dir"] == "out" && fr["f"].(map[string]any)["type"] == "join_conversation" {
			lastJoin = i
		}
	}
	if lastJoin < 0 {
		t.Fatal("no join_conversation in the frame log")
	}
	join := frames[lastJoin]["f"].(map[string]any)
	if v, ok := join["since_version"].(float64); !ok || v <= 0 {
		t.Errorf("the rejoin was %v, want since_version", join)
	}
	replayed := map[string]bool{}
	for _, fr := range frames[lastJoin+1:] {
		f := fr["f"].(map[string]any)
		if fr["dir"] != "in" {
			continue
		}
		if f["type"] == "joined" {
			break
		}
		if m, ok := f["message"].(map[string]any); ok {
			replayed[fmt.Sprintf("%v %v", f["type"], m["id"])] = true
		}
	}
	for _, want := range []string{fmt.Sprintf("message_updated %d", edited), fmt.Sprintf("message_deleted %d", deleted)} {
		if !replayed[want] {
			t.Errorf("replay before joined %v lacks %s", replayed, want)
		}
	}
	syncs := eval[[]string](b, `performance.getEntriesByType('resource').map((e) => e.name).filter((n) => new URL(n).pathname.endsWith('/api/sync/'))`)
	since := false
	for _, u := range syncs {
		if pu, err := url.Parse(u); err == nil && pu.Query().Get("since") != "" {
			since = true
		}
	}
	if !since {
		t.Errorf("no GET /api/sync/?since= after the reconnect: %q", syncs)
	}
	b.expectMessages([]string{"Meet at 10", "Message deleted", "See you", "Sent while you were offline"})
}
