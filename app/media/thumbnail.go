package media

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
)

// Thumbnail limits and encoding.
const (
	thumbMax     = 320
	thumbQuality = 80
)

// thumbnail scales img to fit within thumbMax×thumbMax, keeping its aspect
// and never enlarging it, and encodes it as JPEG, or as PNG when img has
// any pixel that is not opaque, so transparency is not painted black.
//
// CatmullRom rather than ApproxBiLinear: a thumbnail shrinks a photo ten
// times or more, and ApproxBiLinear then samples only a few source pixels
// per output pixel and skips the rest, which shows as jagged edges and moiré
// on screenshots and text. CatmullRom weighs every source pixel under its
// kernel. It costs more, but the work is bounded by the pixel limit already
// checked, and it runs once per upload.
func thumbnail(img image.Image) (*Thumbnail, error) {
	b := img.Bounds()
	w, h := thumbSize(b.Dx(), b.Dy())
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if w == b.Dx() && h == b.Dy() {
		draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
	} else {
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	}

	var buf bytes.Buffer
	th := &Thumbnail{Width: w, Height: h}
	if opaque(img) {
		th.MIME = MIMEJPEG
		if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: thumbQuality}); err != nil {
			return nil, fmt.Errorf("media: encode thumbnail: %w", err)
		}
	} else {
		th.MIME = MIMEPNG
		if err := png.Encode(&buf, dst); err != nil {
			return nil, fmt.Errorf("media: encode thumbnail: %w", err)
		}
	}
	th.Data = buf.Bytes()
	return th, nil
}

// thumbSize fits w×h within thumbMax×thumbMax, keeping the aspect (rounded
// to the nearest pixel, never below 1) and never enlarging.
func thumbSize(w, h int) (int, int) {
	if w <= thumbMax && h <= thumbMax {
		return w, h
	}
	if w >= h {
		return thumbMax, max(1, (h*thumbMax+w/2)/w)
	}
	return max(1, (w*thumbMax+h/2)/h), thumbMax
}

// opaque reports whether every pixel of img is opaque. The image types the
// decoders return all answer this themselves; for any other, it is assumed
// not to be, and the thumbnail is a PNG, which is only larger.
func opaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}
