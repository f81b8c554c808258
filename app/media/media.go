package media

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
)

// MIME types of the four raster formats Process re-encodes.
const (
	MIMEJPEG = "image/jpeg"
	MIMEPNG  = "image/png"
	MIMEGIF  = "image/gif"
	MIMEWebP = "image/webp"
)

// DefaultMaxPixels is the pixel limit used when Limits.MaxPixels is zero:
// 50 megapixels, enough for a 48 MP phone photo. Decoding, orienting and
// thumbnailing an image holds roughly 12 bytes per pixel at its peak, so
// this allows about 600 MB per Process call in progress.
const DefaultMaxPixels = 50_000_000

// jpegQuality is the quality of re-encoded JPEGs: high enough that a
// re-encoded photo looks like the original at full size.
const jpegQuality = 90

// sniffLen is how many bytes net/http.DetectContentType looks at.
const sniffLen = 512

// Limits bound what Process accepts.
type Limits struct {
	// MaxPixels is the most pixels (width × height, summed over the frames
	// of an animated GIF) an image may have; read from its header before
	// anything is decoded. Zero means DefaultMaxPixels; a negative value
	// refuses every image.
	MaxPixels int64
}

// Info describes what Process wrote.
type Info struct {
	// MIME is sniffed from the bytes: "image/jpeg", "image/png",
	// "image/gif", "image/webp", or what net/http.DetectContentType says of
	// anything else ("application/pdf", "text/plain; charset=utf-8",
	// "application/octet-stream", ...).
	MIME string
	// Image is true for one of the four raster formats, re-encoded here:
	// the only kind Confab shows inline.
	Image bool
	// Width and Height are an image's, as shown (after its EXIF orientation
	// is applied); 0 for other files.
	Width, Height int
	// Size is the number of bytes written to dst.
	Size int64
	// SHA256 is the lowercase hex SHA-256 of the bytes written to dst.
	SHA256 string
	// Thumbnail is an image's thumbnail; nil for other files.
	Thumbnail *Thumbnail
}

// Thumbnail is a small rendition of an image, shown in the conversation
// before the full image is opened.
type Thumbnail struct {
	// MIME is "image/jpeg", or "image/png" when the image has transparency.
	MIME string
	// Width and Height fit within 320×320, aspect kept, never upscaled.
	Width, Height int
	// Data is the encoded thumbnail.
	Data []byte
}

var (
	// ErrTooManyPixels is returned by Process for an image whose header
	// claims more pixels than Limits.MaxPixels.
	ErrTooManyPixels = errors.New("media: image has too many pixels")
	// ErrBadImage is returned by Process for an upload whose bytes say it is
	// a JPEG, PNG, GIF or WebP but which is not a valid image of that format
	// (truncated, corrupt, or a kind Confab cannot re-encode, such as an
	// animated WebP).
	ErrBadImage = errors.New("media: not a valid image")
)

// Process reads an upload from the start of src and writes what Confab keeps
// of it to dst.
//
// The type is sniffed from the first bytes. An image (JPEG, PNG, GIF, WebP)
// has its pixel count checked against lim from its header alone, then is
// decoded and written without its metadata: JPEG and PNG re-encoded, a GIF
// re-encoded with its frames, delays and loop count, a WebP's container
// rewritten without its EXIF and XMP chunks. A JPEG's EXIF orientation is
// applied to its pixels first, so that a photo stays upright once the EXIF
// is gone. Anything else is copied to dst unchanged.
//
// Process returns ErrTooManyPixels for an image over lim.MaxPixels and
// ErrBadImage for one that does not decode; both are wrapped with detail, so
// test them with errors.Is. Any other error comes from reading src or
// writing dst. After an error dst may hold a partial write: discard it.
//
// Process is CPU-bound and takes no context: its work is bounded by the size
// of src, which callers must limit (MAX_UPLOAD_BYTES) before they spool the
// upload, and by lim.MaxPixels. Callers that run many at once should bound
// how many, since each may hold about 12 bytes per pixel at its peak.
func Process(src io.ReadSeeker, dst io.Writer, lim Limits) (Info, error) {
	maxPixels := lim.MaxPixels
	if maxPixels == 0 {
		maxPixels = DefaultMaxPixels
	}

	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return Info{}, fmt.Errorf("media: rewind upload: %w", err)
	}
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(src, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return Info{}, fmt.Errorf("media: read upload: %w", err)
	}
	head = head[:n]
	mime := sniff(head)
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return Info{}, fmt.Errorf("media: rewind upload: %w", err)
	}

	out := newHashWriter(dst)
	var info Info
	switch mime {
	case MIMEJPEG, MIMEPNG, MIMEGIF, MIMEWebP:
		info, err = processImage(mime, src, out, maxPixels)
	default:
		if _, err = io.Copy(out, src); err != nil {
			err = fmt.Errorf("media: copy upload: %w", err)
		}
	}
	if err != nil {
		return Info{}, err
	}
	info.MIME = mime
	info.Size = out.n
	info.SHA256 = hex.EncodeToString(out.h.Sum(nil))
	return info, nil
}

// Inline reports whether a stored file of this MIME type, as Process
// reported it, may be shown inline: one of the four raster formats Confab
// re-encodes. Everything else (HTML, SVG, PDF, ...) is served as a download,
// so a browser never renders uploaded markup or scripts on Confab's origin.
func Inline(mime string) bool {
	switch mime {
	case MIMEJPEG, MIMEPNG, MIMEGIF, MIMEWebP:
		return true
	}
	return false
}

// sniff names the type of an upload from its first bytes. WebP is checked
// here because DetectContentType only knows the "RIFF....WEBPVP" form; the
// decoder rejects anything that is not really a WebP. SVG is left to
// DetectContentType, which calls it text: it is markup that can carry
// scripts, never an image here.
func sniff(head []byte) string {
	if len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WEBP" {
		return MIMEWebP
	}
	return http.DetectContentType(head)
}

// processImage checks, decodes and writes one image of a sniffed format.
func processImage(mime string, src io.ReadSeeker, dst io.Writer, maxPixels int64) (Info, error) {
	// The decoders fold read errors into their own; readErr keeps the first
	// one, so that a failing disk is not reported as a bad image.
	rr := &readErr{r: src}
	info, err := decodeAndWrite(mime, rr, src, dst, maxPixels)
	if rr.err != nil {
		return Info{}, fmt.Errorf("media: read upload: %w", rr.err)
	}
	return info, err
}

// decodeAndWrite writes an image of a sniffed format to dst without its
// metadata and describes it. r reads src, which it rewinds between passes.
func decodeAndWrite(mime string, r io.Reader, src io.Seeker, dst io.Writer, maxPixels int64) (Info, error) {
	// shown is the picture as a viewer shows it: its size is the one Info
	// reports, and the thumbnail is made from it.
	var shown image.Image
	switch mime {
	case MIMEJPEG:
		img, err := decodeJPEG(r, src, maxPixels)
		if err != nil {
			return Info{}, err
		}
		if err := jpeg.Encode(dst, img, &jpeg.Options{Quality: jpegQuality}); err != nil {
			return Info{}, fmt.Errorf("media: write jpeg: %w", err)
		}
		shown = img

	case MIMEPNG:
		img, err := decodePNG(r, src, maxPixels)
		if err != nil {
			return Info{}, err
		}
		if err := png.Encode(dst, img); err != nil {
			return Info{}, fmt.Errorf("media: write png: %w", err)
		}
		shown = img

	case MIMEGIF:
		g, err := decodeGIF(r, src, maxPixels)
		if err != nil {
			return Info{}, err
		}
		if err := gif.EncodeAll(dst, g); err != nil {
			return Info{}, fmt.Errorf("media: write gif: %w", err)
		}
		shown = firstFrame(g)

	case MIMEWebP:
		img, err := rewriteWebP(r, dst, maxPixels)
		if err != nil {
			return Info{}, err
		}
		shown = img
	}

	th, err := thumbnail(shown)
	if err != nil {
		return Info{}, err
	}
	b := shown.Bounds()
	return Info{Image: true, Width: b.Dx(), Height: b.Dy(), Thumbnail: th}, nil
}

// decodePNG checks a PNG's size and decodes it.
func decodePNG(r io.Reader, src io.Seeker, maxPixels int64) (image.Image, error) {
	br := bufio.NewReader(r)
	if err := checkConfig("png", png.DecodeConfig, br, maxPixels); err != nil {
		return nil, err
	}
	if err := rewind(src); err != nil {
		return nil, err
	}
	br.Reset(r)
	img, err := png.Decode(br)
	if err != nil {
		return nil, fmt.Errorf("%w: decode png: %v", ErrBadImage, err)
	}
	return img, nil
}

// decodeJPEG checks a JPEG's size, decodes it and turns it upright.
func decodeJPEG(r io.Reader, src io.Seeker, maxPixels int64) (image.Image, error) {
	br := bufio.NewReader(r)
	if err := checkConfig("jpeg", jpeg.DecodeConfig, br, maxPixels); err != nil {
		return nil, err
	}
	if err := rewind(src); err != nil {
		return nil, err
	}
	br.Reset(r)
	orient := readOrientation(br)
	if err := rewind(src); err != nil {
		return nil, err
	}
	br.Reset(r)
	img, err := jpeg.Decode(br)
	if err != nil {
		return nil, fmt.Errorf("%w: decode jpeg: %v", ErrBadImage, err)
	}
	return orientImage(img, orient), nil
}

// checkConfig reads an image's header with decodeConfig and refuses it when
// its dimensions are empty or its pixel count is over maxPixels.
func checkConfig(format string, decodeConfig func(io.Reader) (image.Config, error), r io.Reader, maxPixels int64) error {
	cfg, err := decodeConfig(r)
	if err != nil {
		return fmt.Errorf("%w: read %s header: %v", ErrBadImage, format, err)
	}
	return checkPixels(format, cfg.Width, cfg.Height, maxPixels)
}

func checkPixels(format string, w, h int, maxPixels int64) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: %s header says %d×%d", ErrBadImage, format, w, h)
	}
	// Each side fits in 32 bits in all four formats, so the product cannot
	// overflow an int64.
	if px := int64(w) * int64(h); px > maxPixels {
		return fmt.Errorf("%w: %s is %d×%d, over the limit of %d pixels", ErrTooManyPixels, format, w, h, max(maxPixels, 0))
	}
	return nil
}

func rewind(s io.Seeker) error {
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("media: rewind upload: %w", err)
	}
	return nil
}

// hashWriter writes to w and keeps the size and SHA-256 of what it wrote.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newHashWriter(w io.Writer) *hashWriter {
	return &hashWriter{w: w, h: sha256.New()}
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	// Only what dst accepted counts: Size and SHA256 describe dst's bytes.
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// readErr passes reads through and keeps the first error that is not EOF.
type readErr struct {
	r   io.Reader
	err error
}

func (re *readErr) Read(p []byte) (int, error) {
	n, err := re.r.Read(p)
	if err != nil && err != io.EOF && re.err == nil {
		re.err = err
	}
	return n, err
}
