package media

import (
	"bufio"
	"bytes"
	"image"
	"image/color"
	"image/gif"
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

func TestFirstFrame_SmallFrameSitsOnATransparentScreen(t *testing.T) {
	pal := color.Palette{color.Transparent, mediatest.Red}
	f := image.NewPaletted(image.Rect(2, 2, 6, 6), pal)
	for i := range f.Pix {
		f.Pix[i] = 1
	}
	g := &gif.GIF{Image: []*image.Paletted{f}, Delay: []int{0}, Config: image.Config{Width: 10, Height: 10}}

	img := firstFrame(g)

	if b := img.Bounds(); b != image.Rect(0, 0, 10, 10) {
		t.Fatalf("bounds %v, want the 10×10 screen", b)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Errorf("outside the frame: alpha %#x, want transparent", a)
	}
	if got := color.NRGBAModel.Convert(img.At(3, 3)); got != mediatest.Red {
		t.Errorf("inside the frame: %v, want red", got)
	}
	if opaque(img) {
		t.Error("a screen the frame does not cover is opaque: its thumbnail would be a JPEG on black")
	}
}
