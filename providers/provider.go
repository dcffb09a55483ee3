// Package providers defines what PostFlow needs from a social platform, and
// holds one implementation per platform. Callers see capabilities, tokens,
// a profile and typed errors; the wire details of each platform stay here.
package providers

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Capabilities tell callers what a provider can do before they ask it to.
type Capabilities struct {
	// PKCE: the authorize URL carries a code challenge and the exchange the
	// verifier. LinkedIn web apps refuse it; X requires it.
	PKCE bool `json:"pkce"`
	// RefreshTokens: the platform issues refresh tokens (LinkedIn only to
	// approved apps, so a LinkedIn account may still have none).
	RefreshTokens bool `json:"refreshTokens"`
	// TextLimit is the longest text a post may have, in the platform's
	// own count (see Provider.TextLength).
	TextLimit int `json:"textLimit"`
	// Media: the provider can attach images.
	Media bool `json:"media"`
	// DuplicateWindow is how long the platform refuses a repeat of a post
	// and names the original (LinkedIn's 422 DUPLICATE_POST); 0 if it does
	// not. Within it, a retry after an answer that was lost finds the
	// post the lost attempt made; past it, the outcome is unknown.
	DuplicateWindow time.Duration `json:"-"`
	// IdempotencyWindow is how long the platform answers a create that
	// repeats an earlier one's Payload.IdempotencyKey with the post the
	// earlier one made, instead of making another (Mastodon's
	// Idempotency-Key, kept 1 h: contracts §3.2); 0 if it takes no key.
	// Unlike a duplicate answer, such an answer is always this post's own.
	IdempotencyWindow time.Duration `json:"-"`
}

// ReconcileWindow is how long after an attempt whose answer was lost a
// repeat of it is safe: the platform answers with the post the attempt
// made, if it made one, through its idempotency key or its duplicate
// answer, whichever lasts longer. 0: never safe; the outcome is unknown.
func (c Capabilities) ReconcileWindow() time.Duration {
	return max(c.DuplicateWindow, c.IdempotencyWindow)
}

// Tokens are what an authorization or a refresh yields. They are secrets:
// json:"-" keeps them out of any JSON by accident.
type Tokens struct {
	AccessToken  string `json:"-"`
	RefreshToken string `json:"-"`
	// ExpiresAt is when the access token stops working; zero if never.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// RefreshExpiresAt is when the refresh token stops working; zero if
	// unknown or never.
	RefreshExpiresAt time.Time `json:"refreshExpiresAt,omitzero"`
	Scopes           []string  `json:"scopes,omitempty"`
}

// Profile identifies the connected account on the platform.
type Profile struct {
	// PlatformUserID is the platform's stable id, in the form the platform's
	// API takes (LinkedIn: urn:li:person:{sub}).
	PlatformUserID string `json:"platformUserId"`
	DisplayName    string `json:"displayName"`
	AvatarURL      string `json:"avatarUrl,omitempty"`
}

// Connection is the result of a completed OAuth callback.
type Connection struct {
	Tokens  Tokens
	Profile Profile
}

// Account is what publishing needs to know about a connected account.
type Account struct {
	PlatformUserID string
	AccessToken    string `json:"-"`
}

// Payload is one post as a platform receives it.
type Payload struct {
	Text string
	// IdempotencyKey is the same for every attempt to publish one post to
	// one account and differs between any two such pairs, so a provider
	// whose platform takes one (Capabilities.IdempotencyWindow) can make a
	// retry after a lost answer return the first attempt's post.
	IdempotencyKey string `json:"-"`
}

// Published is the platform's record of a published post.
type Published struct {
	PlatformPostID string `json:"platformPostId"`
	URL            string `json:"url"`
}

// Provider is one social platform.
type Provider interface {
	// ID is the provider's route and storage name ("linkedin").
	ID() string
	// Name is how people call it ("LinkedIn").
	Name() string
	Capabilities() Capabilities
	// AuthURL is where to send the browser to authorize. challenge is the
	// PKCE S256 challenge, empty for providers without PKCE.
	AuthURL(state, challenge string) string
	// Exchange trades the callback's code (and the PKCE verifier, if any)
	// for tokens and reads the account's profile.
	Exchange(ctx context.Context, code, verifier string) (*Connection, error)
	// Refresh trades a refresh token for new tokens. A refresh token that
	// is expired or revoked is an *Error of KindAuth.
	Refresh(ctx context.Context, refreshToken string) (*Tokens, error)
	// Publish posts p as the account. The text must fit TextLength.
	Publish(ctx context.Context, a Account, p Payload) (*Published, error)
	// TextLength counts text the way the platform counts it.
	TextLength(text string) int
	// PostURL is the public address of the post with the platform's id
	// (a Published.PlatformPostID), for a post known by its id alone, such
	// as the one a duplicate answer names.
	PostURL(platformPostID string) string
}

// Revoker is implemented by providers that can revoke a token at the
// platform when an account is disconnected.
type Revoker interface {
	Revoke(ctx context.Context, token string) error
}

// Registry is the set of providers a deployment has configured.
type Registry struct {
	byID map[string]Provider
}

// NewRegistry holds ps; two providers with one id are a wiring mistake.
func NewRegistry(ps ...Provider) (*Registry, error) {
	r := &Registry{byID: map[string]Provider{}}
	for _, p := range ps {
		if _, dup := r.byID[p.ID()]; dup {
			return nil, fmt.Errorf("providers: %q registered twice", p.ID())
		}
		r.byID[p.ID()] = p
	}
	return r, nil
}

// Get returns the provider with id, if configured.
func (r *Registry) Get(id string) (Provider, bool) {
	p, ok := r.byID[id]
	return p, ok
}

// All returns the providers sorted by id.
func (r *Registry) All() []Provider {
	out := make([]Provider, 0, len(r.byID))
	for _, p := range r.byID {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}
