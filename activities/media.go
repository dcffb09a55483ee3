package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/workflows"
)

// MediaLibrary is where the activity reads a post's images.
type MediaLibrary interface {
	// Get returns the organization's media item; media.ErrNotFound if it
	// has none such.
	Get(ctx context.Context, orgID, id string) (*media.Item, error)
	// OpenItem streams the bytes of an item Get returned; the caller
	// closes them.
	OpenItem(ctx context.Context, item *media.Item) (io.ReadCloser, error)
	// Fit re-encodes an image of type typ read from r to take at most
	// maxBytes, under the process's decode memory budget (media.Fit).
	Fit(ctx context.Context, r io.Reader, typ string, maxBytes int64) (*media.Fitted, error)
}

// CodeMediaNotFound: an image of the post is no longer in its
// organization's library (deleted before the post went out).
const CodeMediaNotFound = posts.CodeMediaNotFound

// attachImages makes the post's images for the account ready for the
// network: each one an earlier attempt uploaded is referred to again while
// the network still holds it (Reusable); any other is uploaded, streamed
// from the store, and kept with the result before the post is created
// (contracts §8), so a retry uploads nothing twice. One image at a time:
// a worker holds at most one image per account in memory, and only when
// it must be re-encoded to fit the network's byte limit. prev is the
// result an earlier attempt left (nil for a first attempt).
func (a *Activities) attachImages(ctx context.Context, in workflows.AccountInput, p *posts.Post, prov providers.Provider,
	renew func() (providers.Account, error), account providers.Account, prev *posts.Result) ([]providers.AttachedImage, error) {
	refs := p.MediaFor(in.AccountID)
	if len(refs) == 0 {
		return nil, nil
	}
	if a.Media == nil {
		return nil, errors.New("the post has images and this worker has no media library")
	}
	rules, err := prov.MediaLimits(ctx, account)
	if err != nil {
		rules = prov.Rules().Media
	}
	out := make([]providers.AttachedImage, 0, len(refs))
	for _, ref := range refs {
		item, err := a.Media.Get(ctx, p.OrganizationID, ref.ID)
		if errors.Is(err, media.ErrNotFound) {
			return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: prov.ID(), Code: CodeMediaNotFound,
				Message: fmt.Sprintf("image %s is no longer in the media library; edit the post, then publish again", ref.ID)}
		}
		if err != nil {
			return nil, fmt.Errorf("reading media item %s: %w", ref.ID, err)
		}
		attached := providers.AttachedImage{AltText: ref.AltText, Width: item.Width, Height: item.Height}
		if prev != nil {
			if u, ok := prev.Upload(ref.ID); ok {
				reusable, err := prov.Reusable(ctx, account, u.Upload)
				if err != nil {
					return nil, err
				}
				if reusable {
					attached.Upload = u.Upload
					if u.Width > 0 && u.Height > 0 {
						attached.Width, attached.Height = u.Width, u.Height
					}
					out = append(out, attached)
					continue
				}
			}
		}
		img, adjusted, err := a.imageFor(ctx, item, ref, rules, prov.Name())
		if err != nil {
			return nil, err
		}
		upload := func(account providers.Account) (*providers.Upload, error) {
			at := a.now().UTC()
			up, err := prov.Upload(ctx, account, img)
			a.logFailure(ctx, in, at, posts.StepUpload, err)
			return up, err
		}
		up, err := upload(account)
		if providers.KindOf(err) == providers.KindSessionExpired && renew != nil {
			// Refused before its time: a new session, then once more.
			if account, err = renew(); err == nil {
				up, err = upload(account)
			}
		}
		if err != nil {
			return nil, err
		}
		mu := posts.MediaUpload{Upload: *up, Adjusted: adjusted, Width: img.Width, Height: img.Height}
		mu.MediaID = ref.ID
		if mu.UploadedAt.IsZero() {
			mu.UploadedAt = a.now().UTC()
		}
		if err := a.Posts.SaveUpload(ctx, in.PostID, in.AccountID, mu); err != nil {
			return nil, err
		}
		attached.Upload, attached.Width, attached.Height = mu.Upload, img.Width, img.Height
		out = append(out, attached)
	}
	return out, nil
}

// imageFor is the image as the network gets it: the stored bytes, or,
// when they are over a byte limit the network lets PostFlow fit them to
// (rules.Downscale), a re-encoding that fits, with a note that says so.
func (a *Activities) imageFor(ctx context.Context, item *media.Item, ref posts.MediaRef, rules providers.MediaRules, network string) (providers.Image, string, error) {
	img := providers.Image{MediaID: item.ID, Type: item.Type, Size: item.Size, Width: item.Width, Height: item.Height, AltText: ref.AltText,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			return a.Media.OpenItem(ctx, item)
		}}
	if !rules.Downscale || rules.MaxBytes <= 0 || item.Size <= rules.MaxBytes {
		return img, "", nil
	}
	rc, err := a.Media.OpenItem(ctx, item)
	if err != nil {
		return img, "", fmt.Errorf("reading media item %s: %w", item.ID, err)
	}
	fitted, err := a.Media.Fit(ctx, rc, item.Type, rules.MaxBytes)
	rc.Close()
	if err != nil && ctx.Err() != nil {
		// Cancelled or timed out while waiting for decode memory: the
		// image is not at fault, and a retry may fit it.
		return img, "", fmt.Errorf("fitting media item %s: %w", item.ID, err)
	}
	if err != nil {
		return img, "", &providers.Error{Kind: providers.KindInvalidContent, Code: posts.CodeMediaNotFitted,
			Message: fmt.Sprintf("image %s could not be made to fit %s's %d bytes: %v", item.ID, network, rules.MaxBytes, err)}
	}
	img.Type, img.Size, img.Width, img.Height = fitted.Type, int64(len(fitted.Bytes)), fitted.Width, fitted.Height
	img.Open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(fitted.Bytes)), nil }
	return img, fmt.Sprintf("re-encoded as %s, %dx%d, %d bytes, to fit %s's %d bytes per image",
		fitted.Type, fitted.Width, fitted.Height, len(fitted.Bytes), network, rules.MaxBytes), nil
}
