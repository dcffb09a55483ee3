package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/postflow/postflow/providers"
)

// Image rules of the sandbox platform (internal/sandboxplatform keeps the
// same numbers: this provider talks to it over HTTP only).
const (
	// MaxImages is the most images a post takes.
	MaxImages = 4
	// ImageBytesLimit is the largest image the platform takes, in bytes.
	ImageBytesLimit = 10 << 20
	// AltTextLimit is the longest alt text, in graphemes.
	AltTextLimit = 1500
)

// imageTypes are the types the platform takes.
var imageTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// mediaRules: up to 4 JPEG, PNG, GIF or WebP images of at most 10 MB,
// with alt text of up to 1,500 graphemes.
func mediaRules() providers.MediaRules {
	return providers.MediaRules{
		MaxImages: MaxImages,
		Types:     imageTypes,
		MaxBytes:  ImageBytesLimit,
		AltText:   providers.Graphemes(AltTextLimit),
	}
}

// MediaLimits are the same for every sandbox user.
func (p *Provider) MediaLimits(context.Context, providers.Account) (providers.MediaRules, error) {
	return p.Rules().Media, nil
}

// Upload streams img to the platform (POST /api/media: the raw bytes,
// their type in Content-Type, Content-Length img.Size) and returns the
// platform's id for it. The platform keeps an image until its user
// deletes it, so the Upload has no expiry. Errors are *providers.Error as
// for Publish (a 413 or 415 is invalid content), or img.Open's wrapped.
func (p *Provider) Upload(ctx context.Context, a providers.Account, img providers.Image) (*providers.Upload, error) {
	if !slices.Contains(imageTypes, img.Type) {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "MEDIA_TYPE",
			Message: fmt.Sprintf("the sandbox takes JPEG, PNG, GIF and WebP images, not %s", img.Type)}
	}
	if img.Size > ImageBytesLimit {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "MEDIA_TOO_LARGE",
			Message: fmt.Sprintf("the image is %d bytes; the sandbox takes at most %d", img.Size, ImageBytesLimit)}
	}
	r, err := img.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open image %s: %w", img.MediaID, err)
	}
	defer r.Close()
	var out struct{ ID string }
	if err := p.send(ctx, http.MethodPost, "/api/media", a.AccessToken, "", &body{r: r, size: img.Size, typ: img.Type}, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Message: "the sandbox took the image but named no id"}
	}
	return &providers.Upload{MediaID: img.MediaID, ID: out.ID, UploadedAt: p.cfg.Now().UTC()}, nil
}

// Reusable asks the platform whether it still holds u for the user (GET
// /api/media/{id}): 200 yes, 404 no (deleted); other failures are
// *providers.Error as for Publish.
func (p *Provider) Reusable(ctx context.Context, a providers.Account, u providers.Upload) (bool, error) {
	if u.ID == "" {
		return false, nil
	}
	err := p.send(ctx, http.MethodGet, "/api/media/"+url.PathEscape(u.ID), a.AccessToken, "", nil, nil)
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// post is the body of POST /api/posts.
type post struct {
	Text  string      `json:"text"`
	Media []postImage `json:"media,omitempty"`
}

type postImage struct {
	ID      string `json:"id"`
	AltText string `json:"altText"`
}

// postImages names a post's images as the platform takes them, or refuses
// them before it sees them: more than MaxImages, or an alt text over the
// limit.
func postImages(images []providers.AttachedImage) ([]postImage, error) {
	if len(images) > MaxImages {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "TOO_MANY_IMAGES",
			Message: fmt.Sprintf("the post has %d images; the sandbox takes at most %d", len(images), MaxImages)}
	}
	alt := mediaRules().AltText
	out := make([]postImage, len(images))
	for i, img := range images {
		if n := alt.Count(img.AltText); n > alt.Max {
			return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "ALT_TEXT_TOO_LONG",
				Message: fmt.Sprintf("the alt text of image %d is %d %s; the sandbox takes at most %d", i+1, n, alt.Unit, alt.Max)}
		}
		out[i] = postImage{ID: img.Upload.ID, AltText: img.AltText}
	}
	return out, nil
}
