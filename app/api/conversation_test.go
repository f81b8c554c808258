package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

func TestCreateConversation_Direct(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "ann"), s.Register(t, "ben")
	userEvents := listen(t, s, hub.UserTopic(b.ID))

	r := s.Do(t, http.MethodPost, "/api/conversations/", a.Access, map[string]any{"participant_ids": []int64{b.ID}})
	wantStatus(t, r, http.StatusCreated)
	c := wantConversation(t, r.Map(t))
	if c["is_group"] != false || num(c["created_by"]) != a.ID || c["last_message"] != nil || num(c["unread_count"]) != 0 {
		t.Errorf("conversation = %v", c)
	}
	if got := participantIDs(c); !slices.Equal(got, []int64{a.ID, b.ID}) {
		t.Errorf("participants %v", got)
	}
	if role := participant(t, c, a.ID)["role"]; role != "admin" {
		t.Errorf("creator role %v", role)
	}
	if lr := participant(t, c, b.ID)["last_read_message_id"]; lr != nil {
		t.Errorf("last_read_message_id %v, want null", lr)
	}
	if n := len(userEvents.ofType(chat.EventConversationUpdated)); n != 1 {
		t.Errorf("%d conversation_updated events to the other user, want 1", n)
	}

	// The same pair, from either side, gets the same conversation with 200.
	for _, req := range []struct {
		who   servertest.User
		other int64
	}{{a, b.ID}, {b, a.ID}} {
		r := s.Do(t, http.MethodPost, "/api/conversations/", req.who.Access, map[string]any{"participant_ids": []int64{req.other, req.other}})
		wantStatus(t, r, http.StatusOK)
		if id := num(wantConversation(t, r.Map(t))["id"]); id != num(c["id"]) {
			t.Errorf("second create gave conversation %d, want %v", id, c["id"])
		}
	}
	if n := count(t, s, `SELECT count(*) FROM conversations`); n != 1 {
		t.Errorf("%d conversations stored, want 1", n)
	}
	if n := len(userEvents.ofType(chat.EventConversationUpdated)); n != 1 {
		t.Errorf("re-creating emitted again: %d events", n)
	}
}

func TestCreateConversation_Group(t *testing.T) {
	s := servertest.Start(t)
	a, b, c := s.Register(t, "cat"), s.Register(t, "dan"), s.Register(t, "eve")
	body := map[string]any{"participant_ids": []int64{b.ID, c.ID}, "is_group": true, "title": "  Team  "}
	r := s.Do(t, http.MethodPost, "/api/conversations/", a.Access, body)
	wantStatus(t, r, http.StatusCreated)
	g := wantConversation(t, r.Map(t))
	if g["is_group"] != true || g["title"] != "Team" {
		t.Errorf("group = %v", g)
	}
	if got := participantIDs(g); !slices.Equal(got, []int64{a.ID, b.ID, c.ID}) {
		t.Errorf("participants %v", got)
	}
	// Groups are never de-duplicated.
	wantStatus(t, s.Do(t, http.MethodPost, "/api/conversations/", a.Access, body), http.StatusCreated)
	// A group of two is allowed, and is not the direct conversation.
	r = s.Do(t, http.MethodPost, "/api/conversations/", a.Access, map[string]any{"participant_ids": []int64{b.ID}, "is_group": true})
	wantStatus(t, r, http.StatusCreated)
}

func TestCreateConversation_Invalid(t *testing.T) {
	s := servertest.Start(t)
	a, b, c := s.Register(t, "fay"), s.Register(t, "gus"), s.Register(t, "hal")
	tests := []struct {
		name   string
		body   any
		fields []string
	}{
		{"no participants field", map[string]any{}, []string{"participant_ids"}},
		{"empty list", map[string]any{"participant_ids": []int64{}}, []string{"participant_ids"}},
		{"only myself", map[string]any{"participant_ids": []int64{a.ID}}, []string{"participant_ids"}},
		{"direct with two others", map[string]any{"participant_ids": []int64{b.ID, c.ID}}, []string{"participant_ids"}},
		{"unknown user", map[string]any{"participant_ids": []int64{999999}}, []string{"participant_ids"}},
		{"title too long", map[string]any{"participant_ids": []int64{b.ID, c.ID}, "is_group": true, "title": strings.Repeat("t", 129)}, []string{"title"}},
		{"ids not integers", `{"participant_ids": ["2"]}`, []string{"participant_ids"}},
		{"ids not a list", `{"participant_ids": 2}`, []string{"participant_ids"}},
		{"is_group not a boolean", `{"participant_ids": [2], "is_group": "yes"}`, []string{"is_group"}},
		{"title not a string", `{"participant_ids": [2], "title": 1}`, []string{"title"}},
		{"malformed", `{"participant_ids": [2`, []string{"non_field_errors"}},
		{"a list", `[2]`, []string{"non_field_errors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantInvalid(t, s.Do(t, http.MethodPost, "/api/conversations/", a.Access, tt.body), tt.fields...)
		})
	}
	if n := count(t, s, `SELECT count(*) FROM conversations`); n != 0 {
		t.Errorf("%d conversations stored, want none", n)
	}
}

func TestConversations_MostRecentActivityFirst(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	a, b, c, d := s.Register(t, "ida"), s.Register(t, "jon"), s.Register(t, "kim"), s.Register(t, "lou")
	tick := func() { clk.Advance(time.Second) }
	c1 := s.Conversation(t, a, b)
	tick()
	c2 := s.Conversation(t, a, c)
	tick()
	c3 := s.Conversation(t, a, b, c)
	tick()
	s.Conversation(t, b, c) // not a's

	order := func() []int64 {
		t.Helper()
		r := s.Do(t, http.MethodGet, "/api/conversations/", a.Access, nil)
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		wantKeys(t, "list", m, "results", "next")
		if m["next"] != nil {
			t.Errorf("a list of three has a next page: %v", m["next"])
		}
		list := m["results"].([]any)
		for _, c := range list {
			wantConversation(t, c)
		}
		return ids(list)
	}
	if got := order(); !slices.Equal(got, []int64{c3, c2, c1}) {
		t.Errorf("by creation: %v, want %v", got, []int64{c3, c2, c1})
	}
	tick()
	s.Send(t, b, c1, "bump") // someone else's message counts as activity
	if got := order(); !slices.Equal(got, []int64{c1, c3, c2}) {
		t.Errorf("after a message in %d: %v", c1, got)
	}
	tick()
	s.Send(t, a, c2, "bump")
	if got := order(); !slices.Equal(got, []int64{c2, c1, c3}) {
		t.Errorf("after a message in %d: %v", c2, got)
	}
	tick()
	wantStatus(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", c3), a.Access, map[string]any{"user_id": d.ID}), http.StatusCreated)
	if got := order(); !slices.Equal(got, []int64{c3, c2, c1}) {
		t.Errorf("after adding someone to %d: %v", c3, got)
	}

	// A user without conversations gets an empty list, not null.
	r := s.Do(t, http.MethodGet, "/api/conversations/", s.Register(t, "lonely").Access, nil)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"results":[]`) {
		t.Errorf("empty list: %s", r.Body)
	}
}

func TestConversation_GetAndUnreadCount(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "pam"), s.Register(t, "quin")
	conv := s.Conversation(t, a, b)
	s.Send(t, b, conv, "bob's own")
	var sent []int64
	for _, text := range []string{"one", "two", "three"} {
		sent = append(sent, s.Send(t, a, conv, text))
	}

	get := func(u servertest.User) map[string]any {
		t.Helper()
		r := s.Do(t, http.MethodGet, p("/api/conversations/%d/", conv), u.Access, nil)
		wantStatus(t, r, http.StatusOK)
		return wantConversation(t, r.Map(t))
	}
	cb := get(b)
	if n := num(cb["unread_count"]); n != 3 {
		t.Errorf("b's unread_count %d, want 3 (their own message does not count)", n)
	}
	if lm := cb["last_message"].(map[string]any); lm["content"] != "three" {
		t.Errorf("last_message %v", lm)
	}
	if n := num(get(a)["unread_count"]); n != 0 {
		t.Errorf("a's unread_count %d, want 0 (sending reads what came before)", n)
	}

	convEvents := listen(t, s, hub.ConversationTopic(conv))
	read := func(u servertest.User, msg int64) map[string]any {
		t.Helper()
		r := s.Do(t, http.MethodPost, p("/api/conversations/%d/read/", conv), u.Access, map[string]any{"message_id": msg})
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		wantKeys(t, "read", m, "last_read_message_id", "unread_count")
		return m
	}
	m := read(b, sent[1])
	if num(m["last_read_message_id"]) != sent[1] || num(m["unread_count"]) != 1 {
		t.Errorf("read up to the second: %v", m)
	}
	if n := len(convEvents.ofType(chat.EventReadReceipt)); n != 1 {
		t.Errorf("%d read_receipt events, want 1", n)
	}
	// Backwards and repeated marks change nothing and emit nothing.
	for _, msg := range []int64{sent[0], sent[1]} {
		m = read(b, msg)
		if num(m["last_read_message_id"]) != sent[1] || num(m["unread_count"]) != 1 {
			t.Errorf("read %d after %d: %v, the mark moved", msg, sent[1], m)
		}
	}
	if n := len(convEvents.ofType(chat.EventReadReceipt)); n != 1 {
		t.Errorf("%d read_receipt events after marks that did not move, want 1", n)
	}
	cb = get(b)
	if num(participant(t, cb, b.ID)["last_read_message_id"]) != sent[1] || num(cb["unread_count"]) != 1 {
		t.Errorf("conversation after the read: %v", cb)
	}
	m = read(b, sent[2])
	if num(m["unread_count"]) != 0 {
		t.Errorf("everything read: %v", m)
	}
	// A deleted message still counts as unread: its tombstone is in
	// the history, after the mark.
	newer := s.Send(t, a, conv, "oops")
	if n := num(get(b)["unread_count"]); n != 1 {
		t.Errorf("unread %d, want 1", n)
	}
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", newer), a.Access, nil), http.StatusNoContent)
	if n := num(get(b)["unread_count"]); n != 1 {
		t.Errorf("unread %d after the message was deleted, want 1", n)
	}

	// Marks that are not messages of this conversation are invalid.
	other := s.Conversation(t, a, s.Register(t, "rex"))
	elsewhere := s.Send(t, a, other, "elsewhere")
	for _, body := range []any{
		map[string]any{"message_id": elsewhere},
		map[string]any{"message_id": 999999},
		map[string]any{"message_id": 0},
		map[string]any{},
		`{"message_id": "1"}`,
	} {
		wantInvalid(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/read/", conv), b.Access, body), "message_id")
	}
}

func TestGroupAdminRules(t *testing.T) {
	s := servertest.Start(t)
	admin, m1, m2, newcomer := s.Register(t, "adm"), s.Register(t, "mem1"), s.Register(t, "mem2"), s.Register(t, "new")
	g := s.Conversation(t, admin, m1, m2)
	direct := s.Conversation(t, admin, m1)
	get := func(u servertest.User) servertest.Response {
		return s.Do(t, http.MethodGet, p("/api/conversations/%d/", g), u.Access, nil)
	}

	t.Run("rename", func(t *testing.T) {
		r := s.Do(t, http.MethodPatch, p("/api/conversations/%d/", g), admin.Access, map[string]string{"title": "Renamed"})
		wantStatus(t, r, http.StatusOK)
		if c := wantConversation(t, r.Map(t)); c["title"] != "Renamed" {
			t.Errorf("title %v", c["title"])
		}
		wantError(t, s.Do(t, http.MethodPatch, p("/api/conversations/%d/", g), m1.Access, map[string]string{"title": "Mine"}), http.StatusForbidden, "forbidden")
		wantError(t, s.Do(t, http.MethodPatch, p("/api/conversations/%d/", direct), admin.Access, map[string]string{"title": "Direct"}), http.StatusForbidden, "forbidden")
		wantInvalid(t, s.Do(t, http.MethodPatch, p("/api/conversations/%d/", g), admin.Access, map[string]string{}), "title")
		wantInvalid(t, s.Do(t, http.MethodPatch, p("/api/conversations/%d/", g), admin.Access, map[string]string{"title": strings.Repeat("x", 129)}), "title")
		if title := get(m1).Map(t)["title"]; title != "Renamed" {
			t.Errorf("title after refused renames: %v", title)
		}
	})

	t.Run("add", func(t *testing.T) {
		wantError(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", g), m1.Access, map[string]any{"user_id": newcomer.ID}), http.StatusForbidden, "forbidden")
		wantError(t, get(newcomer), http.StatusNotFound, "not_found")

		r := s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", g), admin.Access, map[string]any{"user_id": newcomer.ID})
		wantStatus(t, r, http.StatusCreated)
		pm := r.Map(t)
		wantKeys(t, "participant", pm, "user", "role", "joined_at", "last_read_message_id")
		if pm["role"] != "member" || num(wantUser(t, pm["user"])["id"]) != newcomer.ID {
			t.Errorf("added participant %v", pm)
		}
		wantStatus(t, get(newcomer), http.StatusOK)

		wantError(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", g), admin.Access, map[string]any{"user_id": newcomer.ID}), http.StatusConflict, "conflict")
		wantInvalid(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", g), admin.Access, map[string]any{"user_id": 999999}), "user_id")
		wantInvalid(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", g), admin.Access, map[string]any{}), "user_id")
		wantError(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", direct), admin.Access, map[string]any{"user_id": newcomer.ID}), http.StatusForbidden, "forbidden")
	})

	t.Run("remove", func(t *testing.T) {
		wantError(t, s.Do(t, http.MethodDelete, p("/api/conversations/%d/participants/%d/", g, m2.ID), m1.Access, nil), http.StatusForbidden, "forbidden")
		wantStatus(t, get(m2), http.StatusOK)

		r := s.Do(t, http.MethodDelete, p("/api/conversations/%d/participants/%d/", g, m2.ID), admin.Access, nil)
		wantStatus(t, r, http.StatusNoContent)
		wantError(t, get(m2), http.StatusNotFound, "not_found")
		wantError(t, s.Do(t, http.MethodDelete, p("/api/conversations/%d/participants/%d/", g, m2.ID), admin.Access, nil), http.StatusNotFound, "not_found")

		// A member leaves on their own.
		wantStatus(t, s.Do(t, http.MethodDelete, p("/api/conversations/%d/participants/%d/", g, m1.ID), m1.Access, nil), http.StatusNoContent)
		wantError(t, get(m1), http.StatusNotFound, "not_found")
		wantError(t, send(t, s, m1, g, map[string]string{"content": "still here?"}), http.StatusNotFound, "not_found")
		if got := participantIDs(get(admin).Map(t)); !slices.Equal(got, []int64{admin.ID, newcomer.ID}) {
			t.Errorf("participants %v", got)
		}
	})
}

// GET /api/conversations/ in pages: each page's next, passed as before,
// gives the following page, until next is null; together they are the
// list a client that sends nothing would page through, most recent
// activity first.
func TestConversations_PagesFollowNext(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	a, b := s.Register(t, "mia"), s.Register(t, "ned")
	var want []int64
	for range 7 {
		clk.Advance(time.Second)
		want = append([]int64{s.Conversation(t, a, b, s.Register(t, "x"))}, want...)
	}
	list := func(query string) map[string]any {
		t.Helper()
		r := s.Do(t, http.MethodGet, "/api/conversations/"+query, a.Access, nil)
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		wantKeys(t, "list", m, "results", "next")
		for _, c := range m["results"].([]any) {
			wantConversation(t, c)
		}
		return m
	}
	if got := ids(list("")["results"].([]any)); !slices.Equal(got, want) {
		t.Fatalf("first page without parameters: %v, want %v", got, want)
	}
	var got []int64
	var pages []int
	for query := "?limit=3"; ; {
		m := list(query)
		page := ids(m["results"].([]any))
		got, pages = append(got, page...), append(pages, len(page))
		if m["next"] == nil {
			break
		}
		query = "?limit=3&before=" + url.QueryEscape(m["next"].(string))
	}
	if !slices.Equal(got, want) || !slices.Equal(pages, []int{3, 3, 1}) {
		t.Errorf("in pages of 3: %v (%v), want %v", got, pages, want)
	}
	// Activity moves a conversation to the front of the first page; a
	// page already handed out goes on from where it stood.
	first := list("?limit=3")
	clk.Advance(time.Second)
	s.Send(t, b, want[5], "bump")
	if got := ids(list("?limit=1")["results"].([]any)); !slices.Equal(got, want[5:6]) {
		t.Errorf("after a message in %d, the first page is %v", want[5], got)
	}
	second := list("?limit=3&before=" + url.QueryEscape(first["next"].(string)))
	if got := ids(second["results"].([]any)); !slices.Equal(got, []int64{want[3], want[4], want[6]}) {
		t.Errorf("the page after the first: %v, want %v", got, []int64{want[3], want[4], want[6]})
	}
}

// A page's limit and cursor are checked: out of range or not a cursor
// this server made is a 400 that names the parameter.
func TestConversations_BadPageParameters(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "oli"), s.Register(t, "pia")
	conv := s.Conversation(t, a, b)
	forged := base64.RawURLEncoding.EncodeToString([]byte("1.x"))
	for _, tt := range []struct {
		query  string
		fields []string
	}{
		{"limit=0", []string{"limit"}},
		{"limit=101", []string{"limit"}},
		{"limit=-1", []string{"limit"}},
		{"limit=ten", []string{"limit"}},
		{"limit=99999999999999999999", []string{"limit"}},
		{"before=nonsense!", []string{"before"}},
		{"before=" + forged, []string{"before"}},
		{"before=" + base64.RawURLEncoding.EncodeToString([]byte("1.-5")), []string{"before"}},
		{"limit=0&before=x", []string{"limit", "before"}},
	} {
		t.Run(tt.query, func(t *testing.T) {
			wantInvalid(t, s.Do(t, http.MethodGet, "/api/conversations/?"+tt.query, a.Access, nil), tt.fields...)
			after := strings.Replace(tt.query, "before", "after", 1)
			wantInvalid(t, s.Do(t, http.MethodGet, p("/api/conversations/%d/participants/?%s", conv, after), a.Access, nil),
				strings.Split(strings.Replace(strings.Join(tt.fields, ","), "before", "after", 1), ",")...)
		})
	}
	for _, q := range []string{"limit=1", "limit=100", "limit=50&before="} {
		wantStatus(t, s.Do(t, http.MethodGet, "/api/conversations/?"+q, a.Access, nil), http.StatusOK)
	}
}

// A group of 12: every view of it (created, listed, read alone, renamed,
// conversation_updated) says 12 members and shows the first 10 in the
// order they joined; the participants route lists all 12 in that order,
// in pages, to members only.
func TestConversation_BigGroupShowsFirstTenAndPagesTheRest(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	owner := s.Register(t, "rue")
	var others []int64
	order := []int64{owner.ID}
	for range 9 {
		u := s.Register(t, "early")
		others = append(others, u.ID)
		order = append(order, u.ID)
	}
	created := s.Do(t, http.MethodPost, "/api/conversations/", owner.Access, map[string]any{"participant_ids": others, "is_group": true})
	wantStatus(t, created, http.StatusCreated)
	conv := num(created.Map(t)["id"])
	for range 2 {
		clk.Advance(time.Second)
		u := s.Register(t, "late")
		wantStatus(t, s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", conv), owner.Access, map[string]any{"user_id": u.ID}), http.StatusCreated)
		order = append(order, u.ID)
	}
	events := listen(t, s, hub.UserTopic(owner.ID))
	clk.Advance(time.Second)
	u := s.Register(t, "last")
	added := s.Do(t, http.MethodPost, p("/api/conversations/%d/participants/", conv), owner.Access, map[string]any{"user_id": u.ID})
	wantStatus(t, added, http.StatusCreated)
	if id := num(added.Map(t)["user"].(map[string]any)["id"]); id != u.ID {
		t.Errorf("the added participant is %d, want %d (the 13th, not among the first 10)", id, u.ID)
	}
	order = append(order, u.ID)

	check := func(what string, c map[string]any) {
		t.Helper()
		wantConversation(t, c)
		var shown []int64
		for _, p := range c["participants"].([]any) {
			shown = append(shown, num(p.(map[string]any)["user"].(map[string]any)["id"]))
		}
		if num(c["member_count"]) != int64(len(order)) || !slices.Equal(shown, order[:10]) {
			t.Errorf("%s: member_count %v, participants %v; want %d, %v", what, c["member_count"], shown, len(order), order[:10])
		}
	}
	if c := created.Map(t); num(c["member_count"]) != 10 || len(c["participants"].([]any)) != 10 {
		t.Errorf("created: member_count %v, %d participants", c["member_count"], len(c["participants"].([]any)))
	}
	r := s.Do(t, http.MethodGet, p("/api/conversations/%d/", conv), owner.Access, nil)
	wantStatus(t, r, http.StatusOK)
	check("read alone", r.Map(t))
	r = s.Do(t, http.MethodGet, "/api/conversations/", owner.Access, nil)
	wantStatus(t, r, http.StatusOK)
	check("listed", r.Map(t)["results"].([]any)[0].(map[string]any))
	r = s.Do(t, http.MethodPatch, p("/api/conversations/%d/", conv), owner.Access, map[string]any{"title": "big"})
	wantStatus(t, r, http.StatusOK)
	check("renamed", r.Map(t))
	evs := events.ofType(chat.EventConversationUpdated)
	if len(evs) == 0 {
		t.Fatal("no conversation_updated for the owner")
	}
	var frame map[string]any
	if err := json.Unmarshal(evs[0].Data, &frame); err != nil {
		t.Fatal(err)
	}
	check("conversation_updated", frame["conversation"].(map[string]any))

	var got []int64
	for query := "?limit=5"; ; {
		r := s.Do(t, http.MethodGet, p("/api/conversations/%d/participants/%s", conv, query), u.Access, nil)
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		wantKeys(t, "participants", m, "results", "next")
		for _, pt := range m["results"].([]any) {
			pm := pt.(map[string]any)
			wantKeys(t, "participant", pm, "user", "role", "joined_at", "last_read_message_id")
			got = append(got, num(pm["user"].(map[string]any)["id"]))
		}
		if m["next"] == nil {
			break
		}
		query = "?limit=5&after=" + url.QueryEscape(m["next"].(string))
	}
	if !slices.Equal(got, order) {
		t.Errorf("participants in pages of 5: %v, want %v", got, order)
	}
	r = s.Do(t, http.MethodGet, p("/api/conversations/%d/participants/", conv), owner.Access, nil)
	wantStatus(t, r, http.StatusOK)
	if m := r.Map(t); len(m["results"].([]any)) != len(order) || m["next"] != nil {
		t.Errorf("one default page: %d participants, next %v", len(m["results"].([]any)), m["next"])
	}
	outsider := s.Register(t, "out")
	wantError(t, s.Do(t, http.MethodGet, p("/api/conversations/%d/participants/", conv), outsider.Access, nil), http.StatusNotFound, "not_found")
	wantError(t, s.Do(t, http.MethodGet, "/api/conversations/999999/participants/", owner.Access, nil), http.StatusNotFound, "not_found")
}
