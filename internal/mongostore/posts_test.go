package mongostore_test

import (
	"context"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/posts"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// A published result is never overwritten by another status, on the path
// the store takes on FerretDB and on the one it takes on MongoDB; the
// attempts still add up.
func TestSaveResultKeepsPublished(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(*testing.T) *mongostore.Store
	}{
		{"as detected", func(t *testing.T) *mongostore.Store { return mongotest.Store(t) }},
		{"MongoDB's path", func(t *testing.T) *mongostore.Store { s := mongotest.Store(t); s.AssumeMongoDB(); return s }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := tt.store(t).Posts()
			ctx := context.Background()
			at := time.Now().UTC().Truncate(time.Millisecond)
			save := func(r posts.Result) {
				t.Helper()
				r.PostID, r.SocialAccountID = "p1", "a1"
				if err := store.SaveResult(ctx, &r); err != nil {
					t.Fatal(err)
				}
			}
			save(posts.Result{Status: posts.ResultPublishing, Attempts: 1, AttemptedAt: &at})
			save(posts.Result{Status: posts.ResultPending, ErrorCode: "HTTP_503"})
			save(posts.Result{Status: posts.ResultPublishing, Attempts: 1, AttemptedAt: &at})
			save(posts.Result{Status: posts.ResultPublished, PlatformPostID: "urn:li:share:1", PublishedAt: &at})
			for _, late := range []posts.ResultStatus{posts.ResultFailed, posts.ResultUnknown, posts.ResultPublishing} {
				save(posts.Result{Status: late, ErrorCode: "CANCELLED"})
			}
			r, err := store.Result(ctx, "p1", "a1")
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != posts.ResultPublished || r.PlatformPostID != "urn:li:share:1" || r.ErrorCode != "" || r.Attempts != 2 || !r.AttemptedAt.Equal(at) {
				t.Errorf("result = %+v, want published after 2 attempts", r)
			}
		})
	}
}
