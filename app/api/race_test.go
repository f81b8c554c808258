package api_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

// parallel runs f n times at once and returns the responses.
func parallel(n int, f func(i int) servertest.Response) []servertest.Response {
	out := make([]servertest.Response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func TestRegister_SameNameAtOnceMakesOneAccount(t *testing.T) {
	s := servertest.Start(t)
	names := []string{"racer", "RACER", "Racer", "rAcEr", "racer", "RaCeR", "racer", "RACer"}
	rs := parallel(len(names), func(i int) servertest.Response {
		return s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": names[i], "password": "password1"})
	})
	created := 0
	for _, r := range rs {
		if r.Status == http.StatusCreated {
			created++
			continue
		}
		wantInvalid(t, r, "username")
	}
	if created != 1 {
		t.Errorf("%d accounts created, want 1", created)
	}
	if n := count(t, s, `SELECT count(*) FROM users WHERE lower(username) = 'racer'`); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}

func TestCreateDirect_AtOnceFromBothSidesMakesOne(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "left"), s.Register(t, "right")
	rs := parallel(8, func(i int) servertest.Response {
		me, other := a, b
		if i%2 == 1 {
			me, other = b, a
		}
		return s.Do(t, http.MethodPost, "/api/conversations/", me.Access, map[string]any{"participant_ids": []int64{other.ID}})
	})
	created := 0
	var id int64
	for _, r := range rs {
		switch r.Status {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		got := num(r.Map(t)["id"])
		if id == 0 {
			id = got
		}
		if got != id {
			t.Errorf("conversation %d and %d for one pair", id, got)
		}
	}
	if created != 1 {
		t.Errorf("%d created (201), want 1", created)
	}
	if n := count(t, s, `SELECT count(*) FROM conversations`); n != 1 {
		t.Errorf("%d conversations, want 1", n)
	}
}
