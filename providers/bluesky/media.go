package bluesky

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/postflow/postflow/providers"
)

// Image limits of app.bsky.embed.images (contracts §8.3 [B9]): 4 images a
// post, 1,000,000 bytes each. The PDS's own lexicon (@atproto/pds 0.5.35)
// says maxSize 2,000,000 and checks it at createRecord; 1,000,000 is what
// the contract and Bluesky's docs give, and what PostFlow scales down to.
// alt has no length limit in the lexicon: AltText.Max stays 0 (unknown).
const (
	MaxImages     = 4
	MaxImageBytes = 1_000_000
)

// BlobLife is how long PostFlow counts on an uploaded blob that no record
// refers to yet: the PDS deletes such blobs after "minutes" (§8.3 [B10]),
// so a short, conservative window. Past it the image is uploaded again,
// which is harmless: the same bytes make the same CID.
const BlobLife = 5 * time.Minute

// blob is atproto's blob object, as uploadBlob answers it and a record
// refers to it.
type blob struct {
	Type string `json:"$type"`
	Ref  struct {
		Link string `json:"$link"`
	} `json:"ref"`
	MimeType string `json:"mimeType"`
	Size     int64  `json:"size"`
}

// MediaLimits are Rules().Media: the lexicon's, for every account.
func (p *Provider) MediaLimits(context.Context, providers.Account) (providers.MediaRules, error) {
	return p.Rules().Media, nil
}

// Upload sends img's bytes to the account's PDS (POST
// com.atproto.repo.uploadBlob, the raw bytes as the body with its
// Content-Type and Content-Length, §8.3), streamed from img.Open. An image
// over MaxImageBytes is refused (KindInvalidContent, IMAGE_TOO_LARGE)
// before anything is sent: the caller scales it down first
// (Rules().Media.Downscale). The answer's blob object is kept in Ref (as
// JSON) and its CID in ID; ExpiresAt is UploadedAt + BlobLife. Errors are
// classified as Publish's are (session expired, 401, 429 with
// RateLimit-Reset).
func (p *Provider) Upload(ctx context.Context, a providers.Account, img providers.Image) (*providers.Upload, error) {
	if img.Size > MaxImageBytes {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "IMAGE_TOO_LARGE",
			Message: fmt.Sprintf("the image is %d bytes; Bluesky takes at most %d", img.Size, MaxImageBytes)}
	}
	if img.Size <= 0 || img.Open == nil || img.Type == "" {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "NO_IMAGE", Message: "the image has no bytes or type"}
	}
	base, err := p.pds(a)
	if err != nil {
		return nil, err
	}
	var out struct {
		Blob blob `json:"blob"`
	}
	body := &xrpcBody{Type: img.Type, Size: img.Size, Open: img.Open}
	if err := p.call(ctx, p.cfg.ServerClient, base, "com.atproto.repo.uploadBlob", a.AccessToken, nil, true, body, &out); err != nil {
		return nil, err
	}
	if out.Blob.Ref.Link == "" {
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Status: 200, Message: "uploadBlob answered no blob"}
	}
	if out.Blob.Type == "" {
		out.Blob.Type = "blob"
	}
	ref, err := json.Marshal(out.Blob)
	if err != nil {
		return nil, fmt.Errorf("bluesky: encode the blob: %w", err)
	}
	now := p.cfg.Now()
	return &providers.Upload{MediaID: img.MediaID, ID: out.Blob.Ref.Link, Ref: string(ref), UploadedAt: now, ExpiresAt: now.Add(BlobLife)}, nil
}

// Reusable: a blob is referred to again only before its ExpiresAt (no
// network call: the PDS has no way to ask for an unreferenced blob's
// life). Uploading again is cheap and makes the same CID.
func (p *Provider) Reusable(_ context.Context, _ providers.Account, u providers.Upload) (bool, error) {
	return u.Ref != "" && !u.ExpiresAt.IsZero() && p.cfg.Now().Before(u.ExpiresAt), nil
}

// imagesEmbed is app.bsky.embed.images (lexicon app/bsky/embed/images.json).
type imagesEmbed struct {
	Type   string       `json:"$type"`
	Images []embedImage `json:"images"`
}

type embedImage struct {
	// Alt is required by the lexicon, "" allowed.
	Alt         string       `json:"alt"`
	Image       blob         `json:"image"`
	AspectRatio *aspectRatio `json:"aspectRatio,omitempty"`
}

// aspectRatio is app.bsky.embed.defs#aspectRatio: integers ≥ 1.
type aspectRatio struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// embed is the post's app.bsky.embed.images for imgs; nil for none. An
// upload without its blob object (Ref) is an error: a post cannot refer to
// a CID alone.
func embed(imgs []providers.AttachedImage) (*imagesEmbed, error) {
	if len(imgs) == 0 {
		return nil, nil
	}
	if len(imgs) > MaxImages {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "TOO_MANY_IMAGES",
			Message: fmt.Sprintf("the post has %d images; Bluesky takes at most %d", len(imgs), MaxImages)}
	}
	e := &imagesEmbed{Type: "app.bsky.embed.images"}
	for i, img := range imgs {
		var b blob
		if err := json.Unmarshal([]byte(img.Upload.Ref), &b); err != nil || b.Ref.Link == "" {
			return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "NO_BLOB",
				Message: fmt.Sprintf("image %d has no uploaded blob to refer to", i+1)}
		}
		if b.Type == "" {
			b.Type = "blob"
		}
		ei := embedImage{Alt: img.AltText, Image: b}
		if img.Width >= 1 && img.Height >= 1 {
			ei.AspectRatio = &aspectRatio{Width: img.Width, Height: img.Height}
		}
		e.Images = append(e.Images, ei)
	}
	return e, nil
}
