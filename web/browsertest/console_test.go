package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/confab/confab/app/server/servertest"
)

const password = "correct horse battery"

// xss is a message that would run script if the console rendered content
// as HTML.
const xss = `<img src=x onerror=alert(1)>`

// TestConsole_TwoUsersChatThroughARestart drives the console in a real
// browser as two people in two isolated browser contexts: they register,
// start a conversation, see each other typing and reading, exchange
// messages both ways (one of them markup, which must show as text), keep
// going through a server restart without losing or doubling a message,
// ping from the developer panel, and use it at phone width. Any error in
// either browser console fails the test, except the refused connections
// of the reconnect attempts while the server is down.
func TestConsole_TwoUsersChatThroughARestart(t *testing.T) {
	start := time.Now()
	chromiumPath(t) // skip or fail before starting anything
	s := servertest.Start(t)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
	defer cancel()
	browser := startBrowser(t, ctx)
	watch := &consoleWatch{}
	shots := newShots(t)
	alice := newPage(t, browser, "alice", watch, shots)
	bob := newPage(t, browser, "bob", watch, shots)
	t.Cleanup(func() {
		watch.check(t)
		t.Logf("wall time %s; %d screenshots in %s", time.Since(start).Round(100*time.Millisecond), shots.n.Load(), shots.dir)
	})

	// Sign-up.
	alice.do("open the console", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(tid("login-form")))
	alice.shot("sign-in")
	alice.register("alice", "Alice Liddell")
	bob.do("open the console", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(tid("login-form")))
	bob.register("bob", "Bob Builder")
	bobID := eval[int](bob, `JSON.parse(sessionStorage.getItem('confab.user')).id`)

	// Alice starts a direct conversation with Bob from the dialog.
	alice.click("new-conversation-button")
	alice.typeInto("user-search", "bob")
	result := fmt.Sprintf(`[data-testid="user-result"][data-user-id="%d"]`, bobID)
	alice.do("find bob", chromedp.WaitVisible(chromedp.CSS(result)))
	alice.shot("new-conversation")
	alice.clickCSS(result)
	alice.click("create-conversation-submit")
	alice.waitFor("the conversation to open", `/^#\/c\/\d+$/.test(location.hash)`)
	convID := eval[int](alice, `Number(location.hash.slice(4))`)
	alice.waitFor("the conversation header", `document.querySelector('#conversation-title').textContent === 'Bob Builder'`)

	// It appears in Bob's list live (conversation_updated); he opens it.
	item := fmt.Sprintf(`[data-testid="conversation-item"][data-conversation-id="%d"]`, convID)
	bob.clickCSS(item)
	bob.waitFor("the conversation header", `document.querySelector('#conversation-title').textContent === 'Alice Liddell'`)
	for _, p := range []*page{alice, bob} {
		p.waitFor("the join", fmt.Sprintf(`[...document.querySelectorAll('#frame-log [data-dir=in][data-type=joined] pre')].some((e) => JSON.parse(e.textContent).conversation_id === %d)`, convID))
	}

	// Both ways: typing, the message, and the read receipt.
	id1 := exchange(alice, bob, "Hello Bob! Are you there?", "Bob Builder", "Alice Liddell")
	id2 := exchange(bob, alice, "Hi Alice, I am here.", "Alice Liddell", "Bob Builder")
	if id2 <= id1 {
		t.Errorf("message ids %d then %d: not growing", id1, id2)
	}

	// Markup in a message is shown as its characters, never as markup.
	alice.typeInto("composer-input", xss)
	alice.pressEnter("composer-input")
	for _, p := range []*page{alice, bob} {
		p.waitMessage(xss)
		if n := eval[int](p, `document.querySelectorAll('#message-list img, #conversation-list img').length`); n != 0 {
			p.t.Errorf("%s: %d <img> elements in the messages: the markup was rendered", p.name, n)
		}
		p.waitFor("the preview as text", fmt.Sprintf(`document.querySelector(%q).textContent.includes(%s)`, item, jsString(xss)))
		p.shot("xss-as-text")
	}
	before := []string{"Hello Bob! Are you there?", "Hi Alice, I am here.", xss}
	for _, p := range []*page{alice, bob} {
		p.expectMessages(before)
	}

	// Restart the server. Both pages say they are reconnecting; messages
	// sent over REST before they are back appear exactly once.
	aliceToken := eval[string](alice, `sessionStorage.getItem('confab.access')`)
	bobToken := eval[string](bob, `sessionStorage.getItem('confab.access')`)
	for _, p := range []*page{alice, bob} {
		eval[bool](p, recordStatusJS)
	}
	watch.restarting.Store(true)
	s.Close()
	for _, p := range []*page{alice, bob} {
		p.waitFor("reconnecting", `document.querySelector('[data-testid=connection-status]').dataset.status === 'reconnecting'`)
		p.waitFor("the label", `/^Reconnecting/.test(document.querySelector('#connection-label').textContent)`)
		p.shot("reconnecting")
	}
	// Wait for one refused attempt on each page: the next one is then at
	// least a second away (backoff), which leaves the restart and the REST
	// sends below to happen while the pages are still disconnected.
	for _, p := range []*page{alice, bob} {
		p.waitFor("a failed reconnect attempt", `window.__statuses.filter((s) => s === 'reconnecting').length >= 2`)
	}
	s.Restart()
	away := []string{"Sent while you were away (1)", "Sent while you were away (2)", "Sent while you were away (3)"}
	for i, token := range []string{aliceToken, bobToken, aliceToken} {
		r := s.Do(t, http.MethodPost, fmt.Sprintf("/api/conversations/%d/messages/", convID), token, map[string]string{"content": away[i]})
		if r.Status != http.StatusCreated {
			t.Fatalf("REST send after the restart: %d %s", r.Status, r.Body)
		}
	}
	liveAtSend := map[*page]bool{}
	for _, p := range []*page{alice, bob} {
		liveAtSend[p] = eval[string](p, `document.querySelector('[data-testid=connection-status]').dataset.status`) == "live"
	}
	for _, p := range []*page{alice, bob} {
		p.waitFor("live again", `document.querySelector('[data-testid=connection-status]').dataset.status === 'live'`)
	}
	watch.restarting.Store(false)
	for _, p := range []*page{alice, bob} {
		statuses := eval[[]string](p, `window.__statuses`)
		if len(statuses) < 3 || statuses[0] != "reconnecting" || statuses[len(statuses)-1] != "live" {
			t.Errorf("%s: statuses through the restart %q, want reconnecting … live", p.name, statuses)
		}
		p.waitMessage(away[2])
		p.shot("live-again")
		// The rejoin asked for what came after the last message it had.
		joined := eval[map[string]any](p, fmt.Sprintf(`[...document.querySelectorAll('#frame-log [data-dir=in][data-type=joined] pre')]
		  .map((e) => JSON.parse(e.textContent)).filter((f) => f.conversation_id === %d).pop()`, convID))
		if liveAtSend[p] {
			t.Logf("%s was live again before the REST sends ended: they came live, not by recovery (joined %v)", p.name, joined)
		} else if joined["recovered"] != true || joined["missed"] != float64(len(away)) {
			t.Errorf("%s: rejoin answered %v, want recovered with %d missed", p.name, joined, len(away))
		}
	}
	// One more live message after the restart; once it is in, every frame
	// of the recovery has been handled.
	after := "Back to normal."
	exchange(bob, alice, after, "Alice Liddell", "Bob Builder")
	all := append(append(before, away...), after)
	for _, p := range []*page{alice, bob} {
		p.expectMessages(all)
	}

	// The developer panel's ping gets its pong.
	alice.click("devpanel-toggle")
	alice.do("open the developer panel", chromedp.WaitVisible(tid("devpanel")))
	alice.click("dev-ping")
	alice.waitFor("the pong", `(() => {
	  const frames = (dir, type) => [...document.querySelectorAll('#frame-log [data-dir=' + dir + '][data-type=' + type + '] pre')].map((e) => JSON.parse(e.textContent));
	  const ping = frames('out', 'ping').pop();
	  return ping && frames('in', 'pong').some((f) => f.request_id === ping.request_id && f.timestamp === ping.timestamp);
	})()`)
	eval[bool](alice, `(document.querySelector('#frame-log').lastElementChild.scrollIntoView({ block: 'end' }), true)`)
	alice.shot("devpanel-pong")

	// Phone width: the open conversation fits, the composer shows, and it sends.
	bob.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateScale(2)))
	bob.waitFor("the phone layout", `innerWidth === 390`)
	bob.waitFor("the composer inside the screen", `(() => {
	  const inside = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight; };
	  return inside(document.querySelector('#composer-input')) && inside(document.querySelector('#composer-send')) &&
	    document.documentElement.scrollWidth <= innerWidth;
	})()`)
	bob.shot("phone-conversation")
	phone := "Sent from my phone"
	exchange(bob, alice, phone, "Alice Liddell", "Bob Builder")
	bob.click("back-button")
	bob.do("the list", chromedp.WaitVisible(chromedp.CSS(item)))
	bob.shot("phone-list")
	alice.expectMessages(append(all, phone))
}

// register signs up through the register form and waits for the live socket.
func (p *page) register(username, display string) {
	p.t.Helper()
	p.click("show-register")
	p.typeInto("register-username", username)
	p.typeInto("register-display-name", display)
	p.typeInto("register-password", password)
	p.click("register-submit")
	p.waitFor("the live socket", `document.querySelector('[data-testid=connection-status]').dataset.status === 'live'`)
	p.waitFor("the name in the top bar", fmt.Sprintf(`document.querySelector('[data-testid=me-name]').textContent === %s`, jsString(display)))
	p.shot("registered")
}

// exchange has from type text into the open conversation, checks that to
// sees from typing, sends it with Enter, and checks that to gets it and
// from sees it read by to. It returns the message's id.
func exchange(from, to *page, text, toName, fromName string) int {
	from.t.Helper()
	from.typeInto("composer-input", text)
	to.waitFor("the typing indicator", fmt.Sprintf(`document.querySelector('#typing-indicator').textContent === %s`, jsString(fromName+" is typing…")))
	to.shot("sees-typing")
	from.pressEnter("composer-input")
	id := from.waitMessage(text)
	from.waitFor("the composer to empty", `document.querySelector('#composer-input').value === ''`)
	if got := to.waitMessage(text); got != id {
		to.t.Errorf("%s sees message %q as id %d, %s as %d", to.name, text, got, from.name, id)
	}
	to.waitFor("the typing indicator to clear", `document.querySelector('#typing-indicator').textContent === ''`)
	from.waitFor("the read receipt", fmt.Sprintf(`(() => { const el = document.querySelector('#seen-by');
	  return !el.hidden && el.textContent === %s && el.dataset.messageId === '%d'; })()`, jsString("Seen by "+toName), id))
	from.shot("seen")
	return id
}

// waitMessage waits until the open conversation shows an acknowledged
// message with exactly this text, and returns its id.
func (p *page) waitMessage(text string) int {
	p.t.Helper()
	find := fmt.Sprintf(`[...document.querySelectorAll('#message-list [data-testid=message][data-state=acked]')]
	  .filter((m) => m.querySelector('[data-testid=message-content]').textContent === %s)`, jsString(text))
	p.waitFor(fmt.Sprintf("message %q", text), find+".length > 0")
	return eval[int](p, fmt.Sprintf(`Number((%s)[0].dataset.messageId)`, find))
}

// expectMessages checks that the open conversation shows exactly these
// messages, each once, acknowledged, in this order, with growing ids.
func (p *page) expectMessages(want []string) {
	p.t.Helper()
	type msg struct {
		ID      string `json:"id"`
		State   string `json:"state"`
		Content string `json:"content"`
	}
	got := eval[[]msg](p, `[...document.querySelectorAll('#message-list [data-testid=message]')].map((m) => ({
	  id: m.dataset.messageId || '', state: m.dataset.state, content: m.querySelector('[data-testid=message-content]').textContent }))`)
	var texts []string
	for _, m := range got {
		texts = append(texts, m.Content)
		if m.State != "acked" || m.ID == "" {
			p.t.Errorf("%s: message %q is %s (id %q), want acked", p.name, m.Content, m.State, m.ID)
		}
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		p.t.Errorf("%s: messages\n%q\nwant each once, in order:\n%q", p.name, texts, want)
	}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m.ID] {
			p.t.Errorf("%s: message id %s shown twice", p.name, m.ID)
		}
		seen[m.ID] = true
	}
}

// recordStatusJS starts recording the changes of the connection status.
const recordStatusJS = `(() => {
  const el = document.querySelector('[data-testid=connection-status]');
  window.__statuses = [];
  new MutationObserver(() => {
    const s = el.dataset.status;
    if (window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
  }).observe(el, { attributes: true, attributeFilter: ['data-status'] });
  return true;
})()`

// TestConsole_HeadersAndFavicon checks what a browser gets with the page:
// a Content-Security-Policy that allows no inline or eval'd script, and a
// favicon that exists, so that the console logs no 404.
func TestConsole_HeadersAndFavicon(t *testing.T) {
	s := servertest.Start(t)
	resp := s.Do(t, http.MethodGet, "/", "", nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("GET /: %d", resp.Status)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if csp == "" {
		t.Fatal("GET /: no Content-Security-Policy header")
	}
	directives := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 {
			directives[strings.ToLower(f[0])] = f[1:]
		}
	}
	script, ok := directives["script-src"]
	if !ok {
		script, ok = directives["default-src"]
	}
	if !ok {
		t.Errorf("CSP %q: neither script-src nor default-src, so any script may run", csp)
	}
	for _, name := range []string{"script-src", "script-src-elem", "script-src-attr", "default-src"} {
		for _, src := range directives[name] {
			switch strings.ToLower(src) {
			case "'unsafe-inline'", "'unsafe-eval'", "*":
				t.Errorf("CSP %s allows %s", name, src)
			}
		}
	}
	t.Logf("script sources: %q", script)

	links := regexp.MustCompile(`<link[^>]+rel="(?:shortcut )?icon"[^>]*>`).FindAllString(string(resp.Body), -1)
	if len(links) == 0 {
		t.Fatal("index.html links no icon")
	}
	icons := []string{"/favicon.ico"} // what a browser asks for on pages without a link
	for _, l := range links {
		href := regexp.MustCompile(`href="([^"]+)"`).FindStringSubmatch(l)
		if href == nil {
			t.Fatalf("icon link without href: %s", l)
		}
		icons = append(icons, "/"+strings.TrimPrefix(href[1], "/"))
	}
	for _, path := range icons {
		r := s.Do(t, http.MethodGet, path, "", nil)
		if ct := r.Header.Get("Content-Type"); r.Status != http.StatusOK || !strings.HasPrefix(ct, "image/") || len(r.Body) == 0 {
			t.Errorf("GET %s: %d %q (%d bytes), want 200 with an image", path, r.Status, ct, len(r.Body))
		}
	}
}

// A user in more conversations than one page holds sees the first 100
// and a button for the rest; a group of 13 says 13 members although each
// conversation carries only its first 10, and its details list all 13
// from the participants route.
func TestConsole_LongListAndBigGroup(t *testing.T) {
	chromiumPath(t)
	s := servertest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
	defer cancel()
	browser := startBrowser(t, ctx)
	watch := &consoleWatch{}
	shots := newShots(t)
	carol := newPage(t, browser, "carol", watch, shots)
	t.Cleanup(func() { watch.check(t) })

	carol.do("open the console", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(tid("login-form")))
	carol.register("carol", "Carol")
	token := eval[string](carol, `sessionStorage.getItem('confab.access')`)
	others := make([]int64, 12)
	for i := range others {
		others[i] = s.Register(t, "member").ID
	}
	create := func(ids []int64, title string) int64 {
		t.Helper()
		r := s.Do(t, http.MethodPost, "/api/conversations/", token, map[string]any{"participant_ids": ids, "is_group": true, "title": title})
		if r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", title, r.Status, r.Body)
		}
		return int64(r.Map(t)["id"].(float64))
	}
	for i := range 103 {
		create(others[:2], fmt.Sprint("group ", i))
	}
	big := create(others, "") // the most recent: first in the list

	carol.do("reload", chromedp.Reload())
	carol.waitFor("the live socket", `document.querySelector('[data-testid=connection-status]').dataset.status === 'live'`)
	carol.waitFor("the first page", `document.querySelectorAll('[data-testid=conversation-item]').length === 100 &&
	  !document.querySelector('[data-testid=conversation-list-more]').hidden`)
	carol.click("conversation-list-more")
	carol.waitFor("the rest", `document.querySelectorAll('[data-testid=conversation-item]').length === 104 &&
	  document.querySelector('[data-testid=conversation-list-more]').hidden`)
	carol.shot("long-list")

	carol.clickCSS(fmt.Sprintf(`[data-testid="conversation-item"][data-conversation-id="%d"]`, big))
	carol.waitFor("13 members in the header", `/^13 members/.test(document.querySelector('#conversation-subtitle').textContent)`)
	carol.waitFor("the title naming the rest", `/ and 10 others$/.test(document.querySelector('#conversation-title').textContent)`)
	carol.click("details-button")
	carol.waitFor("every participant in the details", `document.querySelectorAll('[data-testid=participant-item]').length === 13 &&
	  /\(13\)/.test(document.querySelector('#details-dialog h3').textContent)`)
	carol.shot("big-group-details")
}
