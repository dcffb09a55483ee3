package connections

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/postflow/postflow/internal/oauthstate"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/providers"
)

// StateStore is the OAuthStateStore: one state per flow, consumed once.
type StateStore interface {
	Create(ctx context.Context, s oauthstate.State) (string, error)
	Consume(ctx context.Context, state string) (*oauthstate.State, error)
}

// Service connects accounts and hands out valid access tokens.
type Service struct {
	store     Store
	states    StateStore
	providers *providers.Registry
	cipher    *tokencipher.Cipher
	logger    *slog.Logger
	now       func() time.Time
}

// NewService wires a Service.
func NewService(store Store, states StateStore, reg *providers.Registry, cipher *tokencipher.Cipher, logger *slog.Logger) *Service {
	return &Service{store: store, states: states, providers: reg, cipher: cipher, logger: logger, now: time.Now}
}

// WithClock returns a copy of s that reads time from now; for tests.
func (s *Service) WithClock(now func() time.Time) *Service {
	c := *s
	c.now = now
	return &c
}

// Providers returns the configured providers.
func (s *Service) Providers() []providers.Provider { return s.providers.All() }

// ErrUnknownProvider: no provider with that id is configured.
var ErrUnknownProvider = errors.New("connections: unknown provider")

// ConnectURL starts a connection: it stores a state (and a PKCE verifier
// where the provider uses PKCE) and returns the provider's authorize URL.
func (s *Service) ConnectURL(ctx context.Context, providerID, orgID, userID string) (string, error) {
	p, ok := s.providers.Get(providerID)
	if !ok {
		return "", ErrUnknownProvider
	}
	st := oauthstate.State{OrganizationID: orgID, UserID: userID, ProviderID: providerID}
	challenge := ""
	if p.Capabilities().PKCE {
		st.Verifier = oauth2.GenerateVerifier()
		challenge = oauth2.S256ChallengeFromVerifier(st.Verifier)
	}
	state, err := s.states.Create(ctx, st)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", providerID, err)
	}
	return p.AuthURL(state, challenge), nil
}

// CallbackError is a failed callback, with the code the frontend receives.
type CallbackError struct {
	Code string // denied, invalid_state, expired_state, exchange_failed, server_error
	Err  error
}

func (e *CallbackError) Error() string {
	if e.Err == nil {
		return "callback: " + e.Code
	}
	return "callback: " + e.Code + ": " + e.Err.Error()
}
func (e *CallbackError) Unwrap() error { return e.Err }

// Callback completes a connection from the callback's query. The state is
// consumed first, whatever the query says, so that it works once.
func (s *Service) Callback(ctx context.Context, providerID string, q url.Values) (*Account, error) {
	p, ok := s.providers.Get(providerID)
	if !ok {
		return nil, &CallbackError{Code: "invalid_state", Err: ErrUnknownProvider}
	}
	stateParam := q.Get("state")
	if !oauthstate.Valid(stateParam) {
		return nil, &CallbackError{Code: "invalid_state"}
	}
	st, err := s.states.Consume(ctx, stateParam)
	switch {
	case errors.Is(err, oauthstate.ErrExpired):
		return nil, &CallbackError{Code: "expired_state"}
	case errors.Is(err, oauthstate.ErrInvalid):
		return nil, &CallbackError{Code: "invalid_state"}
	case err != nil:
		return nil, &CallbackError{Code: "server_error", Err: err}
	case st.ProviderID != providerID:
		return nil, &CallbackError{Code: "invalid_state", Err: errors.New("state was issued for another provider")}
	}
	if q.Get("error") != "" {
		return nil, &CallbackError{Code: "denied", Err: fmt.Errorf("%s refused: %s", providerID, q.Get("error"))}
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return nil, &CallbackError{Code: "exchange_failed", Err: errors.New("the callback carries no usable code")}
	}
	conn, err := p.Exchange(ctx, code, st.Verifier)
	if err != nil {
		return nil, &CallbackError{Code: "exchange_failed", Err: err}
	}
	a, err := s.save(ctx, st.OrganizationID, providerID, conn)
	if err != nil {
		return nil, &CallbackError{Code: "server_error", Err: err}
	}
	s.logger.InfoContext(ctx, "account connected", "organization_id", a.OrganizationID, "account_id", a.ID, "platform", providerID, "connected_by", st.UserID)
	return a, nil
}

func (s *Service) save(ctx context.Context, orgID, platform string, conn *providers.Connection) (*Account, error) {
	uid := conn.Profile.PlatformUserID
	access, err := s.cipher.Seal(conn.Tokens.AccessToken, binding(orgID, platform, uid, "accessToken"))
	if err != nil {
		return nil, err
	}
	refresh, err := s.cipher.Seal(conn.Tokens.RefreshToken, binding(orgID, platform, uid, "refreshToken"))
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	return s.store.Upsert(ctx, &Account{
		OrganizationID:        orgID,
		Platform:              platform,
		PlatformUserID:        uid,
		DisplayName:           conn.Profile.DisplayName,
		AvatarURL:             conn.Profile.AvatarURL,
		TokenExpiresAt:        conn.Tokens.ExpiresAt,
		RefreshTokenExpiresAt: conn.Tokens.RefreshExpiresAt,
		Scopes:                conn.Tokens.Scopes,
		AccessToken:           access,
		RefreshToken:          refresh,
		Status:                StatusActive,
		CreatedAt:             now,
		UpdatedAt:             now,
	})
}

// List returns the organization's accounts.
func (s *Service) List(ctx context.Context, orgID string) ([]Account, error) {
	return s.store.List(ctx, orgID)
}

// Disconnect revokes the account's tokens at the provider where it can and
// deletes the account with its tokens. A failed revoke is logged, not
// fatal: the user asked to forget the account, and PostFlow does.
func (s *Service) Disconnect(ctx context.Context, orgID, id string) error {
	a, err := s.store.Get(ctx, orgID, id)
	if err != nil {
		return err
	}
	if p, ok := s.providers.Get(a.Platform); ok {
		if r, ok := p.(providers.Revoker); ok {
			if tok, err := s.cipher.Open(a.AccessToken, binding(a.OrganizationID, a.Platform, a.PlatformUserID, "accessToken")); err == nil && tok != "" {
				if err := r.Revoke(ctx, tok); err != nil {
					s.logger.WarnContext(ctx, "revoke at provider failed; deleting the account anyway", "account_id", id, "platform", a.Platform, "error", err)
				}
			}
		}
	}
	return s.store.Delete(ctx, orgID, id)
}

// randomOwner names one holder of a refresh lease.
func randomOwner() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
