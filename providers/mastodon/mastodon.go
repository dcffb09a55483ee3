// Package mastodon is the provider for Mastodon and the servers that speak
// its API (GoToSocial among them), on any instance a user names
// (contracts/platforms.md §3). PostFlow registers itself as an app on an
// instance the first time someone connects there (POST /api/v1/apps) and
// keeps that registration, its client secret sealed, in a
// providers.AppStore. Instances are user input: every call goes through a
// netguard.Policy client, which outside development refuses loopback,
// private and link-local addresses at each dial, after DNS.
package mastodon

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
)

// ID is the provider's id in routes and storage.
const ID = "mastodon"

// DefaultScopes are what PostFlow asks an instance for: reading the
// account's identity, posting, and uploading media (Mastodon's granular
// scopes, 2.4+; GoToSocial v0.18 takes them too).
const DefaultScopes = "read:accounts write:statuses write:media"

// IdempotencyWindow is how long PostFlow counts on an instance to answer a
// repeated Idempotency-Key with the first status: Mastodon keeps keys an
// hour (contracts §3.2); ten minutes less, for clocks and slow calls.
// Servers that ignore the key (GoToSocial) are reconciled by Find, which
// the activity calls first (Rules().ExactlyOnce.ReadBack).
const IdempotencyWindow = 50 * time.Minute

// Config configures the provider.
type Config struct {
	// RedirectURI is PostFlow's callback, registered with every instance
	// (MASTODON_REDIRECT_URI).
	RedirectURI string
	// ClientName and Website are shown to users on the instance's
	// authorize page; ClientName defaults to "PostFlow".
	ClientName string
	Website    string
	// Scopes default to DefaultScopes.
	Scopes string
	// Apps keeps the registration on each instance.
	Apps providers.AppStore
	// Servers guards every call to an instance.
	Servers netguard.Policy
	// Timeout bounds each call; 30 s by default.
	Timeout time.Duration
	Now     func() time.Time
	// MediaPoll is the first wait before asking whether an uploaded image
	// is processed; MediaPollStart by default (tests shorten it).
	MediaPoll time.Duration
}

// Provider is the Mastodon provider. Its caches (instance limits, PKCE
// support, post URL forms) live here, one set per Provider.
type Provider struct {
	cfg    Config
	client *http.Client

	limits   *cache[limitsEntry]
	pkce     *cache[bool]
	postURLs *cache[string]
}

// New returns the provider.
func New(cfg Config) (*Provider, error) {
	if cfg.RedirectURI == "" || cfg.Apps == nil {
		return nil, errors.New("mastodon: a redirect URI and an app store are required")
	}
	if u, err := url.Parse(cfg.RedirectURI); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("mastodon: the redirect URI must be an absolute http(s) URL")
	}
	if cfg.ClientName == "" {
		cfg.ClientName = "PostFlow"
	}
	if cfg.Scopes == "" {
		cfg.Scopes = DefaultScopes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MediaPoll <= 0 {
		cfg.MediaPoll = MediaPollStart
	}
	return &Provider{
		cfg:      cfg,
		client:   cfg.Servers.Client(cfg.Timeout),
		limits:   newCache[limitsEntry](maxCachedServers),
		pkce:     newCache[bool](maxCachedServers),
		postURLs: newCache[string](10 * maxCachedServers),
	}, nil
}

func (p *Provider) ID() string   { return ID }
func (p *Provider) Name() string { return "Mastodon" }

// Rules: the limit is each instance's (TextLimits); links, mentions and
// hashtags are plain text the instance links itself. The lever is
// Mastodon's Idempotency-Key, and since not every Mastodon-API server
// keeps keys (GoToSocial ignores them), Find reads the account's statuses
// back. Tokens do not expire and cannot be refreshed; they are revoked at
// POST /oauth/revoke.
func (p *Provider) Rules() providers.Rules {
	return providers.Rules{
		// Limits empty, not nil: GET /providers shows an array.
		Text:          providers.TextRules{Limits: []providers.TextLimit{}, PerServer: true, Links: "plain", Mentions: "plain", Hashtags: "plain"},
		ExactlyOnce:   providers.ExactlyOnce{Lever: "idempotency-key", IdempotencyWindow: IdempotencyWindow, ReadBack: true},
		RefreshTokens: false,
		Revoke:        true,
		Delete:        true,
		// Each instance's own: see MediaLimits.
		Media: mediaConfig{}.rules(0),
	}
}

// Connect: OAuth on the instance the user names.
func (p *Provider) Connect() providers.Connect { return providers.Connect{OAuth: p} }

// PKCE is true: the connections service makes a verifier for every
// connect, and AuthURL and Exchange use it where the instance supports
// S256 (see AuthURL).
func (p *Provider) PKCE() bool { return true }

// Server: the user names the instance.
func (p *Provider) Server() providers.ServerChoice { return providers.ServerRequired }

func (p *Provider) RedirectURI() string { return p.cfg.RedirectURI }

// PostURL is {server}/@{username}/{id}, Mastodon's form, unless a create
// or a read back of the account has shown the instance's own form (on
// GoToSocial {host}/@{username}/statuses/{id}): for ids known alone, since
// the URL in the create answer is the instance's word.
func (p *Provider) PostURL(a providers.Account, id string) string {
	if prefix, _, ok := p.postURLs.get(a.Server+"|"+a.PlatformUserID, time.Time{}); ok {
		return prefix + id
	}
	return strings.TrimRight(a.Server, "/") + "/@" + username(a.Handle) + "/" + id
}

// learnPostURL remembers the form of the account's post URLs from a URL
// the instance gave for status id.
func (p *Provider) learnPostURL(a providers.Account, id, postURL string) {
	if prefix, ok := strings.CutSuffix(postURL, "/"+id); ok && prefix != "" {
		now := p.cfg.Now()
		p.postURLs.put(a.Server+"|"+a.PlatformUserID, prefix+"/", now.Add(100*365*24*time.Hour), now)
	}
}

// PlatformUserID is the id PostFlow keeps for the account with the
// instance-local id localID on the server at base: "<id>@<host[:port]>",
// e.g. "109876543210@mastodon.social" or "1@127.0.0.1:8080". Mastodon
// account ids are only unique on their instance (accounts made before
// Mastodon 2.6 have sequential ids, 1, 2, 3 on every instance), and
// accounts are keyed (organization, platform, platformUserId): the local
// id alone would let connecting id 1 on a second instance replace the
// connection to id 1 on the first, and would let any instance claim any
// id. The host is the one of the base URL PostFlow called (already
// lower-cased by netguard.Policy.ServerURL), not anything the instance
// says. LocalID reads the local id back for the API. Accounts connected
// before this form keep their bare id (LocalID takes it as it is);
// connecting one of them again makes a second account beside it, which
// the user disconnects.
func PlatformUserID(localID, base string) string {
	return localID + "@" + serverHost(base)
}

// LocalID is the instance-local account id in a PlatformUserID, the form
// GET /api/v1/accounts/:id takes. An id without "@" (stored before the
// "<id>@<host>" form) is returned as it is. Local ids hold no "@":
// Exchange refuses an account whose id does.
func LocalID(platformUserID string) string {
	if i := strings.LastIndexByte(platformUserID, '@'); i >= 0 {
		return platformUserID[:i]
	}
	return platformUserID
}

// serverHost is the host[:port] of a base URL read by
// netguard.Policy.ServerURL.
func serverHost(base string) string {
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		return u.Host
	}
	return strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")
}

// username is the user part of a handle "@alice@example.social".
func username(handle string) string {
	u, _, _ := strings.Cut(strings.TrimPrefix(handle, "@"), "@")
	return u
}
