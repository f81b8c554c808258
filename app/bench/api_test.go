package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestRegisterOne_LogsInWhenARetriedRegistrationHadCommitted plays a
// server whose first answer is lost (502) after the account was made: the
// retry finds the name taken and logs in instead.
func TestRegisterOne_LogsInWhenARetriedRegistrationHadCommitted(t *testing.T) {
	var registers, logins atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/auth/register/":
			if registers.Add(1) == 1 {
				w.WriteHeader(http.StatusBadGateway)
				w.Write([]byte(`{"detail":"lost","code":"bad_gateway"}`))
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"detail":"taken","code":"invalid","fields":{"username":["already taken"]}}`))
		case "/api/auth/token/":
			logins.Add(1)
			w.Write([]byte(`{"user":{"id":7},"access":"a","refresh":"r"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tg, err := resolveTarget(context.Background(), srv.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	a := &api{t: tg, hc: tg.httpClient(1)}
	u, err := a.registerOne(context.Background(), "alice", "password1")
	if err != nil {
		t.Fatalf("registerOne: %v", err)
	}
	if u.ID != 7 || u.token() != "a" || registers.Load() != 2 || logins.Load() != 1 {
		t.Errorf("user %+v after %d registrations and %d logins; want id 7, token a, 2 and 1", u, registers.Load(), logins.Load())
	}
}

func TestRegisterOne_DoesNotRetryARefusal(t *testing.T) {
	var registers atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		registers.Add(1)
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"detail":"slow down","code":"throttled"}`))
	}))
	defer srv.Close()
	tg, _ := resolveTarget(context.Background(), srv.URL, false)
	a := &api{t: tg, hc: tg.httpClient(1)}
	if _, err := a.registerOne(context.Background(), "bob", "password1"); statusOf(err) != http.StatusTooManyRequests || registers.Load() != 1 {
		t.Errorf("err %v after %d attempts; want one 429", err, registers.Load())
	}
}
