package media

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"
)

// Fitted is an image re-encoded to fit a network's byte limit.
type Fitted struct {
	// Type is TypeJPEG, or TypePNG for an image with transparency.
	Type string
	// Width and Height are the new dimensions in pixels, upright: the
	// source's EXIF orientation is applied to the pixels, since the new
	// file carries no EXIF.
	Width, Height int
	// Bytes is the new file; len(Bytes) <= the limit asked for.
	Bytes []byte
}

// fitQuality is the JPEG quality Fit encodes at: below it artefacts show
// before a smaller picture would, above it bytes go to noise no one sees.
const fitQuality = 85

// Fit re-encodes the image read from r (of the sniffed type typ, as Inspect
// stored it: its EXIF orientation, if any, is read from it) so that it
// takes at most maxBytes:
// the same size if a re-encoding alone fits, else scaled down (keeping the
// aspect ratio) as little as needed. An opaque image becomes a JPEG; one
// with transparency stays a PNG (a JPEG would paint it black). A GIF's first
// frame is kept. For networks whose byte limit is below most photos
// (Bluesky's 1,000,000 bytes per image, contracts §8.3).
//
// The decode, the resampled copy and the source bytes are first taken from
// budget (see Inspect): *TooManyPixelsError if they need more than all of
// it, ctx's error (wrapped) if ctx ends while waiting.
//
// Errors: *CorruptError when r does not decode as typ; an error when even a
// 16-pixel-wide picture does not fit (maxBytes absurdly small).
func Fit(ctx context.Context, r io.Reader, typ string, maxBytes int64, budget *Budget) (*Fitted, error) {
	decodeConfig, decode := codec(typ)
	if decode == nil {
		return nil, &UnsupportedTypeError{Sniffed: typ}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("media: reading the image: %w", err)
	}
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, &CorruptError{Type: typ, Err: err}
	}
	// The decode, plus the resampled RGBA copy (4 bytes a pixel at most,
	// scale <= 1) and the source and encoded bytes held meanwhile.
	px := int64(cfg.Width) * int64(cfg.Height)
	release, err := budget.acquire(ctx, decodeCost(typ, data, cfg)+4*px+2*int64(len(data)), cfg.Width, cfg.Height)
	if err != nil {
		return nil, err
	}
	defer release()
	_, orientation, err := strip(typ, data)
	if err != nil {
		return nil, &CorruptError{Type: typ, Err: err}
	}
	src, err := decode(bytes.NewReader(data))
	if err != nil {
		return nil, &CorruptError{Type: typ, Err: err}
	}
	alpha := hasAlpha(src)

	// The first guess: bytes grow roughly with the pixel count, and a
	// re-encoding at fitQuality usually saves a little, so start just above
	// the square root of what is over. Each guess costs a resampling and
	// an encoding (a second or so for a 12-megapixel photo).
	scale := 1.0
	if n := int64(len(data)); n > maxBytes {
		scale = min(1, math.Sqrt(float64(maxBytes)/float64(n))*1.1)
	}
	data = nil // not needed past here: let the collector have it
	var buf bytes.Buffer
	for {
		img := transform(src, orientation, scale)
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		if alpha {
			buf.Reset()
			enc := png.Encoder{CompressionLevel: png.BestCompression}
			if err := enc.Encode(&buf, img); err != nil {
				return nil, fmt.Errorf("media: encoding png: %w", err)
			}
			if int64(buf.Len()) <= maxBytes {
				return &Fitted{Type: TypePNG, Width: w, Height: h, Bytes: bytes.Clone(buf.Bytes())}, nil
			}
		} else {
			buf.Reset()
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: fitQuality}); err != nil {
				return nil, fmt.Errorf("media: encoding jpeg: %w", err)
			}
			if int64(buf.Len()) <= maxBytes {
				return &Fitted{Type: TypeJPEG, Width: w, Height: h, Bytes: bytes.Clone(buf.Bytes())}, nil
			}
		}
		// Scale by the square root of what is still over, a little more so
		// that one more step usually suffices, and at least by a tenth so
		// that the loop ends.
		scale *= min(0.9, math.Sqrt(float64(maxBytes)/float64(buf.Len()))*0.95)
		if int(float64(min(w, h))*scale) < 16 {
			return nil, fmt.Errorf("media: cannot fit a %dx%d image in %d bytes", w, h, maxBytes)
		}
	}
}

// transform turns src upright per its EXIF orientation (1-8, TIFF 6.0 tag
// 274: the new file carries no EXIF) and scales it by scale, in one
// resampling pass; src itself when there is nothing to do.
func transform(src image.Image, orientation int, scale float64) image.Image {
	if (orientation <= 1 || orientation > 8) && scale == 1 {
		return src
	}
	b := src.Bounds()
	w, h := float64(b.Dx()), float64(b.Dy())
	// Source to destination, before scaling: x' = m[0]x + m[1]y + m[2],
	// y' = m[3]x + m[4]y + m[5], in the source's own coordinates.
	m := map[int]f64.Aff3{
		2: {-1, 0, w, 0, 1, 0},  // mirrored
		3: {-1, 0, w, 0, -1, h}, // turned 180°
		4: {1, 0, 0, 0, -1, h},  // mirrored vertically
		5: {0, 1, 0, 1, 0, 0},   // transposed
		6: {0, -1, h, 1, 0, 0},  // shown turned 90° clockwise
		7: {0, -1, h, -1, 0, w}, // transversed
		8: {0, 1, 0, -1, 0, w},  // shown turned 90° counter-clockwise
	}[orientation]
	if m == (f64.Aff3{}) {
		m = f64.Aff3{1, 0, 0, 0, 1, 0}
	}
	// Origin of src's bounds, then the scale.
	m[2] -= m[0]*float64(b.Min.X) + m[1]*float64(b.Min.Y)
	m[5] -= m[3]*float64(b.Min.X) + m[4]*float64(b.Min.Y)
	for i := range m {
		m[i] *= scale
	}
	dw, dh := w, h
	if orientation >= 5 && orientation <= 8 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, max(1, int(dw*scale)), max(1, int(dh*scale))))
	draw.BiLinear.Transform(dst, m, src, b, draw.Src, nil)
	return dst
}

// hasAlpha says whether any pixel of img is not fully opaque.
func hasAlpha(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return !o.Opaque()
	}
	return true
}
