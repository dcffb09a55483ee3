package connections

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// State is what a connect request leaves for its callback: who started it,
// for which provider, the PKCE verifier, and the browser it is bound to. A
// StateStore keeps it (internal/oauthstate, in Redis).
type State struct {
	OrganizationID string `json:"organizationId"`
	UserID         string `json:"userId"`
	ProviderID     string `json:"providerId"`
	// Server is the server the user named (a Mastodon instance's base
	// URL), for providers that let them.
	Server   string `json:"server,omitempty"`
	Verifier string `json:"verifier,omitempty"` // PKCE only; lives in the store only
	// BrowserHash is HashBrowserKey of the key held by the browser that
	// started the flow; the key itself is never stored. Empty on a ticket.
	BrowserHash string    `json:"browser,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

// The errors a StateStore answers with; the Service turns them into the
// callback's codes. Their texts name the store, which returns them.
var (
	// ErrStateInvalid: the state is unknown, malformed, or already used.
	ErrStateInvalid = errors.New("oauthstate: unknown or already used state")
	// ErrStateExpired: the state was issued longer ago than it lives.
	ErrStateExpired = errors.New("oauthstate: expired state")
	// ErrOtherBrowser: the state exists, but the browser key presented is
	// not the one of the browser that started the flow. The state is left
	// unused, for the callback of the browser that did.
	ErrOtherBrowser = errors.New("oauthstate: state bound to another browser")
)

// HashBrowserKey is what a state keeps of a browser key: its SHA-256, hex.
// The key is 256 random bits, so a plain hash cannot be reversed.
func HashBrowserKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewBrowserKey returns a fresh browser key: 32 random bytes, base64url.
func NewBrowserKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("oauthstate: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ValidBrowserKey reports whether key has the form NewBrowserKey gives.
func ValidBrowserKey(key string) bool {
	b, err := base64.RawURLEncoding.DecodeString(key)
	return err == nil && len(b) == 32 && len(key) == 43
}
