package mongostore_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// A published result is never overwritten by another status, on the path
// the store takes on FerretDB and on the one it takes on MongoDB; the
// attempts still add up.
func TestSaveResultKeepsPublished(t *testing.T) {
	for _, tt := range paths {
		t.Run(tt.name, func(t *testing.T) {
			store, ctx := postsStore(t, tt.mongoDB), context.Background()
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

// paths are the two ways the store works: as it detects the server
// (FerretDB here), and as it works on MongoDB.
var paths = []struct {
	name    string
	mongoDB bool
}{{"as detected", false}, {"MongoDB's path", true}}

// storeOn is a fresh store taking the paths it takes on MongoDB if
// mongoDB, else those of the server it finds (paths).
func storeOn(t *testing.T, mongoDB bool) *mongostore.Store {
	s := mongotest.Store(t)
	if mongoDB {
		s.AssumeMongoDB()
	}
	return s
}

func postsStore(t *testing.T, mongoDB bool) *mongostore.Posts { return storeOn(t, mongoDB).Posts() }

// RecordAttempt never turns a published result back into publishing, and
// counts the attempts it records.
func TestRecordAttemptKeepsPublished(t *testing.T) {
	for _, tt := range paths {
		t.Run(tt.name, func(t *testing.T) {
			store, ctx := postsStore(t, tt.mongoDB), context.Background()
			at := time.Now().UTC().Truncate(time.Millisecond)
			attempt := func() {
				t.Helper()
				prev, err := store.Result(ctx, "p1", "a1")
				if err != nil {
					t.Fatal(err)
				}
				if err := store.RecordAttempt(ctx, prev, "p1", "a1", at); err != nil {
					t.Fatal(err)
				}
			}
			attempt()
			attempt()
			r, err := store.Result(ctx, "p1", "a1")
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != posts.ResultPublishing || r.Attempts != 2 || !r.AttemptedAt.Equal(at) {
				t.Fatalf("after two attempts: %+v", r)
			}
			if err := store.SaveResult(ctx, &posts.Result{PostID: "p1", SocialAccountID: "a1", Status: posts.ResultPublished, PlatformPostID: "x", PublishedAt: &at}); err != nil {
				t.Fatal(err)
			}
			attempt()
			if r, err = store.Result(ctx, "p1", "a1"); err != nil {
				t.Fatal(err)
			}
			if r.Status != posts.ResultPublished || r.Attempts != 2 {
				t.Errorf("an attempt after published: %+v", r)
			}
		})
	}
}

// RecordFirstAttempt writes only where (post, account) has no result yet,
// and leaves any result it finds as it was.
func TestRecordFirstAttempt(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	first, err := store.RecordFirstAttempt(ctx, "p1", "a1", at, "k1")
	if err != nil || !first {
		t.Fatalf("no result yet: %v, %v; want recorded", first, err)
	}
	r, err := store.Result(ctx, "p1", "a1")
	if err != nil || r.Status != posts.ResultPublishing || r.Attempts != 1 || !r.AttemptedAt.Equal(at) || r.PostID != "p1" || r.SocialAccountID != "a1" {
		t.Fatalf("after the first attempt: %+v, %v", r, err)
	}
	for _, status := range []posts.ResultStatus{posts.ResultPublishing, posts.ResultPublished} {
		if status == posts.ResultPublished {
			if err := store.SaveResult(ctx, &posts.Result{PostID: "p1", SocialAccountID: "a1", Status: posts.ResultPublished, PlatformPostID: "x", PublishedAt: &at}); err != nil {
				t.Fatal(err)
			}
		}
		first, err := store.RecordFirstAttempt(ctx, "p1", "a1", at.Add(time.Minute), "k2")
		if err != nil || first {
			t.Fatalf("over a %s result: %v, %v; want not recorded", status, first, err)
		}
		if r, _ := store.Result(ctx, "p1", "a1"); r.Status != status || r.Attempts != 1 || !r.AttemptedAt.Equal(at) {
			t.Errorf("over a %s result it changed it: %+v", status, r)
		}
	}
}

// SetStatus moves a post only from the statuses it is given, judged by the
// post as its caller read it, and tells a missing post from a conflict.
func TestSetStatus(t *testing.T) {
	for _, tt := range paths {
		t.Run(tt.name, func(t *testing.T) {
			store, ctx := postsStore(t, tt.mongoDB), context.Background()
			now := time.Now().UTC()
			p, err := store.Create(ctx, &posts.Post{OrganizationID: "o1", Content: "hi", SocialAccountIDs: []string{"a1"},
				Status: posts.StatusQueued, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.SetStatus(ctx, p, posts.StatusPublishing, posts.StatusScheduled); !errors.Is(err, posts.ErrConflict) {
				t.Errorf("from a status not allowed: %v, want ErrConflict", err)
			}
			moved, err := store.SetStatus(ctx, p, posts.StatusPublishing, posts.StatusQueued)
			if err != nil || moved.Status != posts.StatusPublishing {
				t.Fatalf("queued -> publishing: %+v, %v", moved, err)
			}
			if got, _ := store.GetByID(ctx, p.ID); got.Status != posts.StatusPublishing {
				t.Errorf("stored status %s, want publishing", got.Status)
			}
			if tt.mongoDB {
				// p is stale now (queued): MongoDB checks the stored status.
				if _, err := store.SetStatus(ctx, p, posts.StatusCancelled, posts.StatusQueued); !errors.Is(err, posts.ErrConflict) {
					t.Errorf("from a stale read: %v, want ErrConflict", err)
				}
			}
			gone := &posts.Post{ID: "0123456789abcdef01234567", Status: posts.StatusQueued}
			if _, err := store.SetStatus(ctx, gone, posts.StatusPublishing, posts.StatusQueued); !errors.Is(err, posts.ErrNotFound) {
				t.Errorf("a missing post: %v, want ErrNotFound", err)
			}
		})
	}
}

// A doubt, once raised, outlives the attempts after it: a refusal, another
// attempt, another lost answer. Only the earliest doubt is kept.
func TestDoubtIsKept(t *testing.T) {
	for _, tt := range paths {
		t.Run(tt.name, func(t *testing.T) {
			store, ctx := postsStore(t, tt.mongoDB), context.Background()
			t0 := time.Now().UTC().Truncate(time.Millisecond)
			t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
			read := func() *posts.Result {
				t.Helper()
				r, err := store.Result(ctx, "p1", "a1")
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			if _, err := store.RecordFirstAttempt(ctx, "p1", "a1", t0, "k1"); err != nil {
				t.Fatal(err)
			}
			// The first attempt's answer is lost: in doubt since t0.
			if err := store.SaveResult(ctx, &posts.Result{PostID: "p1", SocialAccountID: "a1", Status: posts.ResultPublishing, ErrorCode: "HTTP_504", DoubtSince: &t0}); err != nil {
				t.Fatal(err)
			}
			if err := store.RecordAttempt(ctx, read(), "p1", "a1", t1); err != nil {
				t.Fatal(err)
			}
			// Refused: pending, still in doubt since t0.
			if err := store.SaveResult(ctx, &posts.Result{PostID: "p1", SocialAccountID: "a1", Status: posts.ResultPending, ErrorCode: "HTTP_503"}); err != nil {
				t.Fatal(err)
			}
			if r := read(); r.Status != posts.ResultPending || r.DoubtSince == nil || !r.DoubtSince.Equal(t0) || !r.InDoubt() {
				t.Fatalf("after a refusal: %+v, want pending in doubt since %s", r, t0)
			}
			if err := store.RecordAttempt(ctx, read(), "p1", "a1", t2); err != nil {
				t.Fatal(err)
			}
			if err := store.SaveResult(ctx, &posts.Result{PostID: "p1", SocialAccountID: "a1", Status: posts.ResultPublishing, ErrorCode: "HTTP_504", DoubtSince: &t2}); err != nil {
				t.Fatal(err)
			}
			if r := read(); r.DoubtSince == nil || !r.DoubtSince.Equal(t0) || r.Attempts != 3 || !r.AttemptedAt.Equal(t2) {
				t.Errorf("after a later lost answer: %+v, want in doubt since %s, 3 attempts", r, t0)
			}
			// Proof settles it: a failed result (nothing of ours there) or
			// a published one.
			for _, settled := range []posts.ResultStatus{posts.ResultFailed, posts.ResultPublished} {
				if err := store.SaveResult(ctx, &posts.Result{PostID: "p1", SocialAccountID: "a1", Status: settled}); err != nil {
					t.Fatal(err)
				}
				if r := read(); r.DoubtSince != nil || r.InDoubt() {
					t.Errorf("after %s: %+v, want no doubt left", settled, r)
				}
				if err := store.SaveResult(ctx, &posts.Result{PostID: "p1", SocialAccountID: "a1", Status: posts.ResultPublishing, DoubtSince: &t2}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestPostByPlatformID(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	at := time.Now().UTC()
	for _, r := range []posts.Result{
		{PostID: "p1", SocialAccountID: "a1", Status: posts.ResultPublished, PlatformPostID: "urn:li:share:1", PublishedAt: &at},
		{PostID: "p2", SocialAccountID: "a2", Status: posts.ResultPublished, PlatformPostID: "urn:li:share:2", PublishedAt: &at},
		{PostID: "p3", SocialAccountID: "a1", Status: posts.ResultFailed, PlatformPostID: "urn:li:share:3"},
	} {
		if err := store.SaveResult(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ account, id, want string }{
		{"a1", "urn:li:share:1", "p1"},
		{"a2", "urn:li:share:1", ""}, // another account's, not asked for
		{"a1", "urn:li:share:3", ""}, // not published
		{"a1", "urn:li:share:9", ""},
	} {
		got, via, err := store.PostByPlatformID(ctx, []string{tt.account}, tt.id)
		if err != nil || got != tt.want || (got != "" && via != tt.account) {
			t.Errorf("PostByPlatformID(%s, %s) = %q via %q, %v; want %q", tt.account, tt.id, got, via, err, tt.want)
		}
	}
}

// The indexes are made again on every start: the second time finds them.
func TestEnsureIndexesTwice(t *testing.T) {
	s := mongotest.Store(t)
	for i := range 2 {
		if err := s.Posts().EnsureIndexes(context.Background()); err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
	}
}

// SaveUpload keeps each image's upload with the result, replaces an earlier
// upload of the same image, survives the result's later writes, and needs
// the attempt recorded first.
func TestSaveUpload(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	upload := func(media, id string, uploadedAt time.Time, adjusted string) posts.MediaUpload {
		return posts.MediaUpload{Upload: providers.Upload{MediaID: media, ID: id, Ref: `{"ref":"` + id + `"}`,
			UploadedAt: uploadedAt, ExpiresAt: uploadedAt.Add(5 * time.Minute)}, Adjusted: adjusted, Width: 1600, Height: 900}
	}
	if err := store.SaveUpload(ctx, "p1", "a1", upload("m1", "x1", at, "")); err == nil {
		t.Fatal("kept an upload for a result that no attempt recorded")
	}
	if _, err := store.RecordFirstAttempt(ctx, "p1", "a1", at, "k1"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []posts.MediaUpload{
		upload("m2", "x2", at.Add(time.Second), "re-encoded"),
		upload("m1", "x1", at, ""),
		upload("m2", "x2b", at.Add(2*time.Second), ""), // uploaded again: replaces
	} {
		if err := store.SaveUpload(ctx, "p1", "a1", u); err != nil {
			t.Fatal(err)
		}
	}
	// A later write of the result keeps them.
	if err := store.SaveResult(ctx, &posts.Result{PostID: "p1", SocialAccountID: "a1", Status: posts.ResultPending, ErrorCode: "429"}); err != nil {
		t.Fatal(err)
	}
	r, err := store.Result(ctx, "p1", "a1")
	if err != nil {
		t.Fatal(err)
	}
	want := []posts.MediaUpload{upload("m1", "x1", at, ""), upload("m2", "x2b", at.Add(2*time.Second), "")}
	if !reflect.DeepEqual(r.Media, want) {
		t.Errorf("uploads %+v\nwant %+v", r.Media, want)
	}
	if u, ok := r.Upload("m2"); !ok || u.ID != "x2b" {
		t.Errorf("Upload(m2) = %+v, %v", u, ok)
	}
	if _, ok := r.Upload("m3"); ok {
		t.Error("Upload(m3) found one")
	}
}

const (
	img1 = "aaaaaaaaaaaaaaaaaaaaaaa1"
	img2 = "aaaaaaaaaaaaaaaaaaaaaaa2"
	img3 = "aaaaaaaaaaaaaaaaaaaaaaa3"
)

func refs(r ...posts.MediaRef) *[]posts.MediaRef { return &r }

// A post's images and its variants' survive a create and an update as they
// were written: a variant without media inherits the post's, one with an
// empty list sends none, and the two stay apart.
func TestPostMediaRoundTrip(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	now := time.Now().UTC()
	p, err := store.Create(ctx, &posts.Post{OrganizationID: "o1", Content: "hi", SocialAccountIDs: []string{"a1", "a2", "a3"},
		Media: []posts.MediaRef{{ID: img1, AltText: "a cat"}, {ID: img2}},
		Variants: map[string]posts.Variant{
			"a1": {Content: "inherits"},
			"a2": {Content: "none", Media: refs()},
			"a3": {Content: "other", Media: refs(posts.MediaRef{ID: img3, AltText: "a dog"})},
		},
		Status: posts.StatusDraft, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, wantMedia map[string][]posts.MediaRef) {
		t.Helper()
		got, err := store.GetByID(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		for acc, want := range wantMedia {
			if m := got.MediaFor(acc); !slices.Equal(m, want) || (m == nil) != (want == nil) {
				t.Errorf("%s: MediaFor(%s) = %#v, want %#v", when, acc, m, want)
			}
		}
	}
	check("created", map[string][]posts.MediaRef{
		"a1": {{ID: img1, AltText: "a cat"}, {ID: img2}},
		"a2": {},
		"a3": {{ID: img3, AltText: "a dog"}},
	})

	p.Media = nil
	p.Variants["a3"] = posts.Variant{Content: "inherits now"}
	p.Variants["a1"] = posts.Variant{Content: "its own", Media: refs(posts.MediaRef{ID: img2, AltText: "a bird"})}
	if _, err := store.Update(ctx, p, posts.StatusDraft); err != nil {
		t.Fatal(err)
	}
	check("updated", map[string][]posts.MediaRef{
		"a1": {{ID: img2, AltText: "a bird"}},
		"a2": {},
		"a3": nil,
	})
}

// UsesMedia holds an image while a post of the organization that still
// has to publish uses it, for itself or a variant, and lets go once the
// post is published, failed or cancelled, or edited to use it no more.
func TestUsesMedia(t *testing.T) {
	for _, tt := range paths {
		t.Run(tt.name, func(t *testing.T) {
			store, ctx := postsStore(t, tt.mongoDB), context.Background()
			if err := store.EnsureIndexes(ctx); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			create := func(status posts.Status, media []posts.MediaRef, variants map[string]posts.Variant) *posts.Post {
				t.Helper()
				p, err := store.Create(ctx, &posts.Post{OrganizationID: "o1", Content: "hi", SocialAccountIDs: []string{"a1"},
					Media: media, Variants: variants, Status: status, CreatedAt: now, UpdatedAt: now})
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			uses := func(org, id string) bool {
				t.Helper()
				ok, err := store.UsesMedia(ctx, org, id)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			for _, status := range []posts.Status{posts.StatusPublished, posts.StatusFailed, posts.StatusCancelled} {
				create(status, []posts.MediaRef{{ID: img1}}, nil)
			}
			if uses("o1", img1) {
				t.Errorf("only settled posts use %s: held", img1)
			}
			for _, tc := range []struct {
				status posts.Status
				media  []posts.MediaRef
				vars   map[string]posts.Variant
			}{
				{posts.StatusDraft, []posts.MediaRef{{ID: img1}}, nil},
				{posts.StatusScheduled, nil, map[string]posts.Variant{"a1": {Content: "v", Media: refs(posts.MediaRef{ID: img1})}}},
				{posts.StatusQueued, []posts.MediaRef{{ID: img2}, {ID: img1}}, nil},
				{posts.StatusPublishing, []posts.MediaRef{{ID: img1}}, nil},
			} {
				p := create(tc.status, tc.media, tc.vars)
				if !uses("o1", img1) {
					t.Errorf("a %s post uses %s: not held", tc.status, img1)
				}
				if uses("o2", img1) {
					t.Errorf("another organization's %s post holds %s", tc.status, img1)
				}
				if uses("o1", img3) {
					t.Errorf("%s is used by no post: held", img3)
				}
				if err := store.Finish(ctx, p.ID, posts.StatusPublished, &now, "", ""); err != nil {
					t.Fatal(err)
				}
				if uses("o1", img1) {
					t.Errorf("the %s post, now published, still holds %s", tc.status, img1)
				}
			}

			// An edit that drops the image lets it go.
			p := create(posts.StatusDraft, []posts.MediaRef{{ID: img1}}, map[string]posts.Variant{"a1": {Content: "v", Media: refs(posts.MediaRef{ID: img2})}})
			if !uses("o1", img2) {
				t.Errorf("a draft's variant uses %s: not held", img2)
			}
			p.Media, p.Variants = nil, nil
			if _, err := store.Update(ctx, p, posts.StatusDraft); err != nil {
				t.Fatal(err)
			}
			if uses("o1", img1) || uses("o1", img2) {
				t.Errorf("a draft edited to use no image still holds one")
			}
		})
	}
}

// An unpublish's attempts count up and clear the last failure; its end
// keeps the count; a later write of the published result keeps it all;
// a result that is not there is ErrNotFound.
func TestUnpublishRoundTrip(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := store.RecordUnpublishAttempt(ctx, "p1", "a1", at); !errors.Is(err, posts.ErrNotFound) {
		t.Fatalf("an attempt on no result: %v; want ErrNotFound", err)
	}
	published := &posts.Result{PostID: "p1", SocialAccountID: "a1", Status: posts.ResultPublished, PlatformPostID: "x1", PublishedAt: &at}
	if err := store.SaveResult(ctx, published); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordUnpublishAttempt(ctx, "p1", "a1", at); err != nil {
		t.Fatal(err)
	}
	if err := store.FinishUnpublish(ctx, "p1", "a1", posts.Unpublish{Status: posts.UnpublishRunning, ErrorCode: "HTTP_503",
		ErrorMessage: "down", ErrorCategory: posts.CategoryPlatformUnavailable}); err != nil {
		t.Fatal(err)
	}
	second := at.Add(time.Minute)
	if err := store.RecordUnpublishAttempt(ctx, "p1", "a1", second); err != nil {
		t.Fatal(err)
	}
	gone := second.Add(time.Second)
	if err := store.FinishUnpublish(ctx, "p1", "a1", posts.Unpublish{Status: posts.Unpublished, UnpublishedAt: &gone}); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveResult(ctx, published); err != nil {
		t.Fatal(err)
	}
	r, err := store.Result(ctx, "p1", "a1")
	if err != nil {
		t.Fatal(err)
	}
	want := &posts.Unpublish{Status: posts.Unpublished, UnpublishedAt: &gone, Attempts: 2, AttemptedAt: &second}
	if r.Status != posts.ResultPublished || !reflect.DeepEqual(r.Unpublish, want) {
		t.Errorf("result %s, unpublish %+v; want published, %+v", r.Status, r.Unpublish, want)
	}
}
