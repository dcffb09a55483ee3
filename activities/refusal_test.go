package activities_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/activities"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky/blueskyfake"
	"github.com/postflow/postflow/workflows"
)

// TestRefusedAtOnce: what no retry can mend fails the account at once,
// with its own code, and calls no network: an account disconnected since
// its post was written, and an account whose server PostFlow may not call
// (connected under ALLOW_LOCAL_SERVERS, published by a worker without it,
// or a name whose DNS now points inward).
func TestRefusedAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name       string
		disconnect bool
		code       string
	}{
		{"disconnected", true, "ACCOUNT_DISCONNECTED"},
		{"a server PostFlow may not call", false, "FORBIDDEN_ADDRESS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fake := blueskyfake.New()
			t.Cleanup(fake.Close)
			// Connected where local servers are allowed ...
			w := testworld.New(t, testworld.Options{Providers: func(*testworld.World) ([]providers.Provider, error) {
				return []providers.Provider{blueskyOn(t, fake, true)}, nil
			}})
			store, conns := w.Store, w.Connections
			acct := fake.CreateAccount("alice.test", "")
			account, err := conns.Login(ctx, "bluesky", "", "org-1", "user-1", "alice.test", fake.AppPassword(acct.DID))
			if err != nil {
				t.Fatal(err)
			}
			// ... published by a worker where they are not.
			strict, _ := providers.NewRegistry(blueskyOn(t, fake, false))
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			(&activities.Activities{Posts: store.Posts(), Accounts: store.Accounts(), Tokens: conns, Providers: strict}).Register(env)
			now := time.Now().UTC()
			p, err := store.Posts().Create(ctx, &posts.Post{OrganizationID: "org-1", Content: "refused at once",
				SocialAccountIDs: []string{account.ID}, Status: posts.StatusPublishing, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			if tc.disconnect {
				if err := conns.Disconnect(ctx, "org-1", account.ID); err != nil {
					t.Fatal(err)
				}
			}
			calls := len(fake.Calls())
			v, err := env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: p.ID, AccountID: account.ID})
			var out workflows.AccountOutcome
			if err == nil {
				err = v.Get(&out)
			}
			if err != nil || out.Status != "failed" || out.ErrorCode != tc.code {
				t.Fatalf("outcome %+v, %v; want failed %s at once, not an error to retry", out, err, tc.code)
			}
			r, err := store.Posts().Result(ctx, p.ID, account.ID)
			if err != nil || r.Status != posts.ResultFailed || r.ErrorCode != tc.code || r.ErrorMessage == "" {
				t.Errorf("result %+v, %v", r, err)
			}
			if len(fake.Calls()) != calls || len(fake.Records(acct.DID)) != 0 {
				t.Errorf("the network was called: %v", fake.Calls()[calls:])
			}
		})
	}
}
