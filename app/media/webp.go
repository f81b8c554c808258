package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"

	"golang.org/x/image/webp"
)

// VP8X flag bits that announce metadata chunks.
const (
	vp8xXMP  = 1 << 2
	vp8xEXIF = 1 << 3
)

// keepWebPChunk reports whether a chunk is one of those a still WebP needs in order to be shown as it was sent:
// the extended header, the colour profile, the alpha plane and the image
// bitstream. Everything else is dropped: EXIF and XMP, which carry the
// camera, the position and the time, and any chunk Confab does not know,
// since a reader ignores it anyway and it may hold metadata just as well.
// ANIM and ANMF are not here: x/image/webp cannot decode an animation, so
// an animated WebP is refused before its chunks are looked at.
func keepWebPChunk(id string) bool {
	switch id {
	case "VP8X", "ICCP", "ALPH", "VP8 ", "VP8L":
		return true
	}
	return false
}

var (
	errWebPTruncated = errors.New("chunk runs past the end of the file")
	errWebPHeader    = errors.New("not a RIFF WEBP container")
)

// rewriteWebP checks a WebP's size, writes it to dst without its metadata
// chunks, and returns the decoded image.
//
// Why not re-encode, as for the other formats: golang.org/x/image has a
// WebP decoder but no encoder, and Confab takes no cgo or further
// dependency for one. Re-encoding to PNG or JPEG instead would turn a small
// lossy WebP into a much larger file, or lose its transparency. In a WebP the
// metadata lives only in its own EXIF and XMP chunks, outside the image
// bitstream, so dropping those chunks removes it as surely as a re-encode
// would, and leaves the pixels byte-for-byte as sent. What is written is
// then decoded again, so only a container that decodes is stored.
func rewriteWebP(r io.Reader, dst io.Writer, maxPixels int64) (image.Image, error) {
	// The whole upload is read: callers bound its size before Process.
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("media: read upload: %w", err)
	}
	cfg, err := webp.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: read webp header: %v", ErrBadImage, err)
	}
	if err := checkPixels("webp", cfg.Width, cfg.Height, maxPixels); err != nil {
		return nil, err
	}
	out, err := stripWebP(b)
	if err != nil {
		return nil, fmt.Errorf("%w: webp: %v", ErrBadImage, err)
	}
	img, err := webp.Decode(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("%w: decode webp: %v", ErrBadImage, err)
	}
	if _, err := dst.Write(out); err != nil {
		return nil, fmt.Errorf("media: write webp: %w", err)
	}
	return img, nil
}

// stripWebP returns the RIFF container b with only the chunks keepWebPChunk keeps,
// each copied byte for byte, the EXIF and XMP flags of VP8X cleared and the
// RIFF size set to match. Bytes after the RIFF's declared end are dropped.
func stripWebP(b []byte) ([]byte, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return nil, errWebPHeader
	}
	riffEnd := 8 + uint64(binary.LittleEndian.Uint32(b[4:8]))
	if riffEnd > uint64(len(b)) {
		return nil, errWebPTruncated
	}
	out := make([]byte, 12, len(b))
	copy(out, b[:12])
	for off := uint64(12); off < riffEnd; {
		if off+8 > riffEnd {
			return nil, errWebPTruncated
		}
		id := string(b[off : off+4])
		size := uint64(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		// Chunks are padded to an even size.
		end := off + 8 + size + size&1
		if end > riffEnd {
			// The pad byte of a last odd-sized chunk is sometimes missing;
			// the chunk itself must be whole.
			if off+8+size > riffEnd {
				return nil, errWebPTruncated
			}
			end = riffEnd
		}
		if keepWebPChunk(id) {
			start := len(out)
			out = append(out, b[off:end]...)
			if size&1 == 1 && end-off == 8+size {
				out = append(out, 0)
			}
			if id == "VP8X" && size >= 1 {
				out[start+8] &^= vp8xEXIF | vp8xXMP
			}
		}
		off = end
	}
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(out)-8))
	return out, nil
}
