package mastodon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
)

// pkceTTL is how long an instance's PKCE support, as its metadata says, is
// trusted: longer than a connect takes (10 minutes of OAuth state), so
// AuthURL and Exchange of one connect agree.
const pkceTTL = time.Hour

// instance reads the server a user names into its base URL and checks,
// for a clear error at connect, that it resolves to addresses PostFlow
// calls (the dial checks every call again). Errors wrap
// providers.ErrBadServer.
func (p *Provider) instance(ctx context.Context, server string) (string, error) {
	u, err := p.cfg.Servers.ServerURL(server)
	if err != nil {
		return "", fmt.Errorf("%w: %w", providers.ErrBadServer, err)
	}
	if err := p.cfg.Servers.Check(ctx, u.Hostname()); err != nil {
		return "", fmt.Errorf("%w: %w", providers.ErrBadServer, err)
	}
	return u.String(), nil
}

// AuthURL is the instance's authorize page (GET /oauth/authorize,
// contracts §3.1) for PostFlow's app there, registered first if PostFlow
// has none. challenge (S256) is sent only to instances whose
// /.well-known/oauth-authorization-server lists S256 (Mastodon 4.3+):
// Mastodon refuses a code_verifier for a code asked without a challenge,
// and older instances and GoToSocial (which drops it) do not check it.
// CheckServer reads server as AuthURL does (a public https instance, its
// name resolved) and registers PostFlow there if it has not yet, so a
// fetch's connect fails now rather than in the browser.
func (p *Provider) CheckServer(ctx context.Context, server string) error {
	base, err := p.instance(ctx, server)
	if err != nil {
		return err
	}
	_, err = p.app(ctx, base)
	return err
}

func (p *Provider) AuthURL(ctx context.Context, server, state, challenge string) (string, error) {
	base, err := p.instance(ctx, server)
	if err != nil {
		return "", err
	}
	app, err := p.app(ctx, base)
	if err != nil {
		return "", err
	}
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {app.ClientID},
		"redirect_uri":  {p.cfg.RedirectURI},
		"scope":         {p.cfg.Scopes},
		"state":         {state},
	}
	if challenge != "" && p.supportsS256(ctx, base) {
		q.Set("code_challenge", challenge)
		q.Set("code_challenge_method", "S256")
	}
	return base + "/oauth/authorize?" + q.Encode(), nil
}

// Exchange trades the code at POST /oauth/token (client_secret_post, the
// verifier where AuthURL sent a challenge), then reads the account at GET
// /api/v1/accounts/verify_credentials. Mastodon tokens have no expiry and
// no refresh token. An instance that no longer knows PostFlow's app
// (invalid_client: Mastodon before 4.3 vacuums apps left unused) gets its
// registration forgotten, so that connecting again registers anew.
//
// The profile's PlatformUserID is "<id>@<host[:port]>" of the server
// called (see PlatformUserID), and its Handle "@<username>@<host[:port]>"
// of that same server. A Mastodon instance may name its accounts with
// another WebFinger domain (LOCAL_DOMAIN example.com, WEB_DOMAIN
// mastodon.example.com), so the handle can differ from the one the
// account's followers see; but the instance's word for that domain (its
// url, its acct) is unchecked, and an instance could name itself another
// one. The server PostFlow actually talked to is the name it can vouch for.
func (p *Provider) Exchange(ctx context.Context, server, code, _, verifier string) (*providers.Connection, error) {
	base, err := p.instance(ctx, server)
	if err != nil {
		return nil, err
	}
	app, err := p.cfg.Apps.Get(ctx, ID, base)
	if err != nil {
		if errors.Is(err, providers.ErrNoApp) {
			return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NO_APP",
				Message: "PostFlow has no registration on this instance any more; connect again"}
		}
		return nil, fmt.Errorf("mastodon: app for %s: %w", base, err)
	}
	var opts []oauth2.AuthCodeOption
	if verifier != "" && p.supportsS256(ctx, base) {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := p.oauth(app).Exchange(p.oauthCtx(ctx), code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_client" {
			if derr := p.cfg.Apps.Delete(ctx, ID, base, app.ClientID); derr != nil {
				return nil, fmt.Errorf("mastodon: forget the app the instance no longer knows: %w", derr)
			}
		}
		if errors.Is(err, netguard.ErrForbidden) {
			return nil, forbidden(err)
		}
		return nil, providers.TokenError(ID, err, nil)
	}
	t := providers.TokensFromOAuth2(tok, p.cfg.Now())
	var acct struct {
		ID          string `json:"id"`
		Username    string `json:"username"`
		DisplayName string `json:"display_name"`
		Avatar      string `json:"avatar"`
		URL         string `json:"url"`
	}
	if err := p.call(ctx, http.MethodGet, base, "/api/v1/accounts/verify_credentials", t.AccessToken, nil, "",
		func(b []byte) error { return json.Unmarshal(b, &acct) }); err != nil {
		return nil, err
	}
	if acct.ID == "" || acct.Username == "" || strings.Contains(acct.ID, "@") || strings.Contains(acct.Username, "@") {
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Message: "verify_credentials named no account"}
	}
	// Both the id and the handle's domain are the server PostFlow talked
	// to, never what the instance says of itself (see PlatformUserID).
	host := serverHost(base)
	return &providers.Connection{Tokens: t, Profile: providers.Profile{
		PlatformUserID: PlatformUserID(acct.ID, base),
		Handle:         "@" + acct.Username + "@" + host,
		DisplayName:    acct.DisplayName,
		AvatarURL:      acct.Avatar,
		Server:         base,
	}}, nil
}

// Refresh: Mastodon issues no refresh tokens (contracts §3.1), and its
// tokens do not expire, so nothing asks for one; a caller that does is
// told to reconnect.
func (p *Provider) Refresh(context.Context, providers.Account, providers.Tokens) (*providers.Tokens, error) {
	return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NO_REFRESH",
		Message: "Mastodon tokens cannot be refreshed; connect the account again"}
}

// Revoke revokes the token at POST /oauth/revoke with PostFlow's app
// credentials on the account's instance (contracts §3.1). GoToSocial
// v0.18 has no such endpoint (404): that is an error the caller logs.
func (p *Provider) Revoke(ctx context.Context, a providers.Account, t providers.Tokens) error {
	app, err := p.cfg.Apps.Get(ctx, ID, a.Server)
	if err != nil {
		return fmt.Errorf("mastodon: revoke: app for %s: %w", a.Server, err)
	}
	return p.call(ctx, http.MethodPost, a.Server, "/oauth/revoke", "", url.Values{
		"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "token": {t.AccessToken},
	}, "", nil)
}

func (p *Provider) oauth(app *providers.ServerApp) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret,
		RedirectURL:  p.cfg.RedirectURI,
		Scopes:       strings.Fields(p.cfg.Scopes),
		Endpoint: oauth2.Endpoint{AuthURL: app.Server + "/oauth/authorize", TokenURL: app.Server + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams},
	}
}

// oauthCtx makes golang.org/x/oauth2 call through the guarded client.
func (p *Provider) oauthCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.client)
}

// app returns PostFlow's registration on the instance at base, registering
// it (POST /api/v1/apps) when there is none or it was made for another
// redirect URI or scopes. Of two connects that register at once, the
// first stored wins and the other uses it (its own app goes unused).
func (p *Provider) app(ctx context.Context, base string) (*providers.ServerApp, error) {
	app, err := p.cfg.Apps.Get(ctx, ID, base)
	switch {
	case err == nil && app.RedirectURI == p.cfg.RedirectURI && app.Scopes == p.cfg.Scopes && p.known(ctx, app):
		return app, nil
	case err == nil:
		if err := p.cfg.Apps.Delete(ctx, ID, base, app.ClientID); err != nil {
			return nil, fmt.Errorf("mastodon: replace the app on %s: %w", base, err)
		}
	case !errors.Is(err, providers.ErrNoApp):
		return nil, fmt.Errorf("mastodon: app for %s: %w", base, err)
	}
	form := url.Values{
		"client_name":   {p.cfg.ClientName},
		"redirect_uris": {p.cfg.RedirectURI},
		"scopes":        {p.cfg.Scopes},
	}
	if p.cfg.Website != "" {
		form.Set("website", p.cfg.Website)
	}
	var reg struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := p.call(ctx, http.MethodPost, base, "/api/v1/apps", "", form, "", func(b []byte) error { return json.Unmarshal(b, &reg) }); err != nil {
		return nil, err
	}
	if reg.ClientID == "" || reg.ClientSecret == "" {
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Message: "the instance registered no client id and secret"}
	}
	return p.cfg.Apps.Add(ctx, providers.ServerApp{Network: ID, Server: base, ClientID: reg.ClientID, ClientSecret: reg.ClientSecret,
		RedirectURI: p.cfg.RedirectURI, Scopes: p.cfg.Scopes, CreatedAt: p.cfg.Now().UTC()})
}

// known reports whether the instance still knows app, by asking for an
// app token (client_credentials, one of its scopes): only invalid_client
// (401) says no. Mastodon before 4.3 vacuums apps that hold no token, and
// the authorize page of a forgotten app is an error page the user would
// be stuck on, so this costs a connect one call more. The app token is
// revoked at once, as far as the instance lets it be.
//
// GoToSocial (its /api/v2/instance source_url, read and cached with the
// instance's limits) is not asked: it has no /oauth/revoke, so each check
// would leave an app token behind for good, one a connect, and it does
// not vacuum apps, so there is nothing to check. Should it forget the app
// all the same, Exchange's invalid_client forgets the registration and
// the next connect registers anew. An instance whose limits cannot be
// read is checked as before.
func (p *Provider) known(ctx context.Context, app *providers.ServerApp) bool {
	if p.instanceLimits(ctx, app.Server).goToSocial {
		return true
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	scope, _, _ := strings.Cut(app.Scopes, " ")
	err := p.call(ctx, http.MethodPost, app.Server, "/oauth/token", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "scope": {scope},
	}, "", func(b []byte) error { return json.Unmarshal(b, &tok) })
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe.Status != http.StatusUnauthorized
	}
	if tok.AccessToken != "" {
		_ = p.Revoke(ctx, providers.Account{Server: app.Server}, providers.Tokens{AccessToken: tok.AccessToken})
	}
	return true
}

// supportsS256 reports whether the instance's RFC 8414 metadata lists S256
// in code_challenge_methods_supported (Mastodon 4.3+). Anything else (a
// 404 before 4.3 and on GoToSocial, no answer) counts as no, cached for
// pkceTTL so that one connect's AuthURL and Exchange agree.
func (p *Provider) supportsS256(ctx context.Context, base string) bool {
	now := p.cfg.Now()
	if ok, fresh, _ := p.pkce.get(base, now); fresh {
		return ok
	}
	var meta struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	err := p.call(ctx, http.MethodGet, base, "/.well-known/oauth-authorization-server", "", nil, "", func(b []byte) error { return json.Unmarshal(b, &meta) })
	ok := err == nil && slices.Contains(meta.Methods, "S256")
	p.pkce.put(base, ok, now.Add(pkceTTL), now)
	return ok
}
