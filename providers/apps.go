package providers

import (
	"context"
	"errors"
	"time"
)

// ServerApp is PostFlow's registration as an OAuth client on one server a
// user named (a Mastodon instance registers apps on demand: POST
// /api/v1/apps, contracts §3.1). It is made once per (Network, Server)
// and shared by every account connected there.
type ServerApp struct {
	Network string
	// Server is the server's base URL, as netguard.Policy.ServerURL reads
	// it (https://example.social).
	Server   string
	ClientID string
	// ClientSecret is a secret: stores seal it at rest, and json:"-"
	// keeps it out of any JSON by accident.
	ClientSecret string `json:"-"`
	// RedirectURI and Scopes are what the app was registered with; a
	// provider configured with others registers again.
	RedirectURI string
	Scopes      string
	CreatedAt   time.Time
}

// ErrNoApp: the store holds no registration for that server.
var ErrNoApp = errors.New("providers: no app registered on that server")

// AppStore keeps ServerApps. Implementations seal ClientSecret at rest.
type AppStore interface {
	// Get returns the registration for (network, server), or ErrNoApp.
	Get(ctx context.Context, network, server string) (*ServerApp, error)
	// Add stores app unless (app.Network, app.Server) has one already,
	// and returns the one stored: of two registrations racing, the first
	// stored wins and the other's caller uses it.
	Add(ctx context.Context, app ServerApp) (*ServerApp, error)
	// Delete forgets the registration of (network, server) if it still
	// has clientID (the server no longer knows it), so that the next
	// connect registers again; a newer registration is kept.
	Delete(ctx context.Context, network, server, clientID string) error
}
