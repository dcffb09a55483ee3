// Package connections is how an organization links its social accounts to
// PostFlow and how PostFlow keeps their tokens safe and fresh: the OAuth
// connect and callback flow, the SocialAccount, and ValidAccessToken for the
// publish flow. Storage and Redis are behind interfaces; the HTTP layer and
// the activities call this package.
package connections

import (
	"context"
	"errors"
	"time"

	"github.com/postflow/postflow/providers"
)

// Status of a social account.
type Status string

const (
	StatusActive  Status = "active"
	StatusExpired Status = "expired" // the platform refused its tokens; reconnect
	StatusRevoked Status = "revoked"
)

// Account is a SocialAccount: one platform account connected to one
// organization. AccessToken and RefreshToken hold sealed tokens (see
// tokencipher), never plaintext, and never leave the process as JSON.
type Account struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organizationId"`
	Platform       string `json:"platform"`
	PlatformUserID string `json:"platformUserId"`
	Handle         string `json:"handle,omitempty"`
	DisplayName    string `json:"displayName"`
	AvatarURL      string `json:"avatarUrl,omitempty"`
	// Server is the base URL of the account's server (a Mastodon
	// instance, a Bluesky PDS); empty where the network has one.
	Server         string    `json:"server,omitempty"`
	TokenExpiresAt time.Time `json:"tokenExpiresAt,omitzero"`
	// TokensFrom is the id of the member account whose tokens this page
	// account posts with (a LinkedIn company page: see pages.go); "" for
	// an account with tokens of its own. A page account stores no tokens.
	TokensFrom string    `json:"memberAccountId,omitempty"`
	Status     Status    `json:"status"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`

	AccessToken  string `json:"-"`
	RefreshToken string `json:"-"`
	// Credential is the sealed secret sessions are made from (Bluesky's
	// app password), for connections made with a password.
	Credential            string    `json:"-"`
	RefreshTokenExpiresAt time.Time `json:"-"`
	Scopes                []string  `json:"-"`
}

// NeedsRefresh reports whether the access token expires within
// RefreshMargin of now. A token with no expiry never does.
func (a *Account) NeedsRefresh(now time.Time) bool {
	return !a.TokenExpiresAt.IsZero() && !now.Add(RefreshMargin).Before(a.TokenExpiresAt)
}

// Provider is what a provider needs to know of the account to act as it.
func (a *Account) Provider(accessToken string) providers.Account {
	return providers.Account{PlatformUserID: a.PlatformUserID, Handle: a.Handle, Server: a.Server, AccessToken: accessToken}
}

// binding ties a sealed token to the account and field it belongs to. It
// uses the account's unique key, which is known before the first upsert
// (unlike its id).
func binding(orgID, platform, platformUserID, field string) string {
	return orgID + "/" + platform + "/" + platformUserID + "#" + field
}

// ErrNotFound: no such account in this organization.
var ErrNotFound = errors.New("connections: account not found")

// ErrLocked: another process holds the account's refresh lease.
var ErrLocked = errors.New("connections: refresh in progress elsewhere")

// Store keeps accounts. Every read and write that comes from a request is
// scoped to an organization; the publish flow reads by id alone.
type Store interface {
	// Upsert inserts the account, or updates the one with the same
	// (organization, platform, platform user). An empty RefreshToken keeps
	// the stored one. It returns the stored account.
	Upsert(ctx context.Context, a *Account) (*Account, error)
	Get(ctx context.Context, orgID, id string) (*Account, error)
	GetByID(ctx context.Context, id string) (*Account, error)
	List(ctx context.Context, orgID string) ([]Account, error)
	// Delete removes the account, its tokens and any refresh lease.
	Delete(ctx context.Context, orgID, id string) error
	SetStatus(ctx context.Context, id string, status Status) error
	// SetPagesStatus sets the status of every page account whose tokens
	// are the member's (TokensFrom == memberID).
	SetPagesStatus(ctx context.Context, memberID string, status Status) error
	// DeletePages removes the organization's page accounts whose tokens
	// are the member's.
	DeletePages(ctx context.Context, orgID, memberID string) error
	// LockRefresh takes the account's refresh lease for ttl, unless someone
	// else holds an unexpired one (ErrLocked).
	LockRefresh(ctx context.Context, id, owner string, ttl time.Duration) error
	// SaveRefreshed stores refreshed tokens and releases owner's lease.
	SaveRefreshed(ctx context.Context, id, owner string, t RefreshedTokens) error
	// UnlockRefresh releases owner's lease.
	UnlockRefresh(ctx context.Context, id, owner string) error
}

// RefreshedTokens are sealed tokens after a refresh. An empty RefreshToken
// keeps the stored one.
type RefreshedTokens struct {
	AccessToken           string
	RefreshToken          string
	TokenExpiresAt        time.Time
	RefreshTokenExpiresAt time.Time
}
