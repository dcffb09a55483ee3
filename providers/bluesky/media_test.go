package bluesky_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/providers/bluesky/blueskyfake"
)

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

// imageOf is b as the activity hands an image to Upload; opens counts
// the times its bytes were opened.
func imageOf(b []byte, typ string, w, h int, alt string, opens *int) providers.Image {
	return providers.Image{MediaID: "0123456789abcdef01234567", Type: typ, Size: int64(len(b)), Width: w, Height: h, AltText: alt,
		Open: func(context.Context) (io.ReadCloser, error) {
			if opens != nil {
				*opens++
			}
			return io.NopCloser(bytes.NewReader(b)), nil
		}}
}

// clock is a settable clock shared by a provider and its fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setupClock(t *testing.T) (*bluesky.Provider, *blueskyfake.Server, *clock) {
	t.Helper()
	c := &clock{t: time.Now()}
	fake := blueskyfake.New()
	t.Cleanup(fake.Close)
	fake.SetNow(c.now)
	p, err := bluesky.New(bluesky.Config{
		ResolverURL: fake.URL, PLCURL: fake.PLCURL(), AppURL: "https://bsky.app",
		Servers: netguard.Policy{AllowLocal: true}, Now: c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, fake, c
}

func TestMediaRules(t *testing.T) {
	p, _ := setup(t)
	m, err := p.MediaLimits(context.Background(), providers.Account{})
	if err != nil || m.MaxImages != 4 || m.MaxBytes != 1_000_000 || !m.Downscale || m.AltText.Max != 0 || len(m.Types) != 4 {
		t.Fatalf("MediaLimits: %+v, %v", m, err)
	}
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	p, fake, clk := setupClock(t)
	a := fakeAccount(fake, "up.test")
	b := pngImage(t, 64, 48, 1)

	opens := 0
	u, err := p.Upload(ctx, a, imageOf(b, "image/png", 64, 48, "a square", &opens))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Type string `json:"$type"`
		Ref  struct {
			Link string `json:"$link"`
		} `json:"ref"`
		MimeType string `json:"mimeType"`
		Size     int64  `json:"size"`
	}
	if err := json.Unmarshal([]byte(u.Ref), &ref); err != nil || ref.Type != "blob" || ref.Ref.Link != u.ID ||
		ref.MimeType != "image/png" || ref.Size != int64(len(b)) || !strings.HasPrefix(u.ID, "bafkrei") {
		t.Fatalf("upload %+v: ref %+v (%v)", u, ref, err)
	}
	if u.MediaID != "0123456789abcdef01234567" || !u.UploadedAt.Equal(clk.now()) || u.ExpiresAt.Sub(u.UploadedAt) != bluesky.BlobLife || opens != 1 {
		t.Errorf("upload %+v, opened %d times; want expiry after %s, one open", u, opens, bluesky.BlobLife)
	}
	again, err := p.Upload(ctx, a, imageOf(b, "image/png", 64, 48, "", nil))
	if err != nil || again.ID != u.ID {
		t.Errorf("the same bytes again: %+v, %v; want the same CID %s", again, err, u.ID)
	}

	for _, tc := range []struct {
		name    string
		at      time.Duration
		reuse   bool
		noRef   bool
		noExpty bool
	}{
		{name: "just made", at: 0, reuse: true},
		{name: "a second before its expiry", at: bluesky.BlobLife - time.Second, reuse: true},
		{name: "at its expiry", at: bluesky.BlobLife},
		{name: "without its blob", noRef: true},
		{name: "without an expiry", noExpty: true},
	} {
		t.Run("reusable: "+tc.name, func(t *testing.T) {
			v := *u
			if tc.noRef {
				v.Ref = ""
			}
			if tc.noExpty {
				v.ExpiresAt = time.Time{}
			}
			clk.add(tc.at)
			defer clk.add(-tc.at)
			if ok, err := p.Reusable(ctx, a, v); err != nil || ok != tc.reuse {
				t.Errorf("Reusable = %v, %v; want %v", ok, err, tc.reuse)
			}
		})
	}
}

func TestUploadRefused(t *testing.T) {
	ctx := context.Background()
	p, fake := setup(t)
	fake.Configure(func(s *blueskyfake.Server) { s.RateLimitWait = 90 * time.Second })
	small := pngImage(t, 8, 8, 2)
	big := make([]byte, bluesky.MaxImageBytes+1)
	for i, tc := range []struct {
		name    string
		answer  string
		img     []byte
		kind    providers.Kind
		code    string
		uploads int
	}{
		{name: "over 1,000,000 bytes: never sent", img: big, kind: providers.KindInvalidContent, code: "IMAGE_TOO_LARGE"},
		{name: "429", answer: "429", img: small, kind: providers.KindRateLimited, code: "RateLimitExceeded", uploads: 1},
		{name: "session ended", answer: "expired", img: small, kind: providers.KindSessionExpired, code: "ExpiredToken", uploads: 1},
		{name: "401", answer: "401", img: small, kind: providers.KindAuth, code: "AuthMissing", uploads: 1},
		{name: "503", answer: "503", img: small, kind: providers.KindRetryable, code: "ServiceUnavailable", uploads: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := fakeAccount(fake, "refused"+string(rune('a'+i))+".test")
			before := fake.Count("com.atproto.repo.uploadBlob")
			if tc.answer != "" {
				fake.Configure(func(s *blueskyfake.Server) { s.UploadAnswers[a.PlatformUserID] = []string{tc.answer} })
			}
			_, err := p.Upload(ctx, a, imageOf(tc.img, "image/png", 8, 8, "", nil))
			pe := wantKind(t, err, tc.kind, tc.code)
			if tc.kind == providers.KindRateLimited && (pe.RetryAfter < 80*time.Second || pe.RetryAfter > 95*time.Second) {
				t.Errorf("RetryAfter %s; want about 90 s (RateLimit-Reset)", pe.RetryAfter)
			}
			if n := fake.Count("com.atproto.repo.uploadBlob") - before; n != tc.uploads {
				t.Errorf("uploadBlob called %d times, want %d", n, tc.uploads)
			}
			if fake.Blobs(a.PlatformUserID) != 0 {
				t.Error("a refused upload left a blob")
			}
		})
	}
}

// embedOf reads the images of the record the post was made as.
func embedOf(t *testing.T, fake *blueskyfake.Server, did, uri string) []map[string]any {
	t.Helper()
	for _, r := range fake.Records(did) {
		if r.URI == uri {
			e, _ := r.Value["embed"].(map[string]any)
			if e == nil {
				return nil
			}
			if e["$type"] != "app.bsky.embed.images" {
				t.Fatalf("embed %v", e)
			}
			var out []map[string]any
			for _, i := range e["images"].([]any) {
				out = append(out, i.(map[string]any))
			}
			return out
		}
	}
	t.Fatalf("no record %s", uri)
	return nil
}

func TestPublishImages(t *testing.T) {
	ctx := context.Background()
	p, fake, clk := setupClock(t)
	a := fakeAccount(fake, "images.test")
	upload := func(seed uint8, w, h int) providers.AttachedImage {
		u, err := p.Upload(ctx, a, imageOf(pngImage(t, w, h, seed), "image/png", w, h, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		return providers.AttachedImage{Upload: *u, Width: w, Height: h}
	}

	t.Run("alt text, the blob and aspectRatio, in order", func(t *testing.T) {
		one, two := upload(10, 40, 30), upload(11, 30, 40)
		one.AltText, two.AltText = "a wide one", ""
		two.Width = 0 // unknown: no aspectRatio
		pl := payload("two images")
		pl.Images = []providers.AttachedImage{one, two}
		pub, err := p.Publish(ctx, a, pl)
		if err != nil {
			t.Fatal(err)
		}
		imgs := embedOf(t, fake, a.PlatformUserID, pub.PlatformPostID)
		if len(imgs) != 2 {
			t.Fatalf("embed images %v", imgs)
		}
		ar, _ := imgs[0]["aspectRatio"].(map[string]any)
		if imgs[0]["alt"] != "a wide one" || ar["width"] != 40.0 || ar["height"] != 30.0 {
			t.Errorf("first image %v", imgs[0])
		}
		if alt, ok := imgs[1]["alt"]; !ok || alt != "" || imgs[1]["aspectRatio"] != nil {
			t.Errorf("second image %v; want alt \"\" (required) and no aspectRatio", imgs[1])
		}
		for i, img := range []providers.AttachedImage{one, two} {
			ref := imgs[i]["image"].(map[string]any)["ref"].(map[string]any)["$link"]
			if ref != img.Upload.ID {
				t.Errorf("image %d refers to %v, want %s", i, ref, img.Upload.ID)
			}
		}
	})

	t.Run("five images: refused before the PDS is called", func(t *testing.T) {
		img := upload(12, 4, 4)
		pl := payload("five images")
		pl.Images = []providers.AttachedImage{img, img, img, img, img}
		before := fake.Count("com.atproto.repo.createRecord")
		_, err := p.Publish(ctx, a, pl)
		wantKind(t, err, providers.KindInvalidContent, "TOO_MANY_IMAGES")
		if fake.Count("com.atproto.repo.createRecord") != before {
			t.Error("createRecord was called")
		}
	})

	t.Run("a blob the PDS forgot: invalid content, nothing posted", func(t *testing.T) {
		img := upload(13, 4, 4)
		clk.add(6 * time.Minute)
		defer clk.add(-6 * time.Minute)
		if ok, _ := p.Reusable(ctx, a, img.Upload); ok {
			t.Error("Reusable after the PDS forgot it")
		}
		pl := payload("a forgotten blob")
		pl.Images = []providers.AttachedImage{img}
		_, err := p.Publish(ctx, a, pl)
		wantKind(t, err, providers.KindInvalidContent, "BlobNotFound")
		if fake.Records(a.PlatformUserID)[len(fake.Records(a.PlatformUserID))-1].Text() == pl.Text {
			t.Error("posted")
		}
	})

	t.Run("a referenced blob is kept past the unreferenced window", func(t *testing.T) {
		img := upload(14, 4, 4)
		pl := payload("first use")
		pl.Images = []providers.AttachedImage{img}
		if _, err := p.Publish(ctx, a, pl); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Hour)
		defer clk.add(-time.Hour)
		pl = payload("second use")
		pl.Images = []providers.AttachedImage{img}
		if _, err := p.Publish(ctx, a, pl); err != nil {
			t.Errorf("a referenced blob refused: %v", err)
		}
	})

	t.Run("bytes of no image type (sniffed, whatever their Content-Type): refused at createRecord", func(t *testing.T) {
		u, err := p.Upload(ctx, a, imageOf([]byte("MZ\x90\x00 an executable renamed .png"), "image/png", 1, 1, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		pl := payload("not an image")
		pl.Images = []providers.AttachedImage{{Upload: *u}}
		_, err = p.Publish(ctx, a, pl)
		pe := wantKind(t, err, providers.KindInvalidContent, "InvalidRequest")
		if !strings.Contains(pe.Message, `Expected "image/*"`) {
			t.Errorf("message %q", pe.Message)
		}
	})

	t.Run("an upload without its blob object: refused before the PDS is called", func(t *testing.T) {
		img := upload(15, 4, 4)
		img.Upload.Ref = ""
		pl := payload("no blob")
		pl.Images = []providers.AttachedImage{img}
		_, err := p.Publish(ctx, a, pl)
		wantKind(t, err, providers.KindInvalidContent, "NO_BLOB")
	})
}

// TestFakeRefusesLargeBlobs: the double checks the 1,000,000 bytes at
// createRecord, where Bluesky does, for an image sent past Upload's check.
func TestFakeRefusesLargeBlobs(t *testing.T) {
	p, fake := setup(t)
	a := fakeAccount(fake, "large.test")
	big := append(pngImage(t, 2, 2, 1), make([]byte, blueskyfake.MaxBlobBytes)...)
	req, _ := http.NewRequest(http.MethodPost, fake.URL+"/xrpc/com.atproto.repo.uploadBlob", bytes.NewReader(big))
	req.Header.Set("Authorization", "Bearer "+a.AccessToken)
	req.Header.Set("Content-Type", "image/png")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Blob json.RawMessage }
	_ = json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	pl := payload("too large")
	pl.Images = []providers.AttachedImage{{Upload: providers.Upload{ID: "x", Ref: string(out.Blob)}}}
	_, err = p.Publish(context.Background(), a, pl)
	pe := wantKind(t, err, providers.KindInvalidContent, "InvalidRequest")
	if !strings.Contains(pe.Message, "blob too big") {
		t.Errorf("message %q", pe.Message)
	}
}
