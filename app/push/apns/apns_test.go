package apns_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/push"
	"github.com/confab/confab/app/push/apns"
	"github.com/confab/confab/app/push/apns/apnstest"
)

// clock is a settable time shared by a sender and the stand-in.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mustSender starts a stand-in and a sender for it, sharing clk when not nil.
func mustSender(t *testing.T, clk *clock) (*apnstest.Server, *apns.Sender) {
	t.Helper()
	srv, p8, keyID, teamID := apnstest.NewServer(t)
	key, err := apns.ParseKey(p8)
	if err != nil {
		t.Fatalf("ParseKey: %v", err)
	}
	s := apns.NewSender(key, keyID, teamID, apnstest.Topic, srv.URL, srv.Client())
	if clk != nil {
		srv.Now, s.Now = clk.Now, clk.Now
	}
	return srv, s
}

func testNotification() push.Notification {
	return push.Notification{
		Title:    "Ada in #general",
		Body:     "lunch?",
		Collapse: "conv-42",
		Badge:    3,
		Data:     map[string]string{"conversation_id": "42", "message_id": "m-7", "seq": "19"},
		TTL:      90 * time.Minute,
	}
}

func TestSend_Delivers(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv, s := mustSender(t, clk)
	device := apnstest.DeviceToken()
	n := testNotification()
	if err := s.Send(context.Background(), device, n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Received()
	if len(got) != 1 {
		t.Fatalf("stand-in got %d notifications, want 1", len(got))
	}
	r := got[0]
	if r.DeviceToken != device {
		t.Errorf("device = %q, want %q", r.DeviceToken, device)
	}
	wantHeaders := map[string]string{
		"apns-topic":       apnstest.Topic,
		"apns-push-type":   "alert",
		"apns-priority":    "10",
		"apns-collapse-id": "conv-42",
		"apns-expiration":  strconv.FormatInt(clk.Now().Add(90*time.Minute).Unix(), 10),
	}
	for k, want := range wantHeaders {
		if v := r.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if !strings.HasPrefix(r.Header.Get("authorization"), "bearer ") {
		t.Errorf("authorization = %q", r.Header.Get("authorization"))
	}
	aps, _ := r.Payload["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	if alert["title"] != n.Title || alert["body"] != n.Body {
		t.Errorf("alert = %v", alert)
	}
	if aps["badge"] != float64(3) || aps["sound"] != "default" || aps["thread-id"] != "conv-42" {
		t.Errorf("aps = %v", aps)
	}
	for k, v := range n.Data {
		if r.Payload[k] != v {
			t.Errorf("payload[%q] = %v, want %q", k, r.Payload[k], v)
		}
	}
}

func TestSend_ZeroTTLAndLongCollapse(t *testing.T) {
	t.Parallel()
	srv, s := mustSender(t, nil)
	n := testNotification()
	n.TTL = 0
	n.Collapse = strings.Repeat("c", 65)
	if err := s.Send(context.Background(), apnstest.DeviceToken(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	h := srv.Received()[0].Header
	if h.Get("apns-expiration") != "0" {
		t.Errorf("apns-expiration = %q, want 0 (now or never)", h.Get("apns-expiration"))
	}
	if id := h.Get("apns-collapse-id"); len(id) != 64 || id == n.Collapse[:64] {
		t.Errorf("apns-collapse-id = %q, want a 64-byte digest", id)
	}
}

func TestSend_DataMayNotUseAps(t *testing.T) {
	t.Parallel()
	srv, s := mustSender(t, nil)
	n := testNotification()
	n.Data = map[string]string{"aps": "x"}
	if err := s.Send(context.Background(), apnstest.DeviceToken(), n); err == nil {
		t.Fatal("Send accepted a data key named aps")
	}
	if len(srv.Received()) != 0 {
		t.Fatal("the stand-in was reached")
	}
}

func TestSend_ProviderTokenReusedThenRenewed(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv, s := mustSender(t, clk)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := s.Send(ctx, apnstest.DeviceToken(), testNotification()); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	if n := srv.ProviderTokens(); n != 1 {
		t.Fatalf("provider tokens after 10 sends = %d, want 1", n)
	}

	clk.Advance(39 * time.Minute)
	if err := s.Send(ctx, apnstest.DeviceToken(), testNotification()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := srv.ProviderTokens(); n != 1 {
		t.Fatalf("provider tokens at 39 minutes = %d, want 1", n)
	}
	clk.Advance(2 * time.Minute)
	if err := s.Send(ctx, apnstest.DeviceToken(), testNotification()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := srv.ProviderTokens(); n != 2 {
		t.Fatalf("provider tokens at 41 minutes = %d, want 2", n)
	}

	srv.ExpireProviderTokens()
	if err := s.Send(ctx, apnstest.DeviceToken(), testNotification()); err != nil {
		t.Fatalf("Send after ExpiredProviderToken: %v", err)
	}
	if n := srv.ProviderTokens(); n != 3 {
		t.Errorf("provider tokens after ExpiredProviderToken = %d, want 3", n)
	}
	if n := srv.Refused("ExpiredProviderToken"); n != 1 {
		t.Errorf("ExpiredProviderToken answers = %d, want 1", n)
	}
	if n := len(srv.Received()); n != 13 {
		t.Errorf("received = %d, want 13", n)
	}
}

func TestSend_StandInIsStrict(t *testing.T) {
	t.Parallel()
	srv, p8, keyID, teamID := apnstest.NewServer(t)
	key, err := apns.ParseKey(p8)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh transport: one cloned from an HTTP/2 client keeps offering h2.
	http1 := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs},
		Protocols:       new(http.Protocols),
	}
	http1.Protocols.SetHTTP1(true)

	tests := []struct {
		name   string
		sender *apns.Sender
		reason string
	}{
		{"another key", apns.NewSender(otherKey, keyID, teamID, apnstest.Topic, srv.URL, srv.Client()), "InvalidProviderToken"},
		{"another kid", apns.NewSender(key, "WRONGKEYID", teamID, apnstest.Topic, srv.URL, srv.Client()), "InvalidProviderToken"},
		{"another team", apns.NewSender(key, keyID, "WRONGTEAM0", apnstest.Topic, srv.URL, srv.Client()), "InvalidProviderToken"},
		{"another topic", apns.NewSender(key, keyID, teamID, "com.example.other", srv.URL, srv.Client()), "TopicDisallowed"},
		{"HTTP/1.1", apns.NewSender(key, keyID, teamID, apnstest.Topic, srv.URL, &http.Client{Transport: http1}), "HTTP2Required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.sender.Send(context.Background(), apnstest.DeviceToken(), testNotification())
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Send = %v, want %s", err, tt.reason)
			}
			var retry *push.RetryError
			if errors.Is(err, push.ErrGone) || errors.As(err, &retry) {
				t.Errorf("%v is neither gone nor retryable", err)
			}
			if srv.Refused(tt.reason) == 0 {
				t.Errorf("stand-in did not refuse with %s", tt.reason)
			}
		})
	}
	if n := len(srv.Received()); n != 0 {
		t.Errorf("stand-in accepted %d notifications", n)
	}
}

func TestSend_ProviderTokenOlderThanAnHourRefused(t *testing.T) {
	t.Parallel()
	srv, p8, keyID, teamID := apnstest.NewServer(t)
	key, _ := apns.ParseKey(p8)
	senderClock, serverClock := newClock(), newClock()
	serverClock.Advance(61 * time.Minute)
	srv.Now = serverClock.Now
	s := apns.NewSender(key, keyID, teamID, apnstest.Topic, srv.URL, srv.Client())
	s.Now = senderClock.Now
	err := s.Send(context.Background(), apnstest.DeviceToken(), testNotification())
	// One renewal is tried; with the sender's clock an hour behind it fails too.
	if err == nil || !strings.Contains(err.Error(), "ExpiredProviderToken") {
		t.Fatalf("Send = %v, want ExpiredProviderToken", err)
	}
	if n := srv.Refused("ExpiredProviderToken"); n != 2 {
		t.Errorf("ExpiredProviderToken answers = %d, want 2 (one renewal)", n)
	}
}

func TestSend_Errors(t *testing.T) {
	t.Parallel()
	srv, s := mustSender(t, nil)
	srv.Unregister("gone")
	srv.BadDeviceToken("bad")
	srv.Fail("broken", 500)
	srv.Fail("busy", 503)
	srv.Fail("throttled", 429)

	tests := []struct {
		device    string
		wantGone  bool
		wantRetry bool
	}{
		{device: "gone", wantGone: true},
		{device: "bad", wantGone: true},
		{device: "broken", wantRetry: true},
		{device: "busy", wantRetry: true},
		{device: "throttled", wantRetry: true},
	}
	for _, tt := range tests {
		t.Run(tt.device, func(t *testing.T) {
			err := s.Send(context.Background(), tt.device, testNotification())
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if got := errors.Is(err, push.ErrGone); got != tt.wantGone {
				t.Errorf("errors.Is(%v, ErrGone) = %v, want %v", err, got, tt.wantGone)
			}
			var retry *push.RetryError
			if got := errors.As(err, &retry); got != tt.wantRetry {
				t.Errorf("RetryError? %v for %v, want %v", got, err, tt.wantRetry)
			}
		})
	}
}

func TestSend_HangReturnsByDeadline(t *testing.T) {
	t.Parallel()
	srv, s := mustSender(t, nil)
	srv.Hang("slow")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, "slow", testNotification())
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Send took %v with a 300ms deadline", took)
	}
	var retry *push.RetryError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &retry) {
		t.Fatalf("Send = %v, want a RetryError wrapping the deadline", err)
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, _ := x509.MarshalECPrivateKey(p256)
	tests := []struct {
		name    string
		p8      []byte
		wantErr string
	}{
		{"P-256", pkcs8(p256), ""},
		{"P-384", pkcs8(p384), "want P-256"},
		{"RSA", pkcs8(rsaKey), "want ECDSA"},
		{"SEC 1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "PKCS#8"},
		{"not PEM", []byte("nope"), "no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := apns.ParseKey(tt.p8)
			if tt.wantErr == "" {
				if err != nil || !k.Equal(p256) {
					t.Fatalf("ParseKey = %v, %v", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseKey error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
