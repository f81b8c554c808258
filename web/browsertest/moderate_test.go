package browsertest

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsole_Report: Alice reports Bob's message from its menu and Bob
// himself from the conversation's details, each with a reason and a
// note; a second report of the message says it is there already. A user
// who is not staff sees no Staff button.
func TestConsole_Report(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	msg := idOf(post(t, s, bob, conv, "Cheap watches, click here", 0))

	a := e.signIn(alice)
	a.open(conv)
	a.waitMessage("Cheap watches, click here")
	if eval[bool](a, `!document.querySelector('[data-testid=staff-toggle]').hidden`) {
		t.Error("a user who is not staff sees the Staff button")
	}
	// No Report on one's own messages.
	own := idOf(post(t, s, alice, conv, "no thanks", 0))
	a.waitMessage("no thanks")
	if eval[bool](a, fmt.Sprintf(`Boolean(document.querySelector(%q))`, msgSel(own, "[data-testid=message-report]"))) {
		t.Error("one's own message has a Report button")
	}

	a.clickCSS(msgSel(msg, "[data-testid=message-report]"))
	a.do("the report dialog", chromedp.WaitVisible(tid("report-dialog")))
	a.waitFor("the message named", `document.querySelector('[data-testid=report-target]').textContent.includes('Cheap watches')`)
	// Without a reason it says so and sends nothing.
	a.click("report-submit")
	a.waitFor("the missing reason", `!document.querySelector('[data-testid=report-error]').hidden`)
	a.clickCSS(`[data-testid=report-reason][data-reason=spam]`)
	a.typeInto("report-note", "Posted in every group")
	a.shot("report-message")
	a.click("report-submit")
	a.waitFor("the dialog closed", `!document.querySelector('[data-testid=report-dialog]').open`)
	a.waitFor("the thanks", `[...document.querySelectorAll('[data-testid=toast]')].some((t) => t.textContent.includes('Report sent'))`)

	// Bob, from the details' participant list.
	a.click("details-button")
	a.do("the details", chromedp.WaitVisible(tid("details-dialog")))
	a.waitFor("bob in the list", fmt.Sprintf(`Boolean(document.querySelector('[data-testid=participant-item][data-user-id="%d"] [data-testid=participant-report]'))`, bob.ID))
	if eval[bool](a, fmt.Sprintf(`Boolean(document.querySelector('[data-testid=participant-item][data-user-id="%d"] [data-testid=participant-report]'))`, alice.ID)) {
		t.Error("alice can report herself")
	}
	a.clickCSS(fmt.Sprintf(`[data-testid=participant-item][data-user-id="%d"] [data-testid=participant-report]`, bob.ID))
	a.do("the report dialog", chromedp.WaitVisible(tid("report-dialog")))
	a.waitFor("bob named", fmt.Sprintf(`document.querySelector('[data-testid=report-target]').textContent === %s`, jsString("@"+bob.Username)))
	a.clickCSS(`[data-testid=report-reason][data-reason=abuse]`)
	a.click("report-submit")
	a.waitFor("the dialog closed", `!document.querySelector('[data-testid=report-dialog]').open`)

	// Again, with another reason: the first stands.
	a.clickCSS(msgSel(msg, "[data-testid=message-report]"))
	a.do("the report dialog", chromedp.WaitVisible(tid("report-dialog")))
	a.clickCSS(`[data-testid=report-reason][data-reason=other]`)
	a.click("report-submit")
	a.waitFor("already reported", `[...document.querySelectorAll('[data-testid=toast]')].some((t) => t.textContent.includes('reported this already'))`)

	// What the server kept: two reports, as alice made them.
	mod := s.Staff(t, "mod")
	r := s.Do(t, http.MethodGet, "/api/admin/reports/", mod.Access, nil)
	var list struct {
		Results []map[string]any `json:"results"`
	}
	r.JSON(t, &list)
	if len(list.Results) != 2 || list.Results[0]["target_type"] != "user" || list.Results[0]["reason"] != "abuse" ||
		list.Results[1]["reason"] != "spam" || list.Results[1]["note"] != "Posted in every group" {
		t.Errorf("reports stored: %s", r.Body)
	}
}

// TestConsole_StaffActOnAReport: a staff member opens the Staff view,
// sees the report with the message in its context, removes the message,
// and the other participant's page shows it removed by a moderator, live;
// the report moves to Resolved and the audit log says who did it. Then
// staff deactivate the sender from the report, and reactivate him from
// Accounts.
func TestConsole_StaffActOnAReport(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	mod := s.Staff(t, "mod")
	conv := s.Conversation(t, alice, bob)
	post(t, s, alice, conv, "Hi Bob", 0)
	msg := idOf(post(t, s, bob, conv, "Something vile", 0))
	post(t, s, alice, conv, "That was rude", 0)
	r := s.Do(t, http.MethodPost, "/api/reports/", alice.Access, map[string]any{"message_id": msg, "reason": "abuse", "note": "Please look"})
	if r.Status != http.StatusCreated {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}

	a := e.signIn(alice)
	a.open(conv)
	a.waitMessage("Something vile")

	m := e.signIn(mod)
	m.waitFor("the Staff button", `!document.querySelector('[data-testid=staff-toggle]').hidden`)
	m.click("staff-toggle")
	m.do("the staff view", chromedp.WaitVisible(tid("staff-dialog")))
	m.waitFor("the open report", `document.querySelector('[data-testid=staff-dialog]').dataset.state === 'done' && document.querySelectorAll('[data-testid=staff-report]').length === 1`)
	m.waitFor("its context", fmt.Sprintf(`(() => { const c = [...document.querySelectorAll('[data-testid=staff-context] li')];
	  return c.length === 3 && c[1].dataset.testid === 'staff-reported-message' && c[1].dataset.messageId === '%d' && c[0].textContent.includes('Hi Bob') && c[2].textContent.includes('That was rude'); })()`, msg))
	m.waitFor("the reporter's note", `document.querySelector('[data-testid=staff-report-note]').textContent === 'Please look'`)
	m.shot("staff-queue")

	m.typeInto("staff-resolve-note", "Harassment")
	m.click("staff-remove-message")
	m.waitFor("resolved in place", `document.querySelector('[data-testid=staff-resolution]') && document.querySelector('[data-testid=staff-resolution]').dataset.action === 'remove_message'`)
	m.waitFor("the tombstone in the context", fmt.Sprintf(`document.querySelector('[data-testid=staff-reported-message][data-message-id="%d"]').textContent.includes('Removed by a moderator')`, msg))

	// Alice's page: the message is gone, removed by a moderator, live.
	a.waitFor("the removal, live", fmt.Sprintf(`(() => { const c = document.querySelector(%q);
	  return c && c.dataset.removedByModerator === 'true' && c.textContent === 'Removed by a moderator'; })()`, msgSel(msg, "[data-testid=message-content]")))
	a.waitFor("the message_deleted frame", `[...document.querySelectorAll('#frame-log [data-dir=in][data-type=message_deleted] pre')].some((e) => JSON.parse(e.textContent).message.removed_by_moderator === true)`)
	a.shot("removed-by-moderator")

	// Resolved; and the audit log.
	m.click("staff-tab-open")
	m.waitFor("no open reports", `document.querySelector('[data-testid=staff-dialog]').dataset.state === 'done' && document.querySelectorAll('[data-testid=staff-report]').length === 0`)
	m.click("staff-tab-resolved")
	m.waitFor("the resolved report", `document.querySelector('[data-testid=staff-dialog]').dataset.state === 'done' && document.querySelectorAll('[data-testid=staff-report][data-status=resolved]').length === 1`)
	m.click("staff-tab-audit")
	m.waitFor("the audit entry", fmt.Sprintf(`(() => { const e = document.querySelector('[data-testid=staff-audit-entry][data-action=remove_message]');
	  return e && e.textContent.includes(%s) && e.textContent.includes('Harassment'); })()`, jsString("@"+mod.Username)))
	m.shot("staff-audit")

	// Deactivate the sender from a second report, then reactivate him.
	msg2 := idOf(post(t, s, bob, conv, "More of the same", 0))
	if r := s.Do(t, http.MethodPost, "/api/reports/", alice.Access, map[string]any{"message_id": msg2, "reason": "abuse"}); r.Status != http.StatusCreated {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	b := e.signIn(bob)
	e.watch.expect("status of 401 (Unauthorized) " + s.URL + "/api/auth/token/refresh/") // bob's, once deactivated
	m.click("staff-tab-open")
	m.waitFor("the second report", `document.querySelector('[data-testid=staff-dialog]').dataset.state === 'done' && document.querySelectorAll('[data-testid=staff-report]').length === 1`)
	m.click("staff-deactivate-user")
	m.waitFor("bob deactivated", `document.querySelector('[data-testid=staff-resolution]') && document.querySelector('[data-testid=staff-report-user]').dataset.active === 'false'`)
	if code := s.Do(t, http.MethodGet, "/api/users/me/", bob.Access, nil).Status; code != http.StatusUnauthorized {
		t.Errorf("bob's token after the deactivation: %d, want 401", code)
	}
	// Bob's console: its socket closed (4001 account disabled), the
	// refresh refused, back at the sign-in, saying why.
	b.waitFor("bob signed out, told why", `!document.querySelector('[data-testid=auth-notice]').hidden && document.querySelector('[data-testid=auth-notice]').textContent.includes('disabled')`)
	b.shot("account-disabled")
	m.click("staff-tab-accounts")
	m.typeInto("staff-account-search", bob.Username)
	m.pressEnter("staff-account-search")
	m.waitFor("bob, deactivated", fmt.Sprintf(`Boolean(document.querySelector('[data-testid=staff-account][data-user-id="%d"][data-active=false] [data-testid=staff-reactivate]'))`, bob.ID))
	m.click("staff-reactivate")
	m.typeInto("staff-reason", "Appeal accepted")
	m.click("staff-reactivate-confirm")
	m.waitFor("the toast", `[...document.querySelectorAll('[data-testid=toast]')].some((t) => t.textContent.includes('active again'))`)
	login := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": bob.Username, "password": "correct horse battery"})
	if login.Status != http.StatusOK {
		t.Errorf("bob's login after the reactivation: %d %s", login.Status, login.Body)
	}
}
