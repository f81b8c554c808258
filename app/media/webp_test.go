package media

import (
	"encoding/binary"
	"testing"

	"github.com/confab/confab/app/media/mediatest"
)

// FuzzStripWebP feeds the WebP container rewriter arbitrary bytes: it must
// never panic, and what it returns must be a RIFF whose size is right and
// which holds no EXIF or XMP chunk.
func FuzzStripWebP(f *testing.F) {
	f.Add(mediatest.WebPWithEXIF(mediatest.Quadrants(2, 2)))
	f.Add([]byte("RIFF\x04\x00\x00\x00WEBP"))
	f.Add([]byte("RIFF\x0d\x00\x00\x00WEBPEXIF\x01\x00\x00\x00x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := stripWebP(b)
		if err != nil {
			return
		}
		if int(binary.LittleEndian.Uint32(out[4:8])) != len(out)-8 {
			t.Fatalf("RIFF size %d for %d bytes", binary.LittleEndian.Uint32(out[4:8]), len(out))
		}
		for off := 12; off+8 <= len(out); {
			id := string(out[off : off+4])
			if !keepWebPChunk(id) {
				t.Fatalf("kept chunk %q", id)
			}
			n := int(binary.LittleEndian.Uint32(out[off+4:]))
			off += 8 + n + n&1
		}
	})
}
