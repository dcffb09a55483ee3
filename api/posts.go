package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/postflow/postflow/internal/ids"
	"github.com/postflow/postflow/posts"
)

// postError maps the posts domain's errors to the spec's answers: the one
// place their statuses are chosen (a Malformed input 400, an Unacceptable
// one 422).
func postError(err error) error {
	var inv *posts.InvalidError
	var published *posts.PublishedAccountsError
	var notPublished *posts.NotPublishedAccountsError
	var state *posts.StatusError
	switch {
	case errors.As(err, &inv) && inv.Kind == posts.Malformed:
		return BadRequest(inv.Code, inv.Message)
	case errors.As(err, &inv) && inv.Details != nil:
		return &DetailedError{Err: Unprocessable(inv.Code, inv.Message), Details: inv.Details}
	case errors.As(err, &inv):
		return Unprocessable(inv.Code, inv.Message)
	case errors.Is(err, posts.ErrNotFound):
		return NotFound("post_not_found", "No such post.")
	case errors.Is(err, posts.ErrAlreadyPublished):
		return Conflict("already_published", "The post is published; publish it again with ?again=true.")
	case errors.Is(err, posts.ErrNothingToRetry):
		return Conflict("nothing_to_retry", "No account of the post failed; an account whose outcome is unknown is retried only when named in accounts.")
	case errors.As(err, &published):
		return &DetailedError{Err: Conflict("account_published", "The post is published to "+strings.Join(published.AccountIDs, ", ")+
			"; a retry never publishes to an account twice. Leave it out of accounts."), Details: map[string][]string{"accounts": published.AccountIDs}}
	case errors.As(err, &notPublished):
		return &DetailedError{Err: Conflict("account_not_published", "The post is not published to "+strings.Join(notPublished.AccountIDs, ", ")+
			"; nothing PostFlow published is there to delete. Leave it out of accounts."), Details: map[string][]string{"accounts": notPublished.AccountIDs}}
	case errors.Is(err, posts.ErrNothingToUnpublish):
		return Conflict("nothing_to_unpublish", "The post is published to no account it is not already unpublished from; naming one that is answers at once: it stays unpublished.")
	case errors.Is(err, posts.ErrUnpublishRunning):
		return Conflict("unpublish_running", "An unpublish of this post is running; its outcome will be in the post's results and a post.unpublished event.")
	case errors.As(err, &state):
		return Conflict("post_state_conflict", fmt.Sprintf("The post is %s; this needs it %s.", state.Status, state.Wanted()))
	case errors.Is(err, posts.ErrConflict):
		return Conflict("post_state_conflict", "The post's status does not allow this (published, publishing or cancelled).")
	}
	return err
}

func (s *server) createPost(w http.ResponseWriter, r *http.Request) {
	var in posts.Input
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	p, err := s.posts.Create(r.Context(), identityOf(r.Context()).OrgID, in)
	if err != nil {
		writeError(w, r, s.logger, postError(err))
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

// pathID reads the id in the path parameter name, in its canonical
// spelling (ids.Parse): a post or account id spelled in capitals is the
// same resource, and what is no id at all is a 400 invalid_id, not a 404.
func pathID(r *http.Request, name string) (string, error) {
	id, err := ids.Parse(chi.URLParam(r, name))
	if err != nil {
		return "", BadRequest("invalid_id", fmt.Sprintf("%s in the path must be an id (24 hex digits).", name))
	}
	return id, nil
}

const defaultPageSize, maxPageSize = 20, 100

// pageQuery reads a list's page: ?before=, an id of what (the next of the
// page before; 400 invalid_id naming what), and ?limit=, 1 to
// maxPageSize (defaultPageSize when absent; else 400 invalid_limit).
func pageQuery(q url.Values, what string) (limit int, before string, err error) {
	if v := q.Get("before"); v != "" {
		if before, err = ids.Parse(v); err != nil {
			return 0, "", BadRequest("invalid_id", "before must be "+what+" id (the next of the page before).")
		}
	}
	if limit, err = limitQuery(q, defaultPageSize, maxPageSize); err != nil {
		return 0, "", err
	}
	return limit, before, nil
}

// limitQuery reads ?limit=, a whole number from 1 to most (def when
// absent); else a 400 invalid_limit.
func limitQuery(q url.Values, def, most int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, BadRequest("invalid_limit", fmt.Sprintf("limit must be a whole number from 1 to %d.", most))
	}
	return n, nil
}

// page is a list's answer: its items under key and, when the page is
// full (n of limit), next: the last item's id, the next page's before.
func page(key string, items any, n, limit int, lastID func() string) map[string]any {
	out := map[string]any{key: items}
	if n == limit {
		out["next"] = lastID()
	}
	return out
}

func (s *server) listPosts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := posts.ListFilter{Status: posts.Status(q.Get("status"))}
	var err error
	if f.Limit, f.Before, err = pageQuery(q, "a post"); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	switch f.Status {
	case "", posts.StatusDraft, posts.StatusScheduled, posts.StatusQueued, posts.StatusPublishing,
		posts.StatusPublished, posts.StatusFailed, posts.StatusCancelled:
	default:
		writeError(w, r, s.logger, BadRequest("invalid_status", "status must be one of draft, scheduled, queued, publishing, published, failed, cancelled."))
		return
	}
	list, err := s.posts.List(r.Context(), identityOf(r.Context()).OrgID, f)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, page("posts", list, len(list), f.Limit, func() string { return list[len(list)-1].ID }))
}

// postWithResults is GET /posts/{id}: the post and one result per account
// that has one, and with include=attempts each account's attempts.
type postWithResults struct {
	*posts.Post
	Results  []posts.Result             `json:"results"`
	Attempts map[string][]posts.Attempt `json:"attempts,omitempty"`
}

func (s *server) getPost(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	attempts := false
	for _, v := range r.URL.Query()["include"] {
		for _, part := range strings.Split(v, ",") {
			if part != "attempts" {
				writeError(w, r, s.logger, BadRequest("invalid_include", "include takes attempts, or nothing."))
				return
			}
			attempts = true
		}
	}
	p, results, err := s.posts.Get(r.Context(), identityOf(r.Context()).OrgID, id)
	if err != nil {
		writeError(w, r, s.logger, postError(err))
		return
	}
	out := postWithResults{Post: p, Results: results}
	if attempts {
		if out.Attempts, err = s.posts.Attempts(r.Context(), p); err != nil {
			writeError(w, r, s.logger, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) updatePost(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	var in posts.Input
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	p, err := s.posts.Update(r.Context(), identityOf(r.Context()).OrgID, id, in)
	if err != nil {
		writeError(w, r, s.logger, postError(err))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *server) deletePost(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	if err := s.posts.Delete(r.Context(), identityOf(r.Context()).OrgID, id); err != nil {
		writeError(w, r, s.logger, postError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "postId")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	again := false
	if v := r.URL.Query().Get("again"); v != "" {
		if again, err = strconv.ParseBool(v); err != nil {
			writeError(w, r, s.logger, BadRequest("invalid_again", "again must be true or false."))
			return
		}
	}
	wf, run, err := s.posts.Publish(r.Context(), identityOf(r.Context()).OrgID, id, again)
	if err != nil {
		writeError(w, r, s.logger, postError(err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"workflowId": wf, "runId": run})
}

// accountsRequest is the body of POST /posts/{id}/retry and
// /posts/{id}/unpublish, which may be absent.
type accountsRequest struct {
	// Accounts names the accounts to act on; absent or empty: the
	// action's default (retry: every account that failed; unpublish:
	// every account the post is published to and not unpublished from).
	Accounts []string `json:"accounts"`
}

// accountsAction answers a POST /posts/{id}/... that starts a run for
// some of the post's accounts (posts.Service.Retry, .Unpublish): 202 with
// the run and the accounts it acts on, in the post's order.
func (s *server) accountsAction(do func(ctx context.Context, orgID, id string, accountIDs []string) (wf, run string, chosen []string, err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "id")
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		var in accountsRequest
		if r.ContentLength != 0 {
			if err := decodeJSON(r, &in); err != nil {
				writeError(w, r, s.logger, err)
				return
			}
		}
		wf, run, chosen, err := do(r.Context(), identityOf(r.Context()).OrgID, id, in.Accounts)
		if err != nil {
			writeError(w, r, s.logger, postError(err))
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"workflowId": wf, "runId": run, "accounts": chosen})
	}
}
