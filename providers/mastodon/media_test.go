package mastodon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/mastodon"
	"github.com/postflow/postflow/providers/mastodon/mastodonfake"
	"github.com/postflow/postflow/providers/providertest"
)

// setupMedia is setup with polls a millisecond apart.
func setupMedia(t *testing.T) (*mastodon.Provider, *mastodonfake.Server, providers.Account) {
	t.Helper()
	fake := mastodonfake.New()
	t.Cleanup(fake.Close)
	p, err := mastodon.New(mastodon.Config{RedirectURI: redirectURI, Apps: &providertest.Apps{}, Servers: netguard.Policy{AllowLocal: true},
		MediaPoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p, fake, account(connect(t, p, fake, "alice"))
}

// pngImage is a w×h PNG with a seed-coloured pixel, so images differ.
func pngImage(t testing.TB, w, h int, seed uint8) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	m.Set(0, 0, color.NRGBA{R: seed, G: 255 - seed, B: 7, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func imageOf(b []byte, typ, alt string) providers.Image {
	return providers.Image{MediaID: "0123456789abcdef01234567", Type: typ, Size: int64(len(b)), AltText: alt, Width: 1, Height: 1,
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

func TestMediaLimits(t *testing.T) {
	all := []string{"image/jpeg", "image/png", "image/gif", "image/webp"}
	for _, tc := range []struct {
		name      string
		set       func(*mastodonfake.Server)
		images    int
		types     []string
		bytes     int64
		pixels    int64
		altText   int
		altCounts string // a text whose count is altText's unit's
		altCount  int
	}{
		{name: "Mastodon 4.4: everything said", set: func(*mastodonfake.Server) {}, images: 4,
			types: []string{"image/jpeg", "image/png", "image/gif", "image/heic", "image/webp", "image/avif"},
			bytes: 16 << 20, pixels: 33_177_600, altText: 1500, altCounts: "é👩‍👩‍👧", altCount: 6},
		{name: "an instance's own", set: func(s *mastodonfake.Server) {
			s.MaxMediaAttachments, s.MediaTypes, s.ImageSizeLimit, s.DescriptionLimit = 6, []string{"image/png", "video/mp4"}, 1000, 10
		}, images: 6, types: []string{"image/png"}, bytes: 1000, pixels: 33_177_600, altText: 10},
		{name: "before 4.4, no description limit; no types, no count: defaults", set: func(s *mastodonfake.Server) {
			s.DescriptionLimit, s.MediaTypes, s.MaxMediaAttachments = 0, nil, 0
		}, images: 4, types: all, bytes: 16 << 20, pixels: 33_177_600},
		{name: "GoToSocial says no alt text limit but applies 1,500", set: func(s *mastodonfake.Server) {
			s.DescriptionLimit, s.SourceURL = 0, "https://github.com/superseriousbusiness/gotosocial"
		}, images: 4, types: []string{"image/jpeg", "image/png", "image/gif", "image/heic", "image/webp", "image/avif"},
			bytes: 16 << 20, pixels: 33_177_600, altText: 1500},
		{name: "never read: defaults, no limits", set: func(s *mastodonfake.Server) { s.InstanceDown = true }, images: 4, types: all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake, a := setupMedia(t)
			fake.Configure(tc.set)
			m, err := p.MediaLimits(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			if m.MaxImages != tc.images || strings.Join(m.Types, ",") != strings.Join(tc.types, ",") || m.MaxBytes != tc.bytes ||
				m.MaxPixels != tc.pixels || m.AltText.Max != tc.altText || m.Downscale {
				t.Errorf("rules %+v", m)
			}
			if tc.altCounts != "" && m.AltText.Count(tc.altCounts) != tc.altCount {
				t.Errorf("alt text %q counts %d, want %d", tc.altCounts, m.AltText.Count(tc.altCounts), tc.altCount)
			}
			before := fake.Calls("GET /api/v2/instance")
			if _, err := p.MediaLimits(context.Background(), a); err != nil || fake.Calls("GET /api/v2/instance") != before {
				t.Errorf("read again (%v): the limits are cached with the text limits", err)
			}
			if _, err := p.TextLimits(context.Background(), a); err != nil || fake.Calls("GET /api/v2/instance") != before {
				t.Errorf("read again by TextLimits (%v)", err)
			}
		})
	}
}

func TestUploadAndPublish(t *testing.T) {
	ctx := context.Background()
	p, fake, a := setupMedia(t)
	b := pngImage(t, 20, 10, 1)

	u, err := p.Upload(ctx, a, imageOf(b, "image/png", "a red dot, described"))
	if err != nil {
		t.Fatal(err)
	}
	ms := fake.Media("1")
	if len(ms) != 1 || ms[0].ID != u.ID || ms[0].Description != "a red dot, described" || ms[0].Type != "image/png" ||
		ms[0].Size != int64(len(b)) || ms[0].ContentLength <= int64(len(b)) {
		t.Fatalf("upload %+v; the instance holds %+v (want the bytes, the description and a Content-Length)", u, ms)
	}
	if u.MediaID != "0123456789abcdef01234567" || u.UploadedAt.IsZero() || !u.ExpiresAt.IsZero() || fake.Calls("GET /api/v1/media/"+u.ID) != 0 {
		t.Errorf("upload %+v; polled %d times after a 200", u, fake.Calls("GET /api/v1/media/"+u.ID))
	}
	if ok, err := p.Reusable(ctx, a, *u); !ok || err != nil {
		t.Errorf("Reusable before the status: %v, %v", ok, err)
	}
	two, err := p.Upload(ctx, a, imageOf(pngImage(t, 5, 5, 2), "image/png", ""))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := p.Publish(ctx, a, providers.Payload{Text: "two images", IdempotencyKey: "media-1",
		Images: []providers.AttachedImage{{Upload: *two}, {Upload: *u, AltText: "a red dot, described"}}})
	if err != nil {
		t.Fatal(err)
	}
	sts := fake.Statuses("1")
	if len(sts) != 1 || sts[0].ID != pub.PlatformPostID || strings.Join(sts[0].MediaIDs, ",") != two.ID+","+u.ID {
		t.Errorf("statuses %+v; want the two media in order", sts)
	}
	if ok, err := p.Reusable(ctx, a, *u); ok || err != nil {
		t.Errorf("Reusable once attached: %v, %v; Mastodon answers 404", ok, err)
	}
	three, _ := p.Upload(ctx, a, imageOf(pngImage(t, 5, 5, 3), "image/png", ""))
	fake.ForgetMedia(three.ID)
	if ok, err := p.Reusable(ctx, a, *three); ok || err != nil {
		t.Errorf("Reusable once deleted: %v, %v", ok, err)
	}
	found, err := p.Find(ctx, a, providers.Payload{Text: "two images"}, time.Time{})
	if err != nil || len(found) != 1 || found[0].PlatformPostID != pub.PlatformPostID {
		t.Errorf("Find: %+v, %v; a status with media is found by its text", found, err)
	}
}

func TestUploadProcessing(t *testing.T) {
	ctx := context.Background()
	p, fake, a := setupMedia(t)
	fake.Configure(func(s *mastodonfake.Server) { s.AsyncType, s.ProcessingPolls = "image/png", 3 })
	u, err := p.Upload(ctx, a, imageOf(pngImage(t, 4, 4, 9), "image/png", ""))
	if err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("GET /api/v1/media/" + u.ID); n != 4 {
		t.Errorf("polled %d times; want 3 × 206 and a 200", n)
	}
	if _, err := p.Publish(ctx, a, providers.Payload{Text: "processed", IdempotencyKey: "k-processed", Images: []providers.AttachedImage{{Upload: *u}}}); err != nil {
		t.Fatalf("a processed image: %v", err)
	}

	t.Run("processing longer than the caller waits: retryable", func(t *testing.T) {
		fake.Configure(func(s *mastodonfake.Server) { s.ProcessingPolls = 1 << 30 })
		// Long enough that the deadline never cuts the upload POST on a
		// loaded machine; it then lands in a wait or a poll, both MEDIA_PROCESSING.
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := p.Upload(cctx, a, imageOf(pngImage(t, 4, 4, 10), "image/png", ""))
		wantKind(t, err, providers.KindRetryable, "MEDIA_PROCESSING")
	})

	t.Run("the caller's deadline during a poll: retryable, still processing", func(t *testing.T) {
		fake.Configure(func(s *mastodonfake.Server) { s.ProcessingPolls = 1 << 30 })
		// The polls hang until the client gives up, so the deadline lands
		// inside a GET rather than a wait.
		target, _ := url.Parse(fake.URL)
		proxy := httputil.NewSingleHostReverseProxy(target)
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/media/") {
				<-r.Context().Done()
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		defer hang.Close()
		ha := a
		ha.Server = hang.URL
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := p.Upload(cctx, ha, imageOf(pngImage(t, 4, 4, 12), "image/png", ""))
		pe := wantKind(t, err, providers.KindRetryable, "MEDIA_PROCESSING")
		if !errors.Is(pe, context.DeadlineExceeded) {
			t.Errorf("error %v; want the caller's deadline as its cause", pe)
		}
	})

	t.Run("a status whose media are processing: a short wait, then posted", func(t *testing.T) {
		fake.Configure(func(s *mastodonfake.Server) { s.ProcessingPolls = 0 })
		id := rawUpload(t, fake, a.AccessToken, pngImage(t, 4, 4, 11))
		pl := providers.Payload{Text: "not ready", IdempotencyKey: "k-not-ready", Images: []providers.AttachedImage{{Upload: providers.Upload{ID: id}}}}
		_, err := p.Publish(ctx, a, pl)
		pe := wantKind(t, err, providers.KindRateLimited, "MEDIA_NOT_READY")
		if pe.RetryAfter != mastodon.NotReadyWait || !pe.Refused() {
			t.Errorf("RetryAfter %s, refused %v", pe.RetryAfter, pe.Refused())
		}
		if ok, err := p.Reusable(ctx, a, providers.Upload{ID: id}); !ok || err != nil { // the poll that finds it done
			t.Fatalf("Reusable: %v, %v", ok, err)
		}
		if _, err := p.Publish(ctx, a, pl); err != nil {
			t.Errorf("once processed: %v", err)
		}
	})
}

// rawUpload uploads b to the fake past the provider; the media id.
func rawUpload(t *testing.T, fake *mastodonfake.Server, token string, b []byte) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "x.png")
	_, _ = fw.Write(b)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, fake.URL+"/api/v2/media", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m struct{ ID string }
	if err := jsonDecode(res.Body, &m); err != nil || m.ID == "" {
		t.Fatalf("upload: %s %v", res.Status, err)
	}
	return m.ID
}

func TestUploadRefused(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		answer  string
		set     func(*mastodonfake.Server)
		img     []byte
		alt     string
		kind    providers.Kind
		code    string
		message string
	}{
		{name: "429: until X-RateLimit-Reset", answer: "429", kind: providers.KindRateLimited, code: "HTTP_429"},
		{name: "401", answer: "401", kind: providers.KindAuth, code: "HTTP_401"},
		{name: "422: the instance's message", answer: "422", kind: providers.KindInvalidContent, code: "HTTP_422", message: "File could not be processed"},
		{name: "503", answer: "503", kind: providers.KindRetryable, code: "HTTP_503"},
		{name: "a renamed executable", img: []byte("MZ\x90\x00\x03 renamed to .png"), kind: providers.KindInvalidContent, code: "HTTP_422", message: "content type is invalid"},
		{name: "over image_size_limit", set: func(s *mastodonfake.Server) { s.ImageSizeLimit = 50 }, kind: providers.KindInvalidContent, code: "HTTP_422", message: "file size"},
		{name: "alt text over description_limit", set: func(s *mastodonfake.Server) { s.DescriptionLimit = 3 }, alt: "four", kind: providers.KindInvalidContent, code: "HTTP_422", message: "Description is too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake, a := setupMedia(t)
			fake.Configure(func(s *mastodonfake.Server) {
				if tc.answer != "" {
					s.MediaAnswers["1"] = []string{tc.answer}
				}
				if tc.set != nil {
					tc.set(s)
				}
			})
			img := tc.img
			if img == nil {
				img = pngImage(t, 10, 10, 5)
			}
			_, err := p.Upload(ctx, a, imageOf(img, "image/png", tc.alt))
			pe := wantKind(t, err, tc.kind, tc.code)
			if !strings.Contains(pe.Message, tc.message) {
				t.Errorf("message %q; want %q in it", pe.Message, tc.message)
			}
			if tc.kind == providers.KindRateLimited && (pe.RetryAfter < 20*time.Second || pe.RetryAfter > 31*time.Second) {
				t.Errorf("RetryAfter %s; want about 30 s", pe.RetryAfter)
			}
			if n := fake.Calls("POST /api/v2/media"); n != 1 || len(fake.Media("1")) != 0 {
				t.Errorf("%d uploads, %d held; want one call, nothing held", n, len(fake.Media("1")))
			}
		})
	}
}

func wantKind(t *testing.T, err error, kind providers.Kind, code string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != kind || (code != "" && pe.Code != code) {
		t.Fatalf("error %v; want kind %s, code %q", err, kind, code)
	}
	return pe
}

func jsonDecode(r io.Reader, out any) error { return json.NewDecoder(r).Decode(out) }

// TestReusableOnceAttached: an upload a status took cannot be attached to
// another. Mastodon's GET answers 404 and Reusable says false; GoToSocial's
// answers 200 as before, so Reusable cannot tell, and attaching it again
// is refused (400).
func TestReusableOnceAttached(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, sourceURL string
		gts             bool
	}{
		{name: "Mastodon"},
		{name: "GoToSocial", sourceURL: "https://github.com/superseriousbusiness/gotosocial", gts: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake, a := setupMedia(t)
			fake.Configure(func(s *mastodonfake.Server) { s.SourceURL = tc.sourceURL })
			u, err := p.Upload(ctx, a, imageOf(pngImage(t, 4, 4, 1), "image/png", ""))
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := p.Reusable(ctx, a, *u); !ok || err != nil {
				t.Fatalf("Reusable before: %v, %v", ok, err)
			}
			if _, err := p.Publish(ctx, a, providers.Payload{Text: "once", IdempotencyKey: "k1", Images: []providers.AttachedImage{{Upload: *u}}}); err != nil {
				t.Fatal(err)
			}
			if ok, err := p.Reusable(ctx, a, *u); ok != tc.gts || err != nil {
				t.Errorf("Reusable once attached: %v, %v; want %v", ok, err, tc.gts)
			}
			if tc.gts {
				_, err := p.Publish(ctx, a, providers.Payload{Text: "again", IdempotencyKey: "k3", Images: []providers.AttachedImage{{Upload: *u}}})
				wantKind(t, err, providers.KindInvalidContent, "HTTP_400")
			}
			// An id the instance does not hold: Mastodon posts without it,
			// GoToSocial refuses the status.
			_, err = p.Publish(ctx, a, providers.Payload{Text: "unknown", IdempotencyKey: "k2", Images: []providers.AttachedImage{{Upload: providers.Upload{ID: "999"}}}})
			if tc.gts {
				wantKind(t, err, providers.KindInvalidContent, "HTTP_400")
			} else if err != nil {
				t.Errorf("Mastodon drops an unknown media id: %v", err)
			}
		})
	}
}
