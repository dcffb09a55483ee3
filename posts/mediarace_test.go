package posts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/media/gridfs"
	"github.com/postflow/postflow/media/mediatest"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
)

// sequencer runs named steps in a given order, whichever goroutine
// reaches them first; a step not in the order, or run a second time,
// runs at once. nil runs everything at once.
type sequencer struct {
	t     *testing.T
	mu    sync.Mutex
	order []string
	done  map[string]bool
}

func (s *sequencer) step(name string, f func()) {
	if s == nil {
		f()
		return
	}
	s.mu.Lock()
	idx := slices.Index(s.order, name)
	if idx < 0 || s.done[name] {
		s.mu.Unlock()
		f()
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for !s.ready(idx) {
		s.mu.Unlock()
		if time.Now().After(deadline) {
			s.t.Errorf("step %s waited 10 s for its turn in %v (done %v)", name, s.order, s.done)
			f()
			return
		}
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	s.mu.Unlock()
	f()
	s.mu.Lock()
	s.done[name] = true
	s.mu.Unlock()
}

// ready: every step before idx has run (called with mu held).
func (s *sequencer) ready(idx int) bool {
	for _, n := range s.order[:idx] {
		if !s.done[n] {
			return false
		}
	}
	return true
}

// The four steps of the race, wrapped around the real stores: the
// library's mark and in-use check, the post's write and its re-read of
// its images (the read before the write is "validate").
type markHook struct {
	*mongostore.Media
	seq *sequencer
}

func (m markHook) MarkDeleting(ctx context.Context, orgID, id string, deleting bool) (err error) {
	if !deleting {
		return m.Media.MarkDeleting(ctx, orgID, id, deleting)
	}
	m.seq.step("mark", func() { err = m.Media.MarkDeleting(ctx, orgID, id, deleting) })
	return err
}

type writeHook struct {
	posts.Store
	seq     *sequencer
	mu      sync.Mutex
	written bool
}

func (w *writeHook) Create(ctx context.Context, p *posts.Post) (out *posts.Post, err error) {
	w.seq.step("write", func() { out, err = w.Store.Create(ctx, p) })
	w.mu.Lock()
	w.written = true
	w.mu.Unlock()
	return out, err
}

func (w *writeHook) Update(ctx context.Context, p *posts.Post, from ...posts.Status) (out *posts.Post, err error) {
	w.seq.step("write", func() { out, err = w.Store.Update(ctx, p, from...) })
	w.mu.Lock()
	w.written = true
	w.mu.Unlock()
	return out, err
}

type readHook struct {
	items posts.MediaItems
	w     *writeHook
}

func (r readHook) Get(ctx context.Context, orgID, id string) (it *media.Item, err error) {
	r.w.mu.Lock()
	name := "validate"
	if r.w.written {
		name = "reread"
	}
	r.w.mu.Unlock()
	r.w.seq.step(name, func() { it, err = r.items.Get(ctx, orgID, id) })
	return it, err
}

// raceWorld is a posts.Service and a media.Library over one real store
// (FerretDB in tests), with the steps of seq hooked.
type raceWorld struct {
	store   *mongostore.Store
	svc     *posts.Service
	lib     *media.Library
	account string
	hook    *writeHook
	// order is the steps' order once the race is armed (the setup before
	// runs free).
	order []string
}

// arm starts the race: the steps from now on are the race's.
func (w *raceWorld) arm() {
	w.hook.mu.Lock()
	w.hook.written = false
	w.hook.mu.Unlock()
	if seq := w.hook.seq; seq != nil {
		seq.mu.Lock()
		seq.order, seq.done = w.order, map[string]bool{}
		seq.mu.Unlock()
	}
}

func newRaceWorld(t *testing.T, seq *sequencer) *raceWorld {
	t.Helper()
	store := mongotest.Store(t)
	reg, err := providers.NewRegistry(network{id: "pics", rules: rules["pics"]})
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.Accounts().Upsert(context.Background(), &connections.Account{OrganizationID: "org-a", Platform: "pics", PlatformUserID: "u",
		DisplayName: "Ada", AccessToken: "sealed", Status: connections.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	postStore := store.Posts()
	inUse := func(ctx context.Context, orgID, mediaID string) (used bool, err error) {
		seq.step("check", func() { used, err = postStore.UsesMedia(ctx, orgID, mediaID) })
		return used, err
	}
	lib, err := media.NewLibrary(markHook{Media: store.Media(), seq: seq}, gridfs.New(store.DB, gridfs.Options{}),
		media.Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20}, inUse)
	if err != nil {
		t.Fatal(err)
	}
	w := &writeHook{Store: postStore, seq: seq}
	svc := posts.NewService(w, store.Accounts(), reg, startRunner{}, readHook{items: store.Media().Usable(), w: w})
	return &raceWorld{store: store, svc: svc, lib: lib, account: a.ID, hook: w}
}

type startRunner struct{ posts.Runner }

func (startRunner) Start(context.Context, *posts.Post) (string, error) { return "run-1", nil }

func (w *raceWorld) image(t *testing.T) string {
	t.Helper()
	it, err := w.lib.Add(context.Background(), "org-a", "a.png", bytes.NewReader(mediatest.PNG(8, 8)))
	if err != nil {
		t.Fatal(err)
	}
	return it.ID
}

func (w *raceWorld) input(content, image string) posts.Input {
	accounts := []string{w.account}
	refs := []posts.MediaRef{}
	if image != "" {
		refs = append(refs, posts.MediaRef{ID: image})
	}
	return posts.Input{Content: &content, SocialAccountIDs: &accounts, Media: &refs}
}

// isMediaNotFound: the 422 a post naming a gone image gets.
func isMediaNotFound(err error) bool {
	var inv *posts.InvalidError
	return errors.As(err, &inv) && inv.Code == "media_not_found"
}

// race runs an edit or create naming a fresh image against the image's
// delete, and checks they did not both succeed, that each failed only
// for the other, and what each left.
func (w *raceWorld) race(t *testing.T, edit bool) (postOK, deleteOK bool) {
	t.Helper()
	ctx := context.Background()
	img := w.image(t)
	var draft *posts.Post
	if edit {
		var err error
		if draft, err = w.svc.Create(ctx, "org-a", w.input("before", "")); err != nil {
			t.Fatal(err)
		}
	}
	w.arm()
	var (
		wg      sync.WaitGroup
		postErr error
		delErr  error
		post    *posts.Post
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if edit {
			post, postErr = w.svc.Update(ctx, "org-a", draft.ID, w.input("after", img))
		} else {
			post, postErr = w.svc.Create(ctx, "org-a", w.input("with an image", img))
		}
	}()
	go func() { defer wg.Done(); delErr = w.lib.Delete(ctx, "org-a", img) }()
	wg.Wait()
	if postErr != nil && !isMediaNotFound(postErr) {
		t.Fatalf("post: %v", postErr)
	}
	if delErr != nil && !errors.Is(delErr, media.ErrInUse) {
		t.Fatalf("delete: %v", delErr)
	}
	postOK, deleteOK = postErr == nil, delErr == nil
	if postOK && deleteOK {
		t.Fatalf("the post (%s) and the delete of its image both succeeded", post.ID)
	}
	_, itemErr := w.store.Media().Get(ctx, "org-a", img)
	if deleteOK != errors.Is(itemErr, media.ErrNotFound) {
		t.Errorf("delete ok %v, item read: %v", deleteOK, itemErr)
	}
	if itemErr == nil {
		if _, err := w.store.Media().Usable().Get(ctx, "org-a", img); err != nil {
			t.Errorf("a refused delete left the item marked: %v", err)
		}
	}
	// A refused post leaves nothing behind: no new post, or the edit's
	// previous version.
	list, err := w.store.Posts().List(ctx, "org-a", posts.ListFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if slices.Contains(p.MediaIDs(), img) && !postOK {
			t.Errorf("a refused post was kept with the image: %+v", p)
		}
		if edit && p.ID == draft.ID && !postOK && p.Content != "before" {
			t.Errorf("a refused edit was kept: %q", p.Content)
		}
	}
	return postOK, deleteOK
}

// Many rounds at once, as the tester did: never both.
func TestPostAndMediaDeleteRace(t *testing.T) {
	for _, edit := range []bool{false, true} {
		t.Run(fmt.Sprintf("edit=%v", edit), func(t *testing.T) {
			w := newRaceWorld(t, nil)
			counts := map[string]int{}
			for range 25 {
				p, d := w.race(t, edit)
				counts[fmt.Sprintf("post=%v delete=%v", p, d)]++
			}
			t.Logf("outcomes: %v", counts)
		})
	}
}

// Each interleaving of the two sides' steps, made to happen: mark (M)
// and check (C) of the delete, write (W) and re-read (R) of the post.
// The post's first read of its images comes before them all.
func TestPostAndMediaDeleteInterleavings(t *testing.T) {
	for _, tt := range []struct {
		order      string
		post, dele string // "ok", "refused", "" either (settled after the steps)
	}{
		{"MCWR", "refused", "ok"},
		{"MWCR", "", "refused"},
		{"MWRC", "refused", ""},
		{"WMCR", "", "refused"},
		{"WMRC", "refused", ""},
		{"WRMC", "ok", "refused"},
	} {
		for _, edit := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/edit=%v", tt.order, edit), func(t *testing.T) {
				seq := &sequencer{t: t, done: map[string]bool{}}
				w := newRaceWorld(t, seq)
				steps := map[rune]string{'M': "mark", 'C': "check", 'W': "write", 'R': "reread"}
				w.order = []string{"validate"}
				for _, c := range tt.order {
					w.order = append(w.order, steps[c])
				}
				postOK, deleteOK := w.race(t, edit)
				for _, c := range []struct {
					who, want string
					ok        bool
				}{{"post", tt.post, postOK}, {"delete", tt.dele, deleteOK}} {
					if c.want != "" && c.ok != (c.want == "ok") {
						t.Errorf("%s: ok=%v, want %s", c.who, c.ok, c.want)
					}
				}
			})
		}
	}
}

// A trigger checks everything a run needs before it resets anything: a
// published post whose image was deleted since, or whose account was
// disconnected, is refused with its results and status as they were.
func TestPublishAgainChecksBeforeReset(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		breaks func(t *testing.T, w *raceWorld, img string)
		code   string
	}{
		{"image deleted", func(t *testing.T, w *raceWorld, img string) {
			if err := w.lib.Delete(ctx, "org-a", img); err != nil { // published: not in use
				t.Fatal(err)
			}
		}, "media_not_found"},
		{"image being deleted", func(t *testing.T, w *raceWorld, img string) {
			if err := w.store.Media().MarkDeleting(ctx, "org-a", img, true); err != nil {
				t.Fatal(err)
			}
		}, "media_not_found"},
		{"account disconnected", func(t *testing.T, w *raceWorld, _ string) {
			if err := w.store.Accounts().Delete(ctx, "org-a", w.account); err != nil {
				t.Fatal(err)
			}
		}, "unknown_account"},
	} {
		for _, from := range []posts.Status{posts.StatusPublished, posts.StatusFailed} {
			t.Run(fmt.Sprintf("%s/%s", tt.name, from), func(t *testing.T) {
				w := newRaceWorld(t, nil)
				img := w.image(t)
				p, err := w.svc.Create(ctx, "org-a", w.input("with an image", img))
				if err != nil {
					t.Fatal(err)
				}
				result := posts.ResultPublished
				if from == posts.StatusFailed {
					result = posts.ResultUnknown
				}
				now := time.Now().UTC()
				if err := w.store.Posts().SaveResult(ctx, &posts.Result{PostID: p.ID, SocialAccountID: w.account, Status: result,
					PlatformPostID: "platform-1", AttemptedAt: &now}); err != nil {
					t.Fatal(err)
				}
				if p, err = w.store.Posts().SetStatus(ctx, p, from, p.Status); err != nil {
					t.Fatal(err)
				}
				tt.breaks(t, w, img)

				_, _, err = w.svc.Publish(ctx, "org-a", p.ID, true)
				var inv *posts.InvalidError
				if !errors.As(err, &inv) || inv.Code != tt.code {
					t.Fatalf("publish again: %v, want %s", err, tt.code)
				}
				after, results, err := w.svc.Get(ctx, "org-a", p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if after.Status != from || len(results) != 1 || results[0].Status != result || results[0].PlatformPostID != "platform-1" {
					t.Errorf("after a refused trigger: %s, results %+v", after.Status, results)
				}
			})
		}
	}
}

// A published post does not hold its images, so a trigger and a delete of
// one may run at once: never both succeed.
func TestPublishAgainAndMediaDeleteRace(t *testing.T) {
	ctx := context.Background()
	w := newRaceWorld(t, nil)
	counts := map[string]int{}
	for range 25 {
		img := w.image(t)
		p, err := w.svc.Create(ctx, "org-a", w.input("with an image", img))
		if err != nil {
			t.Fatal(err)
		}
		if p, err = w.store.Posts().SetStatus(ctx, p, posts.StatusPublished, p.Status); err != nil {
			t.Fatal(err)
		}
		var (
			wg             sync.WaitGroup
			pubErr, delErr error
		)
		wg.Add(2)
		go func() { defer wg.Done(); _, _, pubErr = w.svc.Publish(ctx, "org-a", p.ID, true) }()
		go func() { defer wg.Done(); delErr = w.lib.Delete(ctx, "org-a", img) }()
		wg.Wait()
		if pubErr != nil && !isMediaNotFound(pubErr) || delErr != nil && !errors.Is(delErr, media.ErrInUse) {
			t.Fatalf("publish: %v; delete: %v", pubErr, delErr)
		}
		if pubErr == nil && delErr == nil {
			t.Fatalf("the trigger and the delete of the post's image both succeeded")
		}
		after, err := w.store.Posts().Get(ctx, "org-a", p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]posts.Status{true: posts.StatusQueued, false: posts.StatusPublished}[pubErr == nil]; after.Status != want {
			t.Errorf("status %s after publish err %v", after.Status, pubErr)
		}
		counts[fmt.Sprintf("publish=%v delete=%v", pubErr == nil, delErr == nil)]++
	}
	t.Logf("outcomes: %v", counts)
}

// textDown is a network whose text limits cannot be read now (an outage).
type textDown struct{ network }

func (textDown) TextLimits(context.Context, providers.Account) ([]providers.TextLimit, error) {
	return nil, errors.New("instance unreachable")
}

// A trigger is stopped by a refusal only: a network whose rules cannot be
// read now is the run's to wait out.
func TestPublishDespiteAnOutageOfRules(t *testing.T) {
	ctx := context.Background()
	store := mongotest.Store(t)
	reg, err := providers.NewRegistry(textDown{network{id: "down"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.Accounts().Upsert(ctx, &connections.Account{OrganizationID: "org-a", Platform: "down", PlatformUserID: "u",
		DisplayName: "Ada", AccessToken: "sealed", Status: connections.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	p, err := store.Posts().Create(ctx, &posts.Post{OrganizationID: "org-a", Content: "hi", SocialAccountIDs: []string{a.ID},
		Status: posts.StatusFailed, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	svc := posts.NewService(store.Posts(), store.Accounts(), reg, startRunner{}, store.Media().Usable())
	if _, _, err := svc.Publish(ctx, "org-a", p.ID, false); err != nil {
		t.Fatalf("publish with the network's rules unreadable: %v", err)
	}
	if after, _ := store.Posts().Get(ctx, "org-a", p.ID); after == nil || after.Status != posts.StatusQueued {
		t.Errorf("after the trigger: %+v", after)
	}
}
