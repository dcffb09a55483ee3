package posts_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/posts"
)

// beforeUpdate runs meanwhile once, just before the first store write of
// an edit: what another request does between the edit's read and write.
type beforeUpdate struct {
	posts.Store
	once      sync.Once
	meanwhile func()
}

func (b *beforeUpdate) Update(ctx context.Context, p *posts.Post, from ...posts.Status) (*posts.Post, error) {
	b.once.Do(b.meanwhile)
	return b.Store.Update(ctx, p, from...)
}

// An edit derives the status it writes from the one it read (a draft with
// a time becomes scheduled); if the post moved on between the read and
// the write, the edit is refused and the post stays where it moved: a
// post queued meanwhile (its run going) was put back to draft, one whose
// run failed meanwhile back to queued.
func TestEditAgainstAMoveOfThePost(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		from      posts.Status
		meanwhile func(t *testing.T, w *claimWorld, p *posts.Post)
		want      posts.Status
	}{
		{
			name: "a draft published meanwhile", from: posts.StatusDraft, want: posts.StatusQueued,
			meanwhile: func(t *testing.T, w *claimWorld, p *posts.Post) {
				if _, _, err := w.svc.Publish(ctx, "org-a", p.ID, false); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name: "a queued post whose run failed meanwhile", from: posts.StatusQueued, want: posts.StatusFailed,
			meanwhile: func(t *testing.T, w *claimWorld, p *posts.Post) {
				if err := w.store.Finish(ctx, p.ID, posts.StatusFailed, nil, "down", "X"); err != nil {
					t.Error(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newClaimWorld(t)
			now := time.Now().UTC()
			p, err := w.store.Create(ctx, &posts.Post{OrganizationID: "org-a", Content: "before", SocialAccountIDs: []string{w.account},
				Status: tt.from, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			hook := &beforeUpdate{Store: w.store, meanwhile: func() { tt.meanwhile(t, w, p) }}
			edits := posts.NewService(hook, w.db.Accounts(), w.reg, startRunner{}, nil)
			content := "after"
			if _, err := edits.Update(ctx, "org-a", p.ID, posts.Input{Content: &content}); !errors.Is(err, posts.ErrConflict) {
				t.Fatalf("edit: %v, want ErrConflict", err)
			}
			got, err := w.store.GetByID(ctx, p.ID)
			if err != nil || got.Status != tt.want || got.Content != "before" {
				t.Fatalf("post = %+v, %v; want %s, unedited", got, err, tt.want)
			}
		})
	}
}
