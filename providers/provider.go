// Package providers defines what PostFlow needs from a social network, and
// holds one implementation per network. Callers see declared rules, how an
// account connects, tokens, a profile and typed errors; the wire details of
// each network stay in its folder.
package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Provider is one social network. Every ability PostFlow uses is a method
// here or a field of Rules or Connect: nothing is found by a type
// assertion, so a provider that lacks one does not compile.
type Provider interface {
	// ID is the provider's route and storage name ("linkedin").
	ID() string
	// Name is how people call it ("LinkedIn").
	Name() string
	// Rules are the network's declared rules, the same for every account.
	Rules() Rules
	// TextLimits are the limits the text for account a must fit, in the
	// network's own units. They are Rules().Text.Limits unless the limit
	// is the server's own (a Mastodon instance's max_characters), which
	// may take a network call, cached by the provider. None (an empty
	// list): unknown now, the network decides; callers check nothing then
	// and the network's own refusal is the answer.
	TextLimits(ctx context.Context, a Account) ([]TextLimit, error)
	// MediaLimits are the image rules for account a: Rules().Media unless
	// the server sets its own (a Mastodon instance's configuration), read
	// and cached as TextLimits are.
	MediaLimits(ctx context.Context, a Account) (MediaRules, error)
	// Upload sends img to the network for account a, streaming its bytes,
	// and returns the network's handle once a post can refer to it
	// (waiting out the network's processing). Errors are *Error as for
	// Publish; ErrNoMedia where MediaRules.MaxImages is 0.
	Upload(ctx context.Context, a Account, img Image) (*Upload, error)
	// Reusable says whether u, uploaded by an earlier attempt, can still
	// be referred to by a post; false makes the caller upload again.
	Reusable(ctx context.Context, a Account, u Upload) (bool, error)
	// Connect says how an account is connected: exactly one of its
	// fields is set.
	Connect() Connect
	// Refresh makes new tokens for account a from the stored ones (a
	// refresh token, or the credential a session is made from). A refresh
	// the network refuses for good is an *Error of KindAuth.
	Refresh(ctx context.Context, a Account, stored Tokens) (*Tokens, error)
	// Publish posts p as the account. The text must fit TextLimits.
	Publish(ctx context.Context, a Account, p Payload) (*Published, error)
	// Find reads which posts the network holds, made at or after since,
	// that an attempt of p's publication (same IdempotencyKey) may have
	// made, newest first; none when it holds none. A network that cannot
	// tell its posts apart but by their text returns each with p's text:
	// the caller skips those other publications have claimed. Only for
	// Rules().ExactlyOnce.ReadBack; other providers answer ErrCannotFind.
	Find(ctx context.Context, a Account, p Payload, since time.Time) ([]Published, error)
	// PostURL is the public address of the account's post with the
	// network's id (a Published.PlatformPostID), for a post known by its
	// id alone, such as the one a duplicate answer names.
	PostURL(a Account, platformPostID string) string
	// Delete deletes the account's post with the network's id (a
	// Published.PlatformPostID) at the network. A post the network no
	// longer holds is success, so a retry after a lost answer does not
	// fail. A post of another account is refused (or, where the network
	// cannot tell it from an absent one, left as it is). Errors are
	// *Error as for Publish: KindRateLimited with RetryAfter (429),
	// KindRetryable (5xx, network), KindAuth (401, 403). Only for
	// Rules().Delete; others answer ErrCannotDelete. Each provider's
	// Delete names its network's call.
	Delete(ctx context.Context, a Account, platformPostID string) error
	// Revoke revokes the account's token at the network when it is
	// disconnected; a network that cannot (Rules().Revoke false) does
	// nothing and returns nil.
	Revoke(ctx context.Context, a Account, t Tokens) error
}

// ErrBadServer: the server a user named cannot be one (not a host name,
// or outside development an address on loopback, a private or a
// link-local network). Providers wrap it with the reason.
var ErrBadServer = errors.New("providers: not a server PostFlow connects to")

// ErrCannotDelete: the network has no call that deletes a post.
var ErrCannotDelete = errors.New("providers: the network cannot delete a post")

// ErrCannotFind: the provider cannot read back what the network holds.
var ErrCannotFind = errors.New("providers: the network cannot be asked for a post")

// Rules are what a network takes and how it behaves, declared by its
// provider, shown by GET /providers and used by every caller.
type Rules struct {
	Text TextRules `json:"text"`
	// ExactlyOnce is the network's lever against a second post after a
	// lost answer.
	ExactlyOnce ExactlyOnce `json:"exactlyOnce"`
	// RefreshTokens: the network issues refresh tokens or sessions that
	// Refresh renews (LinkedIn only to approved apps, so a LinkedIn
	// account may still have none).
	RefreshTokens bool `json:"refreshTokens"`
	// Revoke: Revoke revokes tokens at the network.
	Revoke bool `json:"revoke"`
	// Delete: Delete deletes a published post at the network (what an
	// unpublish needs).
	Delete bool `json:"delete"`
	// Media says which images a post takes, for every account (see
	// Provider.MediaLimits for the account's own).
	Media MediaRules `json:"media"`
}

// TextRules say how a network counts and writes text.
type TextRules struct {
	// Limits are the limits every account of the network has; empty when
	// each server sets its own (see Provider.TextLimits).
	Limits []TextLimit `json:"limits"`
	// PerServer: the limit is the account's server's own.
	PerServer bool `json:"perServer,omitempty"`
	// Links, Mentions and Hashtags say how they are written in a post:
	// "plain" (the network links them itself), "facets" (byte ranges the
	// provider computes), "escaped" (LinkedIn's little text), "none".
	Links    string `json:"links"`
	Mentions string `json:"mentions"`
	Hashtags string `json:"hashtags"`
}

// ExactlyOnce is a network's lever for exactly one post per account when
// an answer is lost or a worker dies mid-call (contracts §5).
type ExactlyOnce struct {
	// Lever names it: "duplicate-answer" (the network refuses a repeat
	// and names the post: LinkedIn), "idempotency-key" (a repeated key
	// is answered with the first post: Mastodon), "record-key" (the post
	// is stored under a key derived from the publication, which a repeat
	// cannot create twice: Bluesky), "none".
	Lever string `json:"lever"`
	// DuplicateWindow is how long the network refuses a repeat of a post
	// and names the original (LinkedIn's 422 DUPLICATE_POST); 0 if it does
	// not. Within it, a retry after an answer that was lost finds the
	// post the lost attempt made; past it, the outcome is unknown.
	DuplicateWindow time.Duration `json:"-"`
	// IdempotencyWindow is how long the network answers a create that
	// repeats an earlier one's Payload.IdempotencyKey with the post the
	// earlier one made (Mastodon's Idempotency-Key, kept 1 h: contracts
	// §3.2); 0 if it takes no key. Unlike a duplicate answer, such an
	// answer is always this post's own.
	IdempotencyWindow time.Duration `json:"-"`
	// Forever: a repeat is always answered with the first post (a record
	// key never expires while the post exists).
	Forever bool `json:"forever,omitempty"`
	// ReadBack: Find tells whether the network holds an attempt's post,
	// so an attempt in doubt is settled by reading, past any window.
	ReadBack bool `json:"readBack"`
}

// MarshalJSON shows the windows in whole seconds, as GET /providers
// answers them.
func (e ExactlyOnce) MarshalJSON() ([]byte, error) {
	type plain ExactlyOnce // without this method
	return json.Marshal(struct {
		plain
		DuplicateWindowSeconds   int64 `json:"duplicateWindowSeconds,omitempty"`
		IdempotencyWindowSeconds int64 `json:"idempotencyWindowSeconds,omitempty"`
	}{plain(e), int64(e.DuplicateWindow / time.Second), int64(e.IdempotencyWindow / time.Second)})
}

// ReconcileWindow is how long after an attempt whose answer was lost a
// repeat of it is safe: the network answers with the post the attempt
// made, if it made one, through its record key, its idempotency key or
// its duplicate answer. 0: never safe; the outcome is unknown.
func (e ExactlyOnce) ReconcileWindow() time.Duration {
	if e.Forever {
		return time.Duration(1<<63 - 1)
	}
	return max(e.DuplicateWindow, e.IdempotencyWindow)
}

// Connect says how an account of a network is connected. Exactly one of
// OAuth and Password is set; Pages is optional.
type Connect struct {
	// OAuth: the browser's authorization-code flow.
	OAuth OAuth
	// Password: an identifier (handle, DID or email) and a password meant
	// for apps (Bluesky's app passwords), no browser.
	Password PasswordLogin
	// Pages, if not nil, lists the pages a connected member may post as
	// with the member's own tokens (LinkedIn company pages, when the app
	// is approved for the organization scopes); each page becomes an
	// account of its own that borrows the member's tokens. nil: the
	// network (or this deployment) has none.
	Pages Pages
}

// Pages lists the pages (organizations) a member may post as.
type Pages interface {
	// Pages returns the pages the member of account a (a connected
	// member, with the member's access token) holds a posting role on,
	// as the network says now. A member who did not grant the scopes to
	// list them is ErrPagesNotGranted; a refused token is an *Error of
	// KindAuth.
	Pages(ctx context.Context, a Account) ([]Page, error)
}

// Page is a page a member may post as. Posting as it is posting with the
// member's token and Account.PlatformUserID set to the page's.
type Page struct {
	// PlatformUserID is the page's id in the form the network takes as the
	// author (LinkedIn: urn:li:organization:{id}).
	PlatformUserID string `json:"platformUserId"`
	DisplayName    string `json:"displayName"`
	// Handle is the page's name in its address (LinkedIn's vanity name).
	Handle    string `json:"handle,omitempty"`
	AvatarURL string `json:"avatarUrl,omitempty"`
}

// ErrPagesNotGranted: the member's token may not list their pages (LinkedIn
// answers 403 ACCESS_DENIED without rw_organization_admin): to PostFlow the
// member has no pages until they reconnect and grant the scopes.
var ErrPagesNotGranted = errors.New("providers: the member did not grant the scopes that list their pages")

// Method is "oauth" or "password", as GET /providers shows it.
func (c Connect) Method() string {
	switch {
	case c.OAuth != nil:
		return "oauth"
	case c.Password != nil:
		return "password"
	}
	return "none"
}

// OAuth is a network's authorization-code flow.
type OAuth interface {
	// PKCE: the authorize URL carries a code challenge and the exchange
	// the verifier (RFC 7636, S256).
	PKCE() bool
	// Server says whether the user names the server to connect to (a
	// Mastodon instance): ServerNone, ServerOptional or ServerRequired.
	Server() ServerChoice
	// RedirectURI is where the network sends the browser back to.
	RedirectURI() string
	// CheckServer says whether the flow can start on server as the user
	// named it ("" for none), without starting one: ErrBadServer
	// (wrapped) when it is no server to call, a *Error when the network
	// cannot be asked now. For a connect that reaches the browser later
	// (the fetch's start ticket), so the error reaches the caller now.
	CheckServer(ctx context.Context, server string) error
	// AuthURL is where to send the browser to authorize on server (""
	// unless Server allows one). challenge is the PKCE S256 challenge, ""
	// without PKCE. It may register PostFlow with the server first.
	AuthURL(ctx context.Context, server, state, challenge string) (string, error)
	// Exchange trades the callback's code (and the PKCE verifier, if
	// any) for tokens on server and reads the account's profile. iss is
	// the callback's iss parameter (RFC 9207), "" when it had none: a
	// network whose authorization servers name themselves there (atproto)
	// checks it is the one the request went to before the code goes
	// anywhere, against a mix-up of authorization servers; others ignore it.
	Exchange(ctx context.Context, server, code, iss, verifier string) (*Connection, error)
}

// PasswordLogin connects with an identifier and a password.
type PasswordLogin interface {
	Server() ServerChoice
	// Login makes a session on server (found from the identifier when "")
	// and reads the profile. Tokens.Credential keeps the password, sealed
	// like every token, to make new sessions with. A refused password is
	// an *Error of KindAuth.
	Login(ctx context.Context, server, identifier, password string) (*Connection, error)
}

// ServerChoice says whether the user names the account's server.
type ServerChoice string

const (
	ServerNone     ServerChoice = ""
	ServerOptional ServerChoice = "optional"
	ServerRequired ServerChoice = "required"
)

// Tokens are what an authorization, a login or a refresh yields. They are
// secrets: json:"-" keeps them out of any JSON by accident.
type Tokens struct {
	AccessToken  string `json:"-"`
	RefreshToken string `json:"-"`
	// Credential is a long-lived secret that sessions are made from
	// (Bluesky's app password); empty for OAuth.
	Credential string `json:"-"`
	// ExpiresAt is when the access token stops working; zero if never.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// RefreshExpiresAt is when the refresh token stops working; zero if
	// unknown or never.
	RefreshExpiresAt time.Time `json:"refreshExpiresAt,omitzero"`
	Scopes           []string  `json:"scopes,omitempty"`
}

// Profile identifies the connected account on the network.
type Profile struct {
	// PlatformUserID is the network's stable id, in the form its API
	// takes as the author (LinkedIn: urn:li:person:{sub}; Bluesky: the
	// DID; Mastodon: "<account id>@<host[:port]>", the instance-local id
	// and the server PostFlow connected to, as ids are only unique per
	// instance; mastodon.LocalID reads the id back).
	PlatformUserID string `json:"platformUserId"`
	// Handle is the account's name on the network (@alice@example.social,
	// alice.bsky.social), where it has one.
	Handle      string `json:"handle,omitempty"`
	DisplayName string `json:"displayName"`
	AvatarURL   string `json:"avatarUrl,omitempty"`
	// Server is the base URL of the account's server (a Mastodon
	// instance, a Bluesky PDS); "" where the network has one address.
	Server string `json:"server,omitempty"`
}

// Connection is the result of a completed connect.
type Connection struct {
	Tokens  Tokens
	Profile Profile
}

// Account is what publishing needs to know about a connected account.
type Account struct {
	// PlatformUserID is the author the network posts as.
	PlatformUserID string
	Handle         string
	Server         string
	AccessToken    string `json:"-"`
}

// Payload is one post as a network receives it.
type Payload struct {
	Text string
	// IdempotencyKey is the same for every attempt to publish one post to
	// one account and differs between any two such pairs, so a provider
	// whose network takes one can make a retry after a lost answer return
	// the first attempt's post.
	IdempotencyKey string `json:"-"`
	// Created is when the post was created in PostFlow: with
	// IdempotencyKey it gives a record key that is stable across attempts
	// and in time order (Bluesky).
	Created time.Time
	// Language is the post's BCP 47 language, if known.
	Language string
	// Images are the uploaded images the post refers to, in order.
	Images []AttachedImage
}

// Published is the network's record of a published post.
type Published struct {
	PlatformPostID string `json:"platformPostId"`
	URL            string `json:"url"`
}

// Registry is the set of providers a deployment has configured.
type Registry struct {
	byID map[string]Provider
}

// NewRegistry holds ps. Two providers with one id, or one whose Connect
// sets other than exactly one way in, are wiring mistakes.
func NewRegistry(ps ...Provider) (*Registry, error) {
	r := &Registry{byID: map[string]Provider{}}
	for _, p := range ps {
		if _, dup := r.byID[p.ID()]; dup {
			return nil, fmt.Errorf("providers: %q registered twice", p.ID())
		}
		if c := p.Connect(); (c.OAuth == nil) == (c.Password == nil) {
			return nil, fmt.Errorf("providers: %q must declare exactly one way to connect", p.ID())
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
