package bluesky_test

// atproto OAuth against the real PDS (@atproto/pds 0.5.35, whose
// authorization server is @atproto/oauth-provider): the whole flow, the
// browser's part driven through the authorization page's own API. What
// the PDS answered (checked here):
//   - discovery: /.well-known/oauth-protected-resource names the PDS
//     itself (http://localhost:PORT, its PublicURL) as the authorization
//     server; PAR is required, DPoP ES256 and PKCE S256 offered.
//   - the loopback client (client_id http://localhost?redirect_uri=...&
//     scope=...) is taken without any document; its redirect URI must be
//     http://127.0.0.1 (any port).
//   - PAR, token and refresh answer 400 use_dpop_nonce with a DPoP-Nonce
//     to a proof without the nonce; the PDS, as a resource server, answers
//     401 WWW-Authenticate: DPoP error="use_dpop_nonce".
//   - the authorization page (GET /oauth/authorize) wants the headers of
//     a browser navigation (Sec-Fetch-Mode navigate, Sec-Fetch-Dest
//     document) and sets the device cookies; its API
//     (/@atproto/oauth-provider/~api/sign-in, then /consent) wants
//     Sec-Fetch-Mode and -Site same-origin, the issuer's Origin, the
//     authorize URL as Referer (it names the request_uri) and a CSRF token
//     as both the csrf-token cookie and the X-CSRF-Token header (24 hex
//     characters the client may pick). sign-in without "remember" answers
//     an ephemeral token, which /consent takes as a Bearer; /consent
//     answers {"url"}: /oauth/authorize/redirect, which (as a same-origin
//     navigation from the authorize page) answers 303 to the redirect URI
//     with code, state and iss.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
)

// loopbackRedirect is the callback of the tests' loopback client: the
// flow never follows it, it only reads its query.
const loopbackRedirect = "http://127.0.0.1:9/callback/bluesky"

func oauthProvider(t *testing.T, pds *realpeers.PDS) *bluesky.Provider {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	p, err := bluesky.New(bluesky.Config{
		ResolverURL: pds.URL, PLCURL: pds.PLCURL, AppURL: "https://bsky.app",
		Servers: netguard.Policy{AllowLocal: true},
		Connect: bluesky.ConnectOAuth, RedirectURI: loopbackRedirect, OAuthSecret: secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// browser is the user's browser on the authorization server's pages:
// cookies by name (the PDS's are Secure, which a cookie jar would keep
// from http://localhost), no redirects followed.
type browser struct {
	t       *testing.T
	client  *http.Client
	cookies map[string]string
}

func newBrowser(t *testing.T) *browser {
	return &browser{t: t, cookies: map[string]string{}, client: &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(req *http.Request) (*http.Response, []byte) {
	b.t.Helper()
	var cs []string
	for k, v := range b.cookies {
		cs = append(cs, k+"="+v)
	}
	if len(cs) > 0 {
		req.Header.Set("Cookie", strings.Join(cs, "; "))
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, c := range res.Cookies() {
		b.cookies[c.Name] = c.Value
	}
	return res, body
}

// approve signs in as acct on the authorization page at authURL and
// consents, as a person in a browser would; it returns the query the
// authorization server sends the browser back with.
func (b *browser) approve(authURL string, acct realpeers.PDSAccount) url.Values {
	t := b.t
	t.Helper()
	au, _ := url.Parse(authURL)
	origin := au.Scheme + "://" + au.Host

	req, _ := http.NewRequest(http.MethodGet, authURL, nil)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Accept", "text/html")
	res, body := b.do(req)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("authorize page: %s %.300s", res.Status, body)
	}

	csrf := make([]byte, 12)
	_, _ = rand.Read(csrf)
	b.cookies["csrf-token"] = hex.EncodeToString(csrf)
	api := func(endpoint, bearer string, in any, out any) {
		t.Helper()
		js, _ := json.Marshal(in)
		req, _ := http.NewRequest(http.MethodPost, origin+"/@atproto/oauth-provider/~api/"+endpoint, strings.NewReader(string(js)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Mode", "same-origin")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Origin", origin)
		req.Header.Set("Referer", authURL)
		req.Header.Set("X-CSRF-Token", b.cookies["csrf-token"])
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, body := b.do(req)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %.300s", endpoint, res.Status, body)
		}
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s: %v", endpoint, err)
		}
	}
	var signedIn struct {
		EphemeralToken string `json:"ephemeralToken"`
	}
	api("sign-in", "", map[string]any{"locale": "en", "username": acct.Handle, "password": acct.Password, "remember": false}, &signedIn)
	var consented struct {
		URL string `json:"url"`
	}
	api("consent", signedIn.EphemeralToken, map[string]any{"did": acct.DID}, &consented)

	req, _ = http.NewRequest(http.MethodGet, consented.URL, nil)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Referer", authURL)
	res, body = b.do(req)
	loc, err := res.Location()
	if err != nil {
		t.Fatalf("authorize redirect: %s %.300s", res.Status, body)
	}
	if !strings.HasPrefix(loc.String(), loopbackRedirect+"?") {
		t.Fatalf("authorize redirect to %s, not the redirect URI", loc.Redacted())
	}
	return loc.Query()
}

// connectOAuth runs a connect to server as acct through p's OAuth, as
// connections does, and returns the connection.
func connectOAuth(t *testing.T, pds *realpeers.PDS, p *bluesky.Provider, server string, acct realpeers.PDSAccount) *providers.Connection {
	t.Helper()
	ctx := context.Background()
	o := p.Connect().OAuth
	if o == nil || !o.PKCE() || o.Server() != providers.ServerOptional {
		t.Fatalf("Connect() with oauth = %+v, want an OAuth with PKCE and an optional server", p.Connect())
	}
	verifier := oauth2.GenerateVerifier()
	state := fmt.Sprintf("state-%d", time.Now().UnixNano())
	authURL, err := o.AuthURL(ctx, server, state, oauth2.S256ChallengeFromVerifier(verifier))
	if err != nil {
		t.Fatalf("AuthURL(%q): %v", server, err)
	}
	au, _ := url.Parse(authURL)
	if au.Path != "/oauth/authorize" || !strings.HasPrefix(au.Query().Get("request_uri"), "urn:ietf:params:oauth:request_uri:") || au.Query().Has("code_challenge") {
		t.Fatalf("AuthURL = %s, want the authorize endpoint with a request_uri alone", authURL)
	}
	q := newBrowser(t).approve(authURL, acct)
	if q.Get("state") != state || q.Get("iss") != pds.PublicURL || q.Get("code") == "" {
		t.Fatalf("callback: state %q iss %q code set %v; want %q, %q, a code", q.Get("state"), q.Get("iss"), q.Get("code") != "", state, pds.PublicURL)
	}
	conn, err := o.Exchange(ctx, server, q.Get("code"), verifier)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return conn
}

func TestOAuthRealPDS(t *testing.T) {
	pds := realpeers.StartPDS(t)
	p := oauthProvider(t, pds)
	ctx := context.Background()

	tests := []struct {
		name   string
		server func(a realpeers.PDSAccount) string
	}{
		{"a handle", func(a realpeers.PDSAccount) string { return a.Handle }},
		{"a DID", func(a realpeers.PDSAccount) string { return a.DID }},
		{"the PDS", func(realpeers.PDSAccount) string { return pds.URL }},
		{"no server: the entryway", func(realpeers.PDSAccount) string { return "" }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := pds.CreateAccount(t, fmt.Sprintf("oauth%d.test", i))
			conn := connectOAuth(t, pds, p, tt.server(acct), acct)
			prof := conn.Profile
			if prof.PlatformUserID != acct.DID || prof.Handle != acct.Handle || prof.Server != pds.PublicURL {
				t.Fatalf("profile = %+v, want %s %s at %s", prof, acct.DID, acct.Handle, pds.PublicURL)
			}
			tok := conn.Tokens
			if tok.RefreshToken == "" || tok.Credential == "" || tok.ExpiresAt.Before(time.Now()) {
				t.Fatalf("tokens: refresh set %v, credential set %v, expires %s", tok.RefreshToken != "", tok.Credential != "", tok.ExpiresAt)
			}
			if strings.Contains(tok.Credential, tok.RefreshToken) {
				t.Fatal("the credential holds the refresh token")
			}

			a := providers.Account{PlatformUserID: prof.PlatformUserID, Handle: prof.Handle, Server: prof.Server, AccessToken: tok.AccessToken}
			text := "posted through atproto OAuth " + tt.name
			pub, err := p.Publish(ctx, a, providers.Payload{Text: text, IdempotencyKey: "oauth-" + acct.DID, Created: time.Now()})
			if err != nil {
				t.Fatalf("Publish with a DPoP-bound token: %v", err)
			}
			if !strings.HasPrefix(pub.PlatformPostID, "at://"+acct.DID+"/") || holds(t, pds, acct.DID, text) != 1 {
				t.Fatalf("published %+v; the repo holds %d", pub, holds(t, pds, acct.DID, text))
			}

			// Refresh gets what connections keeps for it: the refresh token
			// and the credential.
			fresh, err := p.Refresh(ctx, a, providers.Tokens{RefreshToken: tok.RefreshToken, Credential: tok.Credential})
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
				t.Fatal("Refresh made no new tokens")
			}
			a.AccessToken = fresh.AccessToken
			text2 := text + ", refreshed"
			if _, err := p.Publish(ctx, a, providers.Payload{Text: text2, IdempotencyKey: "oauth2-" + acct.DID, Created: time.Now()}); err != nil {
				t.Fatalf("Publish after Refresh: %v", err)
			}
			if holds(t, pds, acct.DID, text2) != 1 {
				t.Fatal("the post after the refresh is not there")
			}
			// The old refresh token is spent.
			_, err = p.Refresh(ctx, a, providers.Tokens{RefreshToken: tok.RefreshToken, Credential: tok.Credential})
			if k := providers.KindOf(err); k != providers.KindAuth {
				t.Fatalf("Refresh with a spent refresh token: %v (kind %v), want KindAuth", err, k)
			}

			if err := p.Revoke(ctx, a, *fresh); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			// The PDS answers a revoked (or replaced) DPoP token 401
			// invalid_token: a session to refresh, whose refresh then fails.
			for _, access := range []string{fresh.AccessToken, tok.AccessToken} {
				a.AccessToken = access
				_, err = p.Publish(ctx, a, providers.Payload{Text: text + ", revoked", IdempotencyKey: "oauth3-" + acct.DID, Created: time.Now()})
				if k := providers.KindOf(err); k != providers.KindSessionExpired {
					t.Fatalf("Publish with a revoked token: %v (kind %v), want KindSessionExpired", err, k)
				}
			}
			_, err = p.Refresh(ctx, a, providers.Tokens{RefreshToken: fresh.RefreshToken, Credential: fresh.Credential})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != providers.KindAuth {
				t.Fatalf("Refresh after Revoke: %v, want KindAuth", err)
			}
		})
	}
}
