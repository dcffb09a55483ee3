package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"

	"golang.org/x/image/webp"
)

// The accepted media types, as Image.Type reports them.
const (
	TypeJPEG = "image/jpeg"
	TypePNG  = "image/png"
	TypeGIF  = "image/gif"
	TypeWebP = "image/webp"
)

// Limits bound what Inspect accepts. Both must be positive.
type Limits struct {
	// MaxBytes is the largest upload accepted, in bytes; Inspect reads at
	// most MaxBytes+1 bytes from the reader.
	MaxBytes int64
	// MaxPixels is the largest width*height accepted, checked on the header
	// before any decode; a GIF's frames together may cover GIFFrameFactor
	// times it. Decoding one holds, at peak, per pixel: 1 byte for a GIF or
	// a palette PNG, 1.5-3 for a baseline JPEG (grey 1, CMYK 5), 4 for an
	// 8-bit PNG, 8 for a 16-bit PNG, 2 for a lossy WebP and 8 for a
	// lossless one, 5x the baseline figure for a progressive JPEG (see
	// decodeCost). So 50,000,000 pixels is 50 MB to 400 MB (750 MB for a
	// progressive CMYK JPEG); a Budget bounds how many run at once.
	MaxPixels int64
}

// Image is an inspected upload, ready to store.
type Image struct {
	// Type is the MIME type sniffed from the bytes: one of TypeJPEG,
	// TypePNG, TypeGIF, TypeWebP.
	Type string
	// Width and Height are the decoded dimensions in pixels, as stored
	// (for a JPEG, before Orientation is applied; for a GIF, the logical
	// screen).
	Width, Height int
	// Orientation is the JPEG's EXIF Orientation (1-8), kept in Bytes as
	// the only EXIF tag left; 1 when absent and for other types.
	Orientation int
	// Size is len(Bytes), in bytes: the cleaned file, not the upload.
	Size int64
	// Bytes is the file with its location metadata removed; its pixels are
	// the upload's (no re-encoding).
	Bytes []byte
}

// GIFFrameFactor bounds a GIF's work: its frames together may cover at
// most GIFFrameFactor x Limits.MaxPixels pixels. Every viewer decodes
// every frame, so an animation of many frames is as much work as one
// image of their total area; 4 leaves room for ordinary animations (a
// 500x500 GIF of 100 frames is 25 megapixels).
const GIFFrameFactor = 4

// Inspect reads an upload from r and decides whether PostFlow stores it.
//
// In order, so that the cheap refusals come first and nothing large is
// allocated for a hostile file: it reads at most limits.MaxBytes bytes
// (*TooLargeError beyond), sniffs the type from the first bytes
// (*UnsupportedTypeError for anything but JPEG, PNG, GIF or WebP, such as a
// PDF, HTML, an ELF/PE executable renamed .png, an animated WebP, which
// x/image cannot decode: "image/webp; animated", or an animated PNG, whose
// frames past the first it would not check: "image/apng"), reads the dimensions from
// the header alone (*TooManyPixelsError past limits.MaxPixels: a tiny PNG
// claiming 50,000 x 50,000 is refused here, unallocated), removes the
// location metadata from the container (see Strip), then decodes the cleaned
// bytes in full (*CorruptError if they do not decode), which proves both
// that the upload was sound and that what is stored still renders. A GIF's
// frames must each lie within its logical screen and together cover at
// most GIFFrameFactor x limits.MaxPixels (*TooManyPixelsError naming
// Frames); they are decoded one at a time.
//
// The decode first takes its estimated memory from budget, waiting while
// other decodes hold it (until ctx is done: ctx's error, wrapped); an image
// that needs more than the whole budget is *TooManyPixelsError with
// BudgetBytes set.
//
// Errors match ErrTooLarge, ErrUnsupportedType, ErrTooManyPixels or
// ErrCorrupt with errors.Is; any other error is r's own (wrapped), ctx's,
// invalid limits or a nil budget.
func Inspect(ctx context.Context, r io.Reader, limits Limits, budget *Budget) (*Image, error) {
	if limits.MaxBytes <= 0 || limits.MaxPixels <= 0 {
		return nil, fmt.Errorf("media: limits must be positive, got %+v", limits)
	}
	data, err := io.ReadAll(io.LimitReader(r, limits.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("media: reading the upload: %w", err)
	}
	if int64(len(data)) > limits.MaxBytes {
		return nil, &TooLargeError{MaxBytes: limits.MaxBytes}
	}

	typ := Sniff(data)
	decodeConfig, decode := codec(typ)
	if decode == nil {
		return nil, &UnsupportedTypeError{Sniffed: typ}
	}
	if typ == TypeWebP && webpAnimated(data) {
		// x/image decodes still WebPs only; without this an animation
		// would be refused as corrupt, which it is not.
		return nil, &UnsupportedTypeError{Sniffed: TypeWebP + "; animated"}
	}
	if typ == TypePNG && pngAnimated(data) {
		// An APNG's frames past the default image are neither decoded
		// nor checked: stored, it would be a still, which is not what
		// was uploaded. Refused, as an animated WebP is.
		return nil, &UnsupportedTypeError{Sniffed: "image/apng"}
	}

	// The header only: image.Config holds no pixels, so a bomb costs a few
	// hundred bytes here.
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, &CorruptError{Type: typ, Err: err}
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, &CorruptError{Type: typ, Err: fmt.Errorf("header claims %dx%d pixels", cfg.Width, cfg.Height)}
	}
	if int64(cfg.Width)*int64(cfg.Height) > limits.MaxPixels {
		return nil, &TooManyPixelsError{Width: cfg.Width, Height: cfg.Height, MaxPixels: limits.MaxPixels}
	}

	// The cleaned copy is held with the decode, so it is counted with it;
	// for a GIF, so is the copy each frame is decoded from.
	copies := int64(len(data))
	if typ == TypeGIF {
		copies *= 2
	}
	release, err := budget.acquire(ctx, decodeCost(typ, data, cfg)+copies, cfg.Width, cfg.Height)
	if err != nil {
		return nil, err
	}
	defer release()
	clean, orientation, err := strip(typ, data)
	if err != nil {
		return nil, &CorruptError{Type: typ, Err: err}
	}

	img, err := decode(bytes.NewReader(clean))
	if err != nil {
		return nil, &CorruptError{Type: typ, Err: err}
	}
	// img is dead past here (Go's collector tracks liveness), so the
	// frames below are held one at a time, as the budget counts them.
	b := img.Bounds()
	if typ == TypeGIF {
		if err := checkGIFFrames(clean, cfg, limits.MaxPixels*GIFFrameFactor); err != nil {
			return nil, err
		}
	}
	if typ != TypeGIF && (b.Dx() != cfg.Width || b.Dy() != cfg.Height) {
		// The decoders agree with their own headers; a mismatch would mean
		// the header we checked is not the image we stored.
		return nil, &CorruptError{Type: typ, Err: fmt.Errorf("header says %dx%d, image is %dx%d", cfg.Width, cfg.Height, b.Dx(), b.Dy())}
	}

	return &Image{
		Type:        typ,
		Width:       cfg.Width,
		Height:      cfg.Height,
		Orientation: orientation,
		Size:        int64(len(clean)),
		Bytes:       clean,
	}, nil
}

// Sniff names the media type of data from its first bytes. The four
// accepted image types are matched on their exact signatures (a WebP needs
// both "RIFF" and "WEBP"); executables get their own names, since the
// standard sniffer calls them "application/octet-stream"; anything else is
// named by net/http's WHATWG sniffing (e.g. "application/pdf",
// "text/html; charset=utf-8").
func Sniff(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		return TypeJPEG
	case bytes.HasPrefix(data, []byte(pngSignature)):
		return TypePNG
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return TypeGIF
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return TypeWebP
	case bytes.HasPrefix(data, []byte("\x7fELF")):
		return "application/x-elf"
	case bytes.HasPrefix(data, []byte("MZ")):
		return "application/vnd.microsoft.portable-executable"
	case bytes.HasPrefix(data, []byte{0xCF, 0xFA, 0xED, 0xFE}), bytes.HasPrefix(data, []byte{0xCE, 0xFA, 0xED, 0xFE}):
		return "application/x-mach-binary"
	case bytes.HasPrefix(data, []byte("#!")):
		return "text/x-shellscript"
	}
	return http.DetectContentType(data)
}

const pngSignature = "\x89PNG\r\n\x1a\n"

// codec returns the header and full decoders for an accepted type, nil for
// any other. Each format's own package is called rather than image.Decode,
// so that no format registered elsewhere in the binary is accepted by
// accident.
func codec(typ string) (func(io.Reader) (image.Config, error), func(io.Reader) (image.Image, error)) {
	switch typ {
	case TypeJPEG:
		return jpeg.DecodeConfig, jpeg.Decode
	case TypePNG:
		return png.DecodeConfig, png.Decode
	case TypeGIF:
		return gif.DecodeConfig, gif.Decode
	case TypeWebP:
		return webp.DecodeConfig, webp.Decode
	}
	return nil, nil
}

// webpAnimated says whether a WebP's first chunk is a VP8X with its
// animation flag set (the spec puts VP8X first when present).
func webpAnimated(data []byte) bool {
	return len(data) >= 21 && string(data[12:16]) == "VP8X" && data[20]&vp8xAnimation != 0
}

// pngAnimated says whether a PNG is an APNG: an acTL chunk before its
// first IDAT (APNG specification, "Structure").
func pngAnimated(data []byte) bool {
	for at := 8; at+8 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[at:]))
		switch string(data[at+4 : at+8]) {
		case "acTL":
			return true
		case "IDAT":
			return false
		}
		if n < 0 || n > len(data)-at-12 {
			return false
		}
		at += 12 + n
	}
	return false
}

var errTruncated = errors.New("container truncated")

// checkGIFFrames decodes every frame of a (stripped) GIF of the logical
// screen cfg on its own, one at a time, so that at most one frame's pixels
// (no more than the screen's, which the caller's budget covers) are held:
// gif.DecodeAll would hold them all. First the frames' total area is
// checked against maxArea, before any is decoded.
func checkGIFFrames(data []byte, cfg image.Config, maxArea int64) error {
	headerEnd, blocks, err := walkGIF(data)
	if err != nil {
		return &CorruptError{Type: TypeGIF, Err: err}
	}
	var area int64
	frames := 0
	for _, b := range blocks {
		if b.Label == 0 {
			frames++
			area += int64(b.Frame.Dx()) * int64(b.Frame.Dy())
		}
	}
	if area > maxArea {
		return &TooManyPixelsError{Width: cfg.Width, Height: cfg.Height, MaxPixels: maxArea, Frames: frames, FramePixels: area}
	}
	if frames < 2 {
		return nil // the one frame was decoded already
	}
	// Each frame as a GIF of its own: the header and global colour table,
	// the image block, the trailer.
	one := make([]byte, 0, headerEnd+64)
	n := 0
	for _, b := range blocks {
		if b.Label != 0 {
			continue
		}
		n++
		one = append(append(append(one[:0], data[:headerEnd]...), data[b.Start:b.End]...), 0x3B)
		if _, err := gif.Decode(bytes.NewReader(one)); err != nil {
			return &CorruptError{Type: TypeGIF, Err: fmt.Errorf("frame %d: %w", n, err)}
		}
	}
	return nil
}
