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
		Holds: func(_ *testing.T, a providers.Account, text string) int {
			n := 0
			for _, lp := range fake.Posts() {
				if lp.Author == a.PlatformUserID && lp.Commentary == text {
					n++
				}
			}
			return n
		},
	}
}
