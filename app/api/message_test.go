package api_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

func TestSendMessage(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "sam"), s.Register(t, "tia")
	conv := s.Conversation(t, a, b)
	convEvents := listen(t, s, hub.ConversationTopic(conv))
	bEvents := listen(t, s, hub.UserTopic(b.ID))
	aEvents := listen(t, s, hub.UserTopic(a.ID))

	r := send(t, s, a, conv, map[string]string{"content": "  hello bob \n", "client_id": "c-1"})
	wantStatus(t, r, http.StatusCreated)
	m := wantMessage(t, r.Map(t))
	if m["content"] != "hello bob" || m["client_id"] != "c-1" || num(m["conversation_id"]) != conv ||
		m["is_deleted"] != false || m["edited_at"] != nil {
		t.Errorf("message = %v", m)
	}
	sender := m["sender"].(map[string]any)
	if num(sender["id"]) != a.ID || sender["username"] != a.Username {
		t.Errorf("sender = %v", sender)
	}
	if got := convEvents.ofType(chat.EventNewMessage); len(got) != 1 || got[0].MessageID != num(m["id"]) {
		t.Errorf("new_message events %v", got)
	}
	if n := len(bEvents.ofType(chat.EventNotification)); n != 1 {
		t.Errorf("%d notifications to the recipient, want 1", n)
	}
	if n := len(aEvents.ofType(chat.EventNotification)); n != 0 {
		t.Errorf("%d notifications to the sender, want 0", n)
	}

	// Without client_id it is null, and ids only grow.
	r = send(t, s, b, conv, map[string]string{"content": "hi"})
	wantStatus(t, r, http.StatusCreated)
	m2 := wantMessage(t, r.Map(t))
	if m2["client_id"] != nil || num(m2["id"]) <= num(m["id"]) {
		t.Errorf("second message = %v", m2)
	}
	// client_id is per sender: b may use a's.
	r = send(t, s, b, conv, map[string]string{"content": "mine", "client_id": "c-1"})
	wantStatus(t, r, http.StatusCreated)
}

func TestSendMessage_ContentRules(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "uma"), s.Register(t, "vic")
	conv := s.Conversation(t, a, b)
	events := listen(t, s, hub.ConversationTopic(conv))

	tests := []struct {
		name   string
		body   any
		fields []string
	}{
		{"empty", map[string]string{"content": ""}, []string{"content"}},
		{"whitespace", map[string]string{"content": " \t\n\u00a0 "}, []string{"content"}},
		{"4001 characters", map[string]string{"content": strings.Repeat("x", 4001)}, []string{"content"}},
		{"4001 emoji", map[string]string{"content": strings.Repeat("😀", 4001)}, []string{"content"}},
		{"missing", map[string]string{}, []string{"content"}},
		{"null", `{"content": null}`, []string{"content"}},
		{"a number", `{"content": 5}`, []string{"content"}},
		{"an object", `{"content": {"text": "hi"}}`, []string{"content"}},
		{"client_id of 65", map[string]string{"content": "hi", "client_id": strings.Repeat("c", 65)}, []string{"client_id"}},
		{"client_id a number", `{"content": "hi", "client_id": 7}`, []string{"client_id"}},
		{"malformed", `{"content": "hi"`, []string{"non_field_errors"}},
		{"trailing garbage", `{"content": "hi"} x`, []string{"non_field_errors"}},
		{"a list", `["hi"]`, []string{"non_field_errors"}},
		{"a string", `"hi"`, []string{"non_field_errors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantInvalid(t, send(t, s, a, conv, tt.body), tt.fields...)
		})
	}
	if n := count(t, s, `SELECT count(*) FROM messages`); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
	if n := len(events.ofType(chat.EventNewMessage)); n != 0 {
		t.Errorf("%d new_message events, want none", n)
	}

	// The limits count characters, not bytes: 4000 four-byte emoji are
	// 16000 bytes and allowed; surrounding whitespace does not count.
	// client_id's 64 characters count the same way.
	for i, content := range []string{strings.Repeat("😀", 4000), "  " + strings.Repeat("ж", 4000) + "\n", strings.Repeat("x", 4000)} {
		r := send(t, s, a, conv, map[string]string{"content": content, "client_id": strings.Repeat("é", 63) + p("%d", i)})
		wantStatus(t, r, http.StatusCreated)
		if got := r.Map(t)["content"]; got != strings.TrimSpace(content) {
			t.Errorf("stored content differs (%d bytes, want %d)", len(got.(string)), len(strings.TrimSpace(content)))
		}
	}
	// Unknown fields are ignored.
	wantStatus(t, send(t, s, a, conv, `{"content": "hi", "color": "blue"}`), http.StatusCreated)
}

func TestSendMessage_IdempotentClientID(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "walt"), s.Register(t, "xena")
	conv := s.Conversation(t, a, b)
	events := listen(t, s, hub.ConversationTopic(conv))

	const n = 10
	var wg sync.WaitGroup
	resps := make([]servertest.Response, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Each retry may carry different content: the original wins.
			r, err := s.Request(http.MethodPost, p("/api/conversations/%d/messages/", conv), a.Access,
				map[string]string{"content": p("attempt %d", i), "client_id": "retry-me"})
			if err != nil {
				t.Error(err) // its status stays 0, which fails below
			}
			resps[i] = r
		}()
	}
	close(start)
	wg.Wait()

	created, again := 0, 0
	var id int64
	var content any
	for i, r := range resps {
		switch r.Status {
		case http.StatusCreated:
			created++
		case http.StatusOK:
			again++
		default:
			t.Fatalf("send %d: %d %s", i, r.Status, r.Body)
		}
		m := wantMessage(t, r.Map(t))
		if id == 0 {
			id, content = num(m["id"]), m["content"]
		}
		if num(m["id"]) != id || m["content"] != content || m["client_id"] != "retry-me" {
			t.Errorf("send %d returned %v, want message %d %q", i, m, id, content)
		}
	}
	if created != 1 || again != n-1 {
		t.Errorf("%d created (201) and %d repeated (200), want 1 and %d", created, again, n-1)
	}
	if c := count(t, s, `SELECT count(*) FROM messages WHERE client_id = 'retry-me'`); c != 1 {
		t.Errorf("%d rows stored, want 1", c)
	}
	if evs := events.ofType(chat.EventNewMessage); len(evs) != 1 || evs[0].MessageID != id {
		t.Errorf("%d new_message events, want exactly 1 for message %d", len(evs), id)
	}

	// A later retry still gets the original with 200.
	r := send(t, s, a, conv, map[string]string{"content": "late retry", "client_id": "retry-me"})
	wantStatus(t, r, http.StatusOK)
	if num(r.Map(t)["id"]) != id {
		t.Errorf("late retry gave %s", r.Body)
	}
	if evs := events.ofType(chat.EventNewMessage); len(evs) != 1 {
		t.Errorf("a retry emitted again: %d events", len(evs))
	}
}

func TestEditMessage(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "yan"), s.Register(t, "zoe")
	conv := s.Conversation(t, a, b)
	id := s.Send(t, a, conv, "typo")
	events := listen(t, s, hub.ConversationTopic(conv))

	r := s.Do(t, http.MethodPatch, p("/api/messages/%d/", id), a.Access, map[string]string{"content": " fixed "})
	wantStatus(t, r, http.StatusOK)
	m := wantMessage(t, r.Map(t))
	if m["content"] != "fixed" || m["edited_at"] == nil || num(m["id"]) != id {
		t.Errorf("edited = %v", m)
	}
	if n := len(events.ofType(chat.EventMessageUpdated)); n != 1 {
		t.Errorf("%d message_updated events, want 1", n)
	}
	hist := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), b.Access, nil).Map(t)["results"].([]any)
	if h := hist[0].(map[string]any); h["content"] != "fixed" || h["edited_at"] != m["edited_at"] {
		t.Errorf("history shows %v", h)
	}

	wantError(t, s.Do(t, http.MethodPatch, p("/api/messages/%d/", id), b.Access, map[string]string{"content": "hijacked"}), http.StatusForbidden, "forbidden")
	wantInvalid(t, s.Do(t, http.MethodPatch, p("/api/messages/%d/", id), a.Access, map[string]string{"content": "   "}), "content")
	wantInvalid(t, s.Do(t, http.MethodPatch, p("/api/messages/%d/", id), a.Access, map[string]string{"content": strings.Repeat("y", 4001)}), "content")
	wantInvalid(t, s.Do(t, http.MethodPatch, p("/api/messages/%d/", id), a.Access, map[string]any{}), "content")
	wantError(t, s.Do(t, http.MethodPatch, "/api/messages/999999/", a.Access, map[string]string{"content": "x"}), http.StatusNotFound, "not_found")
	if got := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), a.Access, nil).Map(t)["results"].([]any)[0].(map[string]any)["content"]; got != "fixed" {
		t.Errorf("refused edits changed the content to %v", got)
	}
	if n := len(events.ofType(chat.EventMessageUpdated)); n != 1 {
		t.Errorf("%d message_updated events after refused edits, want 1", n)
	}
}

func TestDeleteMessage_LeavesTombstone(t *testing.T) {
	s := servertest.Start(t)
	a, b, c := s.Register(t, "abe"), s.Register(t, "bea"), s.Register(t, "cy")
	conv := s.Conversation(t, a, b)
	before := s.Send(t, a, conv, "before")
	id := s.Send(t, a, conv, "secret")
	after := s.Send(t, b, conv, "after")
	events := listen(t, s, hub.ConversationTopic(conv))

	// In a direct conversation only the author may delete.
	wantError(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", id), b.Access, nil), http.StatusForbidden, "forbidden")
	r := s.Do(t, http.MethodDelete, p("/api/messages/%d/", id), a.Access, nil)
	wantStatus(t, r, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Errorf("204 with a body %s", r.Body)
	}
	if evs := events.ofType(chat.EventMessageDeleted); len(evs) != 1 || strings.Contains(string(evs[0].Data), "secret") {
		t.Errorf("message_deleted events %d (content must be gone)", len(evs))
	}

	hist := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), b.Access, nil).Map(t)["results"].([]any)
	if got := ids(hist); !slices.Equal(got, []int64{before, id, after}) {
		t.Fatalf("history %v, want the tombstone in place", got)
	}
	tomb := wantMessage(t, hist[1])
	if tomb["content"] != "" || tomb["is_deleted"] != true {
		t.Errorf("tombstone = %v", tomb)
	}
	if n := count(t, s, `SELECT count(*) FROM messages WHERE content LIKE '%secret%'`); n != 0 {
		t.Error("the deleted content is still stored")
	}
	// Deleting again is harmless and emits nothing; editing is refused.
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", id), a.Access, nil), http.StatusNoContent)
	if n := len(events.ofType(chat.EventMessageDeleted)); n != 1 {
		t.Errorf("%d message_deleted events after a second delete", n)
	}
	wantInvalid(t, s.Do(t, http.MethodPatch, p("/api/messages/%d/", id), a.Access, map[string]string{"content": "back"}), "content")

	// The deleted message as the conversation's last message.
	last := s.Send(t, b, conv, "last")
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", last), b.Access, nil), http.StatusNoContent)
	lm := s.Do(t, http.MethodGet, p("/api/conversations/%d/", conv), a.Access, nil).Map(t)["last_message"]
	if lm := wantMessage(t, lm); num(lm["id"]) != last || lm["content"] != "" || lm["is_deleted"] != true {
		t.Errorf("last_message = %v", lm)
	}

	// In a group, an admin may delete anyone's message; a member may not.
	g := s.Conversation(t, a, b, c)
	bm := s.Send(t, b, g, "by b")
	am := s.Send(t, a, g, "by a")
	wantError(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", am), c.Access, nil), http.StatusForbidden, "forbidden")
	wantError(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", am), b.Access, nil), http.StatusForbidden, "forbidden")
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", bm), a.Access, nil), http.StatusNoContent)
	wantError(t, s.Do(t, http.MethodDelete, "/api/messages/999999/", a.Access, nil), http.StatusNotFound, "not_found")
}

func TestMessages_Pagination(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "pager"), s.Register(t, "reader")
	conv := s.Conversation(t, a, b)
	// Another conversation's messages interleave, so that ids have gaps.
	noise := s.Conversation(t, a, s.Register(t, "noise"))
	var sent []int64
	for i := range 105 {
		sent = append(sent, s.Send(t, a, conv, p("m%d", i)))
		if i%10 == 0 {
			s.Send(t, a, noise, "noise")
		}
	}
	page := func(query string) ([]int64, bool) {
		t.Helper()
		r := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/%s", conv, query), b.Access, nil)
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		wantKeys(t, "page", m, "results", "has_more")
		list, ok := m["results"].([]any)
		if !ok {
			t.Fatalf("results %v, want a list", m["results"])
		}
		for _, v := range list {
			if num(wantMessage(t, v)["conversation_id"]) != conv {
				t.Fatalf("a message of another conversation: %v", v)
			}
		}
		return ids(list), m["has_more"].(bool)
	}
	tests := []struct {
		query string
		want  []int64
		more  bool
	}{
		{"", sent[55:], true}, // default 50, the newest page
		{"?limit=100", sent[5:], true},
		{"?limit=1", sent[104:], true},
		{p("?before=%d", sent[50]), sent[0:50], false}, // exactly 50 older: no more
		{p("?before=%d", sent[51]), sent[1:51], true},
		{p("?before=%d&limit=10", sent[50]), sent[40:50], true},
		{p("?before=%d", sent[0]), []int64{}, false},
		{p("?after=%d", sent[54]), sent[55:], false}, // exactly 50 newer
		{p("?after=%d", sent[53]), sent[54:104], true},
		{p("?after=%d&limit=3", sent[10]), sent[11:14], true},
		{p("?after=%d", sent[104]), []int64{}, false},
		{"?after=0", sent[55:], true}, // no cursor
		{p("?limit=100&after=%d", sent[4]), sent[5:], false},
	}
	for _, tt := range tests {
		got, more := page(tt.query)
		if !slices.Equal(got, tt.want) || more != tt.more {
			t.Errorf("%q: %d results %v… has_more %v; want %d results %v… has_more %v",
				tt.query, len(got), head(got), more, len(tt.want), head(tt.want), tt.more)
		}
	}

	// Walking back from the newest page reaches every message once, in order.
	var all []int64
	query := "?limit=17"
	for {
		got, more := page(query)
		all = append(got, all...)
		if !more {
			break
		}
		query = p("?limit=17&before=%d", got[0])
	}
	if !slices.Equal(all, sent) {
		t.Errorf("walking back gave %d messages, want %d in order", len(all), len(sent))
	}

	for _, q := range []string{"limit=0", "limit=101", "limit=abc", "limit=-1", "limit=1.5", "limit="} {
		r := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/?%s", conv, q), b.Access, nil)
		if q == "limit=" { // an empty value is no value
			wantStatus(t, r, http.StatusOK)
			continue
		}
		wantInvalid(t, r, "limit")
	}
	for _, q := range []string{"before=abc", "before=-1"} {
		wantInvalid(t, s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/?%s", conv, q), b.Access, nil), "before")
	}
	wantInvalid(t, s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/?after=x", conv), b.Access, nil), "after")
	r := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/?before=%d&after=%d", conv, sent[9], sent[1]), b.Access, nil)
	wantError(t, r, http.StatusBadRequest, "invalid")

	// An empty conversation: an empty list, not null.
	empty := s.Conversation(t, b, s.Register(t, "quiet"))
	r = s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", empty), b.Access, nil)
	wantStatus(t, r, http.StatusOK)
	if string(r.Body) != `{"results":[],"has_more":false}`+"\n" && string(r.Body) != `{"results":[],"has_more":false}` {
		t.Errorf("empty history: %s", r.Body)
	}
}

func head(ids []int64) []int64 {
	if len(ids) > 3 {
		return ids[:3]
	}
	return ids
}
