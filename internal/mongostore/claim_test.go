package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/posts"
)

// newPost stores a post of org-a in status.
func newPost(t *testing.T, store *mongostore.Posts, status posts.Status) *posts.Post {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	p, err := store.Create(context.Background(), &posts.Post{OrganizationID: "org-a", Content: "hi",
		SocialAccountIDs: []string{"a1"}, Status: status, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// claimed is the token of the claim err reports, "" if it reports none.
func claimed(err error) string {
	var held *posts.ClaimedError
	if errors.As(err, &held) {
		return held.Claim.Token
	}
	return ""
}

func isStatus(err error, s posts.Status) bool {
	var se *posts.StatusError
	return errors.As(err, &se) && se.Status == s
}

// The unpublish claim's writes, one after another: each checks the claim
// and the status and says which failed, on the path the store takes on
// FerretDB and on the one it takes on MongoDB.
func TestUnpublishClaim(t *testing.T) {
	for _, tt := range paths {
		t.Run(tt.name, func(t *testing.T) {
			store, ctx := postsStore(t, tt.mongoDB), context.Background()
			at := time.Now().UTC().Truncate(time.Millisecond)
			claimOf := func(id string) *posts.UnpublishClaim {
				t.Helper()
				c, err := store.UnpublishClaimOf(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}

			draft := newPost(t, store, posts.StatusDraft)
			if err := store.ClaimUnpublish(ctx, draft.ID, posts.UnpublishClaim{Token: "t0", At: at}, ""); !isStatus(err, posts.StatusDraft) {
				t.Fatalf("claim of a draft: %v, want a StatusError", err)
			}
			if err := store.ClaimUnpublish(ctx, "6b0d107e28864fc46deb4d57", posts.UnpublishClaim{Token: "t0", At: at}, ""); !errors.Is(err, posts.ErrNotFound) {
				t.Fatalf("claim of no post: %v", err)
			}

			p := newPost(t, store, posts.StatusPublished)
			if err := store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: "t1", At: at}, ""); err != nil {
				t.Fatal(err)
			}
			if err := store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: "t2", At: at}, ""); claimed(err) != "t1" {
				t.Fatalf("a second claim: %v, want claimed by t1", err)
			}
			if err := store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: "t2", At: at}, "t9"); claimed(err) != "t1" {
				t.Fatalf("taking over another claim: %v, want claimed by t1", err)
			}
			if _, err := store.SetStatusIf(ctx, p, posts.StatusQueued, "", posts.StatusPublished); claimed(err) != "t1" {
				t.Fatalf("requeue while claimed: %v", err)
			}
			if err := store.DeleteIf(ctx, "org-a", p.ID, "", posts.StatusPublished); claimed(err) != "t1" {
				t.Fatalf("delete while claimed: %v", err)
			}
			if err := store.DeleteIf(ctx, "org-b", p.ID, "", posts.StatusPublished); !errors.Is(err, posts.ErrNotFound) {
				t.Fatalf("another organization's delete: %v", err)
			}

			if err := store.NameUnpublishRun(ctx, p.ID, "t9", "run-9"); !errors.Is(err, posts.ErrNotFound) {
				t.Fatalf("naming the run of another claim: %v", err)
			}
			if err := store.NameUnpublishRun(ctx, p.ID, "t1", "run-1"); err != nil {
				t.Fatal(err)
			}
			if c := claimOf(p.ID); c == nil || c.Token != "t1" || c.RunID != "run-1" || !c.At.Equal(at) {
				t.Fatalf("claim = %+v", c)
			}
			// Released only by its run (or its token); again, no error.
			if err := store.ReleaseUnpublish(ctx, p.ID, "", "run-2"); err != nil || claimOf(p.ID) == nil {
				t.Fatalf("another run's release: %v, claim %+v", err, claimOf(p.ID))
			}
			for range 2 {
				if err := store.ReleaseUnpublish(ctx, p.ID, "", "run-1"); err != nil {
					t.Fatal(err)
				}
			}
			if c := claimOf(p.ID); c != nil {
				t.Fatalf("released, claim = %+v", c)
			}

			// A stale claim taken over: by an unpublish, then by a
			// publish again, which clears it.
			if err := store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: "t3", At: at}, ""); err != nil {
				t.Fatal(err)
			}
			if err := store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: "t4", At: at}, "t3"); err != nil {
				t.Fatalf("take over t3: %v", err)
			}
			if _, err := store.SetStatusIf(ctx, p, posts.StatusQueued, "", posts.StatusFailed); claimed(err) != "t4" {
				t.Fatalf("requeue from the wrong status while claimed: %v (the claim is said first)", err)
			}
			queued, err := store.SetStatusIf(ctx, p, posts.StatusQueued, "t4", posts.StatusPublished)
			if err != nil || queued.Status != posts.StatusQueued {
				t.Fatalf("requeue taking over t4: %+v, %v", queued, err)
			}
			if c := claimOf(p.ID); c != nil {
				t.Fatalf("a publish again left the claim %+v", c)
			}
			if _, err := store.SetStatusIf(ctx, p, posts.StatusQueued, "", posts.StatusPublished); !isStatus(err, posts.StatusQueued) {
				t.Fatalf("requeue of a queued post: %v", err)
			}
			if err := store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: "t5", At: at}, ""); !isStatus(err, posts.StatusQueued) {
				t.Fatalf("claim of a queued post: %v", err)
			}
			if err := store.DeleteIf(ctx, "org-a", p.ID, "", posts.StatusPublished); !isStatus(err, posts.StatusQueued) {
				t.Fatalf("delete of a post that moved on: %v", err)
			}
			if err := store.DeleteIf(ctx, "org-a", p.ID, "", posts.StatusQueued); err != nil {
				t.Fatal(err)
			}
			if _, err := store.Get(ctx, "org-a", p.ID); !errors.Is(err, posts.ErrNotFound) {
				t.Fatalf("deleted post read: %v", err)
			}
			if err := store.ReleaseUnpublish(ctx, p.ID, "t5", ""); err != nil {
				t.Fatalf("release on a deleted post: %v", err)
			}
		})
	}
}

// Of an unpublish claim and a publish again (or a delete, or another
// claim) of one post at once, exactly one wins, every time: the check and
// the write are one step on the server as the store finds it (on
// FerretDB, under the document's lock).
func TestUnpublishClaimRaces(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	at := time.Now().UTC()
	rivals := map[string]func(p *posts.Post, i int) error{
		"claim": func(p *posts.Post, i int) error {
			return store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: fmt.Sprintf("r%d", i), At: at}, "")
		},
		"publish again": func(p *posts.Post, _ int) error {
			_, err := store.SetStatusIf(ctx, p, posts.StatusQueued, "", posts.StatusPublished)
			return err
		},
		"delete": func(p *posts.Post, _ int) error { return store.DeleteIf(ctx, "org-a", p.ID, "", posts.StatusPublished) },
	}
	for name, rival := range rivals {
		t.Run(name, func(t *testing.T) {
			for round := range 20 {
				p := newPost(t, store, posts.StatusPublished)
				errs := make([]error, 4)
				var wg sync.WaitGroup
				for i := range errs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if i%2 == 0 {
							errs[i] = store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: fmt.Sprintf("c%d", i), At: at}, "")
						} else {
							errs[i] = rival(p, i)
						}
					}()
				}
				wg.Wait()
				won := 0
				for _, err := range errs {
					switch {
					case err == nil:
						won++
					case claimed(err) != "", isStatus(err, posts.StatusQueued), errors.Is(err, posts.ErrNotFound):
					default:
						t.Fatalf("round %d: %v", round, err)
					}
				}
				if won != 1 {
					t.Fatalf("round %d: %d of the writes went ahead (%v), want 1", round, won, errs)
				}
			}
		})
	}
}

// The status writes race as the try-out raced them through the API: a
// publish queuing a draft against a delete of it (a run publishing a post
// that no longer exists), and against an edit writing over the status it
// read (a queued post put back to draft). Of each pair exactly one goes
// ahead, and the loser learns the post moved or went.
func TestStatusWritesRace(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	queue := func(p *posts.Post) error {
		_, err := store.SetStatus(ctx, p, posts.StatusQueued, posts.StatusDraft)
		return err
	}
	rivals := map[string]func(p *posts.Post) error{
		"delete": func(p *posts.Post) error { return store.DeleteIf(ctx, "org-a", p.ID, "", posts.StatusDraft) },
		"edit": func(p *posts.Post) error {
			edited := *p
			edited.Content = "edited"
			_, err := store.Update(ctx, &edited, posts.StatusDraft)
			return err
		},
	}
	for name, rival := range rivals {
		t.Run(name, func(t *testing.T) {
			for round := range 20 {
				p := newPost(t, store, posts.StatusDraft)
				var queued, other error
				var wg sync.WaitGroup
				wg.Go(func() { queued = queue(p) })
				wg.Go(func() { other = rival(p) })
				wg.Wait()
				lost := func(err error) bool {
					return errors.Is(err, posts.ErrConflict) || errors.Is(err, posts.ErrNotFound) || isStatus(err, posts.StatusQueued)
				}
				switch {
				case queued == nil && lost(other), other == nil && lost(queued) && name == "delete":
				case name == "edit" && queued == nil && other == nil:
					// An edit first, then the publish: both may go, in
					// that order only; the post must end queued.
					got, err := store.GetByID(ctx, p.ID)
					if err != nil || got.Status != posts.StatusQueued {
						t.Fatalf("round %d: edit and queue both went ahead, post %+v, %v; want it queued", round, got, err)
					}
				default:
					t.Fatalf("round %d: queue = %v, %s = %v; want exactly one to go ahead", round, queued, name, other)
				}
			}
		})
	}
}
