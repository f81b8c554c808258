package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/push/webpush"
	"github.com/confab/confab/app/push/webpush/webpushtest"
	"github.com/confab/confab/app/server/servertest"
)

// newPushEnv is a console test whose server pushes to a Web Push
// stand-in (which decrypts what it is sent, as a browser would).
func newPushEnv(t *testing.T) (*consoleEnv, *webpushtest.Server) {
	t.Helper()
	wp := webpushtest.NewServer(t)
	e := newConsoleEnv(t, servertest.WithConfig(func(c *config.Config) { c.WebPushAllowed = wp.Allowed() }))
	return e, wp
}

// subscribe registers a subscription on the stand-in as u's browser
// would, through the API, and returns the device's id.
func subscribe(t *testing.T, s *servertest.Server, wp *webpushtest.Server, u servertest.User) (webpush.Subscription, int64) {
	t.Helper()
	sub := wp.Subscribe(t)
	r := s.Do(t, http.MethodPost, "/api/devices/", u.Access, map[string]any{"platform": "webpush",
		"subscription": map[string]any{"endpoint": sub.Endpoint, "keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}}})
	if r.Status != http.StatusCreated {
		t.Fatalf("register a subscription: %d %s", r.Status, r.Body)
	}
	return sub, int64(r.Map(t)["id"].(float64))
}

// devices returns the ids of u's devices as the API lists them.
func devices(t *testing.T, s *servertest.Server, u servertest.User) []int64 {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/api/devices/", u.Access, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list devices: %d %s", r.Status, r.Body)
	}
	var out struct {
		Results []struct {
			ID int64 `json:"id"`
		} `json:"results"`
	}
	r.JSON(t, &out)
	ids := make([]int64, len(out.Results))
	for i, d := range out.Results {
		ids[i] = d.ID
	}
	return ids
}

// grantNotifications lets the page's origin show notifications, as a
// user who answered the browser's question with Allow.
func (p *page) grantNotifications(origin string) {
	p.t.Helper()
	p.do("grant notifications", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		c := chromedp.FromContext(ctx)
		_, err := cdp.Call(ctx, c.Browser, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted,
			Origin: origin, BrowserContextID: c.BrowserContextID})
		return err
	}))
}

// pushState waits for the switch's state and returns its sentence.
func (p *page) pushState(state string) string {
	p.t.Helper()
	p.waitFor("the switch's state "+state, fmt.Sprintf(`document.querySelector('[data-testid=push-state]').dataset.state === %s`, jsString(state)))
	return eval[string](p, `document.querySelector('[data-testid=push-state]').textContent`)
}

// TestConsole_DevicesListedAndDeleted: the devices a user registered
// through the API are listed in the Notifications dialog, and one
// removed there is gone from the API too. In headless Chromium, which
// answers the permission question with "denied", the switch says that
// notifications are blocked instead of failing silently, and registers
// nothing.
func TestConsole_DevicesListedAndDeleted(t *testing.T) {
	e, wp := newPushEnv(t)
	bob := e.s.Register(t, "bob")
	_, laptop := subscribe(t, e.s, wp, bob)
	r := e.s.Do(t, http.MethodPost, "/api/devices/", bob.Access, map[string]string{"platform": "fcm", "token": "bobs-phone"})
	if r.Status != http.StatusCreated {
		t.Fatalf("register a phone: %d %s", r.Status, r.Body)
	}
	phone := int64(r.Map(t)["id"].(float64))

	p := e.signIn(bob)
	// At phone width: the bell stays in the top bar, the dialog on the screen.
	p.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateScale(2)))
	p.waitFor("the phone layout", `innerWidth === 390`)
	p.click("notifications-button")
	p.waitFor("both devices", `document.querySelectorAll('[data-testid=device-item]').length === 2`)
	if fits := eval[bool](p, `[...document.querySelectorAll('#notifications-dialog, [data-testid=device-delete], [data-testid=push-switch]')].every((el) => {
		const r = el.getBoundingClientRect();
		return r.width > 0 && r.left >= 0 && r.right <= innerWidth;
	})`); !fits {
		t.Error("at phone width the dialog, its switch or a Remove button is off the screen")
	}
	got := eval[string](p, `[...document.querySelectorAll('[data-testid=device-item]')].map((li) => li.dataset.deviceId + ':' + li.dataset.platform + ':' + li.textContent).join('|')`)
	for _, want := range []string{fmt.Sprintf("%d:webpush:Web browser", laptop), fmt.Sprintf("%d:fcm:Android (FCM)", phone)} {
		if !strings.Contains(got, want) {
			t.Errorf("devices %q, want %q", got, want)
		}
	}
	if strings.Contains(got, "this browser") {
		t.Errorf("a device registered elsewhere is called this browser: %q", got)
	}
	if st := p.pushState("off"); !strings.Contains(st, "Off") {
		t.Errorf("the switch says %q", st)
	}
	p.shot("devices")

	p.clickCSS(fmt.Sprintf(`[data-testid=device-item][data-device-id="%d"] [data-testid=device-delete]`, phone))
	p.waitFor("the phone gone", `document.querySelectorAll('[data-testid=device-item]').length === 1`)
	if ids := devices(t, e.s, bob); len(ids) != 1 || ids[0] != laptop {
		t.Fatalf("devices after the removal %v, want only %d", ids, laptop)
	}

	p.click("push-switch")
	st := p.pushState("denied")
	if !strings.Contains(st, "blocked") {
		t.Errorf("denied: the switch says %q", st)
	}
	if on := eval[bool](p, `document.querySelector('[data-testid=push-switch]').checked || !document.querySelector('[data-testid=push-switch]').disabled`); on {
		t.Error("a denied switch is on or can be flipped")
	}
	if ids := devices(t, e.s, bob); len(ids) != 1 {
		t.Errorf("devices %v after a refused switch, want only the one there", ids)
	}
	p.shot("denied")
}

// TestConsole_MuteSavedAndShownAfterReload: the mute chosen in a
// conversation's details is saved on the server and shown again after a
// reload: 8 hours as the time it ends, forever as forever, off as off.
func TestConsole_MuteSavedAndShownAfterReload(t *testing.T) {
	e := newConsoleEnv(t)
	ann, bob := e.s.Register(t, "ann"), e.s.Register(t, "bob")
	conv := e.s.Conversation(t, ann, bob)
	path := fmt.Sprintf("/api/conversations/%d/notifications/", conv)
	stored := func() any {
		t.Helper()
		r := e.s.Do(t, http.MethodGet, path, bob.Access, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("get the mute: %d %s", r.Status, r.Body)
		}
		return r.Map(t)["muted_until"]
	}
	p := e.signIn(bob)
	details := func() {
		t.Helper()
		p.open(conv)
		p.click("details-button")
		p.waitFor("the mute", `!['loading', undefined].includes(document.querySelector('[data-testid=mute-status]').dataset.state)`)
	}
	choose := func(value, state string) string {
		t.Helper()
		eval[bool](p, fmt.Sprintf(`(() => { const s = document.querySelector('[data-testid=mute-select]'); s.value = %s; s.dispatchEvent(new Event('change')); return true })()`, jsString(value)))
		p.waitFor("mute "+state, fmt.Sprintf(`document.querySelector('[data-testid=mute-status]').dataset.state === %s && !document.querySelector('[data-testid=mute-select]').disabled`, jsString(state)))
		return eval[string](p, `document.querySelector('[data-testid=mute-status]').textContent`)
	}
	reload := func() {
		t.Helper()
		p.do("reload", chromedp.Reload())
		p.waitFor("the live socket", `document.querySelector('[data-testid=connection-status]').dataset.status === 'live'`)
		details()
	}

	details()
	if st := eval[string](p, `document.querySelector('[data-testid=mute-status]').dataset.state`); st != "on" {
		t.Fatalf("a new conversation's mute: %s", st)
	}
	before := time.Now()
	shown := choose("8h", "until")
	until, _ := stored().(string)
	at, err := time.Parse(time.RFC3339, until)
	if err != nil || at.Before(before.Add(8*time.Hour-time.Minute)) || at.After(time.Now().Add(8*time.Hour+time.Minute)) {
		t.Fatalf("8 hours stored as %q (%v), want about 8 hours from now", until, err)
	}
	p.shot("muted")
	reload()
	if st := eval[string](p, `document.querySelector('[data-testid=mute-status]').dataset.state + ' ' + document.querySelector('[data-testid=mute-select]').value`); st != "until current" {
		t.Errorf("after a reload the mute shows %q, want until", st)
	}
	if again := eval[string](p, `document.querySelector('[data-testid=mute-status]').textContent`); again != shown {
		t.Errorf("after a reload %q, before %q", again, shown)
	}

	choose("forever", "forever")
	if v := stored(); v != "forever" {
		t.Fatalf("forever stored as %v", v)
	}
	reload()
	if st := eval[string](p, `document.querySelector('[data-testid=mute-status]').dataset.state + ' ' + document.querySelector('[data-testid=mute-select]').value`); st != "forever forever" {
		t.Errorf("after a reload %q, want forever", st)
	}
	choose("", "on")
	if v := stored(); v != nil {
		t.Fatalf("off stored as %v", v)
	}
	reload()
	if st := eval[string](p, `document.querySelector('[data-testid=mute-status]').dataset.state + ' ' + document.querySelector('[data-testid=mute-select]').value`); st != "on " {
		t.Errorf("after a reload %q, want not muted", st)
	}
}

// TestConsole_PushToAnOfflineUser follows one push: bob allows
// notifications, but this Chromium cannot subscribe (its tabs here are in
// browser contexts of their own, which like incognito windows have no
// Push API; a default profile waits for Google's push server, out of
// reach), so the switch says it cannot subscribe, and registers nothing,
// rather than pretend. With a subscription on the Web Push stand-in registered for
// him and his socket disconnected, a message from ann is pushed there,
// and the developer panel's outbox shows it sent. What the stand-in
// decrypted, handed to the console's service worker as a push, shows as
// a notification that names ann; a click on it opens the conversation.
func TestConsole_PushToAnOfflineUser(t *testing.T) {
	e, wp := newPushEnv(t)
	ann, bob := e.s.Register(t, "ann"), e.s.Register(t, "bob")
	conv := e.s.Conversation(t, ann, bob)
	p := e.signIn(bob)
	e.watch.expect("does not support the Push API in incognito mode") // Chromium's own log line

	p.grantNotifications(e.s.URL)
	p.click("notifications-button")
	p.pushState("off")
	p.click("push-switch")
	st := p.pushState("unavailable")
	if !strings.Contains(st, "push service could not subscribe") {
		t.Errorf("the switch says %q", st)
	}
	if ids := devices(t, e.s, bob); len(ids) != 0 {
		t.Fatalf("devices %v after a failed subscription", ids)
	}
	p.shot("unavailable")
	p.click("notifications-close")

	_, device := subscribe(t, e.s, wp, bob)
	p.click("devpanel-toggle")
	p.waitFor("an empty outbox", `document.querySelector('[data-testid=outbox-status]').textContent === 'No pushes yet.'`)
	p.click("dev-connect-toggle")
	p.waitFor("the socket closed", `document.querySelector('[data-testid=connection-status]').dataset.status === 'offline'`)
	deadline := time.Now().Add(waitTimeout)
	for len(e.s.Hub.OnlineAmong(context.Background(), []int64{bob.ID})) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("bob still online after his socket closed")
		}
		time.Sleep(pollEvery)
	}
	msg := post(t, e.s, ann, conv, "are you there?", 0)
	msgID := int64(msg["id"].(float64))

	p.waitFor("the delivery sent", fmt.Sprintf(`document.querySelector('[data-testid=outbox-item][data-state=sent][data-device-id="%d"][data-conversation-id="%d"]') !== null`, device, conv))
	if n := eval[string](p, `document.querySelector('[data-testid=outbox-count][data-state=sent]').textContent`); n != "1" {
		t.Errorf("sent count %q, want 1", n)
	}
	if a := eval[string](p, `document.querySelector('[data-testid=outbox-item] [data-testid=outbox-attempts]').textContent`); a != "1 attempt" {
		t.Errorf("attempts %q", a)
	}
	p.shot("outbox")
	got := wp.Received()
	if len(got) != 1 {
		t.Fatalf("%d pushes reached the stand-in, want 1", len(got))
	}
	var payload struct {
		Title string            `json:"title"`
		Data  map[string]string `json:"data"`
	}
	if err := json.Unmarshal(got[0].Payload, &payload); err != nil || payload.Data["message_id"] != strconv.FormatInt(msgID, 10) {
		t.Fatalf("payload %s (%v), want message %d", got[0].Payload, err, msgID)
	}

	// The service worker, given that payload as its push service would.
	reg := p.serviceWorker(e.s.URL + "/")
	p.do("deliver the push", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{
			Origin: e.s.URL, RegistrationID: reg, Data: string(got[0].Payload)})
		return err
	}))
	eval[bool](p, `(window.__ns = null, (async () => {
		const reg = await navigator.serviceWorker.getRegistration();
		for (;;) {
			const ns = await reg.getNotifications();
			if (ns.length) {
				window.__ns = ns.map((n) => ({ title: n.title, tag: n.tag, data: n.data }));
				return;
			}
			await new Promise((ok) => setTimeout(ok, 40));
		}
	})(), true)`)
	p.waitFor("the notification", `window.__ns !== null`)
	shown := eval[string](p, `JSON.stringify(window.__ns)`)
	var ns []struct {
		Title string            `json:"title"`
		Tag   string            `json:"tag"`
		Data  map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(shown), &ns); err != nil || len(ns) != 1 {
		t.Fatalf("notifications %s (%v), want one", shown, err)
	}
	if n := ns[0]; n.Title != "New message from "+ann.Username || n.Tag != fmt.Sprintf("conv-%d", conv) ||
		n.Data["conversation_id"] != strconv.FormatInt(conv, 10) || n.Data["url"] != fmt.Sprintf("%s/#/c/%d", e.s.URL, conv) {
		t.Errorf("notification %+v", n)
	}

	// A click: the open console goes to the conversation.
	if h := eval[string](p, `location.hash`); h != "" {
		t.Fatalf("hash %q before the click", h)
	}
	p.inServiceWorker(e.s.URL, `self.registration.getNotifications().then((ns) => {
		self.dispatchEvent(new NotificationEvent('notificationclick', { notification: ns[0] }));
		return true;
	})`)
	p.waitFor("the conversation opened", fmt.Sprintf(`location.hash === '#/c/%d'`, conv))
	p.waitFor("it open in the list", fmt.Sprintf(`document.querySelector('[data-testid=conversation-item][data-conversation-id="%d"]')?.getAttribute('aria-current') === 'page'`, conv))
}

// serviceWorker returns the id of the page's service worker registration
// for scope.
func (p *page) serviceWorker(scope string) serviceworker.RegistrationID {
	p.t.Helper()
	var id serviceworker.RegistrationID
	p.do("find the service worker", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		evs := cdp.Events(ctx, tg, serviceworker.WorkerRegistrationUpdated)
		if _, err := cdp.Call(ctx, tg, serviceworker.Enable, cdp.Empty{}); err != nil {
			return err
		}
		for ev, err := range evs {
			if err != nil {
				return err
			}
			for _, r := range ev.Registrations {
				if r.ScopeURL == scope && !r.IsDeleted {
					id = r.RegistrationID
					return nil
				}
			}
		}
		return nil
	}))
	return id
}

// inServiceWorker evaluates a promise in the page's service worker, of
// origin, as DevTools' console for the worker does.
func (p *page) inServiceWorker(origin, expr string) {
	p.t.Helper()
	c := chromedp.FromContext(p.ctx)
	targets, err := chromedp.Targets(p.ctx)
	if err != nil {
		p.t.Fatalf("targets: %v", err)
	}
	for _, ti := range targets {
		if ti.Type != "service_worker" || ti.BrowserContextID != c.BrowserContextID || !strings.HasPrefix(ti.URL, origin+"/") {
			continue
		}
		ctx, cancel := chromedp.NewContext(p.ctx, chromedp.WithTargetID(ti.TargetID))
		defer cancel()
		ctx, stop := context.WithTimeout(ctx, waitTimeout)
		defer stop()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr, chromedp.EvalAwaitPromise)); err != nil {
			p.t.Fatalf("in the service worker: %v", err)
		}
		return
	}
	p.t.Fatalf("no service worker of %s", origin)
}
