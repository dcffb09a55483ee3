package sandbox_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/sandboxplatform"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/providertest"
	"github.com/postflow/postflow/providers/sandbox"
)

// What the sandbox cannot take is refused as invalid content: before the
// platform is asked where the provider knows the rule, by the platform
// otherwise; a refused token is an auth error.
func TestUploadRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		image func(t *testing.T) providers.Image
		opts  sandboxplatform.Options
		// behaviour, if set, is the user's before the upload.
		behaviour *sandboxplatform.Behaviour
		kind      providers.Kind
		code      string
		opened    bool // the image was read
	}{
		{"a type the sandbox does not take", func(t *testing.T) providers.Image {
			img := providertest.TestImage(t, 0, "", nil)
			img.Type = "image/avif"
			return img
		}, sandboxplatform.Options{}, nil, providers.KindInvalidContent, "MEDIA_TYPE", false},
		{"over 10 MB", func(t *testing.T) providers.Image {
			img := providertest.TestImage(t, 0, "", nil)
			img.Size = sandbox.ImageBytesLimit + 1
			return img
		}, sandboxplatform.Options{}, nil, providers.KindInvalidContent, "MEDIA_TOO_LARGE", false},
		{"over the platform's own cap", func(t *testing.T) providers.Image {
			return providertest.TestImage(t, 0, "", nil)
		}, sandboxplatform.Options{MaxImageBytes: 16}, nil, providers.KindInvalidContent, "too_large", true},
		{"bytes of another type", func(t *testing.T) providers.Image {
			img := providertest.TestImage(t, 0, "", nil)
			img.Type = "image/jpeg"
			return img
		}, sandboxplatform.Options{}, nil, providers.KindInvalidContent, "unsupported_media_type", true},
		{"an expired token", func(t *testing.T) providers.Image {
			return providertest.TestImage(t, 0, "", nil)
		}, sandboxplatform.Options{}, &sandboxplatform.Behaviour{UploadSequence: []string{"expired_token"}}, providers.KindAuth, "token_expired", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, srv := setupWith(t, tc.opts)
			conn := connect(t, p, "Ada")
			if tc.behaviour != nil {
				behave(t, srv, conn.Profile.PlatformUserID, *tc.behaviour)
			}
			a := providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}
			img := tc.image(t)
			inner := img.Open
			opened := false
			img.Open = func(ctx context.Context) (io.ReadCloser, error) {
				opened = true
				return inner(ctx)
			}
			_, err := p.Upload(ctx, a, img)
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Code != tc.code {
				t.Fatalf("Upload: %v; want %s %s", err, tc.kind, tc.code)
			}
			if opened != tc.opened {
				t.Errorf("image read: %v, want %v", opened, tc.opened)
			}
		})
	}
}

// Publish refuses more than 4 images or too long an alt text before the
// platform sees the post.
func TestPublishImageRefusals(t *testing.T) {
	p, srv := setup(t, time.Hour)
	ctx := context.Background()
	conn := connect(t, p, "Ada")
	a := providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}
	u, err := p.Upload(ctx, a, providertest.TestImage(t, 0, "", nil))
	if err != nil {
		t.Fatal(err)
	}
	five := make([]providers.AttachedImage, 5)
	for i := range five {
		five[i] = providers.AttachedImage{Upload: *u}
	}
	for _, tc := range []struct {
		name   string
		images []providers.AttachedImage
		code   string
	}{
		{"five images", five, "TOO_MANY_IMAGES"},
		{"1,501 graphemes of alt text", []providers.AttachedImage{{Upload: *u, AltText: strings.Repeat("é", sandbox.AltTextLimit+1)}}, "ALT_TEXT_TOO_LONG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Publish(ctx, a, providers.Payload{Text: tc.name, Images: tc.images})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != providers.KindInvalidContent || pe.Code != tc.code {
				t.Fatalf("Publish: %v; want invalid content %s", err, tc.code)
			}
			if n := len(feedOf(t, srv, a.PlatformUserID)); n != 0 {
				t.Errorf("the feed holds %d posts", n)
			}
		})
	}
}
