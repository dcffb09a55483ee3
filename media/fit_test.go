package media

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// photo is a w×h picture with a gradient and noise (so it compresses like
// a photo, not like a flat colour) and a red block in its top-left corner
// to tell which way up it is.
func photo(w, h int, alpha bool) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	x := uint32(2463534242)
	for py := 0; py < h; py++ {
		for px := 0; px < w; px++ {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			n := byte(x) / 4
			c := color.NRGBA{byte(px*255/w)/2 + n, byte(py*255/h)/2 + n, 128 + n/2, 255}
			if px < w/8 && py < h/8 {
				c = color.NRGBA{255, 0, 0, 255}
			}
			if alpha && px > w/2 {
				c.A = 128
			}
			m.SetNRGBA(px, py, c)
		}
	}
	return m
}

func jpegAt(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// oriented adds an EXIF APP1 with the orientation (and GPS) to a JPEG.
func oriented(data []byte, orientation uint16) []byte {
	out := append([]byte{}, data[:2]...)
	out = append(out, jpegSegment(0xE1, append([]byte("Exif\x00\x00"), exifWithGPS(orientation)...))...)
	return append(out, data[2:]...)
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r > 0xc000 && g < 0x4000 && b < 0x4000
}

func TestFit(t *testing.T) {
	big := jpegAt(t, photo(3000, 1800, false), 95)
	if len(big) <= 1_000_000 {
		t.Fatalf("test photo is only %d bytes", len(big))
	}
	small := jpegAt(t, photo(400, 250, false), 100)
	tests := []struct {
		name     string
		data     []byte
		typ      string
		max      int64
		wantType string
		wantW    int // 0: scaled down from wantFullW
		wantH    int
		fullW    int
		fullH    int
		// corner is where the red block must end up: "top-left", "top-right".
		corner string
	}{
		{name: "a photo over the limit is scaled down", data: big, typ: TypeJPEG, max: 1_000_000,
			wantType: TypeJPEG, fullW: 3000, fullH: 1800, corner: "top-left"},
		{name: "a re-encoding alone fits: same size", data: small, typ: TypeJPEG, max: int64(len(small)) - 1,
			wantType: TypeJPEG, wantW: 400, wantH: 250, corner: "top-left"},
		{name: "orientation 6 is turned upright", data: oriented(big, 6), typ: TypeJPEG, max: 1_000_000,
			wantType: TypeJPEG, fullW: 1800, fullH: 3000, corner: "top-right"},
		{name: "orientation 3 is turned upright", data: oriented(small, 3), typ: TypeJPEG, max: 1_000_000,
			wantType: TypeJPEG, wantW: 400, wantH: 250, corner: "bottom-right"},
		{name: "orientation 8 is turned upright", data: oriented(small, 8), typ: TypeJPEG, max: 1_000_000,
			wantType: TypeJPEG, wantW: 250, wantH: 400, corner: "bottom-left"},
		{name: "transparency stays a PNG", data: encodePNG(t, photo(800, 500, true)), typ: TypePNG, max: 300_000,
			wantType: TypePNG, fullW: 800, fullH: 500, corner: "top-left"},
		{name: "an opaque PNG becomes a JPEG", data: encodePNG(t, photo(800, 500, false)), typ: TypePNG, max: 100_000,
			wantType: TypeJPEG, fullW: 800, fullH: 500, corner: "top-left"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Fit(context.Background(), bytes.NewReader(tt.data), tt.typ, tt.max, newTestBudget(t))
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(f.Bytes)) > tt.max {
				t.Errorf("%d bytes, over the %d asked for", len(f.Bytes), tt.max)
			}
			if f.Type != tt.wantType || Sniff(f.Bytes) != tt.wantType {
				t.Errorf("type %s (sniffed %s), want %s", f.Type, Sniff(f.Bytes), tt.wantType)
			}
			m, _, err := image.Decode(bytes.NewReader(f.Bytes))
			if err != nil {
				t.Fatalf("the fitted image does not decode: %v", err)
			}
			w, h := m.Bounds().Dx(), m.Bounds().Dy()
			if w != f.Width || h != f.Height {
				t.Errorf("decodes as %dx%d, says %dx%d", w, h, f.Width, f.Height)
			}
			if tt.wantW != 0 && (w != tt.wantW || h != tt.wantH) {
				t.Errorf("%dx%d, want %dx%d", w, h, tt.wantW, tt.wantH)
			}
			if tt.fullW != 0 {
				if w >= tt.fullW || h >= tt.fullH {
					t.Errorf("%dx%d, not scaled down from %dx%d", w, h, tt.fullW, tt.fullH)
				}
				// The aspect ratio is kept, to a pixel.
				if want := tt.fullH * w / tt.fullW; h < want-1 || h > want+1 {
					t.Errorf("%dx%d does not keep %dx%d's aspect ratio", w, h, tt.fullW, tt.fullH)
				}
				// Not needlessly small: a single step lands within half
				// the pixels.
				if w < tt.fullW/3 {
					t.Errorf("%dx%d is smaller than it needs to be", w, h)
				}
			}
			at := map[string]image.Point{"top-left": {w / 32, h / 32}, "top-right": {w - 1 - w/32, h / 32},
				"bottom-right": {w - 1 - w/32, h - 1 - h/32}, "bottom-left": {w / 32, h - 1 - h/32}}
			for corner, p := range at {
				if red := isRed(m.At(p.X, p.Y)); red != (corner == tt.corner) {
					t.Errorf("red at the %s corner: %v, want the block at the %s", corner, red, tt.corner)
				}
			}
		})
	}
}

func TestFitRefuses(t *testing.T) {
	if _, err := Fit(context.Background(), bytes.NewReader([]byte("\xff\xd8\xff\xe0 not a jpeg")), TypeJPEG, 1000, newTestBudget(t)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt: %v, want ErrCorrupt", err)
	}
	if _, err := Fit(context.Background(), bytes.NewReader(jpegAt(t, photo(400, 250, false), 90)), TypeJPEG, 100, newTestBudget(t)); err == nil {
		t.Error("fitted a photo in 100 bytes")
	}
	if _, err := Fit(context.Background(), bytes.NewReader([]byte("%PDF-1.4")), "application/pdf", 1000, newTestBudget(t)); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("pdf: %v, want ErrUnsupportedType", err)
	}
}

// BenchmarkFit5MBToBluesky re-encodes a 5 MB photo-like JPEG to Bluesky's
// 1,000,000 bytes.
func BenchmarkFit5MBToBluesky(b *testing.B) {
	data := oriented(jpegAt(b, photo(3000, 2000, false), 97), 6)
	b.Logf("input: %d bytes", len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Fit(context.Background(), bytes.NewReader(data), TypeJPEG, 1_000_000, newTestBudget(b)); err != nil {
			b.Fatal(err)
		}
	}
}
