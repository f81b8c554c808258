package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/confab/confab/app/server/servertest"
)

// wantContractAnswer checks what every REST answer owes a client: never
// a server error, JSON that is valid UTF-8 (nothing at all for 204), and
// for an error the contract's body.
func wantContractAnswer(t *testing.T, r servertest.Response, what string) {
	t.Helper()
	switch {
	case r.Status >= 500:
		t.Fatalf("%s: status %d: %s", what, r.Status, r.Body)
	case r.Status == http.StatusNoContent:
		if len(r.Body) != 0 {
			t.Fatalf("%s: 204 with a body: %q", what, r.Body)
		}
		return
	case !json.Valid(r.Body) || !utf8.Valid(r.Body):
		t.Fatalf("%s: status %d with a body that is not UTF-8 JSON: %q", what, r.Status, r.Body)
	case r.Status >= 300:
		wantError(t, r, r.Status)
	}
}

// fuzzRoute is a route that takes a JSON body.
type fuzzRoute struct {
	method, path string
	authed       bool
}

// FuzzRequestBody sends any body to every route that reads one, as a
// signed-in participant where the route needs it.
func FuzzRequestBody(f *testing.F) {
	s := servertest.Start(f)
	alice, bob, carol := s.Register(f, "alice"), s.Register(f, "bob"), s.Register(f, "carol")
	group := s.Conversation(f, alice, bob, carol)
	msg := s.Send(f, alice, group, "hello")
	routes := []fuzzRoute{
		{http.MethodPost, "/api/auth/register/", false},
		{http.MethodPost, "/api/auth/token/", false},
		{http.MethodPost, "/api/auth/token/refresh/", false},
		{http.MethodPost, "/api/auth/logout/", false},
		{http.MethodPost, "/api/auth/ws-ticket/", true},
		{http.MethodPatch, "/api/users/me/", true},
		{http.MethodPost, "/api/conversations/", true},
		{http.MethodPatch, p("/api/conversations/%d/", group), true},
		{http.MethodPost, p("/api/conversations/%d/participants/", group), true},
		{http.MethodPost, p("/api/conversations/%d/messages/", group), true},
		{http.MethodPost, p("/api/conversations/%d/read/", group), true},
		{http.MethodPatch, p("/api/messages/%d/", msg), true},
	}
	for i, body := range []string{
		`{"username":"fuzz_user","password":"wonderland1"}`,
		`{"username":"` + alice.Username + `","password":"` + servertest.Password + `"}`,
		`{"refresh":"` + alice.Refresh + `"}`,
		`{"refresh":"not.a.token"}`,
		`{}`,
		`{"display_name":"Alice","password":"short"}`,
		fmt.Sprintf(`{"participant_ids":[%d,%d],"title":"t","is_group":true}`, bob.ID, carol.ID),
		`{"title":"renamed"}`,
		fmt.Sprintf(`{"user_id":%d}`, carol.ID),
		`{"content":"hi","client_id":"fuzz-1"}`,
		fmt.Sprintf(`{"message_id":%d}`, msg),
		`{"content":"edited"}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	for i := range routes {
		for _, body := range []string{``, `null`, `[]`, `{"participant_ids":[1e400]}`, "{\"content\":\"\xff\"}", `{"a":1}{`} {
			f.Add(uint8(i), []byte(body))
		}
	}

	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		if len(body) > int(s.Config.MaxBodyBytes) {
			return // 413, as TestEveryBodyRoute_RefusesBodiesOver64KiB checks
		}
		r := routes[int(route)%len(routes)]
		token := ""
		if r.authed {
			token = alice.Access
		}
		resp := s.Do(t, r.method, r.path, token, body)
		wantContractAnswer(t, resp, fmt.Sprintf("%s %s %q", r.method, r.path, body))
	})
}

// queryEscapeControls keeps a fuzzed query as raw as an HTTP client can
// send it: bad escapes and odd separators stay, bytes a request line may
// not hold are escaped.
func queryEscapeControls(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if c := q[i]; c > ' ' && c < 0x7f && c != '#' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// FuzzQueryParams sends any path id and query to the two routes that read
// query parameters: the answer is 200, 400 or 404, each with the
// contract's body, and a 200 keeps the promises of its query.
func FuzzQueryParams(f *testing.F) {
	s := servertest.Start(f)
	alice, bob := s.Register(f, "alice"), s.Register(f, "bob")
	conv := s.Conversation(f, alice, bob)
	for i := range 5 {
		s.Send(f, alice, conv, p("message %d", i))
	}
	id := strconv.FormatInt(conv, 10)
	for _, seed := range []struct {
		users     bool
		id, query string
	}{
		{false, id, "limit=2"},
		{false, id, "limit=2&before=4"},
		{false, id, "after=1&limit=100"},
		{false, id, "before=3&after=1"},
		{false, id, "limit=0"},
		{false, id, "limit=101"},
		{false, id, "limit=-1"},
		{false, id, "limit=9223372036854775808"},
		{false, id, "before=abc"},
		{false, id, "after=%zz"},
		{false, id, "limit=1;before=2"},
		{false, id, "limit=1&limit=200"},
		{false, "0", ""},
		{false, "-1", ""},
		{false, "999999", ""},
		{false, "abc", ""},
		{false, "1.5", ""},
		{true, "", "search=al&limit=20"},
		{true, "", "search=%25&limit=5"},
		{true, "", "search=_"},
		{true, "", "search=%C3%96z"},
		{true, "", "limit=0"},
		{true, "", "limit=1000"},
		{true, "", "limit=x"},
		{true, "", "search=%ff%fe"},
	} {
		f.Add(seed.users, seed.id, seed.query)
	}

	f.Fuzz(func(t *testing.T, users bool, pathID, query string) {
		raw := queryEscapeControls(query)
		path := "/api/users/?" + raw
		if !users {
			path = "/api/conversations/" + url.PathEscape(pathID) + "/messages/?" + raw
		}
		resp := s.Do(t, http.MethodGet, path, alice.Access, nil)
		wantContractAnswer(t, resp, "GET "+path)
		if resp.Status != http.StatusOK && resp.Status != http.StatusBadRequest && resp.Status != http.StatusNotFound {
			t.Fatalf("GET %s: status %d: %s", path, resp.Status, resp.Body)
		}
		if resp.Status != http.StatusOK {
			return
		}
		// What the server read from the query, read the same way.
		q, _ := url.ParseQuery(raw)
		limit := 0
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				t.Fatalf("GET %s: 200 for limit %q, which is not between 1 and 100", path, v)
			}
			limit = n
		}
		if users {
			var page struct {
				Results []struct {
					ID          int64  `json:"id"`
					Username    string `json:"username"`
					DisplayName string `json:"display_name"`
				} `json:"results"`
			}
			resp.JSON(t, &page)
			if limit == 0 {
				limit = 20
			}
			if len(page.Results) > limit {
				t.Fatalf("GET %s: %d users for limit %d", path, len(page.Results), limit)
			}
			prefix := strings.ToLower(strings.TrimSpace(q.Get("search")))
			for _, u := range page.Results {
				if !strings.HasPrefix(strings.ToLower(u.Username), prefix) && !strings.HasPrefix(strings.ToLower(u.DisplayName), prefix) {
					t.Fatalf("GET %s: user %q / %q does not start with %q", path, u.Username, u.DisplayName, prefix)
				}
			}
			return
		}
		var page struct {
			Results []struct {
				ID             int64 `json:"id"`
				ConversationID int64 `json:"conversation_id"`
			} `json:"results"`
			HasMore *bool `json:"has_more"`
		}
		resp.JSON(t, &page)
		if limit == 0 {
			limit = 50
		}
		if page.HasMore == nil || len(page.Results) > limit {
			t.Fatalf("GET %s: %d results for limit %d, has_more %v", path, len(page.Results), limit, page.HasMore)
		}
		before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
		after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
		for i, m := range page.Results {
			switch {
			case m.ConversationID != conv:
				t.Fatalf("GET %s: a message of conversation %d", path, m.ConversationID)
			case i > 0 && m.ID <= page.Results[i-1].ID:
				t.Fatalf("GET %s: results not in ascending id order", path)
			case before > 0 && m.ID >= before, after > 0 && m.ID <= after:
				t.Fatalf("GET %s: message %d is outside the cursor", path, m.ID)
			}
		}
	})
}
