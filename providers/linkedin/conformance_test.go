package linkedin_test

import (
	"slices"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
	"github.com/postflow/postflow/providers/providertest"
)

func TestConformance(t *testing.T) {
	p, fake := setup(t, time.Now())
	providertest.Run(t, fakeHarness(p, fake, func(*testing.T) providers.Account {
		return providers.Account{PlatformUserID: "urn:li:person:" + fake.Sub, AccessToken: fake.IssueAccessToken()}
	}))
}

// fakeHarness runs the suite against linkedinfake, which answers the
// contract's rows by script, for accounts that account makes.
func fakeHarness(p providers.Provider, fake *linkedinfake.Server, account func(*testing.T) providers.Account) providertest.Harness {
	return providertest.Harness{
		Provider: p,
		Account:  account,
		Answer: func(_ *testing.T, _ providers.Account, answer string) bool {
			if !slices.Contains([]string{"429", "503", "504", "lost", "401"}, answer) {
				return false
			}
			fake.Configure(func(s *linkedinfake.Server) { s.Answers = []string{answer} })
			return true
		},
		AnswerDelete: func(_ *testing.T, _ providers.Account, answer string) bool {
			fake.Configure(func(s *linkedinfake.Server) { s.DeleteAnswers = []string{answer} })
			return true
		},
		Other: func(*testing.T) providers.Account {
			return providers.Account{PlatformUserID: "urn:li:person:other" + fake.Sub, AccessToken: fake.IssueAccessTokenFor("other" + fake.Sub)}
		},
		Holds: func(_ *testing.T, a providers.Account, text string) int {
			n := 0
			for _, lp := range fake.Posts() {
				if lp.Author == a.PlatformUserID && lp.Commentary == text {
					n++
				}
			}
			return n
		},
		Media: providertest.MediaHarness{
			HoldsImages: func(t *testing.T, a providers.Account, text string) [][]providertest.HeldImage {
				var out [][]providertest.HeldImage
				for _, lp := range fake.Posts() {
					if lp.Author != a.PlatformUserID || lp.Commentary != text {
						continue
					}
					held := []providertest.HeldImage{}
					for _, pi := range lp.Images {
						img, ok := fake.Image(pi.URN)
						if !ok {
							t.Errorf("the post refers to %s, which LinkedIn does not hold", pi.URN)
						}
						held = append(held, providertest.HeldImage{Bytes: img.Bytes, AltText: pi.AltText})
					}
					out = append(out, held)
				}
				return out
			},
			Uploads: func(_ *testing.T, a providers.Account) int { return fake.UploadsBy(a.PlatformUserID) },
			AnswerUpload: func(_ *testing.T, _ providers.Account, answer string) bool {
				fake.Configure(func(s *linkedinfake.Server) { s.UploadAnswers = []string{answer} })
				return true
			},
			Forget: func(_ *testing.T, _ providers.Account, u providers.Upload) bool {
				fake.ForgetImage(u.ID)
				return true
			},
		},
	}
}
