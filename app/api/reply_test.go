package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

// TestSendMessage_ReplyTo: reply_to_id makes a reply, which shows its
// original's preview (at most 200 characters) in the answer and in the
// history, an empty preview with is_deleted once the original is
// deleted; a message of another conversation, or none, is a 400 on
// reply_to_id. A send without reply_to_id (a v1 client) answers
// reply_to null and mentions [].
func TestSendMessage_ReplyTo(t *testing.T) {
	s := servertest.Start(t)
	a, b, c := s.Register(t, "rae"), s.Register(t, "rob"), s.Register(t, "rex")
	conv, other := s.Conversation(t, a, b), s.Conversation(t, a, c)
	long := strings.Repeat("ü", 250)
	orig := s.Send(t, b, conv, long)
	elsewhere := s.Send(t, c, other, "elsewhere")

	r := send(t, s, a, conv, map[string]string{"content": "plain"})
	wantStatus(t, r, http.StatusCreated)
	if m := wantMessage(t, r.Map(t)); m["reply_to"] != nil || len(m["mentions"].([]any)) != 0 {
		t.Errorf("a v1 send: reply_to %v, mentions %v; want null and []", m["reply_to"], m["mentions"])
	}

	r = send(t, s, a, conv, map[string]any{"content": "answer", "reply_to_id": orig})
	wantStatus(t, r, http.StatusCreated)
	reply := wantMessage(t, r.Map(t))
	wantReplyTo := func(what string, m map[string]any, preview string, deleted bool) {
		t.Helper()
		rt, _ := m["reply_to"].(map[string]any)
		if rt == nil {
			t.Fatalf("%s: reply_to is null", what)
		}
		sender, _ := rt["sender"].(map[string]any)
		if num(rt["id"]) != orig || num(sender["id"]) != b.ID || sender["username"] != b.Username ||
			rt["content_preview"] != preview || rt["is_deleted"] != deleted {
			t.Errorf("%s: reply_to = %v", what, rt)
		}
	}
	wantReplyTo("answer", reply, long[:2*chat.MaxPreview], false) // ü is two bytes
	history := func() map[string]any {
		t.Helper()
		r := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), a.Access, nil)
		wantStatus(t, r, http.StatusOK)
		for _, v := range r.Map(t)["results"].([]any) {
			if m := wantMessage(t, v); num(m["id"]) == num(reply["id"]) {
				return m
			}
		}
		t.Fatal("the reply is not in the history")
		return nil
	}
	wantReplyTo("history", history(), long[:2*chat.MaxPreview], false)

	for name, id := range map[string]int64{"another conversation's": elsewhere, "a missing": 999999, "a negative": -1} {
		t.Run(name, func(t *testing.T) {
			wantInvalid(t, send(t, s, a, conv, map[string]any{"content": "x", "reply_to_id": id}), "reply_to_id")
		})
	}

	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", orig), b.Access, nil), http.StatusNoContent)
	wantReplyTo("history after the original's deletion", history(), "", true)
}

// TestSendMessage_Mentions: @username of a participant, in any case,
// becomes mentions: [user_id], and that user's notification has reason
// mention; the other recipients' reason message; a non-participant's
// @name is no mention and notifies nobody. An edit recomputes mentions.
func TestSendMessage_Mentions(t *testing.T) {
	s := servertest.Start(t)
	a, b, c, out := s.Register(t, "mia"), s.Register(t, "max"), s.Register(t, "moe"), s.Register(t, "mel")
	conv := s.Conversation(t, a, b, c)
	bEvents, cEvents, outEvents := listen(t, s, hub.UserTopic(b.ID)), listen(t, s, hub.UserTopic(c.ID)), listen(t, s, hub.UserTopic(out.ID))

	content := "hey @" + strings.ToUpper(b.Username) + ", ask @" + out.Username + " (me@example.com)"
	r := send(t, s, a, conv, map[string]any{"content": content})
	wantStatus(t, r, http.StatusCreated)
	m := wantMessage(t, r.Map(t))
	if got := nums(m["mentions"].([]any)); !slices.Equal(got, []int64{b.ID}) {
		t.Errorf("mentions %v, want [%d]", got, b.ID)
	}
	reason := func(rec *recorder) []string {
		var out []string
		for _, ev := range rec.ofType(chat.EventNotification) {
			var n struct{ Reason string }
			if err := json.Unmarshal(ev.Data, &n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n.Reason)
		}
		return out
	}
	if got := reason(bEvents); !slices.Equal(got, []string{chat.ReasonMention}) {
		t.Errorf("the mentioned participant's notifications: %v", got)
	}
	if got := reason(cEvents); !slices.Equal(got, []string{chat.ReasonMessage}) {
		t.Errorf("another participant's notifications: %v", got)
	}
	if got := reason(outEvents); len(got) != 0 {
		t.Errorf("a non-participant was notified: %v", got)
	}

	r = s.Do(t, http.MethodPatch, p("/api/messages/%d/", num(m["id"])), a.Access, map[string]string{"content": "now @" + c.Username})
	wantStatus(t, r, http.StatusOK)
	if got := nums(wantMessage(t, r.Map(t))["mentions"].([]any)); !slices.Equal(got, []int64{c.ID}) {
		t.Errorf("mentions after the edit %v, want [%d]", got, c.ID)
	}
}

// nums returns a JSON list of numbers as ids.
func nums(list []any) []int64 {
	out := make([]int64, len(list))
	for i, v := range list {
		out[i] = num(v)
	}
	return out
}
