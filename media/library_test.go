package media_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/media/mediatest"
)

// memItems is an Items in memory, for the library's own rules.
type memItems struct {
	mu        sync.Mutex
	next      int
	items     map[string]media.Item
	failWrite error
}

func (m *memItems) NewID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	return fmt.Sprintf("%024x", m.next)
}

func (m *memItems) Create(_ context.Context, it *media.Item) (*media.Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWrite != nil {
		return nil, m.failWrite
	}
	m.items[it.ID] = *it
	c := *it
	return &c, nil
}

// MarkDeleting: the library's own rules do not race; the mark is
// mongostore's to keep (internal/mongostore tests it).
func (m *memItems) MarkDeleting(ctx context.Context, orgID, id string, _ bool) error {
	_, err := m.Get(ctx, orgID, id)
	return err
}

func (m *memItems) GetByID(_ context.Context, id string) (*media.Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return nil, media.ErrNotFound
	}
	return &it, nil
}

func (m *memItems) Get(ctx context.Context, orgID, id string) (*media.Item, error) {
	it, err := m.GetByID(ctx, id)
	if err != nil || it.OrganizationID != orgID {
		return nil, media.ErrNotFound
	}
	return it, nil
}

func (m *memItems) List(_ context.Context, orgID string, limit int, before string) ([]media.Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []media.Item
	for _, it := range m.items {
		if it.OrganizationID == orgID && (before == "" || it.ID < before) {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b media.Item) int { return -compare(a.ID, b.ID) })
	return out[:min(limit, len(out))], nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *memItems) Delete(ctx context.Context, orgID, id string) error {
	if _, err := m.Get(ctx, orgID, id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, id)
	return nil
}

// memStore is a Store in memory; presign, when set, is the URL it serves.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	types   map[string]string
	presign string
}

func (s *memStore) Put(_ context.Context, key string, r io.Reader, size int64, typ string) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("put %s: %d bytes, said %d", key, len(b), size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[key], s.types[key] = b, typ
	return nil
}

func (s *memStore) Open(_ context.Context, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[key]
	if !ok {
		return nil, media.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, key)
	return nil
}

func (s *memStore) PresignedURL(_ context.Context, key string, _ time.Duration) (string, error) {
	if s.presign == "" {
		return "", nil
	}
	return s.presign + key, nil
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

type fixture struct {
	lib   *media.Library
	items *memItems
	store *memStore
	used  map[string]bool
}

func newLibrary(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{items: &memItems{items: map[string]media.Item{}}, store: &memStore{objects: map[string][]byte{}, types: map[string]string{}}, used: map[string]bool{}}
	lib, err := media.NewLibrary(f.items, f.store, media.Limits{MaxBytes: 1 << 20, MaxPixels: 10_000_000},
		func(_ context.Context, orgID, id string) (bool, error) { return f.used[orgID+"/"+id], nil })
	if err != nil {
		t.Fatal(err)
	}
	f.lib = lib
	return f
}

// Add stores the cleaned bytes (no GPS), records what they are, and the
// bytes read back are those whose digest the record holds.
func TestLibraryAddStoresCleanedBytes(t *testing.T) {
	f, ctx := newLibrary(t), context.Background()
	upload := mediatest.JPEGWithGPS(40, 30)
	it, err := f.lib.Add(ctx, "org-a", `C:\Users\me\holiday.jpg`, bytes.NewReader(upload))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.lib.Get(ctx, "org-a", it.ID)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.lib.OpenItem(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(rc)
	_ = rc.Close()
	sum := sha256.Sum256(stored)
	switch {
	case it.Type != media.TypeJPEG || it.Width != 40 || it.Height != 30 || it.OrganizationID != "org-a" || it.Filename != "holiday.jpg":
		t.Errorf("item = %+v", it)
	case it.Size != int64(len(stored)) || it.SHA256 != hex.EncodeToString(sum[:]):
		t.Errorf("item size %d sha %s, stored %d bytes sha %x", it.Size, it.SHA256, len(stored), sum)
	case bytes.Contains(stored, []byte(mediatest.GPSMarker)) || mediatest.HasEXIF(stored):
		t.Error("location metadata was stored")
	case len(stored) >= len(upload):
		t.Errorf("stored %d bytes of a %d-byte upload: nothing stripped", len(stored), len(upload))
	case f.store.types[it.ID] != media.TypeJPEG:
		t.Errorf("stored type %q", f.store.types[it.ID])
	}
}

// A refused upload stores nothing and records nothing; the error is
// Inspect's, for the API to map.
func TestLibraryAddRefuses(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"bomb", mediatest.PNGBomb(), media.ErrTooManyPixels},
		{"renamed executable", mediatest.ELF(), media.ErrUnsupportedType},
		{"corrupt", mediatest.CorruptJPEG(64, 64), media.ErrCorrupt},
		{"too large", make([]byte, 1<<20+1), media.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLibrary(t)
			_, err := f.lib.Add(context.Background(), "org-a", "photo.jpg", bytes.NewReader(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if f.store.count() != 0 || len(f.items.items) != 0 {
				t.Errorf("stored %d objects, %d records", f.store.count(), len(f.items.items))
			}
		})
	}
}

// When the record cannot be written, the bytes already stored go.
func TestLibraryAddRemovesBytesWhenRecordFails(t *testing.T) {
	f := newLibrary(t)
	f.items.failWrite = errors.New("disk full")
	_, err := f.lib.Add(context.Background(), "org-a", "a.png", bytes.NewReader(mediatest.PNG(8, 8)))
	if err == nil || !errors.Is(err, f.items.failWrite) {
		t.Fatalf("err = %v", err)
	}
	if n := f.store.count(); n != 0 {
		t.Errorf("%d objects left without a record", n)
	}
}

// Another organization's item is not found on any method; Delete refuses
// while a post uses the item, then removes the record and the bytes.
func TestLibraryOrgsAndDelete(t *testing.T) {
	f, ctx := newLibrary(t), context.Background()
	it, err := f.lib.Add(ctx, "org-a", "a.png", bytes.NewReader(mediatest.PNG(8, 8)))
	if err != nil {
		t.Fatal(err)
	}
	others := []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := f.lib.Get(ctx, "org-b", it.ID); return err }},
		{"delete", func() error { return f.lib.Delete(ctx, "org-b", it.ID) }},
	}
	for _, o := range others {
		if err := o.call(); !errors.Is(err, media.ErrNotFound) {
			t.Errorf("org-b %s: err = %v, want ErrNotFound", o.name, err)
		}
	}
	if list, _ := f.lib.List(ctx, "org-b", 10, ""); len(list) != 0 {
		t.Errorf("org-b lists %d items", len(list))
	}

	f.used["org-a/"+it.ID] = true
	if err := f.lib.Delete(ctx, "org-a", it.ID); !errors.Is(err, media.ErrInUse) {
		t.Fatalf("delete while used: err = %v, want ErrInUse", err)
	}
	if f.store.count() != 1 {
		t.Fatal("bytes removed while in use")
	}
	f.used["org-a/"+it.ID] = false
	if err := f.lib.Delete(ctx, "org-a", it.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.lib.Get(ctx, "org-a", it.ID); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("get after delete: err = %v", err)
	}
	if f.store.count() != 0 {
		t.Error("bytes left after delete")
	}
}

// Public answers the store's presigned URL when it has one, else none;
// for any organization's item (the signature is the caller's right).
func TestLibraryPublic(t *testing.T) {
	f, ctx := newLibrary(t), context.Background()
	it, err := f.lib.Add(ctx, "org-a", "a.png", bytes.NewReader(mediatest.PNG(8, 8)))
	if err != nil {
		t.Fatal(err)
	}
	got, u, err := f.lib.Public(ctx, it.ID, time.Minute)
	if err != nil || u != "" || got.ID != it.ID {
		t.Fatalf("gridfs-like store: item %+v, url %q, err %v", got, u, err)
	}
	f.store.presign = "https://bucket.example/"
	if _, u, err = f.lib.Public(ctx, it.ID, time.Minute); err != nil || u != "https://bucket.example/"+it.ID {
		t.Fatalf("presigning store: url %q, err %v", u, err)
	}
	if _, _, err := f.lib.Public(ctx, "ffffffffffffffffffffffff", time.Minute); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("missing: err = %v", err)
	}
}

// A client's file name keeps its last element without control
// characters; the list pages newest first.
func TestCleanFilenameAndList(t *testing.T) {
	f, ctx := newLibrary(t), context.Background()
	var ids []string
	for _, name := range []string{"a\x00b.png", "dir/../c.png", ""} {
		it, err := f.lib.Add(ctx, "org-a", name, bytes.NewReader(mediatest.PNG(4, 4)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
		if want := map[string]string{"a\x00b.png": "ab.png", "dir/../c.png": "c.png", "": ""}[name]; it.Filename != want {
			t.Errorf("filename %q kept as %q, want %q", name, it.Filename, want)
		}
	}
	page, err := f.lib.List(ctx, "org-a", 2, "")
	if err != nil || len(page) != 2 || page[0].ID != ids[2] || page[1].ID != ids[1] {
		t.Fatalf("first page = %v, %v", page, err)
	}
	page, _ = f.lib.List(ctx, "org-a", 2, page[1].ID)
	if len(page) != 1 || page[0].ID != ids[0] {
		t.Fatalf("second page = %v", page)
	}
}

// The library's decodes use the budget it is given: an image needing more
// than all of it is refused, and a wide-open library refuses nothing else.
func TestLibraryUsesItsBudget(t *testing.T) {
	f := newLibrary(t)
	small, err := media.NewBudget(1000)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := media.NewLibrary(f.items, f.store, f.lib.Limits(), func(context.Context, string, string) (bool, error) { return false, nil },
		media.WithBudget(small))
	if err != nil {
		t.Fatal(err)
	}
	_, err = lib.Add(context.Background(), "org-a", "a.png", bytes.NewReader(mediatest.PNG(40, 30)))
	var e *media.TooManyPixelsError
	if !errors.As(err, &e) || e.BudgetBytes != 1000 {
		t.Fatalf("err = %v, want the 1000-byte budget named", err)
	}
	if f.store.count() != 0 {
		t.Error("a refused image was stored")
	}
	if _, err := lib.Fit(context.Background(), bytes.NewReader(mediatest.PNG(40, 30)), media.TypePNG, 100_000); !errors.As(err, &e) {
		t.Errorf("Fit: err = %v, want the budget's refusal", err)
	}
	if _, err := f.lib.Add(context.Background(), "org-a", "a.png", bytes.NewReader(mediatest.PNG(40, 30))); err != nil {
		t.Errorf("the default budget: %v", err)
	}
	if _, err := media.NewBudget(0); err == nil {
		t.Error("a zero budget was made")
	}
}

// gatedReader blocks its first Read until gate closes, counting the
// readers inside Read at once in *inside (its peak in *peak).
type gatedReader struct {
	r            io.Reader
	gate         chan struct{}
	mu           *sync.Mutex
	inside, peak *int
	entered      chan struct{}
	waited       bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if !g.waited {
		g.waited = true
		g.mu.Lock()
		*g.inside++
		*g.peak = max(*g.peak, *g.inside)
		g.mu.Unlock()
		g.entered <- struct{}{}
		<-g.gate
		g.mu.Lock()
		*g.inside--
		g.mu.Unlock()
	}
	return g.r.Read(p)
}

// Uploads beyond UploadSlots wait for a slot before their bodies are
// read: their bytes, held before any decode, are bounded with the decode
// budget; a waiting one whose context ends gives up with its error.
func TestLibraryBoundsUploadsInFlight(t *testing.T) {
	f := newLibrary(t)
	budget, err := media.NewBudget(4 << 20) // two slots of 1 MiB uploads
	if err != nil {
		t.Fatal(err)
	}
	lib, err := media.NewLibrary(f.items, f.store, f.lib.Limits(), func(context.Context, string, string) (bool, error) { return false, nil },
		media.WithBudget(budget))
	if err != nil {
		t.Fatal(err)
	}
	if lib.UploadSlots() != 2 {
		t.Fatalf("UploadSlots = %d, want 2 (4 MiB / (2 x 1 MiB))", lib.UploadSlots())
	}
	var mu sync.Mutex
	inside, peak := 0, 0
	gate, entered := make(chan struct{}), make(chan struct{}, 5)
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			_, err := lib.Add(context.Background(), "org-a", "a.png", &gatedReader{r: bytes.NewReader(mediatest.PNG(40, 30)),
				gate: gate, mu: &mu, inside: &inside, peak: &peak, entered: entered})
			errs <- err
		}()
	}
	<-entered
	<-entered
	select {
	case <-entered:
		t.Fatal("a third upload was read while two held their slots")
	case <-time.After(100 * time.Millisecond):
	}
	// A re-encode waits for a slot too, its image not read meanwhile.
	fitCtx, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	unread := &gatedReader{r: bytes.NewReader(mediatest.PNG(4, 3)), gate: make(chan struct{}), mu: &mu, inside: new(int), peak: new(int), entered: make(chan struct{}, 1)}
	if _, err := lib.Fit(fitCtx, unread, media.TypePNG, 1000); !errors.Is(err, context.DeadlineExceeded) || unread.waited {
		t.Errorf("Fit while both slots are held: %v (read %v); want it waiting, unread, until its deadline", err, unread.waited)
	}
	// A waiting upload whose request goes away gives up.
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() {
		_, err := lib.Add(ctx, "org-a", "late.png", bytes.NewReader(mediatest.PNG(4, 3)))
		waiting <- err
	}()
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled wait: %v, want context.Canceled", err)
	}
	close(gate)
	for range 5 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if peak != 2 || f.store.count() != 5 {
		t.Errorf("peak %d uploads read at once, %d stored; want 2 and 5", peak, f.store.count())
	}
}

// heldMark is items whose mark another delete holds for the first
// `held` marks this delete tries; then that delete removes the item
// (removes) or lets go (the mark is free).
type heldMark struct {
	*memItems
	mu      sync.Mutex
	held    int
	removes bool
	tries   int
}

func (h *heldMark) MarkDeleting(ctx context.Context, orgID, id string, deleting bool) error {
	if !deleting {
		return h.memItems.MarkDeleting(ctx, orgID, id, deleting)
	}
	h.mu.Lock()
	h.tries++
	tries := h.tries
	h.mu.Unlock()
	switch {
	case tries <= h.held:
		return media.ErrBeingDeleted
	case tries == h.held+1 && h.removes:
		if err := h.memItems.Delete(ctx, orgID, id); err != nil {
			return err
		}
	}
	return h.memItems.MarkDeleting(ctx, orgID, id, deleting)
}

// A delete meeting another delete of the item waits for it: the item
// gone, it is ErrNotFound; the mark let go, it deletes; the mark held
// past its wait, it is ErrBeingDeleted, and the item stays.
func TestLibraryDeleteWaitsForAnotherDelete(t *testing.T) {
	tests := []struct {
		name     string
		held     int
		removes  bool
		want     error
		wantGone bool
	}{
		{name: "the other delete removed it", held: 3, removes: true, want: media.ErrNotFound, wantGone: true},
		{name: "the other delete was refused", held: 3, wantGone: true},
		{name: "held past the wait", held: 1 << 20, want: media.ErrBeingDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ctx := newLibrary(t), context.Background()
			it, err := f.lib.Add(ctx, "org-a", "a.png", bytes.NewReader(mediatest.PNG(8, 8)))
			if err != nil {
				t.Fatal(err)
			}
			items := &heldMark{memItems: f.items, held: tt.held, removes: tt.removes}
			lib, err := media.NewLibrary(items, f.store, f.lib.Limits(), func(context.Context, string, string) (bool, error) { return false, nil })
			if err != nil {
				t.Fatal(err)
			}
			if err := lib.Delete(ctx, "org-a", it.ID); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("delete: %v, want %v", err, tt.want)
			}
			if _, err := f.items.Get(ctx, "org-a", it.ID); errors.Is(err, media.ErrNotFound) != tt.wantGone {
				t.Fatalf("item read after: %v, want gone %v", err, tt.wantGone)
			}
		})
	}
}
