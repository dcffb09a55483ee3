package mastodon_test

import (
	"context"
	"image"
	_ "image/png" // the attachments' files are decoded
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/mastodon"
)

// TestGoToSocialImages uploads images to GoToSocial v0.18.3, posts them
// and reads them back. What it answered that differs from Mastodon (the
// contract, and mastodonfake unless SourceURL names GoToSocial):
//   - configuration: max_media_attachments 6, image_size_limit 40 MiB,
//     image_matrix_limit 2147483647, image/apng among the types, and no
//     description_limit, though descriptions over 1,500 characters are
//     refused (400 "image description length must be between 0 and 1500
//     characters ...").
//   - POST /api/v2/media answers 200 with url null (GET /api/v1/media/:id
//     gives it). An empty description is kept as null.
//   - GET /api/v1/media/:id answers 200 for media already attached, the
//     same answer as before (Mastodon: 404), and PUT takes a new
//     description for it; so Reusable says true, and attaching it again
//     is 400 "media already attached to status: <id>".
//   - a status naming media it does not hold is refused with 400 "media
//     not found: <id>" (Mastodon drops the id and posts without it); more
//     than 6 is 400 "media files exceed max count (6)".
//   - limits are 400s, not 422s; a renamed executable is 422 "could not
//     process type media"; a PNG whose header is whole but whose data is
//     garbage is taken at upload (PostFlow decodes before it stores).
func TestGoToSocialImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := startGTS(t)
	a := g.connect(t, "imogen")

	m, err := g.p.MediaLimits(ctx, a)
	if err != nil || m.MaxImages != 6 || m.MaxBytes != 40<<20 || !slices.Contains(m.Types, "image/png") || slices.Contains(m.Types, "video/mp4") ||
		m.AltText.Max != mastodon.GoToSocialDescriptionLimit {
		t.Errorf("limits %+v, %v", m, err)
	}

	u, err := g.p.Upload(ctx, a, imageOf(pngImage(t, 64, 32, 1), "image/png", "a wide image"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := g.p.Reusable(ctx, a, *u); !ok || err != nil {
		t.Errorf("Reusable before the status: %v, %v", ok, err)
	}
	u2, err := g.p.Upload(ctx, a, imageOf(pngImage(t, 16, 16, 2), "image/png", ""))
	if err != nil {
		t.Fatal(err)
	}
	pl := providers.Payload{Text: "two images on GoToSocial", IdempotencyKey: "gts-img-1",
		Images: []providers.AttachedImage{{Upload: *u, AltText: "a wide image"}, {Upload: *u2}}}
	pub, err := g.p.Publish(ctx, a, pl)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the status's media_attachments: in order, described, files that decode", func(t *testing.T) {
		var st struct {
			MediaAttachments []struct {
				ID          string  `json:"id"`
				Type        string  `json:"type"`
				URL         string  `json:"url"`
				Description *string `json:"description"`
			} `json:"media_attachments"`
		}
		g.get(t, a, "/api/v1/statuses/"+pub.PlatformPostID, &st)
		ms := st.MediaAttachments
		if len(ms) != 2 || ms[0].ID != u.ID || ms[1].ID != u2.ID || ms[0].Description == nil || *ms[0].Description != "a wide image" ||
			ms[1].Description != nil || ms[0].Type != "image" {
			t.Fatalf("media_attachments %+v", ms)
		}
		for i, want := range []int{64, 16} {
			res, err := http.Get(ms[i].URL)
			if err != nil {
				t.Fatal(err)
			}
			cfg, format, err := image.DecodeConfig(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || err != nil || format != "png" || cfg.Width != want {
				t.Errorf("file %d: %s, %s %d wide, %v", i, res.Status, format, cfg.Width, err)
			}
		}
	})

	t.Run("found by its text, media and all", func(t *testing.T) {
		found, err := g.p.Find(ctx, a, pl, time.Now().Add(-time.Hour))
		if err != nil || len(found) != 1 || found[0].PlatformPostID != pub.PlatformPostID {
			t.Errorf("Find: %+v, %v", found, err)
		}
	})

	t.Run("attached: GoToSocial answers as before, and refuses it on a second status (400)", func(t *testing.T) {
		if ok, err := g.p.Reusable(ctx, a, *u); !ok || err != nil {
			t.Errorf("Reusable once attached: %v, %v; GoToSocial cannot tell", ok, err)
		}
		_, err := g.p.Publish(ctx, a, providers.Payload{Text: "the same image again", IdempotencyKey: "gts-img-2", Images: []providers.AttachedImage{{Upload: *u}}})
		pe := wantKind(t, err, providers.KindInvalidContent, "HTTP_400")
		if !strings.Contains(pe.Message, "already attached") {
			t.Errorf("message %q", pe.Message)
		}
	})

	for _, tc := range []struct {
		name    string
		publish func() error
		code    string
		message string
	}{
		{name: "media it does not hold", code: "HTTP_400", message: "media not found", publish: func() error {
			_, err := g.p.Publish(ctx, a, providers.Payload{Text: "an unknown image", IdempotencyKey: "gts-img-3",
				Images: []providers.AttachedImage{{Upload: providers.Upload{ID: "01JUNKNOWNMEDIA0000000000"}}}})
			return err
		}},
		{name: "seven images", code: "HTTP_400", message: "exceed max count (6)", publish: func() error {
			var imgs []providers.AttachedImage
			for i := range 7 {
				x, err := g.p.Upload(ctx, a, imageOf(pngImage(t, 4, 4, uint8(10+i)), "image/png", ""))
				if err != nil {
					return err
				}
				imgs = append(imgs, providers.AttachedImage{Upload: *x})
			}
			_, err := g.p.Publish(ctx, a, providers.Payload{Text: "seven images", IdempotencyKey: "gts-img-4", Images: imgs})
			return err
		}},
		{name: "a renamed executable", code: "HTTP_422", message: "could not process", publish: func() error {
			_, err := g.p.Upload(ctx, a, imageOf([]byte("MZ\x90\x00\x03 renamed to .png"), "image/png", ""))
			return err
		}},
		{name: "alt text of 1,501 characters", code: "HTTP_400", message: "between 0 and 1500 characters", publish: func() error {
			_, err := g.p.Upload(ctx, a, imageOf(pngImage(t, 4, 4, 30), "image/png", strings.Repeat("é", 1501)))
			return err
		}},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			pe := wantKind(t, tc.publish(), providers.KindInvalidContent, tc.code)
			if !strings.Contains(pe.Message, tc.message) {
				t.Errorf("message %q; want %q in it", pe.Message, tc.message)
			}
		})
	}
	if _, err := g.p.Upload(ctx, a, imageOf(pngImage(t, 4, 4, 31), "image/png", strings.Repeat("é", 1500))); err != nil {
		t.Errorf("alt text of 1,500 characters: %v", err)
	}
}
