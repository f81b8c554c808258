package api_test

import (
	"bytes"
	"context"
	"image"
	_ "image/jpeg"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/media/mediatest"
	"github.com/confab/confab/app/server/servertest"
)

// get fetches path (a signed URL, or with token) with extra headers.
func get(t *testing.T, s *servertest.Server, path, token string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// uploadMultipart uploads data as the multipart field "file" named name.
func uploadMultipart(t *testing.T, s *servertest.Server, token, name string, data []byte) servertest.Response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/uploads/", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

type attachmentJSON struct {
	ID           int64   `json:"id"`
	Name         string  `json:"name"`
	MIME         string  `json:"mime"`
	Size         int64   `json:"size"`
	Width        int     `json:"width"`
	Height       int     `json:"height"`
	URL          string  `json:"url"`
	ThumbnailURL *string `json:"thumbnail_url"`
}

// sendAttached sends uploads to conv and returns the message's attachments.
func sendAttached(t *testing.T, s *servertest.Server, u servertest.User, conv int64, content string, ids ...int64) []attachmentJSON {
	t.Helper()
	r := s.Do(t, http.MethodPost, p("/api/conversations/%d/messages/", conv), u.Access, map[string]any{"content": content, "attachment_ids": ids})
	wantStatus(t, r, http.StatusCreated)
	var m struct {
		Attachments []attachmentJSON `json:"attachments"`
	}
	r.JSON(t, &m)
	wantMessage(t, r.Map(t))
	return m.Attachments
}

// A photo with GPS tags is stored without them, upright, with a
// thumbnail; its participants read it through a signed URL, with Range
// requests and ETags; the copy every participant gets has no metadata.
func TestAttachments_PhotoStrippedAndServed(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	conv := s.Conversation(t, ann, bob)
	photo := mediatest.JPEGWithGPS(640, 480, 6)
	for _, b := range []string{"GPS", "ConfabCam"} {
		if !bytes.Contains(photo, []byte(b)) {
			t.Fatalf("the test photo has no %q", b)
		}
	}
	r := uploadMultipart(t, s, ann.Access, "IMG_0001.jpg", photo)
	wantStatus(t, r, http.StatusCreated)
	up := r.Map(t)
	wantKeys(t, "upload", up, "id", "name", "mime", "size", "sha256", "width", "height", "thumbnail")
	if up["mime"] != "image/jpeg" || up["width"] != 480.0 || up["height"] != 640.0 || up["name"] != "IMG_0001.jpg" {
		t.Errorf("upload = %v, want an upright 480×640 image/jpeg", up)
	}
	if th, _ := up["thumbnail"].(map[string]any); th["width"] != 240.0 || th["height"] != 320.0 {
		t.Errorf("thumbnail = %v, want 240×320", up["thumbnail"])
	}
	as := sendAttached(t, s, ann, conv, "", int64(up["id"].(float64)))
	if len(as) != 1 || as[0].ThumbnailURL == nil || !strings.HasPrefix(as[0].URL, "/api/attachments/") {
		t.Fatalf("attachments = %+v", as)
	}

	// Bob reads it through its signed URL, with no token at all.
	resp, body := get(t, s, as[0].URL, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", as[0].URL, resp.StatusCode, body)
	}
	for _, b := range []string{"Exif", "GPS", "ConfabCam"} {
		if bytes.Contains(body, []byte(b)) {
			t.Errorf("the served photo still holds %q", b)
		}
	}
	img, format, err := image.Decode(bytes.NewReader(body))
	if err != nil || format != "jpeg" || img.Bounds().Dx() != 480 || img.Bounds().Dy() != 640 {
		t.Errorf("served photo: %v %s %v, want a 480×640 jpeg", err, format, img.Bounds())
	}
	h := resp.Header
	for k, want := range map[string]string{"Content-Type": "image/jpeg", "X-Content-Type-Options": "nosniff",
		"Cache-Control": "private, max-age=3600", "Content-Security-Policy": "default-src 'none'; sandbox"} {
		if h.Get(k) != want {
			t.Errorf("%s: %q, want %q", k, h.Get(k), want)
		}
	}
	if !strings.HasPrefix(h.Get("Content-Disposition"), "inline") || h.Get("ETag") == "" {
		t.Errorf("Content-Disposition %q, ETag %q", h.Get("Content-Disposition"), h.Get("ETag"))
	}
	// A Range request gets that range; an ETag it has gets 304.
	rr, part := get(t, s, as[0].URL, "", "Range", "bytes=0-99")
	if rr.StatusCode != http.StatusPartialContent || !bytes.Equal(part, body[:100]) {
		t.Errorf("range: %d, %d bytes", rr.StatusCode, len(part))
	}
	if nm, _ := get(t, s, as[0].URL, "", "If-None-Match", h.Get("ETag")); nm.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", nm.StatusCode)
	}
	// The thumbnail too; and with an access token instead of a signature.
	if tr, tb := get(t, s, *as[0].ThumbnailURL, ""); tr.StatusCode != http.StatusOK || tr.Header.Get("Content-Type") != "image/jpeg" || len(tb) == 0 {
		t.Errorf("thumbnail: %d %s", tr.StatusCode, tr.Header.Get("Content-Type"))
	}
	path, _, _ := strings.Cut(as[0].URL, "?")
	if br, _ := get(t, s, path, bob.Access); br.StatusCode != http.StatusOK {
		t.Errorf("GET with bob's token: %d", br.StatusCode)
	}
	if nr, _ := get(t, s, path, ""); nr.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET without token or signature: %d, want 401", nr.StatusCode)
	}
}

// HTML or SVG uploaded as a "photo" is sniffed as what it is, and served
// only as a download under a policy that runs nothing.
func TestAttachments_HTMLAndSVGNeverRun(t *testing.T) {
	s := servertest.Start(t)
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	conv := s.Conversation(t, ann, bob)
	for _, tc := range []struct{ name, data string }{
		{"cute.jpg", `<html><body><script>fetch("/api/users/me/")</script></body></html>`},
		{"logo.svg", `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>`},
	} {
		id := s.Upload(t, ann, tc.name, []byte(tc.data))
		as := sendAttached(t, s, ann, conv, tc.name, id)
		if as[0].MIME == "image/jpeg" || strings.HasPrefix(as[0].MIME, "image/svg") || as[0].ThumbnailURL != nil {
			t.Errorf("%s stored as %q (thumbnail %v)", tc.name, as[0].MIME, as[0].ThumbnailURL)
		}
		resp, body := get(t, s, as[0].URL, "")
		h := resp.Header
		if resp.StatusCode != http.StatusOK || string(body) != tc.data {
			t.Errorf("%s: %d, %q", tc.name, resp.StatusCode, body)
		}
		if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || h.Get("Content-Security-Policy") != "default-src 'none'; sandbox" ||
			h.Get("X-Content-Type-Options") != "nosniff" || strings.Contains(h.Get("Content-Type"), "svg") {
			t.Errorf("%s served with %v", tc.name, h)
		}
	}
}

// Each limit is a setting with its own status and code.
func TestAttachments_Limits(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.MaxUploadBytes = 10_000
		c.UploadQuotaBytes = 25_000
		c.UploadsPerMinute = 6
		c.UploadMaxPixels = 100_000
	}))
	ann := s.Register(t, "ann")
	for _, tc := range []struct {
		name   string
		data   []byte
		status int
		code   string
	}{
		{"big.bin", bytes.Repeat([]byte{7}, 10_001), http.StatusRequestEntityTooLarge, "too_large"},
		{"huge.png", mediatest.PNGHeader(1000, 1000), http.StatusBadRequest, "image_too_large"},
		{"broken.jpg", mediatest.JPEGWithGPS(64, 48, 1)[:300], http.StatusBadRequest, "invalid_image"},
		{"a.bin", bytes.Repeat([]byte{1}, 9_000), http.StatusCreated, ""},
		{"b.bin", bytes.Repeat([]byte{2}, 9_000), http.StatusCreated, ""},
		{"c.bin", bytes.Repeat([]byte{3}, 9_000), http.StatusRequestEntityTooLarge, "quota_exceeded"}, // 27,000 > 25,000
		{"d.bin", []byte("one more"), http.StatusTooManyRequests, "rate_limited"},                     // the seventh this minute
	} {
		r := s.Do(t, http.MethodPost, "/api/uploads/?name="+tc.name, ann.Access, tc.data)
		if r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.status)
			continue
		}
		if tc.code != "" {
			wantError(t, r, tc.status, tc.code)
		}
	}
	// A multipart body far past the limit is cut off while it is read,
	// with the same answer.
	wantError(t, uploadMultipart(t, s, s.Register(t, "cat").Access, "big.bin", bytes.Repeat([]byte{9}, 1_200_000)),
		http.StatusRequestEntityTooLarge, "too_large")
	// No file at all.
	r := uploadMultipart(t, s, s.Register(t, "bob").Access, "", nil)
	if r.Status != http.StatusCreated && r.Status != http.StatusBadRequest {
		t.Errorf("empty multipart file: %d %s", r.Status, r.Body)
	}
}

// An upload attaches once, only by its owner, only where its owner
// sends; a retried send returns the original with its attachments.
func TestAttachments_AttachRules(t *testing.T) {
	s := servertest.Start(t)
	ann, bob, cat := s.Register(t, "ann"), s.Register(t, "bob"), s.Register(t, "cat")
	conv := s.Conversation(t, ann, bob)
	other := s.Conversation(t, bob, cat)
	mine := s.Upload(t, ann, "a.txt", []byte("ann's"))
	bobs := s.Upload(t, bob, "b.txt", []byte("bob's"))
	send := func(u servertest.User, conv int64, body map[string]any) servertest.Response {
		return s.Do(t, http.MethodPost, p("/api/conversations/%d/messages/", conv), u.Access, body)
	}
	wantError(t, send(ann, conv, map[string]any{"content": "x", "attachment_ids": []int64{bobs}}), http.StatusBadRequest, "invalid")
	wantError(t, send(ann, conv, map[string]any{"content": "x", "attachment_ids": []int64{999999}}), http.StatusBadRequest, "invalid")
	wantError(t, send(ann, conv, map[string]any{"content": "x", "attachment_ids": make([]int64, 11)}), http.StatusBadRequest, "invalid")
	wantError(t, send(ann, conv, map[string]any{"content": "x", "attachment_ids": []int64{mine, mine}}), http.StatusBadRequest, "invalid")
	wantError(t, send(ann, other, map[string]any{"content": "x", "attachment_ids": []int64{mine}}), http.StatusNotFound, "not_found")
	wantError(t, send(ann, conv, map[string]any{"content": "  "}), http.StatusBadRequest, "invalid")

	first := send(ann, conv, map[string]any{"content": "", "attachment_ids": []int64{mine}, "client_id": "k1"})
	wantStatus(t, first, http.StatusCreated)
	again := send(ann, conv, map[string]any{"content": "", "attachment_ids": []int64{mine}, "client_id": "k1"})
	wantStatus(t, again, http.StatusOK)
	a, b := first.Map(t), again.Map(t)
	if a["id"] != b["id"] || len(b["attachments"].([]any)) != 1 {
		t.Errorf("retry = %v, want the original %v with its attachment", b, a)
	}
	// Attached once: not again, in a new message.
	r := send(ann, conv, map[string]any{"content": "again", "attachment_ids": []int64{mine}})
	wantError(t, r, http.StatusBadRequest, "invalid")
	if f := r.Map(t)["fields"].(map[string]any); f["attachment_ids"] == nil {
		t.Errorf("fields = %v, want attachment_ids", f)
	}
	// A sent upload goes with its message, not on its own.
	wantError(t, s.Do(t, http.MethodDelete, p("/api/uploads/%d/", mine), ann.Access, nil), http.StatusConflict, "conflict")
	// One not sent yet is taken back by its uploader, and is gone.
	draft := s.Upload(t, ann, "draft.txt", []byte("second thoughts"))
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/uploads/%d/", draft), ann.Access, nil), http.StatusNoContent)
	wantError(t, s.Do(t, http.MethodDelete, p("/api/uploads/%d/", draft), ann.Access, nil), http.StatusNotFound, "not_found")
	if r, _ := get(t, s, p("/api/attachments/%d/", draft), ann.Access); r.StatusCode != http.StatusNotFound {
		t.Errorf("a deleted upload: %d, want 404", r.StatusCode)
	}
	// An upload not attached yet is its owner's alone.
	if r, _ := get(t, s, p("/api/attachments/%d/", bobs), bob.Access); r.StatusCode != http.StatusOK {
		t.Errorf("owner reads own upload: %d", r.StatusCode)
	}
	if r, _ := get(t, s, p("/api/attachments/%d/", bobs), ann.Access); r.StatusCode != http.StatusNotFound {
		t.Errorf("someone else reads an unsent upload: %d, want 404", r.StatusCode)
	}
}

// A signed URL works until it expires, for that file and variant only.
func TestAttachments_SignedURLs(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	conv := s.Conversation(t, ann, bob)
	as := sendAttached(t, s, ann, conv, "two", s.Upload(t, ann, "a.png", pngImage(t, 30, 20)), s.Upload(t, ann, "b.txt", []byte("text")))
	a, b := as[0], as[1]
	if b.ThumbnailURL != nil {
		t.Errorf("a text file has a thumbnail URL: %v", *b.ThumbnailURL)
	}
	path, query, _ := strings.Cut(a.URL, "?")
	otherPath, _, _ := strings.Cut(b.URL, "?")
	for name, url := range map[string]string{
		"another file's signature":     otherPath + "?" + query,
		"the thumbnail's for the file": path + "?" + strings.SplitN(*a.ThumbnailURL, "?", 2)[1],
		"a changed expiry":             strings.Replace(a.URL, "exp=", "exp=9", 1),
		"a changed signature":          a.URL[:len(a.URL)-2] + "xx",
	} {
		r, body := get(t, s, url, "")
		if r.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte(`"invalid_signature"`)) {
			t.Errorf("%s: %d %s, want 403 invalid_signature", name, r.StatusCode, body)
		}
	}
	if r, _ := get(t, s, a.URL, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("fresh URL: %d", r.StatusCode)
	}
	clk.Advance(2*time.Hour + time.Second)
	if r, body := get(t, s, a.URL, ""); r.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("expired")) {
		t.Errorf("after two hours: %d %s, want 403 expired", r.StatusCode, body)
	}
	// A new read of the message gives a new URL that works (bob's access
	// token expired meanwhile too).
	login := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": bob.Username, "password": servertest.Password})
	wantStatus(t, login, http.StatusOK)
	list := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), login.Map(t)["access"].(string), nil)
	var page struct {
		Results []struct {
			Attachments []attachmentJSON `json:"attachments"`
		} `json:"results"`
	}
	list.JSON(t, &page)
	fresh := page.Results[len(page.Results)-1].Attachments[0].URL
	if r, _ := get(t, s, fresh, ""); fresh == a.URL || r.StatusCode != http.StatusOK {
		t.Errorf("refreshed URL %s: %d", fresh, r.StatusCode)
	}
}

// Uploads never sent go after the grace period; a deleted message's
// files go once nothing else holds them; the same bytes are kept once.
func TestAttachments_GarbageCollected(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.OnSQLite(), servertest.WithNow(clk.Now))
	ann, bob := s.Register(t, "ann"), s.Register(t, "bob")
	conv := s.Conversation(t, ann, bob)
	files := func() []string {
		t.Helper()
		var out []string
		filepath.WalkDir(s.Config.Files(), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(s.Config.Files(), path)
				out = append(out, rel)
			}
			return nil
		})
		return out
	}
	photo := pngImage(t, 50, 40)
	unsent := s.Upload(t, ann, "left.txt", []byte("never sent"))
	first := s.Upload(t, ann, "p1.png", photo)
	second := s.Upload(t, bob, "p2.png", photo) // the same bytes, another user
	m1 := s.SendAttached(t, ann, conv, "one", first)
	s.SendAttached(t, bob, conv, "two", second)
	if got := files(); len(got) != 3 { // the text, the photo and its thumbnail
		t.Fatalf("files = %v, want 3 (the photo kept once)", got)
	}
	collect := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, _, err := s.Attach.Collect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	collect()
	if r, _ := get(t, s, p("/api/attachments/%d/", unsent), ann.Access); r.StatusCode != http.StatusOK {
		t.Errorf("an upload within its grace period: %d", r.StatusCode)
	}
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", m1), ann.Access, nil), http.StatusNoContent)
	clk.Advance(24*time.Hour + time.Minute)
	collect() // the unsent upload goes, and lets go of its file
	if got := files(); len(got) != 3 {
		t.Errorf("files = %v: a file nothing holds goes only a grace period after it was let go of", got)
	}
	clk.Advance(24*time.Hour + time.Minute)
	collect()
	login := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": ann.Username, "password": servertest.Password})
	wantStatus(t, login, http.StatusOK)
	ann.Access = login.Map(t)["access"].(string)
	if r, _ := get(t, s, p("/api/attachments/%d/", unsent), ann.Access); r.StatusCode != http.StatusNotFound {
		t.Errorf("an upload past its grace period: %d, want 404", r.StatusCode)
	}
	if r, _ := get(t, s, p("/api/attachments/%d/", first), ann.Access); r.StatusCode != http.StatusNotFound {
		t.Errorf("a deleted message's attachment: %d, want 404", r.StatusCode)
	}
	if r, _ := get(t, s, p("/api/attachments/%d/", second), ann.Access); r.StatusCode != http.StatusOK {
		t.Errorf("the same photo in another message: %d, want 200", r.StatusCode)
	}
	if got := files(); len(got) != 2 {
		t.Errorf("files = %v, want the photo and its thumbnail only", got)
	}
}

// A file's name goes back in Content-Disposition percent-encoded: no name
// ends the header's parameter or adds another.
func TestAttachments_NameInHeaderIsEncoded(t *testing.T) {
	s := servertest.Start(t)
	ann := s.Register(t, "ann")
	id := s.Upload(t, ann, `report; filename="evil.html" été.txt`, []byte("text"))
	r, _ := get(t, s, p("/api/attachments/%d/", id), ann.Access)
	const want = `attachment; filename*=UTF-8''report%3B%20filename%3Devil.html%20%C3%A9t%C3%A9.txt` // quotes are dropped from names
	if got := r.Header.Get("Content-Disposition"); got != want {
		t.Errorf("Content-Disposition %q, want %q", got, want)
	}
}
