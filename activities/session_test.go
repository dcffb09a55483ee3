package activities_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/activities"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/providers/bluesky/blueskyfake"
	"github.com/postflow/postflow/workflows"
)

// blueskyOn is a Bluesky provider on fake, allowed to call local servers
// or not.
func blueskyOn(t *testing.T, fake *blueskyfake.Server, local bool) providers.Provider {
	t.Helper()
	p, err := bluesky.New(bluesky.Config{ResolverURL: fake.URL, PLCURL: fake.PLCURL(), AppURL: "https://bsky.app",
		Servers: netguard.Policy{AllowLocal: local}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSessionEndedEarly: a Bluesky session the PDS ends before its stated
// time (400 ExpiredToken; providers' KindSessionExpired) is renewed within
// the activity and the publish (or the unpublish's delete) made once more,
// without spending a retry; when the app password has been revoked too,
// the renewal is refused and the account marked expired, by the token
// service alone.
func TestSessionEndedEarly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		unpublish bool
		revoke    bool
		done      bool // published, or unpublished
		status    connections.Status
	}{
		{"renewed, then published", false, false, true, connections.StatusActive},
		{"app password revoked: the account expires", false, true, false, connections.StatusExpired},
		{"renewed, then unpublished", true, false, true, connections.StatusActive},
		{"app password revoked: the unpublish fails, the account expires", true, true, false, connections.StatusExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fake := blueskyfake.New()
			t.Cleanup(fake.Close)
			w := testworld.New(t, testworld.Options{Providers: func(*testworld.World) ([]providers.Provider, error) {
				return []providers.Provider{blueskyOn(t, fake, true)}, nil
			}})
			store, conns := w.Store, w.Connections
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			acts := w.Activities()
			spy := &expireSpy{TokenSource: acts.Tokens}
			acts.Tokens = spy
			acts.Register(env)

			acct := fake.CreateAccount("alice.test", "")
			pw := fake.AppPassword(acct.DID)
			account, err := conns.Login(ctx, "bluesky", "", "org-1", "user-1", "alice.test", pw)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			p, err := store.Posts().Create(ctx, &posts.Post{OrganizationID: "org-1", Content: "hello after a renewal",
				SocialAccountIDs: []string{account.ID}, Status: posts.StatusPublishing, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			publish := func() (workflows.AccountOutcome, error) {
				v, err := env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: p.ID, AccountID: account.ID})
				var out workflows.AccountOutcome
				if err == nil {
					err = v.Get(&out)
				}
				return out, err
			}
			if tc.unpublish {
				if out, err := publish(); err != nil || out.Status != "published" {
					t.Fatalf("publish: %+v, %v", out, err)
				}
			}
			// The stored token says two hours more; the PDS ends it now.
			fake.ExpireSessions(acct.DID)
			if tc.revoke {
				fake.RevokeAppPassword(acct.DID, pw)
			}
			held := 0 // records the PDS holds when done
			if tc.unpublish {
				v, err := env.ExecuteActivity(workflows.UnpublishFromAccountActivity, workflows.UnpublishAccountInput{PostID: p.ID, AccountID: account.ID})
				var out workflows.UnpublishOutcome
				if err == nil {
					err = v.Get(&out)
				}
				if tc.done != (err == nil && out.Status == "unpublished") {
					t.Fatalf("outcome %+v, %v; want unpublished %v", out, err, tc.done)
				}
				if !tc.done {
					held = 1
				}
			} else {
				out, err := publish()
				if tc.done != (err == nil && out.Status == "published") {
					t.Fatalf("outcome %+v, %v; want published %v", out, err, tc.done)
				}
				if tc.done {
					held = 1
				}
			}
			if n := len(fake.Records(acct.DID)); n != held {
				t.Errorf("the PDS holds %d records, want %d", n, held)
			}
			if !slices.Contains(fake.Calls(), "/xrpc/com.atproto.server.refreshSession") {
				t.Error("the session was not renewed")
			}
			stored, err := store.Accounts().GetByID(ctx, account.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Status != tc.status {
				t.Errorf("account %s, want %s", stored.Status, tc.status)
			}
			// The renewal's refusal is the token service's, which expired
			// the account itself: Expire, which resolves a page to its
			// member, is for a network's refusal only.
			if spy.calls() != 0 {
				t.Errorf("Tokens.Expire called %d times after the token service refused the renewal", spy.calls())
			}
		})
	}
}

// expireSpy counts Tokens.Expire calls.
type expireSpy struct {
	activities.TokenSource
	mu sync.Mutex
	n  int
}

func (s *expireSpy) Expire(ctx context.Context, accountID string, cause *providers.Error) error {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return s.TokenSource.Expire(ctx, accountID, cause)
}

func (s *expireSpy) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
