package sandbox_test

import (
	"fmt"
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
	providertest.Run(t, providertest.Harness{
		Provider: p,
		Account: func(t *testing.T) providers.Account {
			users++
			conn := connect(t, p, fmt.Sprint("Conformance ", users))
			return providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}
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
	})
}
