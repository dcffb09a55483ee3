package linkedin_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/linkedin"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
)

func setup(t *testing.T, now time.Time) (*linkedin.Provider, *linkedinfake.Server) {
	t.Helper()
	fake := linkedinfake.New()
	t.Cleanup(fake.Close)
	cfg := fake.ProviderConfig()
	cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	cfg.Now = func() time.Time { return now }
	p, err := linkedin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, fake
}

// authorize follows the authorize URL as a browser would and returns the
// callback's query.
func authorize(t *testing.T, p *linkedin.Provider, state string) url.Values {
	t.Helper()
	q, err := linkedinfake.Authorize(mustAuthURL(t, p, state, ""))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestAuthURL(t *testing.T) {
	p, fake := setup(t, time.Now())
	u, err := url.Parse(mustAuthURL(t, p, "st4te", "ignored-challenge"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if got := u.Scheme + "://" + u.Host + u.Path; got != fake.AuthURL() {
		t.Errorf("endpoint = %s", got)
	}
	want := map[string]string{
		"response_type": "code",
		"client_id":     fake.ClientID,
		"redirect_uri":  fake.RedirectURI,
		"state":         "st4te",
		"scope":         "openid profile email w_member_social",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("code_challenge") || q.Has("code_challenge_method") {
		t.Error("LinkedIn web apps have no PKCE; the URL must carry no challenge")
	}
	if p.PKCE() {
		t.Error("PKCE() = true")
	}
}

func TestConnectAndRefresh(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	p, fake := setup(t, now)
	fake.Configure(func(s *linkedinfake.Server) { s.IssueRefreshTokens = true })
	ctx := context.Background()

	cb := authorize(t, p, "st4te")
	if cb.Get("state") != "st4te" || cb.Get("code") == "" {
		t.Fatalf("callback query = %v", cb)
	}
	conn, err := p.Exchange(ctx, "", cb.Get("code"), "", "")
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if conn.Profile.PlatformUserID != "urn:li:person:"+fake.Sub || conn.Profile.DisplayName != fake.Name || conn.Profile.AvatarURL != fake.Picture {
		t.Errorf("profile = %+v", conn.Profile)
	}
	if got := conn.Tokens.ExpiresAt; !got.Equal(now.Add(5184000 * time.Second)) {
		t.Errorf("ExpiresAt = %v, want 60 days after now", got)
	}
	if conn.Tokens.RefreshToken == "" || !conn.Tokens.RefreshExpiresAt.Equal(now.Add(365*24*time.Hour)) {
		t.Errorf("refresh token present %v, expiring %v", conn.Tokens.RefreshToken != "", conn.Tokens.RefreshExpiresAt)
	}
	if strings.Join(conn.Tokens.Scopes, " ") != "openid profile email w_member_social" {
		t.Errorf("scopes = %v (LinkedIn sends them comma-separated)", conn.Tokens.Scopes)
	}

	// A code works once.
	if _, err := p.Exchange(ctx, "", cb.Get("code"), "", ""); providers.KindOf(err) != providers.KindAuth {
		t.Errorf("second Exchange of one code: %v, want an auth error", err)
	}

	refreshed, err := p.Refresh(ctx, providers.Account{}, providers.Tokens{RefreshToken: conn.Tokens.RefreshToken})
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if refreshed.AccessToken == "" || refreshed.AccessToken == conn.Tokens.AccessToken || refreshed.RefreshToken == "" {
		t.Errorf("refresh gave access %v, refresh %v", refreshed.AccessToken != "", refreshed.RefreshToken != "")
	}
	if !refreshed.RefreshExpiresAt.Equal(now.Add(300 * 24 * time.Hour)) {
		t.Errorf("RefreshExpiresAt = %v: LinkedIn sends the remaining TTL", refreshed.RefreshExpiresAt)
	}

	// The spent refresh token is refused with invalid_grant.
	_, err = p.Refresh(ctx, providers.Account{}, providers.Tokens{RefreshToken: conn.Tokens.RefreshToken})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Code != "invalid_grant" || pe.Message != "Token has been expired or revoked." {
		t.Errorf("reused refresh token: %#v", err)
	}

	// The token endpoint saw the secret in the form body, never a verifier.
	for _, r := range fake.Requests() {
		if r.URL.Path == "/oauth/v2/accessToken" && r.Header.Get("Authorization") != "" {
			t.Error("client credentials must go in the form body, not HTTP Basic")
		}
	}
}

func TestExchangeErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("no refresh token without approval", func(t *testing.T) {
		p, _ := setup(t, time.Now())
		conn, err := p.Exchange(ctx, "", authorize(t, p, "s").Get("code"), "", "")
		if err != nil || conn.Tokens.RefreshToken != "" {
			t.Fatalf("Exchange = %v; refresh token present: %v", err, conn != nil && conn.Tokens.RefreshToken != "")
		}
		if _, err := p.Refresh(ctx, providers.Account{}, providers.Tokens{RefreshToken: ""}); providers.KindOf(err) != providers.KindAuth {
			t.Errorf("Refresh without a refresh token: %v, want an auth error", err)
		}
	})
	t.Run("consent denied", func(t *testing.T) {
		p, fake := setup(t, time.Now())
		fake.Configure(func(s *linkedinfake.Server) { s.DenyConsent = true })
		cb := authorize(t, p, "s")
		if cb.Get("error") != "user_cancelled_authorize" || cb.Get("state") != "s" || cb.Has("code") {
			t.Errorf("callback = %v", cb)
		}
	})
	t.Run("unknown code", func(t *testing.T) {
		p, _ := setup(t, time.Now())
		_, err := p.Exchange(ctx, "", "made-up", "", "")
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Code != "invalid_request" || pe.Status != 401 {
			t.Errorf("err = %#v", err)
		}
		if strings.Contains(pe.Message, "{") {
			t.Errorf("message %q holds the raw body", pe.Message)
		}
	})
	t.Run("verifier refused before sending", func(t *testing.T) {
		p, fake := setup(t, time.Now())
		if _, err := p.Exchange(ctx, "", authorize(t, p, "s").Get("code"), "", "a-verifier"); err == nil {
			t.Error("Exchange sent a code_verifier to LinkedIn")
		}
		for _, r := range fake.Requests() {
			if r.URL.Path == "/oauth/v2/accessToken" {
				t.Error("the token endpoint was called")
			}
		}
	})
	t.Run("token endpoint down", func(t *testing.T) {
		p, fake := setup(t, time.Now())
		fake.Close()
		if _, err := p.Exchange(ctx, "", "code", "", ""); providers.KindOf(err) != providers.KindRetryable {
			t.Errorf("err = %v, want retryable", err)
		}
	})
}

func TestPublish(t *testing.T) {
	p, fake := setup(t, time.Now())
	account := providers.Account{PlatformUserID: "urn:li:person:" + fake.Sub, AccessToken: fake.IssueAccessToken()}
	text := `Launch day (finally)! #go @team [docs] <3 a_b *c* ~d~ {x|y} back\slash`
	got, err := p.Publish(context.Background(), account, providers.Payload{Text: text})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	posts := fake.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts on LinkedIn, want 1", len(posts))
	}
	if got.PlatformPostID != posts[0].URN || got.URL != "https://www.linkedin.com/feed/update/"+posts[0].URN {
		t.Errorf("published = %+v, LinkedIn has %s", got, posts[0].URN)
	}
	// Every reserved character was escaped: LinkedIn shows the whole text.
	if r := posts[0].Rendered(); r != text {
		t.Errorf("LinkedIn renders %q, want %q", r, text)
	}
	if posts[0].Visibility != "PUBLIC" || posts[0].Author != account.PlatformUserID {
		t.Errorf("post = %+v", posts[0])
	}
	for _, r := range fake.Requests() {
		if r.URL.Path == "/rest/posts" && (r.Header.Get("LinkedIn-Version") != "202610" || r.Header.Get("X-Restli-Protocol-Version") != "2.0.0") {
			t.Errorf("headers = %v", r.Header)
		}
	}
}

// TestLimitIsOfTheUnescapedText: LinkedIn's 3,000 characters are of the
// text a reader sees. 1,600 reserved characters escape to 3,200: the
// provider's check lets them through and the network takes them; one over
// 3,000 is refused before sending.
func TestLimitIsOfTheUnescapedText(t *testing.T) {
	p, fake := setup(t, time.Now())
	account := providers.Account{PlatformUserID: "urn:li:person:" + fake.Sub, AccessToken: fake.IssueAccessToken()}
	if _, err := p.Publish(context.Background(), account, providers.Payload{Text: strings.Repeat("(", 1600)}); err != nil {
		t.Fatalf("1,600 reserved characters: %v", err)
	}
	_, err := p.Publish(context.Background(), account, providers.Payload{Text: strings.Repeat("(", 3001)})
	if providers.KindOf(err) != providers.KindInvalidContent || len(fake.Posts()) != 1 {
		t.Fatalf("3,001 reserved characters: %v, %d posts; want refused before sending", err, len(fake.Posts()))
	}
}

func TestPublishErrors(t *testing.T) {
	now := time.Date(2026, 11, 27, 21, 30, 0, 0, time.UTC)
	tests := []struct {
		name      string
		prepare   func(fake *linkedinfake.Server, token string) (providers.Account, providers.Payload)
		kind      providers.Kind
		code      string
		retry     time.Duration
		wantPosts int
	}{
		{
			name: "expired token",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				f.ExpireAccessToken(tok)
				return acct(f, tok), providers.Payload{Text: "hi"}
			},
			kind: providers.KindAuth, code: "EXPIRED_ACCESS_TOKEN",
		},
		{
			name: "revoked token",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				f.RevokeAccessToken(tok)
				return acct(f, tok), providers.Payload{Text: "hi"}
			},
			kind: providers.KindAuth, code: "REVOKED_ACCESS_TOKEN",
		},
		{
			name: "garbage token",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				return acct(f, "garbage"), providers.Payload{Text: "hi"}
			},
			kind: providers.KindAuth, code: "INVALID_ACCESS_TOKEN",
		},
		{
			name: "not the token's member",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				return providers.Account{PlatformUserID: "urn:li:person:someone-else", AccessToken: tok}, providers.Payload{Text: "hi"}
			},
			kind: providers.KindAuth, code: "ACCESS_DENIED",
		},
		{
			name: "DAY limit waits until midnight UTC",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				f.Configure(func(s *linkedinfake.Server) { s.PostStatus, s.PostFailures = 429, 1 })
				return acct(f, tok), providers.Payload{Text: "hi"}
			},
			kind: providers.KindRateLimited, code: "TOO_MANY_REQUESTS", retry: 2*time.Hour + 30*time.Minute,
		},
		{
			name: "500",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				f.Configure(func(s *linkedinfake.Server) { s.PostStatus, s.PostFailures = 500, 1 })
				return acct(f, tok), providers.Payload{Text: "hi"}
			},
			kind: providers.KindRetryable, code: "HTTP_500",
		},
		{
			name: "503",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				f.Configure(func(s *linkedinfake.Server) { s.PostStatus, s.PostFailures = 503, 1 })
				return acct(f, tok), providers.Payload{Text: "hi"}
			},
			kind: providers.KindRetryable, code: "HTTP_503",
		},
		{
			name: "504 after creating the post",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				f.Configure(func(s *linkedinfake.Server) { s.CreateThenFail = true })
				return acct(f, tok), providers.Payload{Text: "hi"}
			},
			kind: providers.KindRetryable, code: "HTTP_504", wantPosts: 1,
		},
		{
			name: "too long, checked before sending",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				return acct(f, tok), providers.Payload{Text: strings.Repeat("é", 3001)}
			},
			kind: providers.KindInvalidContent, code: "TEXT_TOO_LONG",
		},
		{
			name: "emoji count double",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				return acct(f, tok), providers.Payload{Text: strings.Repeat("🚀", 1501)}
			},
			kind: providers.KindInvalidContent, code: "TEXT_TOO_LONG",
		},
		{
			name: "blank",
			prepare: func(f *linkedinfake.Server, tok string) (providers.Account, providers.Payload) {
				return acct(f, tok), providers.Payload{Text: "  \n "}
			},
			kind: providers.KindInvalidContent, code: "EMPTY_TEXT",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, fake := setup(t, now)
			tok := fake.IssueAccessToken()
			a, pl := tt.prepare(fake, tok)
			_, err := p.Publish(context.Background(), a, pl)
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *providers.Error", err)
			}
			if pe.Kind != tt.kind || pe.Code != tt.code || pe.RetryAfter != tt.retry {
				t.Errorf("got %s %s retry %v; want %s %s retry %v (%s)", pe.Kind, pe.Code, pe.RetryAfter, tt.kind, tt.code, tt.retry, pe.Message)
			}
			if strings.Contains(pe.Error(), tok) {
				t.Error("the error holds the access token")
			}
			if n := len(fake.Posts()); n != tt.wantPosts {
				t.Errorf("%d posts on LinkedIn, want %d", n, tt.wantPosts)
			}
		})
	}
}

func acct(f *linkedinfake.Server, tok string) providers.Account {
	return providers.Account{PlatformUserID: "urn:li:person:" + f.Sub, AccessToken: tok}
}

// A retry after an answer that was lost finds LinkedIn's duplicate, which
// names the post the first attempt created.
func TestDuplicateAfterLostAnswer(t *testing.T) {
	p, fake := setup(t, time.Now())
	tok := fake.IssueAccessToken()
	fake.Configure(func(s *linkedinfake.Server) { s.CreateThenFail = true })
	a := acct(fake, tok)
	_, err := p.Publish(context.Background(), a, providers.Payload{Text: "once (only)"})
	if providers.KindOf(err) != providers.KindRetryable {
		t.Fatalf("first attempt: %v, want retryable", err)
	}
	_, err = p.Publish(context.Background(), a, providers.Payload{Text: "once (only)"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindDuplicate {
		t.Fatalf("retry: %v, want duplicate", err)
	}
	posts := fake.Posts()
	if len(posts) != 1 || pe.ExistingPostID != posts[0].URN {
		t.Errorf("duplicate names %q; LinkedIn has %v", pe.ExistingPostID, posts)
	}
}

func TestVersionErrors(t *testing.T) {
	p, fake := setup(t, time.Now())
	fake.Configure(func(s *linkedinfake.Server) { delete(s.Versions, "202610") })
	_, err := p.Publish(context.Background(), acct(fake, fake.IssueAccessToken()), providers.Payload{Text: "hi"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != "NONEXISTENT_VERSION" || pe.Kind == providers.KindRetryable {
		t.Errorf("retired version: %#v", err)
	}
}

func TestRevoke(t *testing.T) {
	p, fake := setup(t, time.Now())
	tok := fake.IssueAccessToken()
	if err := p.Revoke(context.Background(), providers.Account{}, providers.Tokens{AccessToken: tok}); err != nil {
		t.Fatal(err)
	}
	_, err := p.Publish(context.Background(), acct(fake, tok), providers.Payload{Text: "hi"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != "REVOKED_ACCESS_TOKEN" {
		t.Errorf("after Revoke: %v", err)
	}
}

func TestEscapeLittleText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{`a\b`, `a\\b`},
		{"(x)", `\(x\)`},
		{"#tag @you", `\#tag \@you`},
		{`|{}@[]()<>#\*_~`, `\|\{\}\@\[\]\(\)\<\>\#\\\*\_\~`},
		{"émoji 🚀", "émoji 🚀"},
	}
	for _, tt := range tests {
		if got := linkedin.EscapeLittleText(tt.in); got != tt.want {
			t.Errorf("EscapeLittleText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func mustAuthURL(t *testing.T, p *linkedin.Provider, state, challenge string) string {
	t.Helper()
	u, err := p.AuthURL(context.Background(), "", state, challenge)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
