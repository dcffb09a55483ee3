package media

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is; the typed errors below carry the details a 4xx
// answer should name. See the package doc for the status each maps to.
var (
	ErrTooLarge        = errors.New("media: file too large")
	ErrUnsupportedType = errors.New("media: unsupported media type")
	ErrTooManyPixels   = errors.New("media: image has too many pixels")
	ErrCorrupt         = errors.New("media: corrupt image")
)

// TooLargeError: the upload had more than MaxBytes bytes (413). Inspect stops
// reading at MaxBytes+1, so the real size is not known.
type TooLargeError struct {
	MaxBytes int64 // the limit, in bytes
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("media: file is larger than %d bytes", e.MaxBytes)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// UnsupportedTypeError: the bytes are not one of the accepted image types
// (415). Sniffed is the MIME type the bytes look like, e.g. "application/pdf",
// "application/x-elf", "text/html; charset=utf-8", "application/octet-stream".
type UnsupportedTypeError struct {
	Sniffed string
}

func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("media: unsupported media type %s (accepted: image/jpeg, image/png, image/gif, image/webp)", e.Sniffed)
}

// Is makes errors.Is(err, ErrUnsupportedType) true.
func (e *UnsupportedTypeError) Is(target error) bool { return target == ErrUnsupportedType }

// TooManyPixelsError: the header claims Width x Height pixels, more than
// MaxPixels (422). Nothing was decoded: this is the decompression-bomb answer.
// When BudgetBytes is set, the limit is the decode memory budget (Budget):
// decoding would take DecodeBytes, more than the whole BudgetBytes, and
// MaxPixels is what the budget holds at this image's bytes per pixel.
// When Frames is set, the image is a GIF whose Frames frames together
// cover FramePixels, more than MaxPixels (GIFFrameFactor times the limit).
type TooManyPixelsError struct {
	Width, Height int   // as the header claims them, in pixels
	MaxPixels     int64 // the limit, in pixels (width*height)
	Frames        int   // a GIF's frames, when their total is what is over; else 0
	FramePixels   int64 // the total area of those frames, in pixels
	DecodeBytes   int64 // the decode's estimated memory, in bytes; 0 unless BudgetBytes is set
	BudgetBytes   int64 // the whole decode budget, in bytes; 0 when MaxPixels is the pixel limit
}

func (e *TooManyPixelsError) Error() string {
	if e.BudgetBytes > 0 {
		return fmt.Sprintf("media: image is %dx%d pixels; decoding it takes about %d bytes, more than the %d bytes of decode memory (at most %d pixels of this kind)",
			e.Width, e.Height, e.DecodeBytes, e.BudgetBytes, e.MaxPixels)
	}
	if e.Frames > 0 {
		return fmt.Sprintf("media: the %dx%d GIF's %d frames cover %d pixels in all, more than the %d allowed", e.Width, e.Height, e.Frames, e.FramePixels, e.MaxPixels)
	}
	return fmt.Sprintf("media: image is %dx%d pixels, more than the %d allowed", e.Width, e.Height, e.MaxPixels)
}

// Is makes errors.Is(err, ErrTooManyPixels) true.
func (e *TooManyPixelsError) Is(target error) bool { return target == ErrTooManyPixels }

// CorruptError: the bytes start like Type but do not decode (truncated,
// bad checksum, malformed container) (422). Err is the decoder's or the
// container walker's reason, for logs; it may be too technical for users.
type CorruptError struct {
	Type string // the sniffed MIME type, e.g. "image/png"
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("media: corrupt %s: %v", e.Type, e.Err)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func (e *CorruptError) Unwrap() error { return e.Err }
