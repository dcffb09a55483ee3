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

	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/webhooks"
)

// StateStore is the OAuthStateStore: one state per flow, bound to the
// browser that started it and consumed once by that browser; and the start
// tickets that carry a connect made with fetch to that browser
// (internal/oauthstate). A malformed or unknown state or ticket is
// ErrStateInvalid, one past its time ErrStateExpired, and a state
// presented with another browser's key ErrOtherBrowser.
type StateStore interface {
	Create(ctx context.Context, s State) (string, error)
	Consume(ctx context.Context, state, browserKey string) (*State, error)
	CreateTicket(ctx context.Context, s State) (string, error)
	ConsumeTicket(ctx context.Context, ticket string) (*State, error)
}

// Sealer seals tokens at rest, each bound to the account and field it
// belongs to, so that a sealed token copied to another account's record
// does not open (internal/tokencipher).
type Sealer interface {
	Seal(plaintext, binding string) (string, error)
	Open(sealed, binding string) (string, error)
}

// Service connects accounts and hands out valid access tokens.
type Service struct {
	store     Store
	states    StateStore
	providers *providers.Registry
	cipher    Sealer
	logger    *slog.Logger
	now       func() time.Time
	// events, if not nil, is told of accounts that expire.
	events webhooks.Sink
}

// WithEvents returns a copy of s that announces the accounts it marks
// expired (account.expired) to sink.
func (s *Service) WithEvents(sink webhooks.Sink) *Service {
	c := *s
	c.events = sink
	return &c
}

// NewService wires a Service.
func NewService(store Store, states StateStore, reg *providers.Registry, cipher Sealer, logger *slog.Logger) *Service {
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

// ErrOtherMethod: the provider connects another way (OAuth in the browser,
// or a password); the error says which.
type ErrOtherMethod struct{ Provider, Method string }

func (e *ErrOtherMethod) Error() string {
	return fmt.Sprintf("connections: %s connects with %s", e.Provider, e.Method)
}

// ErrServer: the server the user named (or left out) does not suit the
// provider: ErrServerRequired, or ErrServerNotTaken.
var ErrServer = errors.New("connections: server")

var (
	// ErrServerRequired: the network has many servers; the user names one.
	ErrServerRequired = fmt.Errorf("%w: name the server to connect to", ErrServer)
	// ErrServerNotTaken: the network has one server; the user names none.
	ErrServerNotTaken = fmt.Errorf("%w: this network has one server; name none", ErrServer)
)

// oauth returns the provider's OAuth flow, checking the server the user
// named against it.
func (s *Service) oauth(providerID, server string) (providers.OAuth, error) {
	o, err := s.oauthOf(providerID)
	if err != nil {
		return nil, err
	}
	return o, checkServer(o.Server(), server)
}

func (s *Service) oauthOf(providerID string) (providers.OAuth, error) {
	p, ok := s.providers.Get(providerID)
	if !ok {
		return nil, ErrUnknownProvider
	}
	o := p.Connect().OAuth
	if o == nil {
		return nil, &ErrOtherMethod{Provider: providerID, Method: p.Connect().Method()}
	}
	return o, nil
}

func checkServer(choice providers.ServerChoice, server string) error {
	switch {
	case choice == providers.ServerRequired && server == "":
		return ErrServerRequired
	case choice == providers.ServerNone && server != "":
		return ErrServerNotTaken
	}
	return nil
}

// ConnectURL starts a connection in the browser that holds browserKey (a
// key from NewBrowserKey, kept in a cookie): it stores a state
// bound to the key's hash (and a PKCE verifier where the provider uses
// PKCE) and returns the provider's authorize URL. Only a callback that
// presents the same key completes it.
// server is the server the user named, for providers that let them name
// one (a Mastodon instance), else "".
func (s *Service) ConnectURL(ctx context.Context, providerID, server, orgID, userID, browserKey string) (authURL, state string, err error) {
	o, err := s.oauth(providerID, server)
	if err != nil {
		return "", "", err
	}
	return s.authURL(ctx, o, State{OrganizationID: orgID, UserID: userID, ProviderID: providerID, Server: server}, browserKey)
}

// authURL stores the connection's state and returns the network's
// authorize URL and the state, which names the browser's cookie: a URL
// need not carry it (with PAR it carries only a request_uri).
func (s *Service) authURL(ctx context.Context, o providers.OAuth, st State, browserKey string) (string, string, error) {
	if !ValidBrowserKey(browserKey) {
		return "", "", fmt.Errorf("connect %s: no valid browser key", st.ProviderID)
	}
	st.BrowserHash = HashBrowserKey(browserKey)
	challenge := ""
	if o.PKCE() {
		st.Verifier = oauth2.GenerateVerifier()
		challenge = oauth2.S256ChallengeFromVerifier(st.Verifier)
	}
	state, err := s.states.Create(ctx, st)
	if err != nil {
		return "", "", fmt.Errorf("connect %s: %w", st.ProviderID, err)
	}
	u, err := o.AuthURL(ctx, st.Server, state, challenge)
	if err != nil {
		return "", "", fmt.Errorf("connect %s: %w", st.ProviderID, err)
	}
	return u, state, nil
}

// StartTicket starts a connection whose browser is not known yet: a
// connect made with fetch, whose answer the frontend then submits as a
// navigation (Start). The ticket works once within oauthstate.TicketTTL.
func (s *Service) StartTicket(ctx context.Context, providerID, server, orgID, userID string) (string, error) {
	o, err := s.oauth(providerID, server)
	if err != nil {
		return "", err
	}
	// Checked now, as a navigation's connect checks it, so that the
	// fetch gets the error (a server PostFlow may not call, one that does
	// not answer) rather than the browser later.
	if err := o.CheckServer(ctx, server); err != nil {
		return "", fmt.Errorf("connect %s: %w", providerID, err)
	}
	t, err := s.states.CreateTicket(ctx, State{OrganizationID: orgID, UserID: userID, ProviderID: providerID, Server: server})
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", providerID, err)
	}
	return t, nil
}

// Start consumes a ticket of StartTicket and binds the connection to the
// browser that holds browserKey, as ConnectURL does; it returns the
// provider's authorize URL. Errors are *CallbackError: invalid_state (an
// unknown, used or other provider's ticket), expired_state, server_error.
func (s *Service) Start(ctx context.Context, providerID, ticket, browserKey string) (authURL, state string, err error) {
	o, err := s.oauthOf(providerID)
	if err != nil {
		return "", "", &CallbackError{Code: "invalid_state", Err: err}
	}
	st, err := s.states.ConsumeTicket(ctx, ticket)
	switch {
	case errors.Is(err, ErrStateExpired):
		return "", "", &CallbackError{Code: "expired_state"}
	case errors.Is(err, ErrStateInvalid):
		return "", "", &CallbackError{Code: "invalid_state"}
	case err != nil:
		return "", "", &CallbackError{Code: "server_error", Err: err}
	case st.ProviderID != providerID:
		return "", "", &CallbackError{Code: "invalid_state", Err: errors.New("ticket was issued for another provider")}
	}
	u, state, err := s.authURL(ctx, o, State{OrganizationID: st.OrganizationID, UserID: st.UserID, ProviderID: providerID, Server: st.Server}, browserKey)
	switch {
	case errors.Is(err, providers.ErrBadServer):
		return "", "", &CallbackError{Code: "invalid_server", Err: err}
	case err != nil:
		return "", "", &CallbackError{Code: "server_error", Err: err}
	}
	return u, state, nil
}

// CallbackURL returns the URL the provider sends the browser back to (its
// redirect_uri). The browser key's cookie must be set on its host; the API
// serves the start of a fetch connect there too.
func (s *Service) CallbackURL(providerID string) (*url.URL, error) {
	o, err := s.oauthOf(providerID)
	if err != nil {
		return nil, err
	}
	cb, err := url.Parse(o.RedirectURI())
	if err != nil || cb.Scheme == "" || cb.Host == "" {
		return nil, fmt.Errorf("connect %s: the redirect URI is not absolute", providerID)
	}
	return cb, nil
}

// CallbackError is a failed callback, with the code the frontend receives.
type CallbackError struct {
	Code string // denied, invalid_state, expired_state, other_browser, exchange_failed, invalid_server, server_error
	Err  error
}

func (e *CallbackError) Error() string {
	if e.Err == nil {
		return "callback: " + e.Code
	}
	return "callback: " + e.Code + ": " + e.Err.Error()
}
func (e *CallbackError) Unwrap() error { return e.Err }

// Callback completes a connection from the callback's query, in the browser
// that holds browserKey. A state bound to another browser (or a callback
// without a key) is refused with other_browser and left unused for the
// browser that started the flow. Otherwise the state is consumed first,
// whatever the query says, so that it works once.
func (s *Service) Callback(ctx context.Context, providerID string, q url.Values, browserKey string) (*Account, error) {
	o, err := s.oauthOf(providerID)
	if err != nil {
		return nil, &CallbackError{Code: "invalid_state", Err: err}
	}
	// A malformed state is the store's to refuse (ErrStateInvalid), before
	// it reads anything.
	st, err := s.states.Consume(ctx, q.Get("state"), browserKey)
	switch {
	case errors.Is(err, ErrOtherBrowser):
		return nil, &CallbackError{Code: "other_browser", Err: err}
	case errors.Is(err, ErrStateExpired):
		return nil, &CallbackError{Code: "expired_state"}
	case errors.Is(err, ErrStateInvalid):
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
	conn, err := o.Exchange(ctx, st.Server, code, q.Get("iss"), st.Verifier)
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

// ErrLogin: the network refused the identifier and password.
var ErrLogin = errors.New("connections: the network refused the login")

// Login connects an account with an identifier and a password meant for
// apps (Bluesky's app passwords), on server (the user's, or "" for the
// network's own or one found from the identifier). The password is sealed
// like a token and never returned. Errors: ErrUnknownProvider,
// *ErrOtherMethod, ErrServer, ErrLogin (wrapping the provider's
// *providers.Error of KindAuth), or the provider's other errors.
func (s *Service) Login(ctx context.Context, providerID, server, orgID, userID, identifier, password string) (*Account, error) {
	p, ok := s.providers.Get(providerID)
	if !ok {
		return nil, ErrUnknownProvider
	}
	pl := p.Connect().Password
	if pl == nil {
		return nil, &ErrOtherMethod{Provider: providerID, Method: p.Connect().Method()}
	}
	if err := checkServer(pl.Server(), server); err != nil {
		return nil, err
	}
	conn, err := pl.Login(ctx, server, identifier, password)
	if providers.KindOf(err) == providers.KindAuth {
		return nil, fmt.Errorf("%w: %w", ErrLogin, err)
	}
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", providerID, err)
	}
	a, err := s.save(ctx, orgID, providerID, conn)
	if err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "account connected", "organization_id", a.OrganizationID, "account_id", a.ID, "platform", providerID, "connected_by", userID)
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
	credential := ""
	if conn.Tokens.Credential != "" {
		if credential, err = s.cipher.Seal(conn.Tokens.Credential, binding(orgID, platform, uid, "credential")); err != nil {
			return nil, err
		}
	}
	now := s.now().UTC()
	a, err := s.store.Upsert(ctx, &Account{
		OrganizationID:        orgID,
		Platform:              platform,
		PlatformUserID:        uid,
		Handle:                conn.Profile.Handle,
		DisplayName:           conn.Profile.DisplayName,
		AvatarURL:             providers.WebURL(conn.Profile.AvatarURL),
		Server:                conn.Profile.Server,
		TokenExpiresAt:        conn.Tokens.ExpiresAt,
		RefreshTokenExpiresAt: conn.Tokens.RefreshExpiresAt,
		Scopes:                conn.Tokens.Scopes,
		AccessToken:           access,
		RefreshToken:          refresh,
		Credential:            credential,
		Status:                StatusActive,
		CreatedAt:             now,
		UpdatedAt:             now,
	})
	if err != nil {
		return nil, err
	}
	// A member reconnected: the pages that post with its tokens work
	// again. A page whose role the member has lost since fails its next
	// publish with LinkedIn's 403 and is marked expired again.
	if err := s.store.SetPagesStatus(ctx, a.ID, StatusActive); err != nil {
		return nil, fmt.Errorf("connect %s: reactivate the member's pages: %w", platform, err)
	}
	return a, nil
}

// List returns the organization's accounts.
func (s *Service) List(ctx context.Context, orgID string) ([]Account, error) {
	return s.store.List(ctx, orgID)
}

// Disconnect revokes the account's tokens at the provider where it can and
// deletes the account with its tokens. A failed revoke is logged, not
// fatal: the user asked to forget the account, and PostFlow does.
// Disconnecting a member deletes the page accounts that post with its
// tokens too; disconnecting a page deletes the page alone and revokes
// nothing (the tokens are the member's).
func (s *Service) Disconnect(ctx context.Context, orgID, id string) error {
	a, err := s.store.Get(ctx, orgID, id)
	if err != nil {
		return err
	}
	if a.TokensFrom != "" {
		return s.store.Delete(ctx, orgID, id)
	}
	// Pages first: a failure leaves the member, to be disconnected again.
	if err := s.store.DeletePages(ctx, orgID, id); err != nil {
		return fmt.Errorf("disconnect %s: its pages: %w", id, err)
	}
	if p, ok := s.providers.Get(a.Platform); ok && p.Rules().Revoke {
		if tok, err := s.open(a, "accessToken", a.AccessToken); err == nil && tok != "" {
			// The refresh token too: some networks end a session by it
			// (Bluesky's deleteSession).
			refresh, _ := s.open(a, "refreshToken", a.RefreshToken)
			if err := p.Revoke(ctx, a.Provider(tok), providers.Tokens{AccessToken: tok, RefreshToken: refresh}); err != nil {
				s.logger.WarnContext(ctx, "revoke at provider failed; deleting the account anyway", "account_id", id, "platform", a.Platform, "error", err)
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
