// Package storetest holds the behaviour every moderate.Store must have,
// as tests that each store's package runs against itself (Run), so that
// the SQLite and the PostgreSQL store keep reports, staff and the audit
// log alike. It knows no SQL.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/moderate"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Store is a store of users, conversations and messages (what reports
// name) and of moderation.
type Store interface {
	chat.Store
	moderate.Store
}

// Run runs every behaviour test of moderate.Store, each in a parallel
// subtest. open must return a Store on an empty database of the
// subtest's own, and close it when the test ends.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"CreateReport_OneOpenPerReporterAndTarget", testOneOpen},
		{"Reports_ByStatusNewestFirstInPages", testReportsPaged},
		{"ResolveReport_RemoveMessageTombstonesIt", testRemoveMessage},
		{"ResolveReport_OnceOnly", testResolveOnce},
		{"ResolveReport_DeactivateTheSender", testDeactivateSender},
		{"SetActive_DeactivateAndReactivate", testSetActive},
		{"SetStaff_GrantAndRevoke", testSetStaff},
		{"Audit_OutlivesWhatItNames", testAuditOutlives},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

var bg = context.Background()

func mustUser(tb testing.TB, s Store, name string) chat.User {
	tb.Helper()
	u, err := s.CreateUser(bg, name, name, "hash", t0)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func mustConversation(tb testing.TB, s Store, users ...chat.User) int64 {
	tb.Helper()
	nc := chat.NewConversation{IsGroup: true, At: t0}
	for _, u := range users {
		nc.UserIDs = append(nc.UserIDs, u.ID)
	}
	id, _, err := s.CreateConversation(bg, nc)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func mustSend(tb testing.TB, s Store, from chat.User, conv int64, content string) chat.Message {
	tb.Helper()
	res, err := s.InsertMessages(bg, []chat.NewMessage{{ConversationID: conv, Sender: from.Lite(), Content: content, At: t0}})
	if err != nil || res[0].Err != nil {
		tb.Fatalf("insert: %v %v", err, res[0].Err)
	}
	return res[0].Message
}

func mustReport(tb testing.TB, s Store, r moderate.NewReport, wantCreated bool) moderate.Report {
	tb.Helper()
	if r.Reason == "" {
		r.Reason = moderate.ReasonSpam
	}
	if r.At.IsZero() {
		r.At = t0
	}
	rep, created, err := s.CreateReport(bg, r)
	if err != nil {
		tb.Fatal(err)
	}
	if created != wantCreated {
		tb.Fatalf("report %+v: created %v, want %v", r, created, wantCreated)
	}
	if rep.ID == 0 || rep.ReporterID != r.ReporterID || rep.MessageID != r.MessageID || rep.UserID != r.UserID || rep.Status != moderate.StatusOpen {
		tb.Fatalf("report %+v stored as %+v", r, rep)
	}
	return rep
}

func mustAudit(tb testing.TB, s Store) []moderate.AuditEntry {
	tb.Helper()
	list, err := s.Audit(bg, 0, 100)
	if err != nil {
		tb.Fatal(err)
	}
	return list
}

func wantCode(tb testing.TB, err error, code chat.Code) {
	tb.Helper()
	if chat.ErrorCode(err) != code {
		tb.Fatalf("err %v, want code %s", err, code)
	}
}

func testOneOpen(t *testing.T, s Store) {
	ann, bob, cat := mustUser(t, s, "ann"), mustUser(t, s, "bob"), mustUser(t, s, "cat")
	m := mustSend(t, s, bob, mustConversation(t, s, ann, bob, cat), "buy now")

	first := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, MessageID: m.ID, Reason: moderate.ReasonSpam, Note: "ads"}, true)
	if first.Reason != moderate.ReasonSpam || first.Note != "ads" || !first.CreatedAt.Equal(t0) {
		t.Errorf("stored %+v", first)
	}
	again := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, MessageID: m.ID, Reason: moderate.ReasonAbuse}, false)
	if again.ID != first.ID || again.Reason != moderate.ReasonSpam {
		t.Errorf("a repeat gave %+v, want the first, %+v", again, first)
	}
	// Another reporter, another target: reports of their own.
	if r := mustReport(t, s, moderate.NewReport{ReporterID: cat.ID, MessageID: m.ID}, true); r.ID == first.ID {
		t.Error("another reporter got the first report")
	}
	user := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, UserID: bob.ID}, true)
	if user.ID == first.ID {
		t.Error("a report of the user is the report of the message")
	}
	mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, UserID: bob.ID}, false)

	// Once resolved, a new report of the same target is a new one.
	if _, err := s.ResolveReport(bg, moderate.Resolution{ReportID: first.ID, Staff: moderate.Actor{ID: cat.ID, Name: cat.Username},
		Action: moderate.ActionDismiss, At: t0}); err != nil {
		t.Fatal(err)
	}
	if r := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, MessageID: m.ID}, true); r.ID == first.ID {
		t.Error("a report after the resolution is the resolved one")
	}
}

func testReportsPaged(t *testing.T, s Store) {
	ann, bob := mustUser(t, s, "ann"), mustUser(t, s, "bob")
	conv := mustConversation(t, s, ann, bob)
	var ids []int64
	for i := range 5 {
		m := mustSend(t, s, bob, conv, "m")
		ids = append(ids, mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, MessageID: m.ID, At: t0.Add(time.Duration(i) * time.Second)}, true).ID)
	}
	if _, err := s.ResolveReport(bg, moderate.Resolution{ReportID: ids[1], Action: moderate.ActionDismiss, At: t0}); err != nil {
		t.Fatal(err)
	}
	page1, err := s.Reports(bg, moderate.StatusOpen, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	page2, err := s.Reports(bg, moderate.StatusOpen, page1[len(page1)-1].ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := []int64{}
	for _, r := range append(page1, page2...) {
		got = append(got, r.ID)
	}
	want := []int64{ids[4], ids[3], ids[2], ids[0]}
	if len(page1) != 2 || !equal(got, want) {
		t.Errorf("open reports %v (first page %d), want %v", got, len(page1), want)
	}
	resolved, err := s.Reports(bg, moderate.StatusResolved, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(resolved) != 1 || resolved[0].ID != ids[1] || resolved[0].Action != moderate.ActionDismiss {
		t.Errorf("resolved reports %+v", resolved)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testRemoveMessage(t *testing.T, s Store) {
	ann, bob, mod := mustUser(t, s, "ann"), mustUser(t, s, "bob"), mustUser(t, s, "mod")
	conv := mustConversation(t, s, ann, bob)
	m := mustSend(t, s, bob, conv, "something vile")
	rep := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, MessageID: m.ID, Reason: moderate.ReasonAbuse}, true)
	before, err := s.LastVersions(bg, []int64{conv})
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	res, err := s.ResolveReport(bg, moderate.Resolution{ReportID: rep.ID, Staff: moderate.Actor{ID: mod.ID, Name: mod.Username},
		Action: moderate.ActionRemoveMessage, Note: "harassment", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Status != moderate.StatusResolved || res.Report.Action != moderate.ActionRemoveMessage ||
		res.Report.ResolvedBy != mod.ID || res.Report.ResolutionNote != "harassment" || !res.Report.ResolvedAt.Equal(at) {
		t.Errorf("resolved as %+v", res.Report)
	}
	if res.Removed == nil || !res.Removed.IsDeleted || !res.Removed.RemovedByModerator || res.Removed.Content != "" ||
		res.Removed.Version <= before[conv] || res.Removed.PrevVersion != before[conv] {
		t.Fatalf("removed %+v (version before %d)", res.Removed, before[conv])
	}
	if res.Deactivated != 0 {
		t.Errorf("deactivated %d", res.Deactivated)
	}
	// Every read shows the tombstone as staff's: the message, the
	// history and the change feed.
	got, err := s.Message(bg, m.ID)
	if err != nil || !got.RemovedByModerator || !got.IsDeleted {
		t.Errorf("message now %+v, %v", got, err)
	}
	page, err := s.Messages(bg, conv, chat.PageQuery{Limit: 10})
	if err != nil || len(page.Results) != 1 || !page.Results[0].RemovedByModerator {
		t.Errorf("history %+v, %v", page.Results, err)
	}
	changes, err := s.Changes(bg, conv, before[conv], 0, 10)
	if err != nil || len(changes) != 1 || !changes[0].Message.RemovedByModerator {
		t.Errorf("changes %+v, %v", changes, err)
	}
	// A message its author deleted is no moderator's.
	own := mustSend(t, s, bob, conv, "oops")
	if d, _, err := s.DeleteMessage(bg, own.ID, at); err != nil || d.RemovedByModerator {
		t.Errorf("own deletion %+v, %v", d, err)
	}
	// A deleted message reported before: resolved, nothing removed.
	late := mustSend(t, s, bob, conv, "gone soon")
	rep2 := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, MessageID: late.ID}, true)
	if _, _, err := s.DeleteMessage(bg, late.ID, at); err != nil {
		t.Fatal(err)
	}
	res, err = s.ResolveReport(bg, moderate.Resolution{ReportID: rep2.ID, Staff: moderate.Actor{ID: mod.ID, Name: mod.Username},
		Action: moderate.ActionRemoveMessage, At: at})
	if err != nil || res.Removed != nil {
		t.Errorf("removing a deleted message: %+v, %v", res.Removed, err)
	}

	audit := mustAudit(t, s)
	if len(audit) != 2 {
		t.Fatalf("audit %+v, want two entries", audit)
	}
	e := audit[1] // oldest last
	if e.Action != moderate.AuditRemoveMessage || e.Actor.ID != mod.ID || e.Actor.Name != "mod" || e.TargetType != moderate.TargetMessage ||
		e.TargetID != m.ID || e.TargetName != "bob" || e.ReportID != rep.ID || e.Reason != "harassment" || !e.At.Equal(at) {
		t.Errorf("audit entry %+v", e)
	}

	// remove_message is for reports of messages.
	userRep := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, UserID: bob.ID}, true)
	_, err = s.ResolveReport(bg, moderate.Resolution{ReportID: userRep.ID, Action: moderate.ActionRemoveMessage, At: at})
	wantCode(t, err, chat.CodeInvalid)
	if r, err := s.Report(bg, userRep.ID); err != nil || r.Status != moderate.StatusOpen {
		t.Errorf("a refused resolution left %+v, %v", r, err)
	}
	if n := len(mustAudit(t, s)); n != 2 {
		t.Errorf("a refused resolution was audited: %d entries", n)
	}
}

func testResolveOnce(t *testing.T, s Store) {
	ann, bob := mustUser(t, s, "ann"), mustUser(t, s, "bob")
	rep := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, UserID: bob.ID}, true)
	r := moderate.Resolution{ReportID: rep.ID, Action: moderate.ActionDismiss, At: t0}
	if _, err := s.ResolveReport(bg, r); err != nil {
		t.Fatal(err)
	}
	_, err := s.ResolveReport(bg, r)
	wantCode(t, err, chat.CodeConflict)
	r.ReportID = 999999
	_, err = s.ResolveReport(bg, r)
	if !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown report: %v", err)
	}
	_, err = s.Report(bg, 999999)
	if !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown report: %v", err)
	}
	if n := len(mustAudit(t, s)); n != 1 {
		t.Errorf("%d audit entries, want 1", n)
	}
}

func testDeactivateSender(t *testing.T, s Store) {
	ann, bob, mod := mustUser(t, s, "ann"), mustUser(t, s, "bob"), mustUser(t, s, "mod")
	m := mustSend(t, s, bob, mustConversation(t, s, ann, bob), "spam spam")
	tok := chat.RefreshToken{Hash: []byte("bob-refresh"), UserID: bob.ID, ChainID: "chain", ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
	if err := s.InsertRefreshToken(bg, tok); err != nil {
		t.Fatal(err)
	}
	before, err := s.UserByID(bg, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	rep := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, MessageID: m.ID}, true)
	at := t0.Add(time.Minute)
	res, err := s.ResolveReport(bg, moderate.Resolution{ReportID: rep.ID, Staff: moderate.Actor{ID: mod.ID, Name: "mod"},
		Action: moderate.ActionDeactivateUser, Note: "spammer", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deactivated != bob.ID || res.Removed != nil {
		t.Errorf("resolved: deactivated %d, removed %v", res.Deactivated, res.Removed)
	}
	a, err := s.UserByID(bg, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Active() || !a.DeactivatedAt.Equal(at) || a.TokenEpoch != before.TokenEpoch+1 || a.KeptSession != "" {
		t.Errorf("bob now %+v", a)
	}
	next := chat.RefreshToken{Hash: []byte("bob-next"), UserID: bob.ID, ExpiresAt: t0.Add(time.Hour), CreatedAt: at}
	if err := s.RotateRefreshToken(bg, tok.Hash, next, at); !errors.Is(err, chat.ErrTokenNotValid) {
		t.Errorf("refresh after the deactivation: %v", err)
	}
	audit := mustAudit(t, s)
	if len(audit) != 1 || audit[0].Action != moderate.AuditDeactivateUser || audit[0].TargetID != bob.ID ||
		audit[0].TargetName != "bob" || audit[0].ReportID != rep.ID || audit[0].Reason != "spammer" {
		t.Errorf("audit %+v", audit)
	}
	// A deactivated account is no one's search result, but staff's.
	if users, err := s.SearchUsers(bg, "bo", 10); err != nil || len(users) != 0 {
		t.Errorf("search finds %+v, %v", users, err)
	}
	accs, err := s.SearchAccounts(bg, "bo", 10)
	if err != nil || len(accs) != 1 || accs[0].ID != bob.ID || accs[0].Active() {
		t.Errorf("staff search finds %+v, %v", accs, err)
	}
}

func testSetActive(t *testing.T, s Store) {
	bob, mod := mustUser(t, s, "bob"), mustUser(t, s, "mod")
	staff := moderate.Actor{ID: mod.ID, Name: "mod"}
	for i, step := range []struct {
		active, changed bool
	}{{false, true}, {false, false}, {true, true}, {true, false}} {
		changed, err := s.SetActive(bg, bob.ID, step.active, staff, "why not", t0.Add(time.Duration(i)*time.Minute))
		if err != nil || changed != step.changed {
			t.Fatalf("step %d: active %v: changed %v, %v; want %v", i, step.active, changed, err, step.changed)
		}
		a, err := s.UserByID(bg, bob.ID)
		if err != nil || a.Active() != step.active {
			t.Fatalf("step %d: bob %+v, %v", i, a, err)
		}
	}
	audit := mustAudit(t, s)
	if len(audit) != 2 || audit[0].Action != moderate.AuditReactivateUser || audit[1].Action != moderate.AuditDeactivateUser ||
		audit[0].Actor != staff || audit[0].Reason != "why not" || audit[0].TargetName != "bob" {
		t.Errorf("audit %+v", audit)
	}
	if users, err := s.SearchUsers(bg, "bo", 10); err != nil || len(users) != 1 {
		t.Errorf("a reactivated account is not found: %+v, %v", users, err)
	}
	_, err := s.SetActive(bg, 999999, false, staff, "x", t0)
	if !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

func testSetStaff(t *testing.T, s Store) {
	bob := mustUser(t, s, "Bob")
	if a, err := s.UserByID(bg, bob.ID); err != nil || a.IsStaff {
		t.Fatalf("a new account is staff: %+v, %v", a, err)
	}
	for i, step := range []struct {
		staff, changed bool
	}{{true, true}, {true, false}, {false, true}, {false, false}} {
		a, changed, err := s.SetStaff(bg, "bob", step.staff, moderate.Actor{}, t0)
		if err != nil || changed != step.changed || a.ID != bob.ID || a.IsStaff != step.staff {
			t.Fatalf("step %d: %+v, changed %v, %v", i, a, changed, err)
		}
		if a, err := s.UserByID(bg, bob.ID); err != nil || a.IsStaff != step.staff {
			t.Fatalf("step %d: stored %+v, %v", i, a, err)
		}
	}
	audit := mustAudit(t, s)
	if len(audit) != 2 || audit[0].Action != moderate.AuditRevokeStaff || audit[1].Action != moderate.AuditGrantStaff ||
		audit[1].Actor != (moderate.Actor{}) || audit[1].TargetID != bob.ID || audit[1].TargetName != "Bob" {
		t.Errorf("audit %+v", audit)
	}
	_, _, err := s.SetStaff(bg, "nobody", true, moderate.Actor{}, t0)
	if !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown username: %v", err)
	}
}

func testAuditOutlives(t *testing.T, s Store) {
	ann, bob, mod := mustUser(t, s, "ann"), mustUser(t, s, "bob"), mustUser(t, s, "mod")
	m := mustSend(t, s, bob, mustConversation(t, s, ann, bob), "x")
	rep := mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, MessageID: m.ID}, true)
	if _, err := s.ResolveReport(bg, moderate.Resolution{ReportID: rep.ID, Staff: moderate.Actor{ID: mod.ID, Name: "mod"},
		Action: moderate.ActionRemoveMessage, At: t0}); err != nil {
		t.Fatal(err)
	}
	mustReport(t, s, moderate.NewReport{ReporterID: ann.ID, UserID: bob.ID}, true)
	// The accounts go: the reports they made with them, the audit log
	// stays.
	for _, u := range []chat.User{bob, mod, ann} {
		if err := s.DeleteUser(bg, u.ID, t0, t0); err != nil {
			t.Fatalf("delete %s: %v", u.Username, err)
		}
	}
	for _, status := range []string{moderate.StatusOpen, moderate.StatusResolved} {
		if reps, err := s.Reports(bg, status, 0, 10); err != nil || len(reps) != 0 {
			t.Errorf("%s reports left: %+v, %v", status, reps, err)
		}
	}
	audit := mustAudit(t, s)
	if len(audit) != 1 || audit[0].Actor.Name != "mod" || audit[0].TargetName != "bob" {
		t.Errorf("audit %+v", audit)
	}
	// Paging: below the one entry, none.
	if more, err := s.Audit(bg, audit[0].ID, 10); err != nil || len(more) != 0 {
		t.Errorf("below the first entry: %+v, %v", more, err)
	}
}
