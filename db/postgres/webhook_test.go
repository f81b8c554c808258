package postgres_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/app/webhook"
	"github.com/confab/confab/db/postgres/pgtest"
)

// TestWebhooks_TwoNodesSendEachEventOnce runs two dispatchers, each on a
// store of its own (two nodes) over one database, against one receiver:
// every event arrives exactly once, and both nodes send some.
func TestWebhooks_TwoNodesSendEachEventOnce(t *testing.T) {
	const events = 200
	url := pgtest.URL(t)
	a, b := mustOpen(t, url), mustOpen(t, url)
	a.SetWebhookEvents(webhook.NewSet([]string{"user.created"}))

	secret := webhook.NewSecret()
	wh, err := standardwebhooks.NewWebhook(secret.String())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		time.Sleep(2 * time.Millisecond) // an answer takes a moment, so both nodes have work
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	defer rc.Close()

	ctx := context.Background()
	for i := range events {
		if _, err := a.CreateUser(ctx, fmt.Sprintf("user%d", i), "", "hash", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var counts [2]struct {
		sync.Mutex
		n int
	}
	for i, s := range []notify.WebhookOutbox{a, b} {
		d := notify.NewWebhooks(s, webhook.NewSender(rc.URL, secret, nil), notify.WebhookOptions{
			Every: 10 * time.Millisecond, Concurrency: 4,
			OnResult: func(result string) {
				if result != notify.ResultSent {
					t.Errorf("node %d: result %s", i, result)
				}
				counts[i].Lock()
				counts[i].n++
				counts[i].Unlock()
			},
		})
		d.Start()
		defer d.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := a.PendingWebhooks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still pending", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != events {
		t.Errorf("the receiver got %d distinct events, want %d", len(got), events)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
	}
	for i := range counts {
		counts[i].Lock()
		if counts[i].n == 0 {
			t.Errorf("node %d sent nothing: the test did not run two senders", i)
		}
		counts[i].Unlock()
	}
}
