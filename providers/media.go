package providers

import (
	"context"
	"errors"
	"io"
	"time"
)

// MediaRules say which images a network takes on a post (contracts §8).
// The zero value takes none.
type MediaRules struct {
	// MaxImages is the most images one post takes; 0: the provider
	// attaches no images.
	MaxImages int `json:"maxImages"`
	// Types are the MIME types taken ("image/jpeg", "image/png", ...).
	Types []string `json:"types,omitempty"`
	// MaxBytes is the largest image taken, in bytes; 0: no limit known.
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// Downscale: an image over MaxBytes is re-encoded smaller by PostFlow
	// instead of being refused (Bluesky's 1,000,000 bytes, which most
	// photos exceed).
	Downscale bool `json:"downscale,omitempty"`
	// MaxPixels is the most pixels (width × height) an image may have;
	// 0: no limit known.
	MaxPixels int64 `json:"maxPixels,omitempty"`
	// AltText is the longest alt text, counted as the network counts it;
	// Max 0: no limit known.
	AltText TextLimit `json:"altText"`
}

// Image is one image of a post as a provider uploads it. Its bytes are
// streamed from PostFlow's media store by Open, once per upload: a worker
// never holds every image of a post in memory.
type Image struct {
	// MediaID is PostFlow's id of the image in the media library.
	MediaID string
	// Type is the sniffed MIME type of the bytes Open returns.
	Type string
	// Size is the number of bytes Open returns.
	Size int64
	// Width and Height are the image's dimensions in pixels (after its
	// EXIF orientation, as a viewer shows it).
	Width, Height int
	// AltText describes the image for people who cannot see it.
	AltText string
	// Open streams the bytes; the caller closes the reader.
	Open func(ctx context.Context) (io.ReadCloser, error) `json:"-"`
}

// Upload is a network's handle on an image uploaded for one post and
// account. PostFlow keeps it with the attempt record before the post is
// created, so that a retry refers to it again instead of uploading twice
// while the network still holds it (Provider.Reusable).
type Upload struct {
	// MediaID is PostFlow's id of the image.
	MediaID string `json:"mediaId"`
	// ID is the network's id for it: urn:li:image:…, a Mastodon media
	// id, a Bluesky blob's CID.
	ID string `json:"platformMediaId"`
	// Ref is what a post refers to when that is more than ID (Bluesky's
	// blob object, as JSON); opaque to everything but the provider.
	Ref string `json:"-"`
	// UploadedAt is when the network took it.
	UploadedAt time.Time `json:"uploadedAt"`
	// ExpiresAt is when the network forgets it unless a post refers to it;
	// zero if unknown.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// AttachedImage is an image a post refers to: the upload and what the
// post says about it.
type AttachedImage struct {
	Upload  Upload
	AltText string
	// Width and Height in pixels (Bluesky's aspectRatio).
	Width, Height int
}

// ErrNoMedia: the provider attaches no images (MediaRules.MaxImages 0).
var ErrNoMedia = errors.New("providers: this network takes no images from PostFlow")
