package bluesky_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
)

// TestRealPDSImages posts images to the real PDS (@atproto/pds 0.5.35)
// and reads the record and the blob back. What it answered that the
// contract leaves open is written in the subtests' names and in
// realpds_test.go's header.
func TestRealPDSImages(t *testing.T) {
	ctx := context.Background()
	pds := realpeers.StartPDS(t)
	p := realProvider(t, pds)
	acct := pds.CreateAccount(t, "imogen.test")
	conn, err := p.Connect().Password.Login(ctx, "", acct.Handle, pds.AppPassword(t, acct))
	if err != nil {
		t.Fatal(err)
	}
	a := providers.Account{PlatformUserID: acct.DID, Handle: acct.Handle, Server: conn.Profile.Server, AccessToken: conn.Tokens.AccessToken}
	getRecord := func(t *testing.T, uri string) map[string]any {
		t.Helper()
		_, rkey, _ := strings.Cut(strings.TrimPrefix(uri, "at://"+acct.DID+"/"), "/")
		var rec struct {
			Value map[string]any `json:"value"`
		}
		pdsGet(t, pds, "com.atproto.repo.getRecord", url.Values{"repo": {acct.DID}, "collection": {bluesky.PostCollection}, "rkey": {rkey}}, &rec)
		return rec.Value
	}

	t.Run("an image with alt text: the record holds alt, the blob and aspectRatio; the blob decodes", func(t *testing.T) {
		b := pngImage(t, 120, 80, 30)
		u, err := p.Upload(ctx, a, imageOf(b, "image/png", 120, 80, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := p.Reusable(ctx, a, *u); !ok || err != nil {
			t.Errorf("Reusable right after the upload: %v, %v", ok, err)
		}
		again, err := p.Upload(ctx, a, imageOf(b, "image/png", 120, 80, "", nil))
		if err != nil || again.ID != u.ID {
			t.Errorf("the same bytes again: %+v, %v; want the CID %s", again, err, u.ID)
		}
		pl := payload("an image on the real PDS")
		pl.Images = []providers.AttachedImage{{Upload: *u, AltText: "a green dot on black", Width: 120, Height: 80}}
		pub, err := p.Publish(ctx, a, pl)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := getRecord(t, pub.PlatformPostID)["embed"].(map[string]any)
		imgs, _ := e["images"].([]any)
		if e["$type"] != "app.bsky.embed.images" || len(imgs) != 1 {
			t.Fatalf("embed %v", e)
		}
		img := imgs[0].(map[string]any)
		ar, _ := img["aspectRatio"].(map[string]any)
		link := img["image"].(map[string]any)["ref"].(map[string]any)["$link"]
		if img["alt"] != "a green dot on black" || ar["width"] != 120.0 || ar["height"] != 80.0 || link != u.ID {
			t.Errorf("image %v", img)
		}
		res, err := http.Get(pds.URL + "/xrpc/com.atproto.sync.getBlob?" + url.Values{"did": {acct.DID}, "cid": {u.ID}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		m, err := png.Decode(res.Body)
		if res.StatusCode != http.StatusOK || err != nil || m.Bounds().Dx() != 120 {
			t.Errorf("getBlob: %s, %v", res.Status, err)
		}
	})

	t.Run("four images, one without alt text or size", func(t *testing.T) {
		var imgs []providers.AttachedImage
		for i := range 4 {
			u, err := p.Upload(ctx, a, imageOf(pngImage(t, 10+i, 10, uint8(40+i)), "image/png", 10+i, 10, "", nil))
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, providers.AttachedImage{Upload: *u, AltText: "image " + string(rune('1'+i)), Width: 10 + i, Height: 10})
		}
		imgs[3].AltText, imgs[3].Width, imgs[3].Height = "", 0, 0
		pl := payload("four images on the real PDS")
		pl.Images = imgs
		pub, err := p.Publish(ctx, a, pl)
		if err != nil {
			t.Fatal(err)
		}
		got := getRecord(t, pub.PlatformPostID)["embed"].(map[string]any)["images"].([]any)
		if len(got) != 4 || got[0].(map[string]any)["alt"] != "image 1" || got[3].(map[string]any)["alt"] != "" || got[3].(map[string]any)["aspectRatio"] != nil {
			t.Errorf("images %v", got)
		}
	})

	t.Run("a blob the PDS never took: 400 BlobNotFound, invalid content", func(t *testing.T) {
		u, err := p.Upload(ctx, a, imageOf(pngImage(t, 5, 5, 60), "image/png", 5, 5, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		// Another CID of the same shape (the last character changed).
		u.Ref = strings.Replace(u.Ref, u.ID, u.ID[:len(u.ID)-1]+flip(u.ID[len(u.ID)-1]), 1)
		pl := payload("an unknown blob")
		pl.Images = []providers.AttachedImage{{Upload: *u}}
		_, err = p.Publish(ctx, a, pl)
		wantKind(t, err, providers.KindInvalidContent, "BlobNotFound")
		if holds(t, pds, acct.DID, pl.Text) != 0 {
			t.Error("posted")
		}
	})

	t.Run("an image over 1,000,000 bytes: Upload refuses it, nothing sent", func(t *testing.T) {
		proxy := newFaultProxy(t, pds.URL)
		via := a
		via.Server = proxy.URL
		_, err := p.Upload(ctx, via, imageOf(make([]byte, bluesky.MaxImageBytes+1), "image/png", 1, 1, "", nil))
		wantKind(t, err, providers.KindInvalidContent, "IMAGE_TOO_LARGE")
		if n := proxy.count("com.atproto.repo.uploadBlob"); n != 0 {
			t.Errorf("uploadBlob called %d times", n)
		}
	})

	t.Run("the PDS's own limit at createRecord: 2,000,000 bytes, not 1,000,000", func(t *testing.T) {
		// Sent past Upload's check, to learn what the PDS itself does.
		for _, tc := range []struct {
			size   int
			refuse bool
		}{{1_500_000, false}, {2_000_001, true}} {
			blobRef := rawUpload(t, pds, a.AccessToken, bytes.Repeat([]byte{0x89}, tc.size))
			pl := payload("a raw blob of " + string(rune('0'+tc.size/1_000_000)) + " MB")
			pl.Images = []providers.AttachedImage{{Upload: providers.Upload{ID: "raw", Ref: blobRef}}}
			_, err := p.Publish(ctx, a, pl)
			if !tc.refuse && err != nil {
				t.Errorf("%d bytes: %v", tc.size, err)
			}
			if tc.refuse {
				pe := wantKind(t, err, providers.KindInvalidContent, "InvalidRequest")
				if !strings.Contains(pe.Message, "blob too big") {
					t.Errorf("message %q", pe.Message)
				}
			}
		}
	})

	t.Run("the PDS sniffs the type: a PNG sent as image/jpeg is a blob of image/png", func(t *testing.T) {
		u, err := p.Upload(ctx, a, imageOf(pngImage(t, 6, 6, 80), "image/jpeg", 6, 6, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(u.Ref, `"mimeType":"image/png"`) {
			t.Errorf("blob %s", u.Ref)
		}
	})

	t.Run("an executable sent as image/png: a blob of application/x-msdownload, refused at createRecord", func(t *testing.T) {
		u, err := p.Upload(ctx, a, imageOf([]byte("MZ this is no image at all"), "image/png", 1, 1, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		pl := payload("not an image")
		pl.Images = []providers.AttachedImage{{Upload: *u}}
		_, err = p.Publish(ctx, a, pl)
		pe := wantKind(t, err, providers.KindInvalidContent, "InvalidRequest")
		if !strings.Contains(u.Ref, `"mimeType":"application/x-msdownload"`) || !strings.Contains(pe.Message, `Expected "image/*"`) {
			t.Errorf("blob %s; createRecord: %s", u.Ref, pe.Message)
		}
	})

	t.Run("a token the PDS cannot verify at upload: the session must be renewed", func(t *testing.T) {
		b := a
		b.AccessToken = conn.Tokens.RefreshToken
		_, err := p.Upload(ctx, b, imageOf(pngImage(t, 3, 3, 70), "image/png", 3, 3, "", nil))
		wantKind(t, err, providers.KindSessionExpired, "InvalidToken")
	})
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// rawUpload sends b to uploadBlob as it is and returns the blob object.
func rawUpload(t *testing.T, pds *realpeers.PDS, token string, b []byte) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, pds.URL+"/xrpc/com.atproto.repo.uploadBlob", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "image/png")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Blob map[string]any `json:"blob"`
	}
	if err := jsonDecode(res, &out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("uploadBlob of %d bytes: %s, %v", len(b), res.Status, err)
	}
	return mustJSON(t, out.Blob)
}

func jsonDecode(res *http.Response, out any) error { return json.NewDecoder(res.Body).Decode(out) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
