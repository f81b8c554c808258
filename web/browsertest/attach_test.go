package browsertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/confab/confab/app/server/servertest"
)

// gpsFixture is the media package's photo with EXIF GPS tags, camera
// "ConfabCam" and orientation 6 (64×48 as stored, 48×64 as shown).
var gpsFixture = filepath.Join("..", "..", "app", "media", "testdata", "gps.jpg")

// attachScene is Alice and Bob, each in a tab, both in their conversation.
type attachScene struct {
	e      *consoleEnv
	alice  servertest.User
	bob    servertest.User
	a, b   *page
	convID int64
}

func newAttachScene(t *testing.T) *attachScene {
	t.Helper()
	e := newConsoleEnv(t)
	alice, bob := e.s.Register(t, "alice"), e.s.Register(t, "bob")
	conv := e.s.Conversation(t, alice, bob)
	sc := &attachScene{e: e, alice: alice, bob: bob, a: e.signIn(alice), b: e.signIn(bob), convID: conv}
	sc.a.open(conv)
	sc.b.open(conv)
	return sc
}

// pngBytes is a w×h PNG with a gradient (so that it is a real picture).
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 160, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeFile writes data as name into a temp dir and returns its path.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pickFiles puts files into the composer's file input, as the file chooser
// does (the change event fires).
func (p *page) pickFiles(paths ...string) {
	p.t.Helper()
	p.do("pick "+strings.Join(paths, ", "), chromedp.SetUploadFiles(chromedp.CSS("#composer-file"), paths))
}

// pressKey presses a key that types nothing (Escape) in the focused element.
func (p *page) pressKey(key string, vk int64) {
	p.t.Helper()
	ev := input.DispatchKeyEventParams{Key: key, Code: key, WindowsVirtualKeyCode: vk, NativeVirtualKeyCode: vk}
	down, up := ev, ev
	down.Type, up.Type = input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp
	p.do("press "+key, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, e := range []input.DispatchKeyEventParams{down, up} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, e); err != nil {
				return err
			}
		}
		return nil
	}))
}

// evalAwait evaluates an expression whose value is a promise, and decodes
// what it resolves to.
func evalAwait[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.fail("evaluate "+expr, err)
	}
	return v
}

// waitUploadsReady waits until n files are uploaded and Send is allowed.
func (p *page) waitUploadsReady(n int) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%d uploads ready", n), fmt.Sprintf(`document.querySelectorAll('[data-testid=upload-item][data-state=done]').length === %d &&
	  !document.querySelector('[data-testid=upload-item][data-state=uploading]') && !document.querySelector('#composer-send').disabled`, n))
}

// waitAttached waits for an acknowledged message carrying an attachment
// named name (a picture or a file) and returns the message's id.
func (p *page) waitAttached(name string) int64 {
	p.t.Helper()
	find := fmt.Sprintf(`[...document.querySelectorAll('#message-list [data-testid=message][data-state=acked]')].filter((m) =>
	  [...m.querySelectorAll('[data-testid=attachment-thumbnail]')].some((i) => i.alt === %[1]s) ||
	  [...m.querySelectorAll('[data-testid=attachment-name]')].some((n) => n.textContent === %[1]s))`, jsString(name))
	p.waitFor("a message with "+name, find+".length > 0")
	return int64(eval[float64](p, fmt.Sprintf(`Number((%s)[0].dataset.messageId)`, find)))
}

// waitThumbnail waits until the message's thumbnail has loaded at w×h
// pixels (the server's thumbnail, not the original).
func (p *page) waitThumbnail(msgID int64, w, h int) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("the %d×%d thumbnail", w, h), fmt.Sprintf(`(() => { const i = document.querySelector(%q);
	  return i && i.complete && i.naturalWidth === %d && i.naturalHeight === %d && /\/thumbnail\//.test(i.src); })()`,
		msgSel(msgID, "[data-testid=attachment-thumbnail]"), w, h))
}

// openPicture clicks the message's picture and waits for the full image in
// the viewer, returning its natural size.
func (p *page) openPicture(msgID int64) (w, h int) {
	p.t.Helper()
	p.clickCSS(msgSel(msgID, "[data-testid=attachment-image]"))
	p.waitFor("the full picture", `(() => { const d = document.querySelector('[data-testid=lightbox]'), i = d.querySelector('[data-testid=lightbox-image]');
	  return d.open && i.complete && i.naturalWidth > 0 && !/\/thumbnail\//.test(i.src); })()`)
	size := eval[[]int](p, `(() => { const i = document.querySelector('[data-testid=lightbox-image]'); return [i.naturalWidth, i.naturalHeight]; })()`)
	return size[0], size[1]
}

// TestConsole_AttachButton: Alice attaches a PNG with the 📎 button (a real
// file chooser, intercepted) and sends it with a caption; Bob's console
// shows the server's thumbnail in the bubble, its room kept from the
// message's width and height, and a click opens the full picture in a
// viewer that the close button and Escape both close.
func TestConsole_AttachButton(t *testing.T) {
	sc := newAttachScene(t)
	a, b := sc.a, sc.b
	path := writeFile(t, "sunset.png", pngBytes(t, 640, 480))

	// The button opens the browser's file chooser for the composer's input.
	if _, err := chromedp.Call(a.ctx, cdppage.SetInterceptFileChooserDialog, cdppage.SetInterceptFileChooserDialogParams{Enabled: true}); err != nil {
		t.Fatalf("intercept the file chooser: %v", err)
	}
	chooser := make(chan *cdppage.EventFileChooserOpened, 1)
	if err := chromedp.Listen(a.ctx, func(ev any) {
		if e, ok := ev.(*cdppage.EventFileChooserOpened); ok {
			select {
			case chooser <- e:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	a.click("composer-attach")
	select {
	case e := <-chooser:
		if e.Mode != cdppage.FileChooserOpenedModeSelectMultiple {
			t.Errorf("file chooser mode %q, want selectMultiple", e.Mode)
		}
		if _, err := chromedp.Call(a.ctx, dom.SetFileInputFiles, dom.SetFileInputFilesParams{Files: []string{path}, BackendNodeID: e.BackendNodeID}); err != nil {
			t.Fatalf("choose the file: %v", err)
		}
	case <-time.After(waitTimeout):
		a.fail("the file chooser", fmt.Errorf("the attach button opened no file chooser"))
	}
	a.waitUploadsReady(1)
	if got := eval[string](a, `document.querySelector('[data-testid=upload-name]').textContent + ' ' + document.querySelector('[data-testid=upload-size]').textContent`); !strings.HasPrefix(got, "sunset.png ") {
		t.Errorf("pending upload shows %q", got)
	}
	a.shot("upload-ready")
	a.typeInto("composer-input", "Look at this")
	a.pressEnter("composer-input")
	a.waitFor("the tray to empty", `document.querySelector('#composer-uploads').hidden`)

	id := b.waitAttached("sunset.png")
	if got := a.waitAttached("sunset.png"); got != id {
		t.Errorf("alice sees the message as %d, bob as %d", got, id)
	}
	b.waitThumbnail(id, 320, 240)
	// The room the thumbnail takes was known before it loaded.
	if box := eval[[]int](b, fmt.Sprintf(`(() => { const i = document.querySelector(%q); return [i.getAttribute('width') | 0, i.getAttribute('height') | 0]; })()`,
		msgSel(id, "[data-testid=attachment-thumbnail]"))); box[0] != 240 || box[1] != 180 {
		t.Errorf("thumbnail box %v, want 240×180 (640×480 within 240)", box)
	}
	if got := eval[string](b, fmt.Sprintf(`document.querySelector(%q).textContent`, msgSel(id, "[data-testid=message-content]"))); got != "Look at this" {
		t.Errorf("caption %q", got)
	}
	b.shot("sees-thumbnail")

	if w, h := b.openPicture(id); w != 640 || h != 480 {
		t.Errorf("full picture %d×%d, want 640×480", w, h)
	}
	b.shot("lightbox")
	b.click("lightbox-close")
	b.waitFor("the viewer to close", `!document.querySelector('[data-testid=lightbox]').open`)

	b.openPicture(id)
	b.pressKey("Escape", 27)
	b.waitFor("Escape to close the viewer", `!document.querySelector('[data-testid=lightbox]').open`)
}

// TestConsole_AttachByDrop: a file dropped on the open conversation (a
// synthetic drop whose DataTransfer holds a File made in the page) is
// uploaded and sent alone, without text; the bubble shows only the
// picture, and Bob's conversation list names the file as the preview.
func TestConsole_AttachByDrop(t *testing.T) {
	sc := newAttachScene(t)
	a, b := sc.a, sc.b
	data := base64.StdEncoding.EncodeToString(pngBytes(t, 200, 100))

	eval[bool](a, fmt.Sprintf(`(() => {
	  const bytes = Uint8Array.from(atob(%q), (c) => c.charCodeAt(0));
	  const dt = new DataTransfer();
	  dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
	  const target = document.querySelector('#message-scroller');
	  const fire = (type) => target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
	  fire('dragenter');
	  fire('dragover');
	  window.__dropHint = document.querySelector('#conversation-pane').classList.contains('drop-target');
	  window.__dropTaken = !fire('drop'); // false from dispatchEvent: the console took the drop
	  window.__dropHintAfter = document.querySelector('#conversation-pane').classList.contains('drop-target');
	  return true;
	})()`, data))
	if hint := eval[[]bool](a, `[window.__dropHint, window.__dropTaken, window.__dropHintAfter]`); !hint[0] || !hint[1] || hint[2] {
		t.Errorf("drop hint while dragging, drop taken, hint after: %v, want [true true false]", hint)
	}
	a.waitUploadsReady(1)
	a.click("composer-send")

	id := b.waitAttached("dropped.png")
	b.waitThumbnail(id, 200, 100) // smaller than 320×320: as it is
	only := eval[map[string]any](b, fmt.Sprintf(`(() => { const m = document.querySelector(%q);
	  return { onlyFiles: m.querySelector('.msg-bubble').classList.contains('attachments-only'),
	    textHidden: m.querySelector('[data-testid=message-content]').hidden,
	    text: m.querySelector('[data-testid=message-content]').textContent }; })()`, msgSel(id, "")))
	if only["onlyFiles"] != true || only["textHidden"] != true || only["text"] != "" {
		t.Errorf("a message of only a picture renders as %v", only)
	}
	b.waitFor("the list preview", fmt.Sprintf(`document.querySelector('[data-testid=conversation-item][data-conversation-id="%d"] [data-testid=conversation-preview]').textContent.includes('📎 dropped.png')`, sc.convID))
	b.shot("picture-only")
}

// TestConsole_AttachByPaste: a picture pasted into the composer (a paste
// event whose clipboardData holds a File) is attached, and the text
// already typed stays as it was; message and picture go out together.
func TestConsole_AttachByPaste(t *testing.T) {
	sc := newAttachScene(t)
	a, b := sc.a, sc.b
	data := base64.StdEncoding.EncodeToString(pngBytes(t, 400, 400))

	a.typeInto("composer-input", "Screenshot:")
	taken := eval[bool](a, fmt.Sprintf(`(() => {
	  const bytes = Uint8Array.from(atob(%q), (c) => c.charCodeAt(0));
	  const dt = new DataTransfer();
	  dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
	  const input = document.querySelector('#composer-input');
	  return !input.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
	})()`, data))
	if !taken {
		t.Error("the console did not take the paste")
	}
	a.waitUploadsReady(1)
	if got := eval[string](a, `document.querySelector('#composer-input').value`); got != "Screenshot:" {
		t.Errorf("composer holds %q after the paste", got)
	}
	a.pressEnter("composer-input")

	id := b.waitAttached("image.png")
	b.waitThumbnail(id, 320, 320)
	if got := eval[string](b, fmt.Sprintf(`document.querySelector(%q).textContent`, msgSel(id, "[data-testid=message-content]"))); got != "Screenshot:" {
		t.Errorf("text %q", got)
	}
}

// TestConsole_UploadProgress: with uploads throttled to 1 MB/s, a 3 MB
// file shows its progress bar and a percentage that grows while Send is
// disabled; a second file removed while it uploads is gone (its upload
// stopped); a file the server refuses shows the server's detail and does
// not hold Send back; the message carries only the file that made it.
func TestConsole_UploadProgress(t *testing.T) {
	sc := newAttachScene(t)
	a, b := sc.a, sc.b
	e := sc.e
	e.watch.expect("status of 400") // the refused picture below

	big := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	bigPath := writeFile(t, "big.bin", big)
	otherPath := writeFile(t, "other.bin", big[:2<<20])
	brokenPath := writeFile(t, "broken.png", append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("not a picture "), 100)...))

	if _, err := chromedp.Call(a.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(a.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{URLPattern: e.s.URL + "/api/uploads/*", UploadThroughput: 1 << 20, DownloadThroughput: -1}},
	}); err != nil {
		t.Fatalf("throttle uploads: %v", err)
	}
	eval[bool](a, `(() => {
	  window.__progress = [];
	  new MutationObserver(() => {
	    const el = document.querySelector('[data-testid=upload-item]');
	    if (el && el.dataset.state === 'uploading') window.__progress.push(Number(el.dataset.progress));
	  }).observe(document.querySelector('#composer-uploads'), { attributes: true, subtree: true, attributeFilter: ['data-progress'] });
	  return true;
	})()`)
	a.pickFiles(bigPath)
	a.pickFiles(otherPath)
	a.waitFor("progress under way", `(() => { const el = document.querySelector('[data-testid=upload-item]');
	  const pct = Number(el.dataset.progress);
	  return el.dataset.state === 'uploading' && pct > 0 && pct < 100 && !el.querySelector('[data-testid=upload-progress]').hidden &&
	    el.querySelector('[data-testid=upload-progress]').value === pct && /^\d+%$/.test(el.querySelector('[data-testid=upload-percent]').textContent) &&
	    document.querySelector('#composer-send').disabled; })()`)
	a.shot("uploading")

	// The second file goes away while it uploads.
	a.clickCSS(`[data-testid=upload-item]:nth-child(2) [data-testid=upload-remove]`)
	a.waitFor("one file left", `document.querySelectorAll('[data-testid=upload-item]').length === 1 &&
	  document.querySelector('[data-testid=upload-name]').textContent === 'big.bin'`)
	// Enter does not send while the file uploads.
	a.typeInto("composer-input", "The big one")
	a.pressEnter("composer-input")
	if n := eval[int](a, `document.querySelectorAll('#message-list [data-testid=message]').length`); n != 0 {
		t.Errorf("%d messages sent while uploading", n)
	}
	a.waitUploadsReady(1)
	seen := eval[[]float64](a, `window.__progress`)
	var between []float64
	for _, v := range seen {
		if v > 0 && v < 100 {
			between = append(between, v)
		}
	}
	if len(between) < 2 || between[0] >= between[len(between)-1] {
		t.Errorf("progress went %v: want at least two growing values between 0 and 100", seen)
	}
	t.Logf("progress seen: %v", seen)
	if _, err := chromedp.Call(a.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: []*network.Conditions{}}); err != nil {
		t.Fatalf("unthrottle: %v", err)
	}

	// The server refuses a broken picture: its detail shows, Send stays on.
	a.pickFiles(brokenPath)
	a.waitFor("the refusal", `(() => { const el = [...document.querySelectorAll('[data-testid=upload-item]')].find((x) => x.querySelector('[data-testid=upload-name]').textContent === 'broken.png');
	  return el && el.dataset.state === 'failed' && !el.querySelector('[data-testid=upload-error]').hidden &&
	    el.querySelector('[data-testid=upload-error]').textContent === 'This file looks like an image but is not a valid one.'; })()`)
	a.shot("upload-refused")
	if eval[bool](a, `document.querySelector('#composer-send').disabled`) {
		t.Error("a failed upload keeps Send disabled")
	}
	a.click("composer-send")
	id := b.waitAttached("big.bin")
	if n := eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, msgSel(id, "[data-testid=attachment-file]"))); n != 1 {
		t.Errorf("the message carries %d files, want only big.bin", n)
	}
	// The refused file stays, with its error, until removed.
	a.waitFor("only the refused file left", `document.querySelectorAll('[data-testid=upload-item]').length === 1 &&
	  document.querySelector('[data-testid=upload-item]').dataset.state === 'failed'`)
	a.click("upload-remove")
	a.waitFor("an empty tray", `document.querySelector('#composer-uploads').hidden`)
}

// TestConsole_FileChip: a file that is not a picture shows as a chip with
// its name and size ("12.3 KB"); the link downloads it, byte for byte,
// under its name.
func TestConsole_FileChip(t *testing.T) {
	sc := newAttachScene(t)
	a, b := sc.a, sc.b
	data := bytes.Repeat([]byte("quarterly numbers, all fine\n"), 450) // 12,600 bytes
	a.pickFiles(writeFile(t, "report.txt", data))
	a.waitUploadsReady(1)
	a.typeInto("composer-input", "the report")
	a.pressEnter("composer-input")

	id := b.waitAttached("report.txt")
	chip := eval[map[string]string](b, fmt.Sprintf(`(() => { const c = document.querySelector(%q);
	  return { name: c.querySelector('[data-testid=attachment-name]').textContent, size: c.querySelector('[data-testid=attachment-size]').textContent,
	    href: c.getAttribute('href'), download: c.getAttribute('download') }; })()`, msgSel(id, "[data-testid=attachment-file]")))
	if chip["name"] != "report.txt" || chip["size"] != "12.3 KB" || chip["download"] != "report.txt" || !strings.Contains(chip["href"], "/api/attachments/") {
		t.Errorf("chip %v", chip)
	}
	if n := eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, msgSel(id, "img"))); n != 0 {
		t.Errorf("%d images for a text file", n)
	}
	b.shot("file-chip")

	dir := t.TempDir()
	bcID := chromedp.FromContext(b.ctx).BrowserContextID
	if _, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, BrowserContextID: bcID, DownloadPath: dir,
	}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	b.clickCSS(msgSel(id, "[data-testid=attachment-file]"))
	deadline := time.Now().Add(waitTimeout)
	for {
		got, err := os.ReadFile(filepath.Join(dir, "report.txt"))
		if err == nil && bytes.Equal(got, data) {
			break
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("no report.txt downloaded (%d bytes read, err %v; folder: %v)", len(got), err, entries)
		}
		time.Sleep(pollEvery)
	}
	// The click downloaded: the console is still there.
	if got := eval[string](b, `location.hash`); got != fmt.Sprintf("#/c/%d", sc.convID) {
		t.Errorf("after the download the page is at %q", got)
	}
}

// TestConsole_PhotoLosesItsGPS: the fixture photo, uploaded through the
// console, comes back without its metadata: the bytes the signed URLs
// serve (the picture and its thumbnail, fetched from the page as an <img>
// would) contain no "Exif", no "GPS" and no "ConfabCam", and the picture
// is turned as its orientation said (48×64, not 64×48).
func TestConsole_PhotoLosesItsGPS(t *testing.T) {
	orig, err := os.ReadFile(gpsFixture)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Exif", "GPS", "ConfabCam"} {
		if !bytes.Contains(orig, []byte(s)) {
			t.Fatalf("the fixture has no %q: the test would prove nothing", s)
		}
	}
	sc := newAttachScene(t)
	a, b := sc.a, sc.b
	abs, err := filepath.Abs(gpsFixture)
	if err != nil {
		t.Fatal(err)
	}
	a.pickFiles(abs)
	a.waitUploadsReady(1)
	a.click("composer-send")

	id := b.waitAttached("gps.jpg")
	b.waitThumbnail(id, 48, 64)
	if w, h := b.openPicture(id); w != 48 || h != 64 {
		t.Errorf("the picture shows %d×%d, want 48×64 (turned by orientation 6)", w, h)
	}
	b.shot("gps-photo")
	for _, which := range []string{"[data-testid=lightbox-image]", msgSel(id, "[data-testid=attachment-thumbnail]")} {
		got := evalAwait[map[string]any](b, fmt.Sprintf(`(async () => {
		  const src = document.querySelector(%q).src;
		  const res = await fetch(src, { credentials: 'omit' });
		  const bytes = new Uint8Array(await res.arrayBuffer());
		  const text = Array.from(bytes, (c) => String.fromCharCode(c)).join('');
		  return { status: res.status, type: res.headers.get('Content-Type'), size: bytes.length, jpeg: bytes[0] === 0xff && bytes[1] === 0xd8,
		    exif: text.includes('Exif'), gps: text.includes('GPS'), camera: text.includes('ConfabCam'), signed: /[?&]sig=/.test(src) };
		})()`, which))
		if got["status"] != float64(200) || got["size"] == float64(0) || got["signed"] != true {
			t.Errorf("%s: %v", which, got)
		}
		for _, k := range []string{"exif", "gps", "camera"} {
			if got[k] != false {
				t.Errorf("%s still holds %s: %v", which, k, got)
			}
		}
		t.Logf("%s: %v", which, got)
	}
}
