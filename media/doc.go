// Package media inspects an uploaded image before PostFlow stores it: the
// type is sniffed from the bytes (never trusted from the client's name or
// Content-Type), the header's dimensions are checked against a pixel budget
// before anything is decoded, the file is decoded in full (under a Budget
// of decode memory shared by the process) to prove it is not corrupt, and
// every segment that does not change how it renders (EXIF but the
// orientation, XMP, comments, thumbnails, private chunks) is cut from the
// container without re-encoding, so the pixels stored are the pixels
// uploaded.
//
// The package does no I/O beyond the io.Reader it is given and keeps no
// global state; the HTTP layer owns the mapping of its errors to statuses.
// The intended mapping (errors.Is on the sentinels):
//
//	ErrTooLarge        413 Content Too Large      (*TooLargeError names the limit)
//	ErrUnsupportedType 415 Unsupported Media Type (*UnsupportedTypeError names the sniffed type)
//	ErrTooManyPixels   422 Unprocessable Content  (*TooManyPixelsError names the dimensions)
//	ErrCorrupt         422 Unprocessable Content  (*CorruptError names the type and the cause)
//
// Any other error from Inspect is the reader's own failure (or a
// programming error in Limits) and is not the client's fault.
package media
