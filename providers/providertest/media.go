package providertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
)

// HeldImage is an image as the network holds it on a post.
type HeldImage struct {
	// Bytes are the image's bytes as the network serves them back; nil
	// when the network re-encodes what it takes (the suite then checks
	// only the order and the alt texts).
	Bytes   []byte
	AltText string
}

// MediaHarness is what the media rows need beyond Harness. Every field is
// optional: nil skips the checks that need it, so a network whose double
// or real server cannot do one still runs the others.
type MediaHarness struct {
	// HoldsImages returns the images, in order, of each post with text
	// that the platform holds for a (one entry a post).
	HoldsImages func(t *testing.T, a providers.Account, text string) [][]HeldImage
	// Uploads counts the image uploads the platform has received for a
	// so far (rows may share an account: the suite counts the rise), so
	// the suite can tell that a repeat uploaded nothing again.
	Uploads func(t *testing.T, a providers.Account) int
	// AnswerUpload makes the platform's next upload for a answer as named
	// ("429": rate limited, "503": unavailable), and reports false when
	// the double cannot.
	AnswerUpload func(t *testing.T, a providers.Account, answer string) bool
	// Forget makes the platform forget u (deleted, or expired unused),
	// and reports false when it cannot.
	Forget func(t *testing.T, a providers.Account, u providers.Upload) bool
}

// TestImage is the n-th test image: a small PNG of its own colour (so two
// images never have the same bytes), width 8+n and height 5 pixels, with
// alt text alt. Its Open counts the readers it hands out that are not
// closed yet in open, when open is not nil.
func TestImage(t testing.TB, n int, alt string, open *atomic.Int64) providers.Image {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8+n, 5))
	for x := range 8 + n {
		for y := range 5 {
			img.Set(x, y, color.RGBA{R: uint8(n * 37), G: uint8(255 - n*11), B: uint8(x * 20), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	return providers.Image{
		MediaID: fmt.Sprintf("%024x", n+1), Type: "image/png", Size: int64(len(data)),
		Width: 8 + n, Height: 5, AltText: alt,
		Open: func(context.Context) (io.ReadCloser, error) {
			if open != nil {
				open.Add(1)
			}
			return &countedReader{Reader: bytes.NewReader(data), open: open}, nil
		},
	}
}

type countedReader struct {
	io.Reader
	open   *atomic.Int64
	closed bool
}

func (r *countedReader) Close() error {
	if !r.closed && r.open != nil {
		r.open.Add(-1)
	}
	r.closed = true
	return nil
}

// imageBytes reads img whole, for comparing with what the network holds.
func imageBytes(t *testing.T, img providers.Image) []byte {
	t.Helper()
	rc, err := img.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runMedia runs the media rows, when the network takes images for the
// harness's accounts (MediaLimits' MaxImages above 0).
func runMedia(t *testing.T, h Harness, payload func(string) providers.Payload) {
	ctx := context.Background()
	m := h.Media
	t.Run("media", func(t *testing.T) {
		probe := h.Account(t)
		limits, err := h.Provider.MediaLimits(ctx, probe)
		if err != nil {
			t.Fatalf("MediaLimits: %v", err)
		}
		if limits.MaxImages <= 0 {
			if _, err := h.Provider.Upload(ctx, probe, TestImage(t, 0, "none", nil)); !errors.Is(err, providers.ErrNoMedia) {
				t.Errorf("Upload with MaxImages 0: %v; want ErrNoMedia", err)
			}
			t.Skip("the network takes no images")
		}

		// upload sends n images for a, checks each handle, and returns
		// them attached in order.
		upload := func(t *testing.T, a providers.Account, tag string, n int) ([]providers.Image, []providers.AttachedImage) {
			t.Helper()
			var open atomic.Int64
			imgs := make([]providers.Image, n)
			attached := make([]providers.AttachedImage, n)
			for i := range n {
				imgs[i] = TestImage(t, i, fmt.Sprintf("%s: image %d of %d — ünïcode", tag, i+1, n), &open)
				before := time.Now().Add(-time.Second)
				u, err := h.Provider.Upload(ctx, a, imgs[i])
				if err != nil {
					t.Fatalf("Upload %d: %v", i+1, err)
				}
				if u.ID == "" || u.MediaID != imgs[i].MediaID || u.UploadedAt.Before(before) {
					t.Errorf("Upload %d: %+v; want the network's id, the media id %s and the time it was taken", i+1, u, imgs[i].MediaID)
				}
				attached[i] = providers.AttachedImage{Upload: *u, AltText: imgs[i].AltText, Width: imgs[i].Width, Height: imgs[i].Height}
			}
			if n := open.Load(); n != 0 {
				t.Errorf("%d image readers left open", n)
			}
			return imgs, attached
		}
		// held checks that the platform holds one post with text for a,
		// with imgs in order and their alt texts.
		held := func(t *testing.T, a providers.Account, text string, imgs []providers.Image) {
			t.Helper()
			if got := h.Holds(t, a, text); got != 1 {
				t.Fatalf("the platform holds %d posts, want 1", got)
			}
			if m.HoldsImages == nil {
				return
			}
			posts := m.HoldsImages(t, a, text)
			if len(posts) != 1 || len(posts[0]) != len(imgs) {
				t.Fatalf("the platform holds posts with images %v, want one post with %d", count(posts), len(imgs))
			}
			for i, got := range posts[0] {
				if got.AltText != imgs[i].AltText {
					t.Errorf("image %d: alt text %q, want %q", i+1, got.AltText, imgs[i].AltText)
				}
				if got.Bytes != nil && !bytes.Equal(got.Bytes, imageBytes(t, imgs[i])) {
					t.Errorf("image %d: the platform holds other bytes than were uploaded (or another order)", i+1)
				}
			}
		}
		// uploadsSince returns a check that the platform received want
		// uploads for a from now on.
		uploadsSince := func(t *testing.T, a providers.Account) func(want int) {
			if m.Uploads == nil {
				return func(int) {}
			}
			before := m.Uploads(t, a)
			return func(want int) {
				t.Helper()
				if got := m.Uploads(t, a) - before; got != want {
					t.Errorf("the platform received %d uploads, want %d", got, want)
				}
			}
		}

		for _, n := range []int{1, limits.MaxImages} {
			t.Run(fmt.Sprintf("%d images, in order, with their alt texts", n), func(t *testing.T) {
				if n == 1 && limits.MaxImages == 1 {
					t.Skip("the 1-image row is the MaxImages row")
				}
				a := h.Account(t)
				text := fmt.Sprintf("conformance: %d images", n)
				uploads := uploadsSince(t, a)
				imgs, attached := upload(t, a, text, n)
				p := payload(text)
				p.Images = attached
				pub, err := h.Provider.Publish(ctx, a, p)
				if err != nil {
					t.Fatalf("Publish with %d images: %v", n, err)
				}
				if pub.PlatformPostID == "" {
					t.Errorf("published %+v", pub)
				}
				held(t, a, text, imgs)
				uploads(n)
			})
		}

		// The activity keeps each upload with the attempt record; a retry
		// asks Reusable and refers to the same upload, never a second one.
		t.Run("a repeat after a lost answer reuses the upload", func(t *testing.T) {
			if h.Provider.Rules().ExactlyOnce.ReconcileWindow() <= 0 {
				t.Skip("no lever declared: PostFlow never repeats an attempt in doubt")
			}
			a := h.Account(t)
			text := "conformance: image, repeat after a lost answer"
			uploads := uploadsSince(t, a)
			imgs, attached := upload(t, a, text, 1)
			if !h.Answer(t, a, "lost") {
				t.Skip("the double cannot lose an answer")
			}
			p := payload(text)
			p.Images = attached
			since := time.Now().Add(-time.Minute)
			if _, err := h.Provider.Publish(ctx, a, p); err == nil {
				t.Fatal("the lost answer was no error")
			}
			// As the activity does (posts.NextStep): a network that can be
			// read back is read first, and a post found is the end of it
			// (its uploads may then be spent: Mastodon's GET of a media
			// attached to a status is 404); otherwise the upload is
			// referred to again.
			var found []providers.Published
			var err error
			if h.Provider.Rules().ExactlyOnce.ReadBack {
				found, err = h.Provider.Find(ctx, a, p, since)
			}
			if err == nil && len(found) == 0 {
				ok, rerr := h.Provider.Reusable(ctx, a, attached[0].Upload)
				if rerr != nil || !ok {
					t.Fatalf("Reusable after the lost answer: %v, %v; want true", ok, rerr)
				}
				_, err = h.Provider.Publish(ctx, a, p)
			}
			if err != nil && providers.KindOf(err) != providers.KindDuplicate {
				t.Fatalf("repeat: %v", err)
			}
			held(t, a, text, imgs)
			uploads(1)
		})

		t.Run("an upload the network forgot is not reusable", func(t *testing.T) {
			if m.Forget == nil {
				t.Skip("the harness cannot make the network forget an upload")
			}
			a := h.Account(t)
			_, attached := upload(t, a, "conformance: forgotten", 1)
			if ok, err := h.Provider.Reusable(ctx, a, attached[0].Upload); err != nil || !ok {
				t.Fatalf("Reusable of a fresh upload: %v, %v; want true", ok, err)
			}
			if !m.Forget(t, a, attached[0].Upload) {
				t.Skip("the double cannot forget this upload")
			}
			if ok, err := h.Provider.Reusable(ctx, a, attached[0].Upload); err != nil || ok {
				t.Errorf("Reusable of a forgotten upload: %v, %v; want false", ok, err)
			}
		})

		for _, row := range []struct {
			answer  string
			kind    providers.Kind
			refused bool
		}{
			{"429", providers.KindRateLimited, true},
			{"503", providers.KindRetryable, true},
		} {
			t.Run("upload answer "+row.answer, func(t *testing.T) {
				if m.AnswerUpload == nil {
					t.Skip("the harness cannot script uploads")
				}
				a := h.Account(t)
				if !m.AnswerUpload(t, a, row.answer) {
					t.Skipf("the double cannot answer an upload with %s", row.answer)
				}
				var open atomic.Int64
				_, err := h.Provider.Upload(ctx, a, TestImage(t, 0, "refused", &open))
				var pe *providers.Error
				if !errors.As(err, &pe) || pe.Kind != row.kind || pe.Refused() != row.refused || pe.Provider != h.Provider.ID() || pe.Code == "" {
					t.Fatalf("error %#v; want kind %s, refused %v, with a code", err, row.kind, row.refused)
				}
				if row.kind == providers.KindRateLimited && pe.RetryAfter <= 0 {
					t.Errorf("a rate limit with no wait: %v", pe)
				}
				if n := open.Load(); n != 0 {
					t.Errorf("%d image readers left open", n)
				}
			})
		}
	})
}

// count is how many images each held post has, for messages.
func count(posts [][]HeldImage) []int {
	out := make([]int, len(posts))
	for i, p := range posts {
		out[i] = len(p)
	}
	return out
}
