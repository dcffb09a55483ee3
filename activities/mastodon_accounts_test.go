package activities_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/mastodon"
	"github.com/postflow/postflow/providers/mastodon/mastodonfake"
	"github.com/postflow/postflow/workflows"
)

// mastodonWorld is a world with the Mastodon provider, allowed to call
// in-test instances.
func mastodonWorld(t *testing.T) *testworld.World {
	t.Helper()
	return testworld.New(t, testworld.Options{Providers: func(w *testworld.World) ([]providers.Provider, error) {
		p, err := mastodon.New(mastodon.Config{RedirectURI: "http://127.0.0.1:9/connections/callback/mastodon",
			Apps: w.Store.ServerApps(w.Cipher), Servers: netguard.Policy{AllowLocal: true}})
		return []providers.Provider{p}, err
	}})
}

// fakeBrowser signs in on a mastodonfake instance as username and allows.
func fakeBrowser(t *testing.T, username string) func(string) url.Values {
	return func(u string) url.Values {
		q, err := mastodonfake.Authorize(u, username)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
}

// Mastodon account ids are per instance: account 1 on a second instance,
// connected into the same organization, is a second account, and the
// first keeps its server and token.
func TestMastodonSameIDOnTwoInstancesIsTwoAccounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := mastodonWorld(t)
	first, second := mastodonfake.New(), mastodonfake.New()
	t.Cleanup(first.Close)
	t.Cleanup(second.Close)

	a1 := w.MustConnect(t, "mastodon", first.URL, "org-1", "user-1", fakeBrowser(t, "alice"))
	a2 := w.MustConnect(t, "mastodon", second.URL, "org-1", "user-1", fakeBrowser(t, "alice"))
	if a1.ID == a2.ID || a1.PlatformUserID == a2.PlatformUserID {
		t.Fatalf("alice (id 1) on two instances is one account: %s (%s on %s) and %s (%s on %s)",
			a1.ID, a1.PlatformUserID, a1.Server, a2.ID, a2.PlatformUserID, a2.Server)
	}
	list, err := w.Connections.List(ctx, "org-1")
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]string{}
	for _, a := range list {
		servers[a.ID] = a.Server
	}
	for _, tc := range []struct {
		id, server string
	}{{a1.ID, first.URL}, {a2.ID, second.URL}} {
		if servers[tc.id] != tc.server {
			t.Errorf("account %s is on %q; want %s (all: %v)", tc.id, servers[tc.id], tc.server, servers)
		}
		// Its token is still the one its own instance issued.
		tok, _, err := w.Connections.ValidAccessToken(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := w.Registry.Get("mastodon")
		if _, err := p.Publish(ctx, providers.Account{PlatformUserID: "x", Server: tc.server, Handle: "@alice@x", AccessToken: tok},
			providers.Payload{Text: "still mine", IdempotencyKey: "k-" + tc.id}); err != nil {
			t.Errorf("publish with account %s's token on %s: %v", tc.id, tc.server, err)
		}
	}
}

// An instance that never answers GET /api/v2/instance does not hold up
// writing a post to one of its accounts: the limits read gives up after
// mastodon.LimitsTimeout, not the 30 s of other calls, and with its
// limits never read there are none: a text over Mastodon's default 500 is
// not refused for an instance that takes 5000 (the instance decides when
// the post is published).
func TestMastodonSlowInstanceDoesNotStallCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := mastodonWorld(t)
	fake := mastodonfake.New()
	t.Cleanup(fake.Close)
	a := w.MustConnect(t, "mastodon", fake.URL, "org-1", "user-1", fakeBrowser(t, "alice"))
	fake.Configure(func(s *mastodonfake.Server) { s.InstanceHangs, s.MaxCharacters = true, 5000 })

	svc := w.PostsService(nil)
	for _, tc := range []struct {
		name    string
		content string
		wantErr bool
	}{
		{"within the default limit", "hello from a slow instance", false},
		{"over Mastodon's default limit, the instance's own unknown", strings.Repeat("x", 600), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := svc.Create(ctx, "org-1", posts.Input{Content: &tc.content, SocialAccountIDs: &[]string{a.ID}})
			// The claim is "LimitsTimeout (3 s), not the 30 s call timeout":
			// 15 s tells them apart with room for a loaded machine.
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("create took %v; want about %v, well under the 30 s call timeout", took, mastodon.LimitsTimeout)
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("create: %v; want an error %t", err, tc.wantErr)
			}
		})
	}
}

// A hostile instance names javascript: links as its status's url and its
// account's avatar: neither is kept for frontends to render (the post is
// published, with no URL; the account has no avatar).
func TestLinksANetworkNamesAreWebLinksOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := mastodonWorld(t)
	inst := mastodonfake.New()
	t.Cleanup(inst.Close)
	inst.Configure(func(s *mastodonfake.Server) { s.HostileLinks = true })
	a := w.MustConnect(t, "mastodon", inst.URL, "org-1", "user-1", fakeBrowser(t, "alice"))
	if a.AvatarURL != "" {
		t.Errorf("avatar %q kept", a.AvatarURL)
	}
	p := w.MustPost(t, a, "hello from a hostile instance", posts.StatusPublishing)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	w.Activities().Register(env)
	if _, err := env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: p.ID, AccountID: a.ID}); err != nil {
		t.Fatal(err)
	}
	r, err := w.Store.Posts().Result(ctx, p.ID, a.ID)
	if err != nil || r.Status != posts.ResultPublished || r.PlatformPostURL != "" {
		t.Fatalf("result %+v, %v; want published with no URL", r, err)
	}
}
