package bluesky_test

import (
	"slices"
	"testing"

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
	p, fake := setup(t)
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
		Holds: func(_ *testing.T, a providers.Account, text string) int {
			c := 0
			for _, r := range fake.Records(a.PlatformUserID) {
				if r.Text() == text {
					c++
				}
			}
			return c
		},
	})
}
