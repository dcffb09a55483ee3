package mastodon_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/mastodon"
	"github.com/postflow/postflow/providers/mastodon/mastodonfake"
	"github.com/postflow/postflow/providers/providertest"
)

const redirectURI = "http://127.0.0.1:9/connections/callback/mastodon"

// setup starts a fake instance and a provider that may call it (local
// servers allowed, as in tests and dev).
func setup(t *testing.T) (*mastodon.Provider, *mastodonfake.Server, *providertest.Apps) {
	t.Helper()
	fake := mastodonfake.New()
	t.Cleanup(fake.Close)
	apps := &providertest.Apps{}
	p, err := mastodon.New(mastodon.Config{RedirectURI: redirectURI, Apps: apps, Servers: netguard.Policy{AllowLocal: true}})
	if err != nil {
		t.Fatal(err)
	}
	return p, fake, apps
}

const verifier = "a-verifier-of-at-least-forty-three-characters-0123456789"

func challenge() string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// connect runs the OAuth flow as the connections service does, signed in
// on the fake as user.
func connect(t *testing.T, p *mastodon.Provider, fake *mastodonfake.Server, user string) *providers.Connection {
	t.Helper()
	ctx := context.Background()
	u, err := p.AuthURL(ctx, fake.URL, "state-1", challenge())
	if err != nil {
		t.Fatal(err)
	}
	q, err := mastodonfake.Authorize(u, user)
	if err != nil || q.Get("code") == "" {
		t.Fatalf("authorize: %v %v", q, err)
	}
	conn, err := p.Exchange(ctx, fake.URL, q.Get("code"), "", verifier)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func account(conn *providers.Connection) providers.Account {
	return providers.Account{PlatformUserID: conn.Profile.PlatformUserID, Handle: conn.Profile.Handle,
		Server: conn.Profile.Server, AccessToken: conn.Tokens.AccessToken}
}

func TestConnect(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pkce          bool
		wantChallenge bool
	}{
		{"Mastodon 4.3+: S256 advertised, PKCE used", true, true},
		{"before 4.3: no metadata, no PKCE", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake, _ := setup(t)
			fake.Configure(func(s *mastodonfake.Server) { s.PKCE = tc.pkce })
			u, err := p.AuthURL(context.Background(), fake.URL, "state-1", challenge())
			if err != nil {
				t.Fatal(err)
			}
			au, _ := url.Parse(u)
			q := au.Query()
			if (q.Get("code_challenge") == challenge()) != tc.wantChallenge || q.Get("state") != "state-1" ||
				q.Get("redirect_uri") != redirectURI || q.Get("scope") != mastodon.DefaultScopes {
				t.Fatalf("authorize URL %s", u)
			}
			conn := connect(t, p, fake, "alice")
			host := strings.TrimPrefix(fake.URL, "http://")
			want := providers.Profile{PlatformUserID: "1@" + host, Handle: "@alice@" + host,
				DisplayName: "Alice", AvatarURL: fake.URL + "/avatars/1.png", Server: fake.URL}
			if conn.Profile != want || conn.Tokens.AccessToken == "" || !conn.Tokens.ExpiresAt.IsZero() || conn.Tokens.RefreshToken != "" {
				t.Errorf("connection %+v, want profile %+v, a token without expiry or refresh", conn, want)
			}
		})
	}
}

// Mastodon ids are per instance: the same local id on two instances is
// two accounts, each bound to the server PostFlow called, whatever the
// instance says its domain is; Find reads each one's own statuses.
func TestSameIDOnTwoInstances(t *testing.T) {
	ctx := context.Background()
	p, first, _ := setup(t)
	second := mastodonfake.New()
	t.Cleanup(second.Close)
	for _, tc := range []struct {
		name  string
		fake  *mastodonfake.Server
		claim string // the domain the instance names in the account's url
	}{
		{"first instance, its own domain", first, ""},
		{"second instance, claiming the first's domain", second, strings.TrimPrefix(first.URL, "http://")},
		{"second instance, claiming another's", second, "mastodon.social"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fake.Configure(func(s *mastodonfake.Server) { s.AccountDomain = tc.claim })
			a := account(connect(t, p, tc.fake, "alice"))
			host := strings.TrimPrefix(tc.fake.URL, "http://")
			if a.PlatformUserID != "1@"+host || a.Handle != "@alice@"+host || a.Server != tc.fake.URL {
				t.Errorf("account %s %s on %s; want id 1@%s, handle @alice@%s, server %s", a.PlatformUserID, a.Handle, a.Server, host, host, tc.fake.URL)
			}
			if mastodon.LocalID(a.PlatformUserID) != "1" {
				t.Errorf("local id of %s: %s; want 1", a.PlatformUserID, mastodon.LocalID(a.PlatformUserID))
			}
			text := tc.name + " on " + host
			pub, err := p.Publish(ctx, a, providers.Payload{Text: text, IdempotencyKey: "k-" + tc.name})
			if err != nil {
				t.Fatal(err)
			}
			found, err := p.Find(ctx, a, providers.Payload{Text: text}, time.Now().Add(-time.Minute))
			if err != nil || len(found) != 1 || found[0].PlatformPostID != pub.PlatformPostID {
				t.Errorf("find: %+v, %v; want %s", found, err, pub.PlatformPostID)
			}
		})
	}
	a1, a2 := mastodon.PlatformUserID("1", first.URL), mastodon.PlatformUserID("1", second.URL)
	if a1 == a2 {
		t.Errorf("account 1 on %s and on %s are both %s", first.URL, second.URL, a1)
	}
}

// A username with "@" would make the handle name another server: the
// account is refused.
func TestExchangeRefusesAUsernameWithAt(t *testing.T) {
	p, fake, _ := setup(t)
	fake.AddAccount("bob@mastodon.social")
	u, err := p.AuthURL(context.Background(), fake.URL, "s", challenge())
	if err != nil {
		t.Fatal(err)
	}
	q, err := mastodonfake.Authorize(u, "bob@mastodon.social")
	if err != nil || q.Get("code") == "" {
		t.Fatalf("authorize: %v %v", q, err)
	}
	conn, err := p.Exchange(context.Background(), fake.URL, q.Get("code"), "", verifier)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != "BAD_RESPONSE" {
		var got providers.Profile
		if conn != nil {
			got = conn.Profile // not its token
		}
		t.Errorf("exchange: profile %+v, %v; want BAD_RESPONSE", got, err)
	}
}

func TestLocalID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"109876543210@mastodon.social", "109876543210"},
		{"1@127.0.0.1:8080", "1"},
		{"01HXYZ@gts.example", "01HXYZ"},
		{"42", "42"}, // stored before the <id>@<host> form
	} {
		if got := mastodon.LocalID(tc.in); got != tc.want {
			t.Errorf("LocalID(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// The declared rules, as GET /providers shows them.
func TestRules(t *testing.T) {
	p, _, _ := setup(t)
	b, err := json.Marshal(p.Rules())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"limits":[]`, `"perServer":true`, `"lever":"idempotency-key"`, `"readBack":true`, `"refreshTokens":false`, `"revoke":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("rules %s lack %s", b, want)
		}
	}
	if c := p.Connect(); c.OAuth == nil || !c.OAuth.PKCE() || c.OAuth.Server() != providers.ServerRequired {
		t.Errorf("connect %+v: want OAuth with PKCE on a server the user names", c)
	}
}

func TestWrongVerifierIsRefused(t *testing.T) {
	p, fake, _ := setup(t)
	u, err := p.AuthURL(context.Background(), fake.URL, "s", challenge())
	if err != nil {
		t.Fatal(err)
	}
	q, _ := mastodonfake.Authorize(u, "alice")
	_, err = p.Exchange(context.Background(), fake.URL, q.Get("code"), "", "wrong-"+verifier)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Code != "invalid_grant" {
		t.Fatalf("exchange with a wrong verifier: %v; want auth invalid_grant", err)
	}
}

func TestAppRegisteredOncePerInstance(t *testing.T) {
	p, fake, apps := setup(t)
	fake.AddAccount("bob")
	connect(t, p, fake, "alice")
	connect(t, p, fake, "bob")
	if n := fake.Calls("POST /api/v1/apps"); n != 1 {
		t.Errorf("two connects registered %d apps, want 1", n)
	}
	app, err := apps.Get(context.Background(), mastodon.ID, fake.URL)
	if err != nil || app.ClientSecret == "" || app.RedirectURI != redirectURI || app.Scopes != mastodon.DefaultScopes {
		t.Errorf("stored app %+v, %v", app, err)
	}

	// Connects that start at once on an instance PostFlow does not know
	// all end up with the one app stored.
	p2, fake2, apps2 := setup(t)
	var wg sync.WaitGroup
	ids := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			u, err := p2.AuthURL(context.Background(), fake2.URL, "s", challenge())
			if err != nil {
				t.Error(err)
				return
			}
			au, _ := url.Parse(u)
			ids <- au.Query().Get("client_id")
		})
	}
	wg.Wait()
	close(ids)
	stored, err := apps2.Get(context.Background(), mastodon.ID, fake2.URL)
	if err != nil {
		t.Fatal(err)
	}
	for id := range ids {
		if id != stored.ClientID {
			t.Errorf("a connect used client %s, the store holds %s", id, stored.ClientID)
		}
	}
}

// A connect to an instance PostFlow has an app on checks that the
// instance still knows it with an app token (Mastodon vacuums unused
// apps), revoked at once; not on GoToSocial, which vacuums none and could
// not revoke the token.
func TestKnownAppCheck(t *testing.T) {
	for _, tc := range []struct {
		name, sourceURL         string
		wantTokens, wantRevokes int
	}{
		{"Mastodon: checked, the app token revoked", "https://github.com/mastodon/mastodon", 3, 1},
		{"no source_url: checked", "", 3, 1},
		{"GoToSocial: no app token", "https://github.com/superseriousbusiness/gotosocial", 2, 0},
		{"GoToSocial at codeberg: no app token", "https://codeberg.org/superseriousbusiness/gotosocial", 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake, _ := setup(t)
			fake.Configure(func(s *mastodonfake.Server) { s.SourceURL = tc.sourceURL })
			fake.AddAccount("bob")
			connect(t, p, fake, "alice")
			connect(t, p, fake, "bob") // the stored app: checked or not
			if n := fake.Calls("POST /api/v1/apps"); n != 1 {
				t.Errorf("%d registrations; want 1", n)
			}
			// Two exchanges, and the check's client_credentials if any.
			if n, r := fake.Calls("POST /oauth/token"), fake.Calls("POST /oauth/revoke"); n != tc.wantTokens || r != tc.wantRevokes {
				t.Errorf("%d token requests, %d revokes; want %d, %d", n, r, tc.wantTokens, tc.wantRevokes)
			}
		})
	}
}

func TestReregistersWhenTheInstanceForgotTheApp(t *testing.T) {
	ctx := context.Background()
	p, fake, apps := setup(t)
	connect(t, p, fake, "alice")
	first, _ := apps.Get(ctx, mastodon.ID, fake.URL)

	// Vacuumed before the next connect: AuthURL notices, registers again.
	fake.ForgetApps()
	connect(t, p, fake, "alice")
	second, _ := apps.Get(ctx, mastodon.ID, fake.URL)
	if fake.Calls("POST /api/v1/apps") != 2 || second.ClientID == first.ClientID {
		t.Errorf("after the instance forgot the app: %d registrations, client %s then %s; want 2, a new one",
			fake.Calls("POST /api/v1/apps"), first.ClientID, second.ClientID)
	}

	// Vacuumed between the authorize page and the callback: the exchange
	// fails (invalid_client), and the registration is forgotten.
	u, err := p.AuthURL(ctx, fake.URL, "s", challenge())
	if err != nil {
		t.Fatal(err)
	}
	q, _ := mastodonfake.Authorize(u, "alice")
	fake.ForgetApps()
	_, err = p.Exchange(ctx, fake.URL, q.Get("code"), "", verifier)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Code != "invalid_client" {
		t.Fatalf("exchange with a forgotten app: %v; want auth invalid_client", err)
	}
	if _, err := apps.Get(ctx, mastodon.ID, fake.URL); !errors.Is(err, providers.ErrNoApp) {
		t.Errorf("the forgotten app is still stored: %v", err)
	}
	connect(t, p, fake, "alice")
	if n := fake.Calls("POST /api/v1/apps"); n != 3 {
		t.Errorf("%d registrations, want 3", n)
	}
}

// Outside development an instance on a loopback or private address is
// refused: at connect, by name or address, and at every call, after DNS,
// for an account stored while it was allowed.
func TestLocalInstanceRefusedOutsideDev(t *testing.T) {
	ctx := context.Background()
	fake := mastodonfake.New()
	t.Cleanup(fake.Close)
	p, err := mastodon.New(mastodon.Config{RedirectURI: redirectURI, Apps: &providertest.Apps{}, Servers: netguard.Policy{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, server := range []string{fake.URL, strings.TrimPrefix(fake.URL, "http://"), "localhost", "https://10.0.0.8", "https://[::1]:443"} {
		if _, err := p.AuthURL(ctx, server, "s", challenge()); !errors.Is(err, providers.ErrBadServer) {
			t.Errorf("AuthURL(%q): %v; want ErrBadServer", server, err)
		}
	}
	if n := fake.Calls("POST /api/v1/apps"); n != 0 {
		t.Errorf("the refused instance was called %d times", n)
	}
	// An https address that the dial finds on loopback: the guard at the
	// dial refuses it, for good.
	a := providers.Account{PlatformUserID: "1", Handle: "@alice@x", Server: "https://" + strings.TrimPrefix(fake.URL, "http://"), AccessToken: fake.IssueToken("1")}
	_, err = p.Publish(ctx, a, providers.Payload{Text: "hello", IdempotencyKey: "k"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != "FORBIDDEN_ADDRESS" || pe.Kind != providers.KindInvalidContent || !errors.Is(err, netguard.ErrForbidden) {
		t.Fatalf("publish to a loopback instance: %v; want FORBIDDEN_ADDRESS", err)
	}
	if _, err := p.Find(ctx, a, providers.Payload{Text: "hello"}, time.Now()); !errors.Is(err, netguard.ErrForbidden) {
		t.Errorf("find on a loopback instance: %v; want refused", err)
	}
	if n := len(fake.Statuses("1")); n != 0 {
		t.Errorf("the instance holds %d statuses", n)
	}
}

func TestPublish(t *testing.T) {
	p, fake, _ := setup(t)
	a := account(connect(t, p, fake, "alice"))
	pub, err := p.Publish(context.Background(), a, providers.Payload{Text: "Hello @bob@example.social https://example.com", IdempotencyKey: "k1", Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	sts := fake.Statuses("1")
	if len(sts) != 1 || sts[0].Visibility != "public" || sts[0].Language != "en" || sts[0].ID != pub.PlatformPostID ||
		pub.URL != fake.URL+"/@alice/"+pub.PlatformPostID {
		t.Errorf("published %+v; the instance holds %+v", pub, sts)
	}
}

func TestErrorsByAnswer(t *testing.T) {
	for _, tc := range []struct {
		answer  string
		kind    providers.Kind
		code    string
		refused bool
		holds   int
	}{
		{"401", providers.KindAuth, "HTTP_401", true, 0},
		{"422", providers.KindInvalidContent, "HTTP_422", true, 0},
		{"429", providers.KindRateLimited, "HTTP_429", true, 0},
		{"500", providers.KindRetryable, "HTTP_500", false, 0},
		{"503", providers.KindRetryable, "HTTP_503", true, 0},
		{"504", providers.KindRetryable, "HTTP_504", false, 0},
		{"lost", providers.KindRetryable, "HTTP_504", false, 1},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			p, fake, _ := setup(t)
			a := account(connect(t, p, fake, "alice"))
			fake.Configure(func(s *mastodonfake.Server) { s.Answers["1"] = []string{tc.answer} })
			_, err := p.Publish(context.Background(), a, providers.Payload{Text: "hello", IdempotencyKey: "k"})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Code != tc.code || pe.Refused() != tc.refused || pe.Message == "" {
				t.Fatalf("error %#v; want %s %s refused=%v with a message", err, tc.kind, tc.code, tc.refused)
			}
			if strings.Contains(pe.Error(), a.AccessToken) {
				t.Errorf("the error names the token: %v", pe)
			}
			if n := len(fake.Statuses("1")); n != tc.holds {
				t.Errorf("the instance holds %d statuses, want %d", n, tc.holds)
			}
		})
	}
}

func TestRateLimitWait(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"Mastodon: ISO 8601 with microseconds", http.Header{"X-Ratelimit-Reset": {"2026-11-30T00:03:27.123456Z"}}, 3*time.Minute + 27123456*time.Microsecond},
		{"GoToSocial v0.18.3: ISO 8601 with milliseconds", http.Header{"X-Ratelimit-Reset": {"2026-11-30T00:00:30.000Z"}}, 30 * time.Second},
		{"with an offset", http.Header{"X-Ratelimit-Reset": {"2026-11-30T01:01:00+01:00"}}, time.Minute},
		{"epoch seconds", http.Header{"X-Ratelimit-Reset": {"1795996890"}}, 90 * time.Second},
		{"in the past: a second", http.Header{"X-Ratelimit-Reset": {"2026-11-29T23:00:00Z"}}, time.Second},
		{"Retry-After only", http.Header{"Retry-After": {"42"}}, 42 * time.Second},
		{"unreadable", http.Header{"X-Ratelimit-Reset": {"soon"}}, mastodon.DefaultRateLimitWait},
		{"none", http.Header{}, mastodon.DefaultRateLimitWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mastodon.RateLimitWait(tc.header, now); got != tc.want {
				t.Errorf("wait %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRateLimitedPublishWaitsUntilTheReset(t *testing.T) {
	for _, epoch := range []bool{false, true} {
		p, fake, _ := setup(t)
		a := account(connect(t, p, fake, "alice"))
		fake.Configure(func(s *mastodonfake.Server) {
			s.Answers["1"], s.ResetAsEpoch, s.RateLimitReset = []string{"429"}, epoch, 90*time.Second
		})
		_, err := p.Publish(context.Background(), a, providers.Payload{Text: "hello", IdempotencyKey: "k"})
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.RetryAfter < 85*time.Second || pe.RetryAfter > 91*time.Second {
			t.Errorf("epoch=%v: %v; want a wait of about 90 s", epoch, err)
		}
	}
}

func TestIdempotencyKeyAnswersTheFirstStatus(t *testing.T) {
	p, fake, _ := setup(t)
	a := account(connect(t, p, fake, "alice"))
	ctx := context.Background()
	first, err := p.Publish(ctx, a, providers.Payload{Text: "once", IdempotencyKey: "key-1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Publish(ctx, a, providers.Payload{Text: "once", IdempotencyKey: "key-1"})
	if err != nil || again.PlatformPostID != first.PlatformPostID || len(fake.Statuses("1")) != 1 {
		t.Errorf("repeat: %+v, %v; want %s and one status", again, err, first.PlatformPostID)
	}
}

func TestFind(t *testing.T) {
	ctx := context.Background()
	for _, noSource := range []bool{false, true} {
		p, fake, _ := setup(t)
		fake.Configure(func(s *mastodonfake.Server) { s.NoSource = noSource })
		a := account(connect(t, p, fake, "alice"))
		since := time.Now().Add(-time.Minute)
		text := "Line one & <two>\nline three"
		// 45 statuses after it: the read back pages.
		fake.Configure(func(s *mastodonfake.Server) { s.Answers["1"] = []string{"lost"} })
		if _, err := p.Publish(ctx, a, providers.Payload{Text: text, IdempotencyKey: "k-lost"}); err == nil {
			t.Fatal("the lost answer was no error")
		}
		for i := range 45 {
			if _, err := p.Publish(ctx, a, providers.Payload{Text: fmt.Sprint("other ", i), IdempotencyKey: fmt.Sprint("k", i)}); err != nil {
				t.Fatal(err)
			}
		}
		found, err := p.Find(ctx, a, providers.Payload{Text: text}, since)
		want := fake.Statuses("1")[0]
		if err != nil || len(found) != 1 || found[0].PlatformPostID != want.ID || found[0].URL != fake.URL+"/@alice/"+want.ID {
			t.Errorf("noSource=%v: found %+v, %v; want %s", noSource, found, err, want.ID)
		}
		if none, err := p.Find(ctx, a, providers.Payload{Text: "never posted"}, since); len(none) != 0 || err != nil {
			t.Errorf("noSource=%v: find of a text never posted: %+v, %v", noSource, none, err)
		}
		// Statuses older than since are not looked at.
		if old, err := p.Find(ctx, a, providers.Payload{Text: text}, time.Now().Add(time.Minute)); len(old) != 0 || err != nil {
			t.Errorf("noSource=%v: find after since: %+v, %v; want none", noSource, old, err)
		}
	}
}

func TestRevoke(t *testing.T) {
	p, fake, _ := setup(t)
	a := account(connect(t, p, fake, "alice"))
	if err := p.Revoke(context.Background(), a, providers.Tokens{AccessToken: a.AccessToken}); err != nil {
		t.Fatal(err)
	}
	_, err := p.Publish(context.Background(), a, providers.Payload{Text: "after revoke", IdempotencyKey: "k"})
	if providers.KindOf(err) != providers.KindAuth {
		t.Errorf("publish with a revoked token: %v; want auth", err)
	}
}

func TestTextLimits(t *testing.T) {
	ctx := context.Background()
	hangs := func(s *mastodonfake.Server) { s.InstanceHangs = true }
	for _, tc := range []struct {
		name             string
		set              func(*mastodonfake.Server)
		wantMax, wantURL int // wantMax 0: no limits, the instance decides
		// then changes the instance before it is asked again, an hour on,
		// when its limits are thenMax and thenURL.
		then             func(*mastodonfake.Server)
		thenMax, thenURL int
	}{
		{"the instance's own", func(s *mastodonfake.Server) { s.MaxCharacters, s.URLLength = 5000, 25 }, 5000, 25, nil, 0, 0},
		{"left out: Mastodon's defaults", func(s *mastodonfake.Server) { s.OmitLimits = true }, 500, 23, nil, 0, 0},
		{"down, never read: none", func(s *mastodonfake.Server) { s.InstanceDown = true }, 0, 0, nil, 0, 0},
		{"down later: the limits last read", func(s *mastodonfake.Server) { s.MaxCharacters = 1000 }, 1000, 23,
			func(s *mastodonfake.Server) { s.InstanceDown = true }, 1000, 23},
		{"never answers: none, soon", hangs, 0, 0, nil, 0, 0},
		{"never answers later: the limits last read, soon", func(s *mastodonfake.Server) { s.MaxCharacters = 1000 }, 1000, 23, hangs, 1000, 23},
		{"down, then answers: its limit applies", func(s *mastodonfake.Server) { s.InstanceDown, s.MaxCharacters = true, 5000 }, 0, 0,
			func(s *mastodonfake.Server) { s.InstanceDown = false }, 5000, 23},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := mastodonfake.New()
			t.Cleanup(fake.Close)
			now := time.Now()
			p, err := mastodon.New(mastodon.Config{RedirectURI: redirectURI, Apps: &providertest.Apps{},
				Servers: netguard.Policy{AllowLocal: true}, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			fake.Configure(tc.set)
			a := providers.Account{Server: fake.URL}
			check := func(when string, wantMax, wantURL int) {
				t.Helper()
				start := time.Now()
				ls, err := p.TextLimits(ctx, a)
				switch {
				case wantMax == 0:
					if err != nil || ls == nil || len(ls) != 0 {
						t.Fatalf("%s: limits %+v, %v; want none (an empty list)", when, ls, err)
					}
				case err != nil || len(ls) != 1 || ls[0].Max != wantMax || ls[0].URLLength != wantURL || ls[0].Unit != "characters":
					t.Fatalf("%s: limits %+v, %v; want %d, %d per URL", when, ls, err, wantMax, wantURL)
				}
				// Well within the provider's 30 s call timeout: a slow
				// instance must not hold up writing a post.
				if took := time.Since(start); took > 2*mastodon.LimitsTimeout {
					t.Errorf("%s: the limits took %v; want at most %v", when, took, mastodon.LimitsTimeout)
				}
			}
			check("first", tc.wantMax, tc.wantURL)
			calls := fake.Calls("GET /api/v2/instance")
			check("cached", tc.wantMax, tc.wantURL)
			if fake.Calls("GET /api/v2/instance") != calls {
				t.Errorf("asked the instance again within the hour")
			}
			if tc.then != nil {
				fake.Configure(tc.then)
				now = now.Add(2 * time.Hour)
				check("an hour later", tc.thenMax, tc.thenURL)
				if fake.Calls("GET /api/v2/instance") != calls+1 {
					t.Errorf("did not ask the instance again after the hour")
				}
			}
		})
	}
}

// An instance whose limits were never read (down when asked) gets the
// text: a limit PostFlow does not know is no limit. The instance decides,
// its refusal is invalid content; once it answers, its limit is checked
// before it is called again.
func TestPublishWhenTheLimitsWereNeverRead(t *testing.T) {
	ctx := context.Background()
	fake := mastodonfake.New()
	t.Cleanup(fake.Close)
	now := time.Now()
	p, err := mastodon.New(mastodon.Config{RedirectURI: redirectURI, Apps: &providertest.Apps{},
		Servers: netguard.Policy{AllowLocal: true}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a := account(connect(t, p, fake, "alice"))
	fake.Configure(func(s *mastodonfake.Server) { s.InstanceDown, s.MaxCharacters = true, 5000 })

	text := strings.Repeat("x", 600) // over Mastodon's default 500
	pub, err := p.Publish(ctx, a, providers.Payload{Text: text, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatalf("publish of 600 characters to a 5000 instance whose limits were never read: %v", err)
	}
	if sts := fake.Statuses("1"); len(sts) != 1 || sts[0].ID != pub.PlatformPostID {
		t.Fatalf("the instance holds %+v; want the post", sts)
	}

	// Its own limit lower: it refuses, as invalid content.
	fake.Configure(func(s *mastodonfake.Server) { s.MaxCharacters = 500 })
	posts := fake.Calls("POST /api/v1/statuses")
	_, err = p.Publish(ctx, a, providers.Payload{Text: text + "y", IdempotencyKey: "k2"})
	if providers.KindOf(err) != providers.KindInvalidContent {
		t.Errorf("publish over the instance's own limit: %v; want invalid content", err)
	}
	if fake.Calls("POST /api/v1/statuses") != posts+1 {
		t.Errorf("the instance was not asked: the text was refused before it")
	}

	// It answers again: its limit is PostFlow's check once more.
	fake.Configure(func(s *mastodonfake.Server) { s.InstanceDown = false })
	now = now.Add(2 * time.Minute)
	posts = fake.Calls("POST /api/v1/statuses")
	_, err = p.Publish(ctx, a, providers.Payload{Text: text + "z", IdempotencyKey: "k3"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindInvalidContent || pe.Code != "TEXT_LENGTH" {
		t.Errorf("publish over the limit read: %v; want TEXT_LENGTH", err)
	}
	if fake.Calls("POST /api/v1/statuses") != posts {
		t.Errorf("the instance was called with a text over the limit read")
	}
}

func TestCount(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", 100)
	for _, tc := range []struct {
		name string
		text string
		want int
	}{
		{"plain", "hello", 5},
		{"a long link counts 23", "see " + long, 4 + 23},
		{"a short link counts 23 too", "https://a.io", 23},
		{"two links", long + " " + long, 23 + 1 + 23},
		{"a link without scheme counts as written", "example.com/abc", 15},
		{"a mention counts without its domain", "hi @alice@example.social!", 3 + 6 + 1},
		{"a local mention", "@bob", 4},
		{"an email address is no mention", "mail bob@example.com", 20},
		{"an emoji is one character", "ok 🎉", 4},
		{"a family emoji is one grapheme", "👩‍👩‍👧", 1},
		{"accents", "café", 4},
		{"a combining accent belongs to its letter", "cafe\u0301", 4},
		{"a mention next to a link", "@a@b.social https://x.org/y", 2 + 1 + 23},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mastodon.Count(23)(tc.text); got != tc.want {
				t.Errorf("Count(%q) = %d, want %d", tc.text, got, tc.want)
			}
		})
	}
	if got := mastodon.Count(25)("https://a.io"); got != 25 {
		t.Errorf("a link with 25 per URL counts %d", got)
	}
}
