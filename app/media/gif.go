package media

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"io"
)

// GIF block introducers.
const (
	gifExtension       = 0x21
	gifImageDescriptor = 0x2C
	gifTrailer         = 0x3B
)

// decodeGIF checks a GIF's pixel count, then decodes all its frames.
//
// gif.DecodeAll allocates every frame before it returns, so the count has to
// be known first. gif.DecodeConfig only reads the logical screen, and the
// screen size times a frame count would over-count a GIF whose later frames
// are small patches, so gifPixels walks the block structure instead: it
// reads each image descriptor's size and skips the compressed data by its
// sub-block lengths, without decompressing anything. That costs one pass
// over the bytes (already bounded by the upload limit) and no allocation per
// frame, and it stops as soon as the sum passes the limit.
func decodeGIF(r io.Reader, src io.Seeker, maxPixels int64) (*gif.GIF, error) {
	br := bufio.NewReader(r)
	if err := checkConfig("gif", gif.DecodeConfig, br, maxPixels); err != nil {
		return nil, err
	}
	if err := rewind(src); err != nil {
		return nil, err
	}
	br.Reset(r)
	px, w, h, err := gifPixels(br, maxPixels)
	if err != nil {
		return nil, err
	}
	if px > maxPixels {
		return nil, fmt.Errorf("%w: gif is %d×%d with frames of more than %d pixels in all", ErrTooManyPixels, w, h, max(maxPixels, 0))
	}
	if err := rewind(src); err != nil {
		return nil, err
	}
	br.Reset(r)
	g, err := gif.DecodeAll(br)
	if err != nil {
		return nil, fmt.Errorf("%w: decode gif: %v", ErrBadImage, err)
	}
	return g, nil
}

var errGIFStructure = errors.New("malformed block structure")

// gifPixels returns the sum of the frames' pixel counts of the GIF read from
// r, and its logical screen size. It stops reading once the sum passes
// limit. It decompresses nothing.
func gifPixels(r *bufio.Reader, limit int64) (px int64, w, h int, err error) {
	bad := func(e error) (int64, int, int, error) {
		return 0, 0, 0, fmt.Errorf("%w: read gif frames: %v", ErrBadImage, e)
	}
	var hdr [13]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return bad(err)
	}
	w = int(binary.LittleEndian.Uint16(hdr[6:]))
	h = int(binary.LittleEndian.Uint16(hdr[8:]))
	if flags := hdr[10]; flags&0x80 != 0 {
		if _, err := r.Discard(3 << ((flags & 7) + 1)); err != nil {
			return bad(err)
		}
	}
	frames := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && frames > 0 {
				// A missing trailer is for the decoder to judge; the
				// frames are all counted.
				return px, w, h, nil
			}
			return bad(err)
		}
		switch c {
		case gifExtension:
			if _, err := r.ReadByte(); err != nil { // label
				return bad(err)
			}
			if err := skipSubBlocks(r); err != nil {
				return bad(err)
			}
		case gifImageDescriptor:
			var d [9]byte
			if _, err := io.ReadFull(r, d[:]); err != nil {
				return bad(err)
			}
			fw := int64(binary.LittleEndian.Uint16(d[4:]))
			fh := int64(binary.LittleEndian.Uint16(d[6:]))
			px += fw * fh
			frames++
			if px > limit {
				return px, w, h, nil
			}
			if flags := d[8]; flags&0x80 != 0 {
				if _, err := r.Discard(3 << ((flags & 7) + 1)); err != nil {
					return bad(err)
				}
			}
			if _, err := r.ReadByte(); err != nil { // LZW minimum code size
				return bad(err)
			}
			if err := skipSubBlocks(r); err != nil {
				return bad(err)
			}
		case gifTrailer:
			return px, w, h, nil
		default:
			return bad(fmt.Errorf("%w: unknown block 0x%02x", errGIFStructure, c))
		}
	}
}

// skipSubBlocks skips a chain of data sub-blocks up to its empty terminator.
func skipSubBlocks(r *bufio.Reader) error {
	for {
		n, err := r.ReadByte()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if _, err := r.Discard(int(n)); err != nil {
			return err
		}
	}
}

// firstFrame renders a GIF's first frame on its logical screen, as a viewer
// shows it before the animation moves: parts the frame does not cover stay
// transparent.
func firstFrame(g *gif.GIF) image.Image {
	f := g.Image[0]
	screen := image.Rect(0, 0, g.Config.Width, g.Config.Height)
	if f.Bounds() == screen {
		return f
	}
	canvas := image.NewNRGBA(screen)
	draw.Draw(canvas, f.Bounds(), f, f.Bounds().Min, draw.Over)
	return canvas
}
