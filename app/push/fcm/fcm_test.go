package fcm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/push"
	"github.com/confab/confab/app/push/fcm"
	"github.com/confab/confab/app/push/fcm/fcmtest"
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

// mustSender starts a stand-in and a sender signed in to it, sharing clk.
func mustSender(t *testing.T, clk *clock) (*fcmtest.Server, *fcm.Sender) {
	t.Helper()
	srv, credsJSON := fcmtest.NewServer(t)
	creds, err := fcm.ParseCredentials(credsJSON)
	if err != nil {
		t.Fatalf("ParseCredentials: %v", err)
	}
	s := fcm.NewSender(creds, srv.URL, nil)
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
	n := testNotification()
	if err := s.Send(context.Background(), "device-a", n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("stand-in got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Token != "device-a" || m.Notification.Title != n.Title || m.Notification.Body != n.Body {
		t.Errorf("token/title/body = %q/%q/%q", m.Token, m.Notification.Title, m.Notification.Body)
	}
	for k, v := range n.Data {
		if m.Data[k] != v {
			t.Errorf("data[%q] = %q, want %q", k, m.Data[k], v)
		}
	}
	if m.Android.CollapseKey != "conv-42" || m.Android.Notification.Tag != "conv-42" {
		t.Errorf("android collapse_key/tag = %q/%q", m.Android.CollapseKey, m.Android.Notification.Tag)
	}
	if c := m.Android.Notification.NotificationCount; c == nil || *c != 3 {
		t.Errorf("android notification_count = %v, want 3", c)
	}
	if m.Android.TTL != "5400s" {
		t.Errorf("android ttl = %q, want 5400s", m.Android.TTL)
	}
	if got := m.APNS.Headers["apns-collapse-id"]; got != "conv-42" {
		t.Errorf("apns-collapse-id = %q", got)
	}
	wantExp := clk.Now().Add(90 * time.Minute).Unix()
	if got := m.APNS.Headers["apns-expiration"]; got != jsonNumber(wantExp) {
		t.Errorf("apns-expiration = %q, want %d", got, wantExp)
	}
	aps, _ := m.APNS.Payload["aps"].(map[string]any)
	if aps["badge"] != float64(3) {
		t.Errorf("apns payload aps = %v, want badge 3", aps)
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestSend_LongCollapseKeyFitsAPNs(t *testing.T) {
	t.Parallel()
	srv, s := mustSender(t, nil)
	n := testNotification()
	n.Collapse = strings.Repeat("c", 100)
	if err := s.Send(context.Background(), "device-a", n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := srv.Messages()[0]
	if id := m.APNS.Headers["apns-collapse-id"]; len(id) != 64 || id == n.Collapse[:64] {
		t.Errorf("apns-collapse-id = %q, want a 64-byte digest", id)
	}
	if m.Android.CollapseKey != n.Collapse {
		t.Errorf("android collapse_key was shortened")
	}
}

func TestSend_OneTokenForManySends(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv, s := mustSender(t, clk)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() { errs <- s.Send(context.Background(), "device-a", testNotification()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Fatalf("token requests after 20 concurrent sends = %d, want 1", n)
	}

	clk.Advance(58 * time.Minute) // still more than a minute left
	if err := s.Send(context.Background(), "device-a", testNotification()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Fatalf("token requests at 58 minutes = %d, want 1", n)
	}

	clk.Advance(90 * time.Second) // within a minute of expiry
	if err := s.Send(context.Background(), "device-a", testNotification()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := srv.TokenRequests(); n != 2 {
		t.Fatalf("token requests near expiry = %d, want 2", n)
	}
	if n := len(srv.Messages()); n != 22 {
		t.Fatalf("messages = %d, want 22", n)
	}
}

func TestSend_RefreshesTokenOn401(t *testing.T) {
	t.Parallel()
	srv, s := mustSender(t, nil)
	ctx := context.Background()
	if err := s.Send(ctx, "device-a", testNotification()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	srv.ExpireTokens()
	if err := s.Send(ctx, "device-a", testNotification()); err != nil {
		t.Fatalf("Send after tokens expired: %v", err)
	}
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("messages = %d, want 2", n)
	}
}

func TestSend_AssertionSignedByAnotherKeyRefused(t *testing.T) {
	t.Parallel()
	srv, credsJSON := fcmtest.NewServer(t)
	creds, err := fcm.ParseCredentials(credsJSON)
	if err != nil {
		t.Fatal(err)
	}
	creds.Key, err = rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := fcm.NewSender(creds, srv.URL, nil)
	err = s.Send(context.Background(), "device-a", testNotification())
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("Send with a foreign key = %v, want invalid_grant", err)
	}
	var retry *push.RetryError
	if errors.Is(err, push.ErrGone) || errors.As(err, &retry) {
		t.Errorf("a refused assertion is neither gone nor retryable: %v", err)
	}
	if srv.Refused() != 1 || len(srv.Messages()) != 0 {
		t.Errorf("refused = %d, messages = %d; want 1, 0", srv.Refused(), len(srv.Messages()))
	}
}

func TestSend_Errors(t *testing.T) {
	t.Parallel()
	srv, s := mustSender(t, nil)
	srv.Unregister("gone")
	srv.InvalidToken("malformed")
	srv.Fail("broken", 500, 0)
	srv.Fail("busy", 503, 7*time.Second)
	srv.Fail("quota", 429, 0)

	tests := []struct {
		device    string
		data      map[string]string
		wantGone  bool
		wantRetry bool
		wantAfter time.Duration
	}{
		{device: "gone", wantGone: true},
		// INVALID_ARGUMENT is also what a bad payload gets, so the device stays.
		{device: "malformed"},
		{device: "broken", wantRetry: true},
		{device: "busy", wantRetry: true, wantAfter: 7 * time.Second},
		{device: "quota", wantRetry: true},
		{device: "fine", data: map[string]string{"google.x": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.device, func(t *testing.T) {
			n := testNotification()
			if tt.data != nil {
				n.Data = tt.data
			}
			err := s.Send(context.Background(), tt.device, n)
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if got := errors.Is(err, push.ErrGone); got != tt.wantGone {
				t.Errorf("errors.Is(%v, ErrGone) = %v, want %v", err, got, tt.wantGone)
			}
			var retry *push.RetryError
			if got := errors.As(err, &retry); got != tt.wantRetry {
				t.Fatalf("RetryError? %v for %v, want %v", got, err, tt.wantRetry)
			}
			if retry != nil && retry.After != tt.wantAfter {
				t.Errorf("After = %v, want %v", retry.After, tt.wantAfter)
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

func TestParseCredentials(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	ec8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	pkcs8PEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	pkcs1PEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ec8}))

	valid := func() map[string]string {
		return map[string]string{
			"type":         "service_account",
			"project_id":   "p",
			"private_key":  pkcs8PEM,
			"client_email": "a@p.iam.gserviceaccount.com",
			"token_uri":    "https://oauth2.googleapis.com/token",
		}
	}
	tests := []struct {
		name    string
		edit    func(map[string]string)
		wantErr string
	}{
		{name: "pkcs8", edit: func(map[string]string) {}},
		{name: "pkcs1", edit: func(m map[string]string) { m["private_key"] = pkcs1PEM }},
		{name: "no type", edit: func(m map[string]string) { delete(m, "type") }, wantErr: "type is missing"},
		{name: "no project", edit: func(m map[string]string) { delete(m, "project_id") }, wantErr: "project_id is missing"},
		{name: "no key", edit: func(m map[string]string) { delete(m, "private_key") }, wantErr: "private_key is missing"},
		{name: "no email", edit: func(m map[string]string) { delete(m, "client_email") }, wantErr: "client_email is missing"},
		{name: "no token uri", edit: func(m map[string]string) { delete(m, "token_uri") }, wantErr: "token_uri is missing"},
		{name: "user account", edit: func(m map[string]string) { m["type"] = "authorized_user" }, wantErr: `type is "authorized_user"`},
		{name: "token uri not a URL", edit: func(m map[string]string) { m["token_uri"] = "oauth2" }, wantErr: "token_uri"},
		{name: "not PEM", edit: func(m map[string]string) { m["private_key"] = "nope" }, wantErr: "private_key: no PEM block"},
		{name: "EC key", edit: func(m map[string]string) { m["private_key"] = ecPEM }, wantErr: "want RSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.edit(m)
			data, _ := json.Marshal(m)
			c, err := fcm.ParseCredentials(data)
			if tt.wantErr == "" {
				if err != nil || c.Key == nil || !c.Key.Equal(rsaKey) || c.ProjectID != "p" {
					t.Fatalf("ParseCredentials = %+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseCredentials error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if _, err := fcm.ParseCredentials([]byte("{")); err == nil {
		t.Error("ParseCredentials accepted broken JSON")
	}
}
