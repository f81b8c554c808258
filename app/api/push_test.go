package api_test

import (
	"context"
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
	"github.com/confab/confab/app/push/fcm/fcmtest"
	"github.com/confab/confab/app/push/webpush"
	"github.com/confab/confab/app/push/webpush/webpushtest"
	"github.com/confab/confab/app/server/servertest"
)

// pushWorld is a server whose dispatcher pushes to a Web Push stand-in
// and an FCM stand-in. Its clock stands still: a delivery is due a
// second after it was decided (the coalescing delay), so nothing is sent
// until the test advances the clock, and what is decided before then
// coalesces whatever the timing.
type pushWorld struct {
	s     *servertest.Server
	clock *servertest.Clock
	wp    *webpushtest.Server
	fcm   *fcmtest.Server
}

func newPushWorld(t *testing.T, preview string) *pushWorld {
	t.Helper()
	w := &pushWorld{clock: servertest.NewClock(), wp: webpushtest.NewServer(t)}
	var creds []byte
	w.fcm, creds = fcmtest.NewServer(t)
	path := filepath.Join(t.TempDir(), "fcm.json")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	w.s = servertest.Start(t, servertest.WithNow(w.clock.Now), servertest.WithConfig(func(c *config.Config) {
		c.WebPushAllowed = w.wp.Allowed()
		c.FCMCredentialsFile, c.FCMBaseURL = path, w.fcm.URL
		if preview != "" {
			c.PushPreview = preview
		}
	}))
	return w
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
