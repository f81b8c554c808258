package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

func report(t *testing.T, s *servertest.Server, by servertest.User, body map[string]any) servertest.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, "/api/reports/", by.Access, body)
}

func TestReport_RulesOfWhatMayBeReported(t *testing.T) {
	s := servertest.Start(t)
	ann, bob, eve := s.Register(t, "ann"), s.Register(t, "bob"), s.Register(t, "eve")
	conv := s.Conversation(t, ann, bob)
	msg := s.Send(t, bob, conv, "buy cheap watches")
	own := s.Send(t, ann, conv, "no thanks")

	r := report(t, s, ann, map[string]any{"message_id": msg, "reason": "spam", "note": " selling things "})
	wantStatus(t, r, http.StatusCreated)
	first := r.Map(t)
	wantKeys(t, "report", first, "id", "status", "created_at", "message_id", "user_id", "reason", "note")
	if first["status"] != "open" || num(first["message_id"]) != msg || first["user_id"] != nil || first["note"] != "selling things" {
		t.Errorf("report %s", r.Body)
	}
	wantTimestamp(t, "created_at", first["created_at"])
	// One open report per reporter and target: a repeat is the first.
	r = report(t, s, ann, map[string]any{"message_id": msg, "reason": "abuse"})
	wantStatus(t, r, http.StatusOK)
	if again := r.Map(t); num(again["id"]) != num(first["id"]) || again["reason"] != "spam" {
		t.Errorf("a repeat answered %s, want the first report", r.Body)
	}
	r = report(t, s, eve, map[string]any{"user_id": bob.ID, "reason": "abuse"})
	wantStatus(t, r, http.StatusCreated)
	if m := r.Map(t); num(m["user_id"]) != bob.ID || m["message_id"] != nil {
		t.Errorf("user report %s", r.Body)
	}

	// A message the reporter cannot see is exactly a missing one.
	foreign := report(t, s, eve, map[string]any{"message_id": msg, "reason": "spam"})
	wantError(t, foreign, http.StatusNotFound, "not_found")
	missing := report(t, s, eve, map[string]any{"message_id": 999999, "reason": "spam"})
	if foreign.Status != missing.Status || !bytes.Equal(foreign.Body, missing.Body) {
		t.Errorf("a foreign message: %d %s; a missing one: %d %s", foreign.Status, foreign.Body, missing.Status, missing.Body)
	}
	wantError(t, report(t, s, ann, map[string]any{"user_id": 999999, "reason": "spam"}), http.StatusNotFound, "not_found")

	for _, tc := range []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"neither target", map[string]any{"reason": "spam"}, []string{"non_field_errors"}},
		{"both targets", map[string]any{"message_id": msg, "user_id": bob.ID, "reason": "spam"}, []string{"non_field_errors"}},
		{"no reason", map[string]any{"message_id": msg}, []string{"reason"}},
		{"unknown reason", map[string]any{"message_id": msg, "reason": "boring"}, []string{"reason"}},
		{"long note", map[string]any{"message_id": msg, "reason": "other", "note": strings.Repeat("é", 1001)}, []string{"note"}},
		{"one's own message", map[string]any{"message_id": own, "reason": "spam"}, []string{"message_id"}},
		{"oneself", map[string]any{"user_id": ann.ID, "reason": "spam"}, []string{"user_id"}},
		{"a zero id", map[string]any{"message_id": 0, "reason": "spam"}, []string{"message_id"}},
		{"a string id", map[string]any{"user_id": "7", "reason": "spam"}, []string{"user_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantInvalid(t, report(t, s, ann, tc.body), tc.fields...) })
	}
	// A message deleted is no longer reported.
	gone := s.Send(t, bob, conv, "oops")
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", gone), bob.Access, nil), http.StatusNoContent)
	wantInvalid(t, report(t, s, ann, map[string]any{"message_id": gone, "reason": "spam"}), "message_id")
}

func TestAdmin_NotFoundToAllButStaff(t *testing.T) {
	s := servertest.Start(t)
	ann := s.Register(t, "ann")
	mod := s.Staff(t, "mod")
	nothing := s.Do(t, http.MethodGet, "/api/admin/nothing-here/", ann.Access, nil)
	wantError(t, nothing, http.StatusNotFound, "not_found")
	for _, rt := range []struct{ method, path string }{
		{http.MethodGet, "/api/admin/reports/"},
		{http.MethodGet, "/api/admin/reports/?status=resolved"},
		{http.MethodPost, "/api/admin/reports/1/resolve/"},
		{http.MethodGet, "/api/admin/users/?search=a"},
		{http.MethodPost, p("/api/admin/users/%d/deactivate/", mod.ID)},
		{http.MethodPost, p("/api/admin/users/%d/reactivate/", mod.ID)},
		{http.MethodGet, "/api/admin/audit/"},
		// A method a staff route does not take: no 405 to tell it exists.
		{http.MethodDelete, "/api/admin/audit/"},
		{http.MethodPatch, "/api/admin/reports/1/resolve/"},
	} {
		r := s.Do(t, rt.method, rt.path, ann.Access, map[string]string{"reason": "x", "action": "dismiss"})
		if r.Status != nothing.Status || !bytes.Equal(r.Body, nothing.Body) {
			t.Errorf("%s %s as a user: %d %s, want what a missing route gets: %d %s", rt.method, rt.path, r.Status, r.Body, nothing.Status, nothing.Body)
		}
	}
	// Staff see the routes, and nothing that edits the audit log.
	wantStatus(t, s.Do(t, http.MethodGet, "/api/admin/audit/", mod.Access, nil), http.StatusOK)
	wantError(t, s.Do(t, http.MethodDelete, "/api/admin/audit/", mod.Access, nil), http.StatusNotFound, "not_found")
	wantError(t, s.Do(t, http.MethodPut, "/api/admin/audit/1/", mod.Access, nil), http.StatusNotFound, "not_found")
}

func TestStaff_IsStaffOnlyToThemselvesAndStaff(t *testing.T) {
	s := servertest.Start(t)
	ann := s.Register(t, "ann")
	mod := s.Staff(t, "mod")
	s.Conversation(t, ann, mod)
	if me := wantMe(t, s.Do(t, http.MethodGet, "/api/users/me/", mod.Access, nil).Map(t)); me["is_staff"] != true {
		t.Errorf("staff's own profile: %v", me)
	}
	if me := wantMe(t, s.Do(t, http.MethodGet, "/api/users/me/", ann.Access, nil).Map(t)); me["is_staff"] != false {
		t.Errorf("a user's own profile: %v", me)
	}
	// Everywhere else a user appears, no one is told.
	for _, path := range []string{"/api/users/?search=mod", "/api/conversations/"} {
		r := s.Do(t, http.MethodGet, path, ann.Access, nil)
		wantStatus(t, r, http.StatusOK)
		if bytes.Contains(r.Body, []byte("is_staff")) {
			t.Errorf("%s tells a user who is staff: %s", path, r.Body)
		}
	}
	// Staff see it of anyone.
	r := s.Do(t, http.MethodGet, "/api/admin/users/?search="+mod.Username[:3], mod.Access, nil)
	wantStatus(t, r, http.StatusOK)
	var list struct {
		Results []map[string]any `json:"results"`
	}
	r.JSON(t, &list)
	if len(list.Results) != 1 || list.Results[0]["is_staff"] != true || list.Results[0]["is_active"] != true {
		t.Errorf("staff search: %s", r.Body)
	}
	wantKeys(t, "account", list.Results[0], "id", "username", "display_name", "created_at", "is_online", "is_staff", "is_active", "deactivated_at")
}

type reportView struct {
	ID         int64             `json:"id"`
	Status     string            `json:"status"`
	Reason     string            `json:"reason"`
	Note       string            `json:"note"`
	TargetType string            `json:"target_type"`
	Reporter   *chat.UserLite    `json:"reporter"`
	Message    *json.RawMessage  `json:"message"`
	User       map[string]any    `json:"user"`
	Context    []json.RawMessage `json:"context"`
	Resolution *struct {
		Action     string         `json:"action"`
		Note       string         `json:"note"`
		ResolvedBy *chat.UserLite `json:"resolved_by"`
		ResolvedAt string         `json:"resolved_at"`
	} `json:"resolution"`
}

func queue(t *testing.T, s *servertest.Server, staff servertest.User, query string) (list []reportView, next any) {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/api/admin/reports/"+query, staff.Access, nil)
	wantStatus(t, r, http.StatusOK)
	var page struct {
		Results []reportView `json:"results"`
		Next    any          `json:"next"`
	}
	r.JSON(t, &page)
	return page.Results, page.Next
}

func seqs(t *testing.T, msgs []json.RawMessage) []int64 {
	t.Helper()
	var out []int64
	for _, raw := range msgs {
		var m chat.Message
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Seq)
	}
	return out
}

func TestAdmin_ReportQueueShowsContext(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	mod := s.Staff(t, "mod")
	conv := s.Conversation(t, ann, bob)
	var msgs []int64
	for i := range 10 {
		from := ann
		if i%2 == 1 {
			from = bob
		}
		msgs = append(msgs, s.Send(t, from, conv, p("message %d", i+1)))
	}
	wantStatus(t, report(t, s, ann, map[string]any{"message_id": msgs[5], "reason": "abuse", "note": "rude"}), http.StatusCreated)
	wantStatus(t, report(t, s, ann, map[string]any{"message_id": msgs[9], "reason": "spam"}), http.StatusCreated)
	wantStatus(t, report(t, s, bob, map[string]any{"user_id": ann.ID, "reason": "other"}), http.StatusCreated)

	open, next := queue(t, s, mod, "")
	if len(open) != 3 || next != nil {
		t.Fatalf("open queue: %d reports, next %v", len(open), next)
	}
	// Newest first: the user report, then the messages'.
	user, last, mid := open[0], open[1], open[2]
	if user.TargetType != "user" || user.Message != nil || len(user.Context) != 0 || num(user.User["id"]) != ann.ID ||
		user.Reporter == nil || user.Reporter.ID != bob.ID || user.Resolution != nil {
		t.Errorf("user report %+v", user)
	}
	if mid.TargetType != "message" || mid.Reason != "abuse" || mid.Note != "rude" || mid.Status != "open" ||
		num(mid.User["id"]) != bob.ID || mid.User["is_active"] != true || mid.User["is_staff"] != false {
		t.Errorf("message report %+v", mid)
	}
	if got := seqs(t, mid.Context); len(got) != 7 || got[0] != 3 || got[6] != 9 {
		t.Errorf("context of message 6: seqs %v, want 3 to 9", got)
	}
	if got := seqs(t, last.Context); len(got) != 4 || got[0] != 7 || got[3] != 10 {
		t.Errorf("context of the last message: seqs %v, want 7 to 10", got)
	}

	// Pages.
	page1, next := queue(t, s, mod, "?status=open&limit=2")
	if len(page1) != 2 || next == nil {
		t.Fatalf("first page: %d, next %v", len(page1), next)
	}
	page2, next := queue(t, s, mod, "?status=open&limit=2&before="+next.(string))
	if len(page2) != 1 || next != nil || page2[0].ID != mid.ID {
		t.Errorf("second page: %+v, next %v", page2, next)
	}
	if resolved, _ := queue(t, s, mod, "?status=resolved"); len(resolved) != 0 {
		t.Errorf("resolved queue: %+v", resolved)
	}
	wantInvalid(t, s.Do(t, http.MethodGet, "/api/admin/reports/?status=closed", mod.Access, nil), "status")
	wantInvalid(t, s.Do(t, http.MethodGet, "/api/admin/reports/?before=xyz", mod.Access, nil), "before")
	wantInvalid(t, s.Do(t, http.MethodGet, "/api/admin/reports/?limit=0", mod.Access, nil), "limit")
}

func TestAdmin_RemoveMessageTombstonesItForEveryone(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	mod := s.Staff(t, "mod")
	conv := s.Conversation(t, ann, bob)
	msg := s.Send(t, bob, conv, "something vile")
	cursor := s.Do(t, http.MethodGet, "/api/sync/", ann.Access, nil).Map(t)["cursor"].(string)
	r := report(t, s, ann, map[string]any{"message_id": msg, "reason": "abuse"})
	id := num(r.Map(t)["id"])
	events := listen(t, s, hub.ConversationTopic(conv))

	r = s.Do(t, http.MethodPost, p("/api/admin/reports/%d/resolve/", id), mod.Access, map[string]string{"action": "remove_message", "note": "harassment"})
	wantStatus(t, r, http.StatusOK)
	var v reportView
	r.JSON(t, &v)
	if v.Status != "resolved" || v.Resolution == nil || v.Resolution.Action != "remove_message" || v.Resolution.Note != "harassment" ||
		v.Resolution.ResolvedBy == nil || v.Resolution.ResolvedBy.ID != mod.ID {
		t.Errorf("resolved %s", r.Body)
	}
	wantTimestamp(t, "resolved_at", v.Resolution.ResolvedAt)

	// The participants get the usual message_deleted, saying by whom.
	deleted := events.ofType(chat.EventMessageDeleted)
	if len(deleted) != 1 {
		t.Fatalf("%d message_deleted events", len(deleted))
	}
	var ev struct {
		Message map[string]any `json:"message"`
	}
	json.Unmarshal(deleted[0].Data, &ev)
	if ev.Message["is_deleted"] != true || ev.Message["removed_by_moderator"] != true || ev.Message["content"] != "" {
		t.Errorf("event %s", deleted[0].Data)
	}
	// History and the sync feed say so too; an author's own deletion
	// does not.
	own := s.Send(t, bob, conv, "never mind")
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", own), bob.Access, nil), http.StatusNoContent)
	var page struct {
		Results []map[string]any `json:"results"`
	}
	s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), ann.Access, nil).JSON(t, &page)
	if len(page.Results) != 2 || page.Results[0]["removed_by_moderator"] != true || page.Results[1]["is_deleted"] != true {
		t.Fatalf("history %v", page.Results)
	}
	if _, ok := page.Results[1]["removed_by_moderator"]; ok {
		t.Errorf("an author's own deletion says removed_by_moderator: %v", page.Results[1])
	}
	var sync struct {
		Messages []map[string]any `json:"messages"`
	}
	s.Do(t, http.MethodGet, "/api/sync/?since="+cursor, ann.Access, nil).JSON(t, &sync)
	found := false
	for _, m := range sync.Messages {
		if num(m["id"]) == msg {
			found = m["removed_by_moderator"] == true && m["is_deleted"] == true
		}
	}
	if !found {
		t.Errorf("sync feed: %v", sync.Messages)
	}

	// Once only; and the audit log keeps it.
	wantError(t, s.Do(t, http.MethodPost, p("/api/admin/reports/%d/resolve/", id), mod.Access, map[string]string{"action": "dismiss"}), http.StatusConflict, "conflict")
	wantError(t, s.Do(t, http.MethodPost, "/api/admin/reports/999999/resolve/", mod.Access, map[string]string{"action": "dismiss"}), http.StatusNotFound, "not_found")
	if resolved, _ := queue(t, s, mod, "?status=resolved"); len(resolved) != 1 || resolved[0].ID != id {
		t.Errorf("resolved queue %+v", resolved)
	}
	audit := s.Do(t, http.MethodGet, "/api/admin/audit/", mod.Access, nil).Map(t)["results"].([]any)
	if len(audit) != 2 { // and mod's grant, last
		t.Fatalf("audit %v", audit)
	}
	e := audit[0].(map[string]any)
	wantKeys(t, "audit entry", e, "id", "at", "actor", "action", "target_type", "target_id", "target_name", "report_id", "reason")
	if e["action"] != "remove_message" || e["target_type"] != "message" || num(e["target_id"]) != msg || e["target_name"] != bob.Username ||
		num(e["report_id"]) != id || e["reason"] != "harassment" || num(e["actor"].(map[string]any)["id"]) != mod.ID ||
		e["actor"].(map[string]any)["username"] != mod.Username {
		t.Errorf("audit entry %v", e)
	}
}

func TestAdmin_ResolveRules(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	mod := s.Staff(t, "mod")
	conv := s.Conversation(t, ann, bob, mod)
	userRep := num(report(t, s, ann, map[string]any{"user_id": bob.ID, "reason": "abuse"}).Map(t)["id"])
	modMsg := s.Send(t, mod, conv, "a staff member's message")
	modRep := num(report(t, s, ann, map[string]any{"message_id": modMsg, "reason": "other"}).Map(t)["id"])
	resolve := func(id int64, body any) servertest.Response {
		return s.Do(t, http.MethodPost, p("/api/admin/reports/%d/resolve/", id), mod.Access, body)
	}
	wantInvalid(t, resolve(userRep, map[string]string{}), "action")
	wantInvalid(t, resolve(userRep, map[string]string{"action": "ban"}), "action")
	wantInvalid(t, resolve(userRep, map[string]string{"action": "remove_message"}), "action")
	wantInvalid(t, resolve(userRep, map[string]string{"action": "dismiss", "note": strings.Repeat("x", 1001)}), "note")
	wantInvalid(t, resolve(modRep, map[string]string{"action": "deactivate_user"}), "action") // oneself
	if open, _ := queue(t, s, mod, ""); len(open) != 2 {
		t.Errorf("refused resolutions resolved something: %d open", len(open))
	}
	if audit := s.Do(t, http.MethodGet, "/api/admin/audit/", mod.Access, nil).Map(t)["results"].([]any); len(audit) != 1 { // mod's grant
		t.Errorf("refused resolutions were audited: %v", audit)
	}
	r := resolve(userRep, map[string]string{"action": "dismiss"})
	wantStatus(t, r, http.StatusOK)
	if a, err := s.Store.UserByID(t.Context(), bob.ID); err != nil || !a.Active() {
		t.Errorf("a dismissal deactivated bob: %+v, %v", a, err)
	}
}

// deactivate answers staff's deactivation of u.
func deactivate(t *testing.T, s *servertest.Server, staff servertest.User, id int64, reason string) servertest.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, p("/api/admin/users/%d/deactivate/", id), staff.Access, map[string]string{"reason": reason})
}

func TestAdmin_DeactivateEndsEverySessionAndReactivateRestoresTheAccount(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	mod := s.Staff(t, "mod")
	events := listen(t, s, hub.UserTopic(bob.ID))

	r := deactivate(t, s, mod, bob.ID, "  spam everywhere ")
	wantStatus(t, r, http.StatusOK)
	acc := r.Map(t)
	if acc["is_active"] != false || num(acc["id"]) != bob.ID {
		t.Errorf("deactivated %s", r.Body)
	}
	wantTimestamp(t, "deactivated_at", acc["deactivated_at"])
	if n := len(events.ofType(chat.EventAccountDisabled)); n != 1 {
		t.Errorf("%d account_disabled events to bob's sockets", n)
	}
	// The token in hand, the refresh token and the password: all refused.
	wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", bob.Access, nil), http.StatusUnauthorized, "account_disabled")
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/ws-ticket/", bob.Access, nil), http.StatusUnauthorized, "account_disabled")
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": bob.Refresh}), http.StatusUnauthorized, "account_disabled")
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": bob.Username, "password": servertest.Password}), http.StatusUnauthorized, "account_disabled")
	// A wrong password learns nothing of it.
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": bob.Username, "password": "not the password"}), http.StatusUnauthorized, "not_authenticated")
	// No one finds them; staff do.
	if r := s.Do(t, http.MethodGet, "/api/users/?search="+bob.Username, ann.Access, nil); strings.Contains(string(r.Body), bob.Username) {
		t.Errorf("user search finds a deactivated account: %s", r.Body)
	}
	if r := s.Do(t, http.MethodGet, "/api/admin/users/?search="+bob.Username, mod.Access, nil); !strings.Contains(string(r.Body), `"is_active":false`) {
		t.Errorf("staff search: %s", r.Body)
	}
	// Again: nothing changes, nothing is recorded.
	wantStatus(t, deactivate(t, s, mod, bob.ID, "again"), http.StatusOK)

	r = s.Do(t, http.MethodPost, p("/api/admin/users/%d/reactivate/", bob.ID), mod.Access, map[string]string{"reason": "appealed"})
	wantStatus(t, r, http.StatusOK)
	if m := r.Map(t); m["is_active"] != true || m["deactivated_at"] != nil {
		t.Errorf("reactivated %s", r.Body)
	}
	// The account is back; the sessions it had are not.
	wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", bob.Access, nil), http.StatusUnauthorized, "token_not_valid")
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": bob.Refresh}), http.StatusUnauthorized, "token_not_valid")
	login := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": bob.Username, "password": servertest.Password})
	wantStatus(t, login, http.StatusOK)
	wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", login.Map(t)["access"].(string), nil), http.StatusOK)

	var audit struct {
		Results []map[string]any `json:"results"`
	}
	s.Do(t, http.MethodGet, "/api/admin/audit/", mod.Access, nil).JSON(t, &audit)
	if len(audit.Results) != 3 || audit.Results[2]["action"] != "grant_staff" || audit.Results[0]["action"] != "reactivate_user" || audit.Results[0]["reason"] != "appealed" ||
		audit.Results[1]["action"] != "deactivate_user" || audit.Results[1]["reason"] != "spam everywhere" || audit.Results[1]["report_id"] != nil {
		t.Errorf("audit %v", audit.Results)
	}

	// Rules.
	wantInvalid(t, deactivate(t, s, mod, bob.ID, ""), "reason")
	wantInvalid(t, deactivate(t, s, mod, bob.ID, strings.Repeat("x", 501)), "reason")
	wantInvalid(t, deactivate(t, s, mod, mod.ID, "oops"), "non_field_errors")
	wantError(t, deactivate(t, s, mod, 999999, "who"), http.StatusNotFound, "not_found")
}

func TestAdmin_ResolveByDeactivatingTheSender(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	mod := s.Staff(t, "mod")
	conv := s.Conversation(t, ann, bob)
	msg := s.Send(t, bob, conv, "spam spam spam")
	id := num(report(t, s, ann, map[string]any{"message_id": msg, "reason": "spam"}).Map(t)["id"])
	r := s.Do(t, http.MethodPost, p("/api/admin/reports/%d/resolve/", id), mod.Access, map[string]string{"action": "deactivate_user", "note": "bot"})
	wantStatus(t, r, http.StatusOK)
	var v reportView
	r.JSON(t, &v)
	if v.User["is_active"] != false || v.Resolution == nil || v.Resolution.Action != "deactivate_user" {
		t.Errorf("resolved %s", r.Body)
	}
	wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", bob.Access, nil), http.StatusUnauthorized, "account_disabled")
	// The message stays.
	var page struct {
		Results []map[string]any `json:"results"`
	}
	s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), ann.Access, nil).JSON(t, &page)
	if len(page.Results) != 1 || page.Results[0]["content"] != "spam spam spam" {
		t.Errorf("history %v", page.Results)
	}
}

// TestReport_RateLimitedLikeEveryRequest: a flood of reports from one
// address is refused with 429 past REQUEST_BURST, and nothing more is
// stored.
func TestReport_RateLimitedLikeEveryRequest(t *testing.T) {
	clk := newClock() // stands still: no token comes back during the test
	s := servertest.Start(t, servertest.WithNow(clk.Now), servertest.WithConfig(func(c *config.Config) {
		c.TrustProxy, c.RequestsPerSecond, c.RequestBurst = true, 1, 3
	}))
	ann := s.Register(t, "ann")
	var targets []chat.User
	for i := range 4 { // straight into the store: registering counts against the limit too
		u, err := s.Store.CreateUser(t.Context(), p("target%d", i), "", "hash", clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, u)
	}
	const flooder = "203.0.113.77"
	for _, u := range targets[:3] {
		wantStatus(t, requestFrom(t, s, flooder, http.MethodPost, "/api/reports/", ann.Access, strings.NewReader(p(`{"user_id":%d,"reason":"spam"}`, u.ID))), http.StatusCreated)
	}
	r := requestFrom(t, s, flooder, http.MethodPost, "/api/reports/", ann.Access, strings.NewReader(p(`{"user_id":%d,"reason":"spam"}`, targets[3].ID)))
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if reps, err := s.Store.Reports(t.Context(), "open", 0, 10); err != nil || len(reps) != 3 {
		t.Errorf("%d reports stored (%v), want 3", len(reps), err)
	}
}
