package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/confab/confab/app/api"
	"github.com/confab/confab/app/server/servertest"
)

func TestLogs_NeverShowTokensOrPasswords(t *testing.T) {
	s := servertest.Start(t)
	const pw = "my-very-secret-password"
	r := s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": "logged", "password": pw})
	wantStatus(t, r, http.StatusCreated)
	m := r.Map(t)
	access, refresh := m["access"].(string), m["refresh"].(string)
	s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": "logged", "password": pw})
	s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": "logged", "password": pw + "-wrong"})
	s.Do(t, http.MethodGet, "/api/users/me/?token="+access+"&Ticket=tick3t-value&refresh="+refresh, access, nil)
	s.Do(t, http.MethodGet, "/api/users/me/?password="+pw+"&x=%zz", access, nil)
	s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": refresh})
	s.Do(t, http.MethodPost, "/api/auth/logout/", "", map[string]string{"refresh": refresh})

	logs := s.Logs.String()
	if !strings.Contains(logs, "/api/users/me/") {
		t.Fatalf("no access log lines:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"password":      pw,
		"access token":  access,
		"refresh token": refresh,
		"ticket":        "tick3t-value",
		// the signature alone is enough to replay a token
		"token signature": access[strings.LastIndex(access, ".")+1:],
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs show the %s", name)
		}
	}
}

func TestRedactQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"limit=5", "limit=5"},
		{"token=abc&limit=5", "limit=5&token=REDACTED"},
		{"TOKEN=abc", "TOKEN=REDACTED"},
		{"ticket=a&ticket=b", "ticket=REDACTED"},
		{"token=abc;x=1", "REDACTED"}, // does not parse: dropped whole
		{"token=%zz", "REDACTED"},
	}
	for _, tt := range tests {
		if got := api.RedactQuery(tt.in); got != tt.want {
			t.Errorf("RedactQuery(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
