package media

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/confab/confab/app/media/mediatest"
)

// FuzzGIFPixels feeds the GIF frame counter arbitrary bytes: it must never
// panic.
func FuzzGIFPixels(f *testing.F) {
	f.Add(mediatest.GIFWithComment(4, 4, 3, 0, "hello"))
	f.Add([]byte("GIF89a\x01\x00\x01\x00\x80\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _, _ = gifPixels(bufioReader(b), 1<<20)
	})
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
