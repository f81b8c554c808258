package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/app/server/servertest"
)

// A login storm from many addresses, each within its own limits, meets
// the global cap on password hashing: past PASSWORD_HASH_CONCURRENCY
// running and PASSWORD_HASH_QUEUE waiting, a login is answered 503
// overloaded with Retry-After at once, and requests that hash nothing
// (GET /api/users/me/) are still served during the storm.
func TestLogin_StormMeetsTheHashingCap(t *testing.T) {
	s := servertest.Start(t,
		func(_ *config.Config, o *server.Options) { o.PasswordCost = 7 }, // a few ms a hash, many under -race
		servertest.WithConfig(func(c *config.Config) {
			c.TrustProxy, c.PasswordHashConcurrency, c.PasswordHashQueue = true, 1, 2
		}))
	u := s.Register(t, "stormed")
	body, _ := json.Marshal(map[string]string{"username": u.Username, "password": servertest.Password})

	const storm = 40
	statuses := make(chan servertest.Response, storm)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range storm {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/auth/token/", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			statuses <- servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
		})
	}
	close(start)
	// Meanwhile, a request that hashes nothing completes.
	wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", u.Access, nil), http.StatusOK)
	wg.Wait()
	close(statuses)

	ok, refused := 0, 0
	for r := range statuses {
		switch r.Status {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			refused++
			wantError(t, r, http.StatusServiceUnavailable, "overloaded")
			if ra := r.Header.Get("Retry-After"); ra != "1" {
				t.Errorf("503 with Retry-After %q, want 1", ra)
			}
		default:
			t.Errorf("login: %d %s", r.Status, r.Body)
		}
	}
	t.Logf("%d logins served, %d refused", ok, refused)
	if ok == 0 || refused == 0 {
		t.Errorf("%d served and %d refused of %d: want some of each", ok, refused, storm)
	}
	// Once the storm is over, logging in works again.
	wantStatus(t, s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": servertest.Password}), http.StatusOK)
}
