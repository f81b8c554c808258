package browsertest

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/confab/confab/app/chat"
)

// TestConsole_BlockAndUnblock blocks a person from the conversation's
// details: their group messages collapse (one can be shown), their new
// ones arrive collapsed, the server has the block (their direct message
// to the blocker is refused), and unblocking shows them all again.
func TestConsole_BlockAndUnblock(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	group := s.Conversation(t, alice, bob, carol)
	direct := s.Conversation(t, bob, alice)
	before := idOf(post(t, s, bob, group, "Bob's first word", 0))
	fromCarol := idOf(post(t, s, carol, group, "Carol says hi", 0))

	a := e.signIn(alice)
	a.open(group)
	a.waitFor("bob's message, shown", fmt.Sprintf(`(() => { const el = document.querySelector(%q);
	  return el && el.dataset.blocked === undefined && el.querySelector('[data-testid=message-content]').textContent === "Bob's first word"; })()`, msgSel(before, "")))

	// Block bob from the details dialog.
	a.click("details-button")
	blockBtn := fmt.Sprintf(`[data-testid=participant-item][data-user-id="%d"] [data-testid=participant-block]`, bob.ID)
	a.waitFor("the Block button", fmt.Sprintf(`(() => { const b = document.querySelector(%q); return b && b.dataset.blocked === 'false' && b.textContent === 'Block'; })()`, blockBtn))
	if n := eval[int](a, fmt.Sprintf(`document.querySelectorAll('[data-testid=participant-item][data-user-id="%d"] [data-testid=participant-block]').length`, alice.ID)); n != 0 {
		t.Errorf("alice can block herself: %d buttons on her own row", n)
	}
	a.clickCSS(blockBtn)
	a.waitFor("the Unblock button", fmt.Sprintf(`(() => { const b = document.querySelector(%q); return b && b.dataset.blocked === 'true' && b.textContent === 'Unblock'; })()`, blockBtn))
	a.shot("details-blocked")
	a.click("details-close")

	r := s.Do(t, http.MethodGet, "/api/users/blocked/", alice.Access, nil)
	if list, _ := r.Map(t)["results"].([]any); len(list) != 1 || int64(list[0].(map[string]any)["id"].(float64)) != bob.ID {
		t.Fatalf("alice's block list after the click: %s", r.Body)
	}
	if r := s.Do(t, http.MethodPost, fmt.Sprintf("/api/conversations/%d/messages/", direct), bob.Access, map[string]string{"content": "hello?"}); r.Status != http.StatusForbidden {
		t.Errorf("bob's direct message after the block: %d %s, want 403", r.Status, r.Body)
	}

	collapsed := func(id int64) string {
		return fmt.Sprintf(`(() => { const el = document.querySelector(%q);
		  return el && el.dataset.blocked === 'true' && el.querySelector('[data-testid=message-blocked]') !== null &&
		    el.querySelector('[data-testid=message-content]') === null && !el.textContent.includes("Bob's"); })()`, msgSel(id, ""))
	}
	a.waitFor("bob's message, collapsed", collapsed(before))
	later := idOf(post(t, s, bob, group, "Bob's second word", 0))
	a.waitFor("bob's new message, collapsed as it arrives", collapsed(later))
	a.waitFor("carol's message, shown", fmt.Sprintf(`(() => { const el = document.querySelector(%q);
	  return el && el.dataset.blocked === undefined && el.querySelector('[data-testid=message-content]').textContent === 'Carol says hi'; })()`, msgSel(fromCarol, "")))
	a.waitFor("the list's preview, hidden", fmt.Sprintf(`(() => { const el = document.querySelector('[data-testid=conversation-item][data-conversation-id="%d"] [data-testid=conversation-preview]');
	  return el && el.textContent === 'Message from someone you blocked'; })()`, group))
	a.shot("collapsed")

	// One can be shown on demand; the others stay collapsed.
	a.clickCSS(msgSel(before, "[data-testid=message-blocked-show]"))
	a.waitFor("the shown one", fmt.Sprintf(`document.querySelector(%q).textContent === "Bob's first word"`, msgSel(before, "[data-testid=message-content]")))
	a.waitFor("the other, still collapsed", collapsed(later))

	// A reload keeps the block (from the server's list).
	a.open(direct)
	a.open(group)
	a.waitFor("bob's message, collapsed after switching back", collapsed(later))

	// Unblock: everything shows again.
	a.click("details-button")
	a.waitFor("the Unblock button", fmt.Sprintf(`document.querySelector(%q).dataset.blocked === 'true'`, blockBtn))
	a.clickCSS(blockBtn)
	a.waitFor("the Block button again", fmt.Sprintf(`document.querySelector(%q).dataset.blocked === 'false'`, blockBtn))
	a.click("details-close")
	a.waitFor("bob's messages, shown again", fmt.Sprintf(`(() => { const el = document.querySelector(%q);
	  return el && el.dataset.blocked === undefined && el.querySelector('[data-testid=message-content]').textContent === "Bob's second word"; })()`, msgSel(later, "")))
	if r := s.Do(t, http.MethodPost, fmt.Sprintf("/api/conversations/%d/messages/", direct), bob.Access, map[string]string{"content": "hello again"}); r.Status != http.StatusCreated {
		t.Errorf("bob's direct message after the unblock: %d %s", r.Status, r.Body)
	}
	a.shot("unblocked")
}

// TestConsole_BlockPastTheLimit: a user who blocks the most users one
// may gets the server's reason in the details dialog, and the person
// stays unblocked.
func TestConsole_BlockPastTheLimit(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	direct := s.Conversation(t, alice, bob)
	s.BlockMany(t, alice, chat.MaxBlocks)

	a := e.signIn(alice)
	a.open(direct)
	a.click("details-button")
	blockBtn := fmt.Sprintf(`[data-testid=participant-item][data-user-id="%d"] [data-testid=participant-block]`, bob.ID)
	a.waitFor("the Block button", fmt.Sprintf(`document.querySelector(%q)?.dataset.blocked === 'false'`, blockBtn))
	e.watch.expect("the server responded with a status of 400 (Bad Request)")
	a.clickCSS(blockBtn)
	want := fmt.Sprintf("You can block at most %d users.", chat.MaxBlocks)
	a.waitFor("the reason", fmt.Sprintf(`(() => { const e = document.querySelector('[data-testid=details-error]');
	  return !e.hidden && e.textContent === %q; })()`, want))
	a.shot("block-limit")
	if n := eval[bool](a, fmt.Sprintf(`document.querySelector(%q).dataset.blocked === 'false'`, blockBtn)); !n {
		t.Error("bob shows as blocked after a refused block")
	}
	if r := s.Do(t, http.MethodPost, fmt.Sprintf("/api/conversations/%d/messages/", direct), bob.Access, map[string]string{"content": "still here"}); r.Status != http.StatusCreated {
		t.Errorf("bob's message after the refused block: %d %s", r.Status, r.Body)
	}
}
