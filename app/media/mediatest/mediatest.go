// Package mediatest builds real image files that carry the metadata Confab
// must strip (EXIF with a GPS position and a camera serial, PNG text, GIF
// comments, WebP EXIF and XMP chunks), for tests of the media package and of
// anything that uploads attachments.
//
// Every builder makes a file a browser or decoder accepts; the metadata is
// spliced in by hand, byte for byte, so that tests do not depend on a
// library that writes metadata.
package mediatest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
)

// Values written into the metadata, for tests to look for in the output.
const (
	CameraMake   = "ConfabCam"
	CameraModel  = "Pocket 7"
	CameraSerial = "CFB-SN-0042-7781"
	// GPSMethod is the GPSProcessingMethod value: a character-code prefix
	// and the word "GPS", so that a test can look for "GPS" in the output.
	GPSMethod = "ASCII\x00\x00\x00GPS"
	// XMPPacket is the XMP metadata written into WebP files.
	XMPPacket = `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/" tiff:Make="ConfabCam" exif:GPSLatitude="48,51.4N" exif:GPSLongitude="2,21.133E"/></rdf:RDF></x:xmpmeta>`
)

// Corner colours of Quadrants: each channel takes only the values 0 and
// 255, so the colours stay far apart through JPEG compression and the
// image can be written as a tiny lossless WebP.
var (
	Red    = color.NRGBA{R: 255, A: 255}
	Green  = color.NRGBA{G: 255, A: 255}
	Blue   = color.NRGBA{B: 255, A: 255}
	Yellow = color.NRGBA{R: 255, G: 255, A: 255}
)

// Quadrants returns a w×h image whose top-left quarter is Red, top-right
// Green, bottom-left Blue and bottom-right Yellow, so a test can tell how it
// was turned or mirrored.
func Quadrants(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := Red
			switch {
			case x >= w/2 && y < h/2:
				c = Green
			case x < w/2 && y >= h/2:
				c = Blue
			case x >= w/2 && y >= h/2:
				c = Yellow
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// JPEGWithGPS returns a w×h JPEG of Quadrants carrying an EXIF APP1 segment
// like a phone's: IFD0 with Make (CameraMake), Model (CameraModel) and the
// given Orientation (1 to 8; 0 leaves the tag out), an Exif IFD with the
// camera's BodySerialNumber (CameraSerial), and a GPS IFD placing the photo
// at 48°51'24"N 2°21'8"E (Paris) with GPSMethod.
func JPEGWithGPS(w, h int, orientation int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, Quadrants(w, h), &jpeg.Options{Quality: 95}); err != nil {
		panic("mediatest: encode jpeg: " + err.Error())
	}
	b := buf.Bytes()
	app1 := append([]byte("Exif\x00\x00"), EXIF(binary.BigEndian, orientation)...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(app1)+2))
	seg = append(seg, app1...)
	// Right after SOI, where cameras put it.
	out := append([]byte{}, b[:2]...)
	out = append(out, seg...)
	return append(out, b[2:]...)
}

// EXIF returns a TIFF structure as found in an EXIF APP1 segment or a WebP
// EXIF chunk, in byte order bo, with the tags JPEGWithGPS describes.
func EXIF(bo binary.ByteOrder, orientation int) []byte {
	rat := func(pairs ...uint32) []byte {
		b := make([]byte, 4*len(pairs))
		for i, v := range pairs {
			bo.PutUint32(b[4*i:], v)
		}
		return b
	}
	short := func(v uint16) []byte {
		b := make([]byte, 2)
		bo.PutUint16(b, v)
		return b
	}
	const (
		typeByte      = 1
		typeASCII     = 2
		typeShort     = 3
		typeLong      = 4
		typeRational  = 5
		typeUndefined = 7
	)
	ascii := func(tag uint16, s string) tiffEntry {
		return tiffEntry{tag, typeASCII, uint32(len(s) + 1), append([]byte(s), 0)}
	}

	exifIFD := []tiffEntry{ascii(0xA431, CameraSerial)}
	gpsIFD := []tiffEntry{
		{0x0000, typeByte, 4, []byte{2, 3, 0, 0}},
		ascii(0x0001, "N"),
		{0x0002, typeRational, 3, rat(48, 1, 51, 1, 24, 1)},
		ascii(0x0003, "E"),
		{0x0004, typeRational, 3, rat(2, 1, 21, 1, 8, 1)},
		{0x001B, typeUndefined, uint32(len(GPSMethod)), []byte(GPSMethod)},
	}
	ifd0 := []tiffEntry{
		ascii(0x010F, CameraMake),
		ascii(0x0110, CameraModel),
	}
	if orientation != 0 {
		ifd0 = append(ifd0, tiffEntry{0x0112, typeShort, 1, short(uint16(orientation))})
	}
	// The pointers to the sub-IFDs come last (tags sort last) and their
	// values are known once the sizes before them are.
	ifd0 = append(ifd0,
		tiffEntry{0x8769, typeLong, 1, nil},
		tiffEntry{0x8825, typeLong, 1, nil},
	)
	exifAt := 8 + ifdSize(ifd0)
	gpsAt := exifAt + ifdSize(exifIFD)
	ifd0[len(ifd0)-2].data = rat(uint32(exifAt))
	ifd0[len(ifd0)-1].data = rat(uint32(gpsAt))

	var t bytes.Buffer
	if bo == binary.LittleEndian {
		t.WriteString("II")
	} else {
		t.WriteString("MM")
	}
	t.Write(short(42))
	t.Write(rat(8))
	writeIFD(&t, bo, ifd0)
	writeIFD(&t, bo, exifIFD)
	writeIFD(&t, bo, gpsIFD)
	return t.Bytes()
}

type tiffEntry struct {
	tag, typ uint16
	count    uint32
	data     []byte // the value, already in the file's byte order
}

// ifdSize is the size of an IFD and of the values that do not fit in its
// entries, which writeIFD puts right after it.
func ifdSize(es []tiffEntry) int {
	n := 2 + 12*len(es) + 4
	for _, e := range es {
		if len(e.data) > 4 {
			n += len(e.data) + len(e.data)&1
		}
	}
	return n
}

// writeIFD appends an IFD and its out-of-line values at t's current end,
// which is the IFD's offset in the TIFF structure.
func writeIFD(t *bytes.Buffer, bo binary.ByteOrder, es []tiffEntry) {
	at := t.Len()
	dataAt := at + 2 + 12*len(es) + 4
	var data []byte
	var b [12]byte
	bo.PutUint16(b[:2], uint16(len(es)))
	t.Write(b[:2])
	for _, e := range es {
		bo.PutUint16(b[0:], e.tag)
		bo.PutUint16(b[2:], e.typ)
		bo.PutUint32(b[4:], e.count)
		clear(b[8:])
		if len(e.data) <= 4 {
			copy(b[8:], e.data)
		} else {
			bo.PutUint32(b[8:], uint32(dataAt+len(data)))
			data = append(data, e.data...)
			if len(e.data)&1 == 1 {
				data = append(data, 0)
			}
		}
		t.Write(b[:])
	}
	t.Write([]byte{0, 0, 0, 0}) // no next IFD
	t.Write(data)
}

// PNGWithText returns img encoded as a PNG with a tEXt chunk (keyword,
// text) right after IHDR, where a camera or editor writes it.
func PNGWithText(img image.Image, keyword, text string) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic("mediatest: encode png: " + err.Error())
	}
	b := buf.Bytes()
	const ihdrEnd = 8 + 8 + 13 + 4 // signature, IHDR head, body, CRC
	out := append([]byte{}, b[:ihdrEnd]...)
	out = append(out, pngChunk("tEXt", []byte(keyword+"\x00"+text))...)
	return append(out, b[ihdrEnd:]...)
}

// PNGHeader returns only the start of a PNG: its signature and an IHDR
// claiming w×h 8-bit RGBA pixels, with no image data. It is what a
// decompression bomb shows a decoder before the first pixel.
func PNGHeader(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8] = 8 // bit depth
	ihdr[9] = 6 // RGBA
	out := []byte("\x89PNG\r\n\x1a\n")
	return append(out, pngChunk("IHDR", ihdr)...)
}

func pngChunk(typ string, data []byte) []byte {
	c := make([]byte, 4, 12+len(data))
	binary.BigEndian.PutUint32(c, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// GIFWithComment returns an animated GIF of frames frames (each a w×h
// paletted image filled with a different colour, 10 ms apart) that loops
// loopCount as gif.GIF.LoopCount means it, with a comment extension and an
// XMP application extension right after its header.
func GIFWithComment(w, h, frames, loopCount int, comment string) []byte {
	pal := color.Palette{color.Black, Red, Green, Blue, Yellow, color.White}
	g := &gif.GIF{LoopCount: loopCount}
	for i := range frames {
		f := image.NewPaletted(image.Rect(0, 0, w, h), pal)
		for p := range f.Pix {
			f.Pix[p] = uint8(1 + i%(len(pal)-1))
		}
		g.Image = append(g.Image, f)
		g.Delay = append(g.Delay, 1)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		panic("mediatest: encode gif: " + err.Error())
	}
	b := buf.Bytes()

	ext := []byte{0x21, 0xFE}
	ext = appendSubBlocks(ext, []byte(comment))
	ext = append(ext, 0x21, 0xFF, 11)
	ext = append(ext, "XMP DataXMP"...)
	ext = appendSubBlocks(ext, []byte(XMPPacket))

	// Right after the logical screen and its global colour table, where
	// the grammar allows extensions before the first frame.
	i := 13
	if flags := b[10]; flags&0x80 != 0 {
		i += 3 << ((flags & 7) + 1)
	}
	out := append([]byte{}, b[:i]...)
	out = append(out, ext...)
	return append(out, b[i:]...)
}

func appendSubBlocks(b, data []byte) []byte {
	for len(data) > 0 {
		n := min(len(data), 255)
		b = append(b, byte(n))
		b = append(b, data[:n]...)
		data = data[n:]
	}
	return append(b, 0)
}
