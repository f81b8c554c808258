package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/push/apns/apnstest"
	"github.com/confab/confab/app/push/fcm/fcmtest"
	"github.com/confab/confab/app/push/webpush"
	"github.com/confab/confab/app/push/webpush/webpushtest"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/app/server/servertest"
)

// pushWorld is a server whose dispatcher pushes to a Web Push stand-in,
// an FCM stand-in and an APNs stand-in. Its clock stands still: a delivery is due a
// second after it was decided (the coalescing delay), so nothing is sent
// until the test advances the clock, and what is decided before then
// coalesces whatever the timing.
type pushWorld struct {
	s     *servertest.Server
	clock *servertest.Clock
	wp    *webpushtest.Server
	fcm   *fcmtest.Server
	apns  *apnstest.Server
}

func newPushWorld(t *testing.T, preview string) *pushWorld {
	t.Helper()
	return newPushWorldConfig(t, func(c *config.Config) {
		if preview != "" {
			c.PushPreview = preview
		}
	})
}

// newPushWorldConfig is newPushWorld with more settings.
func newPushWorldConfig(t *testing.T, set func(*config.Config)) *pushWorld {
	t.Helper()
	w := &pushWorld{clock: servertest.NewClock(), wp: webpushtest.NewServer(t)}
	var creds []byte
	w.fcm, creds = fcmtest.NewServer(t)
	path := filepath.Join(t.TempDir(), "fcm.json")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	var key []byte
	var keyID, teamID string
	w.apns, key, keyID, teamID = apnstest.NewServer(t)
	keyPath := filepath.Join(t.TempDir(), "AuthKey.p8")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	w.s = servertest.Start(t, servertest.WithNow(w.clock.Now), servertest.WithConfig(func(c *config.Config) {
		c.WebPushAllowed = w.wp.Allowed()
		c.FCMCredentialsFile, c.FCMBaseURL = path, w.fcm.URL
		c.APNsKeyFile, c.APNsKeyID, c.APNsTeamID, c.APNsTopic, c.APNsBaseURL = keyPath, keyID, teamID, apnstest.Topic, w.apns.URL
		set(c)
	}), servertest.Option(func(_ *config.Config, o *server.Options) { o.APNsClient = w.apns.Client() }))
	return w
}

// iphone registers an APNs device token for u.
func (w *pushWorld) iphone(t *testing.T, u servertest.User, token string) {
	t.Helper()
	wantStatus(t, w.s.Do(t, http.MethodPost, "/api/devices/", u.Access, map[string]string{"platform": "apns", "token": token}), http.StatusCreated)
}

// devices is how many devices u has.
func (w *pushWorld) devices(t *testing.T, u servertest.User) int {
	t.Helper()
	r := w.s.Do(t, http.MethodGet, "/api/devices/", u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	var list []json.RawMessage
	if err := json.Unmarshal(r.Body, &list); err != nil {
		var page struct {
			Results []json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal(r.Body, &page); err != nil {
			t.Fatalf("devices %s: %v", r.Body, err)
		}
		list = page.Results
	}
	return len(list)
}

// metrics scrapes /metrics into "name{labels}" → value.
func (w *pushWorld) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	return w.s.Metrics(t, "")
}

// deliveries is confab_deliveries_total's series for provider and result.
func deliveriesSeries(provider, result string) string {
	return `confab_deliveries_total{provider="` + provider + `",result="` + result + `"}`
}

// webPushTopic is the Topic header a Web Push of collapse key carries
// (RFC 8030: 32 characters of base64url).
func webPushTopic(collapse string) string {
	h := sha256.Sum256([]byte(collapse))
	return base64.RawURLEncoding.EncodeToString(h[:])[:32]
}

// browser registers a Web Push subscription on the stand-in for u.
func (w *pushWorld) browser(t *testing.T, u servertest.User) webpush.Subscription {
	t.Helper()
	sub := w.wp.Subscribe(t)
	r := w.s.Do(t, http.MethodPost, "/api/devices/", u.Access, map[string]any{"platform": "webpush",
		"subscription": map[string]any{"endpoint": sub.Endpoint, "keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}}})
	wantStatus(t, r, http.StatusCreated)
	return sub
}

// phone registers an FCM token for u.
func (w *pushWorld) phone(t *testing.T, u servertest.User, token string) {
	t.Helper()
	wantStatus(t, w.s.Do(t, http.MethodPost, "/api/devices/", u.Access, map[string]string{"platform": "fcm", "token": token}), http.StatusCreated)
}

// decided waits until the dispatcher has decided every message up to id.
func (w *pushWorld) decided(t *testing.T, id int64) {
	t.Helper()
	eventually(t, "push mark reaches "+strconv.FormatInt(id, 10), func() bool {
		var mark int64
		if err := w.s.DB(t).QueryRow(`SELECT id FROM push_mark`).Scan(&mark); err != nil {
			t.Fatal(err)
		}
		return mark >= id
	})
}

// flush makes every delivery due and waits until none is pending.
func (w *pushWorld) flush(t *testing.T) {
	t.Helper()
	w.clock.Advance(2 * time.Second)
	eventually(t, "no pending delivery", func() bool {
		return count(t, w.s, `SELECT count(*) FROM deliveries WHERE state = 'pending'`) == 0
	})
}

func (w *pushWorld) deliveries(t *testing.T, u servertest.User) int {
	return count(t, w.s, `SELECT count(*) FROM deliveries WHERE user_id = ?`, u.ID)
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type pushPayload struct {
	Title string            `json:"title"`
	Body  string            `json:"body"`
	Badge int               `json:"badge"`
	Data  map[string]string `json:"data"`
}

func decode(t *testing.T, raw []byte) pushPayload {
	t.Helper()
	var p pushPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("push payload %s: %v", raw, err)
	}
	return p
}

// TestPush_OfflineParticipantGetsOnePerDevice: an offline participant's
// browser gets one encrypted push (the stand-in decrypts it) naming the
// sender, without the content (the default preview), with the message's
// ids and seq and the unread badge; their phone gets the same through
// FCM, collapsed per conversation. The sender is told nothing.
func TestPush_OfflineParticipantGetsOnePerDevice(t *testing.T) {
	w := newPushWorld(t, "")
	a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
	w.browser(t, a) // the sender's own device: never told of their message
	w.browser(t, b)
	w.phone(t, b, "bob-phone")
	conv := w.s.Conversation(t, a, b)
	id := w.s.Send(t, a, conv, "the secret plan")
	w.decided(t, id)
	w.flush(t)

	got := w.wp.Received()
	if len(got) != 1 {
		t.Fatalf("%d web pushes, want 1 (to bob's browser): %+v", len(got), got)
	}
	p := decode(t, got[0].Payload)
	if p.Title != "New message from "+a.Username || strings.Contains(string(got[0].Payload), "secret") {
		t.Errorf("web push %s: want the sender's name and no content", got[0].Payload)
	}
	want := map[string]string{"conversation_id": strconv.FormatInt(conv, 10), "message_id": strconv.FormatInt(id, 10), "seq": "1"}
	for k, v := range want {
		if p.Data[k] != v {
			t.Errorf("data[%s] = %q, want %q (%s)", k, p.Data[k], v, got[0].Payload)
		}
	}
	if p.Badge != 1 {
		t.Errorf("badge %d, want 1", p.Badge)
	}
	msgs := w.fcm.Messages()
	if len(msgs) != 1 || msgs[0].Token != "bob-phone" || msgs[0].Notification.Title != p.Title ||
		msgs[0].Data["message_id"] != want["message_id"] || msgs[0].Android.CollapseKey == "" {
		t.Fatalf("fcm messages %+v, want one to bob-phone like the web push", msgs)
	}
	if n := w.deliveries(t, a); n != 0 {
		t.Errorf("%d deliveries to the sender", n)
	}
}

// TestPush_OnlineUserGetsNone: a user with an open socket, on any node,
// is told in the app, not by a push.
func TestPush_OnlineUserGetsNone(t *testing.T) {
	w := newPushWorld(t, "")
	a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
	w.browser(t, b)
	conv := w.s.Conversation(t, a, b)
	ws, _, err := websocket.DefaultDialer.Dial(w.s.WSURL("/ws/chat/?token="+b.Access), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	eventually(t, "bob online", func() bool { return len(w.s.Hub.OnlineAmong(context.Background(), []int64{b.ID})) == 1 })
	id := w.s.Send(t, a, conv, "hi")
	w.decided(t, id)
	w.flush(t)
	if n := w.deliveries(t, b); n != 0 || len(w.wp.Received()) != 0 {
		t.Fatalf("%d deliveries, %d pushes to a user online", n, len(w.wp.Received()))
	}
}

// TestPush_MutedGetsNoneButMentions: a muted conversation pushes
// nothing, except a message that mentions the user.
func TestPush_MutedGetsNoneButMentions(t *testing.T) {
	w := newPushWorld(t, "")
	a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
	w.browser(t, b)
	conv := w.s.Conversation(t, a, b)
	wantStatus(t, w.s.Do(t, http.MethodPut, p("/api/conversations/%d/notifications/", conv), b.Access,
		map[string]string{"muted_until": "forever"}), http.StatusOK)
	id := w.s.Send(t, a, conv, "nothing for you")
	w.decided(t, id)
	w.flush(t)
	if n := w.deliveries(t, b); n != 0 {
		t.Fatalf("%d deliveries in a muted conversation", n)
	}
	id = w.s.Send(t, a, conv, "but you, @"+b.Username)
	w.decided(t, id)
	w.flush(t)
	got := w.wp.Received()
	if len(got) != 1 || decode(t, got[0].Payload).Data["message_id"] != strconv.FormatInt(id, 10) {
		t.Fatalf("pushes %+v, want one for the mention %d", got, id)
	}
}

// TestPush_BurstCoalesces: three messages while a user is offline make
// one delivery per device, which carries the last.
func TestPush_BurstCoalesces(t *testing.T) {
	w := newPushWorld(t, "")
	a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
	w.browser(t, b)
	w.phone(t, b, "bob-phone")
	conv := w.s.Conversation(t, a, b)
	var last int64
	for _, c := range []string{"one", "two", "three"} {
		last = w.s.Send(t, a, conv, c)
	}
	w.decided(t, last)
	if n := w.deliveries(t, b); n != 2 {
		t.Fatalf("%d deliveries, want 2 (one per device)", n)
	}
	w.flush(t)
	got := w.wp.Received()
	if len(got) != 1 || decode(t, got[0].Payload).Data["message_id"] != strconv.FormatInt(last, 10) {
		t.Fatalf("web pushes %+v, want one for message %d", got, last)
	}
	if m := w.fcm.Messages(); len(m) != 1 || m[0].Data["message_id"] != strconv.FormatInt(last, 10) || m[0].Data["seq"] != "3" {
		t.Fatalf("fcm messages %+v, want one for message %d", m, last)
	}
}

// TestPush_GoneDeviceIsRemoved: a subscription the push service says is
// gone (410) is deleted.
func TestPush_GoneDeviceIsRemoved(t *testing.T) {
	w := newPushWorld(t, "")
	a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
	sub := w.browser(t, b)
	w.wp.Fail(sub, http.StatusGone, 0)
	conv := w.s.Conversation(t, a, b)
	id := w.s.Send(t, a, conv, "hi")
	w.decided(t, id)
	w.clock.Advance(2 * time.Second)
	eventually(t, "the device deleted", func() bool {
		return count(t, w.s, `SELECT count(*) FROM devices WHERE user_id = ?`, b.ID) == 0
	})
	r := w.s.Do(t, http.MethodGet, "/api/devices/", b.Access, nil)
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.Body), sub.Endpoint) {
		t.Fatalf("devices still list the gone subscription: %s", r.Body)
	}
}

// TestPush_Preview: PUSH_PREVIEW=full shows the sender and the content
// (cut at 200 characters); none shows neither.
func TestPush_Preview(t *testing.T) {
	long := strings.Repeat("é", 250)
	for _, tt := range []struct {
		name, preview, content string
		title                  func(sender string) string
		body                   string
	}{
		{"full", "full", "see you at noon", func(s string) string { return s }, "see you at noon"},
		{"full_cut", "full", long, func(s string) string { return s }, strings.Repeat("é", 199) + "…"},
		{"none", "none", "see you at noon", func(string) string { return "New message" }, ""},
	} {
		// Names without '#': servertest opens the file by a file: URI.
		t.Run(tt.name, func(t *testing.T) {
			w := newPushWorld(t, tt.preview)
			a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
			w.browser(t, b)
			id := w.s.Send(t, a, w.s.Conversation(t, a, b), tt.content)
			w.decided(t, id)
			w.flush(t)
			got := w.wp.Received()
			if len(got) != 1 {
				t.Fatalf("%d pushes", len(got))
			}
			p := decode(t, got[0].Payload)
			if p.Title != tt.title(a.Username) || p.Body != tt.body {
				t.Fatalf("title %q body %q", p.Title, p.Body)
			}
			if tt.preview == "none" && strings.Contains(string(got[0].Payload), a.Username) {
				t.Fatalf("preview none names the sender: %s", got[0].Payload)
			}
		})
	}
}

// TestPush_HangingProviderNeverSlowsSends: with the push service holding
// every request, twenty sends over REST are all answered 201 while it
// still hangs: no send waits for a push.
func TestPush_HangingProviderNeverSlowsSends(t *testing.T) {
	w := newPushWorld(t, "")
	a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
	sub := w.browser(t, b)
	w.wp.Hang(sub)
	conv := w.s.Conversation(t, a, b)
	id := w.s.Send(t, a, conv, "first")
	w.decided(t, id)
	w.clock.Advance(2 * time.Second)
	eventually(t, "the push service holds a request", func() bool { return w.wp.Requests() >= 1 })
	start := time.Now()
	for i := range 20 {
		w.s.Send(t, a, conv, "more "+strconv.Itoa(i)) // fails the test unless 201
	}
	// The provider's deadline is 15s: a send held up by it would take
	// at least that.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("20 sends took %v while the push service hung", d)
	}
	if n := len(w.wp.Received()); n != 0 {
		t.Fatalf("the push service accepted %d: it should still hang", n)
	}
}

// TestPush_EveryProviderGetsPayloadAndCollapseKey: an offline user with a
// browser, an Android phone and an iPhone gets one push on each, through
// each provider's stand-in, with the sender's name, the unread badge, the
// message's ids and the conversation's collapse key; /metrics counts
// each provider's delivery queued and sent, and none left pending.
func TestPush_EveryProviderGetsPayloadAndCollapseKey(t *testing.T) {
	w := newPushWorld(t, "")
	a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
	w.browser(t, b)
	w.phone(t, b, "bob-android")
	iphone := apnstest.DeviceToken()
	w.iphone(t, b, iphone)
	conv := w.s.Conversation(t, a, b)
	id := w.s.Send(t, a, conv, "lunch?")
	w.decided(t, id)
	if m := w.metrics(t); m[`confab_deliveries_pending{provider="apns"}`] != 1 || m[`confab_deliveries_pending{provider="fcm"}`] != 1 ||
		m[`confab_deliveries_pending{provider="webpush"}`] != 1 || m[`confab_deliveries_pending{provider="webhook"}`] != 0 {
		t.Errorf("before the sends, pending %v %v %v: want one per provider", m[`confab_deliveries_pending{provider="apns"}`],
			m[`confab_deliveries_pending{provider="fcm"}`], m[`confab_deliveries_pending{provider="webpush"}`])
	}
	w.flush(t)

	collapse := "conv-" + strconv.FormatInt(conv, 10)
	title := "New message from " + a.Username
	msgID := strconv.FormatInt(id, 10)

	wp := w.wp.Received()
	if len(wp) != 1 {
		t.Fatalf("%d web pushes, want 1", len(wp))
	}
	if p := decode(t, wp[0].Payload); p.Title != title || p.Badge != 1 || p.Data["message_id"] != msgID || wp[0].Topic != webPushTopic(collapse) {
		t.Errorf("web push %s topic %q: want %q, badge 1, message %s, topic of %s", wp[0].Payload, wp[0].Topic, title, msgID, collapse)
	}

	fm := w.fcm.Messages()
	if len(fm) != 1 {
		t.Fatalf("%d FCM messages, want 1", len(fm))
	}
	if m := fm[0]; m.Token != "bob-android" || m.Notification.Title != title || m.Data["message_id"] != msgID ||
		m.Android.CollapseKey != collapse || m.Android.Notification.NotificationCount == nil || *m.Android.Notification.NotificationCount != 1 {
		t.Errorf("FCM message %+v: want %q, message %s, collapse key %s, count 1", m, title, msgID, collapse)
	}

	an := w.apns.Received()
	if len(an) != 1 {
		t.Fatalf("%d APNs notifications, want 1", len(an))
	}
	n := an[0]
	aps, _ := n.Payload["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	if n.DeviceToken != iphone || n.Header.Get("apns-collapse-id") != collapse || n.Header.Get("apns-topic") != apnstest.Topic ||
		alert["title"] != title || aps["badge"] != float64(1) || n.Payload["message_id"] != msgID {
		t.Errorf("APNs notification to %s, headers %v, payload %v: want %q, badge 1, message %s, collapse id %s",
			n.DeviceToken, n.Header, n.Payload, title, msgID, collapse)
	}

	m := w.metrics(t)
	for _, provider := range []string{"webpush", "fcm", "apns"} {
		if m[deliveriesSeries(provider, "queued")] != 1 || m[deliveriesSeries(provider, "sent")] != 1 ||
			m[deliveriesSeries(provider, "failed")] != 0 || m[deliveriesSeries(provider, "gone")] != 0 {
			t.Errorf("%s: queued %v sent %v failed %v gone %v, want 1 1 0 0", provider, m[deliveriesSeries(provider, "queued")],
				m[deliveriesSeries(provider, "sent")], m[deliveriesSeries(provider, "failed")], m[deliveriesSeries(provider, "gone")])
		}
		if v, ok := m[`confab_deliveries_pending{provider="`+provider+`"}`]; !ok || v != 0 {
			t.Errorf("%s pending %v (exported %v), want 0", provider, v, ok)
		}
	}
}

// TestPush_GoneTokensAreRemoved: each provider's "this device is gone"
// answer deletes the device (it is no longer listed), counts the
// delivery gone, and the user's other devices stay.
func TestPush_GoneTokensAreRemoved(t *testing.T) {
	for _, tt := range []struct {
		name, provider string
		register       func(w *pushWorld, t *testing.T, u servertest.User) // registers the device and makes it gone
	}{
		{"webpush_404", "webpush", func(w *pushWorld, t *testing.T, u servertest.User) {
			w.wp.Fail(w.browser(t, u), http.StatusNotFound, 0)
		}},
		{"webpush_410", "webpush", func(w *pushWorld, t *testing.T, u servertest.User) {
			w.wp.Fail(w.browser(t, u), http.StatusGone, 0)
		}},
		{"fcm_unregistered", "fcm", func(w *pushWorld, t *testing.T, u servertest.User) {
			w.phone(t, u, "old-android")
			w.fcm.Unregister("old-android")
		}},
		{"apns_410_unregistered", "apns", func(w *pushWorld, t *testing.T, u servertest.User) {
			token := apnstest.DeviceToken()
			w.iphone(t, u, token)
			w.apns.Unregister(token)
		}},
		{"apns_bad_device_token", "apns", func(w *pushWorld, t *testing.T, u servertest.User) {
			token := apnstest.DeviceToken()
			w.iphone(t, u, token)
			w.apns.BadDeviceToken(token)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newPushWorld(t, "")
			a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
			tt.register(w, t, b)
			w.phone(t, b, "good-android") // stays
			conv := w.s.Conversation(t, a, b)
			id := w.s.Send(t, a, conv, "hi")
			w.decided(t, id)
			w.clock.Advance(2 * time.Second)
			eventually(t, "the gone device deleted", func() bool { return w.devices(t, b) == 1 })
			w.flush(t)
			if got := w.fcm.Messages(); len(got) != 1 || got[0].Token != "good-android" {
				t.Errorf("FCM messages %+v: want one to the device that stays", got)
			}
			m := w.metrics(t)
			wantSent := 0.0
			if tt.provider == "fcm" {
				wantSent = 1 // to the device that stays
			}
			if m[deliveriesSeries(tt.provider, "gone")] != 1 || m[deliveriesSeries(tt.provider, "sent")] != wantSent {
				t.Errorf("%s gone %v sent %v, want 1 and %v", tt.provider, m[deliveriesSeries(tt.provider, "gone")],
					m[deliveriesSeries(tt.provider, "sent")], wantSent)
			}
			// Later messages make no delivery for the gone device.
			id = w.s.Send(t, a, conv, "again")
			w.decided(t, id)
			if n := count(t, w.s, `SELECT count(*) FROM deliveries WHERE user_id = ? AND state = 'pending'`, b.ID); n != 1 {
				t.Errorf("%d pending deliveries, want 1 (the device that stays)", n)
			}
		})
	}
}

// TestPush_RetriesAndGivingUpAreCounted: a push service failing with 500
// counts a failed send, retried; a device whose platform has no provider
// configured is given up at once.
func TestPush_RetriesAndGivingUpAreCounted(t *testing.T) {
	w := newPushWorld(t, "")
	a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
	sub := w.browser(t, b)
	w.wp.Fail(sub, http.StatusInternalServerError, 0)
	conv := w.s.Conversation(t, a, b)
	id := w.s.Send(t, a, conv, "hi")
	w.decided(t, id)
	w.clock.Advance(2 * time.Second)
	eventually(t, "a failed send counted", func() bool { return w.metrics(t)[deliveriesSeries("webpush", "failed")] >= 1 })
	if m := w.metrics(t); m[`confab_deliveries_pending{provider="webpush"}`] != 1 || m[deliveriesSeries("webpush", "given_up")] != 0 {
		t.Errorf("pending %v given up %v: want the failed delivery pending for a retry",
			m[`confab_deliveries_pending{provider="webpush"}`], m[deliveriesSeries("webpush", "given_up")])
	}
	// Past the maximum age (an hour) the next failure gives up.
	w.clock.Advance(2 * time.Hour)
	eventually(t, "the delivery given up", func() bool { return w.metrics(t)[deliveriesSeries("webpush", "given_up")] == 1 })
	if m := w.metrics(t); m[`confab_deliveries_pending{provider="webpush"}`] != 0 {
		t.Errorf("pending %v after giving up", m[`confab_deliveries_pending{provider="webpush"}`])
	}
}

// TestPush_DoneDeliveriesArePruned: a sent delivery stays in the outbox
// for PUSH_RETENTION, then the dispatcher deletes it; a pending one stays.
func TestPush_DoneDeliveriesArePruned(t *testing.T) {
	w := newPushWorld(t, "")
	a, b, c := w.s.Register(t, "ann"), w.s.Register(t, "bob"), w.s.Register(t, "cid")
	w.browser(t, b)
	sub := w.browser(t, c)
	w.wp.Hang(sub) // cid's delivery stays pending: claimed, then retried
	conv := w.s.Conversation(t, a, b)
	id := w.s.Send(t, a, conv, "hi")
	id2 := w.s.Send(t, a, w.s.Conversation(t, a, c), "hi")
	w.decided(t, max(id, id2))
	w.clock.Advance(2 * time.Second)
	eventually(t, "bob's push sent", func() bool { return len(w.wp.Received()) == 1 })
	eventually(t, "its delivery recorded", func() bool {
		return count(t, w.s, `SELECT count(*) FROM deliveries WHERE user_id = ? AND state = 'sent'`, b.ID) == 1
	})
	// rounds makes the decide loop run two rounds, each nudged by a
	// commit: the first's prune has ended when the second has decided.
	// (Tokens issued before the clock moved on a day have expired.)
	rounds := func(name string) {
		t.Helper()
		u := w.s.Register(t, name)
		conv := w.s.Conversation(t, u, a)
		w.decided(t, w.s.Send(t, u, conv, "one"))
		w.decided(t, w.s.Send(t, u, conv, "two"))
	}
	w.clock.Advance(24 * time.Hour) // within the 7 days
	rounds("dan")
	if n := w.deliveries(t, b); n != 1 {
		t.Fatalf("%d deliveries of bob's after a day, want 1 (kept for 7 days)", n)
	}
	w.clock.Advance(7 * 24 * time.Hour)
	rounds("eve")
	if n := w.deliveries(t, b); n != 0 {
		t.Fatalf("%d deliveries of bob's after 8 days, want 0 (pruned)", n)
	}
	if n := count(t, w.s, `SELECT count(*) FROM deliveries WHERE user_id = ? AND state = 'pending'`, c.ID); n != 1 {
		t.Fatalf("%d pending deliveries of cid's, want 1: pending ones are never pruned", n)
	}
}

// TestPush_DelayHoldsBackWhatWasRead: with PUSH_DELAY, a push waits that
// long; a recipient who reads the conversation meanwhile gets none,
// one who does not gets theirs once it has passed, and a later message
// the reader has not read is pushed to them again.
func TestPush_DelayHoldsBackWhatWasRead(t *testing.T) {
	w := newPushWorldConfig(t, func(c *config.Config) { c.PushDelay = 5 * time.Second })
	a, b, c := w.s.Register(t, "ann"), w.s.Register(t, "bob"), w.s.Register(t, "cat")
	w.browser(t, b)
	catSub := w.browser(t, c)
	conv := w.s.Conversation(t, a, b, c)
	id := w.s.Send(t, a, conv, "are you there?")
	w.decided(t, id)

	w.clock.Advance(2 * time.Second) // past the coalescing second, within the delay
	time.Sleep(300 * time.Millisecond)
	if n := w.wp.Requests(); n != 0 {
		t.Fatalf("%d pushes sent within PUSH_DELAY", n)
	}
	// Bob, who went to the background a moment ago, reads it on another
	// device (over REST: no socket stays open).
	wantStatus(t, w.s.Do(t, http.MethodPost, p("/api/conversations/%d/read/", conv), b.Access,
		map[string]int64{"message_id": id}), http.StatusOK)
	w.clock.Advance(4 * time.Second)
	eventually(t, "cat's push", func() bool { return len(w.wp.Received()) >= 1 })
	eventually(t, "no pending delivery", func() bool {
		return count(t, w.s, `SELECT count(*) FROM deliveries WHERE state = 'pending'`) == 0
	})
	got := w.wp.Received()
	if len(got) != 1 || got[0].Subscription.Endpoint != catSub.Endpoint || decode(t, got[0].Payload).Data["message_id"] != strconv.FormatInt(id, 10) {
		t.Fatalf("pushes %+v, want one, to cat", got)
	}
	if n := w.deliveries(t, b); n != 0 {
		t.Fatalf("bob, who read the message within the delay, has %d deliveries", n)
	}
	if n := w.deliveries(t, c); n != 1 {
		t.Fatalf("cat has %d deliveries, want 1", n)
	}

	next := w.s.Send(t, a, conv, "and now?")
	w.decided(t, next)
	w.clock.Advance(7 * time.Second)
	eventually(t, "the second message's pushes", func() bool { return len(w.wp.Received()) == 3 })
	for _, r := range w.wp.Received()[1:] {
		if decode(t, r.Payload).Data["message_id"] != strconv.FormatInt(next, 10) {
			t.Fatalf("push %s, want message %d", r.Payload, next)
		}
	}
}

// TestPush_DelayHoldsBackWhoCameBack: a recipient offline when the
// message was decided who opens a socket within PUSH_DELAY gets no push
// (the app shows it); once they are gone again, the next message is
// pushed.
func TestPush_DelayHoldsBackWhoCameBack(t *testing.T) {
	w := newPushWorldConfig(t, func(c *config.Config) { c.PushDelay = 5 * time.Second })
	a, b := w.s.Register(t, "ann"), w.s.Register(t, "bob")
	w.browser(t, b)
	w.phone(t, b, "bob-phone")
	conv := w.s.Conversation(t, a, b)
	id := w.s.Send(t, a, conv, "hello")
	w.decided(t, id)
	if n := w.deliveries(t, b); n != 2 {
		t.Fatalf("%d deliveries decided, want 2 (bob was offline)", n)
	}

	ws, _, err := websocket.DefaultDialer.Dial(w.s.WSURL("/ws/chat/?token="+b.Access), nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob online", func() bool { return len(w.s.Hub.OnlineAmong(context.Background(), []int64{b.ID})) == 1 })
	w.clock.Advance(6 * time.Second)
	eventually(t, "the deliveries dropped", func() bool { return w.deliveries(t, b) == 0 })
	if n, m := w.wp.Requests(), len(w.fcm.Messages()); n != 0 || m != 0 {
		t.Fatalf("%d web pushes, %d fcm messages to a user who came back online", n, m)
	}

	ws.Close()
	eventually(t, "bob offline", func() bool { return len(w.s.Hub.OnlineAmong(context.Background(), []int64{b.ID})) == 0 })
	next := w.s.Send(t, a, conv, "are you still there?")
	w.decided(t, next)
	w.clock.Advance(6 * time.Second)
	eventually(t, "the pushes of the next message", func() bool { return len(w.wp.Received()) == 1 && len(w.fcm.Messages()) == 1 })
	if got := decode(t, w.wp.Received()[0].Payload).Data["message_id"]; got != strconv.FormatInt(next, 10) {
		t.Fatalf("push for message %s, want %d", got, next)
	}
}

// TestPush_DeliveriesAreTheCallersOwn: GET /api/push/deliveries/ counts
// and lists the deliveries made for the caller only, newest first, with
// what each send recorded; another participant's (and the sender's
// empty one) are theirs alone.
func TestPush_DeliveriesAreTheCallersOwn(t *testing.T) {
	w := newPushWorld(t, "")
	a, b, c := w.s.Register(t, "ann"), w.s.Register(t, "bob"), w.s.Register(t, "cat")
	w.browser(t, b)
	w.phone(t, b, "bob-phone")
	w.wp.Fail(w.browser(t, c), http.StatusBadRequest, 0) // refused: failed, not retried
	conv := w.s.Conversation(t, a, b, c)
	first := w.s.Send(t, a, conv, "one")
	w.decided(t, first)
	w.flush(t)
	second := w.s.Send(t, a, conv, "two")
	w.decided(t, second) // not due yet: pending

	type outbox struct {
		Counts  map[string]int   `json:"counts"`
		Results []map[string]any `json:"results"`
	}
	get := func(u servertest.User, query string) outbox {
		t.Helper()
		r := w.s.Do(t, http.MethodGet, "/api/push/deliveries/"+query, u.Access, nil)
		wantStatus(t, r, http.StatusOK)
		var o outbox
		if err := json.Unmarshal(r.Body, &o); err != nil {
			t.Fatalf("%s: %v", r.Body, err)
		}
		return o
	}

	o := get(b, "")
	if o.Counts["pending"] != 2 || o.Counts["sent"] != 2 || o.Counts["failed"] != 0 || len(o.Results) != 4 {
		t.Fatalf("bob's outbox %+v, want 2 pending and 2 sent", o)
	}
	platforms := map[string]int{}
	for i, d := range o.Results {
		wantKeys(t, "delivery", d, "id", "device_id", "platform", "conversation_id", "message_id", "state",
			"attempts", "last_error", "created_at", "updated_at", "next_at")
		if i > 0 && num(d["id"]) >= num(o.Results[i-1]["id"]) {
			t.Errorf("not newest first: %v", o.Results)
		}
		if num(d["conversation_id"]) != conv || d["last_error"] != nil {
			t.Errorf("delivery %v", d)
		}
		wantTimestamp(t, "created_at", d["created_at"])
		wantTimestamp(t, "updated_at", d["updated_at"])
		switch d["state"] {
		case "pending":
			if num(d["message_id"]) != second || num(d["attempts"]) != 0 {
				t.Errorf("pending delivery %v", d)
			}
			wantTimestamp(t, "next_at", d["next_at"])
		case "sent":
			if num(d["message_id"]) != first || num(d["attempts"]) != 1 || d["next_at"] != nil {
				t.Errorf("sent delivery %v", d)
			}
			platforms[d["platform"].(string)]++
		default:
			t.Errorf("delivery %v", d)
		}
	}
	if platforms["webpush"] != 1 || platforms["fcm"] != 1 {
		t.Errorf("sent to %v, want bob's browser and phone", platforms)
	}

	co := get(c, "")
	if co.Counts["failed"] != 1 || co.Counts["pending"] != 1 || len(co.Results) != 2 {
		t.Fatalf("cat's outbox %+v, want 1 failed and 1 pending", co)
	}
	failed := co.Results[1]
	if failed["state"] != "failed" || failed["platform"] != "webpush" || num(failed["message_id"]) != first {
		t.Errorf("cat's failed delivery %v", failed)
	}
	if e, _ := failed["last_error"].(string); !strings.Contains(e, "400") {
		t.Errorf("last_error %v, want the push service's answer", failed["last_error"])
	}
	for _, d := range co.Results {
		for _, mine := range o.Results {
			if num(d["id"]) == num(mine["id"]) || num(d["device_id"]) == num(mine["device_id"]) {
				t.Errorf("cat sees bob's delivery %v", d)
			}
		}
	}
	if ao := get(a, ""); len(ao.Results) != 0 || ao.Counts["pending"] != 0 || ao.Counts["sent"] != 0 || ao.Counts["failed"] != 0 {
		t.Errorf("the sender's outbox %+v, want empty with zero counts", ao)
	}

	if one := get(b, "?limit=1"); len(one.Results) != 1 || num(one.Results[0]["id"]) != num(o.Results[0]["id"]) || one.Counts["sent"] != 2 {
		t.Errorf("limit 1: %+v", one)
	}
	for _, bad := range []string{"0", "101", "-1", "x"} {
		wantInvalid(t, w.s.Do(t, http.MethodGet, "/api/push/deliveries/?limit="+bad, b.Access, nil), "limit")
	}
	wantStatus(t, w.s.Do(t, http.MethodGet, "/api/push/deliveries/", "", nil), http.StatusUnauthorized)
}

// TestPush_NoneFromABlockedUser: a user gets no push for the messages of
// someone they block, not even one that mentions them; the others in
// the group still do, and unblocking brings them back.
func TestPush_NoneFromABlockedUser(t *testing.T) {
	w := newPushWorld(t, "")
	a, b, c := w.s.Register(t, "ann"), w.s.Register(t, "bob"), w.s.Register(t, "cy")
	w.phone(t, b, "bob-phone")
	w.phone(t, c, "cy-phone")
	conv := w.s.Conversation(t, a, b, c)
	wantStatus(t, w.s.Do(t, http.MethodPut, p("/api/users/%d/block/", a.ID), b.Access, nil), http.StatusNoContent)
	id := w.s.Send(t, a, conv, "hey @"+b.Username+" and @"+c.Username)
	w.decided(t, id)
	w.flush(t)
	if n := w.deliveries(t, b); n != 0 {
		t.Errorf("%d deliveries to bob from ann, whom he blocks", n)
	}
	if n := w.deliveries(t, c); n != 1 {
		t.Errorf("%d deliveries to cy, want 1", n)
	}
	for _, m := range w.fcm.Messages() {
		if m.Token == "bob-phone" {
			t.Errorf("bob's phone got %+v", m)
		}
	}
	wantStatus(t, w.s.Do(t, http.MethodDelete, p("/api/users/%d/block/", a.ID), b.Access, nil), http.StatusNoContent)
	id = w.s.Send(t, a, conv, "and now?")
	w.decided(t, id)
	w.flush(t)
	if n := w.deliveries(t, b); n != 1 {
		t.Errorf("%d deliveries to bob after unblocking, want 1", n)
	}
}
