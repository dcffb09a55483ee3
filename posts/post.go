// Package posts is what an organization publishes: the Post, its
// per-account PublishResults, the rules a post must follow before it can
// be published, and the trigger that hands it to the publishing workflow.
package posts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postflow/postflow/providers"
)

// Status is where a post is in its lifecycle:
// draft|scheduled → queued → publishing → published|failed; cancelled when
// a scheduled post is deleted.
type Status string

const (
	StatusDraft      Status = "draft"
	StatusScheduled  Status = "scheduled"
	StatusQueued     Status = "queued"
	StatusPublishing Status = "publishing"
	StatusPublished  Status = "published"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
)

// Variant overrides the post's content, its images, or both, for one
// account.
type Variant struct {
	// Content, when not "", replaces the post's text for the account;
	// "" (or absent) inherits it.
	Content string `json:"content,omitempty"`
	// Media, when set, replaces the post's images for the account; an
	// empty list sends none.
	Media *[]MediaRef `json:"media,omitempty"`
}

// MediaRef is an image of the organization's media library on a post.
type MediaRef struct {
	// ID is the media item's id (GET /media/{id}).
	ID string `json:"id"`
	// AltText describes the image for people who cannot see it.
	AltText string `json:"altText,omitempty"`
}

// Post is one piece of content for one or more accounts.
type Post struct {
	ID               string             `json:"id"`
	OrganizationID   string             `json:"organizationId"`
	Content          string             `json:"content"`
	SocialAccountIDs []string           `json:"socialAccountIds"`
	Variants         map[string]Variant `json:"variants,omitempty"`
	// Media are the images every account gets unless its variant names
	// others.
	Media         []MediaRef `json:"media,omitempty"`
	ScheduledAt   *time.Time `json:"scheduledAt,omitempty"`
	Status        Status     `json:"status"`
	PublishedAt   *time.Time `json:"publishedAt,omitempty"`
	FailureReason string     `json:"failureReason,omitempty"`
	FailureCode   string     `json:"failureCode,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
}

// ContentFor is the text to publish to account: its variant, else the
// post's content.
func (p *Post) ContentFor(accountID string) string {
	if v, ok := p.Variants[accountID]; ok && v.Content != "" {
		return v.Content
	}
	return p.Content
}

// MediaFor is the images to publish to account: its variant's, if it sets
// any (an empty list: none), else the post's.
func (p *Post) MediaFor(accountID string) []MediaRef {
	if v, ok := p.Variants[accountID]; ok && v.Media != nil {
		return *v.Media
	}
	return p.Media
}

// MediaIDs lists every media item the post uses, for itself or a variant,
// each once, sorted: what a library's delete must not remove while the post is not
// yet published.
func (p *Post) MediaIDs() []string {
	var ids []string
	seen := map[string]bool{}
	add := func(refs []MediaRef) {
		for _, r := range refs {
			if !seen[r.ID] {
				seen[r.ID] = true
				ids = append(ids, r.ID)
			}
		}
	}
	add(p.Media)
	for _, v := range p.Variants {
		if v.Media != nil {
			add(*v.Media)
		}
	}
	slices.Sort(ids)
	return ids
}

// ResultStatus is the outcome for one account.
type ResultStatus string

const (
	// ResultPublishing: an attempt was recorded before calling the
	// platform and its outcome is not known yet (in flight, or its answer
	// was lost). The next attempt reconciles before posting again.
	ResultPublishing ResultStatus = "publishing"
	// ResultPending: the platform refused the last attempt without acting
	// on it (a 429, a 503); the post will be tried again.
	ResultPending   ResultStatus = "pending"
	ResultPublished ResultStatus = "published"
	ResultFailed    ResultStatus = "failed"
	// ResultUnknown: an attempt may have been published and the platform
	// cannot say; errorMessage tells an operator what to check. Never
	// retried on its own: publishing again is an operator's decision.
	ResultUnknown ResultStatus = "unknown"
)

// Result is a PublishResult: the outcome of a post for one account.
type Result struct {
	PostID          string       `json:"postId"`
	SocialAccountID string       `json:"socialAccountId"`
	Status          ResultStatus `json:"status"`
	PlatformPostID  string       `json:"platformPostId,omitempty"`
	PlatformPostURL string       `json:"platformPostUrl,omitempty"`
	PublishedAt     *time.Time   `json:"publishedAt,omitempty"`
	ErrorCode       string       `json:"errorCode,omitempty"`
	ErrorMessage    string       `json:"errorMessage,omitempty"`
	// ErrorCategory is what kind of failure ErrorCode is, the same list
	// for every network (Categorize); ErrorAction what it calls for
	// (Category.Action), filled in as the result is read (Explain).
	ErrorCategory Category `json:"errorCategory,omitempty"`
	ErrorAction   Action   `json:"errorAction,omitempty"`
	// Attempts counts the calls made to the platform for this account;
	// AttemptedAt is when the last one began.
	Attempts    int        `json:"attempts"`
	AttemptedAt *time.Time `json:"attemptedAt,omitempty"`
	// DoubtSince is when the earliest attempt began whose answer was lost
	// (a 504, no answer, a worker that died) and that nothing has proved
	// or disproved since; nil if none. See InDoubt.
	DoubtSince *time.Time `json:"doubtSince,omitempty"`
	// IdempotencyKey is what every attempt of this publication sends the
	// platform (providers.Payload.IdempotencyKey): made with the first
	// attempt, so a publication started again after a reset (POST
	// /publish?again=true) gets a new one and a new post.
	IdempotencyKey string `json:"-"`
	// Media are the images uploaded to the network for this post, kept
	// before the post is created so that a retry refers to them again
	// rather than uploading twice (contracts §8), in upload order.
	Media []MediaUpload `json:"media,omitempty"`
	// Unpublish, on a published result, is its removal from the network
	// (POST /posts/{id}/unpublish); nil: never asked.
	Unpublish *Unpublish `json:"unpublish,omitempty"`
	UpdatedAt time.Time  `json:"updatedAt"`
}

// MediaUpload is an image of the post as the account's network holds it.
type MediaUpload struct {
	providers.Upload
	// Adjusted says what PostFlow changed to fit the network's rules
	// ("re-encoded as image/jpeg, 1600x1067, 912,345 bytes, to fit
	// Bluesky's 1,000,000 bytes per image"); "" when sent as stored.
	Adjusted string `json:"adjusted,omitempty"`
	// Width and Height are the uploaded image's, in pixels (a re-encoded
	// one's differ from the library's): a retry's post gives the network
	// the same aspect ratio.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// Upload returns the upload of media item mediaID, if the result holds one.
func (r *Result) Upload(mediaID string) (MediaUpload, bool) {
	for _, u := range r.Media {
		if u.MediaID == mediaID {
			return u, true
		}
	}
	return MediaUpload{}, false
}

// Explain fills in what a reader of r is shown beside its code: the
// category of a failed or unknown result recorded before categories were
// (from its code alone), and the action its category calls for.
func (r *Result) Explain() {
	if r.ErrorCategory == "" {
		switch r.Status {
		case ResultUnknown:
			r.ErrorCategory = CategoryOutcomeUnknown
		case ResultFailed:
			r.ErrorCategory = Categorize(Cause{Code: r.ErrorCode})
		}
	}
	r.ErrorAction = r.ErrorCategory.Action()
	if r.Unpublish != nil {
		r.Unpublish.ErrorAction = r.Unpublish.ErrorCategory.UnpublishAction()
	}
}

// ErrNotFound: no such post in this organization.
var ErrNotFound = errors.New("posts: post not found")

// ErrConflict: the post's status does not allow the change.
var ErrConflict = errors.New("posts: the post's status does not allow this")

// StatusError is an ErrConflict that knows the post's status and the ones
// the change needs, so that the answer can say them: a draft refused an
// unpublish is told it is a draft, not what an edit would be refused for.
type StatusError struct {
	Status Status
	Want   []Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("posts: the post is %s; this needs it %s", e.Status, e.Wanted())
}

// Wanted is Want in words: "published or failed".
func (e *StatusError) Wanted() string {
	want := make([]string, len(e.Want))
	for i, s := range e.Want {
		want[i] = string(s)
	}
	return strings.Join(want, " or ")
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *StatusError) Is(target error) bool { return target == ErrConflict }

// ListFilter selects posts.
type ListFilter struct {
	Status Status
	Limit  int
	// Before is an id: only posts older than it (the next page).
	Before string
}

// Store keeps posts and their results.
type Store interface {
	Create(ctx context.Context, p *Post) (*Post, error)
	Get(ctx context.Context, orgID, id string) (*Post, error)
	GetByID(ctx context.Context, id string) (*Post, error)
	List(ctx context.Context, orgID string, f ListFilter) ([]Post, error)
	// Update replaces the editable fields if the post's status is one of
	// from (ErrConflict otherwise).
	Update(ctx context.Context, p *Post, from ...Status) (*Post, error)
	// SetStatus moves p, as the caller read it, to status if its status is
	// one of from (ErrConflict otherwise). MongoDB checks the stored status
	// in the write; FerretDB, where that filter would scan the collection,
	// checks p.Status: a development store, it leaves a race as narrow as
	// the caller's read-then-write.
	SetStatus(ctx context.Context, p *Post, status Status, from ...Status) (*Post, error)
	// Finish records the outcome of a publish run (ErrNotFound: the post
	// is gone).
	Finish(ctx context.Context, id string, status Status, publishedAt *time.Time, reason, code string) error
	// Delete removes the post and its results, but for the published
	// ones: ids only, kept so that PostByPlatformID still says whose a
	// platform post is.
	Delete(ctx context.Context, orgID, id string) error
	// DeleteIf deletes as Delete does if, in one atomic step, the post's
	// status is one of from and it holds no unpublish claim but the one
	// whose token is takeOver ("": none). Errors: ErrNotFound,
	// *StatusError, *ClaimedError.
	DeleteIf(ctx context.Context, orgID, id, takeOver string, from ...Status) error
	// SetStatusIf moves p to status as SetStatus does, in one atomic step
	// with the check that p holds no unpublish claim but the one whose
	// token is takeOver ("": none), which it clears. Errors: ErrNotFound,
	// *StatusError, *ClaimedError.
	SetStatusIf(ctx context.Context, p *Post, status Status, takeOver string, from ...Status) (*Post, error)
	// ClaimUnpublish sets c as the post's unpublish claim if, in one
	// atomic step, the post is published or failed and holds no claim
	// but the one whose token is takeOver ("": none). Errors:
	// ErrNotFound, *StatusError, *ClaimedError.
	ClaimUnpublish(ctx context.Context, postID string, c UnpublishClaim, takeOver string) error
	// NameUnpublishRun records runID in the post's claim of token;
	// ErrNotFound when the post holds that claim no longer.
	NameUnpublishRun(ctx context.Context, postID, token, runID string) error
	// ReleaseUnpublish clears the post's claim if it is the one of token
	// (token not "") or of the run runID (runID not ""); another claim,
	// none, or no post, is no error: a release repeated changes nothing.
	ReleaseUnpublish(ctx context.Context, postID, token, runID string) error

	// Results returns the post's results, in the order of its accounts.
	Results(ctx context.Context, p *Post) ([]Result, error)
	Result(ctx context.Context, postID, accountID string) (*Result, error)
	// SaveResult upserts the result of (post, account), adding r.Attempts
	// to its count. A published result is never overwritten. A doubt
	// is kept from its earliest DoubtSince until a published or failed
	// result settles it.
	SaveResult(ctx context.Context, r *Result) error
	// RecordFirstAttempt saves that the first attempt to publish (post,
	// account) begins at `at`, with its idempotency key, if it has no
	// result yet; false, nothing written, when it has one (read it, then
	// RecordAttempt).
	RecordFirstAttempt(ctx context.Context, postID, accountID string, at time.Time, idempotencyKey string) (bool, error)
	// RecordAttempt saves that an attempt to publish (post, account)
	// begins at `at`: publishing, one attempt more, unless published. prev
	// is the result as the caller read it (nil: none); FerretDB checks it
	// rather than the stored one, as SetStatus does. A doubt prev holds
	// (prev.DoubtStart) is kept.
	RecordAttempt(ctx context.Context, prev *Result, postID, accountID string, at time.Time) error
	// PostByPlatformID returns the post, and its account, whose published
	// result for one of accountIDs holds platformPostID ("" if none): who
	// a duplicate answer's post belongs to.
	PostByPlatformID(ctx context.Context, accountIDs []string, platformPostID string) (postID, accountID string, err error)
	// DoubtfulResults returns the results of accountIDs, other than
	// exceptPostID's, that are in doubt or unknown.
	DoubtfulResults(ctx context.Context, accountIDs []string, exceptPostID string) ([]Result, error)
	// SaveUpload keeps u with the result of (post, account), which an
	// attempt has recorded, replacing an earlier upload of the same
	// media item.
	SaveUpload(ctx context.Context, postID, accountID string, u MediaUpload) error
	// RecordUnpublishAttempt saves that a delete of the published post
	// of (post, account) begins at `at`: unpublish status unpublishing,
	// one attempt more, the last failure's error cleared. ErrNotFound: no
	// such result.
	RecordUnpublishAttempt(ctx context.Context, postID, accountID string, at time.Time) error
	// FinishUnpublish saves how the unpublish of (post, account) ended:
	// u's status, time and error; its attempts are kept. ErrNotFound: no
	// such result.
	FinishUnpublish(ctx context.Context, postID, accountID string, u Unpublish) error
	// ResetResults forgets the post's results whose status is one of
	// only, or all of them when only is empty: for a post published again.
	// Its attempts (AppendAttempt) are kept.
	ResetResults(ctx context.Context, p *Post, only ...ResultStatus) error
	// AppendAttempt adds a to the attempts of (post, account), keeping
	// the last MaxAttemptsKept.
	AppendAttempt(ctx context.Context, postID, accountID string, a Attempt) error
	// Attempts returns the attempts of (post, account), oldest first;
	// none: an empty list.
	Attempts(ctx context.Context, postID, accountID string) ([]Attempt, error)
	// UsesMedia reports whether a post of orgID that is not yet published
	// and not given up (draft, scheduled, queued, publishing) uses the
	// media item mediaID, for itself or a variant: what refuses a
	// library's delete (media.ErrInUse). Published, failed and cancelled
	// posts do not hold their media.
	UsesMedia(ctx context.Context, orgID, mediaID string) (bool, error)
}
