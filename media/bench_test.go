package media

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"testing"
)

// noiseJPEG is an image of about the given size in bytes: noise does not
// compress, so quality 100 keeps it large.
func noiseJPEG(b *testing.B, side int) []byte {
	m := image.NewRGBA(image.Rect(0, 0, side, side))
	x := uint32(2463534242)
	for i := range m.Pix {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		m.Pix[i] = byte(x)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 100}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkInspectJPEG5MB(b *testing.B) {
	data := noiseJPEG(b, 1600)
	b.Logf("input: %d bytes", len(data))
	limits := Limits{MaxBytes: 16 << 20, MaxPixels: 50_000_000}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inspect(context.Background(), bytes.NewReader(data), limits, newTestBudget(b)); err != nil {
			b.Fatal(err)
		}
	}
}
