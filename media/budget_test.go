package media

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"runtime"
	"sync"
	"testing"
	"time"
)

// pngHeaderBomb is a PNG whose IHDR claims w x h of the given bit depth and
// colour type, with a few bytes of IDAT: only the header is ever read.
func pngHeaderBomb(w, h uint32, depth, colourType byte) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = depth, colourType
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(make([]byte, 64))
	_ = zw.Close()
	b := []byte(pngSignature)
	b = append(b, pngChunk("IHDR", ihdr)...)
	b = append(b, pngChunk("IDAT", z.Bytes())...)
	return append(b, pngChunk("IEND", nil)...)
}

// TestDecodeCostCoversTheDecode: for each kind of image the estimate is at
// least what the decoder really allocates (runtime.MemStats), and not
// wildly more, so that the budget bounds real memory without turning
// ordinary images away.
func TestDecodeCostCoversTheDecode(t *testing.T) {
	const w, h = 640, 480
	rgba64 := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for i := range rgba64.Pix {
		rgba64.Pix[i] = uint8(i * 7)
	}
	gray := image.NewGray(image.Rect(0, 0, w, h))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i)
	}
	pal := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 2)
	}
	tests := []struct {
		name string
		typ  string
		data []byte
	}{
		{"png 16-bit rgba", TypePNG, encodePNG(t, rgba64)},
		{"png 8-bit rgba", TypePNG, encodePNG(t, gradient(w, h))},
		{"png grey", TypePNG, encodePNG(t, gray)},
		{"png palette", TypePNG, encodePNG(t, pal)},
		{"jpeg colour (4:2:0)", TypeJPEG, encodeJPEG(t, gradient(w, h))},
		{"jpeg grey", TypeJPEG, encodeJPEG(t, gray)},
		{"gif", TypeGIF, encodeGIF(t, pal)},
		{"webp lossless", TypeWebP, webpFixture(t)},
	}
	// Buffers that do not grow with the pixels: zlib's window, bufio,
	// Huffman tables.
	const fixed = 256 << 10
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decodeConfig, decode := codec(tt.typ)
			cfg, err := decodeConfig(bytes.NewReader(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			cost := decodeCost(tt.typ, tt.data, cfg)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if _, err := decode(bytes.NewReader(tt.data)); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			used := int64(after.TotalAlloc - before.TotalAlloc)
			if used > cost+fixed {
				t.Errorf("decoding %dx%d allocated %d bytes, estimated %d", cfg.Width, cfg.Height, used, cost)
			}
			if cost > 4*used+fixed {
				t.Errorf("decoding %dx%d allocated %d bytes, estimated %d: too cautious", cfg.Width, cfg.Height, used, cost)
			}
		})
	}
}

func TestDecodeCostByHeader(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want int64 // bytes a pixel, x2
	}{
		{"16-bit rgba", pngHeaderBomb(100, 100, 16, 6), 16},
		{"16-bit grey", pngHeaderBomb(100, 100, 16, 0), 16},
		{"8-bit rgb", pngHeaderBomb(100, 100, 8, 2), 8},
		{"8-bit grey (4: with tRNS it decodes to NRGBA)", pngHeaderBomb(100, 100, 8, 0), 8},
		{"palette", pngHeaderBomb(100, 100, 8, 3), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			interlaced := append([]byte(nil), tt.data...)
			interlaced[28] = 1
			cfg := image.Config{Width: 100, Height: 100}
			if got := decodeCost(TypePNG, tt.data, cfg); got != tt.want*100*100/2 {
				t.Errorf("cost %d, want %d", got, tt.want*100*100/2)
			}
			if got := decodeCost(TypePNG, interlaced, cfg); got != tt.want*100*100*3/4 {
				t.Errorf("interlaced: cost %d, want %d", got, tt.want*100*100*3/4)
			}
		})
	}
	progressive := []byte("\xFF\xD8\xFF\xE0\x00\x04ab\xFF\xFF\xC2\x00\x02")
	if !jpegProgressive(progressive) || jpegProgressive(encodeJPEG(t, gradient(8, 8))) {
		t.Error("jpegProgressive does not tell SOF2 from SOF0")
	}
}

// TestBudgetRefusesWhatCannotFit: the tester's PNG, 10000x10000 16-bit
// RGBA in a few hundred bytes, would take 800 MB to decode: over a 512 MiB
// budget it is refused before anything is allocated, even when the pixel
// limit alone would let it through; under the default pixel limit it is
// refused by that.
func TestBudgetRefusesWhatCannotFit(t *testing.T) {
	bomb := pngHeaderBomb(10_000, 10_000, 16, 6)
	budget := newTestBudget(t)

	_, err := Inspect(context.Background(), bytes.NewReader(bomb), Limits{MaxBytes: 1 << 20, MaxPixels: 200_000_000}, budget)
	var e *TooManyPixelsError
	if !errors.As(err, &e) || !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("err = %v, want *TooManyPixelsError", err)
	}
	if e.BudgetBytes != DefaultDecodeMemory || e.DecodeBytes < 800_000_000 || e.MaxPixels != DefaultDecodeMemory/8 || e.Width != 10_000 {
		t.Errorf("error = %+v, want the budget, the decode's 800 MB and the pixels the budget holds at 8 bytes each", e)
	}

	_, err = Inspect(context.Background(), bytes.NewReader(bomb), Limits{MaxBytes: 1 << 20, MaxPixels: 50_000_000}, budget)
	if !errors.As(err, &e) || e.BudgetBytes != 0 || e.MaxPixels != 50_000_000 {
		t.Errorf("under the default pixel limit: err = %v, want the pixel limit named", err)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		_, _ = Inspect(context.Background(), bytes.NewReader(bomb), Limits{MaxBytes: 1 << 20, MaxPixels: 200_000_000}, budget)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 64<<10 {
		t.Errorf("refusing allocated %d bytes a run", per)
	}
}

// TestBudgetMakesDecodesWait: with the budget taken, Inspect and Fit wait
// for it (here until their context ends) instead of decoding; once it is
// given back they go through. Without a budget they refuse to run.
func TestBudgetMakesDecodesWait(t *testing.T) {
	img := encodePNG(t, gradient(64, 48))
	photo := encodeJPEG(t, gradient(64, 48))
	budget, err := NewBudget(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	decodes := []struct {
		name string
		run  func(ctx context.Context, b *Budget) error
	}{
		{"Inspect", func(ctx context.Context, b *Budget) error {
			_, err := Inspect(ctx, bytes.NewReader(img), testLimits, b)
			return err
		}},
		{"Fit", func(ctx context.Context, b *Budget) error {
			_, err := Fit(ctx, bytes.NewReader(photo), TypeJPEG, 1_000_000, b)
			return err
		}},
	}
	for _, d := range decodes {
		t.Run(d.name, func(t *testing.T) {
			release, err := budget.acquire(context.Background(), budget.Bytes()-100, 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			err = d.run(ctx, budget)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("with the budget taken: err = %v, want it to wait until the deadline", err)
			}
			done := make(chan error, 1)
			go func() { done <- d.run(context.Background(), budget) }()
			time.Sleep(20 * time.Millisecond)
			release()
			if err := <-done; err != nil {
				t.Errorf("once the budget is back: %v", err)
			}
			if err := d.run(context.Background(), nil); err == nil {
				t.Error("ran without a budget")
			}
		})
	}
}

// TestBudgetServesConcurrentDecodes: eight decodes on a budget for two
// all finish, and give every byte back. That a decode waits while the
// budget is held is TestBudgetMakesDecodesWait's.
func TestBudgetServesConcurrentDecodes(t *testing.T) {
	img := encodePNG(t, gradient(200, 150))
	cfg, err := codecConfig(TypePNG, img)
	if err != nil {
		t.Fatal(err)
	}
	one := decodeCost(TypePNG, img, cfg) + int64(len(img))
	budget, err := NewBudget(2*one + one/2) // two at a time
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := Inspect(context.Background(), bytes.NewReader(img), testLimits, budget)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// Everything was given back: the whole budget can be taken again.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	release, err := budget.acquire(ctx, budget.Bytes(), 1, 1)
	if err != nil {
		t.Fatalf("budget not given back: %v", err)
	}
	release()
}

func codecConfig(typ string, data []byte) (image.Config, error) {
	decodeConfig, _ := codec(typ)
	return decodeConfig(bytes.NewReader(data))
}
