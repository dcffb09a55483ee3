package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/providers"
)

type providerView struct {
	ID           string                 `json:"id"`
	Name         string                 `json:"name"`
	Capabilities providers.Capabilities `json:"capabilities"`
}

func (s *server) listProviders(w http.ResponseWriter, r *http.Request) {
	out := []providerView{}
	for _, p := range s.conns.Providers() {
		out = append(out, providerView{ID: p.ID(), Name: p.Name(), Capabilities: p.Capabilities()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

// connect starts OAuth: a 302 to the provider, or {"url"} for a frontend
// that calls with fetch (a navigation cannot carry a Bearer header).
func (s *server) connect(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	providerID := chi.URLParam(r, "providerId")
	u, err := s.conns.ConnectURL(r.Context(), providerID, id.OrgID, id.UserID)
	if errors.Is(err, connections.ErrUnknownProvider) {
		writeError(w, r, s.logger, NotFound("unknown_provider", "No provider "+providerID+" is configured."))
		return
	}
	if err != nil {
		writeError(w, r, s.logger, Unavailable("state_store_unavailable", "Could not start the connection; try again."))
		s.logger.ErrorContext(r.Context(), "connect failed", "provider", providerID, "error", err)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]string{"url": u})
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
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
func (s *server) callback(w http.ResponseWriter, r *http.Request) {
	providerID := chi.URLParam(r, "providerId")
	a, err := s.conns.Callback(r.Context(), providerID, r.URL.Query())
	target := s.frontendConnections()
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
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
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
