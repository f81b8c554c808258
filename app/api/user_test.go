package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

func TestMe_UpdateDisplayNameAndPassword(t *testing.T) {
	s := servertest.Start(t)
	u := s.Register(t, "liam")

	r := s.Do(t, http.MethodGet, "/api/users/me/", u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	if me := wantMe(t, r.Map(t)); num(me["id"]) != u.ID || me["username"] != u.Username || me["is_staff"] != false {
		t.Errorf("me = %v", me)
	}

	r = s.Do(t, http.MethodPatch, "/api/users/me/", u.Access, map[string]string{"display_name": "Liam ✨"})
	wantStatus(t, r, http.StatusOK)
	if dn := wantMe(t, r.Map(t))["display_name"]; dn != "Liam ✨" {
		t.Errorf("display_name %v", dn)
	}
	if dn := s.Do(t, http.MethodGet, "/api/users/me/", u.Access, nil).Map(t)["display_name"]; dn != "Liam ✨" {
		t.Errorf("display_name not kept: %v", dn)
	}

	r = s.Do(t, http.MethodPatch, "/api/users/me/", u.Access, map[string]string{"password": "a new password"})
	wantStatus(t, r, http.StatusOK)
	login := func(pw string) int {
		return s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": pw}).Status
	}
	if st := login("a new password"); st != http.StatusOK {
		t.Errorf("login with the new password: %d", st)
	}
	if st := login(servertest.Password); st != http.StatusUnauthorized {
		t.Errorf("login with the old password: %d, want 401", st)
	}

	wantInvalid(t, s.Do(t, http.MethodPatch, "/api/users/me/", u.Access, map[string]string{"password": "short"}), "password")
	wantInvalid(t, s.Do(t, http.MethodPatch, "/api/users/me/", u.Access, map[string]string{"display_name": strings.Repeat("x", 65)}), "display_name")
	wantInvalid(t, s.Do(t, http.MethodPatch, "/api/users/me/", u.Access, `{"display_name": 3}`), "display_name")
	wantInvalid(t, s.Do(t, http.MethodPatch, "/api/users/me/", u.Access, `[]`), "non_field_errors")
	if st := login("a new password"); st != http.StatusOK {
		t.Errorf("a refused change changed the password: %d", st)
	}
	wantError(t, s.Do(t, http.MethodPatch, "/api/users/me/", "", map[string]string{"display_name": "x"}), http.StatusUnauthorized, "not_authenticated")
	wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", "", nil), http.StatusUnauthorized, "not_authenticated")
}

func TestSearchUsers(t *testing.T) {
	s := servertest.Start(t)
	me := s.Register(t, "searcher")
	for _, name := range []string{"alpha", "Alfred", "albert", "bob"} {
		wantStatus(t, s.Do(t, http.MethodPost, "/api/auth/register/", "",
			map[string]string{"username": name, "password": "password1", "display_name": "Person " + name}), http.StatusCreated)
	}
	wantStatus(t, s.Do(t, http.MethodPost, "/api/auth/register/", "",
		map[string]string{"username": "zed", "password": "password1", "display_name": "Al Zed"}), http.StatusCreated)

	names := func(r servertest.Response) []string {
		t.Helper()
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		wantKeys(t, "search", m, "results")
		var out []string
		for _, v := range m["results"].([]any) {
			out = append(out, wantUser(t, v)["username"].(string))
		}
		return out
	}
	got := names(s.Do(t, http.MethodGet, "/api/users/?search=al", me.Access, nil))
	if strings.Join(got, ",") != "albert,Alfred,alpha,zed" {
		t.Errorf("search al = %v, want albert, Alfred, alpha (username prefix) and zed (display name prefix)", got)
	}
	if got := names(s.Do(t, http.MethodGet, "/api/users/?search=al&limit=2", me.Access, nil)); len(got) != 2 {
		t.Errorf("limit=2 gave %v", got)
	}
	if got := names(s.Do(t, http.MethodGet, "/api/users/?search=a%25", me.Access, nil)); len(got) != 0 {
		t.Errorf("a%% is not a wildcard: %v", got)
	}
	if got := names(s.Do(t, http.MethodGet, "/api/users/?search=nobody", me.Access, nil)); got != nil {
		t.Errorf("no match gave %v", got)
	}
	if r := s.Do(t, http.MethodGet, "/api/users/?search=nobody", me.Access, nil); !strings.Contains(string(r.Body), `"results":[]`) {
		t.Errorf("no match must be an empty list, not null: %s", r.Body)
	}
	for _, limit := range []string{"0", "101", "abc", "-1"} {
		wantInvalid(t, s.Do(t, http.MethodGet, "/api/users/?search=al&limit="+limit, me.Access, nil), "limit")
	}
	wantError(t, s.Do(t, http.MethodGet, "/api/users/?search=al", "", nil), http.StatusUnauthorized, "not_authenticated")
}
