package browsertest

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// rulesJS checks, inside the page, the console's rules for merging message
// states, for reaction_updated events, for @mentions and for search
// snippets, with the modules the console runs. It resolves to the list of
// what went wrong.
const rulesJS = `(async () => {
  const { mergeMessage, applyReaction, mentionNodes } = await import('./chat.js');
  const { snippetNodes } = await import('./dom.js');
  const bad = [];
  const eq = (what, got, want) => {
    const g = JSON.stringify(got), w = JSON.stringify(want);
    if (g !== w) bad.push(what + ': got ' + g + ', want ' + w);
  };
  const me = 7;
  const m = { id: 1, version: 10, reactions: [{ emoji: '👍', count: 2, me: true }, { emoji: '🎉', count: 1, me: false }] };

  // reaction_updated
  eq('someone else adds', applyReaction(m, { emoji: '👍', count: 3, user_id: 8, added: true, version: 11 }, me).reactions,
    [{ emoji: '👍', count: 3, me: true }, { emoji: '🎉', count: 1, me: false }]);
  eq('I take mine back', applyReaction(m, { emoji: '👍', count: 1, user_id: me, added: false, version: 11 }, me).reactions[0],
    { emoji: '👍', count: 1, me: false });
  eq('last one goes', applyReaction(m, { emoji: '🎉', count: 0, user_id: 8, added: false, version: 11 }, me).reactions.map((r) => r.emoji), ['👍']);
  eq('a new emoji comes last', applyReaction(m, { emoji: '😮', count: 1, user_id: me, added: true, version: 11 }, me).reactions[2],
    { emoji: '😮', count: 1, me: true });
  eq('the event raises the version', applyReaction(m, { emoji: '😮', count: 1, user_id: 8, added: true, version: 12 }, me).version, 12);
  eq('an event the message already shows', applyReaction(m, { emoji: '👍', count: 9, user_id: 8, added: true, version: 10 }, me), m);

  // merging a new state
  const fanned = { id: 1, version: 11, content: 'edited', reactions: [{ emoji: '👍', count: 2 }, { emoji: '😢', count: 1 }] };
  eq('fan-out keeps my own', mergeMessage(m, fanned).reactions, [{ emoji: '👍', count: 2, me: true }, { emoji: '😢', count: 1, me: false }]);
  eq('an older state is dropped', mergeMessage(m, { ...fanned, version: 9 }), m);
  const rest = { id: 1, version: 11, reactions: [{ emoji: '👍', count: 1, me: false }] };
  eq('REST says what is mine', mergeMessage(m, rest), rest);
  eq('no version: the new state', mergeMessage({ id: 1, content: 'a' }, { id: 1, content: 'b' }).content, 'b');

  // mentions
  const names = new Map([['ann', 3], ['bob.b', 4]]);
  const text = (nodes) => nodes.map((n) => (typeof n === 'string' ? n : '[' + n.textContent + '|' + n.dataset.userId + '|' + n.className + ']')).join('');
  eq('mentions', text(mentionNodes('@ANN, mail ann@ann.io, @bob.b. and @carol @ann-', names, 3)),
    '[@ANN|3|mention mention-me], mail ann@ann.io, [@bob.b|4|mention]. and @carol [@ann|3|mention mention-me]-');
  eq('no mentions', mentionNodes('@ann', new Map(), 3), ['@ann']);

  // snippets
  const frag = document.createElement('p');
  frag.append(...snippetNodes('a &lt;img src=x&gt; <b>pine</b>apple &amp; <i>x</i> &#39;q&#39;'));
  eq('snippet text', frag.textContent, "a <img src=x> pineapple & <i>x</i> 'q'");
  eq('snippet elements', [...frag.querySelectorAll('*')].map((e) => e.tagName + ':' + e.textContent), ['B:pine']);
  return bad;
})()`

// TestConsole_Rules runs the console's own merge, reaction, mention and
// snippet rules in the browser, on cases the end-to-end tests do not
// reach (stale events, fan-out payloads without "me", e-mail addresses).
func TestConsole_Rules(t *testing.T) {
	e := newConsoleEnv(t)
	p := newPage(t, e.browser, "rules", e.watch, e.shots)
	p.do("open the console", chromedp.Navigate(e.s.URL+"/"), chromedp.WaitVisible(tid("login-form")))
	bad, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](rulesJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run the rules: %v", err)
	}
	for _, b := range bad {
		t.Error(b)
	}
}
