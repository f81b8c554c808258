package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/confab/confab/app/server/servertest"
)

// consoleEnv is one server and one browser for a console test, with its
// error watch and screenshots.
type consoleEnv struct {
	t       *testing.T
	s       *servertest.Server
	browser context.Context
	watch   *consoleWatch
	shots   *shots
}

func newConsoleEnv(t *testing.T, opts ...servertest.Option) *consoleEnv {
	t.Helper()
	chromiumPath(t) // skip or fail before starting anything
	s := servertest.Start(t, opts...)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
	t.Cleanup(cancel)
	e := &consoleEnv{t: t, s: s, browser: startBrowser(t, ctx), watch: &consoleWatch{}, shots: newShots(t)}
	t.Cleanup(func() { e.watch.check(t) })
	return e
}

// signIn opens the console in a tab of its own with u's tokens already in
// its session storage, as after a sign-in, and waits for the live socket.
func (e *consoleEnv) signIn(u servertest.User) *page {
	e.t.Helper()
	p := newPage(e.t, e.browser, u.Username, e.watch, e.shots)
	p.do("open the console", chromedp.Navigate(e.s.URL+"/"), chromedp.WaitVisible(tid("login-form")))
	eval[bool](p, fmt.Sprintf(`(sessionStorage.setItem('confab.access', %s), sessionStorage.setItem('confab.refresh', %s), true)`,
		jsString(u.Access), jsString(u.Refresh)))
	p.do("reload signed in", chromedp.Reload())
	p.waitFor("the live socket", `document.querySelector('[data-testid=connection-status]').dataset.status === 'live'`)
	p.waitFor("the name in the top bar", fmt.Sprintf(`document.querySelector('[data-testid=me-name]').textContent === %s`, jsString(u.Username)))
	return p
}

// open opens a conversation through the URL and waits for its join.
func (p *page) open(convID int64) {
	p.t.Helper()
	eval[bool](p, fmt.Sprintf(`(location.hash = '#/c/%d', true)`, convID))
	p.waitFor("the join", fmt.Sprintf(`[...document.querySelectorAll('#frame-log [data-dir=in][data-type=joined] pre')].some((e) => JSON.parse(e.textContent).conversation_id === %d)`, convID))
}

// msgSel is the CSS selector of the message with this id, or of something
// inside it.
func msgSel(id int64, inner string) string {
	sel := fmt.Sprintf(`#message-list [data-testid=message][data-message-id="%d"]`, id)
	if inner != "" {
		sel += " " + inner
	}
	return sel
}

// post sends a message over REST, optionally as a reply, and returns it.
func post(t *testing.T, s *servertest.Server, from servertest.User, convID int64, content string, replyTo int64) map[string]any {
	t.Helper()
	body := map[string]any{"content": content}
	if replyTo != 0 {
		body["reply_to_id"] = replyTo
	}
	r := s.Do(t, http.MethodPost, fmt.Sprintf("/api/conversations/%d/messages/", convID), from.Access, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("send %q: %d %s", content, r.Status, r.Body)
	}
	return r.Map(t)
}

func idOf(m map[string]any) int64 { return int64(m["id"].(float64)) }

// TestConsole_Reply answers a message from its Reply action: the quote bar
// shows what is answered and can be cancelled; the reply goes out with
// reply_to_id and both people see the original quoted above it; a click on
// a quote whose original is older than the loaded page loads back to it and
// highlights it; a quote of a deleted original says so.
func TestConsole_Reply(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)

	// An original far back (beyond the newest page), a reply to it, and a
	// reply to a message deleted since.
	old := idOf(post(t, s, bob, conv, "The very first plan", 0))
	for i := range 55 {
		post(t, s, alice, conv, fmt.Sprint("filler ", i), 0)
	}
	gone := idOf(post(t, s, bob, conv, "soon gone", 0))
	post(t, s, alice, conv, "About that first plan…", old)
	post(t, s, alice, conv, "About the gone one", gone)
	if r := s.Do(t, http.MethodDelete, fmt.Sprintf("/api/messages/%d/", gone), bob.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	question := idOf(post(t, s, bob, conv, "When do we meet?", 0))

	a := e.signIn(alice)
	b := e.signIn(bob)
	a.open(conv)
	b.open(conv)

	// The deleted original is quoted as such.
	a.waitFor("the quote of a deleted message", `[...document.querySelectorAll('[data-testid=message-quote]')].some((q) =>
	  q.dataset.replyToId === '`+fmt.Sprint(gone)+`' && q.classList.contains('deleted') &&
	  q.querySelector('[data-testid=message-quote-text]').textContent === 'Deleted message')`)

	// Reply, cancel, reply again.
	a.clickCSS(msgSel(question, "[data-testid=message-reply]"))
	a.waitFor("the quote bar", fmt.Sprintf(`(() => { const bar = document.querySelector('[data-testid=reply-bar]');
	  return !bar.hidden && bar.dataset.replyToId === '%d' &&
	    bar.querySelector('[data-testid=reply-bar-text]').textContent === 'When do we meet?' &&
	    bar.querySelector('[data-testid=reply-bar-sender]').textContent === %s; })()`, question, jsString(bob.Username)))
	a.shot("reply-bar")
	a.click("reply-cancel")
	a.waitFor("the quote bar to go", `document.querySelector('[data-testid=reply-bar]').hidden`)
	a.clickCSS(msgSel(question, "[data-testid=message-reply]"))
	a.waitFor("the quote bar", `!document.querySelector('[data-testid=reply-bar]').hidden`)
	answer := "At ten, in the small room."
	a.typeInto("composer-input", answer)
	a.pressEnter("composer-input")
	a.waitFor("the quote bar to go after sending", `document.querySelector('[data-testid=reply-bar]').hidden`)
	id := a.waitMessage(answer)
	sent := eval[map[string]any](a, `[...document.querySelectorAll('#frame-log [data-dir=out][data-type=new_message] pre')].map((e) => JSON.parse(e.textContent)).pop()`)
	if sent["reply_to_id"] != float64(question) {
		t.Errorf("new_message frame %v, want reply_to_id %d", sent, question)
	}
	for _, p := range []*page{a, b} {
		if got := p.waitMessage(answer); got != id {
			t.Errorf("%s sees the reply as %d, want %d", p.name, got, id)
		}
		p.waitFor("the quote above the reply", fmt.Sprintf(`(() => {
		  const q = document.querySelector(%q);
		  return q && q.dataset.replyToId === '%d' &&
		    q.querySelector('[data-testid=message-quote-sender]').textContent === %s &&
		    q.querySelector('[data-testid=message-quote-text]').textContent === 'When do we meet?' &&
		    q.compareDocumentPosition(q.parentElement.querySelector('.msg-bubble')) & Node.DOCUMENT_POSITION_FOLLOWING; })()`,
			msgSel(int64(id), "[data-testid=message-quote]"), question, jsString(bob.Username)))
		p.shot("reply")
	}

	// The first plan is not loaded; its quote loads back to it.
	if n := eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, msgSel(old, ""))); n != 0 {
		t.Fatalf("the original is loaded already (%d): the test needs it outside the newest page", n)
	}
	b.clickCSS(fmt.Sprintf(`[data-testid=message-quote][data-reply-to-id="%d"]`, old))
	b.waitFor("the original, highlighted and in view", fmt.Sprintf(`(() => { const el = document.querySelector(%q);
	  if (!el || el.dataset.highlighted !== 'true') return false;
	  const r = el.getBoundingClientRect(), s = document.querySelector('#message-scroller').getBoundingClientRect();
	  return r.bottom > s.top && r.top < s.bottom; })()`, msgSel(old, "")))
	b.shot("jumped-to-original")
}

// TestConsole_Mentions highlights @username of the users a message
// mentions (not an @name nobody was mentioned by, nor an e-mail address),
// and marks a message that mentions the reader.
func TestConsole_Mentions(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	conv := s.Conversation(t, alice, bob, carol)

	text := fmt.Sprintf("@%s and @%s, see @nobody and me@example.com", strings.ToUpper(alice.Username), carol.Username)
	both := post(t, s, bob, conv, text, 0)
	if ids, _ := both["mentions"].([]any); len(ids) != 2 {
		t.Fatalf("mentions %v, want alice and carol", both["mentions"])
	}
	onlyCarol := idOf(post(t, s, bob, conv, "thanks @"+carol.Username+".", 0))

	a := e.signIn(alice)
	a.open(conv)
	a.waitFor("the mentions", fmt.Sprintf(`(() => { const el = document.querySelector(%q);
	  if (!el) return false;
	  const spans = [...el.querySelectorAll('[data-testid=mention]')];
	  return el.dataset.mentionsMe === 'true' && el.classList.contains('mentions-me') &&
	    el.querySelector('[data-testid=message-content]').textContent === %s &&
	    spans.length === 2 &&
	    spans[0].dataset.userId === '%d' && spans[0].classList.contains('mention-me') && spans[0].textContent === %s &&
	    spans[1].dataset.userId === '%d' && !spans[1].classList.contains('mention-me') && spans[1].textContent === %s; })()`,
		msgSel(idOf(both), ""), jsString(text), alice.ID, jsString("@"+strings.ToUpper(alice.Username)), carol.ID, jsString("@"+carol.Username)))
	a.waitFor("a mention of someone else, not marked", fmt.Sprintf(`(() => { const el = document.querySelector(%q);
	  const spans = el ? [...el.querySelectorAll('[data-testid=mention]')] : [];
	  return el && el.dataset.mentionsMe === undefined && spans.length === 1 && spans[0].textContent === %s; })()`,
		msgSel(onlyCarol, ""), jsString("@"+carol.Username)))

	// Sent from the console: the highlight comes with the acknowledged message.
	mine := "@" + bob.Username + " got it"
	a.typeInto("composer-input", mine)
	a.pressEnter("composer-input")
	id := a.waitMessage(mine)
	a.waitFor("the mention in one's own message", fmt.Sprintf(`(() => { const spans = [...document.querySelectorAll(%q)];
	  return spans.length === 1 && spans[0].dataset.userId === '%d'; })()`, msgSel(int64(id), "[data-testid=mention]"), bob.ID))
	if n := eval[int](a, `document.querySelectorAll('#message-list [data-testid=message-content] *:not([data-testid=mention])').length`); n != 0 {
		t.Errorf("%d elements other than mentions inside message contents", n)
	}
	a.shot("mentions")
}
