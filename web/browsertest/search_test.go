package browsertest

import (
	"fmt"
	"strings"
	"testing"
)

// TestConsole_Search finds a message by a prefix of one of its words: the
// snippet marks the match (as elements built by the console, markup in the
// message staying text), names the conversation, and a click opens the
// conversation at the message, older than the loaded page, highlighted.
func TestConsole_Search(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	withBob := s.Conversation(t, alice, bob)
	withCarol := s.Conversation(t, alice, carol)

	target := idOf(post(t, s, bob, withBob, "Bring the pineapple cake "+xss, 0))
	for i := range 60 {
		post(t, s, alice, withBob, fmt.Sprint("later ", i), 0)
	}
	post(t, s, carol, withCarol, "no fruit here", 0)

	a := e.signIn(alice)
	a.open(withCarol)
	a.typeInto("message-search", "pineap")
	a.waitFor("the result", fmt.Sprintf(`(() => { const r = document.querySelectorAll('[data-testid=search-result]');
	  return document.querySelector('[data-testid=search-panel]').dataset.state === 'done' && r.length === 1 &&
	    r[0].dataset.messageId === '%d' && r[0].dataset.conversationId === '%d'; })()`, target, withBob))
	a.shot("search-results")
	snippet := eval[map[string]any](a, `(() => { const s = document.querySelector('[data-testid=search-snippet]');
	  return { text: s.textContent, marks: [...s.querySelectorAll('b')].map((b) => b.textContent),
	    elements: s.querySelectorAll('*').length, imgs: document.querySelectorAll('#search-results img').length,
	    conv: document.querySelector('[data-testid=search-result-conversation]').textContent }; })()`)
	if marks, _ := snippet["marks"].([]any); len(marks) != 1 || !strings.EqualFold(marks[0].(string), "pineapple") {
		t.Errorf("snippet marks %v, want [pineapple]", snippet["marks"])
	}
	if snippet["elements"] != float64(1) || snippet["imgs"] != float64(0) {
		t.Errorf("snippet %v: want exactly one element, the <b>, and the markup as text", snippet)
	}
	if text, _ := snippet["text"].(string); !strings.Contains(text, "pineapple") {
		t.Errorf("snippet text %q", text)
	}
	if snippet["conv"] != bob.Username {
		t.Errorf("result names conversation %q, want %q", snippet["conv"], bob.Username)
	}

	a.click("search-result")
	a.waitFor("the conversation", fmt.Sprintf(`location.hash === '#/c/%d'`, withBob))
	a.waitFor("the message, highlighted and in view", fmt.Sprintf(`(() => { const el = document.querySelector(%q);
	  if (!el || el.dataset.highlighted !== 'true') return false;
	  const r = el.getBoundingClientRect(), s = document.querySelector('#message-scroller').getBoundingClientRect();
	  return r.bottom > s.top && r.top < s.bottom; })()`, msgSel(target, "")))
	a.shot("search-jump")

	// Clearing the box brings the conversation list back.
	eval[bool](a, `(() => { const el = document.querySelector('#message-search'); el.value = ''; el.dispatchEvent(new Event('input')); return true; })()`)
	a.waitFor("the list", `document.querySelector('[data-testid=search-panel]').hidden && !document.querySelector('#conversation-list').hidden`)
}
