// Package bluesky publishes to Bluesky (the AT Protocol) per
// contracts/platforms.md §4: an account connects with its handle (or DID)
// and an app password, which make sessions (createSession,
// refreshSession) on the account's PDS; posts are app.bsky.feed.post
// records made by createRecord under a record key derived from the
// publication, so a retry after a lost answer cannot make a second post.
//
// # atproto OAuth
//
// With Config.Connect ConnectOAuth, accounts connect instead through
// atproto OAuth (oauth.go, dpop.go; the atproto spec "OAuth", RFC 9126
// PAR, RFC 7636 PKCE S256, RFC 9449 DPoP), as Bluesky recommends:
//
//   - AuthURL: the user names a handle, a DID or a PDS (?instance=), else
//     the flow starts at the entryway (Config.ResolverURL). Discovery
//     reads the PDS's /.well-known/oauth-protected-resource, then the
//     authorization server's /.well-known/oauth-authorization-server
//     (issuer must match); PAR pushes client_id, redirect_uri, scope,
//     state, the S256 challenge and login_hint with a DPoP proof; the
//     browser goes to the authorization endpoint with client_id and
//     request_uri alone.
//   - Exchange: the callback's iss must be the issuer found again from
//     the state's server (RFC 9207: else the code may be another server's,
//     and goes nowhere); then the code and verifier at its token
//     endpoint, with a DPoP proof by the same key; the answer must be a DPoP token with a refresh token,
//     the atproto scope and a DID as sub, whose document names a PDS
//     whose authorization server is that issuer (else WRONG_ISSUER).
//   - The DPoP key: AuthURL sees only the PKCE challenge and Exchange the
//     verifier, and the provider keeps no state, so the key is derived
//     from the challenge (the S256 of the verifier) and a secret of
//     PostFlow's (HKDF-SHA256, then a P-256 scalar): the challenge alone
//     reaches the authorization server, which must not be able to derive
//     the key. That key then binds the session for good.
//   - Tokens: providers.Account carries an access token only, and a DPoP
//     token is useless without its key, so the AccessToken is an opaque
//     "atoauth1." string holding the token, the key (a private JWK) and
//     the issuer; Credential holds the key and issuer (what Refresh and
//     Revoke are given besides the refresh token). Both are sealed at rest
//     like every token; no other package reads them, and xrpc, Refresh and
//     Revoke tell an OAuth session from an app-password one by this form,
//     so accounts connected either way keep working whatever Connect says.
//   - Nonces: the last DPoP-Nonce of each server is kept in the provider;
//     a use_dpop_nonce answer (400 from the authorization server, 401 with
//     WWW-Authenticate from the PDS) is retried once with the new nonce.
//   - Client: its id is the https URL where the API serves
//     ClientMetadata, or in development atproto's loopback client (client
//     id http://localhost with redirect_uri and scope as parameters, the
//     redirect on http://127.0.0.1), which needs nothing served. Public
//     (token_endpoint_auth_method none) unless Config.OAuthClientKey is
//     set; then confidential (private_key_jwt, RFC 7523): a client
//     assertion signed by a key derived from it (ClientJWKS publishes the
//     public half) goes with PAR, the token exchange, refresh and revoke.
//     Why it matters: @atproto/oauth-provider ends a public client's
//     session two weeks after it began however often it is refreshed
//     (SESSION_LIFETIME, REFRESH_LIFETIME), a confidential one's after 2
//     years (3 months without a refresh). Sessions are bound to the client
//     key (another key's refresh is refused: checked), and to the way the
//     client authenticated ("Client authentication method mismatch"), so
//     a new key, or setting or removing it, makes every account connect
//     again; a key rotation keeping the old key published is not built.
//
// What the reference PDS (@atproto/pds 0.5.35 with @atproto/oauth-provider)
// answered is in realpds_oauth_test.go, which drives the whole flow, for
// the loopback client and for a confidential one whose metadata and keys
// a test https server serves: the authorization page and consent are
// driven without a browser through the page's own API
// (/@atproto/oauth-provider/~api/sign-in and /consent, with the fetch
// metadata headers, Origin, Referer and CSRF cookie and header a browser
// would send).
package bluesky

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
)

// ID is the provider's id in routes and storage.
const ID = "bluesky"

// Text limits of app.bsky.feed.post's text (lexicon: maxGraphemes 300,
// maxLength 3000 UTF-8 bytes).
const (
	MaxGraphemes = 300
	MaxBytes     = 3000
)

// PostCollection is the collection posts are records of.
const PostCollection = "app.bsky.feed.post"

// Config says where Bluesky's shared services are. Tests and self-hosted
// networks point them elsewhere.
type Config struct {
	// ResolverURL answers com.atproto.identity.resolveHandle for any
	// handle: https://bsky.social (the entryway), or any PDS or AppView.
	ResolverURL string
	// PLCURL is the did:plc directory: https://plc.directory.
	PLCURL string
	// AppURL is the web app posts are linked to: https://bsky.app.
	AppURL string
	// Client calls the configured services above (fixed addresses).
	Client *http.Client
	// Servers guards every call to an address a user influences: the PDS
	// named at connect or found in a DID document, a did:web host.
	Servers netguard.Policy
	// ServerClient is the client for those calls; by default
	// Servers.Client(30 s).
	ServerClient *http.Client
	// Now is the clock, for token expiry and rate-limit waits.
	Now func() time.Time

	// Connect is how accounts connect: ConnectAppPassword ("" too) or
	// ConnectOAuth. Accounts connected either way keep working whatever
	// it says later: their tokens say which kind of session they hold.
	Connect string
	// RedirectURI is the OAuth callback (ConnectOAuth only).
	RedirectURI string
	// OAuthClientID is the https URL PostFlow serves ClientMetadata at;
	// "" for the atproto loopback client (development: RedirectURI must
	// then be http://127.0.0.1 or http://[::1]).
	OAuthClientID string
	// OAuthScope is the scope asked for; DefaultOAuthScope by default.
	OAuthScope string
	// OAuthSecret (at least 32 bytes) is mixed into each connect's DPoP
	// key (see dpopKeyFor); ConnectOAuth only.
	OAuthSecret []byte
	// OAuthClientKey, if set (at least 32 bytes; needs OAuthClientID),
	// makes PostFlow a confidential client: the client key is derived from
	// it (ClientJWKS publishes its public half) and authenticates every
	// call to the authorization server. Sessions are bound to it: a new
	// one ends them at their next refresh.
	OAuthClientKey []byte
}

// Provider is the Bluesky provider.
type Provider struct {
	cfg Config
	// nonces are the DPoP nonces servers gave last (atproto OAuth).
	nonces nonces
	// clientKey is the confidential client's key; nil for a public client.
	clientKey *dpopKey
}

// New checks cfg and returns the provider.
func New(cfg Config) (*Provider, error) {
	for _, u := range []struct{ name, value string }{
		{"resolver URL", cfg.ResolverURL}, {"PLC URL", cfg.PLCURL}, {"app URL", cfg.AppURL},
	} {
		pu, err := url.Parse(u.value)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return nil, fmt.Errorf("bluesky: the %s must be an http(s) URL, got %q", u.name, u.value)
		}
	}
	cfg.ResolverURL = strings.TrimRight(cfg.ResolverURL, "/")
	cfg.PLCURL = strings.TrimRight(cfg.PLCURL, "/")
	cfg.AppURL = strings.TrimRight(cfg.AppURL, "/")
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.ServerClient == nil {
		cfg.ServerClient = cfg.Servers.Client(30 * time.Second)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch cfg.Connect {
	case "", ConnectAppPassword:
		cfg.Connect = ConnectAppPassword
	case ConnectOAuth:
		if cfg.OAuthScope == "" {
			cfg.OAuthScope = DefaultOAuthScope
		}
		if !hasScope(cfg.OAuthScope, "atproto") {
			return nil, fmt.Errorf("bluesky: the OAuth scope must hold atproto, got %q", cfg.OAuthScope)
		}
		if len(cfg.OAuthSecret) < 32 {
			return nil, errors.New("bluesky: OAuth needs a secret of at least 32 bytes")
		}
		ru, err := url.Parse(cfg.RedirectURI)
		if err != nil || ru.Host == "" || (ru.Scheme != "https" && ru.Scheme != "http") {
			return nil, errors.New("bluesky: OAuth needs an absolute http(s) redirect URI")
		}
		if cfg.OAuthClientID == "" && (ru.Scheme != "http" || (ru.Hostname() != "127.0.0.1" && ru.Hostname() != "::1")) {
			return nil, errors.New("bluesky: without an OAuth client id (the URL of PostFlow's client metadata) the redirect URI must be http://127.0.0.1 or http://[::1] (the atproto loopback client)")
		}
		if cu, err := url.Parse(cfg.OAuthClientID); cfg.OAuthClientID != "" && (err != nil || cu.Scheme != "https" || cu.Host == "") {
			return nil, errors.New("bluesky: the OAuth client id must be the https URL of PostFlow's client metadata")
		}
		if cfg.OAuthClientKey != nil && cfg.OAuthClientID == "" {
			return nil, errors.New("bluesky: a confidential OAuth client needs a client id (the loopback client is public)")
		}
	default:
		return nil, fmt.Errorf("bluesky: connect must be %q or %q, got %q", ConnectAppPassword, ConnectOAuth, cfg.Connect)
	}
	p := &Provider{cfg: cfg}
	if cfg.Connect == ConnectOAuth && cfg.OAuthClientKey != nil {
		k, err := clientKey(cfg.OAuthClientKey)
		if err != nil {
			return nil, err
		}
		p.clientKey = k
	}
	return p, nil
}

func (p *Provider) ID() string   { return ID }
func (p *Provider) Name() string { return "Bluesky" }

// Rules: 300 graphemes and 3,000 bytes (contracts §4.3); links, mentions
// and hashtags are facets the provider computes. The lever is the record
// key (RecordKey): a repeat cannot make a second record, and the record is
// read back at its key, forever. Sessions are refreshed, or made anew from
// the app password. Revoke ends the session (deleteSession, with the
// refresh JWT); the app password itself stays valid until the user revokes
// it in Bluesky's settings, which an app password's session cannot do.
func (p *Provider) Rules() providers.Rules {
	return providers.Rules{
		Text: providers.TextRules{
			Limits: []providers.TextLimit{providers.Graphemes(MaxGraphemes), providers.Bytes(MaxBytes)},
			Links:  "facets", Mentions: "facets", Hashtags: "facets",
		},
		ExactlyOnce:   providers.ExactlyOnce{Lever: "record-key", Forever: true, ReadBack: true},
		RefreshTokens: true,
		Revoke:        true,
		Delete:        true,
		Media: providers.MediaRules{
			MaxImages: MaxImages, Types: []string{"image/jpeg", "image/png", "image/webp", "image/gif"},
			MaxBytes: MaxImageBytes, Downscale: true,
		},
	}
}

// TextLimits are the lexicon's, the same for every account.
func (p *Provider) TextLimits(context.Context, providers.Account) ([]providers.TextLimit, error) {
	return p.Rules().Text.Limits, nil
}

// Connect: an identifier and an app password (login), or with
// Config.Connect ConnectOAuth atproto OAuth (oauthConnect). Refresh,
// Revoke and xrpc's authorization follow the kind of session an account
// holds, so nothing outside this package tells them apart.
func (p *Provider) Connect() providers.Connect {
	if p.cfg.Connect == ConnectOAuth {
		return providers.Connect{OAuth: &oauthConnect{p: p}}
	}
	return providers.Connect{Password: &login{p: p}}
}

// Revoke ends the account's session at its PDS (deleteSession with the
// refresh JWT); without a refresh JWT there is no session to end.
//
// An atproto OAuth session is revoked at its authorization server (its
// refresh token, RFC 7009), which ends it.
func (p *Provider) Revoke(ctx context.Context, a providers.Account, t providers.Tokens) error {
	for _, s := range []string{t.Credential, t.AccessToken} {
		if sess, key, ok := decodeSession(s); ok {
			return p.revokeOAuth(ctx, sess, key, t.RefreshToken)
		}
	}
	if t.RefreshToken == "" {
		return nil
	}
	base, err := p.pds(a)
	if err != nil {
		return err
	}
	return p.xrpc(ctx, p.cfg.ServerClient, base, "com.atproto.server.deleteSession", t.RefreshToken, nil, noInput, nil)
}

// PostURL is the post's page on the web app, from its at:// URI
// (at://{did}/app.bsky.feed.post/{rkey}): {AppURL}/profile/{did}/post/{rkey}.
// The DID, not the handle, so the link outlives a change of handle.
// "" for an id that is no such URI.
func (p *Provider) PostURL(_ providers.Account, uri string) string {
	did, rkey, ok := parsePostURI(uri)
	if !ok {
		return ""
	}
	return p.cfg.AppURL + "/profile/" + did + "/post/" + rkey
}

// parsePostURI splits at://{did}/app.bsky.feed.post/{rkey}.
func parsePostURI(uri string) (did, rkey string, ok bool) {
	rest, ok := strings.CutPrefix(uri, "at://")
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] != PostCollection || !strings.HasPrefix(parts[0], "did:") || parts[2] == "" {
		return "", "", false
	}
	return parts[0], parts[2], true
}

// pds is the base URL of the account's PDS, checked again (it was stored
// from a connect under the same policy, and policies may tighten).
func (p *Provider) pds(a providers.Account) (string, error) {
	u, err := p.cfg.Servers.ServerURL(a.Server)
	if err != nil {
		return "", fmt.Errorf("%w: %w", providers.ErrBadServer, err)
	}
	return u.String(), nil
}

// connectErr makes a connect's failure to reach a server a user named
// (at connect, in an identifier, or in a DID document) clear: a name that
// does not resolve, or a dial refused, is providers.ErrBadServer ("could
// not resolve {host}", "{host} refused the connection"); an address
// netguard refuses, ErrBadServer without the address it resolved to;
// any other network failure a *providers.Error (KindRetryable). The
// messages name the host alone: never the resolver's address nor the
// underlying error's text. Failures to reach the configured services
// (resolver, PLC directory) stay as they are: an outage of PostFlow's.
// Only connects go through it: after one, a server that does not answer
// is an outage, not a wrong name.
func (p *Provider) connectErr(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	var de *net.DNSError
	host, configured := "", false
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			host, configured = u.Hostname(), p.configured(u)
		}
	}
	if host == "" && errors.As(err, &de) {
		host = de.Name // a Check: of a host a user named
	}
	if host == "" || configured {
		return err
	}
	switch {
	case errors.Is(err, netguard.ErrForbidden):
		if ue == nil && de == nil {
			return err
		}
		return fmt.Errorf("%w: %s is not a public server", netguard.ErrForbidden, host)
	case errors.Is(err, providers.ErrBadServer):
		return err
	case errors.As(err, &de):
		return fmt.Errorf("%w: could not resolve %s", providers.ErrBadServer, host)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %s refused the connection", providers.ErrBadServer, host)
	}
	if pe := (*providers.Error)(nil); errors.As(err, &pe) {
		return err
	}
	return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "NETWORK", Message: "could not reach " + host, Err: err}
}

// configured: u is on one of the configured services (scheme, host and
// port).
func (p *Provider) configured(u *url.URL) bool {
	for _, s := range []string{p.cfg.ResolverURL, p.cfg.PLCURL} {
		if c, err := url.Parse(s); err == nil && sameServer(c.Scheme+"://"+c.Host, u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}

// checkServer is Servers.Check, whose refusal names the host alone, not
// the address it resolved to.
func (p *Provider) checkServer(ctx context.Context, host string) error {
	err := p.cfg.Servers.Check(ctx, host)
	if errors.Is(err, netguard.ErrForbidden) {
		return fmt.Errorf("%w: %s is not a public server", netguard.ErrForbidden, host)
	}
	return err
}

// errBadServer wraps a netguard refusal met while connecting.
func errBadServer(err error) error {
	if errors.Is(err, netguard.ErrForbidden) {
		return fmt.Errorf("%w: %w", providers.ErrBadServer, err)
	}
	return err
}
