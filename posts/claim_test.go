package posts_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
)

// deleter is a network whose posts can be deleted (unpublished).
type deleter struct{ network }

func (d deleter) Rules() providers.Rules { return providers.Rules{Delete: true} }

// unpublishRunner pretends to run unpublish runs: a run started is going
// until a test ends it; startErr fails the next starts.
type unpublishRunner struct {
	mu       sync.Mutex
	running  map[string]bool
	starts   int
	startErr error
	// block, when set, holds each start until it is closed or the
	// start's context is done.
	block chan struct{}
	// started, when set, runs after a start succeeds (the client going
	// away at that moment).
	started func()
	// hide answers this many Unpublishing calls "not running" before the
	// truth: a run that starts between the check made before the claim
	// is read and the one that judges the claim stale.
	hide int
}

func (r *unpublishRunner) StartUnpublish(ctx context.Context, p *posts.Post, _ []string) (string, error) {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.startErr != nil {
		return "", r.startErr
	}
	if r.running[p.ID] {
		return "", posts.ErrUnpublishRunning
	}
	r.running[p.ID] = true
	r.starts++
	if r.started != nil {
		r.started()
	}
	return fmt.Sprintf("run-%d", r.starts), nil
}

func (r *unpublishRunner) Unpublishing(_ context.Context, postID string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hide > 0 {
		r.hide--
		return false, nil
	}
	return r.running[postID], nil
}

// end ends the post's run without its FinishUnpublish (terminated).
func (r *unpublishRunner) end(postID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running[postID] = false
}

type claimWorld struct {
	db      *mongostore.Store
	store   *mongostore.Posts
	svc     *posts.Service
	runner  *unpublishRunner
	reg     *providers.Registry
	account string
}

func newClaimWorld(t *testing.T) *claimWorld {
	t.Helper()
	store := mongotest.Store(t)
	reg, err := providers.NewRegistry(deleter{network{id: "del"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.Accounts().Upsert(context.Background(), &connections.Account{OrganizationID: "org-a", Platform: "del", PlatformUserID: "u",
		DisplayName: "Ada", AccessToken: "sealed", Status: connections.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	runner := &unpublishRunner{running: map[string]bool{}}
	svc := posts.NewService(store.Posts(), store.Accounts(), reg, startRunner{}, nil).WithUnpublisher(runner)
	return &claimWorld{db: store, store: store.Posts(), svc: svc, runner: runner, reg: reg, account: a.ID}
}

// published stores a post published to the world's account.
func (w *claimWorld) published(t *testing.T) *posts.Post {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	p, err := w.store.Create(ctx, &posts.Post{OrganizationID: "org-a", Content: "hello", SocialAccountIDs: []string{w.account},
		Status: posts.StatusPublished, PublishedAt: &now, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.SaveResult(ctx, &posts.Result{PostID: p.ID, SocialAccountID: w.account, Status: posts.ResultPublished,
		PlatformPostID: "urn:1", PublishedAt: &now}); err != nil {
		t.Fatal(err)
	}
	return p
}

// claim reads the post's unpublish claim as stored (nil: none).
func (w *claimWorld) claim(t *testing.T, id string) *posts.UnpublishClaim {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Claim *struct {
			Token string `bson:"token"`
			RunID string `bson:"runId"`
		} `bson:"unpublishClaim"`
	}
	if err := w.db.DB.Collection("posts").FindOne(context.Background(), bson.D{{Key: "_id", Value: oid}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Claim == nil {
		return nil
	}
	return &posts.UnpublishClaim{Token: d.Claim.Token, RunID: d.Claim.RunID}
}

// An unpublish and a publish again, or a delete, of one published post
// at once, many times: exactly one goes ahead, the other is refused with
// what the API answers 409 to, and what the winner needs stays (the
// results the run deletes by, or the post).
func TestUnpublishRaces(t *testing.T) {
	rivals := []struct {
		name string
		act  func(w *claimWorld, id string) error
		// won checks what the rival leaves when it went ahead.
		won func(t *testing.T, w *claimWorld, id string)
	}{
		{
			name: "publish again",
			act: func(w *claimWorld, id string) error {
				_, _, err := w.svc.Publish(context.Background(), "org-a", id, true)
				return err
			},
			won: func(t *testing.T, w *claimWorld, id string) {
				if p, err := w.store.GetByID(context.Background(), id); err != nil || p.Status != posts.StatusQueued {
					t.Fatalf("published again: %+v, %v; want queued", p, err)
				}
			},
		},
		{
			name: "delete",
			act:  func(w *claimWorld, id string) error { return w.svc.Delete(context.Background(), "org-a", id) },
			won: func(t *testing.T, w *claimWorld, id string) {
				if _, err := w.store.GetByID(context.Background(), id); !errors.Is(err, posts.ErrNotFound) {
					t.Fatalf("deleted post read: %v", err)
				}
			},
		},
	}
	for _, tt := range rivals {
		t.Run(tt.name, func(t *testing.T) {
			w := newClaimWorld(t)
			ctx := context.Background()
			for round := range 15 {
				p := w.published(t)
				var unpubErr, rivalErr error
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); _, _, _, unpubErr = w.svc.Unpublish(ctx, "org-a", p.ID, nil) }()
				go func() { defer wg.Done(); rivalErr = tt.act(w, p.ID) }()
				wg.Wait()
				switch {
				case unpubErr == nil && rivalErr == nil:
					t.Fatalf("round %d: the unpublish and the %s both went ahead", round, tt.name)
				case unpubErr == nil:
					if !errors.Is(rivalErr, posts.ErrUnpublishRunning) {
						t.Fatalf("round %d: %s lost with %v, want ErrUnpublishRunning", round, tt.name, rivalErr)
					}
					r, err := w.store.Result(ctx, p.ID, w.account)
					if err != nil || r == nil || r.PlatformPostID != "urn:1" {
						t.Fatalf("round %d: the run's result is gone: %+v, %v", round, r, err)
					}
					if c := w.claim(t, p.ID); c == nil || c.RunID == "" {
						t.Fatalf("round %d: the run's claim = %+v", round, c)
					}
				case rivalErr == nil:
					// ErrNothingToUnpublish: it read the post published and
					// its results after the publish again forgot them.
					if !errors.Is(unpubErr, posts.ErrConflict) && !errors.Is(unpubErr, posts.ErrNotFound) && !errors.Is(unpubErr, posts.ErrNothingToUnpublish) {
						t.Fatalf("round %d: the unpublish lost with %v, want a conflict, not found or nothing to unpublish", round, unpubErr)
					}
					if w.runner.running[p.ID] {
						t.Fatalf("round %d: the unpublish lost but its run started", round)
					}
					tt.won(t, w, p.ID)
				default:
					t.Fatalf("round %d: both refused: %v; %v", round, unpubErr, rivalErr)
				}
			}
		})
	}
}

// A claim left behind does not lock the post for ever: once no run of
// the post goes, the next request takes it over; one naming no run
// stands for its grace (a start in flight). A start that fails releases
// the claim; one that ran out of time keeps it (the run may be going).
func TestStaleUnpublishClaim(t *testing.T) {
	ctx := context.Background()
	t.Run("run terminated", func(t *testing.T) {
		w := newClaimWorld(t)
		p := w.published(t)
		if _, _, _, err := w.svc.Unpublish(ctx, "org-a", p.ID, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := w.svc.Publish(ctx, "org-a", p.ID, true); !errors.Is(err, posts.ErrUnpublishRunning) {
			t.Fatalf("publish again during the run: %v", err)
		}
		w.runner.end(p.ID) // terminated in the Web UI: no FinishUnpublish
		if _, _, err := w.svc.Publish(ctx, "org-a", p.ID, true); err != nil {
			t.Fatalf("publish again after the run was terminated: %v", err)
		}
		if c := w.claim(t, p.ID); c != nil {
			t.Fatalf("claim taken over but left: %+v", c)
		}
	})
	t.Run("run ended, unpublish again", func(t *testing.T) {
		w := newClaimWorld(t)
		p := w.published(t)
		if _, _, _, err := w.svc.Unpublish(ctx, "org-a", p.ID, nil); err != nil {
			t.Fatal(err)
		}
		first := w.claim(t, p.ID)
		w.runner.end(p.ID)
		if _, runID, _, err := w.svc.Unpublish(ctx, "org-a", p.ID, nil); err != nil || runID != "run-2" {
			t.Fatalf("unpublish after the first run ended: %s, %v", runID, err)
		}
		if c := w.claim(t, p.ID); c == nil || c.Token == first.Token || c.RunID != "run-2" {
			t.Fatalf("claim = %+v, want the second run's", c)
		}
	})
	for _, tt := range []struct {
		name    string
		age     time.Duration
		running bool
		want    error
	}{
		{name: "no run named, fresh", age: time.Second, want: posts.ErrUnpublishRunning},
		{name: "no run named, past its grace, a run going", age: 3 * time.Minute, running: true, want: posts.ErrUnpublishRunning},
		{name: "no run named, past its grace, none going", age: 3 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newClaimWorld(t)
			p := w.published(t)
			if err := w.store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: "left", At: time.Now().Add(-tt.age)}, ""); err != nil {
				t.Fatal(err)
			}
			w.runner.running[p.ID] = tt.running
			for _, act := range []func() error{
				func() error { _, _, err := w.svc.Publish(ctx, "org-a", p.ID, true); return err },
				func() error { return w.svc.Delete(ctx, "org-a", p.ID) },
			} {
				// The check before the claim sees no run, so that the
				// claim's own judgement (staleClaim) decides.
				w.runner.hide = 1
				if err := act(); !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				if tt.want == nil {
					break // the post moved on
				}
			}
		})
	}
	t.Run("start refused", func(t *testing.T) {
		w := newClaimWorld(t)
		p := w.published(t)
		w.runner.startErr = errors.New("temporal: unavailable")
		if _, _, _, err := w.svc.Unpublish(ctx, "org-a", p.ID, nil); !errors.Is(err, w.runner.startErr) {
			t.Fatalf("unpublish: %v", err)
		}
		if c := w.claim(t, p.ID); c != nil {
			t.Fatalf("a failed start left its claim %+v", c)
		}
	})
	t.Run("start out of time", func(t *testing.T) {
		w := newClaimWorld(t)
		p := w.published(t)
		w.runner.block = make(chan struct{}) // never closed
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if _, _, _, err := w.svc.Unpublish(short, "org-a", p.ID, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("unpublish: %v", err)
		}
		if c := w.claim(t, p.ID); c == nil || c.RunID != "" {
			t.Fatalf("a start that may have happened: claim %+v, want kept, naming no run", c)
		}
	})
}

// A client gone once the run started (its request cancelled) still gets
// the run named in the claim: the run's end releases the claim by that
// name, and without it the post stayed locked against publish again and
// delete for the claim's grace after the run ended.
func TestUnpublishNamesItsRunWhenTheClientLeaves(t *testing.T) {
	w := newClaimWorld(t)
	p := w.published(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.runner.started = cancel
	if _, runID, _, err := w.svc.Unpublish(ctx, "org-a", p.ID, nil); err != nil || runID != "run-1" {
		t.Fatalf("Unpublish = %q, %v", runID, err)
	}
	if c := w.claim(t, p.ID); c == nil || c.RunID != "run-1" {
		t.Fatalf("claim = %+v, want it to name run-1", c)
	}
}
