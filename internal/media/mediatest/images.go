// Package mediatest makes small real images (and hostile ones) for tests.
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

func img(w, h int) image.Image {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			m.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 5), 90, 255})
		}
	}
	return m
}

// PNG is a w×h PNG.
func PNG(w, h int) []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, img(w, h))
	return b.Bytes()
}

// NoisyPNG is a w×h PNG of pseudo-random pixels: it does not compress, so
// it is about 4·w·h bytes.
func NoisyPNG(w, h int) []byte {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	x := uint32(2463534242)
	for i := range m.Pix {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		m.Pix[i] = byte(x)
	}
	var b bytes.Buffer
	_ = png.Encode(&b, m)
	return b.Bytes()
}

// JPEG is a w×h JPEG.
func JPEG(w, h int) []byte {
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img(w, h), nil)
	return b.Bytes()
}

// GIF is a w×h GIF.
func GIF(w, h int) []byte {
	var b bytes.Buffer
	_ = gif.Encode(&b, img(w, h), nil)
	return b.Bytes()
}

// WebP is a w×h lossless WebP header (VP8L), enough for DecodeConfig.
func WebP(w, h int) []byte {
	bits := uint32(w-1) | uint32(h-1)<<14
	vp8l := append([]byte{0x2f}, binary.LittleEndian.AppendUint32(nil, bits)...)
	vp8l = append(vp8l, 0, 0, 0) // padding: a few bytes of (empty) image data
	chunk := append([]byte("VP8L"), binary.LittleEndian.AppendUint32(nil, uint32(len(vp8l)))...)
	chunk = append(chunk, vp8l...)
	body := append([]byte("WEBP"), chunk...)
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

// PNGBomb is a small, valid PNG whose header declares w×h pixels: a
// decompression bomb for anything that decodes it.
func PNGBomb(w, h int) []byte {
	b := PNG(1, 1)
	// The IHDR chunk follows the 8-byte signature: length(4) "IHDR"(4) data(13) crc(4).
	binary.BigEndian.PutUint32(b[16:20], uint32(w))
	binary.BigEndian.PutUint32(b[20:24], uint32(h))
	binary.BigEndian.PutUint32(b[29:33], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// SolidWebP is a complete w×h lossless WebP (VP8L) of one ARGB color, which
// a decoder expands to w·h pixels: five "simple" prefix codes of one symbol
// each, so every pixel costs no bits.
func SolidWebP(w, h int, a, r, g, b uint8) []byte {
	var bw bitWriter
	bw.put(uint32(w-1), 14)
	bw.put(uint32(h-1), 14)
	alpha := uint32(0)
	if a != 0xff {
		alpha = 1
	}
	bw.put(alpha, 1)
	bw.put(0, 3) // version
	bw.put(0, 1) // no transform
	bw.put(0, 1) // no color cache
	bw.put(0, 1) // no meta prefix codes
	// green, red, blue, alpha, distance: a simple code with one 8-bit symbol.
	for _, sym := range []uint8{g, r, b, a, 0} {
		bw.put(1, 1) // simple code
		bw.put(0, 1) // one symbol
		bw.put(1, 1) // 8 bits
		bw.put(uint32(sym), 8)
	}
	vp8l := append([]byte{0x2f}, bw.bytes()...)
	if len(vp8l)%2 == 1 {
		vp8l = append(vp8l, 0)
	}
	chunk := append([]byte("VP8L"), binary.LittleEndian.AppendUint32(nil, uint32(len(vp8l)))...)
	chunk = append(chunk, vp8l...)
	body := append([]byte("WEBP"), chunk...)
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

// bitWriter packs bits least significant first, as VP8L reads them.
type bitWriter struct {
	buf   []byte
	nbits uint
}

func (w *bitWriter) put(v uint32, n uint) {
	for i := uint(0); i < n; i++ {
		if w.nbits%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		w.buf[len(w.buf)-1] |= byte((v>>i)&1) << (w.nbits % 8)
		w.nbits++
	}
}

func (w *bitWriter) bytes() []byte { return append(w.buf, 0, 0, 0, 0) } // padding for the decoder's reads

// TransparentPNG is a w×h PNG whose left half is fully transparent.
func TransparentPNG(w, h int) []byte {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			a := uint8(255)
			if x < w/2 {
				a = 0
			}
			m.Set(x, y, color.NRGBA{200, uint8(y), uint8(x), a})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, m)
	return b.Bytes()
}
