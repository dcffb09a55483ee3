package linkedin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/linkedin"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
	"github.com/postflow/postflow/providers/providertest"
)

func member(fake *linkedinfake.Server) providers.Account {
	return providers.Account{PlatformUserID: "urn:li:person:" + fake.Sub, AccessToken: fake.IssueAccessToken()}
}

// The PUT carries the bytes with their length and type; the image is
// the author's, and Upload returns once LinkedIn has processed it.
func TestUploadStreamsToTheUploadURL(t *testing.T) {
	p, fake := setup(t, time.Now())
	fake.Configure(func(s *linkedinfake.Server) { s.ProcessingGETs = 3 })
	a := member(fake)
	var open atomic.Int64
	img := providertest.TestImage(t, 2, "a test card", &open)
	u, err := p.Upload(context.Background(), a, img)
	if err != nil {
		t.Fatal(err)
	}
	held, ok := fake.Image(u.ID)
	if !ok || held.Owner != a.PlatformUserID || held.Status != "AVAILABLE" || held.Uploads != 1 || !held.Authorized ||
		held.ContentType != "image/png" || int64(len(held.Bytes)) != img.Size {
		t.Errorf("LinkedIn holds %+v (found %v); want the member's AVAILABLE image, uploaded once with a bearer token", held, ok)
	}
	if open.Load() != 0 {
		t.Error("the image's reader was left open")
	}
	var put *http.Request
	for _, r := range fake.Requests() {
		if r.Method == http.MethodPut {
			put = r
		}
	}
	if put == nil || put.ContentLength != img.Size {
		t.Errorf("PUT %v; want Content-Length %d", put, img.Size)
	}
	if !u.ExpiresAt.IsZero() || u.UploadedAt.IsZero() {
		t.Errorf("upload %+v; LinkedIn states no expiry", u)
	}
}

// A token that may not read images (only w_member_social) still uploads:
// the wait is skipped, not failed.
func TestUploadWithoutReadingImages(t *testing.T) {
	p, fake := setup(t, time.Now())
	fake.Configure(func(s *linkedinfake.Server) { s.ForbidImageReads = true; s.ProcessingGETs = 0 })
	u, err := p.Upload(context.Background(), member(fake), providertest.TestImage(t, 0, "", nil))
	if err != nil || !strings.HasPrefix(u.ID, "urn:li:image:") {
		t.Fatalf("Upload: %+v, %v", u, err)
	}
	if ok, err := p.Reusable(context.Background(), member(fake), *u); ok || err != nil {
		t.Errorf("Reusable when LinkedIn may not be asked: %v, %v; want false (upload again)", ok, err)
	}
}

// Failures of each step are classified as Publish's are, and none names
// the upload URL (signed in its query) or the token.
func TestUploadErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(s *linkedinfake.Server)
		kind    providers.Kind
		code    string
		refused bool
	}{
		{"initialize 429", func(s *linkedinfake.Server) { s.UploadAnswers = []string{"429"} }, providers.KindRateLimited, "TOO_MANY_REQUESTS", true},
		{"initialize 500", func(s *linkedinfake.Server) { s.UploadAnswers = []string{"500"} }, providers.KindRetryable, "HTTP_500", false},
		{"initialize 401", func(s *linkedinfake.Server) { s.UploadAnswers = []string{"401"} }, providers.KindAuth, "EXPIRED_ACCESS_TOKEN", true},
		{"PUT 503", func(s *linkedinfake.Server) { s.PutAnswers = []string{"503"} }, providers.KindRetryable, "HTTP_503", true},
		{"PUT 429", func(s *linkedinfake.Server) { s.PutAnswers = []string{"429"} }, providers.KindRateLimited, "TOO_MANY_REQUESTS", true},
		{"processing failed", func(s *linkedinfake.Server) { s.ProcessingFails = true }, providers.KindInvalidContent, "MEDIA_ASSET_PROCESSING_FAILED", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake := setup(t, time.Now())
			fake.Configure(tc.set)
			a := member(fake)
			_, err := p.Upload(context.Background(), a, providertest.TestImage(t, 0, "", nil))
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Code != tc.code || pe.Refused() != tc.refused {
				t.Fatalf("Upload: %v; want %s %s, refused %v", err, tc.kind, tc.code, tc.refused)
			}
			if strings.Contains(err.Error(), "ut=") || strings.Contains(err.Error(), a.AccessToken) {
				t.Errorf("the error names a secret: %v", err)
			}
		})
	}
}

// What LinkedIn does not take is refused before it is asked, and the
// image is not read.
func TestUploadRefusedBeforeTheCall(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(img *providers.Image)
		code string
	}{
		{"a WebP", func(img *providers.Image) { img.Type = "image/webp" }, "MEDIA_TYPE"},
		{"36,152,320 pixels", func(img *providers.Image) { img.Width, img.Height = 7360, 4912 }, "MEDIA_TOO_MANY_PIXELS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake := setup(t, time.Now())
			var open atomic.Int64
			img := providertest.TestImage(t, 0, "", &open)
			tc.edit(&img)
			_, err := p.Upload(context.Background(), member(fake), img)
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != providers.KindInvalidContent || pe.Code != tc.code {
				t.Fatalf("Upload: %v; want invalid content %s", err, tc.code)
			}
			if len(fake.Requests()) != 0 || len(fake.Images()) != 0 {
				t.Errorf("LinkedIn was asked: %d requests", len(fake.Requests()))
			}
		})
	}
	// One row fewer is taken.
	p, fake := setup(t, time.Now())
	img := providertest.TestImage(t, 0, "", nil)
	img.Width, img.Height = 7360, 4911
	if _, err := p.Upload(context.Background(), member(fake), img); err != nil {
		t.Errorf("Upload of %d pixels: %v", img.Width*img.Height, err)
	}
}

// A PUT that gets no answer is a network failure; its message and the
// error it wraps keep the upload URL's signature out.
func TestUploadNetworkErrorHidesTheURL(t *testing.T) {
	p, fake := setup(t, time.Now())
	var signed string
	hang := &http.Client{Timeout: 5 * time.Second, Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut {
			signed = r.URL.String()
			return nil, errors.New("connection reset by peer")
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	cfg := fake.ProviderConfig()
	cfg.HTTPClient = hang
	p, err := linkedin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Upload(context.Background(), member(fake), providertest.TestImage(t, 0, "", nil))
	if providers.KindOf(err) != providers.KindRetryable || signed == "" {
		t.Fatalf("Upload: %v; want a retryable network error", err)
	}
	q, _ := url.Parse(signed)
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), q.Query().Get("ut")) {
			t.Errorf("%T names the upload URL's signature: %v", e, e)
		}
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Reusable answers from the image's status: what LinkedIn holds ready (or
// soon) is reused; what it lost or never got is uploaded again.
func TestReusable(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// make returns an upload in the state the row is about.
		make func(t *testing.T, p *linkedin.Provider, fake *linkedinfake.Server, a providers.Account) providers.Upload
		want bool
	}{
		{"available", func(t *testing.T, p *linkedin.Provider, _ *linkedinfake.Server, a providers.Account) providers.Upload {
			return mustUpload(t, p, a)
		}, true},
		{"processing, then available", func(t *testing.T, p *linkedin.Provider, fake *linkedinfake.Server, a providers.Account) providers.Upload {
			fake.Configure(func(s *linkedinfake.Server) { s.ForbidImageReads = true })
			u := mustUpload(t, p, a) // PROCESSING, unread
			fake.Configure(func(s *linkedinfake.Server) { s.ForbidImageReads = false })
			return u
		}, true},
		{"processing failed", func(t *testing.T, p *linkedin.Provider, fake *linkedinfake.Server, a providers.Account) providers.Upload {
			fake.Configure(func(s *linkedinfake.Server) {
				s.ForbidImageReads = true
				s.ProcessingFails = true
				s.ProcessingGETs = 0
			})
			u := mustUpload(t, p, a)
			fake.Configure(func(s *linkedinfake.Server) { s.ForbidImageReads = false })
			return u
		}, false},
		{"waiting for its upload", func(t *testing.T, _ *linkedin.Provider, fake *linkedinfake.Server, a providers.Account) providers.Upload {
			fake.Configure(func(s *linkedinfake.Server) { s.PutAnswers = []string{"503"} })
			urn := initialized(t, fake, a)
			return providers.Upload{ID: urn}
		}, false},
		{"forgotten", func(t *testing.T, p *linkedin.Provider, fake *linkedinfake.Server, a providers.Account) providers.Upload {
			u := mustUpload(t, p, a)
			fake.ForgetImage(u.ID)
			return u
		}, false},
		{"not an image URN", func(*testing.T, *linkedin.Provider, *linkedinfake.Server, providers.Account) providers.Upload {
			return providers.Upload{ID: "bafkreigh2akiscaildc"}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake := setup(t, time.Now())
			a := member(fake)
			u := tc.make(t, p, fake, a)
			got, err := p.Reusable(ctx, a, u)
			if err != nil || got != tc.want {
				t.Errorf("Reusable: %v, %v; want %v", got, err, tc.want)
			}
		})
	}

	t.Run("an expired token is an auth error", func(t *testing.T) {
		p, fake := setup(t, time.Now())
		a := member(fake)
		u := mustUpload(t, p, a)
		fake.ExpireAccessToken(a.AccessToken)
		if _, err := p.Reusable(ctx, a, u); providers.KindOf(err) != providers.KindAuth {
			t.Errorf("Reusable with an expired token: %v; want an auth error", err)
		}
	})
}

func mustUpload(t *testing.T, p *linkedin.Provider, a providers.Account) providers.Upload {
	t.Helper()
	u, err := p.Upload(context.Background(), a, providertest.TestImage(t, 1, "", nil))
	if err != nil {
		t.Fatal(err)
	}
	return *u
}

// initialized returns the URN of an image initialized for a whose PUT
// failed (the fake's PutAnswers say so), as a worker killed mid-upload
// leaves it.
func initialized(t *testing.T, fake *linkedinfake.Server, a providers.Account) string {
	t.Helper()
	cfg := fake.ProviderConfig()
	p, err := linkedin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Upload(context.Background(), a, providertest.TestImage(t, 3, "", nil)); err == nil {
		t.Fatal("the PUT went through")
	}
	imgs := fake.Images()
	if len(imgs) == 0 || imgs[len(imgs)-1].Status != "WAITING_UPLOAD" {
		t.Fatalf("images %+v; want one waiting for its upload", imgs)
	}
	return imgs[len(imgs)-1].URN
}

// Publish refers to the images as the contract says, and LinkedIn's
// refusals of them are classified: an image not ready yet is a wait, one
// LinkedIn could not process is invalid content.
func TestPublishImages(t *testing.T) {
	ctx := context.Background()
	attach := func(us ...providers.Upload) []providers.AttachedImage {
		var out []providers.AttachedImage
		for i, u := range us {
			out = append(out, providers.AttachedImage{Upload: u, AltText: fmt.Sprint("alt ", i)})
		}
		return out
	}
	t.Run("one image is content.media, two are content.multiImage", func(t *testing.T) {
		p, fake := setup(t, time.Now())
		a := member(fake)
		one, two := mustUpload(t, p, a), mustUpload(t, p, a)
		if _, err := p.Publish(ctx, a, providers.Payload{Text: "one", Images: attach(one)}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Publish(ctx, a, providers.Payload{Text: "two", Images: attach(two, one)}); err != nil {
			t.Fatal(err)
		}
		posts := fake.Posts()
		if len(posts) != 2 || len(posts[0].Images) != 1 || posts[0].Images[0] != (linkedinfake.PostImage{URN: one.ID, AltText: "alt 0"}) ||
			len(posts[1].Images) != 2 || posts[1].Images[0].URN != two.ID || posts[1].Images[1].URN != one.ID {
			t.Errorf("posts %+v", posts)
		}
	})

	for _, tc := range []struct {
		name    string
		images  func(t *testing.T, p *linkedin.Provider, fake *linkedinfake.Server, a providers.Account) []providers.AttachedImage
		kind    providers.Kind
		code    string
		refused bool
		calls   bool // LinkedIn is asked at all
	}{
		{"an image still waiting for its upload", func(t *testing.T, _ *linkedin.Provider, fake *linkedinfake.Server, a providers.Account) []providers.AttachedImage {
			fake.Configure(func(s *linkedinfake.Server) { s.PutAnswers = []string{"503"} })
			return attach(providers.Upload{ID: initialized(t, fake, a)})
		}, providers.KindRetryable, "MEDIA_ASSET_WAITING_UPLOAD", true, true},
		{"an image LinkedIn could not process", func(t *testing.T, p *linkedin.Provider, fake *linkedinfake.Server, a providers.Account) []providers.AttachedImage {
			fake.Configure(func(s *linkedinfake.Server) {
				s.ForbidImageReads = true
				s.ProcessingFails = true
				s.ProcessingGETs = 0
			})
			return attach(mustUpload(t, p, a))
		}, providers.KindInvalidContent, "MEDIA_ASSET_PROCESSING_FAILED", true, true},
		{"an image LinkedIn forgot", func(t *testing.T, p *linkedin.Provider, fake *linkedinfake.Server, a providers.Account) []providers.AttachedImage {
			u := mustUpload(t, p, a)
			fake.ForgetImage(u.ID)
			return attach(u)
		}, providers.KindInvalidContent, "INVALID_URN", true, true},
		{"21 images", func(t *testing.T, p *linkedin.Provider, _ *linkedinfake.Server, a providers.Account) []providers.AttachedImage {
			u := mustUpload(t, p, a)
			us := make([]providers.Upload, 21)
			for i := range us {
				us[i] = u
			}
			return attach(us...)
		}, providers.KindInvalidContent, "TOO_MANY_IMAGES", true, false},
		{"alt text over 4,086 UTF-16 code units", func(t *testing.T, p *linkedin.Provider, _ *linkedinfake.Server, a providers.Account) []providers.AttachedImage {
			return []providers.AttachedImage{{Upload: mustUpload(t, p, a), AltText: strings.Repeat("😀", 2044)}}
		}, providers.KindInvalidContent, "ALT_TEXT_TOO_LONG", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake := setup(t, time.Now())
			a := member(fake)
			images := tc.images(t, p, fake, a)
			before := len(fake.Requests())
			_, err := p.Publish(ctx, a, providers.Payload{Text: tc.name, Images: images})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Code != tc.code || pe.Refused() != tc.refused {
				t.Fatalf("Publish: %v; want %s %s, refused %v", err, tc.kind, tc.code, tc.refused)
			}
			if asked := len(fake.Requests()) > before; asked != tc.calls {
				t.Errorf("LinkedIn asked: %v, want %v", asked, tc.calls)
			}
			if len(fake.Posts()) != 0 {
				t.Errorf("LinkedIn holds %d posts, want none", len(fake.Posts()))
			}
		})
	}
}

// The image's owner is the post's author: a page's images are the page's,
// and a page the member holds no role on may not own one.
func TestUploadOwner(t *testing.T) {
	p, fake := setupPages(t)
	fake.Configure(func(s *linkedinfake.Server) {
		s.ACLs = append(s.ACLs, linkedinfake.ACL{Sub: s.Sub, OrganizationID: "1001", Role: "ADMINISTRATOR"})
	})
	token := fake.IssueAccessToken(pageScopes...)
	u, err := p.Upload(context.Background(), providers.Account{PlatformUserID: linkedin.OrganizationURN("1001"), AccessToken: token}, providertest.TestImage(t, 0, "", nil))
	if err != nil {
		t.Fatal(err)
	}
	if img, _ := fake.Image(u.ID); img.Owner != linkedin.OrganizationURN("1001") {
		t.Errorf("owner %q, want the page", img.Owner)
	}
	_, err = p.Upload(context.Background(), providers.Account{PlatformUserID: linkedin.OrganizationURN("2002"), AccessToken: token}, providertest.TestImage(t, 0, "", nil))
	if providers.KindOf(err) != providers.KindAuth {
		t.Errorf("upload for a page without a role: %v; want the 403 as an auth error", err)
	}
}

// The wait for LinkedIn's processing is bounded: by MediaWait, after which
// the upload is LinkedIn's all the same (a post too early is refused as a
// wait), and by the caller's context, which is a retryable failure.
func TestUploadWaitIsBounded(t *testing.T) {
	fake := linkedinfake.New()
	t.Cleanup(fake.Close)
	fake.Configure(func(s *linkedinfake.Server) { s.ProcessingGETs = 1 << 20 })
	cfg := fake.ProviderConfig()
	cfg.MediaWait = 100 * time.Millisecond
	p, err := linkedin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := member(fake)
	start := time.Now()
	u, err := p.Upload(context.Background(), a, providertest.TestImage(t, 0, "", nil))
	if err != nil || time.Since(start) > 2*time.Second {
		t.Fatalf("Upload past MediaWait: %+v, %v after %s; want the upload, soon", u, err, time.Since(start))
	}
	if img, _ := fake.Image(u.ID); img.Status != "PROCESSING" {
		t.Errorf("status %s, want PROCESSING still", img.Status)
	}

	cfg.MediaWait = time.Minute
	p, err = linkedin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = p.Upload(ctx, a, providertest.TestImage(t, 1, "", nil))
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindRetryable || pe.Code != "TIMEOUT" {
		t.Errorf("Upload past its context: %v; want a retryable TIMEOUT", err)
	}
}

// The double takes a PUT to its upload URL with or without the bearer
// token (contracts §1.5 leaves open which LinkedIn wants), but not one to
// a URL whose signature is not its own.
func TestFakeUploadURL(t *testing.T) {
	_, fake := setup(t, time.Now())
	a := member(fake)
	initialize := func() (uploadURL, urn string) {
		req, _ := http.NewRequest(http.MethodPost, fake.APIURL()+"/rest/images?action=initializeUpload",
			strings.NewReader(`{"initializeUploadRequest":{"owner":"`+a.PlatformUserID+`"}}`))
		req.Header.Set("Authorization", "Bearer "+a.AccessToken)
		req.Header.Set("LinkedIn-Version", "202610")
		req.Header.Set("X-Restli-Protocol-Version", "2.0.0")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			Value struct {
				UploadURL          string `json:"uploadUrl"`
				Image              string `json:"image"`
				UploadURLExpiresAt int64  `json:"uploadUrlExpiresAt"`
			} `json:"value"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 || out.Value.UploadURLExpiresAt < time.Now().UnixMilli() {
			t.Fatalf("initializeUpload: %d %+v %v", res.StatusCode, out, err)
		}
		return out.Value.UploadURL, out.Value.Image
	}
	put := func(u, bearer string) int {
		req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("GIF89a-bytes"))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range []struct {
		name   string
		url    func(u string) string
		bearer string
		want   int
	}{
		{"with the bearer token", func(u string) string { return u }, a.AccessToken, http.StatusCreated},
		{"without it", func(u string) string { return u }, "", http.StatusCreated},
		{"with another signature", func(u string) string { return u[:strings.Index(u, "ut=")] + "ut=forged" }, "", http.StatusForbidden},
		{"with a refused token", func(u string) string { return u }, "AQVnot-a-token", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, urn := initialize()
			if got := put(tc.url(u), tc.bearer); got != tc.want {
				t.Errorf("PUT: %d, want %d", got, tc.want)
			}
			img, _ := fake.Image(urn)
			if uploaded := img.Uploads == 1; uploaded != (tc.want == http.StatusCreated) {
				t.Errorf("image %+v after the PUT", img)
			}
		})
	}
}
