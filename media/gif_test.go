package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"testing"
)

// animatedGIF is a w x h GIF of n frames, each the full screen.
func animatedGIF(t testing.TB, w, h, n int) []byte {
	t.Helper()
	pal := color.Palette{color.Black, color.White, color.RGBA{200, 30, 40, 255}}
	anim := &gif.GIF{}
	for f := range n {
		m := image.NewPaletted(image.Rect(0, 0, w, h), pal)
		for i := range m.Pix {
			m.Pix[i] = uint8((i + f) % 3)
		}
		anim.Image = append(anim.Image, m)
		anim.Delay = append(anim.Delay, 5)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, anim); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// gifFrame returns the i-th image block (from 0) of a GIF.
func gifFrame(t testing.TB, data []byte, i int) gifBlock {
	t.Helper()
	_, blocks, err := walkGIF(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if b.Label == 0 {
			if i == 0 {
				return b
			}
			i--
		}
	}
	t.Fatalf("no frame %d", i)
	return gifBlock{}
}

// TestInspectChecksEveryGIFFrame: the tester's GIF, a 16x16 screen whose
// second frame claims 60000x60000, is refused (gif.Decode only reads the
// first frame); so is a frame whose pixels do not decode, and an animation
// whose frames together cover more than GIFFrameFactor x MaxPixels.
func TestInspectChecksEveryGIFFrame(t *testing.T) {
	outside := animatedGIF(t, 16, 16, 2)
	f := gifFrame(t, outside, 1)
	binary.LittleEndian.PutUint16(outside[f.Start+5:], 60000)
	binary.LittleEndian.PutUint16(outside[f.Start+7:], 60000)

	offset := animatedGIF(t, 16, 16, 3)
	f = gifFrame(t, offset, 2)
	binary.LittleEndian.PutUint16(offset[f.Start+1:], 1) // x = 1: one column past the screen

	badPixels := animatedGIF(t, 16, 16, 3)
	f = gifFrame(t, badPixels, 1)
	lzw := f.Start + 10
	if flags := badPixels[f.Start+9]; flags&0x80 != 0 {
		lzw += 3 << ((flags & 7) + 1) // the local colour table
	}
	badPixels[lzw] = 12 // LZW minimum code size: out of range

	many := animatedGIF(t, 100, 100, 60) // 600,000 pixels in all

	tests := []struct {
		name      string
		data      []byte
		maxPixels int64
		wantErr   error
		check     func(t *testing.T, err error)
	}{
		{"second frame 60000x60000 on a 16x16 screen", outside, 10_000_000, ErrCorrupt, nil},
		{"third frame one column past the screen", offset, 10_000_000, ErrCorrupt, nil},
		{"second frame's pixels do not decode", badPixels, 10_000_000, ErrCorrupt, nil},
		{"60 frames of 100x100 over 4 x 100,000", many, 100_000, ErrTooManyPixels, func(t *testing.T, err error) {
			var e *TooManyPixelsError
			if !errors.As(err, &e) || e.Frames != 60 || e.FramePixels != 600_000 || e.MaxPixels != 400_000 {
				t.Errorf("err = %+v, want 60 frames, 600000 pixels, 400000 allowed", err)
			}
		}},
		{"60 frames of 100x100 within 4 x 150,000", many, 150_000, nil, nil},
		{"ordinary animation", animatedGIF(t, 16, 16, 3), 10_000_000, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Inspect(context.Background(), bytes.NewReader(tt.data), Limits{MaxBytes: 1 << 20, MaxPixels: tt.maxPixels}, newTestBudget(t))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Inspect: %v", err)
				}
				if all, err := gif.DecodeAll(bytes.NewReader(got.Bytes)); err != nil || len(all.Image) < 2 {
					t.Errorf("stored GIF: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}
