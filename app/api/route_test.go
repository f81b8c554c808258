package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

// world is a small set of users, conversations and messages that the
// route-table tests run against.
type world struct {
	s                         *servertest.Server
	admin, member, outsider   servertest.User
	group, direct, msg, other int64 // other: a message of member's
}

func newWorld(t *testing.T, opts ...servertest.Option) *world {
	t.Helper()
	s := servertest.Start(t, opts...)
	w := &world{s: s, admin: s.Register(t, "admin"), member: s.Register(t, "member"), outsider: s.Register(t, "outsider")}
	w.group = s.Conversation(t, w.admin, w.member, s.Register(t, "third"))
	w.direct = s.Conversation(t, w.admin, w.member)
	w.msg = s.Send(t, w.admin, w.group, "hello")
	w.other = s.Send(t, w.member, w.group, "hi")
	return w
}

type route struct {
	method, path string
	body         any
}

// participantRoutes are the routes about one conversation or message of
// the world: a non-participant must not learn that they exist.
func (w *world) participantRoutes() []route {
	return []route{
		{http.MethodGet, p("/api/conversations/%d/", w.group), nil},
		{http.MethodPatch, p("/api/conversations/%d/", w.group), map[string]string{"title": "x"}},
		{http.MethodPost, p("/api/conversations/%d/participants/", w.group), map[string]any{"user_id": w.outsider.ID}},
		{http.MethodDelete, p("/api/conversations/%d/participants/%d/", w.group, w.member.ID), nil},
		{http.MethodDelete, p("/api/conversations/%d/participants/%d/", w.group, w.outsider.ID), nil},
		{http.MethodGet, p("/api/conversations/%d/messages/", w.group), nil},
		{http.MethodPost, p("/api/conversations/%d/messages/", w.group), map[string]string{"content": "let me in"}},
		{http.MethodPost, p("/api/conversations/%d/read/", w.group), map[string]any{"message_id": w.msg}},
		{http.MethodPatch, p("/api/messages/%d/", w.msg), map[string]string{"content": "x"}},
		{http.MethodDelete, p("/api/messages/%d/", w.msg), nil},
		{http.MethodPut, p("/api/messages/%d/reactions/%%F0%%9F%%91%%8D/", w.msg), nil},
		{http.MethodDelete, p("/api/messages/%d/reactions/%%F0%%9F%%91%%8D/", w.msg), nil},
		{http.MethodGet, p("/api/conversations/%d/", w.direct), nil},
		{http.MethodGet, p("/api/conversations/%d/messages/", w.direct), nil},
	}
}

func TestNonParticipant_GetsNotFoundEverywhere(t *testing.T) {
	w := newWorld(t)
	s := w.s
	for _, rt := range w.participantRoutes() {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			r := s.Do(t, rt.method, rt.path, w.outsider.Access, rt.body)
			wantError(t, r, http.StatusNotFound, "not_found")
			// The same answer as for something that does not exist.
			missing := strings.NewReplacer(p("/%d/", w.group), "/999999/", p("/%d/", w.msg), "/999999/", p("/%d/", w.direct), "/999999/").Replace(rt.path)
			r2 := s.Do(t, rt.method, missing, w.admin.Access, rt.body)
			wantError(t, r2, http.StatusNotFound, "not_found")
			if !bytes.Equal(r.Body, r2.Body) {
				t.Errorf("outsider got %s, a missing id %s", r.Body, r2.Body)
			}
		})
	}
	// Nothing changed on the outsider's account.
	if n := count(t, s, `SELECT count(*) FROM messages`); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
	if n := count(t, s, `SELECT count(*) FROM participants WHERE user_id = ?`, w.outsider.ID); n != 0 {
		t.Errorf("the outsider joined %d conversations", n)
	}
	r := s.Do(t, http.MethodGet, p("/api/conversations/%d/", w.group), w.admin.Access, nil)
	if title := r.Map(t)["title"]; title != "test" {
		t.Errorf("title %v", title)
	}
	// Path ids that are not ids are routes that do not exist.
	for _, path := range []string{"/api/conversations/abc/", "/api/conversations/0/messages/", "/api/messages/-1/", "/api/nothing/"} {
		wantError(t, s.Do(t, http.MethodGet, path, w.admin.Access, nil), http.StatusNotFound, "not_found")
	}
}

// authedRoutes is every route that needs an access token.
func (w *world) authedRoutes() []route {
	return append([]route{
		{http.MethodPost, "/api/auth/ws-ticket/", nil},
		{http.MethodGet, "/api/users/me/", nil},
		{http.MethodPatch, "/api/users/me/", map[string]string{"display_name": "x"}},
		{http.MethodGet, "/api/users/?search=a", nil},
		{http.MethodGet, "/api/conversations/", nil},
		{http.MethodPost, "/api/conversations/", map[string]any{"participant_ids": []int64{w.member.ID}}},
	}, w.participantRoutes()...)
}

func TestEveryRoute_NeedsAToken(t *testing.T) {
	w := newWorld(t)
	for _, rt := range w.authedRoutes() {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			wantError(t, w.s.Do(t, rt.method, rt.path, "", rt.body), http.StatusUnauthorized, "not_authenticated")
			wantError(t, w.s.Do(t, rt.method, rt.path, "x.y.z", rt.body), http.StatusUnauthorized, "token_not_valid")
		})
	}
	if n := count(t, w.s, `SELECT count(*) FROM messages`); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

// bodyRoutes is every route that takes a JSON body.
func (w *world) bodyRoutes() []route {
	return []route{
		{http.MethodPost, "/api/auth/register/", nil},
		{http.MethodPost, "/api/auth/token/", nil},
		{http.MethodPost, "/api/auth/token/refresh/", nil},
		{http.MethodPost, "/api/auth/logout/", nil},
		{http.MethodPatch, "/api/users/me/", nil},
		{http.MethodPost, "/api/conversations/", nil},
		{http.MethodPatch, p("/api/conversations/%d/", w.group), nil},
		{http.MethodPost, p("/api/conversations/%d/participants/", w.group), nil},
		{http.MethodPost, p("/api/conversations/%d/messages/", w.group), nil},
		{http.MethodPost, p("/api/conversations/%d/read/", w.group), nil},
		{http.MethodPatch, p("/api/messages/%d/", w.msg), nil},
	}
}

func TestEveryBodyRoute_RefusesBodiesOver64KiB(t *testing.T) {
	w := newWorld(t)
	// Valid JSON, so that only the size is wrong: 64 KiB + 1 byte.
	big := []byte(`{"content":"` + strings.Repeat("a", 64<<10-13) + `"}`)
	if len(big) != 64<<10+1 {
		t.Fatalf("body of %d bytes", len(big))
	}
	for _, rt := range w.bodyRoutes() {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			wantError(t, w.s.Do(t, rt.method, rt.path, w.admin.Access, big), http.StatusRequestEntityTooLarge, "too_large")
			// Without a Content-Length (chunked), the limit holds too.
			req, _ := http.NewRequest(rt.method, w.s.URL+rt.path, io.MultiReader(bytes.NewReader(big)))
			req.Header.Set("Authorization", "Bearer "+w.admin.Access)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantError(t, servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, http.StatusRequestEntityTooLarge, "too_large")
		})
	}
	if n := count(t, w.s, `SELECT count(*) FROM messages`); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
	// Exactly 64 KiB is within the limit (and then too long a message).
	atLimit := []byte(`{"content":"` + strings.Repeat("a", 64<<10-14) + `"}`)
	wantInvalid(t, send(t, w.s, w.admin, w.group, atLimit), "content")
}

func TestEveryPath_WorksWithAndWithoutTrailingSlash(t *testing.T) {
	for _, slash := range []string{"/", ""} {
		t.Run("slash="+slash, func(t *testing.T) {
			w := newWorld(t)
			s := w.s
			x := func(path string) string { return strings.TrimSuffix(path, "/") + slash }
			do := func(method, path, token string, body any, want int) map[string]any {
				t.Helper()
				r := s.Do(t, method, path, token, body)
				wantStatus(t, r, want)
				if want == http.StatusNoContent {
					return nil
				}
				return r.Map(t)
			}
			reg := do(http.MethodPost, x("/api/auth/register"), "", map[string]string{"username": "slashy", "password": "password1"}, http.StatusCreated)
			u := servertest.User{ID: num(reg["user"].(map[string]any)["id"]), Access: reg["access"].(string)}
			login := do(http.MethodPost, x("/api/auth/token"), "", map[string]string{"username": "slashy", "password": "password1"}, http.StatusOK)
			ref := do(http.MethodPost, x("/api/auth/token/refresh"), "", map[string]string{"refresh": login["refresh"].(string)}, http.StatusOK)
			do(http.MethodPost, x("/api/auth/logout"), "", map[string]string{"refresh": ref["refresh"].(string)}, http.StatusNoContent)
			do(http.MethodPost, x("/api/auth/ws-ticket"), u.Access, nil, http.StatusOK)
			do(http.MethodGet, x("/api/users/me"), u.Access, nil, http.StatusOK)
			do(http.MethodPatch, x("/api/users/me"), u.Access, map[string]string{"display_name": "S"}, http.StatusOK)
			if res := do(http.MethodGet, x("/api/users")+"?search=slash", u.Access, nil, http.StatusOK)["results"].([]any); len(res) != 1 {
				t.Errorf("search: %v", res)
			}
			do(http.MethodGet, x("/api/conversations"), w.admin.Access, nil, http.StatusOK)
			c := do(http.MethodPost, x("/api/conversations"), w.admin.Access, map[string]any{"participant_ids": []int64{u.ID, w.member.ID}, "is_group": true}, http.StatusCreated)
			conv := num(c["id"])
			do(http.MethodGet, x(p("/api/conversations/%d", conv)), w.admin.Access, nil, http.StatusOK)
			do(http.MethodPatch, x(p("/api/conversations/%d", conv)), w.admin.Access, map[string]string{"title": "t"}, http.StatusOK)
			do(http.MethodPost, x(p("/api/conversations/%d/participants", conv)), w.admin.Access, map[string]any{"user_id": w.outsider.ID}, http.StatusCreated)
			do(http.MethodDelete, x(p("/api/conversations/%d/participants/%d", conv, w.outsider.ID)), w.admin.Access, nil, http.StatusNoContent)
			m := do(http.MethodPost, x(p("/api/conversations/%d/messages", conv)), u.Access, map[string]string{"content": "hi"}, http.StatusCreated)
			msg := num(m["id"])
			if res := do(http.MethodGet, x(p("/api/conversations/%d/messages", conv))+"?limit=5", w.admin.Access, nil, http.StatusOK)["results"].([]any); len(res) != 1 {
				t.Errorf("history: %v", res)
			}
			do(http.MethodPost, x(p("/api/conversations/%d/read", conv)), w.admin.Access, map[string]any{"message_id": msg}, http.StatusOK)
			do(http.MethodPatch, x(p("/api/messages/%d", msg)), u.Access, map[string]string{"content": "hey"}, http.StatusOK)
			do(http.MethodPut, x(p("/api/messages/%d/reactions/%%F0%%9F%%91%%8D", msg)), u.Access, nil, http.StatusOK)
			do(http.MethodDelete, x(p("/api/messages/%d/reactions/%%F0%%9F%%91%%8D", msg)), u.Access, nil, http.StatusOK)
			do(http.MethodDelete, x(p("/api/messages/%d", msg)), u.Access, nil, http.StatusNoContent)
		})
	}
}

func TestServerError_LeaksNoSQL(t *testing.T) {
	w := newWorld(t)
	s := w.s
	// Break the schema under the running server, from another connection.
	db := s.DB(t)
	if _, err := db.Exec(`ALTER TABLE messages RENAME TO messages_gone`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(`ALTER TABLE messages_gone RENAME TO messages`) })

	for _, rt := range []route{
		{http.MethodGet, p("/api/conversations/%d/messages/", w.group), nil},
		{http.MethodPost, p("/api/conversations/%d/messages/", w.group), map[string]string{"content": "x"}},
		{http.MethodGet, "/api/conversations/", nil},
	} {
		r := s.Do(t, rt.method, rt.path, w.admin.Access, rt.body)
		wantError(t, r, http.StatusInternalServerError, "internal")
		for _, leak := range []string{"messages", "SQL", "sql", "SELECT", "INSERT", "goroutine", ".go:"} {
			if bytes.Contains(r.Body, []byte(leak)) {
				t.Errorf("%s %s: the 500 body shows %q: %s", rt.method, rt.path, leak, r.Body)
			}
		}
	}
	// The cause is logged, where an operator can find it.
	if logs := s.Logs.String(); !strings.Contains(logs, "no such table") && !strings.Contains(logs, "does not exist (SQLSTATE 42P01)") {
		t.Errorf("the cause of the 500 was not logged:\n%s", logs)
	}
}
