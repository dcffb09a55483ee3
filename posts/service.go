package posts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/echo"
	"github.com/postflow/postflow/internal/ids"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/webhooks"
)

// InvalidError is input a post cannot have. Its Kind says how it is
// wrong; the API alone turns that into a status.
type InvalidError struct {
	Kind    InvalidKind
	Code    string
	Message string
	// Details, when set, say the same as Message field by field for a
	// client (a MediaRejection, a MediaNotFound); JSON.
	Details any
}

func (e *InvalidError) Error() string { return e.Code + ": " + e.Message }

// InvalidKind is how input is wrong.
type InvalidKind int

const (
	// Malformed: the input cannot be read as what it claims to be (an id
	// that is not one, a time without an offset, no visible content).
	Malformed InvalidKind = iota + 1
	// Unacceptable: well formed, but not a post PostFlow can take (an
	// account that is not connected, a text over its network's limit).
	Unacceptable
)

// invalid is input that is well formed but unacceptable.
func invalid(code, format string, args ...any) *InvalidError {
	return &InvalidError{Kind: Unacceptable, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Accounts finds an organization's connected accounts.
type Accounts interface {
	Get(ctx context.Context, orgID, id string) (*connections.Account, error)
}

// Runner starts and cancels publish runs (the PublishPost workflow).
type Runner interface {
	// Start starts the run of the post, or returns the one already
	// running.
	Start(ctx context.Context, p *Post) (runID string, err error)
	// Cancel cancels the run of postID, if any.
	Cancel(ctx context.Context, postID string) error
	// Reschedule tells the run of postID, if any, that its time changed.
	Reschedule(ctx context.Context, postID string) error
}

// WorkflowID is the id of a post's publish run: derived from the post, so
// that Temporal itself refuses a second concurrent run.
func WorkflowID(postID string) string { return "publish:" + postID }

// Service is what the HTTP layer does with posts.
type Service struct {
	store     Store
	accounts  Accounts
	providers *providers.Registry
	runner    Runner
	// unpublisher starts unpublish runs; nil: Unpublish is not offered.
	unpublisher UnpublishRunner
	media       MediaItems
	now         func() time.Time
	// events, if not nil, announces cancelled posts (post.cancelled);
	// logger says when it cannot.
	events webhooks.Sink
	logger *slog.Logger
}

// WithEvents returns a copy of s that announces the posts it cancels to
// sink, logging to logger an announcement that fails (the cancel stands).
func (s *Service) WithEvents(sink webhooks.Sink, logger *slog.Logger) *Service {
	c := *s
	c.events, c.logger = sink, logger
	return &c
}

// WithUnpublisher returns a copy of s whose Unpublish starts runs on u.
func (s *Service) WithUnpublisher(u UnpublishRunner) *Service {
	c := *s
	c.unpublisher = u
	return &c
}

// NewService wires a Service. items is the organizations' media
// libraries, which a post's images are looked up in; nil: there is none,
// and a post naming an image is refused (media_not_found).
func NewService(store Store, accounts Accounts, reg *providers.Registry, runner Runner, items MediaItems) *Service {
	return &Service{store: store, accounts: accounts, providers: reg, runner: runner, media: items, now: time.Now}
}

// Input is a create or edit request; nil fields are left as they are.
type Input struct {
	Content          *string             `json:"content"`
	SocialAccountIDs *[]string           `json:"socialAccountIds"`
	Variants         *map[string]Variant `json:"variants"`
	// Media replaces the post's images ([] removes them); a variant's
	// Media, when set, replaces them for its account.
	Media *[]MediaRef `json:"media"`
	// ScheduledAt is RFC 3339 with an offset; "" clears it.
	ScheduledAt *string `json:"scheduledAt"`
}

// MaxAccounts bounds the fan-out of one post.
const MaxAccounts = 50

// apply validates in against p's organization and applies it to p.
func (s *Service) apply(ctx context.Context, p *Post, in Input) error {
	if in.Content != nil {
		p.Content = *in.Content
	}
	if in.SocialAccountIDs != nil {
		p.SocialAccountIDs = *in.SocialAccountIDs
	}
	if in.Variants != nil {
		p.Variants = *in.Variants
	}
	if in.Media != nil {
		p.Media = *in.Media
	}
	if in.ScheduledAt != nil {
		if *in.ScheduledAt == "" {
			p.ScheduledAt = nil
		} else {
			t, err := ParseInstant(*in.ScheduledAt)
			if err != nil {
				return err
			}
			p.ScheduledAt = &t
		}
	}
	return s.check(ctx, p)
}

// check validates p against its organization's accounts, their networks'
// rules and its media library: what a create, an edit and a trigger
// (Publish) require. It brings p's ids to their canonical spelling.
func (s *Service) check(ctx context.Context, p *Post) error {
	if len(p.SocialAccountIDs) == 0 {
		return invalid("no_accounts", "Choose at least one connected account in socialAccountIds.")
	}
	if len(p.SocialAccountIDs) > MaxAccounts {
		return invalid("too_many_accounts", "A post goes to at most %d accounts.", MaxAccounts)
	}
	if err := canonicalIDs(p); err != nil {
		return err
	}
	if err := canonicalMedia(p); err != nil {
		return err
	}
	// Every text is checked, even one overridden for every account: a
	// variant removed later falls back to the content.
	if err := checkText("content", p.Content); err != nil {
		return err
	}
	// A variant's content "" (or absent) inherits the post's (ContentFor),
	// so a variant may change only the images; one that changes nothing
	// at all is a mistake, said as such.
	for _, id := range p.SocialAccountIDs {
		v, ok := p.Variants[id]
		switch {
		case !ok:
		case v.Content == "" && v.Media == nil:
			return &InvalidError{Kind: Malformed, Code: "empty_content",
				Message: fmt.Sprintf("The variant for %s sets neither content nor media; give it one, or leave the variant out.", id)}
		case v.Content != "":
			if err := checkText("variant for "+id, v.Content); err != nil {
				return err
			}
		}
	}
	items, err := s.mediaItems(ctx, p)
	if err != nil {
		return err
	}
	for _, id := range p.SocialAccountIDs {
		a, err := s.accounts.Get(ctx, p.OrganizationID, id)
		if errors.Is(err, connections.ErrNotFound) {
			// Another organization's account answers like a missing one.
			return invalid("unknown_account", "No connected account %s in this organization.", id)
		}
		if err != nil {
			return err
		}
		text := p.ContentFor(id)
		prov, ok := s.providers.Get(a.Platform)
		if !ok {
			return invalid("platform_unavailable", "%s accounts cannot be published to on this deployment.", a.Platform)
		}
		limits, err := prov.TextLimits(ctx, a.Provider(""))
		if err != nil {
			return fmt.Errorf("text limits of account %s: %w", id, err)
		}
		if l, n, over := providers.Over(limits, text); over {
			what := "The content"
			if _, ok := p.Variants[id]; ok {
				what = "The variant"
			}
			return invalid("content_too_long", "%s for %s (account %s) is %d %s; %s takes at most %d %s.",
				what, a.DisplayName, id, n, l.Unit, prov.Name(), l.Max, l.Unit)
		}
		if err := checkMedia(ctx, p, a, prov, items); err != nil {
			return err
		}
	}
	return nil
}

// canonicalIDs brings p's account ids and variant keys to their one
// spelling (ids.Parse), so that an account named twice, once in capitals,
// is found twice rather than published to twice; then checks that no
// account is listed twice and that every variant is for a listed account.
func canonicalIDs(p *Post) error {
	seen := map[string]bool{}
	for i, raw := range p.SocialAccountIDs {
		id, err := ids.Parse(raw)
		if err != nil {
			return &InvalidError{Kind: Malformed, Code: "invalid_id", Message: fmt.Sprintf("socialAccountIds[%d] is not an account id (24 hex digits).", i)}
		}
		if seen[id] {
			return invalid("duplicate_account", "Account %s is listed twice.", id)
		}
		seen[id] = true
		p.SocialAccountIDs[i] = id
	}
	if p.Variants == nil {
		return nil
	}
	variants := make(map[string]Variant, len(p.Variants))
	for raw, v := range p.Variants {
		id, err := ids.Parse(raw)
		if err != nil {
			return &InvalidError{Kind: Malformed, Code: "invalid_id", Message: fmt.Sprintf("The variants key %s is not an account id (24 hex digits).", echo.Quote(raw))}
		}
		if _, ok := variants[id]; ok {
			return invalid("duplicate_variant", "Account %s has two variants (its id is spelled two ways).", id)
		}
		if !seen[id] {
			return invalid("unknown_variant", "The variant for %s is for an account the post does not go to.", id)
		}
		variants[id] = v
	}
	p.Variants = variants
	return nil
}

// ParseInstant reads an RFC 3339 time that carries its offset ("Z" or
// "+02:00") and returns it in UTC. A time without an offset names no
// instant and is refused.
func ParseInstant(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &InvalidError{Kind: Malformed, Code: "invalid_scheduled_at",
			Message: "scheduledAt must be an RFC 3339 time with a UTC offset, such as 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00."}
	}
	return t.UTC(), nil
}

// Create validates and stores a new post: scheduled when it has a time,
// else a draft.
func (s *Service) Create(ctx context.Context, orgID string, in Input) (*Post, error) {
	if in.Content == nil {
		return nil, &InvalidError{Kind: Malformed, Code: "empty_content", Message: "content is required."}
	}
	now := s.now().UTC()
	p := &Post{OrganizationID: orgID, Status: StatusDraft, CreatedAt: now, UpdatedAt: now}
	if err := s.apply(ctx, p, in); err != nil {
		return nil, err
	}
	if p.ScheduledAt != nil {
		p.Status = StatusScheduled
	}
	created, err := s.store.Create(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := s.recheckMedia(ctx, created); err != nil {
		// Undone whatever the request's fate: the post must not stay
		// with an image that is gone.
		if derr := s.store.Delete(context.WithoutCancel(ctx), orgID, created.ID); derr != nil {
			return nil, errors.Join(err, fmt.Errorf("remove the post %s written with it: %w", created.ID, derr))
		}
		return nil, err
	}
	return created, nil
}

// recheckMedia reads p's images again once p is stored: a library item
// deleted (or being deleted) between the check and the write is
// media_not_found. Stored first, read after: the other half of
// media.Library.Delete's mark-then-check, so a post and a delete of its
// image do not both succeed.
func (s *Service) recheckMedia(ctx context.Context, p *Post) error {
	if len(p.MediaIDs()) == 0 {
		return nil
	}
	_, err := s.mediaItems(ctx, p)
	return err
}

// Get returns a post with its results.
func (s *Service) Get(ctx context.Context, orgID, id string) (*Post, []Result, error) {
	p, err := s.store.Get(ctx, orgID, id)
	if err != nil {
		return nil, nil, err
	}
	results, err := s.store.Results(ctx, p)
	return p, results, err
}

// List returns a page of the organization's posts, newest first.
func (s *Service) List(ctx context.Context, orgID string, f ListFilter) ([]Post, error) {
	return s.store.List(ctx, orgID, f)
}

// editable are the statuses in which a post may still change.
var editable = []Status{StatusDraft, StatusScheduled, StatusQueued, StatusFailed}

// Update edits a post that is not published yet. A queued post's run
// reads the post again when its time comes, so it publishes the latest
// content; when the time itself moved, the run is told, and its timer
// follows.
func (s *Service) Update(ctx context.Context, orgID, id string, in Input) (*Post, error) {
	p, err := s.store.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	from := p.Status
	// apply replaces p's fields rather than writing into them (ids are
	// stored canonical already), so prev stays the version read.
	prev := *p
	if err := s.apply(ctx, p, in); err != nil {
		return nil, err
	}
	if !slices.Contains(editable, from) {
		return nil, ErrConflict
	}
	if from == StatusDraft || from == StatusScheduled {
		p.Status = StatusDraft
		if p.ScheduledAt != nil {
			p.Status = StatusScheduled
		}
	}
	p.UpdatedAt = s.now().UTC()
	// Written only over the status read: the status written is derived
	// from it, so a post queued meanwhile (its run going) was put back
	// to draft, and one whose run failed meanwhile back to queued.
	updated, err := s.store.Update(ctx, p, from)
	if err != nil {
		return nil, err
	}
	if err := s.recheckMedia(ctx, updated); err != nil {
		// Put back the version this edit replaced, if nothing moved
		// the post on since (its run then meets the missing image).
		if _, rerr := s.store.Update(context.WithoutCancel(ctx), &prev, updated.Status); rerr != nil && !errors.Is(rerr, ErrConflict) {
			return nil, errors.Join(err, fmt.Errorf("restore post %s: %w", p.ID, rerr))
		}
		return nil, err
	}
	if in.ScheduledAt != nil && from == StatusQueued {
		// The post is saved: if this fails, the run still publishes at
		// the old time with the new content, so say so.
		if err := s.runner.Reschedule(ctx, p.ID); err != nil {
			return nil, fmt.Errorf("post saved, but its run did not take the new time: %w", err)
		}
	}
	return updated, nil
}

// Delete deletes a post. A scheduled or queued one is cancelled instead:
// its run is stopped, and it stays, as cancelled, so nobody wonders where
// it went. A post being published cannot be deleted, nor one being
// unpublished (ErrUnpublishRunning): its run's end would have no post to
// announce.
func (s *Service) Delete(ctx context.Context, orgID, id string) error {
	// Twice at most: a post whose status moved between the read and the
	// delete (a publish queued it) is decided on again as it is now.
	for try := 0; ; try++ {
		err := s.delete(ctx, orgID, id)
		var moved *StatusError
		if !errors.As(err, &moved) {
			return err
		}
		if try == 1 {
			return ErrConflict
		}
	}
}

// delete is one try of Delete: *StatusError when the post's status moved
// since it was read.
func (s *Service) delete(ctx context.Context, orgID, id string) error {
	p, err := s.store.Get(ctx, orgID, id)
	if err != nil {
		return err
	}
	switch p.Status {
	case StatusPublishing:
		return ErrConflict
	case StatusQueued, StatusScheduled:
		cancelled, err := s.store.SetStatus(ctx, p, StatusCancelled, StatusQueued, StatusScheduled)
		if err != nil {
			return err
		}
		s.announceCancel(ctx, cancelled)
		return s.runner.Cancel(ctx, p.ID)
	case StatusPublished, StatusFailed:
		if err := s.refuseWhileUnpublishing(ctx, p.ID); err != nil {
			return err
		}
	}
	// Deleted only as read, in one step with the checks: a publish that
	// queued the post meanwhile (its run would find no post), or an
	// unpublish that claimed it, wins over this.
	return s.unclaimed(ctx, p.ID, func(takeOver string) error {
		return s.store.DeleteIf(ctx, orgID, p.ID, takeOver, p.Status)
	})
}

// announceCancel emits post.cancelled for p, once: a post is cancelled
// only once (cancelled is final), so its id needs no run. A failure is
// logged, not returned: the post is cancelled, and a DELETE repeated on a
// cancelled post would delete it.
func (s *Service) announceCancel(ctx context.Context, p *Post) {
	if s.events == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	results, err := s.store.Results(ctx, p)
	if err == nil {
		var ev *webhooks.Event
		if ev, err = NewEvent(p, results, s.now(), ""); err == nil && ev != nil {
			err = s.events.Emit(ctx, ev)
		}
	}
	if err != nil && s.logger != nil {
		s.logger.ErrorContext(ctx, "could not announce the cancelled post to its webhooks", "post_id", p.ID, "error", err)
	}
}

// ErrAlreadyPublished: publishing again needs asking for it.
var ErrAlreadyPublished = errors.New("posts: already published")

// Publish queues the post and starts its run, or returns the run already
// going: triggering twice never publishes twice. A published post is only
// published again when again is true; a failed one is published to the
// accounts that did not get it (and, when again is true, to those whose
// outcome was unknown). ErrUnpublishRunning: the post is published and its
// unpublish run has not ended.
func (s *Service) Publish(ctx context.Context, orgID, id string, again bool) (workflowID, runID string, err error) {
	p, err := s.store.Get(ctx, orgID, id)
	if err != nil {
		return "", "", err
	}
	running := p.Status == StatusQueued || p.Status == StatusPublishing // Start returns its run
	switch {
	case p.Status == StatusCancelled:
		return "", "", ErrConflict
	case p.Status == StatusPublished && !again:
		return "", "", ErrAlreadyPublished
	}
	if !running {
		// Everything a run needs is checked before anything is changed:
		// a trigger refused leaves the post and its results as they were
		// (a published post's results are the record of it on the
		// networks). Only a refusal stops it: a network whose rules cannot be read
		// now (an outage) is the run's to wait out, with its retries; the
		// images are read again below whatever happens here.
		var inv *InvalidError
		if err := s.check(ctx, p); errors.As(err, &inv) {
			return "", "", err
		}
		from := p.Status
		var queued *Post
		if from == StatusPublished { // again: every result is forgotten
			if err := s.refuseWhileUnpublishing(ctx, p.ID); err != nil {
				return "", "", err
			}
			// Queued in one step with the check of the post's unpublish
			// claim: an unpublish claiming it meanwhile wins, or loses.
			err = s.unclaimed(ctx, p.ID, func(takeOver string) (err error) {
				queued, err = s.store.SetStatusIf(ctx, p, StatusQueued, takeOver, from)
				return err
			})
		} else {
			queued, err = s.store.SetStatus(ctx, p, StatusQueued, from)
		}
		if err != nil {
			return "", "", err
		}
		// A published or failed post does not hold its images: one may
		// have been deleted since the check. Queued, it holds them, so
		// reading them again now settles it (as recheckMedia does for
		// an edit).
		if err := s.recheckMedia(ctx, queued); err != nil {
			if _, rerr := s.store.SetStatus(context.WithoutCancel(ctx), queued, from, StatusQueued); rerr != nil {
				return "", "", errors.Join(err, fmt.Errorf("put post %s back to %s: %w", p.ID, from, rerr))
			}
			return "", "", err
		}
		switch {
		case from == StatusPublished:
			if err := s.store.ResetResults(ctx, p); err != nil { // every account again
				return "", "", err
			}
		case from == StatusFailed:
			// Published accounts are never published to again; failed
			// ones are, as a new publication: their results are
			// forgotten, since a run leaves out the accounts whose result
			// is final (see Retry). Unknown ones only when asked: the
			// caller checked the platform and the post is not there.
			only := []ResultStatus{ResultFailed}
			if again {
				only = append(only, ResultUnknown)
			}
			if err := s.store.ResetResults(ctx, p, only...); err != nil {
				return "", "", err
			}
		}
		p = queued
	}
	runID, err = s.runner.Start(ctx, p)
	if err != nil {
		return "", "", err
	}
	return WorkflowID(p.ID), runID, nil
}
