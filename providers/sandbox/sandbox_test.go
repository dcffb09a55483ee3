package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/sandboxplatform"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/sandbox"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

const redirect = "http://127.0.0.1:9/connections/callback/sandbox"

func setup(t *testing.T, accessTTL time.Duration) (*sandbox.Provider, *httptest.Server) {
	t.Helper()
	return setupWith(t, sandboxplatform.Options{AccessTTL: accessTTL})
}

func setupWith(t *testing.T, opts sandboxplatform.Options) (*sandbox.Provider, *httptest.Server) {
	t.Helper()
	store := mongotest.Store(t)
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	platform := sandboxplatform.New(store.DB, opts)
	srv := httptest.NewServer(http.StripPrefix("/sandbox", platform))
	t.Cleanup(srv.Close)
	p, err := sandbox.New(sandbox.Config{BaseURL: srv.URL + "/sandbox", RedirectURI: redirect})
	if err != nil {
		t.Fatal(err)
	}
	return p, srv
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize opens the authorize page and presses a button, as a person
// would, and returns the query the browser is sent back with.
func authorize(t *testing.T, p *sandbox.Provider, state, challenge, name, action string) url.Values {
	t.Helper()
	page, err := http.Get(mustAuthURL(t, p, state, challenge))
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(html), "wants to publish posts as you") {
		t.Fatalf("authorize page: %d %s", page.StatusCode, html)
	}
	form := url.Values{"name": {name}, "action": {action}}
	u, _ := url.Parse(mustAuthURL(t, p, state, challenge))
	for k, v := range u.Query() {
		form[k] = v
	}
	res, err := noFollow.PostForm(u.Scheme+"://"+u.Host+u.Path, form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("authorize: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	return loc.Query()
}

func connect(t *testing.T, p *sandbox.Provider, name string) *providers.Connection {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := authorize(t, p, "st", oauth2.S256ChallengeFromVerifier(verifier), name, "allow")
	conn, err := p.Exchange(context.Background(), "", q.Get("code"), "", verifier)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return conn
}

func behave(t *testing.T, srv *httptest.Server, user string, b sandboxplatform.Behaviour) {
	t.Helper()
	body, _ := json.Marshal(b)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/sandbox/users/"+user+"/behaviour", strings.NewReader(string(body)))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("set behaviour: %v %v", res, err)
	}
	res.Body.Close()
}

// The same text from the same user is a duplicate of the last post with
// it while the window lasts, and a new post after.
func TestDuplicateWindow(t *testing.T) {
	// 5 s: a publish stalled on a loaded machine (the first one in a fresh
	// database creates collections) must not outlast the window.
	const window = 5 * time.Second
	p, _ := setupWith(t, sandboxplatform.Options{DuplicateWindow: window})
	ctx := context.Background()
	conn := connect(t, p, "Ada")
	a := providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}
	var last string
	for round := range 2 {
		if round > 0 {
			time.Sleep(window + 100*time.Millisecond)
		}
		pub, err := p.Publish(ctx, a, providers.Payload{Text: "same words"})
		if err != nil || pub.PlatformPostID == last {
			t.Fatalf("round %d: %+v, %v; want a new post", round, pub, err)
		}
		last = pub.PlatformPostID
		_, err = p.Publish(ctx, a, providers.Payload{Text: "same words"})
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != providers.KindDuplicate || pe.ExistingPostID != last {
			t.Errorf("round %d, again at once: %v; want a duplicate of %s", round, err, last)
		}
	}
	other := connect(t, p, "Grace")
	if _, err := p.Publish(ctx, providers.Account{PlatformUserID: other.Profile.PlatformUserID, AccessToken: other.Tokens.AccessToken},
		providers.Payload{Text: "same words"}); err != nil {
		t.Errorf("the same words from another user: %v", err)
	}
}

// Two processes serving one sandbox: a switch set through one applies in
// the other too, though that one keeps users it has read for a moment.
func TestSwitchSetThroughAnotherProcess(t *testing.T) {
	store := mongotest.Store(t)
	serve := func() *httptest.Server {
		srv := httptest.NewServer(http.StripPrefix("/sandbox", sandboxplatform.New(store.DB,
			sandboxplatform.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})))
		t.Cleanup(srv.Close)
		return srv
	}
	one, other := serve(), serve()
	p, err := sandbox.New(sandbox.Config{BaseURL: one.URL + "/sandbox", RedirectURI: redirect})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn := connect(t, p, "Ada")
	a := providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}
	if _, err := p.Publish(ctx, a, providers.Payload{Text: "read the user"}); err != nil {
		t.Fatal(err)
	}
	behave(t, other, a.PlatformUserID, sandboxplatform.Behaviour{Publish: "unavailable"})
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		_, err := p.Publish(ctx, a, providers.Payload{Text: fmt.Sprint("try ", i)})
		if providers.KindOf(err) == providers.KindRetryable {
			return
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("publish %d: %v; the switch set through the other process never applied", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestConnectWithPKCE(t *testing.T) {
	p, _ := setup(t, time.Hour)
	conn := connect(t, p, "Grace Hopper")
	if conn.Profile.PlatformUserID != "sbx-grace-hopper" || conn.Profile.DisplayName != "Grace Hopper" {
		t.Errorf("profile = %+v", conn.Profile)
	}
	if conn.Tokens.AccessToken == "" || conn.Tokens.RefreshToken == "" || time.Until(conn.Tokens.ExpiresAt) < 59*time.Minute {
		t.Errorf("tokens: access %v refresh %v expiring %v", conn.Tokens.AccessToken != "", conn.Tokens.RefreshToken != "", conn.Tokens.ExpiresAt)
	}

	verifier := oauth2.GenerateVerifier()
	q := authorize(t, p, "st", oauth2.S256ChallengeFromVerifier(verifier), "Grace Hopper", "allow")
	if _, err := p.Exchange(context.Background(), "", q.Get("code"), "", "the-wrong-verifier-of-enough-length-000000000"); providers.KindOf(err) != providers.KindAuth {
		t.Errorf("wrong verifier: %v, want an auth error", err)
	}
	if _, err := p.Exchange(context.Background(), "", q.Get("code"), "", verifier); providers.KindOf(err) != providers.KindAuth {
		t.Errorf("a code refused once works later: %v", err)
	}

	denied := authorize(t, p, "st2", oauth2.S256ChallengeFromVerifier(verifier), "Grace Hopper", "deny")
	if denied.Get("error") != "access_denied" || denied.Get("state") != "st2" || denied.Has("code") {
		t.Errorf("deny: %v", denied)
	}
}

func TestPublishFeedAndSwitches(t *testing.T) {
	p, srv := setup(t, time.Hour)
	ctx := context.Background()
	conn := connect(t, p, "Ada")
	a := providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}

	pub, err := p.Publish(ctx, a, providers.Payload{Text: "hello sandbox"})
	if err != nil {
		t.Fatal(err)
	}
	if feed := feedOf(t, srv, a.PlatformUserID); len(feed) != 1 || feed[0].ID != pub.PlatformPostID || feed[0].Text != "hello sandbox" {
		t.Errorf("feed = %+v, published %+v", feed, pub)
	}

	// Twice: a duplicate must leave the post it duplicates on record.
	var pe *providers.Error
	for range 2 {
		_, err = p.Publish(ctx, a, providers.Payload{Text: "hello sandbox"})
		if !errors.As(err, &pe) || pe.Kind != providers.KindDuplicate || pe.ExistingPostID != pub.PlatformPostID {
			t.Errorf("duplicate: %v", err)
		}
	}

	behave(t, srv, a.PlatformUserID, sandboxplatform.Behaviour{Publish: "rate_limited", PublishTimes: 1, RetryAfterSeconds: 42})
	_, err = p.Publish(ctx, a, providers.Payload{Text: "second"})
	if !errors.As(err, &pe) || pe.Kind != providers.KindRateLimited || pe.RetryAfter != 42*time.Second {
		t.Errorf("rate limited: %v", err)
	}
	behave(t, srv, a.PlatformUserID, sandboxplatform.Behaviour{Publish: "unavailable", PublishTimes: 1})
	if _, err = p.Publish(ctx, a, providers.Payload{Text: "second"}); providers.KindOf(err) != providers.KindRetryable {
		t.Errorf("unavailable: %v", err)
	}
	// Both switches were for one call: the next one goes through.
	if _, err = p.Publish(ctx, a, providers.Payload{Text: "second"}); err != nil {
		t.Errorf("after the switches ran out: %v", err)
	}
	if _, err = p.Publish(ctx, a, providers.Payload{Text: strings.Repeat("x", 501)}); providers.KindOf(err) != providers.KindInvalidContent {
		t.Errorf("too long: %v", err)
	}
}

func TestTokensExpireAndRefresh(t *testing.T) {
	// 5 s: the first publish in a fresh database (it creates collections)
	// must come within the token's life on a loaded machine.
	const ttl = 5 * time.Second
	p, srv := setup(t, ttl)
	ctx := context.Background()
	conn := connect(t, p, "Linus")
	a := providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}
	// Used while valid (the sandbox keeps the grant it read), then not.
	if _, err := p.Publish(ctx, a, providers.Payload{Text: "early"}); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	time.Sleep(ttl + 100*time.Millisecond)
	if _, err := p.Publish(ctx, a, providers.Payload{Text: "late"}); providers.KindOf(err) != providers.KindAuth {
		t.Fatalf("expired token: %v, want an auth error", err)
	}
	fresh, err := p.Refresh(ctx, providers.Account{}, providers.Tokens{RefreshToken: conn.Tokens.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	a.AccessToken = fresh.AccessToken
	if _, err := p.Publish(ctx, a, providers.Payload{Text: "late"}); err != nil {
		t.Errorf("refreshed token: %v", err)
	}
	var pe *providers.Error
	if _, err := p.Refresh(ctx, providers.Account{}, providers.Tokens{RefreshToken: conn.Tokens.RefreshToken}); !errors.As(err, &pe) || pe.Code != "invalid_grant" {
		t.Errorf("a spent refresh token: %v, want invalid_grant", err)
	}
	behave(t, srv, a.PlatformUserID, sandboxplatform.Behaviour{Refresh: "invalid_grant"})
	if _, err := p.Refresh(ctx, providers.Account{}, providers.Tokens{RefreshToken: fresh.RefreshToken}); !errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Code != "invalid_grant" {
		t.Errorf("switched to invalid_grant: %v", err)
	}
}

// Each publish switch answers as the platform row it stands for, and
// whether the post was created says whether the answer can be trusted.
func TestPublishModes(t *testing.T) {
	p, srv := setup(t, time.Hour)
	ctx := context.Background()
	conn := connect(t, p, "Edsger")
	a := providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}
	feedLen := func() int { return len(feedOf(t, srv, a.PlatformUserID)) }
	for _, tt := range []struct {
		mode    string
		kind    providers.Kind
		status  int
		refused bool // the platform says it did not act
		created bool
	}{
		{"unavailable", providers.KindRetryable, 503, true, false},
		{"rate_limited", providers.KindRateLimited, 429, true, false},
		{"expired_token", providers.KindAuth, 401, true, false},
		{"rejected", providers.KindInvalidContent, 422, true, false},
		{"lost_answer", providers.KindRetryable, 504, false, true},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			before := feedLen()
			behave(t, srv, a.PlatformUserID, sandboxplatform.Behaviour{Publish: tt.mode, PublishTimes: 1})
			text := "mode " + tt.mode
			_, err := p.Publish(ctx, a, providers.Payload{Text: text})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tt.kind || pe.Status != tt.status || pe.Refused() != tt.refused {
				t.Fatalf("err = %v (status %d), want %s %d refused=%v", err, pe.Status, tt.kind, tt.status, tt.refused)
			}
			if created := feedLen() > before; created != tt.created {
				t.Errorf("created = %v, want %v", created, tt.created)
			}
			// The switch was for one call; the retry goes through, or
			// names the post the lost answer made.
			pub, err := p.Publish(ctx, a, providers.Payload{Text: text})
			if tt.created {
				if !errors.As(err, &pe) || pe.Kind != providers.KindDuplicate || pe.ExistingPostID == "" {
					t.Errorf("retry after a lost answer: %v, want a duplicate with its id", err)
				}
			} else if err != nil || pub.PlatformPostID == "" {
				t.Errorf("retry: %+v, %v", pub, err)
			}
		})
	}
}

// accessTokenSeconds shortens the tokens issued to one user from then on.
func TestAccessTokenLifePerUser(t *testing.T) {
	p, srv := setup(t, time.Hour)
	conn := connect(t, p, "Barbara")
	behave(t, srv, conn.Profile.PlatformUserID, sandboxplatform.Behaviour{AccessTokenSeconds: 90})
	fresh, err := p.Refresh(context.Background(), providers.Account{}, providers.Tokens{RefreshToken: conn.Tokens.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(fresh.ExpiresAt); left > 90*time.Second || left < 80*time.Second {
		t.Errorf("a refreshed token lives %v, want 90 s", left)
	}
}

// The provider sends Payload.IdempotencyKey, and the sandbox answers a
// repeat of it with the post the first publish made, also with duplicate
// detection off and after an answer lost; until the key's window ends.
func TestIdempotencyKey(t *testing.T) {
	// 5 s: the repeat must come within the window though the first publish
	// in a fresh database (it creates collections) may stall.
	const window = 5 * time.Second
	if w := (&sandbox.Provider{}).Rules().ExactlyOnce.IdempotencyWindow; w != time.Hour {
		t.Errorf("IdempotencyWindow = %v, want 1 h as Mastodon", w)
	}
	no := false
	for _, tt := range []struct {
		name      string
		behaviour sandboxplatform.Behaviour
		lost      bool          // the first publish's answer is lost
		otherKey  bool          // the second publish has a key of its own
		wait      time.Duration // between the two publishes
		kind      providers.Kind
		samePost  bool
		posts     int
	}{
		{name: "repeated key", behaviour: sandboxplatform.Behaviour{}, samePost: true, posts: 1},
		{name: "repeated key, detection off", behaviour: sandboxplatform.Behaviour{DuplicateDetection: &no}, samePost: true, posts: 1},
		{name: "repeated key after a lost answer, detection off", behaviour: sandboxplatform.Behaviour{DuplicateDetection: &no}, lost: true, samePost: true, posts: 1},
		{name: "other key, same text, detection on", behaviour: sandboxplatform.Behaviour{}, otherKey: true, kind: providers.KindDuplicate, samePost: true, posts: 1},
		{name: "other key, same text, detection off", behaviour: sandboxplatform.Behaviour{DuplicateDetection: &no}, otherKey: true, posts: 2},
		{name: "repeated key past its window, detection off", behaviour: sandboxplatform.Behaviour{DuplicateDetection: &no}, wait: window + 100*time.Millisecond, posts: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, srv := setupWith(t, sandboxplatform.Options{IdempotencyWindow: window})
			ctx := context.Background()
			conn := connect(t, p, "Ada")
			a := providers.Account{PlatformUserID: conn.Profile.PlatformUserID, AccessToken: conn.Tokens.AccessToken}
			first := tt.behaviour
			if tt.lost {
				first.Publish, first.PublishTimes = "lost_answer", 1
			}
			behave(t, srv, a.PlatformUserID, first)
			pl := providers.Payload{Text: "once, please", IdempotencyKey: "postflow-p1-a1"}
			pub, err := p.Publish(ctx, a, pl)
			if tt.lost != (err != nil) {
				t.Fatalf("first publish: %+v, %v", pub, err)
			}
			feed := feedOf(t, srv, a.PlatformUserID)
			if len(feed) != 1 || feed[0].IdempotencyKey != pl.IdempotencyKey {
				t.Fatalf("feed after the first publish: %+v", feed)
			}
			firstID := feed[0].ID
			time.Sleep(tt.wait)
			if tt.otherKey {
				pl.IdempotencyKey = "postflow-p2-a1"
			}
			second, err := p.Publish(ctx, a, pl)
			var pe *providers.Error
			id := ""
			switch {
			case tt.kind == 0 && err == nil:
				id = second.PlatformPostID
			case tt.kind != 0 && errors.As(err, &pe) && pe.Kind == tt.kind:
				id = pe.ExistingPostID
			default:
				t.Fatalf("second publish: %+v, %v; want kind %v", second, err, tt.kind)
			}
			if (id == firstID) != tt.samePost {
				t.Errorf("second publish answered %s, the first post is %s; want the same: %v", id, firstID, tt.samePost)
			}
			if n := len(feedOf(t, srv, a.PlatformUserID)); n != tt.posts {
				t.Errorf("%d posts in the feed, want %d", n, tt.posts)
			}
		})
	}
}

func feedOf(t *testing.T, srv *httptest.Server, user string) []sandboxplatform.Post {
	t.Helper()
	posts, err := sandboxplatform.ReadFeed(context.Background(), srv.URL+"/sandbox", user)
	if err != nil {
		t.Fatal(err)
	}
	return posts
}

func mustAuthURL(t *testing.T, p *sandbox.Provider, state, challenge string) string {
	t.Helper()
	u, err := p.AuthURL(context.Background(), "", state, challenge)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
