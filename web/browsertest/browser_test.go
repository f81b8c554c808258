package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const (
	// waitTimeout bounds every wait for the page; the whole test stays well
	// under two minutes even when one of them runs out.
	waitTimeout = 15 * time.Second
	// pollEvery is how often a wait re-checks its condition. An interval,
	// not requestAnimationFrame: a page without frames would never re-check.
	pollEvery = 40 * time.Millisecond
)

// chromiumPath finds Chromium: $CHROMIUM_PATH when set, else the usual
// names. Without one the test fails when CI is set (CI must never pass by
// skipping) and is skipped otherwise (a developer without a browser).
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		candidates = []string{p}
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("CI is set and there is no chromium (looked for %s): install it with apt-get install chromium, or set CHROMIUM_PATH", strings.Join(candidates, ", "))
	}
	t.Skipf("no chromium (looked for %s): install it with apt-get install chromium, or set CHROMIUM_PATH", strings.Join(candidates, ", "))
	return ""
}

// startBrowser starts one headless Chromium for the test and returns its
// context; pages made from it get their own browser contexts (profiles).
func startBrowser(t *testing.T, parent context.Context) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
		// No user-data-dir: chromedp makes a fresh one and removes it.
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// credentials matches the token or ticket in a logged WebSocket URL.
var credentials = regexp.MustCompile(`([?&](?:token|ticket)=)[^&'"\s]+`)

// consoleEntry is one error the browser reported.
type consoleEntry struct {
	page, kind, text string
	restarting       bool // while the test had the server down or restarting
}

func (e consoleEntry) String() string {
	return fmt.Sprintf("%s: %s: %s", e.page, e.kind, e.text)
}

// consoleWatch collects console errors, uncaught exceptions, browser log
// errors and JavaScript dialogs of every page.
type consoleWatch struct {
	restarting atomic.Bool
	mu         sync.Mutex
	errors     []consoleEntry
	warnings   []consoleEntry
	expected   []string // see expect
}

// expect makes errors whose text contains s expected, for a test that
// provokes them on purpose (a refused upload's "Failed to load resource:
// the server responded with a status of 400").
func (w *consoleWatch) expect(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expected = append(w.expected, s)
}

// listener returns the func a page's context calls for each event. It runs
// on chromedp's read loop, so it only files the event.
func (w *consoleWatch) listener(name string) func(any) {
	return func(ev any) {
		var e consoleEntry
		warning := false
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			switch ev.Type {
			case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			case runtime.ConsoleAPICalledTypeWarning:
				warning = true
			default:
				return
			}
			e = consoleEntry{kind: "console." + string(ev.Type), text: argsText(ev.Args)}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			e = consoleEntry{kind: "exception", text: fmt.Sprintf("%s (%s:%d)", text, d.URL, d.LineNumber+1)}
		case *log.EventEntryAdded:
			switch ev.Entry.Level {
			case log.EntryLevelError:
			case log.EntryLevelWarning:
				warning = true
			default:
				return
			}
			e = consoleEntry{kind: "log." + string(ev.Entry.Source), text: strings.TrimSpace(ev.Entry.Text + " " + ev.Entry.URL)}
		case *cdppage.EventJavascriptDialogOpening:
			e = consoleEntry{kind: "dialog." + string(ev.Type), text: ev.Message}
		default:
			return
		}
		e.page, e.restarting = name, w.restarting.Load()
		e.text = credentials.ReplaceAllString(e.text, "$1…") // tokens stay out of test logs
		w.mu.Lock()
		defer w.mu.Unlock()
		if warning {
			w.warnings = append(w.warnings, e)
		} else {
			w.errors = append(w.errors, e)
		}
	}
}

func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		var s string
		if a.Type == runtime.RemoteObjectTypeString && json.Unmarshal([]byte(a.Value), &s) == nil {
			parts = append(parts, s)
		} else if a.Description != "" {
			parts = append(parts, a.Description)
		} else {
			parts = append(parts, string(a.Value))
		}
	}
	return strings.Join(parts, " ")
}

// expectedWhileRestarting tells the network errors a browser logs while
// the server is away: refused connections of the socket's reconnect
// attempts (and of any request that raced the restart).
func expectedWhileRestarting(e consoleEntry) bool {
	if !e.restarting {
		return false
	}
	return strings.Contains(e.text, "ERR_CONNECTION_REFUSED") ||
		strings.Contains(e.text, "ERR_CONNECTION_RESET") ||
		strings.Contains(e.text, "ERR_EMPTY_RESPONSE") ||
		strings.Contains(e.text, "ERR_SOCKET_NOT_CONNECTED")
}

// check fails the test for every error that is not an expected network
// error of the restart, and logs the warnings.
func (w *consoleWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.warnings {
		t.Logf("browser warning: %s", e)
	}
	for _, e := range w.errors {
		if expectedWhileRestarting(e) {
			t.Logf("expected while restarting: %s", e)
			continue
		}
		if slices.ContainsFunc(w.expected, func(s string) bool { return strings.Contains(e.text, s) }) {
			t.Logf("expected: %s", e)
			continue
		}
		t.Errorf("browser error: %s", e)
	}
}

// shots saves numbered screenshots into the test's temp dir, and copies
// them to $CONFAB_SHOTS_DIR when that is set (t.TempDir is removed when
// the test ends).
type shots struct {
	dir, keep string
	n         atomic.Int32
}

func newShots(t *testing.T) *shots {
	s := &shots{dir: t.TempDir(), keep: os.Getenv("CONFAB_SHOTS_DIR")}
	if s.keep != "" {
		if err := os.MkdirAll(s.keep, 0o755); err != nil {
			t.Fatalf("screenshots: %v", err)
		}
		old, _ := filepath.Glob(filepath.Join(s.keep, "[0-9][0-9]-*.png")) // an earlier run's
		for _, f := range old {
			os.Remove(f)
		}
	}
	return s
}

func (s *shots) save(t *testing.T, name string, png []byte) {
	t.Helper()
	file := fmt.Sprintf("%02d-%s.png", s.n.Add(1), name)
	if err := os.WriteFile(filepath.Join(s.dir, file), png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", file, err)
	}
	if s.keep != "" {
		if err := os.WriteFile(filepath.Join(s.keep, file), png, 0o644); err != nil {
			t.Errorf("screenshot %s: %v", file, err)
		}
	}
}

// page is one signed-in user's browser tab, in a browser context of its
// own (separate storage, like two people on two machines).
type page struct {
	t     *testing.T
	name  string
	ctx   context.Context
	shots *shots
}

func newPage(t *testing.T, browser context.Context, name string, w *consoleWatch, s *shots) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(w.listener(name)))
	t.Cleanup(cancel)
	p := &page{t: t, name: name, ctx: ctx, shots: s}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open tab: %v", name, err)
	}
	return p
}

// tid is the CSS selector of a data-testid.
func tid(id string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id))
}

// do runs actions, failing the test with what was being done.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail(what, err)
	}
}

// click clicks the element with data-testid id once it is visible.
func (p *page) click(id string) {
	p.t.Helper()
	p.do("click "+id, chromedp.WaitVisible(tid(id)), chromedp.Click(tid(id)))
}

// clickCSS clicks the first element matching a CSS selector.
func (p *page) clickCSS(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// typeInto types text into the element with data-testid id with real key
// events, so the page sees input and keydown events as from a keyboard.
func (p *page) typeInto(id, text string) {
	p.t.Helper()
	p.do("type into "+id, chromedp.WaitVisible(tid(id)), chromedp.SendKeys(tid(id), text))
}

// pressEnter presses Enter in the element with data-testid id the way a
// keyboard does: one keyDown that carries the text, so that a page that
// prevents the keydown gets no newline. (chromedp.SendKeys sends the text
// as a separate char event, which inserts the newline regardless.)
func (p *page) pressEnter(id string) {
	p.t.Helper()
	key := input.DispatchKeyEventParams{Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
	down, up := key, key
	down.Type, down.Text, down.UnmodifiedText = input.DispatchKeyEventTypeKeyDown, "\r", "\r"
	up.Type = input.DispatchKeyEventTypeKeyUp
	p.do("press Enter in "+id, chromedp.WaitVisible(tid(id)), chromedp.Focus(tid(id)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			for _, ev := range []input.DispatchKeyEventParams{down, up} {
				if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, ev); err != nil {
					return err
				}
			}
			return nil
		}))
}

// waitFor polls the JavaScript expression until it is truthy.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(pollEvery), chromedp.WithPollingTimeout(waitTimeout))); err != nil {
		p.fail("wait for "+what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fail("evaluate "+expr, err)
	}
	return v
}

// shot saves a full-page screenshot named after the step.
func (p *page) shot(step string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("%s: screenshot %s: %v", p.name, step, err)
	}
	p.shots.save(p.t, p.name+"-"+step, png)
}

// fail ends the test with the page's state, and a screenshot of it.
func (p *page) fail(what string, err error) {
	p.t.Helper()
	state := "(page not readable)"
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	if s, e := chromedp.Run(ctx, chromedp.Evaluate[string](stateJS)); e == nil {
		state = s
	}
	if png, e := chromedp.Run(ctx, chromedp.FullScreenshot(100)); e == nil {
		p.shots.save(p.t, p.name+"-FAILED", png)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", waitTimeout)
	}
	p.t.Fatalf("%s: %s: %v\npage state: %s", p.name, what, err, state)
}

// stateJS sums up what the page shows, for failure messages.
const stateJS = `JSON.stringify({
  hash: location.hash,
  status: document.querySelector('[data-testid=connection-status]')?.dataset.status,
  title: document.querySelector('#conversation-title')?.textContent,
  typing: document.querySelector('#typing-indicator')?.textContent,
  seenBy: document.querySelector('#seen-by')?.textContent,
  messages: [...document.querySelectorAll('[data-testid=message]')].map((m) =>
    m.dataset.state + ' ' + (m.dataset.messageId || '-') + ' ' + m.querySelector('[data-testid=message-content]')?.textContent),
  toasts: [...document.querySelectorAll('[data-testid=toast]')].map((x) => x.textContent),
  errors: [...document.querySelectorAll('[role=alert]:not([hidden])')].map((x) => x.textContent).filter(Boolean),
  frames: [...document.querySelectorAll('#frame-log > li')].slice(-16).map((li) =>
    li.dataset.dir + ' ' + (li.querySelector('pre, .frame-text')?.textContent || '').replace(/\s+/g, ' ').slice(0, 240)),
}, null, 1)`

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
