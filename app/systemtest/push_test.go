package systemtest

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/push/apns/apnstest"
	"github.com/confab/confab/app/push/fcm/fcmtest"
	"github.com/confab/confab/app/push/webpush"
	"github.com/confab/confab/app/push/webpush/webpushtest"
	"github.com/confab/confab/app/server/servertest"
)

// The push tests run the binary against the providers' stand-ins, which
// check what the real services check (VAPID signed with the key the
// browser subscribed with, the encryption, FCM's OAuth, APNs' JWT over
// HTTP/2 and TLS), and count what a phone or a browser would be shown:
// a push that survives a SIGKILL inside its wait, one push per user and
// conversation across three nodes, none for a user online on another
// node, and sends that never wait for a push service that hangs.

// pushUser is an account of a push test.
type pushUser struct {
	id     int64
	name   string
	access string
}

func pushRegister(t *testing.T, base, name string) pushUser {
	t.Helper()
	id, access, _ := (&Proc{URL: base}).Register(t, name)
	return pushUser{id: id, name: name, access: access}
}

// pushBrowser subscribes a browser of u's on wp with the server's VAPID
// key, as pushManager.subscribe does, and registers it as u's device.
func pushBrowser(t *testing.T, base string, u pushUser, wp *webpushtest.Server) webpush.Subscription {
	t.Helper()
	p := &Proc{URL: base}
	code, m := p.Call(t, http.MethodGet, "/api/push/vapid-public-key/", u.access, nil)
	key, _ := m["public_key"].(string)
	if code != http.StatusOK || key == "" {
		t.Fatalf("vapid key: %d %v", code, m)
	}
	sub := wp.SubscribeFor(t, key)
	code, m = p.Call(t, http.MethodPost, "/api/devices/", u.access, map[string]any{"platform": "webpush",
		"subscription": map[string]any{"endpoint": sub.Endpoint, "keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}}})
	if code != http.StatusCreated {
		t.Fatalf("register %s's browser: %d %v", u.name, code, m)
	}
	return sub
}

// pushDevice registers an FCM or APNs token as u's device.
func pushDevice(t *testing.T, base string, u pushUser, platform, token string) {
	t.Helper()
	code, m := (&Proc{URL: base}).Call(t, http.MethodPost, "/api/devices/", u.access, map[string]string{"platform": platform, "token": token})
	if code != http.StatusCreated {
		t.Fatalf("register %s's %s device: %d %v", u.name, platform, code, m)
	}
}

func pushGroup(t *testing.T, base string, owner pushUser, others ...pushUser) int64 {
	t.Helper()
	var ids []int64
	for _, o := range others {
		if o.id != owner.id {
			ids = append(ids, o.id)
		}
	}
	code, m := (&Proc{URL: base}).Call(t, http.MethodPost, "/api/conversations/", owner.access,
		map[string]any{"participant_ids": ids, "is_group": true, "title": "push"})
	if code != http.StatusCreated {
		t.Fatalf("create conversation: %d %v", code, m)
	}
	return int64(m["id"].(float64))
}

func pushSend(t *testing.T, base string, u pushUser, conv int64, content string) int64 {
	t.Helper()
	id, err := Send(fmt.Sprintf("%s/api/conversations/%d/messages/", base, conv), u.access, content)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// pushData is a received web push's data (conversation_id, message_id,
// seq), as the service worker reads it.
func pushData(t *testing.T, r webpushtest.Received) map[string]string {
	t.Helper()
	var p struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		t.Fatalf("push payload %s: %v", r.Payload, err)
	}
	return p.Data
}

// pushEnv is the settings of a binary whose Web Push goes to wp.
func pushEnv(wp *webpushtest.Server, more ...string) []string {
	return append([]string{"WEBPUSH_ALLOWED_ENDPOINTS=" + wp.URL + "/push/", "LOG_LEVEL=warn",
		"REQUESTS_PER_SECOND=0", "REGISTRATIONS_PER_MINUTE=100000"}, more...)
}

// openFile opens a server's SQLite file beside it, to read its outbox.
func openFile(t *testing.T, path string) *sql.DB {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func countRows(t *testing.T, d *sql.DB, query string) int {
	t.Helper()
	var n int
	if err := d.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// A push waiting out PUSH_DELAY when the server is SIGKILLed is not
// lost: the restarted server sends it, once, with the message's ids.
func TestPush_SIGKILLWithinTheDelayLosesNone(t *testing.T) {
	wp := webpushtest.NewServer(t)
	s := &crashServer{t: t, bin: BuildBinary(t, "push"), db: filepath.Join(t.TempDir(), "confab.db"),
		env: pushEnv(wp, "PUSH_DELAY=5s"), logs: &servertest.LogBuffer{}}
	t.Cleanup(func() {
		if s.cmd != nil {
			s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server output:\n%s", s.logs)
		}
	})
	s.start()
	ann, bob := pushRegister(t, s.url, "ann"), pushRegister(t, s.url, "bob")
	sub := pushBrowser(t, s.url, bob, wp)
	conv := pushGroup(t, s.url, ann, bob)
	id := pushSend(t, s.url, ann, conv, "see you at noon")

	// The push is decided (its delivery is in the file), and waits out
	// PUSH_DELAY: the kill comes well within it.
	file := openFile(t, s.db)
	eventually(t, 10*time.Second, "the delivery is stored", func() bool {
		return countRows(t, file, `SELECT count(*) FROM deliveries WHERE state = 'pending'`) == 1
	})
	s.kill()
	if n := wp.Requests(); n != 0 {
		t.Fatalf("%d requests reached the push service before PUSH_DELAY ended", n)
	}

	s.start()
	eventually(t, 20*time.Second, "the push after the restart", func() bool { return len(wp.Received()) >= 1 })
	// A second copy would follow within the dispatcher's next rounds.
	time.Sleep(1500 * time.Millisecond)
	got := wp.Received()
	if len(got) != 1 {
		t.Fatalf("%d pushes after the restart, want exactly 1", len(got))
	}
	want := map[string]string{"conversation_id": strconv.FormatInt(conv, 10), "message_id": strconv.FormatInt(id, 10), "seq": "1"}
	if d := pushData(t, got[0]); got[0].Subscription.Endpoint != sub.Endpoint || !maps(d, want) {
		t.Fatalf("push to %s with data %v, want bob's browser with %v", got[0].Subscription.Endpoint, d, want)
	}
	if n := countRows(t, file, `SELECT count(*) FROM deliveries WHERE state = 'sent'`); n != 1 {
		t.Fatalf("%d deliveries recorded sent, want 1", n)
	}
}

// maps reports whether got holds every key of want with its value.
func maps(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// Three nodes, each deciding and sending pushes from one database:
// offline users in several conversations, written to on every node, get
// exactly one push per conversation (the burst coalesces), carrying its
// newest message; a user connected to node 1 gets none for messages
// sent on node 0, and one again once they have left.
func TestPush_ThreeNodesOnePushPerUserAndConversation(t *testing.T) {
	wp := webpushtest.NewServer(t)
	c := startClusterEnv(t, 3, nil, "WEBPUSH_ALLOWED_ENDPOINTS="+wp.URL+"/push/", "PUSH_DELAY=6s")
	t.Cleanup(func() {
		if t.Failed() {
			for i, p := range c.nodes {
				t.Logf("node %d:\n%s", i, p.Logs)
			}
		}
	})
	base := func(node int) string { return c.nodes[node].URL }
	var senders, offline []pushUser
	for i := range 3 {
		u := c.register(fmt.Sprintf("sender%d", i), i)
		senders = append(senders, pushUser{u.id, u.name, u.access})
	}
	sub := map[string]pushUser{} // endpoint → whose browser
	for i := range 6 {
		u := c.register(fmt.Sprintf("away%d", i), i%3)
		pu := pushUser{u.id, u.name, u.access}
		offline = append(offline, pu)
		sub[pushBrowser(t, base(i%3), pu, wp).Endpoint] = pu
	}
	here := c.register("here", 1)
	hereUser := pushUser{here.id, here.name, here.access}
	hereSub := pushBrowser(t, base(2), hereUser, wp)

	members := [][]pushUser{
		{offline[0], offline[1], offline[2], hereUser},
		{offline[2], offline[3], offline[4], hereUser},
		{offline[4], offline[5], offline[0]},
		{offline[1], offline[3], offline[5]},
	}
	convs := make([]int64, len(members))
	for i, m := range members {
		convs[i] = pushGroup(t, base(i%3), senders[i%3], append(slices.Clone(senders), m...)...)
	}

	// "here" is online on node 1, as node 0 sees it.
	sock := dialNode(t, c.nodes[1], here)
	asker := senders[0].mn()
	eventually(t, 10*time.Second, "node 0 sees here online", func() bool { return c.seesOnline(0, asker, here) })

	// Six messages into each conversation, from every node in turn, the
	// conversations at once. They take well under PUSH_DELAY, so each
	// user's pushes for a conversation fall in one window: its first
	// delivery, due a second plus PUSH_DELAY after it was decided, takes
	// the later messages instead of a second delivery.
	last := make([]int64, len(convs))
	var wg sync.WaitGroup
	for i, conv := range convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 6 {
				node := (i + k) % 3
				// here's conversations are written to from node 0 only.
				if slices.Contains(members[i], hereUser) {
					node = 0
				}
				id, err := Send(fmt.Sprintf("%s/api/conversations/%d/messages/", base(node), conv), senders[node].access, fmt.Sprintf("m%d", k))
				if err != nil {
					t.Error(err)
					return
				}
				last[i] = id
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	type key struct {
		user string
		conv string
	}
	want := map[key]string{} // → message id
	for i, m := range members {
		for _, u := range m {
			if u != hereUser {
				want[key{u.name, strconv.FormatInt(convs[i], 10)}] = strconv.FormatInt(last[i], 10)
			}
		}
	}
	eventually(t, 30*time.Second, fmt.Sprintf("%d pushes", len(want)), func() bool { return len(wp.Received()) >= len(want) })
	time.Sleep(2 * time.Second) // duplicates would follow within the nodes' next rounds
	got := map[key]string{}
	for _, r := range wp.Received() {
		if r.Subscription.Endpoint == hereSub.Endpoint {
			t.Fatalf("here, online on node 1, got a push: %s", r.Payload)
		}
		d := pushData(t, r)
		k := key{sub[r.Subscription.Endpoint].name, d["conversation_id"]}
		if _, dup := got[k]; dup {
			t.Fatalf("a second push to %s for conversation %s", k.user, k.conv)
		}
		got[k] = d["message_id"]
	}
	if len(got) != len(want) {
		t.Fatalf("pushes %v\nwant %v", got, want)
	}
	for k, id := range want {
		if got[k] != id {
			t.Fatalf("%s's push for conversation %s carries message %q, want the newest, %s", k.user, k.conv, got[k], id)
		}
	}

	// here leaves: the next message is pushed to them too.
	sock.conn.Close()
	eventually(t, 20*time.Second, "node 0 sees here offline", func() bool { return !c.seesOnline(0, asker, here) })
	id := pushSend(t, base(0), senders[0], convs[0], "are you there?")
	eventually(t, 20*time.Second, "here's push once offline", func() bool {
		return slices.ContainsFunc(wp.Received(), func(r webpushtest.Received) bool { return r.Subscription.Endpoint == hereSub.Endpoint })
	})
	for _, r := range wp.Received() {
		if r.Subscription.Endpoint == hereSub.Endpoint && pushData(t, r)["message_id"] != strconv.FormatInt(id, 10) {
			t.Fatalf("here's push carries %s, want message %d", r.Payload, id)
		}
	}
}

func (u pushUser) mn() mnUser { return mnUser{id: u.id, name: u.name, access: u.access} }

// With the push service holding every request, more than the
// dispatcher's sends in flight, a hundred sends are all answered 201 and
// the server stays healthy; once the service answers again, each
// subscription gets one push, carrying the newest message, from the
// retry of the sends that hung.
func TestPush_HangingPushServiceNeverSlowsSends(t *testing.T) {
	wp := webpushtest.NewServer(t)
	p := Start(t, BuildBinary(t, "push"), pushEnv(wp), "serve")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server output:\n%s", p.Logs)
		}
	})
	ann := pushRegister(t, p.URL, "ann")
	var others []pushUser
	var subs []webpush.Subscription
	for i := range 12 {
		u := pushRegister(t, p.URL, fmt.Sprintf("away%d", i))
		others = append(others, u)
		for range 3 { // a laptop, a phone's browser, a desktop: 36 in all
			sub := pushBrowser(t, p.URL, u, wp)
			wp.Hang(sub)
			subs = append(subs, sub)
		}
	}
	conv := pushGroup(t, p.URL, ann, others...)
	pushSend(t, p.URL, ann, conv, "first")
	// The dispatcher sends at most 32 at once: every one of them hangs.
	eventually(t, 20*time.Second, "32 requests held by the push service", func() bool { return wp.Requests() >= 32 })

	client := &http.Client{Timeout: 10 * time.Second}
	var last int64
	for i := range 100 {
		last = pushSend(t, p.URL, ann, conv, fmt.Sprintf("more %d", i)) // fails unless 201
		if i%20 == 0 {
			resp, err := client.Get(p.URL + "/healthz")
			if err != nil {
				t.Fatalf("healthz while the push service hangs: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("healthz while the push service hangs: %d", resp.StatusCode)
			}
		}
	}
	if n := len(wp.Received()); n != 0 {
		t.Fatalf("the push service accepted %d while hanging", n)
	}

	for _, sub := range subs {
		wp.Release(sub)
	}
	// The held sends give up at their deadline (15 s) and are retried.
	eventually(t, 45*time.Second, "one push per subscription", func() bool { return len(wp.Received()) >= len(subs) })
	time.Sleep(1500 * time.Millisecond)
	seen := map[string]bool{}
	for _, r := range wp.Received() {
		if seen[r.Subscription.Endpoint] {
			t.Fatalf("a second push to %s", r.Subscription.Endpoint)
		}
		seen[r.Subscription.Endpoint] = true
		if id := pushData(t, r)["message_id"]; id != strconv.FormatInt(last, 10) {
			t.Fatalf("push carries message %s, want the newest, %d", id, last)
		}
	}
	file := openFile(t, p.DB)
	if n := countRows(t, file, `SELECT count(*) FROM deliveries WHERE state = 'sent'`); n != len(subs) {
		t.Fatalf("%d deliveries sent, want %d", n, len(subs))
	}
	if n := countRows(t, file, `SELECT count(*) FROM deliveries WHERE attempts >= 2`); n < 32 {
		t.Fatalf("%d deliveries were tried again, want the 32 that hung", n)
	}
}

// The binary reaches FCM (OAuth with the service account, then the v1
// send) and APNs (a provider JWT, over HTTP/2 and TLS) through their
// settings, with the push's ids in the data.
func TestPush_FCMAndAPNs(t *testing.T) {
	fcm, creds := fcmtest.NewServer(t)
	apns, p8, keyID, teamID := apnstest.NewServer(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	wp := webpushtest.NewServer(t)
	p := Start(t, BuildBinary(t, "push"), pushEnv(wp,
		"FCM_CREDENTIALS_FILE="+write("fcm.json", creds), "FCM_BASE_URL="+fcm.URL,
		"APNS_KEY_FILE="+write("apns.p8", p8), "APNS_KEY_ID="+keyID, "APNS_TEAM_ID="+teamID,
		"APNS_TOPIC="+apnstest.Topic, "APNS_BASE_URL="+apns.URL,
		"SSL_CERT_FILE="+write("apns.pem", apns.CertificatePEM())), "serve")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server output:\n%s", p.Logs)
		}
	})
	ann, bob := pushRegister(t, p.URL, "ann"), pushRegister(t, p.URL, "bob")
	iphone := apnstest.DeviceToken()
	pushDevice(t, p.URL, bob, "fcm", "bob-pixel")
	pushDevice(t, p.URL, bob, "apns", iphone)
	conv := pushGroup(t, p.URL, ann, bob)
	id := strconv.FormatInt(pushSend(t, p.URL, ann, conv, "hello phones"), 10)

	eventually(t, 20*time.Second, "a push on each phone", func() bool {
		return len(fcm.Messages()) >= 1 && len(apns.Received()) >= 1
	})
	time.Sleep(1500 * time.Millisecond)
	if m := fcm.Messages(); len(m) != 1 || m[0].Token != "bob-pixel" || m[0].Data["message_id"] != id ||
		m[0].Data["conversation_id"] != strconv.FormatInt(conv, 10) || m[0].Notification.Title != "New message from ann" {
		t.Fatalf("fcm messages %+v, want one to bob-pixel for message %s", m, id)
	}
	if r := apns.Received(); len(r) != 1 || r[0].DeviceToken != iphone || r[0].Payload["message_id"] != id ||
		r[0].Payload["conversation_id"] != strconv.FormatInt(conv, 10) {
		t.Fatalf("apns notifications %+v, want one to bob's iPhone for message %s", r, id)
	}
}
