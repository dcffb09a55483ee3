package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/semaphore"
)

// Items is where the library's records live (internal/mongostore.Media in
// production). Ids are the repository's: 24-hex ObjectIDs, so that the
// newest sorts first.
type Items interface {
	// NewID returns an id for an item about to be created: its bytes are
	// stored under it before the record is (see Library.Add).
	NewID() string
	// Create stores item under item.ID (from NewID) and returns it as stored.
	Create(ctx context.Context, item *Item) (*Item, error)
	// Get returns the item if it belongs to orgID; ErrNotFound otherwise.
	Get(ctx context.Context, orgID, id string) (*Item, error)
	// GetByID returns the item whatever its organization; ErrNotFound if none.
	GetByID(ctx context.Context, id string) (*Item, error)
	// List returns up to limit items of orgID, newest first, older than
	// the item before when before is not "".
	List(ctx context.Context, orgID string, limit int, before string) ([]Item, error)
	// Delete removes the item if it belongs to orgID, marked or not;
	// ErrNotFound otherwise.
	Delete(ctx context.Context, orgID, id string) error
	// MarkDeleting sets (deleting true) or clears the item's mark of a
	// delete under way, written by id; ErrNotFound if orgID has no such
	// item. A marked item is gone to whoever adds it to a post (see
	// Library.Delete); Get and the other readers still return it. One
	// delete holds the mark at a time: setting it while another's is
	// fresh is ErrBeingDeleted, in one atomic step with the check (a
	// refused delete's unmark cleared the mark another delete counted on).
	MarkDeleting(ctx context.Context, orgID, id string, deleting bool) error
}

// InUseFunc reports whether a post of orgID that is not yet published uses
// the media item mediaID (the posts store answers it).
type InUseFunc func(ctx context.Context, orgID, mediaID string) (bool, error)

// Library is an organization's media: images inspected once on the way in
// (Inspect), their records in Items and their bytes in a Store under the
// item's id. Another organization's item is ErrNotFound on every method.
type Library struct {
	items  Items
	store  Store
	limits Limits
	budget *Budget
	// uploads bounds the uploads Add holds at once (UploadSlots).
	uploads *semaphore.Weighted
	inUse   InUseFunc
	now     func() time.Time
}

// Option configures a Library.
type Option func(*Library)

// WithBudget makes the library's decodes (Add, Fit) share budget, which
// the process's other decodes should share too; without it the library
// has a budget of its own of DefaultDecodeMemory bytes.
func WithBudget(budget *Budget) Option {
	return func(l *Library) { l.budget = budget }
}

// NewLibrary returns a library over items and store. limits bound every
// upload (both must be positive, as Inspect wants them); inUse guards
// Delete.
func NewLibrary(items Items, store Store, limits Limits, inUse InUseFunc, opts ...Option) (*Library, error) {
	if items == nil || store == nil || inUse == nil {
		return nil, errors.New("media: a library needs items, a store and an in-use check")
	}
	if limits.MaxBytes <= 0 || limits.MaxPixels <= 0 {
		return nil, fmt.Errorf("media: limits must be positive, got %+v", limits)
	}
	l := &Library{items: items, store: store, limits: limits, inUse: inUse, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	if l.budget == nil {
		budget, err := NewBudget(DefaultDecodeMemory)
		if err != nil {
			return nil, err
		}
		l.budget = budget
	}
	l.uploads = semaphore.NewWeighted(l.UploadSlots())
	return l, nil
}

// UploadSlots is how many images Add and Fit hold at once: each holds up
// to twice Limits().MaxBytes (the bytes read, then the cleaned or
// re-encoded ones) outside the decode budget, so as many as fit that
// budget twice over, at least one. With the defaults (512 MiB, 20 MiB)
// 12; the others wait, their images not yet read.
func (l *Library) UploadSlots() int64 {
	return max(1, l.budget.Bytes()/(2*l.limits.MaxBytes))
}

// Limits are the library's upload limits (MaxBytes in bytes, MaxPixels as
// width*height).
func (l *Library) Limits() Limits { return l.limits }

// Add inspects the upload read from r (at most Limits().MaxBytes bytes
// are read), stores the cleaned bytes and records them for orgID.
// filename is the client's name for the file, kept for people only (its
// directories and control characters dropped, at most 255 bytes).
//
// It waits for one of the library's upload slots (UploadSlots) before
// reading r, and the decode for the library's decode budget (see
// Inspect).
//
// Errors: those of Inspect (ErrTooLarge, ErrUnsupportedType,
// ErrTooManyPixels, ErrCorrupt, r's own failure, or ctx's while waiting),
// else the store's or the repository's, wrapped. If the record cannot be
// written the bytes are removed again.
func (l *Library) Add(ctx context.Context, orgID, filename string, r io.Reader) (*Item, error) {
	if err := l.uploads.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("media: waiting for an upload slot: %w", err)
	}
	defer l.uploads.Release(1)
	img, err := Inspect(ctx, r, l.limits, l.budget)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(img.Bytes)
	item := &Item{
		ID: l.items.NewID(), OrganizationID: orgID, Type: img.Type,
		Width: img.Width, Height: img.Height, Size: img.Size,
		SHA256: hex.EncodeToString(sum[:]), Filename: cleanFilename(filename),
		CreatedAt: l.now().UTC().Truncate(time.Millisecond),
	}
	// Viewers show an EXIF-rotated JPEG on its side: its width and height
	// are as shown (Item's contract).
	if img.Orientation >= 5 && img.Orientation <= 8 {
		item.Width, item.Height = item.Height, item.Width
	}
	if err := l.store.Put(ctx, item.ID, bytes.NewReader(img.Bytes), img.Size, img.Type); err != nil {
		return nil, fmt.Errorf("media: store %s: %w", item.ID, err)
	}
	created, err := l.items.Create(ctx, item)
	if err != nil {
		// A record never points at missing bytes; bytes without a record
		// would be unreachable, so they go. A context already cancelled
		// must not leave them behind either.
		if derr := l.store.Delete(context.WithoutCancel(ctx), item.ID); derr != nil {
			err = errors.Join(err, fmt.Errorf("media: remove the bytes of %s: %w", item.ID, derr))
		}
		return nil, fmt.Errorf("media: record %s: %w", item.ID, err)
	}
	return created, nil
}

// Fit is Fit (the function) under the library's decode budget: the image
// of type typ read from r re-encoded to take at most maxBytes. It reads
// the image whole before decoding, as Add does, so it takes one of the
// same upload slots (UploadSlots) first.
func (l *Library) Fit(ctx context.Context, r io.Reader, typ string, maxBytes int64) (*Fitted, error) {
	if err := l.uploads.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("media: waiting for a slot to re-encode: %w", err)
	}
	defer l.uploads.Release(1)
	return Fit(ctx, r, typ, maxBytes, l.budget)
}

// Get returns orgID's item id; ErrNotFound if there is none or it is
// another organization's.
func (l *Library) Get(ctx context.Context, orgID, id string) (*Item, error) {
	return l.items.Get(ctx, orgID, id)
}

// List returns up to limit of orgID's items, newest first, older than
// before (an item id) when it is not "".
func (l *Library) List(ctx context.Context, orgID string, limit int, before string) ([]Item, error) {
	return l.items.List(ctx, orgID, limit, before)
}

// OpenItem returns a reader of the bytes of item, which the caller read
// with Get and closes: no second read of its record. ErrNotFound when the
// bytes are missing (deleted since).
func (l *Library) OpenItem(ctx context.Context, item *Item) (io.ReadCloser, error) {
	rc, err := l.store.Open(ctx, item.ID)
	if err != nil {
		return nil, fmt.Errorf("media: open %s: %w", item.ID, err)
	}
	return rc, nil
}

// Public returns item id, whatever its organization, and the URL its
// store serves it at for ttl (an S3 presigned GET), or "" when the store
// serves none: then OpenItem reads its bytes. For the signed public route
// only: its signature is the authorization.
func (l *Library) Public(ctx context.Context, id string, ttl time.Duration) (*Item, string, error) {
	item, err := l.items.GetByID(ctx, id)
	if err != nil {
		return nil, "", err
	}
	u, err := l.store.PresignedURL(ctx, item.ID, ttl)
	if err != nil {
		return nil, "", fmt.Errorf("media: presign %s: %w", item.ID, err)
	}
	return item, u, nil
}

// Delete removes orgID's item id, its record then its bytes. ErrInUse while
// a post that is not yet published uses it; ErrNotFound as Get.
//
// A post naming the item may be written at the same moment. Each side
// writes first and reads the other's write after: Delete marks the item
// (MarkDeleting), then asks inUse; a post's create or edit stores the post,
// then reads its images again, a marked one counting as gone, and undoes
// its write if one is (posts.Service). Whichever way the four steps
// interleave, one side reads the other's write, so they do not both
// succeed (both may fail, and the caller may try again).
//
// Two deletes of one item take turns (the mark is one delete's): the
// second waits up to markedWait for the first, then answers as the item
// is (ErrNotFound once deleted), or ErrBeingDeleted.
func (l *Library) Delete(ctx context.Context, orgID, id string) error {
	item, err := l.items.Get(ctx, orgID, id)
	if err != nil {
		return err
	}
	if err := l.mark(ctx, orgID, item.ID); err != nil {
		return err
	}
	// Until the record goes, a failure must not leave the item marked:
	// posts could no longer name it. A cancelled request included.
	unmark := func(cause error) error {
		if err := l.items.MarkDeleting(context.WithoutCancel(ctx), orgID, item.ID, false); err != nil {
			return errors.Join(cause, fmt.Errorf("media: unmark %s: %w", item.ID, err))
		}
		return cause
	}
	used, err := l.inUse(ctx, orgID, item.ID)
	if err != nil {
		return unmark(fmt.Errorf("media: is %s in use: %w", item.ID, err))
	}
	if used {
		return unmark(ErrInUse)
	}
	if err := l.items.Delete(ctx, orgID, item.ID); err != nil {
		return unmark(err)
	}
	// The record is gone, so the item is; bytes left by a failure here
	// are unreachable, and the error says which.
	if err := l.store.Delete(context.WithoutCancel(ctx), item.ID); err != nil {
		return fmt.Errorf("media: remove the bytes of %s: %w", item.ID, err)
	}
	return nil
}

// markedWait is how long a delete waits for another delete of the same
// item, which holds its mark for milliseconds (two reads and a write).
const markedWait = time.Second

// mark sets the item's mark for this delete, waiting for another delete
// holding it to end. Errors: ErrNotFound (that delete removed it),
// ErrBeingDeleted, the store's.
func (l *Library) mark(ctx context.Context, orgID, id string) error {
	deadline := time.Now().Add(markedWait)
	for {
		err := l.items.MarkDeleting(ctx, orgID, id, true)
		if errors.Is(err, ErrNotFound) {
			return err
		}
		if !errors.Is(err, ErrBeingDeleted) {
			if err != nil {
				return fmt.Errorf("media: mark %s as being deleted: %w", id, err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// maxFilename bounds the name kept for an upload, in bytes.
const maxFilename = 255

// cleanFilename keeps the last element of a client's file name (browsers
// may send a full path), without control characters, at most maxFilename
// bytes on a rune boundary: it is shown to people, never used as a path.
func cleanFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > maxFilename {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}
