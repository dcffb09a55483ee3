package media

import (
	"context"
	"errors"
	"io"
	"time"
)

// Item is an image in an organization's media library: what PostFlow
// learnt from its bytes when it was stored (Inspect). The bytes are in a
// Store under the item's ID.
type Item struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organizationId"`
	// Type is the sniffed MIME type ("image/jpeg").
	Type string `json:"type"`
	// Width and Height in pixels, as a viewer shows the image (after its
	// EXIF orientation).
	Width  int `json:"width"`
	Height int `json:"height"`
	// Size is the stored bytes' length, after metadata was stripped.
	Size int64 `json:"size"`
	// SHA256 is the stored bytes' digest, hex.
	SHA256 string `json:"sha256"`
	// Filename is the client's name for the upload, for people only; ""
	// if none.
	Filename  string    `json:"filename,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// ErrNotFound: no such item in this organization, or no such bytes in
// the store.
var ErrNotFound = errors.New("media: not found")

// ErrInUse: the item is used by a post that is not published yet.
var ErrInUse = errors.New("media: used by a post that is not yet published")

// ErrBeingDeleted: another delete of the item holds its mark (Items.
// MarkDeleting), and did not end while Library.Delete waited for it.
var ErrBeingDeleted = errors.New("media: another delete of the item is under way")

// Store keeps the bytes of media items, by key (the item's ID). Two real
// implementations: media/gridfs (the MongoDB database PostFlow already
// uses) and media/s3 (an S3-compatible bucket).
type Store interface {
	// Put stores size bytes read from r under key, with MIME type typ.
	// Storing a key again replaces its bytes.
	Put(ctx context.Context, key string, r io.Reader, size int64, typ string) error
	// Open streams the bytes under key; ErrNotFound if none. The caller
	// closes the reader.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes the bytes under key; nil if there were none.
	Delete(ctx context.Context, key string) error
	// PresignedURL is a URL the store itself serves the bytes at until
	// expires from now (an S3 presigned GET); "" with a nil error when the
	// store serves none (GridFS), and PostFlow's own signed route serves
	// them instead.
	PresignedURL(ctx context.Context, key string, expires time.Duration) (string, error)
}
