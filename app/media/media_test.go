package media_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/webp"

	"github.com/confab/confab/app/media"
	"github.com/confab/confab/app/media/mediatest"
)

var update = flag.Bool("update", false, "rewrite the files in testdata")

// mustProcess runs Process on data with lim and checks what every result
// must satisfy: Size and SHA256 describe exactly the bytes written.
func mustProcess(t *testing.T, data []byte, lim media.Limits) (media.Info, []byte) {
	t.Helper()
	var out bytes.Buffer
	info, err := media.Process(bytes.NewReader(data), &out, lim)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if info.Size != int64(out.Len()) {
		t.Errorf("Size = %d, wrote %d bytes", info.Size, out.Len())
	}
	sum := sha256.Sum256(out.Bytes())
	if want := hex.EncodeToString(sum[:]); info.SHA256 != want {
		t.Errorf("SHA256 = %s, want %s", info.SHA256, want)
	}
	if info.Image != (info.Thumbnail != nil) {
		t.Errorf("Image = %v but Thumbnail = %v", info.Image, info.Thumbnail)
	}
	if info.Image != media.Inline(info.MIME) {
		t.Errorf("Image = %v but Inline(%q) = %v", info.Image, info.MIME, media.Inline(info.MIME))
	}
	return info, out.Bytes()
}

// processErr runs Process on data and returns its error, which must not be
// nil.
func processErr(t *testing.T, data []byte, lim media.Limits) error {
	t.Helper()
	_, err := media.Process(bytes.NewReader(data), io.Discard, lim)
	if err == nil {
		t.Fatal("Process succeeded, want an error")
	}
	return err
}

// jpegMarkers lists the markers of the segments of a JPEG before its image
// data.
func jpegMarkers(t *testing.T, b []byte) []byte {
	t.Helper()
	var ms []byte
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			t.Fatalf("no marker at offset %d", i)
		}
		m := b[i+1]
		ms = append(ms, m)
		if m == 0xDA {
			break
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	return ms
}

var leaks = []string{"Exif", "GPS", mediatest.CameraMake, mediatest.CameraModel, mediatest.CameraSerial}

func TestProcess_JPEGLosesEXIFAndGPS(t *testing.T) {
	in := mediatest.JPEGWithGPS(64, 48, 6)
	for _, s := range leaks {
		if !bytes.Contains(in, []byte(s)) {
			t.Fatalf("the input lacks %q: the test would prove nothing", s)
		}
	}

	info, out := mustProcess(t, in, media.Limits{})

	if info.MIME != "image/jpeg" || !info.Image {
		t.Errorf("MIME, Image = %q, %v; want image/jpeg, true", info.MIME, info.Image)
	}
	for _, m := range jpegMarkers(t, out) {
		if m >= 0xE1 && m <= 0xEF {
			t.Errorf("output has an APP%d segment", m-0xE0)
		}
	}
	for _, s := range leaks {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("output contains %q", s)
		}
	}
	img, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	// Orientation 6: the stored 64×48 is shown 48×64.
	if b := img.Bounds(); b.Dx() != 48 || b.Dy() != 64 || info.Width != 48 || info.Height != 64 {
		t.Errorf("decoded %v, Info %d×%d; want 48×64", b, info.Width, info.Height)
	}
}

func TestProcess_JPEGOrientationIsAppliedToPixels(t *testing.T) {
	// Stored corners: Red top-left, Green top-right, Blue bottom-left,
	// Yellow bottom-right. want is where a viewer honouring the EXIF
	// orientation shows them: top-left, top-right, bottom-left,
	// bottom-right.
	R, G, B, Y := mediatest.Red, mediatest.Green, mediatest.Blue, mediatest.Yellow
	tests := []struct {
		orientation int
		name        string
		swapped     bool
		want        [4]color.NRGBA
	}{
		{1, "as stored", false, [4]color.NRGBA{R, G, B, Y}},
		{2, "mirrored", false, [4]color.NRGBA{G, R, Y, B}},
		{3, "turned 180", false, [4]color.NRGBA{Y, B, G, R}},
		{4, "upside down mirrored", false, [4]color.NRGBA{B, Y, R, G}},
		{5, "transposed", true, [4]color.NRGBA{R, B, G, Y}},
		{6, "turned clockwise", true, [4]color.NRGBA{B, R, Y, G}},
		{7, "transversed", true, [4]color.NRGBA{Y, G, B, R}},
		{8, "turned anticlockwise", true, [4]color.NRGBA{G, Y, R, B}},
		{0, "no tag", false, [4]color.NRGBA{R, G, B, Y}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, out := mustProcess(t, mediatest.JPEGWithGPS(64, 48, tt.orientation), media.Limits{})
			img, err := jpeg.Decode(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("output does not decode: %v", err)
			}
			w, h := 64, 48
			if tt.swapped {
				w, h = 48, 64
			}
			if b := img.Bounds(); b.Dx() != w || b.Dy() != h || info.Width != w || info.Height != h {
				t.Fatalf("decoded %v, Info %d×%d; want %d×%d", b, info.Width, info.Height, w, h)
			}
			// The middle of each quarter, away from JPEG's blur at the edges.
			at := [4]image.Point{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}}
			names := [4]string{"top-left", "top-right", "bottom-left", "bottom-right"}
			for i, p := range at {
				if got := img.At(p.X, p.Y); !near(got, tt.want[i]) {
					t.Errorf("%s = %v, want %v", names[i], color.NRGBAModel.Convert(got), tt.want[i])
				}
			}
		})
	}
}

// near reports whether two colours are within JPEG's error of each other.
func near(a, b color.Color) bool {
	ar, ag, ab, _ := a.RGBA()
	br, bg, bb, _ := b.RGBA()
	d := func(x, y uint32) bool { return max(x, y)-min(x, y) < 0x2000 }
	return d(ar, br) && d(ag, bg) && d(ab, bb)
}

func TestProcess_PNGLosesText(t *testing.T) {
	src := mediatest.Quadrants(20, 10)
	in := mediatest.PNGWithText(src, "Comment", "shot with "+mediatest.CameraMake)
	if !bytes.Contains(in, []byte("tEXt")) {
		t.Fatal("the input has no tEXt chunk")
	}

	info, out := mustProcess(t, in, media.Limits{})

	if info.MIME != "image/png" || info.Width != 20 || info.Height != 10 {
		t.Errorf("MIME %q %d×%d, want image/png 20×10", info.MIME, info.Width, info.Height)
	}
	for _, s := range []string{"tEXt", "Comment", mediatest.CameraMake} {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("output contains %q", s)
		}
	}
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	assertSamePixels(t, img, src)
}

func assertSamePixels(t *testing.T, got, want image.Image) {
	t.Helper()
	if got.Bounds() != want.Bounds() {
		t.Fatalf("bounds %v, want %v", got.Bounds(), want.Bounds())
	}
	b := want.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g := color.NRGBAModel.Convert(got.At(x, y))
			w := color.NRGBAModel.Convert(want.At(x, y))
			if g != w {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, w)
			}
		}
	}
}

func TestProcess_GIFKeepsAnimationLosesComment(t *testing.T) {
	tests := []struct {
		name      string
		loopCount int
	}{
		{"loops forever", 0},
		{"loops twice more", 2},
		{"plays once", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mediatest.GIFWithComment(10, 8, 3, tt.loopCount, "shot with "+mediatest.CameraMake)
			if !bytes.Contains(in, []byte(mediatest.CameraMake)) || !bytes.Contains(in, []byte("XMP DataXMP")) {
				t.Fatal("the input lacks its comment or XMP")
			}

			info, out := mustProcess(t, in, media.Limits{})

			if info.MIME != "image/gif" || info.Width != 10 || info.Height != 8 {
				t.Errorf("MIME %q %d×%d, want image/gif 10×8", info.MIME, info.Width, info.Height)
			}
			for _, s := range []string{mediatest.CameraMake, "XMP", "\x21\xFE"} {
				if bytes.Contains(out, []byte(s)) {
					t.Errorf("output contains %q", s)
				}
			}
			want, err := gif.DecodeAll(bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := gif.DecodeAll(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("output does not decode: %v", err)
			}
			if len(got.Image) != 3 || got.LoopCount != tt.loopCount {
				t.Fatalf("%d frames looping %d, want 3 looping %d", len(got.Image), got.LoopCount, tt.loopCount)
			}
			for i := range got.Image {
				if got.Delay[i] != want.Delay[i] {
					t.Errorf("frame %d delay %d, want %d", i, got.Delay[i], want.Delay[i])
				}
				assertSamePixels(t, got.Image[i], want.Image[i])
			}
		})
	}
}

func TestProcess_WebPLosesEXIFAndXMP(t *testing.T) {
	src := mediatest.Quadrants(64, 48)
	in := mediatest.WebPWithEXIF(src)
	for _, s := range []string{"EXIF", "XMP ", mediatest.UnknownWebPChunk, mediatest.CameraMake, mediatest.CameraSerial} {
		if !bytes.Contains(in, []byte(s)) {
			t.Fatalf("the input lacks %q", s)
		}
	}

	info, out := mustProcess(t, in, media.Limits{})

	if info.MIME != "image/webp" || info.Width != 64 || info.Height != 48 {
		t.Errorf("MIME %q %d×%d, want image/webp 64×48", info.MIME, info.Width, info.Height)
	}
	for _, s := range []string{"EXIF", "XMP ", mediatest.UnknownWebPChunk, mediatest.CameraMake, mediatest.CameraSerial, "GPS"} {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("output contains %q", s)
		}
	}
	if got := binary.LittleEndian.Uint32(out[4:8]); int(got) != len(out)-8 {
		t.Errorf("RIFF size %d, file is %d bytes", got, len(out))
	}
	if string(out[12:16]) != "VP8X" || out[20]&(1<<3|1<<2) != 0 {
		t.Errorf("VP8X flags %08b still announce EXIF or XMP", out[20])
	}
	// The image bitstream is kept byte for byte.
	if i := bytes.Index(in, []byte("VP8L")); !bytes.Contains(out, in[i:i+8+int(binary.LittleEndian.Uint32(in[i+4:]))]) {
		t.Error("the VP8L chunk was changed")
	}
	img, err := webp.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	assertSamePixels(t, img, src)
}

func TestProcess_ThumbnailFitsWithin320(t *testing.T) {
	tests := []struct {
		w, h, wantW, wantH int
	}{
		{1000, 750, 320, 240},
		{100, 50, 100, 50}, // never enlarged
		{50, 4000, 4, 320},
		{4000, 1, 320, 1}, // never 0
		{320, 320, 320, 320},
		{321, 320, 320, 319},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			img := image.NewGray(image.Rect(0, 0, tt.w, tt.h))
			var in bytes.Buffer
			if err := png.Encode(&in, img); err != nil {
				t.Fatal(err)
			}
			info, _ := mustProcess(t, in.Bytes(), media.Limits{})
			th := info.Thumbnail
			if th.Width != tt.wantW || th.Height != tt.wantH {
				t.Errorf("%d×%d: thumbnail %d×%d, want %d×%d", tt.w, tt.h, th.Width, th.Height, tt.wantW, tt.wantH)
			}
			if th.MIME != "image/jpeg" {
				t.Errorf("opaque image: thumbnail %s, want image/jpeg", th.MIME)
			}
			timg, err := jpeg.Decode(bytes.NewReader(th.Data))
			if err != nil {
				t.Fatalf("thumbnail does not decode: %v", err)
			}
			if b := timg.Bounds(); b.Dx() != th.Width || b.Dy() != th.Height {
				t.Errorf("thumbnail decodes to %v, says %d×%d", b, th.Width, th.Height)
			}
		})
	}
}

func TestProcess_TransparentImageGetsPNGThumbnail(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 400, 200))
	for i := range img.Pix {
		img.Pix[i] = 0xFF
	}
	// The left half see-through.
	for y := range 200 {
		for x := range 200 {
			img.SetNRGBA(x, y, color.NRGBA{})
		}
	}
	var in bytes.Buffer
	if err := png.Encode(&in, img); err != nil {
		t.Fatal(err)
	}

	info, _ := mustProcess(t, in.Bytes(), media.Limits{})

	th := info.Thumbnail
	if th.MIME != "image/png" || th.Width != 320 || th.Height != 160 {
		t.Fatalf("thumbnail %s %d×%d, want image/png 320×160", th.MIME, th.Width, th.Height)
	}
	timg, err := png.Decode(bytes.NewReader(th.Data))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, a := timg.At(40, 80).RGBA(); a != 0 {
		t.Errorf("left of the thumbnail has alpha %#x, want transparent", a)
	}
	if _, _, _, a := timg.At(280, 80).RGBA(); a != 0xFFFF {
		t.Errorf("right of the thumbnail has alpha %#x, want opaque", a)
	}
}

func TestProcess_RefusesDecompressionBomb(t *testing.T) {
	bigWebP := mediatest.WebPWithEXIF(mediatest.Quadrants(2, 2))
	// Claim a 16384×16384 canvas in VP8X.
	copy(bigWebP[24:30], []byte{0xFF, 0x3F, 0, 0xFF, 0x3F, 0})
	tests := []struct {
		name string
		data []byte
		lim  media.Limits
	}{
		{"png claiming 100000×100000", mediatest.PNGHeader(100000, 100000), media.Limits{}},
		{"png over a set limit", mediatest.PNGHeader(1001, 1000), media.Limits{MaxPixels: 1_000_000}},
		{"webp canvas claiming 16384×16384", bigWebP, media.Limits{}},
		{"gif whose frames add up", mediatest.GIFWithComment(100, 100, 50, 0, ""), media.Limits{MaxPixels: 100 * 100 * 49}},
		{"jpeg with a negative limit", mediatest.JPEGWithGPS(8, 8, 1), media.Limits{MaxPixels: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := processErr(t, tt.data, tt.lim)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, media.ErrTooManyPixels) {
				t.Fatalf("err = %v, want ErrTooManyPixels", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("refusing it allocated %d bytes", n)
			}
		})
	}
}

func TestProcess_GIFAtTheFrameLimitIsKept(t *testing.T) {
	in := mediatest.GIFWithComment(100, 100, 50, 0, "")
	info, _ := mustProcess(t, in, media.Limits{MaxPixels: 100 * 100 * 50})
	if !info.Image {
		t.Error("a GIF exactly at the limit was not kept as an image")
	}
}

func TestProcess_OtherFilesAreStoredAsSent(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		wantMIME string
	}{
		// Named photo.jpg by the client; the bytes say otherwise.
		{"html named .jpg", "<!DOCTYPE html><html><body><script>alert(document.cookie)</script>", "text/html; charset=utf-8"},
		{"svg with prolog", `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`, "text/xml; charset=utf-8"},
		{"svg without prolog", `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`, "text/plain; charset=utf-8"},
		{"pdf", "%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "application/pdf"},
		{"binary", "\x00\x01\x02\x03confab", "application/octet-stream"},
		{"empty", "", "text/plain; charset=utf-8"},
		{"longer than the sniffed bytes", strings.Repeat("chat log line\n", 100), "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, out := mustProcess(t, []byte(tt.data), media.Limits{})
			if info.MIME != tt.wantMIME {
				t.Errorf("MIME = %q, want %q", info.MIME, tt.wantMIME)
			}
			if info.Image || media.Inline(info.MIME) || info.Thumbnail != nil || info.Width != 0 || info.Height != 0 {
				t.Errorf("treated as an image: %+v", info)
			}
			if string(out) != tt.data {
				t.Errorf("stored %q, want the bytes as sent", out)
			}
		})
	}
}

func TestProcess_BrokenImagesAreRefused(t *testing.T) {
	jpg := mediatest.JPEGWithGPS(64, 48, 1)
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, mediatest.Quadrants(64, 48)); err != nil {
		t.Fatal(err)
	}
	gifData := mediatest.GIFWithComment(64, 48, 2, 0, "")
	webpData := mediatest.WebPWithEXIF(mediatest.Quadrants(64, 48))
	truncWebP := append([]byte{}, webpData[:40]...)

	tests := []struct {
		name string
		data []byte
	}{
		{"truncated jpeg", jpg[:len(jpg)/2]},
		{"jpeg header only", jpg[:4]},
		{"truncated png", pngBuf.Bytes()[:pngBuf.Len()/2]},
		{"png without image data", mediatest.PNGHeader(10, 10)},
		{"truncated gif", gifData[:len(gifData)/2]},
		{"truncated webp", truncWebP},
		{"png of zero pixels", mediatest.PNGHeader(0, 0)},
		{"riff webp with nothing inside", []byte("RIFF\x04\x00\x00\x00WEBP")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := processErr(t, tt.data, media.Limits{}); !errors.Is(err, media.ErrBadImage) {
				t.Errorf("err = %v, want ErrBadImage", err)
			}
		})
	}
}

func TestProcess_ReadsFromTheStart(t *testing.T) {
	in := mediatest.JPEGWithGPS(16, 16, 1)
	r := bytes.NewReader(in)
	if _, err := r.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	info, err := media.Process(r, io.Discard, media.Limits{})
	if err != nil || !info.Image {
		t.Fatalf("Process of a spooled file left at its end: %+v, %v", info, err)
	}
}

func TestProcess_ReportsAFailingWrite(t *testing.T) {
	for _, data := range [][]byte{mediatest.JPEGWithGPS(16, 16, 1), []byte("plain text")} {
		_, err := media.Process(bytes.NewReader(data), failingWriter{}, media.Limits{})
		if !errors.Is(err, errDiskFull) {
			t.Errorf("err = %v, want the writer's", err)
		}
	}
}

var errDiskFull = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestInline(t *testing.T) {
	tests := []struct {
		mime string
		want bool
	}{
		{"image/jpeg", true},
		{"image/png", true},
		{"image/gif", true},
		{"image/webp", true},
		{"image/svg+xml", false},
		{"text/html; charset=utf-8", false},
		{"text/xml; charset=utf-8", false},
		{"application/pdf", false},
		{"image/bmp", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := media.Inline(tt.mime); got != tt.want {
			t.Errorf("Inline(%q) = %v, want %v", tt.mime, got, tt.want)
		}
	}
}

// TestFixture_GPSJPEG checks testdata/gps.jpg, a phone photo taken sideways
// with its position, which browser tests upload. Run with -update to write
// it again.
func TestFixture_GPSJPEG(t *testing.T) {
	path := filepath.Join("testdata", "gps.jpg")
	if *update {
		if err := os.WriteFile(path, mediatest.JPEGWithGPS(64, 48, 6), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range leaks {
		if !bytes.Contains(in, []byte(s)) {
			t.Errorf("%s lacks %q", path, s)
		}
	}
	info, out := mustProcess(t, in, media.Limits{})
	if info.Width != 48 || info.Height != 64 {
		t.Errorf("%s is shown %d×%d, want 48×64 (orientation 6)", path, info.Width, info.Height)
	}
	for _, s := range leaks {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("stored %s contains %q", path, s)
		}
	}
}

// BenchmarkProcess_PhonePhoto measures a 12-megapixel photo taken sideways:
// decode, turn upright, re-encode and thumbnail.
func BenchmarkProcess_PhonePhoto(b *testing.B) {
	in := mediatest.JPEGWithGPS(4000, 3000, 6)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := media.Process(bytes.NewReader(in), io.Discard, media.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
