package media

import (
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"

	"golang.org/x/sync/semaphore"
)

// DefaultDecodeMemory is the decode budget a library gets when it is given
// none (MEDIA_DECODE_MEMORY's default), in bytes.
const DefaultDecodeMemory = 512 << 20

// Budget bounds the memory the process's image decodes hold at once: each
// decode (Inspect, Fit) first takes its estimated peak in bytes (see
// decodeCost) and gives it back when done. A pixel limit alone bounds one
// decode, not three at once; a byte count also tells a 16-bit PNG (8 bytes
// a pixel) from a GIF (1 byte). One Budget is shared by everything that
// decodes in a process, API and worker alike. Safe for concurrent use.
type Budget struct {
	sem   *semaphore.Weighted
	bytes int64
}

// NewBudget returns a budget of bytes (positive) for decodes held at once.
func NewBudget(bytes int64) (*Budget, error) {
	if bytes <= 0 {
		return nil, fmt.Errorf("media: a decode budget must be a positive number of bytes, got %d", bytes)
	}
	return &Budget{sem: semaphore.NewWeighted(bytes), bytes: bytes}, nil
}

// Bytes is the whole budget, in bytes.
func (b *Budget) Bytes() int64 { return b.bytes }

// acquire takes need bytes for decoding a w x h image, waiting while other
// decodes hold them; release gives them back. An image that needs more than
// the whole budget could never be decoded: *TooManyPixelsError at once,
// naming the pixels this budget holds at the image's bytes per pixel.
// Otherwise it waits until ctx is done (ctx.Err(), wrapped).
func (b *Budget) acquire(ctx context.Context, need int64, w, h int) (release func(), err error) {
	if b == nil {
		return nil, fmt.Errorf("media: no decode budget")
	}
	if need > b.bytes {
		perPixel := max(1, need/(int64(w)*int64(h)))
		return nil, &TooManyPixelsError{Width: w, Height: h, MaxPixels: b.bytes / perPixel, DecodeBytes: need, BudgetBytes: b.bytes}
	}
	if err := b.sem.Acquire(ctx, need); err != nil {
		return nil, fmt.Errorf("media: waiting for %d bytes of decode memory: %w", need, err)
	}
	return func() { b.sem.Release(need) }, nil
}

// decodeCost estimates, in bytes, the most that decoding data (of type typ,
// whose header said cfg) holds at once: the decoded image plus the
// decoder's own buffers that grow with the pixel count, read from the
// standard and x/image decoders (Go 1.26, x/image v0.48):
//   - PNG: 1 byte a pixel for a palette, 8 for 16-bit samples, else 4
//     (8-bit grey with tRNS decodes to NRGBA, so 4 covers every 8-bit
//     type); interlaced, half as much again for the pass image.
//   - JPEG: one byte a pixel per component (YCbCr counted as 4:4:4, CMYK
//     with its extra black plane); progressive, 4 more per component for
//     the coefficients kept between scans (64 int32 per 8x8 block).
//   - GIF: 1 byte a pixel of the logical screen (one paletted frame).
//   - WebP: 2 for a lossy VP8 (YCbCr 4:2:0), else 8 (lossless: NRGBA and a
//     second buffer for the colour-indexing transform; alpha: NYCbCrA and
//     the NRGBA its lossless alpha plane decodes through).
func decodeCost(typ string, data []byte, cfg image.Config) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	switch typ {
	case TypePNG:
		perPixel := int64(4)
		if len(data) >= 29 {
			depth, colourType, interlace := data[24], data[25], data[28]
			switch {
			case colourType == 3:
				perPixel = 1
			case depth == 16:
				perPixel = 8
			}
			if interlace == 1 {
				return px*perPixel + px*perPixel/2
			}
		}
		return px * perPixel
	case TypeJPEG:
		components := int64(3)
		switch cfg.ColorModel {
		case color.GrayModel:
			components = 1
		case color.CMYKModel:
			components = 5
		}
		if jpegProgressive(data) {
			return px * components * 5
		}
		return px * components
	case TypeGIF:
		return px
	case TypeWebP:
		if len(data) >= 16 && string(data[12:16]) == "VP8 " {
			return px * 2
		}
		return px * 8
	}
	return px * 8
}

// jpegProgressive says whether the JPEG's frame header is SOF2
// (progressive, Huffman), walking the segments before it.
func jpegProgressive(data []byte) bool {
	for i := 2; i+4 <= len(data) && data[i] == 0xFF; {
		marker := data[i+1]
		switch {
		case marker == 0xFF: // a fill byte (T.81 B.1.1.2)
			i++
			continue
		case marker == 0xC2:
			return true
		case marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC, marker == jpegSOS:
			return false
		}
		i += 2 + int(binary.BigEndian.Uint16(data[i+2:]))
	}
	return false
}
