package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/app/server/servertest"
)

// do sends a request with headers and returns the answer, a redirect
// itself rather than where it leads.
func do(t *testing.T, s *servertest.Server, method, path string, body string, header http.Header) servertest.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: got}
}

// Every kind of response carries the security headers, the console its
// Content-Security-Policy, and errors on /api and /ws are JSON.
func TestSecurityHeaders_OnEveryKindOfResponse(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.RegistrationsPerMinute = 1 }))
	u := s.Register(t, "alice") // the one sign-up of the minute
	bearer := http.Header{"Authorization": {"Bearer " + u.Access}}
	foreign := http.Header{"Origin": {"https://evil.example"}, "Connection": {"Upgrade"}, "Upgrade": {"websocket"},
		"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	signup := `{"username":"bob_x","password":"password1"}`

	cases := []struct {
		name         string
		method, path string
		body         string
		header       http.Header
		status       int
		console      bool // a page or file of the console: needs the CSP
	}{
		{"console", http.MethodGet, "/", "", nil, http.StatusOK, true},
		{"console HEAD", http.MethodHead, "/", "", nil, http.StatusOK, true},
		{"console script", http.MethodGet, "/app.js", "", nil, http.StatusOK, true},
		{"console style", http.MethodGet, "/style.css", "", nil, http.StatusOK, true},
		{"favicon", http.MethodGet, "/favicon.ico", "", nil, http.StatusOK, true},
		{"missing static file", http.MethodGet, "/nope.txt", "", nil, http.StatusNotFound, true},
		{"missing static file HEAD", http.MethodHead, "/nope/deeper.js", "", nil, http.StatusNotFound, true},
		{"static redirect", http.MethodGet, "/index.html", "", nil, http.StatusMovedPermanently, true},
		{"router 405 on the console", http.MethodPost, "/", "", nil, http.StatusMethodNotAllowed, true},
		{"router 405 on healthz", http.MethodDelete, "/healthz", "", nil, http.StatusMethodNotAllowed, false},
		{"router 405 on metrics", http.MethodPost, "/metrics", "", nil, http.StatusMethodNotAllowed, false},
		{"OPTIONS on the console", http.MethodOptions, "/", "", nil, http.StatusNoContent, true},
		{"redirect", http.MethodGet, "/healthz/", "", nil, http.StatusMovedPermanently, false},
		{"metrics 403", http.MethodGet, "/metrics", "", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, http.StatusForbidden, false},
		{"api", http.MethodGet, "/api/users/me/", "", bearer, http.StatusOK, false},
		{"api 401", http.MethodGet, "/api/users/me/", "", nil, http.StatusUnauthorized, false},
		{"api 404", http.MethodGet, "/api/nothing/", "", bearer, http.StatusNotFound, false},
		{"api 405", http.MethodPut, "/api/users/me/", "", bearer, http.StatusMethodNotAllowed, false},
		{"api 413", http.MethodPost, "/api/auth/token/", `{"username":"` + strings.Repeat("a", 70<<10) + `"}`, nil, http.StatusRequestEntityTooLarge, false},
		{"api 429", http.MethodPost, "/api/auth/register/", signup, nil, http.StatusTooManyRequests, false},
		{"api 400", http.MethodPost, "/api/auth/token/", `{`, nil, http.StatusBadRequest, false},
		{"openapi", http.MethodGet, "/api/openapi.json", "", nil, http.StatusOK, false},
		{"healthz", http.MethodGet, "/healthz", "", nil, http.StatusOK, false},
		{"readyz", http.MethodGet, "/readyz", "", nil, http.StatusOK, false},
		{"metrics", http.MethodGet, "/metrics", "", nil, http.StatusOK, false},
		{"socket, foreign origin", http.MethodGet, "/ws/chat/?token=" + u.Access, "", foreign, http.StatusForbidden, false},
		{"socket, not a handshake", http.MethodGet, "/ws/chat/", "", nil, http.StatusBadRequest, false},
		{"socket 404", http.MethodGet, "/ws/nothing/", "", nil, http.StatusNotFound, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, s, tc.method, tc.path, tc.body, tc.header)
			if r.Status != tc.status {
				t.Fatalf("%s %s: %d, want %d; %s", tc.method, tc.path, r.Status, tc.status, r.Body)
			}
			if v := r.Header.Get("X-Content-Type-Options"); v != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", v)
			}
			if v := r.Header.Get("Referrer-Policy"); v != "no-referrer" {
				t.Errorf("Referrer-Policy %q, want no-referrer", v)
			}
			if tc.console {
				csp := r.Header.Get("Content-Security-Policy")
				for _, want := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
					if !strings.Contains(csp, want) {
						t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
					}
				}
				if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
					t.Errorf("Content-Security-Policy %q allows inline or eval'd script", csp)
				}
			}
			if tc.status >= 400 && tc.method != http.MethodHead && (strings.HasPrefix(tc.path, "/api/") || strings.HasPrefix(tc.path, "/ws/")) {
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("error Content-Type %q, want JSON: %s", ct, r.Body)
				}
			}
		})
	}
}

// By default no other origin may read the API from a browser: no CORS
// header answers a foreign Origin, on a request or a preflight.
func TestCORS_ForeignOriginsGetNoAccess(t *testing.T) {
	s := servertest.Start(t)
	u := s.Register(t, "alice")
	origin := "https://evil.example"
	for _, tc := range []struct {
		method, path, body string
		header             http.Header
	}{
		{http.MethodGet, "/api/users/me/", "", http.Header{"Authorization": {"Bearer " + u.Access}}},
		{http.MethodGet, "/api/conversations/", "", http.Header{"Authorization": {"Bearer " + u.Access}}},
		{http.MethodPost, "/api/auth/token/", `{"username":"` + u.Username + `","password":"` + servertest.Password + `"}`, nil},
		{http.MethodOptions, "/api/users/me/", "", http.Header{"Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization"}}},
		{http.MethodOptions, "/api/auth/token/", "", http.Header{"Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}}},
		{http.MethodGet, "/", "", nil},
		{http.MethodGet, "/healthz", "", nil},
	} {
		h := http.Header{"Origin": {origin}}
		for k, v := range tc.header {
			h[k] = v
		}
		r := do(t, s, tc.method, tc.path, tc.body, h)
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s %s from %s: %s: %s", tc.method, tc.path, origin, k, r.Header.Get(k))
			}
		}
	}
}

// A failed login takes as long whether the username exists or not, at
// the cost passwords are really stored with: the time does not tell
// which usernames exist.
func TestLogin_TimeDoesNotRevealWhetherTheUserExists(t *testing.T) {
	timingOnly(t) // a ratio of wall-clock times

	t.Parallel()                                                                               // a dozen real hashes: let the rest of the package run meanwhile
	s := servertest.Start(t, func(_ *config.Config, o *server.Options) { o.PasswordCost = 0 }) // 0: auth.DefaultCost
	u := s.Register(t, "alice")
	login := func(name string) time.Duration {
		start := time.Now()
		r := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": name, "password": "not the password"})
		took := time.Since(start)
		wantError(t, r, http.StatusUnauthorized, "not_authenticated")
		return took
	}
	var existing, missing []time.Duration
	for i := range 3 { // alternating, so that the machine's load counts for both
		existing = append(existing, login(u.Username))
		missing = append(missing, login(p("nobody_%d", i)))
	}
	slices.Sort(existing)
	slices.Sort(missing)
	a, b := existing[1], missing[1]
	t.Logf("median failed login: %v for an existing user, %v for a missing one", a, b)
	if ratio := float64(b) / float64(a); ratio < 0.5 || ratio > 2 {
		t.Errorf("a failed login takes %v for an existing user and %v for a missing one: the time tells them apart", a, b)
	}
}

// Some answers net/http writes itself, before any handler runs: to a
// request line or header it cannot parse, headers past MaxHeaderBytes, a
// protocol version or transfer coding it does not speak, an Expect it
// cannot meet. No code of ours sees those requests, so none of our
// headers can go on those answers. This test sends them over raw TCP and
// holds what they are (short plain text, or no body, with none of our
// headers), so that what docs/operations.md says stays true: it fails when
// a Go release changes them. A well-formed request on the same path gets
// every header.
func TestSecurityHeaders_NetHTTPsOwnAnswersCarryNone(t *testing.T) {
	s := servertest.Start(t)
	addr := strings.TrimPrefix(s.URL, "http://")
	ours := []string{"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Content-Security-Policy", "X-Request-Id"}
	for _, tc := range []struct {
		name, request string
		status        int
	}{
		{"well formed", "GET /nope.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", http.StatusNotFound},
		{"malformed request line", "GARBAGE\r\n\r\n", http.StatusBadRequest},
		{"bad escape in the path", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"malformed header", "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", http.StatusBadRequest},
		{"headers too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"unknown version", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", http.StatusHTTPVersionNotSupported},
		{"unknown transfer coding", "POST /api/auth/token/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: zip\r\n\r\n", http.StatusNotImplemented},
		{"unmeetable Expect", "GET / HTTP/1.1\r\nHost: x\r\nExpect: the-unexpected\r\n\r\n", http.StatusExpectationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			// The server may answer and hang up before it has read all of
			// a request it refuses: a failed write is no failure here.
			go conn.Write([]byte(tc.request))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("read the answer: %v", err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == http.StatusNotFound { // ours
				for _, h := range ours {
					if resp.Header.Get(h) == "" {
						t.Errorf("a well-formed request's answer lacks %s", h)
					}
				}
				return
			}
			for _, h := range ours {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("%s: %q: net/http now lets our headers on (or adds its own); update docs/operations.md", h, v)
				}
			}
			if !resp.Close {
				t.Error("the connection stays open")
			}
			if ct := resp.Header.Get("Content-Type"); len(body) > 0 && !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q for %q: a browser could render it", ct, body)
			}
			if strings.Contains(string(body), "<") {
				t.Errorf("body %q has markup", body)
			}
			t.Logf("%s %q", resp.Status, body)
		})
	}
}
