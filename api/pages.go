package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/providers"
)

// maxPagesPerAdd bounds one POST /connections/{id}/pages: each page is one
// write, and nobody adds more at once.
const maxPagesPerAdd = 100

// pagesNotGranted is what a member without the organization scopes is told.
const pagesNotGranted = "The member did not grant PostFlow the scopes to see or post as their pages (w_organization_social, rw_organization_admin). Reconnect the member account to grant them."

// listPages answers the pages the member account administers with a
// posting role, as the network says now, and whether each is added.
func (s *server) listPages(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	list, err := s.conns.ListPages(r.Context(), identityOf(r.Context()).OrgID, id)
	if errors.Is(err, providers.ErrPagesNotGranted) {
		// Not a failure: to the frontend, a member with no pages, and why.
		writeJSON(w, http.StatusOK, map[string]any{"pages": []connections.PageChoice{}, "notice": pagesNotGranted})
		return
	}
	if err != nil {
		s.pagesFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pages": list})
}

// addPagesRequest names the pages to add by their platform user ids.
type addPagesRequest struct {
	Pages []string `json:"pages"`
}

// addPages adds pages of the member account as accounts of the
// organization: 201 with them.
func (s *server) addPages(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	var req addPagesRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	if len(req.Pages) == 0 || len(req.Pages) > maxPagesPerAdd {
		writeError(w, r, s.logger, BadRequest("invalid_pages", "pages must list 1 to 100 pages, by id (urn:li:organization:{id})."))
		return
	}
	for _, p := range req.Pages {
		if strings.TrimSpace(p) == "" || len(p) > 200 {
			writeError(w, r, s.logger, BadRequest("invalid_pages", "Each page is its id (urn:li:organization:{id}), as GET /connections/{id}/pages lists it."))
			return
		}
	}
	added, err := s.conns.AddPages(r.Context(), identityOf(r.Context()).OrgID, id, req.Pages)
	if err != nil {
		s.pagesFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"connections": added})
}

// pagesFailed maps the pages errors of the connections service to answers.
func (s *server) pagesFailed(w http.ResponseWriter, r *http.Request, err error) {
	var noPages *connections.ErrNoPages
	var notAdmin *connections.ErrNotAdministered
	var pe *providers.Error
	switch {
	case errors.Is(err, connections.ErrNotFound):
		writeError(w, r, s.logger, NotFound("connection_not_found", "No such connection."))
	case errors.As(err, &noPages):
		writeError(w, r, s.logger, BadRequest("no_pages", "This connection has no pages: "+noPages.Reason+"."))
	case errors.As(err, &notAdmin) && notAdmin.NotGranted:
		writeError(w, r, s.logger, Unprocessable("pages_not_granted", pagesNotGranted))
	case errors.As(err, &notAdmin):
		// The id is the caller's own input, bounded above.
		writeError(w, r, s.logger, Unprocessable("page_not_administered", "The member holds no posting role (ADMINISTRATOR, CONTENT_ADMINISTRATOR, DIRECT_SPONSORED_CONTENT_POSTER) on "+notAdmin.Page+" now; nothing was added."))
	case errors.As(err, &pe) && pe.Kind == providers.KindAuth:
		writeError(w, r, s.logger, Conflict("connection_expired", "The network refused the member account's token; reconnect it first."))
	case errors.As(err, &pe):
		s.logger.WarnContext(r.Context(), "listing pages failed at the network", "provider", pe.Provider, "error", err)
		writeError(w, r, s.logger, &Error{http.StatusBadGateway, "network_error", "The network did not list the pages; try again."})
	default:
		writeError(w, r, s.logger, err)
	}
}
