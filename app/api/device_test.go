package api_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/push/webpush"
	"github.com/confab/confab/app/server/servertest"
)

// subscription is a Web Push subscription as a browser makes one, on
// endpoint, with real keys.
func subscription(t testing.TB, endpoint string) map[string]any {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return map[string]any{"endpoint": endpoint, "keys": map[string]string{
		"p256dh": base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
		"auth":   base64.RawURLEncoding.EncodeToString(auth)}}
}

func webPush(t testing.TB, endpoint string) map[string]any {
	return map[string]any{"platform": "webpush", "subscription": subscription(t, endpoint)}
}

func token(platform, tok string) map[string]any {
	return map[string]any{"platform": platform, "token": tok}
}

// wantDevice checks the contract's device object and returns its id.
func wantDevice(t testing.TB, r servertest.Response, status int, platform string) int64 {
	t.Helper()
	wantStatus(t, r, status)
	m := r.Map(t)
	wantKeys(t, "device", m, "id", "platform", "created_at")
	wantTimestamp(t, "device.created_at", m["created_at"])
	if m["platform"] != platform || num(m["id"]) <= 0 {
		t.Errorf("device %s, want platform %s", r.Body, platform)
	}
	return num(m["id"])
}

// deviceIDs lists the caller's devices, checking that no token, endpoint
// or key is ever shown.
func deviceIDs(t testing.TB, s *servertest.Server, u servertest.User) []int64 {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/api/devices/", u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	m := r.Map(t)
	wantKeys(t, "device list", m, "results")
	list := m["results"].([]any)
	for _, d := range list {
		wantKeys(t, "device", d.(map[string]any), "id", "platform", "created_at")
	}
	return ids(list)
}

func TestDevices_RegisterEachPlatformListAndDelete(t *testing.T) {
	s := servertest.Start(t)
	ann := s.Register(t, "ann")
	fcm := wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", ann.Access, token("fcm", "fcm-token:APA91b")), http.StatusCreated, "fcm")
	apns := wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", ann.Access, token("apns", strings.Repeat("ab", 32))), http.StatusCreated, "apns")
	sub := webPush(t, "https://fcm.googleapis.com/fcm/send/abc:def")
	wp := wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", ann.Access, sub), http.StatusCreated, "webpush")

	// The same token, or the same endpoint (with the keys the browser
	// gives now), is the same device.
	if id := wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", ann.Access, token("fcm", "fcm-token:APA91b")), http.StatusOK, "fcm"); id != fcm {
		t.Errorf("fcm token again: id %d, want %d", id, fcm)
	}
	if id := wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", ann.Access, webPush(t, "https://fcm.googleapis.com/fcm/send/abc:def")), http.StatusOK, "webpush"); id != wp {
		t.Errorf("endpoint again: id %d, want %d", id, wp)
	}
	r := s.Do(t, http.MethodGet, "/api/devices/", ann.Access, nil)
	for _, secret := range []string{"APA91b", "abab", "fcm/send", sub["subscription"].(map[string]any)["keys"].(map[string]string)["auth"]} {
		if strings.Contains(string(r.Body), secret) {
			t.Errorf("the device list shows %q: %s", secret, r.Body)
		}
	}
	if got := deviceIDs(t, s, ann); len(got) != 3 || got[0] != fcm || got[1] != apns || got[2] != wp {
		t.Errorf("devices %v, want %v", got, []int64{fcm, apns, wp})
	}

	// Someone else's device is not found, as one that does not exist.
	bob := s.Register(t, "bob")
	other := s.Do(t, http.MethodDelete, p("/api/devices/%d/", apns), bob.Access, nil)
	wantError(t, other, http.StatusNotFound, "not_found")
	missing := s.Do(t, http.MethodDelete, "/api/devices/999999/", bob.Access, nil)
	if string(missing.Body) != string(other.Body) {
		t.Errorf("someone else's device %s, a missing one %s", other.Body, missing.Body)
	}
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/devices/%d/", apns), ann.Access, nil), http.StatusNoContent)
	wantError(t, s.Do(t, http.MethodDelete, p("/api/devices/%d/", apns), ann.Access, nil), http.StatusNotFound, "not_found")
	if got := deviceIDs(t, s, ann); len(got) != 2 {
		t.Errorf("devices after delete %v", got)
	}
	// Logging out keeps the devices: removing them is the client's call.
	wantStatus(t, s.Do(t, http.MethodPost, "/api/auth/logout/", ann.Access, map[string]string{"refresh": ann.Refresh}), http.StatusNoContent)
	if n := count(t, s, `SELECT count(*) FROM devices WHERE user_id = ?`, ann.ID); n != 2 {
		t.Errorf("%d devices after logout, want 2", n)
	}
}

func TestDevices_TokenMovesToAnotherUser(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", ann.Access, token("apns", "handed-down-phone")), http.StatusCreated, "apns")
	moved := wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", bob.Access, token("apns", "handed-down-phone")), http.StatusCreated, "apns")
	if got := deviceIDs(t, s, ann); len(got) != 0 {
		t.Errorf("the previous owner still has %v", got)
	}
	if got := deviceIDs(t, s, bob); len(got) != 1 || got[0] != moved {
		t.Errorf("the new owner has %v, want [%d]", got, moved)
	}
	wantError(t, s.Do(t, http.MethodDelete, p("/api/devices/%d/", moved), ann.Access, nil), http.StatusNotFound, "not_found")
}

func TestDevices_Validation(t *testing.T) {
	local := "http://127.0.0.1:9999/push/1"
	s := servertest.Start(t)
	u := s.Register(t, "ann")
	bad := func(body map[string]any, mut func(keys map[string]string)) map[string]any {
		mut(body["subscription"].(map[string]any)["keys"].(map[string]string))
		return body
	}
	notOnCurve := append([]byte{4}, make([]byte, 64)...)
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	compressed := k.PublicKey().Bytes()[:33]
	compressed[0] = 2
	tests := []struct {
		name  string
		body  any
		field string
	}{
		{"no platform", map[string]any{"token": "x"}, "platform"},
		{"unknown platform", token("sms", "x"), "platform"},
		{"platform of another type", map[string]any{"platform": 1, "token": "x"}, "platform"},
		{"empty token", token("fcm", ""), "token"},
		{"no token", map[string]any{"platform": "apns"}, "token"},
		{"oversized token", token("fcm", strings.Repeat("a", 4097)), "token"},
		{"token with a space", token("apns", "ab cd"), "token"},
		{"token not ASCII", token("fcm", "tökén"), "token"},
		{"token with a control character", token("fcm", "ab\x01cd"), "token"},
		{"no subscription", map[string]any{"platform": "webpush"}, "subscription"},
		{"look-alike host", webPush(t, "https://fcm.googleapis.com.evil.com/x"), "subscription"},
		{"userinfo", webPush(t, "https://fcm.googleapis.com@evil.com/x"), "subscription"},
		{"local endpoint by default", webPush(t, local), "subscription"},
		{"not a URL", webPush(t, "fcm"), "subscription"},
		{"p256dh not base64url", bad(webPush(t, "https://fcm.googleapis.com/x"), func(k map[string]string) { k["p256dh"] = "not base64!" }), "subscription"},
		{"p256dh not on the curve", bad(webPush(t, "https://fcm.googleapis.com/x"), func(k map[string]string) {
			k["p256dh"] = base64.RawURLEncoding.EncodeToString(notOnCurve)
		}), "subscription"},
		{"p256dh compressed", bad(webPush(t, "https://fcm.googleapis.com/x"), func(k map[string]string) {
			k["p256dh"] = base64.RawURLEncoding.EncodeToString(compressed)
		}), "subscription"},
		{"p256dh missing", bad(webPush(t, "https://fcm.googleapis.com/x"), func(k map[string]string) { delete(k, "p256dh") }), "subscription"},
		{"auth 15 bytes", bad(webPush(t, "https://fcm.googleapis.com/x"), func(k map[string]string) {
			k["auth"] = base64.RawURLEncoding.EncodeToString(make([]byte, 15))
		}), "subscription"},
		{"auth not base64url", bad(webPush(t, "https://fcm.googleapis.com/x"), func(k map[string]string) { k["auth"] = "%%%%" }), "subscription"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantInvalid(t, s.Do(t, http.MethodPost, "/api/devices/", u.Access, tt.body), tt.field)
		})
	}
	if n := count(t, s, `SELECT count(*) FROM devices`); n != 0 {
		t.Errorf("%d devices stored from invalid registrations", n)
	}
	// Padded base64url, as some libraries write it, is accepted.
	sub := webPush(t, "https://updates.push.services.mozilla.com/wpush/v2/x")
	keys := sub["subscription"].(map[string]any)["keys"].(map[string]string)
	keys["auth"] += "=="
	wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", u.Access, sub), http.StatusCreated, "webpush")

	// A push service of one's own is accepted once listed.
	s2 := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WebPushAllowed = append(webpush.DefaultAllowed(), "http://127.0.0.1:9999/")
	}))
	u2 := s2.Register(t, "ann")
	wantDevice(t, s2.Do(t, http.MethodPost, "/api/devices/", u2.Access, webPush(t, local)), http.StatusCreated, "webpush")
	wantInvalid(t, s2.Do(t, http.MethodPost, "/api/devices/", u2.Access, webPush(t, "http://127.0.0.1:9998/push/1")), "subscription")
}

func TestDevices_TwentyFirstDropsTheOldest(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	u := s.Register(t, "ann")
	var first []int64
	for i := range 20 {
		first = append(first, wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", u.Access, token("fcm", p("tok-%d", i))), http.StatusCreated, "fcm"))
		clk.Advance(time.Second)
	}
	// tok-0 registered again is no longer the oldest: tok-1 goes.
	wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", u.Access, token("fcm", "tok-0")), http.StatusOK, "fcm")
	clk.Advance(time.Second)
	last := wantDevice(t, s.Do(t, http.MethodPost, "/api/devices/", u.Access, token("fcm", "tok-20")), http.StatusCreated, "fcm")
	got := deviceIDs(t, s, u)
	want := append(append([]int64{first[0]}, first[2:]...), last)
	if len(got) != 20 || got[0] != want[0] || got[1] != want[1] || got[19] != want[19] {
		t.Errorf("devices %v, want %v", got, want)
	}
}

func TestVAPIDPublicKey_StableAcrossRestartsOrConfigured(t *testing.T) {
	s := servertest.Start(t)
	u := s.Register(t, "ann")
	wantError(t, s.Do(t, http.MethodGet, "/api/push/vapid-public-key/", "", nil), http.StatusUnauthorized, "not_authenticated")
	key := func(s *servertest.Server, u servertest.User) string {
		t.Helper()
		r := s.Do(t, http.MethodGet, "/api/push/vapid-public-key/", u.Access, nil)
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		wantKeys(t, "vapid key", m, "public_key")
		k, _ := m["public_key"].(string)
		if b, err := base64.RawURLEncoding.DecodeString(k); err != nil || len(b) != 65 {
			t.Fatalf("public_key %q is not a base64url uncompressed P-256 point (%v)", k, err)
		}
		return k
	}
	before := key(s, u)
	s.Restart()
	if after := key(s, u); after != before {
		t.Errorf("public key %q after a restart, %q before", after, before)
	}

	keys, err := webpush.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	c := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.VAPIDPrivateKey = keys.Private() }))
	if got := key(c, c.Register(t, "ann")); got != keys.Public() {
		t.Errorf("public key %q, want the configured %q", got, keys.Public())
	}
}

func TestNotifications_Mute(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	ann, bob, eve := s.Register(t, "ann"), s.Register(t, "bob"), s.Register(t, "eve")
	conv := s.Conversation(t, ann, bob)
	path := p("/api/conversations/%d/notifications/", conv)
	mute := func(u servertest.User, v any) map[string]any {
		t.Helper()
		r := s.Do(t, http.MethodPut, path, u.Access, map[string]any{"muted_until": v})
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		wantKeys(t, "notifications", m, "conversation_id", "muted_until")
		if num(m["conversation_id"]) != conv {
			t.Errorf("conversation_id %v, want %d", m["conversation_id"], conv)
		}
		return m
	}
	stored := func(u servertest.User) any {
		t.Helper()
		var v any
		if err := s.DB(t).QueryRow(s.Q(`SELECT muted_until FROM participants WHERE conversation_id = ? AND user_id = ?`), conv, u.ID).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	if m := mute(ann, "forever"); m["muted_until"] != "forever" {
		t.Errorf("forever: %v", m["muted_until"])
	}
	if v := stored(ann); v == nil || num64(v) != 1<<63-1 {
		t.Errorf("stored forever as %v", v)
	}
	until := clk.Now().Add(8 * time.Hour)
	m := mute(ann, until.In(time.FixedZone("", 2*3600)).Format(time.RFC3339))
	if m["muted_until"] != until.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("until: %v, want %v", m["muted_until"], until)
	}
	if v := stored(ann); num64(v) != until.UnixMilli() {
		t.Errorf("stored %v, want %d", v, until.UnixMilli())
	}
	if stored(bob) != nil {
		t.Error("muting for ann muted for bob")
	}
	if m := mute(ann, nil); m["muted_until"] != nil {
		t.Errorf("null: %v", m["muted_until"])
	}
	if stored(ann) != nil {
		t.Error("null kept a mute")
	}
	if m := mute(bob, clk.Now().Add(-time.Minute).Format(time.RFC3339)); m["muted_until"] != nil {
		t.Errorf("a time past: %v, want null", m["muted_until"])
	}
	if stored(bob) != nil {
		t.Error("a time past was kept")
	}

	for _, bad := range []any{"tomorrow", 5, true, map[string]any{}} {
		wantInvalid(t, s.Do(t, http.MethodPut, path, ann.Access, map[string]any{"muted_until": bad}), "muted_until")
	}
	wantInvalid(t, s.Do(t, http.MethodPut, path, ann.Access, map[string]any{}), "muted_until")

	// A non-participant gets exactly what a missing conversation gets.
	r := s.Do(t, http.MethodPut, path, eve.Access, map[string]any{"muted_until": "forever"})
	wantError(t, r, http.StatusNotFound, "not_found")
	miss := s.Do(t, http.MethodPut, "/api/conversations/999999/notifications/", eve.Access, map[string]any{"muted_until": "forever"})
	if string(miss.Body) != string(r.Body) {
		t.Errorf("non-participant %s, missing conversation %s", r.Body, miss.Body)
	}
}

// num64 reads an integer column as database/sql scans it into any.
func num64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case []byte:
		var x int64
		for _, c := range n {
			x = x*10 + int64(c-'0')
		}
		return x
	}
	return 0
}

// TestNotifications_GetShowsTheMuteAsOfNow: GET gives back what PUT
// kept, a timed mute until it ends and null after, per participant;
// anyone else gets the same 404 as a missing conversation.
func TestNotifications_GetShowsTheMuteAsOfNow(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	ann, bob, eve := s.Register(t, "ann"), s.Register(t, "bob"), s.Register(t, "eve")
	conv := s.Conversation(t, ann, bob)
	path := p("/api/conversations/%d/notifications/", conv)
	get := func(u servertest.User) any {
		t.Helper()
		r := s.Do(t, http.MethodGet, path, u.Access, nil)
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		wantKeys(t, "notifications", m, "conversation_id", "muted_until")
		if num(m["conversation_id"]) != conv {
			t.Errorf("conversation_id %v, want %d", m["conversation_id"], conv)
		}
		return m["muted_until"]
	}
	put := func(u servertest.User, v any) {
		t.Helper()
		wantStatus(t, s.Do(t, http.MethodPut, path, u.Access, map[string]any{"muted_until": v}), http.StatusOK)
	}

	if v := get(ann); v != nil {
		t.Errorf("before any mute: %v, want null", v)
	}
	put(ann, "forever")
	if v := get(ann); v != "forever" {
		t.Errorf("after forever: %v", v)
	}
	if v := get(bob); v != nil {
		t.Errorf("ann's mute shows for bob: %v", v)
	}
	until := clk.Now().Add(8 * time.Hour)
	put(bob, until.Format(time.RFC3339))
	if v := get(bob); v != until.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("after 8 hours: %v, want %v", v, until)
	}
	put(bob, clk.Now().Add(time.Minute).Format(time.RFC3339Nano))
	clk.Advance(time.Minute) // a mute ends at its instant (and tokens live longer)
	if v := get(bob); v != nil {
		t.Errorf("once the mute ended: %v, want null", v)
	}
	if v := get(ann); v != "forever" {
		t.Errorf("forever ended: %v", v)
	}
	put(ann, nil)
	if v := get(ann); v != nil {
		t.Errorf("after unmuting: %v", v)
	}

	r := s.Do(t, http.MethodGet, path, eve.Access, nil)
	wantError(t, r, http.StatusNotFound, "not_found")
	miss := s.Do(t, http.MethodGet, "/api/conversations/999999/notifications/", eve.Access, nil)
	if string(miss.Body) != string(r.Body) {
		t.Errorf("non-participant %s, missing conversation %s", r.Body, miss.Body)
	}
	wantError(t, s.Do(t, http.MethodGet, "/api/conversations/abc/notifications/", ann.Access, nil), http.StatusNotFound, "not_found")
	wantStatus(t, s.Do(t, http.MethodGet, path, "", nil), http.StatusUnauthorized)
}
