package mongostore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/media"
)

// The media collection keeps what the library records, answers only the
// item's organization, pages newest first, and deletes for its owner only.
func TestMediaItems(t *testing.T) {
	ctx := context.Background()
	store := mongotest.Store(t).Media()
	if err := store.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	var ids []string
	for i, org := range []string{"org-a", "org-a", "org-b", "org-a"} {
		in := &media.Item{ID: store.NewID(), OrganizationID: org, Type: media.TypePNG, Width: 10 + i, Height: 20,
			Size: 1234, SHA256: "ab12", Filename: "a.png", CreatedAt: at}
		got, err := store.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if *got != *in {
			t.Errorf("created %+v, want %+v", got, in)
		}
		ids = append(ids, in.ID)
	}
	got, err := store.Get(ctx, "org-a", ids[0])
	if err != nil || got.Width != 10 || !got.CreatedAt.Equal(at) || got.SHA256 != "ab12" {
		t.Errorf("get = %+v, %v", got, err)
	}
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"other org's get", func() error { _, err := store.Get(ctx, "org-b", ids[0]); return err }()},
		{"other org's delete", store.Delete(ctx, "org-b", ids[0])},
		{"no such id", func() error { _, err := store.GetByID(ctx, "ffffffffffffffffffffffff"); return err }()},
		{"not an id", func() error { _, err := store.GetByID(ctx, "nope"); return err }()},
	} {
		if !errors.Is(tt.err, media.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", tt.name, tt.err)
		}
	}
	if _, err := store.GetByID(ctx, ids[0]); err != nil {
		t.Errorf("another org's delete removed the item: %v", err)
	}

	page, err := store.List(ctx, "org-a", 2, "")
	if err != nil || len(page) != 2 || page[0].ID != ids[3] || page[1].ID != ids[1] {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	page, err = store.List(ctx, "org-a", 2, page[1].ID)
	if err != nil || len(page) != 1 || page[0].ID != ids[0] {
		t.Fatalf("second page = %+v, %v", page, err)
	}

	if err := store.Delete(ctx, "org-a", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, "org-a", ids[0]); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("after delete: err = %v", err)
	}
}

// A delete's mark: readers still see the item, a post (Usable) does not
// while it is fresh, waits for it to end, and ignores one left by a dead
// process; a marked item can be deleted.
func TestMediaDeletingMark(t *testing.T) {
	ctx := context.Background()
	db := mongotest.Store(t)
	store := db.Media()
	usable := store.Usable()
	newItem := func() string {
		it, err := store.Create(ctx, &media.Item{ID: store.NewID(), OrganizationID: "org-a", Type: media.TypePNG, Width: 1, Height: 1,
			Size: 1, SHA256: "ab", CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return it.ID
	}
	for _, tt := range []struct {
		name   string
		setup  func(id string)
		usable bool
		// wait is how long Usable().Get waits on the mark (markWait if 0).
		wait time.Duration
	}{
		{"unmarked", func(string) {}, true, 0},
		{"marked", func(id string) {
			if err := store.MarkDeleting(ctx, "org-a", id, true); err != nil {
				t.Fatal(err)
			}
		}, false, 0},
		// A generous wait: the unmark is a FerretDB read and write that a
		// loaded machine can stall past markWait's 250 ms.
		{"marked then unmarked while waited on", func(id string) {
			if err := store.MarkDeleting(ctx, "org-a", id, true); err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(50*time.Millisecond, func() { _ = store.MarkDeleting(context.Background(), "org-a", id, false) })
		}, true, 5 * time.Second},
		{"a stale mark", func(id string) {
			oid, _ := bson.ObjectIDFromHex(id)
			if _, err := db.DB.Collection("media").UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "deletingSince", Value: time.Now().Add(-time.Hour)}}}}); err != nil {
				t.Fatal(err)
			}
		}, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := newItem()
			tt.setup(id)
			if _, err := store.Get(ctx, "org-a", id); err != nil {
				t.Errorf("Get of a marked item: %v", err)
			}
			u := usable
			if tt.wait > 0 {
				u = usable.WaitingOnMarks(tt.wait)
			}
			_, err := u.Get(ctx, "org-a", id)
			if tt.usable != (err == nil) || err != nil && !errors.Is(err, media.ErrNotFound) {
				t.Errorf("Usable().Get = %v, want usable %v", err, tt.usable)
			}
			if _, err := usable.Get(ctx, "org-b", id); !errors.Is(err, media.ErrNotFound) {
				t.Errorf("another org's Usable().Get = %v", err)
			}
		})
	}
	id := newItem()
	if err := store.MarkDeleting(ctx, "org-b", id, true); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("another org's mark: %v", err)
	}
	if err := store.MarkDeleting(ctx, "org-a", id, true); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, "org-a", id); err != nil {
		t.Errorf("delete of a marked item: %v", err)
	}
}

// One delete holds an item's mark at a time: of marks set at once, on the
// path the store takes on FerretDB and on MongoDB's, one is set and the
// others are ErrBeingDeleted (a refused delete's unmark used to clear the
// mark another delete counted on); once unmarked, or stale, it is free.
func TestMediaMarkIsOneDeletes(t *testing.T) {
	for _, tt := range paths {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := storeOn(t, tt.mongoDB)
			store := db.Media()
			it, err := store.Create(ctx, &media.Item{ID: store.NewID(), OrganizationID: "org-a", Type: media.TypePNG, Width: 1, Height: 1,
				Size: 1, SHA256: "ab", CreatedAt: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			rounds := 10
			if tt.mongoDB {
				rounds = 1 // FerretDB answers MongoDB's filter, but not atomically: one at a time there
			}
			for round := range rounds {
				errs := make([]error, 4)
				if tt.mongoDB {
					for i := range errs {
						errs[i] = store.MarkDeleting(ctx, "org-a", it.ID, true)
					}
				} else {
					var wg sync.WaitGroup
					for i := range errs {
						wg.Add(1)
						go func() { defer wg.Done(); errs[i] = store.MarkDeleting(ctx, "org-a", it.ID, true) }()
					}
					wg.Wait()
				}
				set := 0
				for _, err := range errs {
					switch {
					case err == nil:
						set++
					case !errors.Is(err, media.ErrBeingDeleted):
						t.Fatalf("round %d: %v", round, err)
					}
				}
				if set != 1 {
					t.Fatalf("round %d: %d marks set at once (%v), want 1", round, set, errs)
				}
				if err := store.MarkDeleting(ctx, "org-a", it.ID, false); err != nil {
					t.Fatal(err)
				}
			}
			oid, _ := bson.ObjectIDFromHex(it.ID)
			if _, err := db.DB.Collection("media").UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "deletingSince", Value: time.Now().Add(-time.Hour)}}}}); err != nil {
				t.Fatal(err)
			}
			if err := store.MarkDeleting(ctx, "org-a", it.ID, true); err != nil {
				t.Fatalf("over a stale mark: %v", err)
			}
		})
	}
}
