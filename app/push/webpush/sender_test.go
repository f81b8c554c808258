package webpush_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/confab/confab/app/push"
	"github.com/confab/confab/app/push/webpush"
	"github.com/confab/confab/app/push/webpush/webpushtest"
)

const subject = "mailto:ops@confab.example"

func mustKeys(t testing.TB) webpush.Keys {
	t.Helper()
	k, err := webpush.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newSender is a Sender that may reach srv and nothing else.
func newSender(t testing.TB, srv *webpushtest.Server) *webpush.Sender {
	t.Helper()
	return webpush.NewSender(mustKeys(t), subject, srv.Allowed(), nil)
}

func note() push.Notification {
	return push.Notification{
		Title:    "Ana in #general",
		Body:     `lunch at <Noon> & "bring" snacks`,
		Collapse: "conversation:42",
		Badge:    3,
		Data:     map[string]string{"conversation_id": "42", "message_id": "981", "seq": "17"},
		TTL:      time.Hour,
	}
}

type payload struct {
	Title string            `json:"title"`
	Body  string            `json:"body"`
	Badge int               `json:"badge"`
	Data  map[string]string `json:"data"`
}

func decodePayload(t testing.TB, b []byte) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("payload %q is not JSON: %v", b, err)
	}
	return p
}

func TestSend_ArrivesDecrypted(t *testing.T) {
	srv := webpushtest.NewServer(t)
	s := newSender(t, srv)
	sub := srv.Subscribe(t)
	n := note()

	if err := s.Send(t.Context(), sub, n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Received()
	if len(got) != 1 {
		t.Fatalf("received %d messages, want 1", len(got))
	}
	r := got[0]
	if r.Subscription != sub {
		t.Errorf("delivered to %v, want %v", r.Subscription, sub)
	}
	want := payload{Title: n.Title, Body: n.Body, Badge: n.Badge, Data: n.Data}
	if p := decodePayload(t, r.Payload); !reflect.DeepEqual(p, want) {
		t.Errorf("payload = %+v, want %+v", p, want)
	}
	if !bytes.Contains(r.Payload, []byte("<Noon> &")) {
		t.Errorf("payload %s escapes HTML for nothing", r.Payload)
	}
	if r.TTL != time.Hour {
		t.Errorf("TTL = %v, want 1h", r.TTL)
	}
	if r.Urgency != "normal" {
		t.Errorf("Urgency = %q, want normal", r.Urgency)
	}
	if len(r.Topic) != 32 {
		t.Errorf("Topic = %q, want 32 characters", r.Topic)
	}

	// The same conversation collapses; another one does not.
	same, other := note(), note()
	other.Collapse = "conversation:43"
	for _, m := range []push.Notification{same, other} {
		if err := s.Send(t.Context(), sub, m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	got = srv.Received()
	if got[1].Topic != r.Topic {
		t.Errorf("same collapse key, topics %q and %q", r.Topic, got[1].Topic)
	}
	if got[2].Topic == r.Topic {
		t.Errorf("different collapse keys share topic %q", r.Topic)
	}
}

func TestSend_NoCollapseNoTopic(t *testing.T) {
	srv := webpushtest.NewServer(t)
	s := newSender(t, srv)
	n := note()
	n.Collapse, n.Data, n.TTL = "", nil, 0
	if err := s.Send(t.Context(), srv.Subscribe(t), n); err != nil {
		t.Fatal(err)
	}
	r := srv.Received()[0]
	if r.Topic != "" || r.TTL != 0 {
		t.Errorf("Topic %q, TTL %v; want none and 0", r.Topic, r.TTL)
	}
	if p := decodePayload(t, r.Payload); p.Data == nil {
		t.Errorf("payload %s has no data object", r.Payload)
	}
}

func TestSend_LongBodyShortenedToFit(t *testing.T) {
	srv := webpushtest.NewServer(t)
	s := newSender(t, srv)
	n := note()
	n.Body = strings.Repeat("é\"", 4000) // escaping makes it longer still
	if err := s.Send(t.Context(), srv.Subscribe(t), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := srv.Received()[0]
	p := decodePayload(t, r.Payload)
	if !strings.HasSuffix(p.Body, "…") || !utf8.ValidString(p.Body) || !strings.HasPrefix(n.Body, strings.TrimSuffix(p.Body, "…")) {
		t.Errorf("body not cut cleanly: ...%q", p.Body[max(0, len(p.Body)-20):])
	}
	if p.Title != n.Title || !reflect.DeepEqual(p.Data, n.Data) {
		t.Errorf("title or data changed: %+v", p)
	}
	if len(r.Payload) > 3993 {
		t.Errorf("payload %d bytes", len(r.Payload))
	}

	n.Title = strings.Repeat("x", 5000)
	if err := s.Send(t.Context(), srv.Subscribe(t), n); err == nil {
		t.Error("a title too long to fit was sent")
	}
}

func TestSend_Gone(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusGone} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := webpushtest.NewServer(t)
			s := newSender(t, srv)
			sub := srv.Subscribe(t)
			srv.Fail(sub, status, 0)
			err := s.Send(t.Context(), sub, note())
			if !errors.Is(err, push.ErrGone) {
				t.Fatalf("err = %v, want ErrGone", err)
			}
		})
	}
	t.Run("unknown endpoint", func(t *testing.T) {
		srv := webpushtest.NewServer(t)
		s := newSender(t, srv)
		sub := srv.Subscribe(t)
		sub.Endpoint = srv.URL + "/push/unsubscribed"
		if err := s.Send(t.Context(), sub, note()); !errors.Is(err, push.ErrGone) {
			t.Fatalf("err = %v, want ErrGone", err)
		}
	})
}

func TestSend_Retry(t *testing.T) {
	tests := []struct {
		status    int
		after     time.Duration
		wantAfter time.Duration
	}{
		{http.StatusInternalServerError, 0, 0},
		{http.StatusServiceUnavailable, 2 * time.Minute, 2 * time.Minute},
		{http.StatusTooManyRequests, 30 * time.Second, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			srv := webpushtest.NewServer(t)
			s := newSender(t, srv)
			sub := srv.Subscribe(t)
			srv.Fail(sub, tt.status, tt.after)
			err := s.Send(t.Context(), sub, note())
			var re *push.RetryError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want *push.RetryError", err)
			}
			if re.After != tt.wantAfter {
				t.Errorf("After = %v, want %v", re.After, tt.wantAfter)
			}
			if errors.Is(err, push.ErrGone) {
				t.Error("a retryable failure says the device is gone")
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("err %q does not name the status", err)
			}
		})
	}
}

func TestSend_OtherRefusalIsPlainError(t *testing.T) {
	srv := webpushtest.NewServer(t)
	s := newSender(t, srv)
	sub := srv.Subscribe(t)
	srv.Fail(sub, http.StatusBadRequest, 0)
	err := s.Send(t.Context(), sub, note())
	var re *push.RetryError
	if err == nil || errors.Is(err, push.ErrGone) || errors.As(err, &re) {
		t.Fatalf("err = %v, want a plain error", err)
	}
	if !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), "Bad Request") {
		t.Errorf("err %q does not name the status and body", err)
	}
	if strings.Contains(err.Error(), sub.Endpoint) {
		t.Errorf("err %q repeats the secret endpoint", err)
	}
}

// tamper is a transport that changes the Authorization header before the
// request leaves, as an attacker or a bug might.
type tamper func(h http.Header)

func (f tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	f(r.Header)
	return http.DefaultTransport.RoundTrip(r)
}

func TestSend_TamperedVAPIDRefused(t *testing.T) {
	other := mustKeys(t)
	tests := []struct {
		name string
		f    func(h http.Header)
	}{
		{"missing", func(h http.Header) { h.Del("Authorization") }},
		{"key of another server", func(h http.Header) {
			a := h.Get("Authorization")
			h.Set("Authorization", a[:strings.Index(a, "k=")+2]+other.Public())
		}},
		{"signature changed", func(h http.Header) {
			a := h.Get("Authorization")
			i := strings.Index(a, ", k=") - 5
			c := byte('A')
			if a[i] == 'A' {
				c = 'B'
			}
			h.Set("Authorization", a[:i]+string(c)+a[i+1:])
		}},
		{"claims changed", func(h http.Header) {
			a := h.Get("Authorization")
			parts := strings.SplitN(strings.TrimPrefix(a, "vapid t="), ".", 3)
			claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
			claims = bytes.Replace(claims, []byte(subject), []byte("mailto:evil@example.com"), 1)
			parts[1] = base64.RawURLEncoding.EncodeToString(claims)
			h.Set("Authorization", "vapid t="+strings.Join(parts, "."))
		}},
		{"bearer instead of vapid", func(h http.Header) {
			h.Set("Authorization", "Bearer "+strings.TrimPrefix(h.Get("Authorization"), "vapid "))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := webpushtest.NewServer(t)
			s := webpush.NewSender(mustKeys(t), subject, srv.Allowed(), &http.Client{Transport: tamper(tt.f)})
			err := s.Send(t.Context(), srv.Subscribe(t), note())
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("err = %v, want a 401 refusal", err)
			}
			if n := len(srv.Received()); n != 0 {
				t.Fatalf("stand-in accepted %d messages", n)
			}
			if srv.Requests() != 1 {
				t.Fatalf("stand-in saw %d requests, want 1", srv.Requests())
			}
		})
	}
}

// signJWT signs claims as a VAPID token with keys, for tokens Sender
// would never make.
func signJWT(t *testing.T, keys webpush.Keys, claims map[string]any) string {
	t.Helper()
	d, err := base64.RawURLEncoding.DecodeString(keys.Private())
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64([]byte(`{"typ":"JWT","alg":"ES256"}`)) + "." + b64(c)
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(nil, priv, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

// TestServer_ChecksVAPIDClaims shows the stand-in checks a token's
// claims as a push service does: a good token gets past to decryption
// (and fails there, the body being junk), every bad one is a 401.
func TestServer_ChecksVAPIDClaims(t *testing.T) {
	srv := webpushtest.NewServer(t)
	sub := srv.Subscribe(t)
	keys, other := mustKeys(t), mustKeys(t)
	now := time.Now().Unix()
	good := func() map[string]any {
		return map[string]any{"aud": srv.URL, "exp": now + 3600, "sub": subject}
	}
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"good token", "vapid t=" + signJWT(t, keys, good()) + ", k=" + keys.Public(), http.StatusBadRequest},
		{"signed by another key", "vapid t=" + signJWT(t, other, good()) + ", k=" + keys.Public(), http.StatusUnauthorized},
		{"other audience", "vapid t=" + signJWT(t, keys, with("aud", "https://fcm.googleapis.com")) + ", k=" + keys.Public(), http.StatusUnauthorized},
		{"expired", "vapid t=" + signJWT(t, keys, with("exp", now-60)) + ", k=" + keys.Public(), http.StatusUnauthorized},
		{"expires after 24h", "vapid t=" + signJWT(t, keys, with("exp", now+25*3600)) + ", k=" + keys.Public(), http.StatusUnauthorized},
		{"no subject", "vapid t=" + signJWT(t, keys, with("sub", nil)) + ", k=" + keys.Public(), http.StatusUnauthorized},
		{"no key", "vapid t=" + signJWT(t, keys, good()), http.StatusUnauthorized},
		{"no header", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sub.Endpoint, strings.NewReader(strings.Repeat("x", 200)))
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			req.Header.Set("TTL", "60")
			req.Header.Set("Content-Encoding", "aes128gcm")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	if n := len(srv.Received()); n != 0 {
		t.Fatalf("stand-in accepted %d messages", n)
	}
}

func TestSend_RedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/push/x", http.StatusFound)
	}))
	t.Cleanup(redirector.Close)

	// A browser's keys, so the Sender gets as far as posting.
	srv := webpushtest.NewServer(t)
	sub := srv.Subscribe(t)
	sub.Endpoint = redirector.URL + "/push/x"
	allowed := []string{redirector.URL + "/push/", target.URL + "/push/"}

	clients := map[string]*http.Client{
		"default client":          nil,
		"client that follows all": {},
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			s := webpush.NewSender(mustKeys(t), subject, allowed, c)
			err := s.Send(t.Context(), sub, note())
			if err == nil || !strings.Contains(err.Error(), "redirect") {
				t.Fatalf("err = %v, want a refused redirect", err)
			}
			var re *push.RetryError
			if errors.As(err, &re) || errors.Is(err, push.ErrGone) {
				t.Fatalf("err = %v: a redirect is neither retried nor a gone device", err)
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}

func TestSend_NotAllowedSendsNothing(t *testing.T) {
	srv := webpushtest.NewServer(t)
	sub := srv.Subscribe(t)
	for name, allowed := range map[string][]string{
		"default list":   nil,
		"other service":  {"https://fcm.googleapis.com/"},
		"other path":     {srv.URL + "/admin/"},
		"look-alike URL": {srv.URL + "0/push/"},
	} {
		t.Run(name, func(t *testing.T) {
			s := webpush.NewSender(mustKeys(t), subject, allowed, nil)
			if err := s.Send(t.Context(), sub, note()); !errors.Is(err, webpush.ErrNotAllowed) {
				t.Fatalf("err = %v, want ErrNotAllowed", err)
			}
		})
	}
	if n := srv.Requests(); n != 0 {
		t.Fatalf("stand-in saw %d requests", n)
	}
}

func TestSend_HangingServiceBoundedByDeadline(t *testing.T) {
	srv := webpushtest.NewServer(t)
	s := newSender(t, srv)
	sub := srv.Subscribe(t)
	srv.Hang(sub)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, sub, note())
	took := time.Since(start)
	if took > 2*time.Second {
		t.Fatalf("Send took %v past a 200ms deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	var re *push.RetryError
	if !errors.As(err, &re) {
		t.Errorf("err = %v, want *push.RetryError", err)
	}
	if srv.Requests() != 1 {
		t.Errorf("stand-in saw %d requests, want the 1 it held", srv.Requests())
	}
}

func TestSend_BadSubscriptionKeysAreGone(t *testing.T) {
	srv := webpushtest.NewServer(t)
	s := newSender(t, srv)
	good := srv.Subscribe(t)
	for name, sub := range map[string]webpush.Subscription{
		"p256dh not a point": {Endpoint: good.Endpoint, P256dh: "BAAA", Auth: good.Auth},
		"auth too short":     {Endpoint: good.Endpoint, P256dh: good.P256dh, Auth: "AAAA"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := s.Send(t.Context(), sub, note()); !errors.Is(err, push.ErrGone) {
				t.Fatalf("err = %v, want ErrGone", err)
			}
		})
	}
	if n := srv.Requests(); n != 0 {
		t.Fatalf("stand-in saw %d requests", n)
	}
}

func TestNewSender_BadConfigSendsNothing(t *testing.T) {
	srv := webpushtest.NewServer(t)
	sub := srv.Subscribe(t)
	for name, s := range map[string]*webpush.Sender{
		"no keys":         webpush.NewSender(webpush.Keys{}, subject, srv.Allowed(), nil),
		"subject not URL": webpush.NewSender(mustKeys(t), "ops@confab.example", srv.Allowed(), nil),
	} {
		t.Run(name, func(t *testing.T) {
			if err := s.Send(t.Context(), sub, note()); err == nil {
				t.Fatal("sent")
			}
		})
	}
	if n := srv.Requests(); n != 0 {
		t.Fatalf("stand-in saw %d requests", n)
	}
}

func TestSend_Concurrent(t *testing.T) {
	srv := webpushtest.NewServer(t)
	s := newSender(t, srv)
	subs := make([]webpush.Subscription, 8)
	for i := range subs {
		subs[i] = srv.Subscribe(t)
	}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if err := s.Send(t.Context(), subs[i%len(subs)], note()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(srv.Received()); n != 32 {
		t.Fatalf("received %d, want 32", n)
	}
}

// TestSend_OnlyTheSubscriptionsKey: a subscription made for one
// applicationServerKey takes messages signed with it, and a push service
// refuses (403) those signed with another, as browsers' services do.
func TestSend_OnlyTheSubscriptionsKey(t *testing.T) {
	srv := webpushtest.NewServer(t)
	keys, other := mustKeys(t), mustKeys(t)
	sub := srv.SubscribeFor(t, keys.Public())
	if err := webpush.NewSender(keys, subject, srv.Allowed(), nil).Send(t.Context(), sub, note()); err != nil {
		t.Fatalf("Send with the subscription's key: %v", err)
	}
	err := webpush.NewSender(other, subject, srv.Allowed(), nil).Send(t.Context(), sub, note())
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Send with another key: %v, want a 403 refusal", err)
	}
	if n := len(srv.Received()); n != 1 {
		t.Fatalf("%d messages accepted, want 1", n)
	}
}
