package api

import (
	"context"
	"net/http"
	"time"

	"github.com/postflow/postflow/posts"
)

// OverdueOptions serve GET /operator/overdue-posts: the posts of every
// organization whose time passed by more than After without a final state.
type OverdueOptions struct {
	// List returns the overdue posts now, longest overdue first, at most
	// limit (posts.OverdueWatch.List); nil serves no route.
	List func(ctx context.Context, limit int) ([]posts.Overdue, error)
	// After is the margin (OVERDUE_AFTER).
	After time.Duration
	// Anonymous answers without an operator's token: for postflow dev
	// only, whose API answers loopback hosts alone.
	Anonymous bool
}

// overduePost is one post of the operator's list: ids, states and times,
// never content (the operator sees every organization).
type overduePost struct {
	posts.Overdue
	// OverdueSeconds is how long past its due time the post is.
	OverdueSeconds int64 `json:"overdueSeconds"`
}

// overduePosts answers the operator's list: {"overdueAfterSeconds",
// "posts": [...]}, ?limit= from 1 to 500 (100 by default).
func (s *server) overduePosts(opts OverdueOptions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, err := limitQuery(r.URL.Query(), 100, 500)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		list, err := opts.List(r.Context(), limit)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		now := time.Now()
		out := make([]overduePost, 0, len(list))
		for _, o := range list {
			out = append(out, overduePost{Overdue: o, OverdueSeconds: int64(now.Sub(o.DueAt) / time.Second)})
		}
		writeJSON(w, http.StatusOK, map[string]any{"overdueAfterSeconds": int64(opts.After / time.Second), "posts": out})
	}
}
