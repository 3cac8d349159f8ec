// Small real images for tests: valid PNG and JPEG bytes that every decoder
// accepts, distinct per seed.
package visiontest

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
)

func img(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 7))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	base := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{base.R + uint8(r.IntN(8)), base.G, base.B ^ uint8(x), 255})
		}
	}
	return m
}

// PNG returns a w×h PNG.
func PNG(w, h int, seed uint64) []byte {
	var b bytes.Buffer
	png.Encode(&b, img(w, h, seed))
	return b.Bytes()
}

// JPEG returns a w×h JPEG.
func JPEG(w, h int, seed uint64) []byte {
	var b bytes.Buffer
	jpeg.Encode(&b, img(w, h, seed), &jpeg.Options{Quality: 85})
	return b.Bytes()
}

// Sized returns a valid JPEG of exactly n bytes (n ≥ 2 KB): a noise image
// a little smaller than n, padded with JPEG comment (COM) segments.
func Sized(n int, seed uint64) []byte {
	side := 16
	b := noisy(side, seed)
	for {
		next := noisy(side+8, seed)
		if len(next) > n-16 {
			break
		}
		side, b = side+8, next
	}
	pad := n - len(b)
	out := make([]byte, 0, n)
	out = append(out, b[:2]...) // SOI
	for pad > 0 {
		seg := min(pad, 65535+2)
		if seg < 4 {
			// too small for a segment of its own: grow the previous one
			break
		}
		out = append(out, 0xFF, 0xFE, byte((seg-2)>>8), byte(seg-2))
		for i := 4; i < seg; i++ {
			out = append(out, ' ')
		}
		pad -= seg
	}
	out = append(out, b[2:]...)
	for len(out) < n { // a 1–3 byte remainder: trailing bytes after EOI are ignored
		out = append(out, 0)
	}
	return out
}

func noisy(side int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	m := image.NewRGBA(image.Rect(0, 0, side, side))
	for i := range m.Pix {
		if i%4 == 3 {
			m.Pix[i] = 255
		} else {
			m.Pix[i] = uint8(r.Uint32())
		}
	}
	var b bytes.Buffer
	jpeg.Encode(&b, m, &jpeg.Options{Quality: 95})
	return b.Bytes()
}
