package media

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/confab/confab/app/media/mediatest"
)

// exifJPEG wraps a TIFF structure in an EXIF APP1 segment of an otherwise
// empty JPEG header.
func exifJPEG(tiff []byte) []byte {
	body := append([]byte("Exif\x00\x00"), tiff...)
	b := []byte{0xFF, 0xD8, 0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(b[4:], uint16(len(body)+2))
	b = append(b, body...)
	return append(b, 0xFF, 0xDA, 0, 2)
}

func TestReadOrientation_BothByteOrders(t *testing.T) {
	for _, bo := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
		for o := range 9 {
			want := max(o, 1)
			if got := readOrientation(bytes.NewReader(exifJPEG(mediatest.EXIF(bo, o)))); got != want {
				t.Errorf("%v, orientation %d: read %d", bo, o, got)
			}
		}
	}
}

func TestReadOrientation_FromAPhoto(t *testing.T) {
	for o := 1; o <= 8; o++ {
		if got := readOrientation(bytes.NewReader(mediatest.JPEGWithGPS(8, 8, o))); got != o {
			t.Errorf("orientation %d: read %d", o, got)
		}
	}
}

func TestReadOrientation_SkipsXMPBeforeEXIF(t *testing.T) {
	xmp := append([]byte("http://ns.adobe.com/xap/1.0/\x00"), mediatest.XMPPacket...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(xmp)+2))
	seg = append(seg, xmp...)
	photo := mediatest.JPEGWithGPS(8, 8, 6)
	in := append(append(append([]byte{}, photo[:2]...), seg...), photo[2:]...)
	if got := readOrientation(bytes.NewReader(in)); got != 6 {
		t.Errorf("read %d, want 6", got)
	}
}

func TestReadOrientation_MalformedIsAsStored(t *testing.T) {
	valid := mediatest.EXIF(binary.LittleEndian, 6)
	tests := map[string][]byte{
		"empty":            nil,
		"not a jpeg":       []byte("GIF89a"),
		"no exif":          {0xFF, 0xD8, 0xFF, 0xDA, 0, 2},
		"short segment":    {0xFF, 0xD8, 0xFF, 0xE1, 0, 1},
		"truncated":        exifJPEG(valid)[:30],
		"bad byte order":   exifJPEG(append([]byte("XX"), valid[2:]...)),
		"bad magic":        exifJPEG(append([]byte("II\x2b\x00"), valid[4:]...)),
		"ifd past the end": exifJPEG([]byte("II\x2a\x00\xff\xff\xff\xff")),
		"orientation 9":    exifJPEG(bytes.Replace(valid, []byte{0x12, 0x01, 3, 0, 1, 0, 0, 0, 6}, []byte{0x12, 0x01, 3, 0, 1, 0, 0, 0, 9}, 1)),
		"orientation long": exifJPEG(bytes.Replace(valid, []byte{0x12, 0x01, 3, 0}, []byte{0x12, 0x01, 4, 0}, 1)),
	}
	for name, in := range tests {
		if got := readOrientation(bytes.NewReader(in)); got != 1 {
			t.Errorf("%s: read %d, want 1", name, got)
		}
	}
}

// FuzzOrientation feeds the orientation reader arbitrary JPEG headers: it
// must never panic, and must answer 1 to 8.
func FuzzOrientation(f *testing.F) {
	for o := range 9 {
		f.Add(mediatest.JPEGWithGPS(8, 8, o)[:400])
		f.Add(exifJPEG(mediatest.EXIF(binary.LittleEndian, o)))
	}
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0xFF, 0xFF, 0xFF, 0xF0})
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := readOrientation(bytes.NewReader(b)); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		// The TIFF parser alone, on bytes that need no JPEG around them.
		if o := exifOrientation(b); o < 1 || o > 8 {
			t.Fatalf("exif orientation %d", o)
		}
	})
}
