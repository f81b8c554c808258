package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

const frontEnd = "https://app.example.com"

// corsHeaders returns the response's Access-Control-* headers.
func corsHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			out[k] = strings.Join(h.Values(k), ", ")
		}
	}
	return out
}

// wantListed fails unless the comma list has every one of want, case aside.
func wantListed(t *testing.T, name, list string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, v := range strings.Split(list, ",") {
		have[strings.ToLower(strings.TrimSpace(v))] = true
	}
	for _, w := range want {
		if !have[strings.ToLower(w)] {
			t.Errorf("%s %q lacks %s", name, list, w)
		}
	}
}

// A front end on a listed origin gets its preflights answered and can read
// every answer of the API, refusals included; it never gets cookies'
// Allow-Credentials. Other origins, and paths outside /api/, get no CORS
// headers at all.
func TestCORS_ListedOriginCallsTheAPI(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.AllowedOrigins = []string{frontEnd}
		c.RegistrationsPerMinute = 2
	}))
	u := s.Register(t, "alice") // the two sign-ups of the minute
	conv := s.Conversation(t, u, s.Register(t, "bob"))

	preflight := func(origin, method, headers string) http.Header {
		return http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}, "Access-Control-Request-Headers": {headers}}
	}
	from := func(origin string, h http.Header) http.Header {
		out := http.Header{"Origin": {origin}}
		for k, v := range h {
			out[k] = v
		}
		return out
	}
	bearer := http.Header{"Authorization": {"Bearer " + u.Access}}
	signup := `{"username":"carol_x","password":"password1"}`

	t.Run("preflights", func(t *testing.T) {
		for _, tc := range []struct{ method, path, headers string }{
			{http.MethodGet, "/api/users/me/", "authorization"},
			{http.MethodGet, "/api/users/me", "authorization"}, // without the slash, like every API path
			{http.MethodPost, p("/api/conversations/%d/messages/", conv), "authorization,content-type"},
			{http.MethodPatch, "/api/users/me/", "authorization,content-type"},
			{http.MethodDelete, "/api/messages/1/", "authorization"},
			{http.MethodPost, "/api/auth/token/", "content-type"},
			{http.MethodGet, "/api/nothing/", "authorization"}, // the 404 that follows is readable too
		} {
			r := do(t, s, http.MethodOptions, tc.path, "", preflight(frontEnd, tc.method, tc.headers))
			if r.Status != http.StatusNoContent {
				t.Errorf("preflight %s %s: %d, want 204; %s", tc.method, tc.path, r.Status, r.Body)
				continue
			}
			h := r.Header
			if got := h.Get("Access-Control-Allow-Origin"); got != frontEnd {
				t.Errorf("preflight %s %s: Allow-Origin %q, want %q", tc.method, tc.path, got, frontEnd)
			}
			wantListed(t, "Allow-Methods", h.Get("Access-Control-Allow-Methods"), tc.method)
			wantListed(t, "Allow-Headers", h.Get("Access-Control-Allow-Headers"), strings.Split(tc.headers, ",")...)
			if v := h.Get("Access-Control-Allow-Credentials"); v != "" {
				t.Errorf("preflight %s %s: Allow-Credentials %q: Bearer tokens only, never cookies", tc.method, tc.path, v)
			}
			if v := h.Get("Access-Control-Max-Age"); v != "600" {
				t.Errorf("preflight %s %s: Max-Age %q, want 600", tc.method, tc.path, v)
			}
			wantListed(t, "Vary", strings.Join(h.Values("Vary"), ","), "Origin")
			if v := h.Get("X-Content-Type-Options"); v != "nosniff" {
				t.Errorf("preflight %s %s: no security headers (X-Content-Type-Options %q)", tc.method, tc.path, v)
			}
		}
	})

	t.Run("requests", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, body string
			header                   http.Header
			status                   int
		}{
			{"read", http.MethodGet, "/api/users/me/", "", bearer, http.StatusOK},
			{"write", http.MethodPost, p("/api/conversations/%d/messages/", conv), `{"content":"from the front end"}`, bearer, http.StatusCreated},
			{"401", http.MethodGet, "/api/users/me/", "", nil, http.StatusUnauthorized},
			{"404", http.MethodGet, "/api/nothing/", "", bearer, http.StatusNotFound},
			{"405", http.MethodPut, "/api/users/me/", "", bearer, http.StatusMethodNotAllowed},
			{"429", http.MethodPost, "/api/auth/register/", signup, nil, http.StatusTooManyRequests},
			{"openapi", http.MethodGet, "/api/openapi.json", "", nil, http.StatusOK},
		} {
			r := do(t, s, tc.method, tc.path, tc.body, from(frontEnd, tc.header))
			if r.Status != tc.status {
				t.Errorf("%s: %s %s: %d, want %d; %s", tc.name, tc.method, tc.path, r.Status, tc.status, r.Body)
				continue
			}
			h := r.Header
			if got := h.Get("Access-Control-Allow-Origin"); got != frontEnd {
				t.Errorf("%s: Allow-Origin %q, want %q", tc.name, got, frontEnd)
			}
			if v := h.Get("Access-Control-Allow-Credentials"); v != "" {
				t.Errorf("%s: Allow-Credentials %q", tc.name, v)
			}
			wantListed(t, "Expose-Headers", h.Get("Access-Control-Expose-Headers"), "Retry-After", "X-Request-Id")
			if tc.status == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
				t.Errorf("%s: no Retry-After", tc.name)
			}
		}
	})

	t.Run("other origins and paths get nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, origin string
			header                     http.Header
		}{
			{"foreign preflight", http.MethodOptions, "/api/users/me/", "https://evil.example", preflight("https://evil.example", "GET", "authorization")},
			{"foreign request", http.MethodGet, "/api/users/me/", "https://evil.example", bearer},
			{"another scheme", http.MethodGet, "/api/users/me/", "http://app.example.com", bearer},
			{"a subdomain", http.MethodGet, "/api/users/me/", "https://evil.app.example.com", bearer},
			{"console", http.MethodGet, "/", frontEnd, nil},
			{"healthz", http.MethodGet, "/healthz", frontEnd, nil},
			{"metrics", http.MethodGet, "/metrics", frontEnd, nil},
		} {
			r := do(t, s, tc.method, tc.path, "", from(tc.origin, tc.header))
			if got := corsHeaders(r.Header); len(got) > 0 {
				t.Errorf("%s: %s %s from %s: %v", tc.name, tc.method, tc.path, tc.origin, got)
			}
			if tc.method == http.MethodOptions && r.Status != http.StatusNoContent {
				t.Errorf("%s: %d, want the 204 of every preflight under /api/", tc.name, r.Status)
			}
		}
	})
}

// ALLOWED_ORIGINS=* lets any origin call the API, with its own origin
// echoed back (and Vary: Origin), still without credentials.
func TestCORS_AnyOriginWithStar(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.AllowedOrigins = []string{"*"} }))
	u := s.Register(t, "alice")
	for _, origin := range []string{"https://one.example", "http://localhost:5173"} {
		r := do(t, s, http.MethodOptions, "/api/users/me/", "", http.Header{"Origin": {origin},
			"Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization"}})
		if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("preflight from %s: %d %v", origin, r.Status, corsHeaders(r.Header))
		}
		r = do(t, s, http.MethodGet, "/api/users/me/", "", http.Header{"Origin": {origin}, "Authorization": {"Bearer " + u.Access}})
		if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != origin || r.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("GET from %s: %d %v", origin, r.Status, corsHeaders(r.Header))
		}
	}
}

// With no ALLOWED_ORIGINS (the default) there is no CORS at all: a
// preflight keeps the 405 of a method the route does not take.
func TestCORS_OffByDefault(t *testing.T) {
	s := servertest.Start(t)
	r := do(t, s, http.MethodOptions, "/api/users/me/", "", http.Header{"Origin": {frontEnd},
		"Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization"}})
	if r.Status != http.StatusMethodNotAllowed {
		t.Errorf("preflight: %d, want 405; %s", r.Status, r.Body)
	}
	if got := corsHeaders(r.Header); len(got) > 0 {
		t.Errorf("preflight: %v", got)
	}
}
