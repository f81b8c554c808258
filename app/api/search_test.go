package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

// searchURL is /api/search/messages/ with the query parameters kv.
func searchURL(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "/api/search/messages/?" + v.Encode()
}

// searchIDs runs a search as u and returns the ids found, in order, and
// the answer's body.
func searchIDs(t *testing.T, s *servertest.Server, u servertest.User, kv ...string) ([]int64, map[string]any) {
	t.Helper()
	r := s.Do(t, http.MethodGet, searchURL(kv...), u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	body := r.Map(t)
	wantKeys(t, "search results", body, "results", "next")
	var ids []int64
	for _, h := range body["results"].([]any) {
		hit := h.(map[string]any)
		wantKeys(t, "hit", hit, "message", "snippet")
		ids = append(ids, num(wantMessage(t, hit["message"])["id"]))
	}
	return ids, body
}

func TestSearchMessages(t *testing.T) {
	s := servertest.Start(t)
	a, b, c := s.Register(t, "sia"), s.Register(t, "tom"), s.Register(t, "una")
	ab, bc := s.Conversation(t, a, b), s.Conversation(t, b, c)
	cafe := s.Send(t, a, ab, "Meet at the Café Zürich")
	other := s.Send(t, b, bc, "the cafe of tom and una")
	html := s.Send(t, b, ab, `<img src=x onerror=alert(1)> cafe & more`)
	edited := s.Send(t, a, ab, "old words here")
	gone := s.Send(t, a, ab, "cafe to delete")
	wantStatus(t, s.Do(t, http.MethodPatch, p("/api/messages/%d/", edited), a.Access, map[string]string{"content": "new words"}), http.StatusOK)
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", gone), a.Access, nil), http.StatusNoContent)

	for _, tc := range []struct {
		name string
		u    servertest.User
		kv   []string
		want []int64
	}{
		{"OnlyOwnConversations", a, []string{"q", "cafe"}, []int64{cafe, html}},
		{"TheOtherSide", c, []string{"q", "cafe"}, []int64{other}},
		{"CaseDiacriticsPrefix", a, []string{"q", "CAFÉ zür"}, []int64{cafe}},
		{"OneConversation", b, []string{"q", "cafe", "conversation_id", p("%d", bc)}, []int64{other}},
		{"EditReplaces", a, []string{"q", "old"}, nil},
		{"EditedFound", a, []string{"q", "new words"}, []int64{edited}},
		{"NeverDeleted", a, []string{"q", "delete"}, nil},
		{"SyntaxIsNotPassedThrough", a, []string{"q", `" * NEAR( AND - 🎉`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, body := searchIDs(t, s, tc.u, tc.kv...)
			if !sameSet(got, tc.want) {
				t.Errorf("found %v, want %v; body %v", got, tc.want, body)
			}
			if body["next"] != nil {
				t.Errorf("next = %v on the only page", body["next"])
			}
		})
	}

	t.Run("SnippetMarksMatchesAndEscapesTheRest", func(t *testing.T) {
		_, body := searchIDs(t, s, a, "q", "onerror")
		hits := body["results"].([]any)
		if len(hits) != 1 {
			t.Fatalf("hits %v", hits)
		}
		snip := hits[0].(map[string]any)["snippet"].(string)
		rest := strings.NewReplacer("<b>", "", "</b>", "").Replace(snip)
		if !strings.Contains(snip, "<b>onerror</b>") || strings.ContainsAny(rest, `<>"`) || !strings.Contains(snip, "&amp;") {
			t.Errorf("snippet %q: want <b>onerror</b> and the rest HTML-escaped", snip)
		}
	})

	t.Run("HitsCarryTheirReactions", func(t *testing.T) {
		react(t, s, b, cafe, "👍", true)
		_, body := searchIDs(t, s, a, "q", "zürich")
		hits := body["results"].([]any)
		if len(hits) != 1 {
			t.Fatalf("hits %v", hits)
		}
		wantReactions(t, "a hit's message", hits[0].(map[string]any)["message"].(map[string]any), [3]any{"👍", int64(1), false})
	})

	t.Run("ConversationOfOthersIsNotFound", func(t *testing.T) {
		wantError(t, s.Do(t, http.MethodGet, searchURL("q", "cafe", "conversation_id", p("%d", bc)), a.Access, nil), http.StatusNotFound, "not_found")
		wantError(t, s.Do(t, http.MethodGet, searchURL("q", "cafe", "conversation_id", "999999"), a.Access, nil), http.StatusNotFound, "not_found")
	})

	t.Run("NeedsAToken", func(t *testing.T) {
		wantError(t, s.Do(t, http.MethodGet, searchURL("q", "cafe"), "", nil), http.StatusUnauthorized)
	})

	t.Run("BadInput", func(t *testing.T) {
		for _, tc := range []struct {
			kv    []string
			field string
		}{
			{nil, "q"},
			{[]string{"q", "   "}, "q"},
			{[]string{"q", strings.Repeat("a", 201)}, "q"},
			{[]string{"q", "cafe", "limit", "0"}, "limit"},
			{[]string{"q", "cafe", "limit", "51"}, "limit"},
			{[]string{"q", "cafe", "limit", "x"}, "limit"},
			{[]string{"q", "cafe", "before", "not-a-cursor"}, "before"},
			{[]string{"q", "cafe", "before", "MTIzLjQ1Ng"}, "before"},     // a conversation list's cursor
			{[]string{"q", "cafe", "before", cursor("s300.5")}, "before"}, // past a window
			{[]string{"q", "cafe", "before", cursor("s-1.5")}, "before"},
			{[]string{"q", "cafe", "before", cursor("s0.0")}, "before"},
			{[]string{"q", "cafe", "before", cursor("s01.5")}, "before"}, // another spelling of s1.5
			{[]string{"q", "cafe", "before", cursor("s1")}, "before"},
			{[]string{"q", "cafe", "conversation_id", "x"}, "conversation_id"},
		} {
			wantInvalid(t, s.Do(t, http.MethodGet, searchURL(tc.kv...), a.Access, nil), tc.field)
		}
		// 200 characters is the most, not too many.
		searchIDs(t, s, a, "q", strings.Repeat("é", 200))
	})
}

func TestSearchMessages_Pages(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "val"), s.Register(t, "wes")
	conv := s.Conversation(t, a, b)
	var want []int64
	for range 5 {
		want = append([]int64{s.Send(t, a, conv, "same words each time")}, want...) // equal rank: newest first
	}
	var got []int64
	kv := []string{"q", "words", "limit", "2"}
	for page := 0; ; page++ {
		ids, body := searchIDs(t, s, b, kv...)
		got = append(got, ids...)
		next, _ := body["next"].(string)
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatal("pages never end")
		}
		kv = []string{"q", "words", "limit", "2", "before", next}
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages gave %v, want %v", got, want)
	}
	ids, _ := searchIDs(t, s, b, "q", "words")
	if len(ids) != 5 {
		t.Errorf("default page: %d results, want all 5", len(ids))
	}
}

// TestSearchMessages_EveryMatchReachable: with more matches than one
// window ranks, pages go on into the older ones until every match came
// exactly once, and then next is null; a message sent while paging
// shifts nothing.
func TestSearchMessages_EveryMatchReachable(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "xia"), s.Register(t, "yul")
	conv := s.Conversation(t, a, b)
	const n = 2*300 + 37 // two full windows and part of a third
	want := map[int64]bool{}
	for i := range n {
		// Unequal ranks, so that each window's order is not its recency.
		want[s.Send(t, a, conv, strings.Repeat("harvest ", 1+i%3)+fmt.Sprint(i))] = true
	}
	seen := map[int64]bool{}
	kv := []string{"q", "harvest", "limit", "50"}
	for page := 0; ; page++ {
		ids, body := searchIDs(t, s, b, kv...)
		if len(ids) != 50 && body["next"] != nil {
			t.Fatalf("page %d: %d results and a next", page, len(ids))
		}
		for _, id := range ids {
			if !want[id] || seen[id] {
				t.Fatalf("page %d: %d found again or unknown", page, id)
			}
			seen[id] = true
		}
		if page == 1 {
			s.Send(t, b, conv, "harvest sent while paging")
		}
		next, _ := body["next"].(string)
		if next == "" {
			break
		}
		if page > n/50+1 {
			t.Fatal("pages never end")
		}
		kv = []string{"q", "harvest", "limit", "50", "before", next}
	}
	if len(seen) != n {
		t.Errorf("pages reached %d of the %d matches", len(seen), n)
	}
}

// cursor is s as an opaque cursor.
func cursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// sameSet reports whether a and b hold the same ids, in any order.
func sameSet(a, b []int64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
