package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/confab/confab/app/webhook"
)

// delivery is one request as the receiver saw it.
type delivery struct {
	header    http.Header
	body      []byte
	verifyErr error // what the official library said
}

// receiver is a team's endpoint: it verifies every request with the official
// Standard Webhooks library and refuses with 401 what does not verify.
type receiver struct {
	URL string

	mu  sync.Mutex
	got []delivery
}

func newReceiver(t *testing.T, secret webhook.Secret) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret.String())
	if err != nil {
		t.Fatalf("library rejects the secret: %v", err)
	}
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		verr := wh.Verify(body, r.Header)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{header: r.Header.Clone(), body: body, verifyErr: verr})
		rc.mu.Unlock()
		if verr != nil {
			http.Error(w, verr.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func mustEvent(t *testing.T) webhook.Event {
	t.Helper()
	return webhook.Event{
		ID:        webhook.NewID(),
		Type:      "message.created",
		Timestamp: time.Now(),
		Data:      json.RawMessage(`{"id":"m1","conversation_id":"c1","text":"hello"}`),
	}
}

func TestSend_LibraryVerifies(t *testing.T) {
	secret := webhook.NewSecret()
	rc := newReceiver(t, secret)
	e := mustEvent(t)

	before := time.Now()
	if err := webhook.NewSender(rc.URL, secret, nil).Send(context.Background(), e); err != nil {
		t.Fatalf("Send: %v", err)
	}

	got := rc.deliveries()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	d := got[0]
	if d.verifyErr != nil {
		t.Fatalf("library: %v", d.verifyErr)
	}
	want, _ := e.Body()
	if !bytes.Equal(d.body, want) {
		t.Errorf("body = %s, want %s", d.body, want)
	}
	for name, want := range map[string]string{
		"Content-Type": "application/json",
		"User-Agent":   "Confab-Webhooks",
		"webhook-id":   e.ID,
	} {
		if got := d.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	ts, err := strconv.ParseInt(d.header.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		t.Fatalf("webhook-timestamp: %v", err)
	}
	if ts < before.Unix() || ts > time.Now().Unix() {
		t.Errorf("webhook-timestamp %d is not the time of the attempt", ts)
	}
}

func TestSend_RetryKeepsIDWithNewTimestamp(t *testing.T) {
	secret := webhook.NewSecret()
	rc := newReceiver(t, secret)
	e := mustEvent(t)
	s := webhook.NewSender(rc.URL, secret, nil)

	// The first attempt was a minute and a half ago; the retry is now. Both
	// lie within the library's five minutes.
	first := time.Now().Add(-90 * time.Second)
	s.Now = func() time.Time { return first }
	if err := s.Send(context.Background(), e); err != nil {
		t.Fatalf("first attempt: %v", err)
	}
	s.Now = nil
	if err := s.Send(context.Background(), e); err != nil {
		t.Fatalf("retry: %v", err)
	}

	got := rc.deliveries()
	if len(got) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(got))
	}
	for i, d := range got {
		if d.verifyErr != nil {
			t.Errorf("attempt %d: library: %v", i, d.verifyErr)
		}
		if id := d.header.Get("webhook-id"); id != e.ID {
			t.Errorf("attempt %d: webhook-id = %q, want the event's %q", i, id, e.ID)
		}
	}
	if a, b := got[0].header.Get("webhook-timestamp"), got[1].header.Get("webhook-timestamp"); a == b {
		t.Errorf("retry reused webhook-timestamp %s", a)
	}
	if a, b := got[0].header.Get("webhook-signature"), got[1].header.Get("webhook-signature"); a == b {
		t.Errorf("retry reused the signature")
	}
	if !bytes.Equal(got[0].body, got[1].body) {
		t.Errorf("retry changed the body:\n%s\n%s", got[0].body, got[1].body)
	}
}

// tamper is a transport that changes the body on the way, as an attacker
// between Confab and the receiver would.
type tamper struct{}

func (tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	body = bytes.Replace(body, []byte("hello"), []byte("HELLO"), 1)
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return http.DefaultTransport.RoundTrip(r)
}

func TestSend_ReceiverIsStrict(t *testing.T) {
	tests := []struct {
		name    string
		client  *http.Client
		now     func() time.Time
		wantLib error
	}{
		{"tampered body", &http.Client{Transport: tamper{}, Timeout: 5 * time.Second}, nil, standardwebhooks.ErrNoMatchingSignature},
		{"timestamp over five minutes old", nil, func() time.Time { return time.Now().Add(-5*time.Minute - 10*time.Second) }, standardwebhooks.ErrMessageTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := webhook.NewSecret()
			rc := newReceiver(t, secret)
			s := webhook.NewSender(rc.URL, secret, tt.client)
			s.Now = tt.now

			err := s.Send(context.Background(), mustEvent(t))

			got := rc.deliveries()
			if len(got) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(got))
			}
			if !errors.Is(got[0].verifyErr, tt.wantLib) {
				t.Errorf("library said %v, want %v", got[0].verifyErr, tt.wantLib)
			}
			var se *webhook.StatusError
			var re *webhook.RetryError
			if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || errors.As(err, &re) {
				t.Errorf("Send = %v, want a permanent 401 StatusError", err)
			}
		})
	}
}

func TestSend_Outcomes(t *testing.T) {
	longBody := strings.Repeat("a", 200) + "NOT-IN-ERROR"
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantGone   bool
		wantRetry  bool
		wantAfter  time.Duration
		wantStatus int      // for a StatusError, inside a RetryError or not
		wantIn     []string // substrings of the error
		wantNotIn  []string
	}{
		{name: "200", status: 200},
		{name: "202", status: 202},
		{name: "410 gone", status: 410, body: "endpoint deleted", wantGone: true},
		{name: "500", status: 500, body: "boom", wantRetry: true, wantStatus: 500, wantIn: []string{"500", "boom"}},
		{name: "503 with Retry-After seconds", status: 503, header: map[string]string{"Retry-After": "7"}, wantRetry: true, wantAfter: 7 * time.Second, wantStatus: 503, wantIn: []string{"retry after 7s"}},
		{name: "429 with Retry-After date", status: 429, header: map[string]string{"Retry-After": time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)}, wantRetry: true, wantAfter: 2 * time.Minute, wantStatus: 429},
		{name: "429 with garbage Retry-After", status: 429, header: map[string]string{"Retry-After": "soon"}, wantRetry: true, wantStatus: 429},
		{name: "429 with absurd Retry-After", status: 429, header: map[string]string{"Retry-After": "99999999999999"}, wantRetry: true, wantAfter: 24 * time.Hour, wantStatus: 429},
		{name: "408", status: 408, wantRetry: true, wantStatus: 408},
		{name: "400 names status and first 200 bytes", status: 400, body: longBody, wantStatus: 400,
			wantIn: []string{"400 Bad Request", strings.Repeat("a", 200)}, wantNotIn: []string{"NOT-IN-ERROR"}},
		{name: "404", status: 404, wantStatus: 404, wantIn: []string{"404 Not Found"}},
		{name: "control characters quoted", status: 422, body: "bad\ninput\x1b[31m", wantStatus: 422, wantIn: []string{`"bad\ninput\x1b[31m"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()

			err := webhook.NewSender(srv.URL, webhook.NewSecret(), nil).Send(context.Background(), mustEvent(t))

			var re *webhook.RetryError
			var se *webhook.StatusError
			switch {
			case tt.wantGone:
				if !errors.Is(err, webhook.ErrGone) {
					t.Fatalf("Send = %v, want ErrGone", err)
				}
			case tt.wantStatus == 0:
				if err != nil {
					t.Fatalf("Send = %v, want nil", err)
				}
				return
			case tt.wantRetry:
				if !errors.As(err, &re) {
					t.Fatalf("Send = %v, want a *RetryError", err)
				}
				// A date is read to the second; allow for the clock moving.
				if d := re.After - tt.wantAfter; d < -2*time.Second || d > 0 {
					t.Errorf("After = %v, want %v", re.After, tt.wantAfter)
				}
			default:
				if errors.As(err, &re) || errors.Is(err, webhook.ErrGone) {
					t.Fatalf("Send = %v, want a permanent error", err)
				}
			}
			if tt.wantStatus != 0 && (!errors.As(err, &se) || se.StatusCode != tt.wantStatus) {
				t.Errorf("Send = %v, want a StatusError with %d", err, tt.wantStatus)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			for _, s := range tt.wantNotIn {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains %q", err, s)
				}
			}
		})
	}
}

func TestSend_HangReturnsByContextDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first, so Close does not wait

	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := webhook.NewSender(srv.URL, webhook.NewSecret(), nil).Send(ctx, mustEvent(t))
	took := time.Since(start)

	var re *webhook.RetryError
	if !errors.As(err, &re) {
		t.Fatalf("Send = %v, want a *RetryError", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if took > deadline+2*time.Second {
		t.Errorf("Send took %v with a %v deadline", took, deadline)
	}
}

func TestSend_DoesNotFollowRedirects(t *testing.T) {
	hits := 0
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	err := webhook.NewSender(srv.URL+"/hook", webhook.NewSecret(), nil).Send(context.Background(), mustEvent(t))

	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("redirect was followed %d times", hits)
	}
	var se *webhook.StatusError
	var re *webhook.RetryError
	if !errors.As(err, &se) || se.StatusCode != http.StatusTemporaryRedirect || errors.As(err, &re) {
		t.Fatalf("Send = %v, want a permanent 307 StatusError", err)
	}
	if !strings.Contains(err.Error(), "redirects are not followed") {
		t.Errorf("error %q does not say redirects are not followed", err)
	}
}

func TestSend_UnreachableIsRetryableAndHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hooks/tok_SECRETPATH?key=SECRETQUERY"
	srv.Close() // nothing listens there now

	err := webhook.NewSender(url, webhook.NewSecret(), nil).Send(context.Background(), mustEvent(t))

	var re *webhook.RetryError
	if !errors.As(err, &re) {
		t.Fatalf("Send = %v, want a *RetryError", err)
	}
	if re.After != 0 {
		t.Errorf("After = %v, want 0", re.After)
	}
	for _, s := range []string{"SECRETPATH", "SECRETQUERY"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q repeats the URL", err)
		}
	}
}

func TestSend_RefusesBadInput(t *testing.T) {
	secret := webhook.NewSecret()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent for bad input")
	}))
	defer ok.Close()
	e := mustEvent(t)
	noID := e
	noID.ID = ""
	badType := e
	badType.Type = "message.sent"
	tests := []struct {
		name    string
		url     string
		secret  webhook.Secret
		event   webhook.Event
		wantErr string
	}{
		{"zero secret", ok.URL, webhook.Secret{}, e, "no secret: set WEBHOOK_SECRET"},
		{"ftp URL", "ftp://example.com/hook", secret, e, "WEBHOOK_URL must start with https:// or http://"},
		{"no host", "https:///hook", secret, e, "WEBHOOK_URL has no host"},
		{"unparsable URL hides it", "https://example.com/%zztok_hidden", secret, e, "WEBHOOK_URL is not a valid URL"},
		{"event without ID", ok.URL, secret, noID, "no ID"},
		{"unknown event type", ok.URL, secret, badType, "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.NewSender(tt.url, tt.secret, nil).Send(context.Background(), tt.event)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Send = %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "tok_hidden") {
				t.Errorf("error %q repeats the URL", err)
			}
			var re *webhook.RetryError
			if errors.As(err, &re) {
				t.Errorf("Send = %v, want a permanent error", err)
			}
		})
	}
}

func ExampleSender_Send() {
	secret, _ := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		wh, _ := standardwebhooks.NewWebhook(secret.String())
		fmt.Println("verified:", wh.Verify(body, r.Header) == nil)
	}))
	defer srv.Close()

	e := webhook.Event{ID: webhook.NewID(), Type: "user.created", Timestamp: time.Now(), Data: json.RawMessage(`{"id":"u1"}`)}
	err := webhook.NewSender(srv.URL, secret, nil).Send(context.Background(), e)
	fmt.Println("error:", err)
	// Output:
	// verified: true
	// error: <nil>
}
