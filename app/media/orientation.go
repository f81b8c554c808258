package media

import (
	"bufio"
	"encoding/binary"
	"image"
	"image/draw"
	"io"
)

// JPEG markers the orientation reader walks past.
const (
	markerSOI  = 0xD8
	markerSOS  = 0xDA
	markerEOI  = 0xD9
	markerAPP1 = 0xE1
	markerTEM  = 0x01
	markerRST0 = 0xD0
	markerRST7 = 0xD7
)

// tagOrientation is the EXIF (TIFF) tag that says how the stored pixels are
// turned relative to how the picture should be shown.
const tagOrientation = 0x0112

// maxSegmentsBeforeScan bounds how many segments readOrientation reads
// before giving up: a camera writes a handful, and a file of thousands of
// tiny segments should not cost a scan of all of them.
const maxSegmentsBeforeScan = 256

// readOrientation returns the EXIF orientation (1 to 8) of the JPEG read
// from r, or 1 (as stored) when it has none or it cannot be read. It walks
// the segments before the image data, looks at the first APP1 segment that
// starts with "Exif\x00\x00", and reads tag 0x0112 from its IFD0. It never
// panics and reads at most the header segments, whatever r holds.
func readOrientation(r io.Reader) int {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	var m [2]byte
	if _, err := io.ReadFull(br, m[:]); err != nil || m[0] != 0xFF || m[1] != markerSOI {
		return 1
	}
	for range maxSegmentsBeforeScan {
		marker, ok := nextMarker(br)
		if !ok {
			return 1
		}
		switch {
		case marker == markerSOS || marker == markerEOI:
			// Image data starts: EXIF, if any, came before it.
			return 1
		case marker == markerTEM || (marker >= markerRST0 && marker <= markerRST7):
			// Standalone markers carry no length.
			continue
		}
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 1
		}
		n := int(binary.BigEndian.Uint16(l[:])) - 2
		if n < 0 {
			return 1
		}
		if marker != markerAPP1 {
			if _, err := br.Discard(n); err != nil {
				return 1
			}
			continue
		}
		// A segment is at most 65533 bytes, so this allocation is bounded.
		seg := make([]byte, n)
		if _, err := io.ReadFull(br, seg); err != nil {
			return 1
		}
		if len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return exifOrientation(seg[6:])
		}
		// Another APP1 (XMP, say): keep looking.
	}
	return 1
}

// nextMarker reads up to and including the next marker's code, skipping the
// fill bytes (0xFF) that may precede it.
func nextMarker(br *bufio.Reader) (byte, bool) {
	b, err := br.ReadByte()
	if err != nil || b != 0xFF {
		return 0, false
	}
	for {
		b, err = br.ReadByte()
		if err != nil {
			return 0, false
		}
		if b != 0xFF {
			return b, b != 0
		}
	}
}

// exifOrientation reads the orientation tag from IFD0 of a TIFF structure
// (the body of an EXIF APP1 segment). It returns 1 when the tag is absent,
// out of range, or the structure is malformed.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(tiff[2:4]) != 42 {
		return 1
	}
	// Offsets are uint32; compare them as uint64 so that a huge one cannot
	// wrap around on a 32-bit int.
	ifd := uint64(bo.Uint32(tiff[4:8]))
	if ifd+2 > uint64(len(tiff)) {
		return 1
	}
	count := uint64(bo.Uint16(tiff[ifd:]))
	entries := ifd + 2
	for i := range count {
		e := entries + 12*i
		if e+12 > uint64(len(tiff)) {
			return 1
		}
		if bo.Uint16(tiff[e:]) != tagOrientation {
			continue
		}
		// Type SHORT (3), count 1: the value sits in the first two bytes of
		// the value field, in the file's byte order.
		typ, n := bo.Uint16(tiff[e+2:]), bo.Uint32(tiff[e+4:])
		if typ != 3 || n != 1 {
			return 1
		}
		if v := int(bo.Uint16(tiff[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}

// orientImage turns img as EXIF orientation o says, so that the result is
// the picture as it should be shown. Orientations 5 to 8 swap width and
// height.
func orientImage(img image.Image, o int) image.Image {
	if o <= 1 || o > 8 {
		return img
	}
	// Convert once to RGBA, so the turn below is a copy of 4-byte pixels
	// instead of a call to At for each of them.
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	srcImg := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(srcImg, srcImg.Bounds(), img, b.Min, draw.Src)

	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dstImg := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		row := dstImg.Pix[y*dstImg.Stride:]
		for x := range dw {
			// (sx, sy) is the stored pixel shown at (x, y).
			var sx, sy int
			switch o {
			case 2: // mirrored left to right
				sx, sy = w-1-x, y
			case 3: // turned 180°
				sx, sy = w-1-x, h-1-y
			case 4: // mirrored top to bottom
				sx, sy = x, h-1-y
			case 5: // mirrored along the top-left to bottom-right diagonal
				sx, sy = y, x
			case 6: // stored turned 90° anticlockwise: show turned 90° clockwise
				sx, sy = y, h-1-x
			case 7: // mirrored along the top-right to bottom-left diagonal
				sx, sy = w-1-y, h-1-x
			case 8: // stored turned 90° clockwise: show turned 90° anticlockwise
				sx, sy = w-1-y, x
			}
			si := sy*srcImg.Stride + sx*4
			copy(row[x*4:x*4+4], srcImg.Pix[si:si+4])
		}
	}
	return dstImg
}
