package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/sandboxplatform"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/providertest"
)

func TestConformance(t *testing.T) {
	p, srv := setup(t, time.Hour)
	users := 0
	modes := map[string]sandboxplatform.Behaviour{
		"429":  {Publish: "rate_limited", PublishTimes: 1, RetryAfterSeconds: 30},
		"503":  {Publish: "unavailable", PublishTimes: 1},
		"504":  {Publish: "timeout", PublishTimes: 1},
		"lost": {Publish: "lost_answer", PublishTimes: 1},
		"401":  {Publish: "expired_token", PublishTimes: 1},
	}
	account := func(t *testing.T) providers.Account {
		users++
		conn := connect(t, p, fmt.Sprint("Conformance ", users))
		return providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}
	}
	providertest.Run(t, providertest.Harness{
		Provider: p,
		Account:  account,
		Other:    account,
		AnswerDelete: func(t *testing.T, a providers.Account, answer string) bool {
			mode, ok := map[string]string{"429": "rate_limited", "503": "unavailable", "401": "expired_token"}[answer]
			if ok {
				behave(t, srv, a.PlatformUserID, sandboxplatform.Behaviour{DeleteSequence: []string{mode}, RetryAfterSeconds: 30})
			}
			return ok
		},
		Answer: func(t *testing.T, a providers.Account, answer string) bool {
			b, ok := modes[answer]
			if ok {
				behave(t, srv, a.PlatformUserID, b)
			}
			return ok
		},
		Holds: func(t *testing.T, a providers.Account, text string) int {
			n := 0
			for _, post := range feedOf(t, srv, a.PlatformUserID) {
				if post.Text == text {
					n++
				}
			}
			return n
		},
		Media: providertest.MediaHarness{
			HoldsImages: func(t *testing.T, a providers.Account, text string) [][]providertest.HeldImage {
				var out [][]providertest.HeldImage
				for _, post := range feedOf(t, srv, a.PlatformUserID) {
					if post.Text != text {
						continue
					}
					held := []providertest.HeldImage{}
					for _, img := range post.Media {
						held = append(held, providertest.HeldImage{Bytes: imageAt(t, srv, img), AltText: img.AltText})
					}
					out = append(out, held)
				}
				return out
			},
			Uploads: func(t *testing.T, a providers.Account) int { return len(imagesOf(t, srv, a.PlatformUserID)) },
			AnswerUpload: func(t *testing.T, a providers.Account, answer string) bool {
				mode, ok := map[string]string{"429": "rate_limited", "503": "unavailable"}[answer]
				if ok {
					behave(t, srv, a.PlatformUserID, sandboxplatform.Behaviour{UploadSequence: []string{mode}, RetryAfterSeconds: 30})
				}
				return ok
			},
			Forget: func(t *testing.T, a providers.Account, u providers.Upload) bool {
				req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/sandbox/api/media/"+u.ID, nil)
				req.Header.Set("Authorization", "Bearer "+a.AccessToken)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode == http.StatusNoContent
			},
		},
	})
}

// imageAt reads an image's bytes where the feed says the platform serves
// them, checking it serves them as their own type and no other.
func imageAt(t *testing.T, srv *httptest.Server, img sandboxplatform.PostImage) []byte {
	t.Helper()
	res, err := http.Get(srv.URL + img.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != img.ContentType ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET %s: %d %v, %v", img.URL, res.StatusCode, res.Header, err)
	}
	return b
}

// imagesOf lists the images user has uploaded.
func imagesOf(t *testing.T, srv *httptest.Server, user string) []sandboxplatform.Image {
	t.Helper()
	res, err := http.Get(srv.URL + "/sandbox/users/" + user + "/media")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Media []sandboxplatform.Image }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("images of %s: %d, %v", user, res.StatusCode, err)
	}
	return out.Media
}
