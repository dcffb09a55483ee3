package activities_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

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
// the activity and the publish made once more, without spending a retry;
// when the app password has been revoked too, the renewal is refused and
// the account marked expired.
func TestSessionEndedEarly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		revoke    bool
		published bool
		status    connections.Status
	}{
		{"renewed, then published", false, true, connections.StatusActive},
		{"app password revoked: the account expires", true, false, connections.StatusExpired},
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
			w.Activities().Register(env)

			acct := fake.CreateAccount("alice.test", "")
			pw := fake.AppPassword(acct.DID)
			account, err := conns.Login(ctx, "bluesky", "", "org-1", "user-1", "alice.test", pw)
			if err != nil {
				t.Fatal(err)
			}
			// The stored token says two hours more; the PDS ends it now.
			fake.ExpireSessions(acct.DID)
			if tc.revoke {
				fake.RevokeAppPassword(acct.DID, pw)
			}
			now := time.Now().UTC()
			p, err := store.Posts().Create(ctx, &posts.Post{OrganizationID: "org-1", Content: "hello after a renewal",
				SocialAccountIDs: []string{account.ID}, Status: posts.StatusPublishing, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			v, err := env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: p.ID, AccountID: account.ID})
			var out workflows.AccountOutcome
			if err == nil {
				err = v.Get(&out)
			}
			if tc.published != (err == nil && out.Status == "published") {
				t.Fatalf("outcome %+v, %v; want published %v", out, err, tc.published)
			}
			if n := len(fake.Records(acct.DID)); n != map[bool]int{true: 1, false: 0}[tc.published] {
				t.Errorf("the PDS holds %d records", n)
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
		})
	}
}
