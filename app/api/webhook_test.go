package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/app/webhook"
)

// hookDelivery is one request a hookReceiver got.
type hookDelivery struct {
	ID   string // webhook-id
	Type string
	Data map[string]any
	At   time.Time // its timestamp field
}

// hookReceiver is a webhook endpoint that verifies every request with
// the Standard Webhooks library, failing the test on a bad signature,
// and answers what answer says (nil: 204).
type hookReceiver struct {
	URL    string
	secret webhook.Secret
	answer func(attempt int) int // attempt counts from 1, per webhook-id

	mu       sync.Mutex
	got      []hookDelivery
	attempts map[string]int
}

func newHookReceiver(t *testing.T, answer func(attempt int) int) *hookReceiver {
	t.Helper()
	rc := &hookReceiver{secret: webhook.NewSecret(), answer: answer, attempts: map[string]int{}}
	wh, err := standardwebhooks.NewWebhook(rc.secret.String())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("webhook %s: signature: %v", r.Header.Get("webhook-id"), err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var e struct {
			Type      string         `json:"type"`
			Timestamp time.Time      `json:"timestamp"`
			Data      map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		id := r.Header.Get("webhook-id")
		rc.mu.Lock()
		rc.attempts[id]++
		n := rc.attempts[id]
		rc.got = append(rc.got, hookDelivery{ID: id, Type: e.Type, Data: e.Data, At: e.Timestamp})
		rc.mu.Unlock()
		status := http.StatusNoContent
		if rc.answer != nil {
			status = rc.answer(n)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hooks/confab"
	return rc
}

func (rc *hookReceiver) deliveries() []hookDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// ofType returns the deliveries of type typ.
func (rc *hookReceiver) ofType(typ string) []hookDelivery {
	var out []hookDelivery
	for _, d := range rc.deliveries() {
		if d.Type == typ {
			out = append(out, d)
		}
	}
	return out
}

// results counts the dispatcher's results, as OnResult tells them.
type results struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *results) add(result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[result]++
}

func (r *results) get(result string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[result]
}

// withWebhooks points the server's webhooks at rc, for events (empty:
// all), with fast retries.
func withWebhooks(rc *hookReceiver, events string, res *results) servertest.Option {
	return func(c *config.Config, o *server.Options) {
		c.WebhookURL, c.WebhookSecret = rc.URL, rc.secret
		list, err := webhook.ParseEvents(events)
		if err != nil {
			panic(err)
		}
		c.WebhookEvents = list
		o.Webhooks = notify.WebhookOptions{Every: 20 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
		if res != nil {
			o.Webhooks.OnResult = res.add
		}
	}
}

func TestWebhooks_EveryEventFromTheAPI(t *testing.T) {
	rc := newHookReceiver(t, nil)
	s := servertest.Start(t, withWebhooks(rc, "", nil))
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	conv := s.Conversation(t, alice, bob, carol)
	msg := s.Send(t, alice, conv, "hello <world> & all")
	wantStatus(t, s.Do(t, http.MethodPatch, p("/api/messages/%d/", msg), alice.Access, map[string]string{"content": "hello again"}), http.StatusOK)
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", msg), alice.Access, nil), http.StatusNoContent)
	wantStatus(t, s.Do(t, http.MethodPatch, p("/api/conversations/%d/", conv), alice.Access, map[string]string{"title": "renamed"}), http.StatusOK)
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/conversations/%d/participants/%d/", conv, carol.ID), alice.Access, nil), http.StatusNoContent)
	r := s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", conv), alice.Access, map[string]int64{"user_id": carol.ID})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("add participant: %d %s", r.Status, r.Body)
	}

	eventually(t, "one delivery of each event type", func() bool {
		for _, typ := range webhook.Events {
			if len(rc.ofType(typ)) == 0 {
				return false
			}
		}
		return true
	})
	one := func(typ string) map[string]any {
		t.Helper()
		list := rc.ofType(typ)
		if typ == "user.created" {
			if len(list) != 3 {
				t.Errorf("user.created %d times, want 3", len(list))
			}
			return list[0].Data
		}
		if len(list) != 1 {
			t.Errorf("%s %d times, want 1", typ, len(list))
		}
		return list[0].Data
	}
	checks := []struct {
		typ, key string
		want     any
	}{
		{"user.created", "username", alice.Username},
		{"conversation.created", "title", "test"},
		{"conversation.created", "is_group", true},
		{"message.created", "content", "hello <world> & all"},
		{"message.created", "conversation_id", float64(conv)},
		{"message.updated", "content", "hello again"},
		{"message.deleted", "is_deleted", true},
		{"message.deleted", "id", float64(msg)},
		{"conversation.updated", "title", "renamed"},
		{"participant.removed", "user_id", float64(carol.ID)},
		{"participant.added", "user_id", float64(carol.ID)},
		{"participant.added", "conversation_id", float64(conv)},
	}
	for _, c := range checks {
		if got := one(c.typ)[c.key]; got != c.want {
			t.Errorf("%s data %s = %v, want %v", c.typ, c.key, got, c.want)
		}
	}
	if ids := one("conversation.created")["participant_ids"]; len(ids.([]any)) != 3 {
		t.Errorf("conversation.created participant_ids = %v", ids)
	}
	for _, d := range rc.deliveries() {
		if d.At.IsZero() || time.Since(d.At) > time.Minute {
			t.Errorf("%s timestamp %v", d.Type, d.At)
		}
	}
	eventually(t, "nothing pending", func() bool {
		n, err := s.Webhooks.Pending(t.Context())
		return err == nil && n == 0
	})
}

func TestWebhooks_OnlyChosenEvents(t *testing.T) {
	rc := newHookReceiver(t, nil)
	s := servertest.Start(t, withWebhooks(rc, "message.created", nil))
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	s.Send(t, alice, conv, "one")
	s.Send(t, bob, conv, "two")
	eventually(t, "two message.created", func() bool { return len(rc.deliveries()) >= 2 })
	if n := count(t, s, `SELECT count(*) FROM webhook_events`); n != 2 {
		t.Errorf("%d events kept, want the 2 messages only", n)
	}
	for _, d := range rc.deliveries() {
		if d.Type != "message.created" {
			t.Errorf("got %s, which WEBHOOK_EVENTS does not choose", d.Type)
		}
	}
}

func TestWebhooks_OffKeepsNothing(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	s.Send(t, alice, s.Conversation(t, alice, bob), "hi")
	if s.Webhooks != nil {
		t.Error("a dispatcher runs without WEBHOOK_URL")
	}
	if n := count(t, s, `SELECT count(*) FROM webhook_events`); n != 0 {
		t.Errorf("%d events kept with webhooks off", n)
	}
}

func TestWebhooks_RetryKeepsTheWebhookID(t *testing.T) {
	rc := newHookReceiver(t, func(attempt int) int {
		if attempt == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	var res results
	s := servertest.Start(t, withWebhooks(rc, "user.created", &res))
	s.Register(t, "alice")
	eventually(t, "the retry is accepted", func() bool { return res.get(notify.ResultSent) == 1 })
	got := rc.deliveries()
	if len(got) != 2 || got[0].ID != got[1].ID || got[0].ID == "" {
		t.Fatalf("deliveries %+v, want two with the same webhook-id", got)
	}
	if res.get(notify.ResultFailed) != 1 {
		t.Errorf("failed results %d, want 1", res.get(notify.ResultFailed))
	}
	var state string
	var attempts int
	if err := s.DB(t).QueryRow(s.Q(`SELECT state, attempts FROM webhook_events WHERE webhook_id = ?`), got[0].ID).Scan(&state, &attempts); err != nil {
		t.Fatal(err)
	}
	if state != notify.WebhookSent || attempts != 2 {
		t.Errorf("row %s after %d attempts, want sent after 2", state, attempts)
	}
	m := s.Metrics(t, "")
	if m[deliveriesSeries("webhook", "failed")] != 1 || m[deliveriesSeries("webhook", "sent")] != 1 || m[`confab_deliveries_pending{provider="webhook"}`] != 0 {
		t.Errorf("webhook metrics: failed %v sent %v pending %v, want 1 1 0", m[deliveriesSeries("webhook", "failed")],
			m[deliveriesSeries("webhook", "sent")], m[`confab_deliveries_pending{provider="webhook"}`])
	}
}

func TestWebhooks_GiveUpAfterMaxAge(t *testing.T) {
	rc := newHookReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	var res results
	s := servertest.Start(t, withWebhooks(rc, "user.created", &res), servertest.WithConfig(func(c *config.Config) {
		c.WebhookMaxAge = 300 * time.Millisecond
	}))
	s.Register(t, "alice")
	eventually(t, "the event is given up", func() bool { return res.get(notify.ResultGivenUp) == 1 })
	got := rc.deliveries()
	if len(got) < 2 {
		t.Fatalf("%d attempts before giving up, want retries", len(got))
	}
	for _, d := range got {
		if d.ID != got[0].ID {
			t.Errorf("attempt with webhook-id %s, want %s", d.ID, got[0].ID)
		}
	}
	if !strings.Contains(s.Logs.String(), "webhook: event given up") || !strings.Contains(s.Logs.String(), "gave up after") {
		t.Errorf("no log line says the event was given up:\n%s", s.Logs.String())
	}
	if n, err := s.Webhooks.Pending(t.Context()); err != nil || n != 0 {
		t.Errorf("pending %d (%v), want 0", n, err)
	}
	if m := s.Metrics(t, ""); m[deliveriesSeries("webhook", "given_up")] != 1 {
		t.Errorf("confab_deliveries_total{provider=\"webhook\",result=\"given_up\"} %v, want 1", m[deliveriesSeries("webhook", "given_up")])
	}
	// Given up means no more attempts.
	before := len(rc.deliveries())
	time.Sleep(150 * time.Millisecond)
	if after := len(rc.deliveries()); after != before {
		t.Errorf("%d attempts after giving up", after-before)
	}
}

func TestWebhooks_RefusedIsGivenUpAtOnce(t *testing.T) {
	rc := newHookReceiver(t, func(int) int { return http.StatusBadRequest })
	var res results
	s := servertest.Start(t, withWebhooks(rc, "user.created", &res))
	s.Register(t, "alice")
	eventually(t, "the event is given up", func() bool { return res.get(notify.ResultGivenUp) == 1 })
	if n := len(rc.deliveries()); n != 1 {
		t.Errorf("%d attempts of a refused event, want 1", n)
	}
	if !strings.Contains(s.Logs.String(), "400 Bad Request") {
		t.Errorf("the log does not say why:\n%s", s.Logs.String())
	}
}

func TestWebhooks_HangingReceiverNeverSlowsSends(t *testing.T) {
	release := make(chan struct{})
	var hanging atomic.Int64
	rc := newHookReceiver(t, func(int) int {
		hanging.Add(1)
		<-release
		return http.StatusOK
	})
	s := servertest.Start(t, withWebhooks(rc, "message.created", nil), func(_ *config.Config, o *server.Options) {
		o.Webhooks.SendTimeout = time.Minute // the receiver hangs for the whole test
	})
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for the attempts
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	s.Send(t, alice, conv, "first")
	eventually(t, "the receiver holds an attempt", func() bool { return hanging.Load() > 0 })
	// Every send is acknowledged while the receiver holds the
	// dispatcher's attempts: the send path never waits for it.
	for i := range 30 {
		r := s.Do(t, http.MethodPost, p("/api/conversations/%d/messages/", conv), bob.Access, map[string]string{"content": p("m%d", i)})
		wantStatus(t, r, http.StatusCreated)
	}
	if n := count(t, s, `SELECT count(*) FROM webhook_events`); n != 31 {
		t.Errorf("%d events kept, want 31", n)
	}
	if len(rc.deliveries()) == 0 || hanging.Load() == 0 {
		t.Error("the receiver was not hanging during the sends")
	}
}

func TestWebhooks_SurviveARestartBeforeSent(t *testing.T) {
	rc := newHookReceiver(t, nil)
	s := servertest.Start(t, withWebhooks(rc, "", nil), func(_ *config.Config, o *server.Options) {
		o.Webhooks.Every = time.Hour // this run's dispatcher never looks
	})
	alice := s.Register(t, "alice")
	s.Close()
	var id string
	if err := s.DB(t).QueryRow(s.Q(`SELECT webhook_id FROM webhook_events WHERE type = 'user.created' AND state = 'pending'`)).Scan(&id); err != nil {
		t.Fatalf("no pending event after the close: %v", err)
	}
	if n := len(rc.deliveries()); n != 0 {
		t.Fatalf("%d deliveries before the restart", n)
	}
	s.Opts.Webhooks.Every = 20 * time.Millisecond
	s.Restart()
	eventually(t, "the event arrives after the restart", func() bool { return len(rc.deliveries()) == 1 })
	d := rc.deliveries()[0]
	if d.ID != id || d.Type != "user.created" || d.Data["username"] != alice.Username {
		t.Errorf("delivery %+v, want %s of %s", d, id, alice.Username)
	}
}

func TestWebhooks_SentEventsArePrunedAfterRetention(t *testing.T) {
	rc := newHookReceiver(t, nil)
	var res results
	s := servertest.Start(t, withWebhooks(rc, "user.created", &res), func(c *config.Config, o *server.Options) {
		c.WebhookRetention = 50 * time.Millisecond
		o.Webhooks.PruneEvery = 20 * time.Millisecond
	})
	s.Register(t, "alice")
	eventually(t, "the event is sent", func() bool { return res.get(notify.ResultSent) == 1 })
	eventually(t, "the sent event is pruned", func() bool { return count(t, s, `SELECT count(*) FROM webhook_events`) == 0 })
	if n := len(rc.deliveries()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
}

// TestWebhooks_DeletedAccount: a deleted account leaves every
// conversation (participant.removed for each) and each message it sent
// is erased (message.deleted for each, its content gone), so a
// receiver can drop what it kept of them.
func TestWebhooks_DeletedAccount(t *testing.T) {
	rc := newHookReceiver(t, nil)
	s := servertest.Start(t, withWebhooks(rc, "message.deleted,participant.removed", nil))
	a, b, c := s.Register(t, "ann"), s.Register(t, "bob"), s.Register(t, "cat")
	direct := s.Conversation(t, a, b)
	group := s.Conversation(t, c, a, b)
	sent := []int64{s.Send(t, a, direct, "hello"), s.Send(t, a, group, "hi all")}
	s.Send(t, b, group, "bob's stays")
	wantStatus(t, s.Do(t, http.MethodDelete, "/api/users/me/", a.Access, map[string]string{"password": servertest.Password}),
		http.StatusNoContent)

	eventually(t, "the account's events", func() bool {
		return len(rc.ofType("participant.removed")) == 2 && len(rc.ofType("message.deleted")) == 2
	})
	var left []int64
	for _, d := range rc.ofType("participant.removed") {
		if num(d.Data["user_id"]) != a.ID {
			t.Errorf("participant.removed %v, want ann", d.Data)
		}
		left = append(left, num(d.Data["conversation_id"]))
	}
	slices.Sort(left)
	if want := []int64{min(direct, group), max(direct, group)}; !slices.Equal(left, want) {
		t.Errorf("left conversations %v, want %v", left, want)
	}
	var erased []int64
	for _, d := range rc.ofType("message.deleted") {
		if d.Data["content"] != "" || d.Data["is_deleted"] != true {
			t.Errorf("message.deleted %v, want a tombstone", d.Data)
		}
		erased = append(erased, num(d.Data["id"]))
	}
	slices.Sort(erased)
	if !slices.Equal(erased, sent) {
		t.Errorf("erased messages %v, want %v", erased, sent)
	}
}
