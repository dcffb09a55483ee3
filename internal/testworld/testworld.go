// Package testworld is the one world PostFlow's tests build: a real
// MongoDB-protocol store, a Redis-protocol state store, a token cipher,
// the in-test LinkedIn (and, when asked, the sandbox network) in a
// registry, and the domain services over them. Its Must helpers fail the
// test on a set-up error, so that a test reads as what it checks.
//
// A package that uses it calls mongotest.Main from its TestMain. It holds
// no Temporal server: activities run in the SDK's test environment.
package testworld

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postflow/postflow/activities"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/oauthstate"
	"github.com/postflow/postflow/internal/redistest"
	"github.com/postflow/postflow/internal/sandboxplatform"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/linkedin"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
	"github.com/postflow/postflow/providers/sandbox"
)

// Options shape a world; the zero value is LinkedIn alone on the wall
// clock, with logs discarded.
type Options struct {
	// Now is the clock of connections.Service and of the LinkedIn
	// provider; nil: time.Now.
	Now func() time.Time
	// Logger is connections.Service's; nil: discarded.
	Logger *slog.Logger
	// LinkedIn configures the fake before its provider is built (its
	// RedirectURI, refresh tokens, ...).
	LinkedIn func(*linkedinfake.Server)
	// Sandbox serves the sandbox network beside LinkedIn and registers
	// its provider.
	Sandbox bool
	// LinkedInPages enables LinkedIn company pages (LINKEDIN_PAGES_ENABLED).
	LinkedInPages bool
	// Providers, if set, adds networks built over the world's store and
	// cipher (Store and Cipher are set when it is called): a Mastodon
	// provider keeps its registrations in w.Store.ServerApps(w.Cipher).
	Providers func(w *World) ([]providers.Provider, error)
}

// World is what a test publishes and connects through.
type World struct {
	Store  *mongostore.Store
	Redis  *redis.Client
	States *oauthstate.Store
	Cipher *tokencipher.Cipher
	// LinkedInFake is the in-test LinkedIn; LinkedIn its provider.
	LinkedInFake *linkedinfake.Server
	LinkedIn     providers.Provider
	// Sandbox serves the sandbox network under /sandbox (nil unless
	// Options.Sandbox).
	Sandbox     *httptest.Server
	Registry    *providers.Registry
	Connections *connections.Service
}

// New builds a world whose servers and databases end with t.
func New(t testing.TB, opts Options) *World {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	logger := opts.Logger
	if logger == nil {
		logger = discard
	}
	w := &World{Store: mongotest.Store(t)}
	ctx := context.Background()
	if err := w.Store.Accounts().EnsureIndexes(ctx); err != nil {
		t.Fatalf("testworld: account indexes: %v", err)
	}
	if err := w.Store.Posts().EnsureIndexes(ctx); err != nil {
		t.Fatalf("testworld: post indexes: %v", err)
	}

	w.LinkedInFake = linkedinfake.New()
	t.Cleanup(w.LinkedInFake.Close)
	if opts.LinkedIn != nil {
		w.LinkedInFake.Configure(opts.LinkedIn)
	}
	cfg := w.LinkedInFake.ProviderConfig()
	cfg.Pages = opts.LinkedInPages
	if opts.Now != nil {
		cfg.Now = opts.Now
	}
	var err error
	if w.LinkedIn, err = linkedin.New(cfg); err != nil {
		t.Fatalf("testworld: linkedin: %v", err)
	}
	provs := []providers.Provider{w.LinkedIn}
	if opts.Sandbox {
		w.Sandbox = httptest.NewServer(http.StripPrefix("/sandbox", sandboxplatform.New(w.Store.DB, sandboxplatform.Options{Logger: discard})))
		t.Cleanup(w.Sandbox.Close)
		sbx, err := sandbox.New(sandbox.Config{BaseURL: w.Sandbox.URL + "/sandbox", RedirectURI: "http://127.0.0.1:9/connections/callback/sandbox"})
		if err != nil {
			t.Fatalf("testworld: sandbox: %v", err)
		}
		provs = append(provs, sbx)
	}
	if w.Cipher, err = tokencipher.New(bytes.Repeat([]byte{3}, 32)); err != nil {
		t.Fatalf("testworld: cipher: %v", err)
	}
	if opts.Providers != nil {
		more, err := opts.Providers(w)
		if err != nil {
			t.Fatalf("testworld: providers: %v", err)
		}
		provs = append(provs, more...)
	}
	if w.Registry, err = providers.NewRegistry(provs...); err != nil {
		t.Fatalf("testworld: registry: %v", err)
	}

	w.Redis, _ = redistest.Client(t)
	w.States = oauthstate.New(w.Redis)
	w.Connections = connections.NewService(w.Store.Accounts(), w.States, w.Registry, w.Cipher, logger)
	if opts.Now != nil {
		w.Connections = w.Connections.WithClock(opts.Now)
	}
	return w
}

// Activities are the publishing activities over the world's stores,
// tokens and providers.
func (w *World) Activities() *activities.Activities {
	return &activities.Activities{Posts: w.Store.Posts(), Accounts: w.Store.Accounts(), Tokens: w.Connections, Providers: w.Registry}
}

// PostsService is posts.Service over the world's stores (its media
// library's records: w.Store.Media()) and providers, starting runs on
// runner.
func (w *World) PostsService(runner posts.Runner) *posts.Service {
	return posts.NewService(w.Store.Posts(), w.Store.Accounts(), w.Registry, runner, w.Store.Media().Usable())
}

// MustConnectLinkedIn connects the in-test LinkedIn member into org, as
// PostFlow's user, through the real OAuth flow in one browser.
func (w *World) MustConnectLinkedIn(t testing.TB, org, user string) *connections.Account {
	t.Helper()
	ctx := context.Background()
	browser := mustBrowserKey(t)
	u, _, err := w.Connections.ConnectURL(ctx, "linkedin", "", org, user, browser)
	if err != nil {
		t.Fatalf("testworld: connect linkedin: %v", err)
	}
	q, err := linkedinfake.Authorize(u)
	if err != nil {
		t.Fatalf("testworld: linkedin authorize: %v", err)
	}
	a, err := w.Connections.Callback(ctx, "linkedin", q, browser)
	if err != nil {
		t.Fatalf("testworld: linkedin callback: %v", err)
	}
	return a
}

// MustConnectSandbox connects the sandbox user name into org, as
// PostFlow's user, through the sandbox's authorize form in one browser.
// The world needs Options.Sandbox.
func (w *World) MustConnectSandbox(t testing.TB, org, user, name string) *connections.Account {
	t.Helper()
	if w.Sandbox == nil {
		t.Fatal("testworld: MustConnectSandbox needs Options.Sandbox")
	}
	ctx := context.Background()
	browser := mustBrowserKey(t)
	u, _, err := w.Connections.ConnectURL(ctx, "sandbox", "", org, user, browser)
	if err != nil {
		t.Fatalf("testworld: connect sandbox: %v", err)
	}
	authorize, err := url.Parse(u)
	if err != nil {
		t.Fatalf("testworld: sandbox authorize URL: %v", err)
	}
	form := authorize.Query()
	form.Set("name", name)
	form.Set("action", "allow")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.PostForm(w.Sandbox.URL+"/sandbox/authorize", form)
	if err != nil {
		t.Fatalf("testworld: sandbox authorize: %v", err)
	}
	res.Body.Close()
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatalf("testworld: sandbox callback URL: %v", err)
	}
	a, err := w.Connections.Callback(ctx, "sandbox", back.Query(), browser)
	if err != nil {
		t.Fatalf("testworld: sandbox callback: %v", err)
	}
	return a
}

// MustConnect connects an account of providerID on server ("" for a
// network with one) into org, as PostFlow's user, in one browser: browser
// plays the browser's part at the network, from the authorize URL to the
// query the network redirects back with.
func (w *World) MustConnect(t testing.TB, providerID, server, org, user string, browser func(authorizeURL string) url.Values) *connections.Account {
	t.Helper()
	ctx := context.Background()
	key := mustBrowserKey(t)
	u, _, err := w.Connections.ConnectURL(ctx, providerID, server, org, user, key)
	if err != nil {
		t.Fatalf("testworld: connect %s: %v", providerID, err)
	}
	a, err := w.Connections.Callback(ctx, providerID, browser(u), key)
	if err != nil {
		t.Fatalf("testworld: %s callback: %v", providerID, err)
	}
	return a
}

// MustPost stores a post with content and status to one account, in its
// organization, as the API would have made it.
func (w *World) MustPost(t testing.TB, account *connections.Account, content string, status posts.Status) *posts.Post {
	t.Helper()
	now := time.Now().UTC()
	p, err := w.Store.Posts().Create(context.Background(), &posts.Post{
		OrganizationID: account.OrganizationID, Content: content, SocialAccountIDs: []string{account.ID},
		Status: status, CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		t.Fatalf("testworld: post: %v", err)
	}
	return p
}

func mustBrowserKey(t testing.TB) string {
	t.Helper()
	browser, err := connections.NewBrowserKey()
	if err != nil {
		t.Fatalf("testworld: browser key: %v", err)
	}
	return browser
}
