package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

// postFrom posts body to path as if from addr (the server trusts
// X-Forwarded-For).
func postFrom(t *testing.T, s *servertest.Server, addr, path string, body any) servertest.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return requestFrom(t, s, addr, http.MethodPost, path, "", bytes.NewReader(b))
}

// requestFrom sends a request as if from addr (the server trusts
// X-Forwarded-For), with token as its Bearer when not empty.
func requestFrom(t *testing.T, s *servertest.Server, addr, method, path, token string, body io.Reader) servertest.Response {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Forwarded-For", addr)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: got}
}

// Failed logins are limited per address across usernames too (3× the
// per-username limit), so that guessing at many accounts from one address
// cannot make the server hash passwords without end; other addresses are
// not affected.
func TestLogin_RateLimitedPerAddressAcrossUsernames(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.LoginAttemptsPerMinute, c.TrustProxy = 2, true
	}))
	u := s.Register(t, "victim")
	const attacker, neighbour = "203.0.113.7", "198.51.100.9"
	guess := func(addr, name string) servertest.Response {
		return postFrom(t, s, addr, "/api/auth/token/", map[string]string{"username": name, "password": "not the password"})
	}
	// Successful logins do not count.
	for range 8 {
		wantStatus(t, postFrom(t, s, attacker, "/api/auth/token/", map[string]string{"username": u.Username, "password": servertest.Password}), http.StatusOK)
	}
	for i := range 6 { // 3 × LOGIN_ATTEMPTS_PER_MINUTE, one per username
		wantError(t, guess(attacker, fmt.Sprint("someone", i)), http.StatusUnauthorized, "not_authenticated")
	}
	r := guess(attacker, "someone_else")
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if ra := r.Header.Get("Retry-After"); ra != "10" {
		t.Errorf("Retry-After %q, want 10 (one attempt back every 60/6 s)", ra)
	}
	// Another address guesses on.
	wantError(t, guess(neighbour, "someone0"), http.StatusUnauthorized, "not_authenticated")
}

// A client that keeps asking while rate limited gets its first few 429s
// at once, then about one a second on a connection, not as fast as it
// can ask.
func TestRateLimited_AnswersAreHeldBack(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.RegistrationsPerMinute = 1 }))
	s.Register(t, "first") // the one sign-up of the minute
	conn, err := net.Dial("tcp", s.HTTP.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	answers := 0
	for start := time.Now(); time.Since(start) < 2*time.Second; answers++ {
		body := fmt.Sprintf(`{"username":"flood%d","password":"password1"}`, answers)
		fmt.Fprintf(conn, "POST /api/auth/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("sign-up %d: %d, want 429 with Retry-After", answers, resp.StatusCode)
		}
	}
	if answers > 6 {
		t.Errorf("%d refusals in 2 s on one connection, want 3 at once, then about one a second", answers)
	}
}

// A tight loop of GETs from one address runs into REQUEST_BURST and gets
// 429 rate_limited with Retry-After, while another address is served and
// health checks, metrics, the console and socket handshakes from the
// looping address still pass.
func TestRequests_RateLimitedPerAddress(t *testing.T) {
	const metricsToken = "a-metrics-token-of-some-length"
	clk := newClock() // stands still: no token comes back during the test
	s := servertest.Start(t, servertest.WithNow(clk.Now), servertest.WithConfig(func(c *config.Config) {
		c.TrustProxy, c.RequestsPerSecond, c.RequestBurst = true, 2, 5
		// Metrics from a forwarded address need the token.
		c.MetricsToken = metricsToken
	}))
	u := s.Register(t, "looper") // from 127.0.0.1, not the addresses below
	const looper, other = "203.0.113.50", "198.51.100.60"
	for range 5 {
		wantStatus(t, requestFrom(t, s, looper, http.MethodGet, "/api/users/me/", u.Access, nil), http.StatusOK)
	}
	r := requestFrom(t, s, looper, http.MethodGet, "/api/users/me/", u.Access, nil)
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if ra := r.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1 (a token back every half second)", ra)
	}
	// Unauthenticated requests count too: the limit runs before the token
	// is checked.
	wantError(t, requestFrom(t, s, looper, http.MethodGet, "/api/users/me/", "not-a-token", nil), http.StatusTooManyRequests, "rate_limited")

	wantStatus(t, requestFrom(t, s, other, http.MethodGet, "/api/users/me/", u.Access, nil), http.StatusOK)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/", "/app.js"} {
		token := ""
		if path == "/metrics" {
			token = metricsToken
		}
		if st := requestFrom(t, s, looper, http.MethodGet, path, token, nil).Status; st != http.StatusOK {
			t.Errorf("GET %s from the limited address: %d, want 200", path, st)
		}
	}
	h := http.Header{"X-Forwarded-For": {looper}}
	ws, _, err := websocket.DefaultDialer.Dial(s.WSURL("/ws/chat/?token="+u.Access), h)
	if err != nil {
		t.Fatalf("socket from the limited address: %v", err)
	}
	ws.Close()

	clk.Advance(time.Second) // two tokens back
	wantStatus(t, requestFrom(t, s, looper, http.MethodGet, "/api/users/me/", u.Access, nil), http.StatusOK)
}
