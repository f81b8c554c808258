package mediatest

import (
	"encoding/binary"
	"image"
)

// UnknownWebPChunk is the FourCC of a chunk WebPWithEXIF adds that no WebP
// reader knows, as a vendor might write its own metadata.
const UnknownWebPChunk = "CNFB"

// WebPWithEXIF returns img as a lossless WebP in an extended (VP8X)
// container that also holds an EXIF chunk (EXIF, little-endian, orientation
// 1), an XMP chunk (XMPPacket) and an UnknownWebPChunk holding CameraSerial,
// with the VP8X flags announcing EXIF and XMP.
//
// The VP8L bitstream is written here without transforms and with "simple"
// prefix codes of one or two symbols, which is valid WebP but only possible
// when each channel of img takes at most two values, as in Quadrants. It
// panics for any other image.
func WebPWithEXIF(img *image.NRGBA) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	vp8l := encodeVP8L(img)

	vp8x := make([]byte, 10)
	vp8x[0] = 1<<3 | 1<<2 // EXIF, XMP
	if !img.Opaque() {
		vp8x[0] |= 1 << 4
	}
	putUint24(vp8x[4:], uint32(w-1))
	putUint24(vp8x[7:], uint32(h-1))

	var body []byte
	body = append(body, "WEBP"...)
	body = appendRIFFChunk(body, "VP8X", vp8x)
	body = appendRIFFChunk(body, "VP8L", vp8l)
	body = appendRIFFChunk(body, "EXIF", EXIF(binary.LittleEndian, 1))
	body = appendRIFFChunk(body, "XMP ", []byte(XMPPacket))
	body = appendRIFFChunk(body, UnknownWebPChunk, []byte(CameraSerial))

	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

func putUint24(b []byte, v uint32) {
	b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16)
}

func appendRIFFChunk(b []byte, id string, data []byte) []byte {
	b = append(b, id...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	if len(data)&1 == 1 {
		b = append(b, 0)
	}
	return b
}

// encodeVP8L writes a VP8L bitstream for an image whose every channel takes
// at most two values.
func encodeVP8L(img *image.NRGBA) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 1 || h < 1 || w > 1<<14 || h > 1<<14 {
		panic("mediatest: VP8L image size out of range")
	}
	// The values each channel takes, in the order VP8L codes them: green,
	// red, blue, alpha.
	var vals [4][]uint8
	channel := [4]int{1, 0, 2, 3} // offsets in an NRGBA pixel
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := img.Pix[img.PixOffset(x, y):]
			for c, off := range channel {
				v := p[off]
				switch {
				case len(vals[c]) == 0 || (len(vals[c]) == 1 && vals[c][0] != v):
					vals[c] = append(vals[c], v)
				case vals[c][0] != v && vals[c][1] != v:
					panic("mediatest: VP8L image channel has more than two values")
				}
			}
		}
	}

	// Listing the smaller symbol first makes it code 0 both for decoders
	// that give codes in listing order (x/image) and for those that build
	// the canonical code, which orders by symbol (libwebp).
	for _, v := range vals {
		if len(v) == 2 && v[0] > v[1] {
			v[0], v[1] = v[1], v[0]
		}
	}

	var bw bitWriter
	bw.write(0x2f, 8) // signature
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	alpha := uint32(0)
	if !img.Opaque() {
		alpha = 1
	}
	bw.write(alpha, 1)
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	for _, v := range vals {
		bw.write(1, 1) // simple code
		bw.write(uint32(len(v)-1), 1)
		bw.write(1, 1) // first symbol in 8 bits
		bw.write(uint32(v[0]), 8)
		if len(v) == 2 {
			bw.write(uint32(v[1]), 8)
		}
	}
	// Distance code: one symbol, never used.
	bw.write(1, 1)
	bw.write(0, 1)
	bw.write(0, 1)
	bw.write(0, 1)

	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := img.Pix[img.PixOffset(x, y):]
			for c, off := range channel {
				// A one-symbol code takes no bits; of two, the larger is 1.
				if v := vals[c]; len(v) == 2 {
					bit := uint32(0)
					if p[off] == v[1] {
						bit = 1
					}
					bw.write(bit, 1)
				}
			}
		}
	}
	return bw.bytes()
}

// bitWriter packs bits least significant first, as VP8L reads them.
type bitWriter struct {
	buf  []byte
	acc  uint64
	nacc uint
}

func (bw *bitWriter) write(v uint32, n uint) {
	bw.acc |= uint64(v) << bw.nacc
	bw.nacc += n
	for bw.nacc >= 8 {
		bw.buf = append(bw.buf, byte(bw.acc))
		bw.acc >>= 8
		bw.nacc -= 8
	}
}

func (bw *bitWriter) bytes() []byte {
	if bw.nacc > 0 {
		return append(bw.buf, byte(bw.acc))
	}
	return bw.buf
}
