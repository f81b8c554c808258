package api_test

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

// newClock is a clock that stands still until a test moves it.
func newClock() *servertest.Clock { return servertest.NewClock() }

// recorder is a hub.Subscriber that keeps every event it is given: tests
// subscribe it to the real hub to see what a connected client would get.
type recorder struct {
	mu     sync.Mutex
	events []*hub.Event
}

func (r *recorder) Deliver(_ hub.Topic, ev *hub.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// ofType returns the recorded events of type typ.
func (r *recorder) ofType(typ string) []*hub.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*hub.Event
	for _, ev := range r.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// listen subscribes a new recorder to topic t for the rest of the test.
func listen(t *testing.T, s *servertest.Server, topic hub.Topic) *recorder {
	t.Helper()
	r := &recorder{}
	s.Hub.Subscribe(topic, r)
	t.Cleanup(func() { s.Hub.Unsubscribe(topic, r) })
	return r
}

var timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// wantStatus fails the test unless r has the status.
func wantStatus(t testing.TB, r servertest.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
}

// wantError checks a non-2xx answer: the status, a JSON body of exactly
// {"detail","code"} (plus "fields" for 400), and one of the codes.
func wantError(t testing.TB, r servertest.Response, status int, codes ...string) map[string]any {
	t.Helper()
	wantStatus(t, r, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	m := r.Map(t)
	if d, _ := m["detail"].(string); d == "" {
		t.Errorf("error body without detail: %s", r.Body)
	}
	code, _ := m["code"].(string)
	if len(codes) > 0 && !slices.Contains(codes, code) {
		t.Errorf("code %q, want one of %v; body %s", code, codes, r.Body)
	}
	want := []string{"code", "detail"}
	if status == http.StatusBadRequest {
		want = append(want, "fields")
	}
	wantKeys(t, "error", m, want...)
	return m
}

// wantInvalid checks a 400 invalid answer whose fields name exactly these
// fields, each with at least one message.
func wantInvalid(t testing.TB, r servertest.Response, fields ...string) {
	t.Helper()
	m := wantError(t, r, http.StatusBadRequest, "invalid")
	f, ok := m["fields"].(map[string]any)
	if !ok {
		t.Fatalf("400 without a fields object: %s", r.Body)
	}
	wantKeys(t, "fields", f, fields...)
	for k, v := range f {
		if msgs, ok := v.([]any); !ok || len(msgs) == 0 {
			t.Errorf("fields.%s = %v, want a non-empty list of messages", k, v)
		}
	}
}

// wantKeys fails unless m has exactly the keys.
func wantKeys(t testing.TB, what string, m map[string]any, keys ...string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want := slices.Clone(keys)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys %v, want %v", what, got, want)
	}
}

func wantTimestamp(t testing.TB, what string, v any) {
	t.Helper()
	s, _ := v.(string)
	if !timestampRE.MatchString(s) {
		t.Errorf("%s = %v, want an ISO-8601 UTC timestamp with milliseconds", what, v)
	}
}

// wantMe checks one's own profile: the user object and is_staff.
func wantMe(t testing.TB, v any) map[string]any {
	t.Helper()
	u, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("user is %T, want an object", v)
	}
	wantKeys(t, "me", u, "id", "username", "display_name", "created_at", "is_online", "is_staff")
	return u
}

// wantUser checks the contract's user object.
func wantUser(t testing.TB, v any) map[string]any {
	t.Helper()
	u, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("user is %T, want an object", v)
	}
	wantKeys(t, "user", u, "id", "username", "display_name", "created_at", "is_online")
	if _, ok := u["id"].(float64); !ok {
		t.Errorf("user.id = %v, want a number", u["id"])
	}
	if _, ok := u["is_online"].(bool); !ok {
		t.Errorf("user.is_online = %v, want a boolean", u["is_online"])
	}
	wantTimestamp(t, "user.created_at", u["created_at"])
	return u
}

// wantMessage checks the contract's message object.
func wantMessage(t testing.TB, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("message is %T, want an object", v)
	}
	wantKeys(t, "message", m, "id", "conversation_id", "seq", "sender", "content", "client_id", "created_at", "edited_at", "is_deleted",
		"reply_to", "mentions", "version", "reactions", "attachments")
	if v, ok := m["version"].(float64); !ok || v < 0 {
		t.Errorf("message.version = %v, want a number", m["version"])
	}
	sender, _ := m["sender"].(map[string]any)
	wantKeys(t, "message.sender", sender, "id", "username", "display_name")
	if r := m["reply_to"]; r != nil {
		reply, ok := r.(map[string]any)
		if !ok {
			t.Fatalf("message.reply_to is %T, want an object or null", r)
		}
		wantKeys(t, "message.reply_to", reply, "id", "sender", "content_preview", "is_deleted")
		sender, _ := reply["sender"].(map[string]any)
		wantKeys(t, "message.reply_to.sender", sender, "id", "username", "display_name")
	}
	if _, ok := m["mentions"].([]any); !ok {
		t.Errorf("message.mentions = %v, want an array", m["mentions"])
	}
	rs, ok := m["reactions"].([]any)
	if !ok {
		t.Errorf("message.reactions = %v, want an array", m["reactions"])
	}
	for _, r := range rs {
		r, _ := r.(map[string]any)
		if _, me := r["me"]; me {
			wantKeys(t, "message.reactions[]", r, "emoji", "count", "me")
		} else {
			wantKeys(t, "message.reactions[]", r, "emoji", "count")
		}
	}
	as, ok := m["attachments"].([]any)
	if !ok {
		t.Errorf("message.attachments = %v, want an array", m["attachments"])
	}
	for _, a := range as {
		a, _ := a.(map[string]any)
		wantKeys(t, "message.attachments[]", a, "id", "name", "mime", "size", "width", "height", "url", "thumbnail_url")
	}
	wantTimestamp(t, "message.created_at", m["created_at"])
	if m["edited_at"] != nil {
		wantTimestamp(t, "message.edited_at", m["edited_at"])
	}
	if _, ok := m["is_deleted"].(bool); !ok {
		t.Errorf("message.is_deleted = %v, want a boolean", m["is_deleted"])
	}
	return m
}

// wantConversation checks the contract's conversation object.
func wantConversation(t testing.TB, v any) map[string]any {
	t.Helper()
	c, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("conversation is %T, want an object", v)
	}
	wantKeys(t, "conversation", c, "id", "title", "is_group", "created_by", "created_at", "updated_at",
		"member_count", "participants", "last_message", "unread_count", "version")
	wantTimestamp(t, "conversation.created_at", c["created_at"])
	wantTimestamp(t, "conversation.updated_at", c["updated_at"])
	ps, ok := c["participants"].([]any)
	if !ok || len(ps) == 0 {
		t.Fatalf("conversation.participants = %v, want a non-empty list", c["participants"])
	}
	for _, p := range ps {
		pm, _ := p.(map[string]any)
		wantKeys(t, "participant", pm, "user", "role", "joined_at", "last_read_message_id")
		wantUser(t, pm["user"])
		if r := pm["role"]; r != "admin" && r != "member" {
			t.Errorf("participant.role = %v", r)
		}
		wantTimestamp(t, "participant.joined_at", pm["joined_at"])
	}
	if c["last_message"] != nil {
		wantMessage(t, c["last_message"])
	}
	if _, ok := c["unread_count"].(float64); !ok {
		t.Errorf("unread_count = %v, want a number", c["unread_count"])
	}
	return c
}

// num reads a JSON number as an int64.
func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

func p(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// count runs a count(*) query on the server's database.
func count(t testing.TB, s *servertest.Server, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.DB(t).QueryRow(s.Q(query), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// ids returns the ids of a list of objects.
func ids(list []any) []int64 {
	out := make([]int64, len(list))
	for i, v := range list {
		out[i] = num(v.(map[string]any)["id"])
	}
	return out
}

// participantIDs returns the user ids of a conversation object.
func participantIDs(c map[string]any) []int64 {
	var out []int64
	for _, p := range c["participants"].([]any) {
		out = append(out, num(p.(map[string]any)["user"].(map[string]any)["id"]))
	}
	slices.Sort(out)
	return out
}

// participant returns the participant entry of userID in a conversation.
func participant(t testing.TB, c map[string]any, userID int64) map[string]any {
	t.Helper()
	for _, p := range c["participants"].([]any) {
		pm := p.(map[string]any)
		if num(pm["user"].(map[string]any)["id"]) == userID {
			return pm
		}
	}
	t.Fatalf("user %d is not a participant of %v", userID, c["id"])
	return nil
}

// send posts body to a conversation's messages.
func send(t testing.TB, s *servertest.Server, u servertest.User, conv int64, body any) servertest.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, p("/api/conversations/%d/messages/", conv), u.Access, body)
}

// timingTests reports whether tests that measure wall-clock time should
// check what they measure (CONFAB_TIMING_TESTS=1). On a loaded machine
// such a measure fails for reasons of its own, so by default they only
// check behaviour.
func timingTests() bool { return os.Getenv("CONFAB_TIMING_TESTS") == "1" }

// timingOnly skips a test that is nothing but a wall-clock measure unless
// CONFAB_TIMING_TESTS=1.
func timingOnly(t *testing.T) {
	t.Helper()
	if !timingTests() {
		t.Skip("measures wall-clock time: run with CONFAB_TIMING_TESTS=1")
	}
}
