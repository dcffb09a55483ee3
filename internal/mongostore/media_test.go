package mongostore_test

import (
	"context"
	"errors"
	"testing"
	"time"

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
