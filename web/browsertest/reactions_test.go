package browsertest

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// reactionState is what a page shows of one emoji under one message:
// count 0 when there is no chip.
func reactionState(p *page, msgID int64, emoji string) (count int, me bool) {
	p.t.Helper()
	v := eval[[]any](p, fmt.Sprintf(`(() => { const c = [...document.querySelectorAll(%q)].find((c) => c.dataset.emoji === %s);
	  return c ? [Number(c.querySelector('[data-testid=reaction-count]').textContent), c.getAttribute('aria-pressed') === 'true'] : [0, false]; })()`,
		msgSel(msgID, "[data-testid=reaction-chip]"), jsString(emoji)))
	return int(v[0].(float64)), v[1].(bool)
}

func (p *page) waitReaction(msgID int64, emoji string, count int, me bool) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%s × %d (mine: %v)", emoji, count, me), fmt.Sprintf(`(() => { const c = [...document.querySelectorAll(%q)].find((c) => c.dataset.emoji === %s);
	  if (%d === 0) return !c;
	  return c && c.querySelector('[data-testid=reaction-count]').textContent === '%d' && c.getAttribute('aria-pressed') === '%v'; })()`,
		msgSel(msgID, "[data-testid=reaction-chip]"), jsString(emoji), count, count, me))
}

// TestConsole_Reactions: Alice reacts from the picker and Bob sees the
// count live; Bob adds his by clicking the chip; each sees "mine" only for
// their own; taking both back removes the chip on both pages.
func TestConsole_Reactions(t *testing.T) {
	e := newConsoleEnv(t)
	s := e.s
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	msg := idOf(post(t, s, bob, conv, "Lunch at noon?", 0))

	a := e.signIn(alice)
	b := e.signIn(bob)
	a.open(conv)
	b.open(conv)
	a.waitMessage("Lunch at noon?")
	b.waitMessage("Lunch at noon?")

	const thumbs = "👍"
	a.clickCSS(msgSel(msg, "[data-testid=message-react]"))
	a.do("the picker", chromedp.WaitVisible(chromedp.CSS(msgSel(msg, "[data-testid=reaction-picker]"))))
	a.shot("reaction-picker")
	// A click outside the picker closes it, as a menu does; it opens again.
	a.clickCSS("[data-testid=composer-input]")
	a.waitFor("the picker closed by a click outside", fmt.Sprintf(`!document.querySelector(%q)`, msgSel(msg, "[data-testid=reaction-picker]")))
	a.clickCSS(msgSel(msg, "[data-testid=message-react]"))
	a.do("the picker again", chromedp.WaitVisible(chromedp.CSS(msgSel(msg, "[data-testid=reaction-picker]"))))
	a.clickCSS(msgSel(msg, fmt.Sprintf(`[data-testid=reaction-option][data-emoji=%q]`, thumbs)))
	a.waitReaction(msg, thumbs, 1, true)
	b.waitReaction(msg, thumbs, 1, false)
	b.waitFor("the live reaction_updated", `[...document.querySelectorAll('#frame-log [data-dir=in][data-type=reaction_updated] pre')].length > 0`)
	b.shot("sees-reaction")

	b.clickCSS(msgSel(msg, fmt.Sprintf(`[data-testid=reaction-chip][data-emoji=%q]`, thumbs)))
	b.waitReaction(msg, thumbs, 2, true)
	a.waitReaction(msg, thumbs, 2, true) // Bob's reaction leaves Alice's own as it was

	a.clickCSS(msgSel(msg, fmt.Sprintf(`[data-testid=reaction-chip][data-emoji=%q]`, thumbs)))
	a.waitReaction(msg, thumbs, 1, false)
	b.waitReaction(msg, thumbs, 1, true)
	a.shot("reaction-taken-back")

	b.clickCSS(msgSel(msg, fmt.Sprintf(`[data-testid=reaction-chip][data-emoji=%q]`, thumbs)))
	b.waitReaction(msg, thumbs, 0, false)
	a.waitReaction(msg, thumbs, 0, false)
	if n, _ := reactionState(a, msg, thumbs); n != 0 {
		t.Errorf("alice still shows %d", n)
	}
}
