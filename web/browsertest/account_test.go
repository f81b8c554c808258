package browsertest

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/confab/confab/app/server/servertest"
)

// TestConsole_DeleteAccount: from the account dialog, a user downloads
// their data, is refused with a wrong password, then deletes their
// account; their console returns to the sign-in screen, and the other
// participant's console shows their messages as deleted, from "Deleted
// user".
func TestConsole_DeleteAccount(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	group := s.Conversation(t, alice, bob, carol)
	hello := idOf(post(t, s, alice, group, "Hello both", 0))
	secret := idOf(post(t, s, bob, group, "bob's secret plan", 0))
	more := idOf(post(t, s, bob, group, "and one more thing", 0))

	a := e.signIn(alice)
	b := e.signIn(bob)
	a.open(group)
	b.open(group)
	a.waitFor("bob's message", fmt.Sprintf(`document.querySelector(%s)?.textContent === "bob's secret plan"`,
		jsString(msgSel(secret, "[data-testid=message-content]"))))

	// Download my data.
	b.click("account-button")
	b.waitFor("the explanation", `document.querySelector('[data-testid=delete-explanation]').textContent.includes('Deleted user')`)
	b.click("download-data")
	b.waitFor("the file saved", fmt.Sprintf(`document.querySelector('[data-testid=download-status]').dataset.file?.startsWith(%s)`,
		jsString("confab-"+bob.Username+"-")))
	b.shot("account-dialog")

	// A wrong password changes nothing.
	e.watch.expect("the server responded with a status of 403 (Forbidden)")
	b.typeInto("delete-password", "not my password")
	b.click("delete-account-submit")
	b.waitFor("the refusal", `(() => { const e = document.querySelector('[data-testid=delete-error]');
	  return !e.hidden && e.textContent === 'That password is not correct.'; })()`)
	b.waitFor("the socket back", `document.querySelector('[data-testid=connection-status]').dataset.status === 'live'`)
	if r := s.Do(t, http.MethodGet, "/api/users/me/", bob.Access, nil); r.Status != http.StatusOK {
		t.Fatalf("after a wrong password: %d %s", r.Status, r.Body)
	}

	// The right one deletes the account.
	eval[bool](b, `(document.getElementById('delete-password').value = '', true)`)
	b.typeInto("delete-password", servertest.Password)
	b.click("delete-account-submit")
	b.waitFor("the sign-in screen", `(() => { const n = document.querySelector('[data-testid=auth-notice]');
	  return !document.querySelector('[data-testid=login-form]').hidden && n && !n.hidden && n.textContent === 'Your account has been deleted.'; })()`)
	b.waitFor("the session forgotten", `!sessionStorage.getItem('confab.refresh')`)
	b.shot("deleted")
	if r := s.Do(t, http.MethodGet, "/api/users/me/", bob.Access, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("bob's token after the deletion: %d", r.Status)
	}

	// Alice sees bob's messages go, from "Deleted user", live.
	for _, id := range []int64{secret, more} {
		a.waitFor(fmt.Sprint("message ", id, " deleted"), fmt.Sprintf(`(() => {
		  const m = document.querySelector(%s);
		  return m && m.classList.contains('deleted') &&
		    m.querySelector('[data-testid=message-content]').textContent === 'Message deleted' &&
		    !m.textContent.includes('secret'); })()`, jsString(msgSel(id, ""))))
	}
	a.waitFor("the author", fmt.Sprintf(`document.querySelector(%s)?.textContent === 'Deleted user'`,
		jsString(msgSel(secret, "[data-testid=message-author]"))))
	a.waitFor("bob gone from the header", `/^2 members/.test(document.querySelector('#conversation-subtitle').textContent)`)
	a.waitFor("alice's own message intact", fmt.Sprintf(`document.querySelector(%s)?.textContent === 'Hello both'`,
		jsString(msgSel(hello, "[data-testid=message-content]"))))
	a.shot("other-side")

	// And after a reload, from the server's pages.
	a.do("reload", chromedp.Reload())
	a.open(group)
	a.waitFor("the author after a reload", fmt.Sprintf(`document.querySelector(%s)?.textContent === 'Deleted user'`,
		jsString(msgSel(secret, "[data-testid=message-author]"))))
}
