package bluesky_test

import (
	"slices"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/providers/bluesky/blueskyfake"
	"github.com/postflow/postflow/providers/providertest"
)

// setup starts a fake PDS and a provider pointed at it.
func setup(t *testing.T) (*bluesky.Provider, *blueskyfake.Server) {
	t.Helper()
	fake := blueskyfake.New()
	t.Cleanup(fake.Close)
	p, err := bluesky.New(bluesky.Config{
		ResolverURL: fake.URL, PLCURL: fake.PLCURL(), AppURL: "https://bsky.app",
		Servers: netguard.Policy{AllowLocal: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, fake
}

// fakeAccount is a new account of fake with a session, as connected.
func fakeAccount(fake *blueskyfake.Server, handle string) providers.Account {
	acct := fake.CreateAccount(handle, "")
	access, _ := fake.Session(acct.DID)
	return providers.Account{PlatformUserID: acct.DID, Handle: acct.Handle, Server: fake.URL, AccessToken: access}
}

func TestConformanceFake(t *testing.T) {
	p, fake, clk := setupClock(t)
	n := 0
	providertest.Run(t, providertest.Harness{
		Provider: p,
		Account: func(*testing.T) providers.Account {
			n++
			return fakeAccount(fake, "row"+string(rune('a'+n))+".test")
		},
		Answer: func(_ *testing.T, a providers.Account, answer string) bool {
			if !slices.Contains([]string{"429", "503", "504", "lost", "401"}, answer) {
				return false
			}
			fake.Configure(func(s *blueskyfake.Server) { s.Answers[a.PlatformUserID] = []string{answer} })
			return true
		},
		AnswerDelete: func(_ *testing.T, a providers.Account, answer string) bool {
			fake.Configure(func(s *blueskyfake.Server) { s.DeleteAnswers[a.PlatformUserID] = []string{answer} })
			return true
		},
		Other: func(*testing.T) providers.Account {
			n++
			return fakeAccount(fake, "other"+string(rune('a'+n))+".test")
		},
		Holds: func(_ *testing.T, a providers.Account, text string) int {
			c := 0
			for _, r := range fake.Records(a.PlatformUserID) {
				if r.Text() == text {
					c++
				}
			}
			return c
		},
		Media: providertest.MediaHarness{
			HoldsImages: func(t *testing.T, a providers.Account, text string) [][]providertest.HeldImage {
				var out [][]providertest.HeldImage
				for _, r := range fake.Records(a.PlatformUserID) {
					if r.Text() == text {
						out = append(out, heldImages(t, r.Value, func(cid string) []byte { return fake.Blob(a.PlatformUserID, cid) }))
					}
				}
				return out
			},
			Uploads: func(_ *testing.T, a providers.Account) int { return fake.Uploads(a.PlatformUserID) },
			AnswerUpload: func(_ *testing.T, a providers.Account, answer string) bool {
				if answer != "429" && answer != "503" {
					return false
				}
				fake.Configure(func(s *blueskyfake.Server) { s.UploadAnswers[a.PlatformUserID] = []string{answer} })
				return true
			},
			// The PDS forgets a blob no record refers to after minutes,
			// and nothing asks it earlier: time passes past BlobLife.
			Forget: func(_ *testing.T, a providers.Account, u providers.Upload) bool {
				clk.add(bluesky.BlobLife + time.Second)
				return fake.Blob(a.PlatformUserID, u.ID) == nil
			},
		},
	})
}

// heldImages reads a post record's app.bsky.embed.images: each image's
// alt text, and its blob's bytes from blob (by CID).
func heldImages(t *testing.T, record map[string]any, blob func(cid string) []byte) []providertest.HeldImage {
	t.Helper()
	held := []providertest.HeldImage{}
	e, _ := record["embed"].(map[string]any)
	if e == nil {
		return held
	}
	imgs, _ := e["images"].([]any)
	for _, it := range imgs {
		img, _ := it.(map[string]any)
		b, _ := img["image"].(map[string]any)
		ref, _ := b["ref"].(map[string]any)
		cid, _ := ref["$link"].(string)
		alt, _ := img["alt"].(string)
		held = append(held, providertest.HeldImage{AltText: alt, Bytes: blob(cid)})
	}
	return held
}
