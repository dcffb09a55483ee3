package bluesky

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
)

// How an account connects (Config.Connect).
const (
	// ConnectAppPassword: a handle and an app password (login). The
	// default: it needs nothing registered or served, and works with any
	// PDS, including ones without OAuth.
	ConnectAppPassword = "app-password"
	// ConnectOAuth: atproto OAuth in the browser (oauthConnect), which
	// Bluesky recommends and which never shows PostFlow a password.
	ConnectOAuth = "oauth"
)

// DefaultOAuthScope asks for the atproto identity and the right to write
// records: "transition:generic" is what app passwords grant; granular
// repo scopes are not yet on every PDS.
const DefaultOAuthScope = "atproto transition:generic"

// oauthConnect is atproto OAuth (the atproto spec "OAuth"; RFC 9126 PAR,
// RFC 7636 PKCE S256, RFC 9449 DPoP) as a providers.OAuth. Its client_id
// is the URL of PostFlow's client metadata document (ClientMetadata), or
// in development the spec's loopback client, which needs no document.
// With Config.OAuthClientKey PostFlow is a confidential client
// (private_key_jwt, RFC 7523), whose sessions Bluesky keeps far longer;
// else a public one (token_endpoint_auth_method "none").
//
// The DPoP key of a connect is derived (dpopKeyFor) from the PKCE
// challenge and a secret of PostFlow's: AuthURL sees only the challenge,
// Exchange the verifier (whose S256 is the challenge), and the provider
// keeps no state between them. The key then binds the session: it is
// sealed with the tokens (see oauthTokens).
type oauthConnect struct{ p *Provider }

// PKCE: required by atproto OAuth.
func (o *oauthConnect) PKCE() bool { return true }

// Server: optional. The user may name a handle, a DID or a PDS (or an
// entryway); without one the flow starts at Config.ResolverURL (the
// entryway, https://bsky.social) and the user picks the account there.
func (o *oauthConnect) Server() providers.ServerChoice { return providers.ServerOptional }

func (o *oauthConnect) RedirectURI() string { return o.p.cfg.RedirectURI }

// clientID is Config.OAuthClientID, else the loopback client of the
// atproto spec ("Localhost Client Development"): http://localhost with
// the redirect URI and scope as parameters, which an authorization server
// takes without fetching anything.
func (p *Provider) clientID() string {
	if p.cfg.OAuthClientID != "" {
		return p.cfg.OAuthClientID
	}
	q := url.Values{"redirect_uri": {p.cfg.RedirectURI}, "scope": {p.cfg.OAuthScope}}
	return "http://localhost?" + q.Encode()
}

// ClientMetadata is PostFlow's client metadata document (atproto spec
// "OAuth", "Client ID Metadata Document"), to be served as JSON at
// clientID, an https URL: a web client with DPoP-bound tokens, the one
// redirect URI and the scope. With jwksURI "" it is a public client
// ("token_endpoint_auth_method" none); else a confidential one
// (private_key_jwt, ES256) whose keys (ClientJWKS) are served at jwksURI.
func ClientMetadata(clientID, redirectURI, scope, jwksURI string) map[string]any {
	md := map[string]any{
		"client_id":                  clientID,
		"client_name":                "PostFlow",
		"application_type":           "web",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      scope,
		"redirect_uris":              []string{redirectURI},
		"token_endpoint_auth_method": "none",
		"dpop_bound_access_tokens":   true,
	}
	if jwksURI != "" {
		md["token_endpoint_auth_method"] = "private_key_jwt"
		md["token_endpoint_auth_signing_alg"] = string(jose.ES256)
		md["jwks_uri"] = jwksURI
	}
	return md
}

// clientKeyInfo separates the client key's derivation from others.
const clientKeyInfo = "postflow bluesky atproto-oauth client key v1"

// clientKey is the confidential client's P-256 key, derived from secret
// (Config.OAuthClientKey, 32 bytes) by p256FromSecret; its kid is its RFC
// 7638 thumbprint.
func clientKey(secret []byte) (*dpopKey, error) {
	if len(secret) < 32 {
		return nil, errors.New("bluesky: the OAuth client key needs at least 32 bytes")
	}
	return p256FromSecret(secret, clientKeyInfo)
}

// ClientJWKS is the JWK set (RFC 7517 §5) to serve at the jwks_uri of
// ClientMetadata: the public half of the client key derived from secret
// (Config.OAuthClientKey), with kid, alg ES256 and use sig. The error
// never quotes the secret.
func ClientJWKS(secret []byte) (map[string]any, error) {
	k, err := clientKey(secret)
	if err != nil {
		return nil, err
	}
	pub := jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.thumbprint(), Algorithm: string(jose.ES256), Use: "sig"}
	b, err := json.Marshal(pub)
	if err != nil {
		return nil, fmt.Errorf("bluesky: encode the client JWK: %w", err)
	}
	var jwk map[string]any
	if err := json.Unmarshal(b, &jwk); err != nil {
		return nil, fmt.Errorf("bluesky: encode the client JWK: %w", err)
	}
	return map[string]any{"keys": []any{jwk}}, nil
}

// clientAssertion is the confidential client's authentication at issuer
// (RFC 7523 §2.2, §3; atproto spec "OAuth", confidential clients): a JWT
// signed by the client key (header alg ES256, kid) with iss and sub the
// client id, aud the issuer, a fresh jti, iat now and exp a minute later.
func (p *Provider) clientAssertion(issuer string) (string, error) {
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	now := p.cfg.Now()
	claims, err := json.Marshal(map[string]any{
		"iss": p.clientID(), "sub": p.clientID(), "aud": issuer,
		"jti": base64.RawURLEncoding.EncodeToString(jti), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("bluesky: client assertion: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: p.clientKey.priv, KeyID: p.clientKey.thumbprint()}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("bluesky: client assertion: %w", err)
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("bluesky: client assertion: %w", err)
	}
	return jws.CompactSerialize()
}

// authServer is what PostFlow reads of an authorization server's metadata
// (RFC 8414, atproto spec "OAuth": authorization server metadata).
type authServer struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	PAREndpoint           string `json:"pushed_authorization_request_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
}

// target is where a connect starts: the authorization server, and the
// account's handle or DID when the user named one (login_hint).
type target struct {
	as   *authServer
	hint string
}

// dpopKeyFor is the DPoP key of the connect whose PKCE challenge is
// challenge: HKDF-SHA256 with the provider's secret as input key and the
// challenge as salt. Why the secret: the challenge alone reaches the
// authorization server in PAR, which could then derive the key.
func (p *Provider) dpopKeyFor(challenge string) (*dpopKey, error) {
	if len(p.cfg.OAuthSecret) < 32 {
		return nil, errors.New("bluesky: atproto OAuth needs a secret of at least 32 bytes")
	}
	if challenge == "" {
		return nil, errors.New("bluesky: atproto OAuth needs a PKCE challenge")
	}
	seed, err := hkdf.Key(sha256.New, p.cfg.OAuthSecret, []byte(challenge), dpopKeyInfo, 64)
	if err != nil {
		return nil, fmt.Errorf("bluesky: derive DPoP key: %w", err)
	}
	return keyFromVerifier(base64.RawURLEncoding.EncodeToString(seed))
}

// s256 is the PKCE S256 challenge of verifier (RFC 7636 §4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// AuthURL finds the authorization server of server (see resolveTarget),
// pushes the authorization request there (RFC 9126 PAR, with the PKCE
// challenge, state, scope, redirect URI, login_hint and a DPoP proof) and
// returns the authorization endpoint with client_id and request_uri.
// Errors: ErrBadServer for a server PostFlow does not call; *providers.Error
// for what the servers answered (KindAuth: no such account or server).
//
// A server that cannot be reached: see connectErr.
// CheckServer finds the authorization server of server as AuthURL does,
// without pushing a request.
func (o *oauthConnect) CheckServer(ctx context.Context, server string) error {
	if _, err := o.p.resolveTarget(ctx, server); err != nil {
		return o.p.connectErr(err)
	}
	return nil
}

func (o *oauthConnect) AuthURL(ctx context.Context, server, state, challenge string) (string, error) {
	u, err := o.authURL(ctx, server, state, challenge)
	if err != nil {
		return "", o.p.connectErr(err)
	}
	return u, nil
}

func (o *oauthConnect) authURL(ctx context.Context, server, state, challenge string) (string, error) {
	p := o.p
	key, err := p.dpopKeyFor(challenge)
	if err != nil {
		return "", err
	}
	t, err := p.resolveTarget(ctx, server)
	if err != nil {
		return "", err
	}
	form := url.Values{
		"client_id":             {p.clientID()},
		"response_type":         {"code"},
		"redirect_uri":          {p.cfg.RedirectURI},
		"scope":                 {p.cfg.OAuthScope},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	if t.hint != "" {
		form.Set("login_hint", t.hint)
	}
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if err := p.oauthPost(ctx, t.as.Issuer, t.as.PAREndpoint, key, form, &par); err != nil {
		return "", err
	}
	if par.RequestURI == "" {
		return "", &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Message: "PAR answered no request_uri"}
	}
	u, err := url.Parse(t.as.AuthorizationEndpoint)
	if err != nil {
		return "", &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "BAD_AUTH_SERVER", Message: "the authorization endpoint is no URL"}
	}
	u.RawQuery = url.Values{"client_id": {p.clientID()}, "request_uri": {par.RequestURI}}.Encode()
	return u.String(), nil
}

// tokenAnswer is the token endpoint's answer (RFC 6749 §5.1, RFC 9449
// §5, atproto: sub is the account's DID).
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	Sub          string `json:"sub"`
}

// Exchange trades code and verifier for tokens at the authorization
// server of server (found again as AuthURL found it: the state that
// carried server is PostFlow's), with a DPoP proof by the connect's key.
// First the callback's iss must name that server (RFC 9207; atproto
// requires it): else the code, which may be another authorization
// server's, goes nowhere (KindAuth WRONG_ISSUER; MISSING_ISS without
// one). This is what stops a mix-up: a server the user named could have
// sent the browser to sign in at another one, with a request of its own
// carrying PostFlow's state, to receive the code there.
// Then, as the atproto spec requires, it checks the answer's sub: the
// DID's document must name a PDS whose authorization server is the
// issuer that answered (else KindAuth WRONG_ISSUER), and scope must hold
// atproto. The profile's handle is the document's at:// alias when it
// resolves back to the DID (verifiedHandle), its display name the profile
// record's. Tokens: see oauthTokens.
//
// A server that cannot be reached: see connectErr.
func (o *oauthConnect) Exchange(ctx context.Context, server, code, iss, verifier string) (*providers.Connection, error) {
	c, err := o.exchange(ctx, server, code, iss, verifier)
	if err != nil {
		return nil, o.p.connectErr(err)
	}
	return c, nil
}

func (o *oauthConnect) exchange(ctx context.Context, server, code, iss, verifier string) (*providers.Connection, error) {
	p := o.p
	key, err := p.dpopKeyFor(s256(verifier))
	if err != nil {
		return nil, err
	}
	t, err := p.resolveTarget(ctx, server)
	if err != nil {
		return nil, err
	}
	switch {
	case iss == "":
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "MISSING_ISS", Message: "the authorization server's answer does not name it (no iss)"}
	case iss != t.as.Issuer:
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "WRONG_ISSUER", Message: "the answer came from another authorization server than the one the connection started at"}
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {p.cfg.RedirectURI},
		"code_verifier": {verifier},
		"client_id":     {p.clientID()},
	}
	var tok tokenAnswer
	if err := p.oauthPost(ctx, t.as.Issuer, t.as.TokenEndpoint, key, form, &tok); err != nil {
		return nil, err
	}
	if err := checkTokens(&tok); err != nil {
		return nil, err
	}
	doc, err := p.didDocument(ctx, tok.Sub)
	if err != nil {
		return nil, err
	}
	pds, err := p.checkIssuer(ctx, tok.Sub, doc, t.as.Issuer)
	if err != nil {
		return nil, err
	}
	tokens, err := p.oauthTokens(&tok, key, t.as.Issuer)
	if err != nil {
		return nil, err
	}
	handle := p.verifiedHandle(ctx, tok.Sub, doc)
	return &providers.Connection{Tokens: tokens, Profile: providers.Profile{
		PlatformUserID: tok.Sub,
		Handle:         handle,
		DisplayName:    p.displayName(ctx, pds, &session{DID: tok.Sub, Handle: handle}),
		Server:         pds,
	}}, nil
}

// checkTokens checks a token answer's shape: a DPoP-bound access token,
// a refresh token, a DID as sub and the atproto scope.
func checkTokens(tok *tokenAnswer) error {
	switch {
	case tok.AccessToken == "" || tok.RefreshToken == "":
		return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Message: "the token endpoint answered no tokens"}
	case !strings.EqualFold(tok.TokenType, "DPoP"):
		return &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NOT_DPOP", Message: "the token endpoint answered a token that is not DPoP-bound"}
	case !strings.HasPrefix(tok.Sub, "did:"):
		return &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NO_SUB", Message: "the token endpoint answered no account DID"}
	case !hasScope(tok.Scope, "atproto"):
		return &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NO_ATPROTO_SCOPE", Message: "the tokens lack the atproto scope"}
	}
	return nil
}

func hasScope(scopes, want string) bool {
	for s := range strings.FieldsSeq(scopes) {
		if s == want {
			return true
		}
	}
	return false
}

// checkIssuer checks that the PDS of did's document names issuer as its
// authorization server (atproto spec "OAuth": the sub must be verified),
// and returns the PDS's base URL.
func (p *Provider) checkIssuer(ctx context.Context, did string, doc *didDocument, issuer string) (string, error) {
	endpoint := doc.pds(did)
	if endpoint == "" {
		return "", &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NO_PDS", Message: did + " names no PDS in its DID document"}
	}
	u, err := p.cfg.Servers.ServerURL(endpoint)
	if err != nil {
		return "", fmt.Errorf("%w: the PDS of %s: %w", providers.ErrBadServer, did, err)
	}
	pds := u.String()
	as, err := p.protectedResource(ctx, pds)
	if err != nil {
		return "", err
	}
	if as != issuer {
		return "", &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "WRONG_ISSUER", Message: "the account's PDS trusts another authorization server than the one that answered"}
	}
	return pds, nil
}

// verifiedHandle is the handle of did's document if it resolves back to
// did (the atproto spec "Handle": a handle is only valid both ways), else
// "": anyone can write any alias into their DID document. Resolved by the
// configured resolver, as findPDS does; a failure leaves it "".
func (p *Provider) verifiedHandle(ctx context.Context, did string, doc *didDocument) string {
	h := doc.handle()
	if h == "" {
		return ""
	}
	var out struct {
		DID string `json:"did"`
	}
	err := p.xrpc(ctx, p.cfg.Client, p.cfg.ResolverURL, "com.atproto.identity.resolveHandle", "", url.Values{"handle": {strings.ToLower(h)}}, nil, &out)
	if err != nil || out.DID != did {
		return ""
	}
	return h
}

// handle is the document's first at:// alias, "" without one.
func (d *didDocument) handle() string {
	for _, a := range d.AlsoKnownAs {
		if h, ok := strings.CutPrefix(a, "at://"); ok && h != "" {
			return h
		}
	}
	return ""
}

// resolveTarget finds where a connect to server starts:
//   - "": Config.ResolverURL (the entryway) as a resource server or an
//     authorization server;
//   - a DID, or a handle (resolveHandle on the resolver): its PDS, with
//     the handle or DID as login_hint;
//   - else a server's URL or host name: a PDS, or an entryway.
//
// A name with a dot that resolves as a handle is a handle, else a host.
// A server that is none PostFlow may call, or serves no atproto OAuth,
// and a name that is neither a handle nor a server that answers, are
// ErrBadServer (the user named the wrong thing: 400 at the API), not an
// outage.
func (p *Provider) resolveTarget(ctx context.Context, server string) (*target, error) {
	server = strings.TrimPrefix(strings.TrimSpace(server), "@")
	if server == "" {
		as, err := p.authServerOf(ctx, p.cfg.ResolverURL)
		return &target{as: as}, err
	}
	var asHandle error // why server is no handle, if it may be one
	if strings.HasPrefix(server, "did:") || !strings.Contains(server, "://") && !strings.Contains(server, ":") {
		_, pds, err := p.findPDS(ctx, server)
		if err == nil {
			as, err := p.authServerOf(ctx, pds)
			return &target{as: as, hint: server}, err
		}
		if strings.HasPrefix(server, "did:") && providers.KindOf(err) == providers.KindAuth {
			// No such DID (DID_NOT_FOUND, BAD_DID): the user named no
			// account there is, not an outage to try again after.
			return nil, fmt.Errorf("%w: %w", providers.ErrBadServer, err)
		}
		if strings.HasPrefix(server, "did:") || providers.KindOf(err) != providers.KindAuth {
			return nil, err
		}
		asHandle = err
	}
	u, err := p.cfg.Servers.ServerURL(server)
	if err == nil {
		err = p.checkServer(ctx, u.Hostname())
	}
	var as *authServer
	if err == nil {
		as, err = p.authServerOf(ctx, u.String())
	}
	switch {
	case err == nil:
		return &target{as: as}, nil
	case asHandle != nil && !errors.Is(err, netguard.ErrForbidden):
		// Neither a handle nor a server that answers: the handle's error
		// says more to someone who typed a handle.
		return nil, fmt.Errorf("%w: %w", providers.ErrBadServer, asHandle)
	case errors.Is(err, netguard.ErrForbidden), providers.KindOf(err) == providers.KindAuth:
		// Not a server PostFlow may call, or no atproto OAuth server.
		return nil, fmt.Errorf("%w: %w", providers.ErrBadServer, err)
	}
	return nil, err
}

// authServerOf is the authorization server of base: the first of its
// protected resource metadata's authorization_servers (RFC 9728), or base
// itself when it is an authorization server without that document (an
// entryway).
func (p *Provider) authServerOf(ctx context.Context, base string) (*authServer, error) {
	issuer, err := p.protectedResource(ctx, base)
	if err != nil {
		if providers.KindOf(err) != providers.KindAuth {
			return nil, err
		}
		issuer = strings.TrimRight(base, "/")
	}
	return p.authServerMetadata(ctx, issuer)
}

// protectedResource reads base's /.well-known/oauth-protected-resource
// and returns its first authorization server (atproto has one).
func (p *Provider) protectedResource(ctx context.Context, base string) (string, error) {
	var out struct {
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := p.getJSON(ctx, strings.TrimRight(base, "/")+"/.well-known/oauth-protected-resource", &out); err != nil {
		return "", err
	}
	if len(out.AuthorizationServers) == 0 {
		return "", &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NO_AUTH_SERVER", Message: "the server names no authorization server"}
	}
	return out.AuthorizationServers[0], nil
}

// authServerMetadata reads issuer's RFC 8414 metadata and checks what
// atproto requires of it: the same issuer, PAR, and every endpoint a
// server PostFlow may call.
func (p *Provider) authServerMetadata(ctx context.Context, issuer string) (*authServer, error) {
	iu, err := p.cfg.Servers.ServerURL(issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: the authorization server: %w", providers.ErrBadServer, err)
	}
	if err := p.checkServer(ctx, iu.Hostname()); err != nil {
		return nil, errBadServer(err)
	}
	var as authServer
	if err := p.getJSON(ctx, strings.TrimRight(issuer, "/")+"/.well-known/oauth-authorization-server", &as); err != nil {
		return nil, err
	}
	if as.Issuer != issuer {
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "BAD_AUTH_SERVER", Message: "the authorization server's metadata names another issuer"}
	}
	for _, e := range []string{as.AuthorizationEndpoint, as.TokenEndpoint, as.PAREndpoint} {
		if !p.endpointOK(e) {
			return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "BAD_AUTH_SERVER", Message: "the authorization server lacks an endpoint atproto OAuth needs (PAR, authorize, token)"}
		}
	}
	if as.RevocationEndpoint != "" && !p.endpointOK(as.RevocationEndpoint) {
		as.RevocationEndpoint = ""
	}
	return &as, nil
}

// endpointOK: e is an absolute URL on a server PostFlow may call (by
// Config.Servers), without credentials, query or fragment.
func (p *Provider) endpointOK(e string) bool {
	u, err := url.Parse(e)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Host == "" {
		return false
	}
	_, err = p.cfg.Servers.ServerURL(u.Scheme + "://" + u.Host)
	return err == nil
}

// getJSON GETs u through the guarded client into out. A 404 or 410 is
// KindAuth (no such document), other answers as classify says.
func (p *Provider) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("bluesky: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := p.cfg.ServerClient.Do(req)
	if err != nil {
		return errBadServer(networkError("OAuth metadata", err))
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	switch {
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone:
		return &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NO_OAUTH_METADATA", Status: res.StatusCode, Message: "the server serves no OAuth metadata"}
	case res.StatusCode != http.StatusOK:
		return p.classify(res, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "BAD_OAUTH_METADATA", Message: "the server's OAuth metadata is not JSON"}
	}
	return nil
}

// oauthError is an OAuth error answer (RFC 6749 §5.2).
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// oauthPost POSTs form to an endpoint of the authorization server issuer
// with a DPoP proof by key (and, for a confidential client, a client
// assertion for issuer: clientAssertion), retrying once with the nonce of a use_dpop_nonce answer
// (RFC 9449 §8), and decodes a 200 or 201 into out (nil: not read). Errors are
// *providers.Error: invalid_grant, invalid_client, invalid_request,
// access_denied and other 400/401 answers KindAuth (the code, the
// verifier or the refresh token will not do); 429 and 5xx as classify
// says. The message is the server's error code and cleaned description,
// never the form.
func (p *Provider) oauthPost(ctx context.Context, issuer, endpoint string, key *dpopKey, form url.Values, out any) error {
	for attempt := 0; ; attempt++ {
		proof, err := key.proof(http.MethodPost, endpoint, p.nonces.get(endpoint), "", p.cfg.Now())
		if err != nil {
			return err
		}
		if p.clientKey != nil {
			// A fresh assertion each time: its jti may be used once.
			assertion, err := p.clientAssertion(issuer)
			if err != nil {
				return err
			}
			form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			form.Set("client_assertion", assertion)
		}
		body := form.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
		if err != nil {
			return fmt.Errorf("bluesky: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("DPoP", proof)
		res, err := p.cfg.ServerClient.Do(req)
		if err != nil {
			return errBadServer(networkError("OAuth", err))
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
		res.Body.Close()
		p.nonces.set(endpoint, res.Header.Get("DPoP-Nonce"))
		if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusCreated {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(b, out); err != nil {
				return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Status: res.StatusCode, Message: "the authorization server's answer is not JSON"}
			}
			return nil
		}
		var oe oauthError
		_ = json.Unmarshal(b, &oe)
		if oe.Error == "use_dpop_nonce" && attempt == 0 && res.Header.Get("DPoP-Nonce") != "" {
			continue
		}
		if res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
			return p.classify(res, b)
		}
		code := oe.Error
		if code == "" {
			code = "HTTP_" + strconv.Itoa(res.StatusCode)
		}
		msg := providers.CleanMessage(oe.Description)
		if msg == "" {
			msg = "the authorization server answered " + res.Status
		}
		return &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: code, Status: res.StatusCode, Message: msg}
	}
}

// oauthTokens are a token answer as providers.Tokens: AccessToken is a
// session token (the access token with the session's DPoP key and
// issuer), RefreshToken the refresh token, Credential a session token
// without the access token (the key and issuer, all Refresh and Revoke
// are given besides the refresh token). Only this package reads them; all
// are sealed at rest like every token.
func (p *Provider) oauthTokens(tok *tokenAnswer, key *dpopKey, issuer string) (providers.Tokens, error) {
	jwk, err := key.privateJWK()
	if err != nil {
		return providers.Tokens{}, err
	}
	access, err := encodeSession(oauthSession{Token: tok.AccessToken, Key: jwk, Issuer: issuer})
	if err != nil {
		return providers.Tokens{}, err
	}
	credential, err := encodeSession(oauthSession{Key: jwk, Issuer: issuer})
	if err != nil {
		return providers.Tokens{}, err
	}
	t := providers.Tokens{AccessToken: access, RefreshToken: tok.RefreshToken, Credential: credential, Scopes: strings.Fields(tok.Scope)}
	if tok.ExpiresIn > 0 {
		t.ExpiresAt = p.cfg.Now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC()
	} else if exp, err := expiry(tok.AccessToken); err == nil {
		t.ExpiresAt = exp
	}
	return t, nil
}

// oauthSession is what an atproto OAuth account's AccessToken (and,
// without Token, its Credential) holds. Why not fields of
// providers.Account: Publish and Find receive the account with its access
// token alone, and a DPoP-bound token is useless without its key; packing
// both into the one opaque string keeps every other package unchanged.
type oauthSession struct {
	// Token is the DPoP-bound access token; "" in a Credential.
	Token string `json:"t,omitempty"`
	// Key is the session's DPoP key, a private JWK (P-256).
	Key string `json:"k"`
	// Issuer is the authorization server that made the session.
	Issuer string `json:"iss"`
}

// sessionPrefix marks a session token; app-password JWTs (which start
// "ey") and app passwords never start so.
const sessionPrefix = "atoauth1."

func encodeSession(s oauthSession) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("bluesky: encode session: %w", err)
	}
	return sessionPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeSession reads a session token (an AccessToken or a Credential of
// oauthTokens); false for anything else (an app-password session's JWT,
// an app password).
func decodeSession(s string) (*oauthSession, *dpopKey, bool) {
	rest, ok := strings.CutPrefix(s, sessionPrefix)
	if !ok {
		return nil, nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, nil, false
	}
	var sess oauthSession
	if json.Unmarshal(b, &sess) != nil || sess.Issuer == "" {
		return nil, nil, false
	}
	key, err := parseDPoPKey(sess.Key)
	if err != nil {
		return nil, nil, false
	}
	return &sess, key, true
}

// refreshOAuth renews an atproto OAuth session: the refresh_token grant at
// the issuer that made it, with a DPoP proof by the session's key (the
// tokens stay bound to it). A refused refresh token is KindAuth: the
// account must connect again.
func (p *Provider) refreshOAuth(ctx context.Context, sess *oauthSession, key *dpopKey, stored providers.Tokens) (*providers.Tokens, error) {
	if stored.RefreshToken == "" {
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "SESSION_ENDED", Message: "the Bluesky session has no refresh token; reconnect the account"}
	}
	as, err := p.authServerMetadata(ctx, sess.Issuer)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {stored.RefreshToken}, "client_id": {p.clientID()}}
	var tok tokenAnswer
	if err := p.oauthPost(ctx, as.Issuer, as.TokenEndpoint, key, form, &tok); err != nil {
		return nil, err
	}
	if err := checkTokens(&tok); err != nil {
		return nil, err
	}
	t, err := p.oauthTokens(&tok, key, sess.Issuer)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// revokeOAuth revokes the session's refresh token at its issuer (RFC
// 7009), which ends the session; a server without a revocation endpoint
// leaves it to expire.
func (p *Provider) revokeOAuth(ctx context.Context, sess *oauthSession, key *dpopKey, refresh string) error {
	as, err := p.authServerMetadata(ctx, sess.Issuer)
	if err != nil || as.RevocationEndpoint == "" || refresh == "" {
		return err
	}
	form := url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}, "client_id": {p.clientID()}}
	return p.oauthPost(ctx, as.Issuer, as.RevocationEndpoint, key, form, nil)
}
