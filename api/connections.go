package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/echo"
	"github.com/postflow/postflow/internal/oauthstate"
	"github.com/postflow/postflow/providers"
)

type providerView struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Connect connectView     `json:"connect"`
	Rules   providers.Rules `json:"rules"`
}

// connectView says how a frontend connects an account: "oauth" (GET
// /connections/connect/{id}, with ?instance= where server is "required" or
// "optional") or "password" (POST /connections/{id}); pages: a member may
// add the pages they administer (/connections/{id}/pages).
type connectView struct {
	Method string                 `json:"method"`
	Server providers.ServerChoice `json:"server,omitempty"`
	PKCE   bool                   `json:"pkce,omitempty"`
	Pages  bool                   `json:"pages,omitempty"`
}

func (s *server) listProviders(w http.ResponseWriter, r *http.Request) {
	out := []providerView{}
	for _, p := range s.conns.Providers() {
		c := p.Connect()
		v := connectView{Method: c.Method(), Pages: c.Pages != nil}
		switch {
		case c.OAuth != nil:
			v.Server, v.PKCE = c.OAuth.Server(), c.OAuth.PKCE()
		case c.Password != nil:
			v.Server = c.Password.Server()
		}
		out = append(out, providerView{ID: p.ID(), Name: p.Name(), Connect: v, Rules: p.Rules()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

// The longest identifier (a DID may reach 2 KB), password and server name
// a connect takes: longer ones are no network's, and never reach one.
const (
	maxIdentifier = 2048
	maxPassword   = 1024
	maxServer     = 300 // a host name is at most 253, with scheme and port
)

// loginRequest connects an account with a password meant for apps.
type loginRequest struct {
	// Identifier is the account's handle, DID or email.
	Identifier string `json:"identifier"`
	// Password is an app password; it is sealed and never returned.
	Password string `json:"password"`
	// Server is the account's server (a self-hosted PDS), if not the one
	// its identifier leads to.
	Server string `json:"server"`
}

// login connects an account with an identifier and an app password
// (Bluesky): 201 with the connection.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	providerID := chi.URLParam(r, "id")
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	if strings.TrimSpace(req.Identifier) == "" || req.Password == "" {
		writeError(w, r, s.logger, Unprocessable("invalid_login", "identifier and password are required."))
		return
	}
	if len(req.Identifier) > maxIdentifier || len(req.Password) > maxPassword || len(req.Server) > maxServer {
		writeError(w, r, s.logger, BadRequest("invalid_login", fmt.Sprintf("identifier, password and server are at most %d, %d and %d bytes.", maxIdentifier, maxPassword, maxServer)))
		return
	}
	a, err := s.conns.Login(r.Context(), providerID, strings.TrimSpace(req.Server), id.OrgID, id.UserID, strings.TrimSpace(req.Identifier), req.Password)
	if err != nil {
		s.connectFailed(w, r, providerID, err)
		return
	}
	writeJSON(w, http.StatusCreated, a)
}

// connect starts OAuth. A navigation (the default) gets a 302 to the
// provider and the browser-binding cookie. A frontend that calls with fetch
// (a navigation cannot carry a Bearer header) asks for JSON and gets
// {"url"}: the API's start URL, which it submits as a form POST, a
// top-level navigation that gets the cookie (see start). The cookie is what
// lets only the browser that started a connection complete it.
func (s *server) connect(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	providerID := chi.URLParam(r, "providerId")
	if len(r.URL.Query().Get("instance")) > maxServer {
		writeError(w, r, s.logger, BadRequest("invalid_server", fmt.Sprintf("instance is at most %d bytes.", maxServer)))
		return
	}
	if wantsJSON(r) {
		u, err := s.startURL(r, providerID, id)
		if err != nil {
			s.connectFailed(w, r, providerID, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"url": u})
		return
	}
	key, err := connections.NewBrowserKey()
	if err != nil {
		s.connectFailed(w, r, providerID, err)
		return
	}
	u, state, err := s.conns.ConnectURL(r.Context(), providerID, r.URL.Query().Get("instance"), id.OrgID, id.UserID, key)
	if err != nil {
		s.connectFailed(w, r, providerID, err)
		return
	}
	s.setBrowserCookie(w, state, key)
	http.Redirect(w, r, u, http.StatusFound)
}

// connectFailed maps the connections service's errors to answers.
func (s *server) connectFailed(w http.ResponseWriter, r *http.Request, providerID string, err error) {
	var other *connections.ErrOtherMethod
	var pe *providers.Error
	switch {
	case errors.Is(err, connections.ErrUnknownProvider):
		writeError(w, r, s.logger, NotFound("unknown_provider", "No provider "+echo.Quote(providerID)+" is configured."))
	case errors.As(err, &other):
		how := "GET /connections/connect/" + providerID
		if other.Method == "password" {
			how = "POST /connections/" + providerID
		}
		writeError(w, r, s.logger, BadRequest("wrong_connect_method", providerID+" accounts connect with "+other.Method+": "+how+"."))
	case errors.Is(err, connections.ErrServerRequired):
		writeError(w, r, s.logger, BadRequest("invalid_server", "Name the server to connect to: ?instance=example.social (or \"server\" in the body)."))
	case errors.Is(err, connections.ErrServerNotTaken):
		writeError(w, r, s.logger, BadRequest("invalid_server", providerID+" has one server: name none."))
	case errors.Is(err, providers.ErrBadServer):
		// The detail (what it resolved to, which resolver) stays in the
		// log: an answer must not map PostFlow's network for its users.
		s.logger.WarnContext(r.Context(), "connect refused: not a server PostFlow connects to", "provider", providerID, "error", err)
		writeError(w, r, s.logger, BadRequest("invalid_server", "Not a server PostFlow can connect to: name a public server by its host name (example.social), reachable over https."))
	case errors.Is(err, connections.ErrLogin):
		msg := "The network refused the identifier and password; check them (use an app password)."
		if errors.As(err, &pe) && pe.Message != "" {
			// Providers build messages from the network's answer and
			// their own words, never from the password or a token.
			msg = "The network refused the login: " + pe.Message
		}
		writeError(w, r, s.logger, Unprocessable("login_refused", msg))
	case errors.As(err, &pe):
		// The network did not answer as it should: nothing was connected.
		s.logger.WarnContext(r.Context(), "connect failed at the network", "provider", providerID, "error", err)
		writeError(w, r, s.logger, &Error{http.StatusBadGateway, "network_error", "The network did not complete the connection; try again."})
	default:
		writeError(w, r, s.logger, Unavailable("state_store_unavailable", "Could not start the connection; try again."))
		s.logger.ErrorContext(r.Context(), "connect failed", "provider", providerID, "error", err)
	}
}

// startURL makes a start ticket and returns the URL that redeems it: on the
// host of the provider's callback, where the cookie must be set for the
// callback to see it, at the path the callback's path implies.
func (s *server) startURL(r *http.Request, providerID string, id Identity) (string, error) {
	cb, err := s.conns.CallbackURL(providerID)
	if err != nil {
		return "", err
	}
	ticket, err := s.conns.StartTicket(r.Context(), providerID, r.URL.Query().Get("instance"), id.OrgID, id.UserID)
	if err != nil {
		return "", err
	}
	escaped := url.PathEscape(providerID)
	prefix, ok := strings.CutSuffix(cb.Path, "/connections/callback/"+escaped)
	if !ok {
		prefix = ""
	}
	u := url.URL{Scheme: cb.Scheme, Host: cb.Host, Path: prefix + "/connections/connect/" + escaped + "/start"}
	u.RawQuery = url.Values{"ticket": {ticket}}.Encode()
	return u.String(), nil
}

// start redeems a start ticket in the browser that submits it: it sets the
// browser-binding cookie on this top-level navigation (a cookie set on a
// fetch's answer is a third-party cookie where the frontend and the API are
// different sites, and browsers drop those) and sends the browser on to the
// provider. Only a form POST from the frontend's origin is taken: the
// browser sends Origin on every POST and a page cannot forge it, so an
// attacker who hands a victim their own ticket (to connect the victim's
// network account into the attacker's organization) gets nothing. Any
// failure lands on the frontend with ?error=<code>.
func (s *server) start(w http.ResponseWriter, r *http.Request) {
	providerID := chi.URLParam(r, "providerId")
	if s.frontendOrigin == "" || requestOrigin(r) != s.frontendOrigin {
		s.logger.WarnContext(r.Context(), "oauth start refused: not submitted from the frontend", "provider", providerID)
		s.landOnFrontend(w, r, url.Values{"error": {"invalid_start"}}, http.StatusSeeOther)
		return
	}
	key, err := connections.NewBrowserKey()
	if err == nil {
		var u, state string
		if u, state, err = s.conns.Start(r.Context(), providerID, r.URL.Query().Get("ticket"), key); err == nil {
			s.setBrowserCookie(w, state, key)
			http.Redirect(w, r, u, http.StatusSeeOther)
			return
		}
	}
	code := "server_error"
	var ce *connections.CallbackError
	if errors.As(err, &ce) {
		code = ce.Code
	}
	s.logger.WarnContext(r.Context(), "oauth start failed", "provider", providerID, "code", code, "error", err)
	s.landOnFrontend(w, r, url.Values{"error": {code}}, http.StatusSeeOther)
}

func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(mt, "application/json") {
			return true
		}
	}
	return false
}

// callback lands the browser back on the frontend, connected or with an
// error code. It never answers JSON: a person's browser is on this request.
// It completes only with the cookie of the browser that started the
// connection (other_browser otherwise, and the state stays for that one).
func (s *server) callback(w http.ResponseWriter, r *http.Request) {
	providerID := chi.URLParam(r, "providerId")
	state := r.URL.Query().Get("state")
	a, err := s.conns.Callback(r.Context(), providerID, r.URL.Query(), s.heldBrowserKey(r, state))
	// The cookie has served: connected, or the state is spent, unknown
	// or another browser's. Expired now rather than in 600 s, so that
	// connects begun one after another do not pile cookies up.
	if _, cerr := r.Cookie(s.browserCookieName(state)); cerr == nil {
		http.SetCookie(w, &http.Cookie{Name: s.browserCookieName(state), Path: "/", MaxAge: -1,
			HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode})
	}
	q := url.Values{}
	if err != nil {
		code := "exchange_failed"
		var ce *connections.CallbackError
		if errors.As(err, &ce) {
			code = ce.Code
		}
		// The error text may name the provider's answer; it never holds a
		// token or the code (the exchange errors are built without them).
		s.logger.WarnContext(r.Context(), "oauth callback failed", "provider", providerID, "code", code, "error", err)
		q.Set("error", code)
	} else {
		q.Set("connected", "1")
		_ = a
	}
	s.landOnFrontend(w, r, q, http.StatusFound)
}

func (s *server) landOnFrontend(w http.ResponseWriter, r *http.Request, q url.Values, status int) {
	target := s.frontendConnections()
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), status)
}

// browserCookieName is the name of the cookie that binds the connection
// of state to its browser: one per connection, so that connections begun
// at once (two tabs, or a start POSTed cross-site, which carries no
// SameSite=Lax cookie to reuse) do not overwrite each other's. With
// Secure, the __Host- prefix makes browsers refuse the cookie unless this
// host set it (Secure, Path=/, no Domain), so a sibling subdomain cannot
// plant a key it knows.
func (s *server) browserCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	name := "postflow_oauth_" + hex.EncodeToString(sum[:8])
	if s.secureCookies {
		return "__Host-" + name
	}
	return name
}

// heldBrowserKey returns the key of the request's cookie for state, or ""
// when it has none of the right form.
func (s *server) heldBrowserKey(r *http.Request, state string) string {
	if c, err := r.Cookie(s.browserCookieName(state)); err == nil && connections.ValidBrowserKey(c.Value) {
		return c.Value
	}
	return ""
}

// setBrowserCookie sets the key of the connection of state (which names
// the cookie; the authorize URL need not carry it: with PAR it does not):
// HttpOnly (no script reads it), SameSite=Lax (sent on the provider's
// top-level redirect to the callback, not on cross-site subrequests),
// Secure outside development, for as long as a state lives.
func (s *server) setBrowserCookie(w http.ResponseWriter, state, key string) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.browserCookieName(state),
		Value:    key,
		Path:     "/",
		MaxAge:   int(oauthstate.TTL / time.Second),
		HttpOnly: true,
		Secure:   s.secureCookies,
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *server) frontendConnections() *url.URL {
	u, _ := url.Parse(s.frontendURL) // Validated by config.
	u.Path = strings.TrimRight(u.Path, "/") + "/connections"
	return u
}

func (s *server) listConnections(w http.ResponseWriter, r *http.Request) {
	list, err := s.conns.List(r.Context(), identityOf(r.Context()).OrgID)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	if list == nil {
		list = []connections.Account{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": list})
}

func (s *server) disconnect(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	err = s.conns.Disconnect(r.Context(), identityOf(r.Context()).OrgID, id)
	if errors.Is(err, connections.ErrNotFound) {
		writeError(w, r, s.logger, NotFound("connection_not_found", "No such connection."))
		return
	}
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
