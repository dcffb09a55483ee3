package posts

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/postflow/postflow/webhooks"
)

// Overdue is a post whose time passed by more than the margin
// (OVERDUE_AFTER) without a final state: scheduled, queued or publishing
// still. Publishing has stalled (no worker, a run stuck) or waits long on
// a network (rate limits): either way someone should look.
type Overdue struct {
	ID             string     `json:"id"`
	OrganizationID string     `json:"organizationId"`
	Status         Status     `json:"status"`
	ScheduledAt    *time.Time `json:"scheduledAt,omitempty"`
	// DueAt is when the post should have gone out: the later of its
	// scheduledAt and its last change of state (its trigger, for a post
	// published now; when its run took it up).
	DueAt time.Time `json:"dueAt"`
	// AnnouncedAt is when its post.overdue event was emitted; nil: not yet.
	AnnouncedAt *time.Time `json:"announcedAt,omitempty"`
}

// OverdueStore finds overdue posts. A post is overdue at `now` when its
// status is scheduled, queued or publishing and its due time (Overdue.DueAt)
// is before cutoff = now - margin.
type OverdueStore interface {
	// Overdue lists overdue posts, longest overdue first, at most limit;
	// with unannounced, only those whose event was not emitted.
	Overdue(ctx context.Context, cutoff time.Time, unannounced bool, limit int) ([]Overdue, error)
	// CountOverdue counts overdue posts.
	CountOverdue(ctx context.Context, cutoff time.Time) (int, error)
	// MarkOverdueAnnounced records that o's event was emitted at `at`,
	// if the post is still as o read it (its status, no change of state
	// since o.DueAt). A change of the post's state (an edit, its run
	// moving it on) clears the mark, and one during the announcement
	// leaves none: overdue again later, it is announced again.
	MarkOverdueAnnounced(ctx context.Context, o Overdue, at time.Time) error
}

// OverdueEventData is the "data" of a post.overdue event: the post and
// every account's result so far (as GET /posts/{id} answers them), when
// it was due, and the margin it passed.
type OverdueEventData struct {
	Post                *Post     `json:"post"`
	Results             []Result  `json:"results"`
	DueAt               time.Time `json:"dueAt"`
	OverdueAfterSeconds int64     `json:"overdueAfterSeconds"`
}

// OverdueWatch looks for overdue posts: it counts them (for a gauge) and
// announces each once with a post.overdue event. Every process may run
// one: the event's id is derived from the post and its due time, and the
// mark is written after the emit, so two watchers, or a watcher that
// stops between the two, emit the same event, which is delivered once.
type OverdueWatch struct {
	Store interface {
		Store
		OverdueStore
	}
	// After is the margin (OVERDUE_AFTER).
	After time.Duration
	// Events receives the post.overdue events; nil announces nothing
	// (the posts are still counted and logged).
	Events webhooks.Sink
	// Count, if not nil, is told how many posts are overdue at each check.
	Count  func(n int)
	Logger *slog.Logger
	Now    func() time.Time
}

// overdueBatch bounds the announcements of one check: the rest wait for
// the next one.
const overdueBatch = 100

func (w *OverdueWatch) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// List returns the overdue posts now, longest overdue first, at most limit.
func (w *OverdueWatch) List(ctx context.Context, limit int) ([]Overdue, error) {
	return w.Store.Overdue(ctx, w.now().Add(-w.After), false, limit)
}

// Check counts the overdue posts and announces those not yet announced.
// Each newly overdue post is logged at ERROR: it needs a person.
func (w *OverdueWatch) Check(ctx context.Context) error {
	cutoff := w.now().Add(-w.After)
	n, err := w.Store.CountOverdue(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("overdue posts: count: %w", err)
	}
	if w.Count != nil {
		w.Count(n)
	}
	if n == 0 {
		return nil
	}
	fresh, err := w.Store.Overdue(ctx, cutoff, true, overdueBatch)
	if err != nil {
		return fmt.Errorf("overdue posts: list: %w", err)
	}
	for _, o := range fresh {
		w.Logger.ErrorContext(ctx, "Post overdue: its time passed without a final state; is a worker polling?",
			"PostID", o.ID, "OrganizationID", o.OrganizationID, "Status", o.Status, "DueAt", o.DueAt, "OverdueAfter", w.After)
		if err := w.announce(ctx, o); err != nil {
			return err
		}
		if err := w.Store.MarkOverdueAnnounced(ctx, o, w.now()); err != nil {
			return fmt.Errorf("overdue posts: mark %s: %w", o.ID, err)
		}
	}
	return nil
}

// announce emits o's post.overdue event, identified by the post and its
// due time.
func (w *OverdueWatch) announce(ctx context.Context, o Overdue) error {
	if w.Events == nil {
		return nil
	}
	p, err := w.Store.GetByID(ctx, o.ID)
	if err != nil {
		return fmt.Errorf("overdue posts: read %s: %w", o.ID, err)
	}
	results, err := w.Store.Results(ctx, p)
	if err != nil {
		return fmt.Errorf("overdue posts: results of %s: %w", o.ID, err)
	}
	if results == nil {
		results = []Result{}
	}
	data := OverdueEventData{Post: p, Results: results, DueAt: o.DueAt, OverdueAfterSeconds: int64(w.After / time.Second)}
	ev, err := webhooks.NewEvent(p.OrganizationID, webhooks.PostOverdue, w.now(), data, p.ID, o.DueAt.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("overdue posts: event of %s: %w", o.ID, err)
	}
	if err := w.Events.Emit(ctx, ev); err != nil {
		return fmt.Errorf("overdue posts: emit for %s: %w", o.ID, err)
	}
	return nil
}

// Run checks every `every` until ctx is done. A failed check is logged
// and tried again at the next tick: the store may be down for a while.
func (w *OverdueWatch) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.Logger.WarnContext(ctx, "overdue posts: check failed; trying again at the next tick", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// OverdueCheckEvery is how often a process checks for overdue posts with
// margin after: every minute, or more often for a margin under two.
func OverdueCheckEvery(after time.Duration) time.Duration {
	return min(time.Minute, max(after/2, time.Second))
}
