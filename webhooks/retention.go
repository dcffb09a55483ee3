package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// MinRetention is the shortest time events and deliveries are kept
// (WEBHOOK_RETENTION): longer than RetrySchedule (about 27.6 hours with
// each attempt's AttemptTimeout) by more than half a day, so that no
// event is removed while a delivery of it can still run. A redelivery asked for
// near the end of an event's retention stops when the event is removed
// (Deliverer.Attempt: the event is gone).
const MinRetention = 48 * time.Hour

// DefaultRetention keeps events and deliveries 30 days.
const DefaultRetention = 30 * 24 * time.Hour

// Remover removes old events and deliveries in bounded batches
// (internal/mongostore). Each call removes up to limit records stamped
// before cutoff (an Event's Timestamp, a Delivery's At) and returns how
// many it removed: fewer than limit means none older is left.
type Remover interface {
	RemoveEventsBefore(ctx context.Context, cutoff time.Time, limit int) (int, error)
	RemoveDeliveriesBefore(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// PruneEvery is how often the worker prunes (internal/app); PruneBatch
// bounds one removal, so that no single delete holds the store long.
const (
	PruneEvery = time.Hour
	PruneBatch = 500
)

// Pruner removes events and deliveries older than Keep. Where the store
// keeps them by itself (a MongoDB TTL index), it finds little to do; on
// FerretDB, which has no TTL indexes, it is what removes them.
type Pruner struct {
	Store Remover
	// Keep is how long records are kept, at least MinRetention.
	Keep   time.Duration
	Logger *slog.Logger
	// Now is the clock (time.Now when nil); for tests.
	Now func() time.Time
}

// Pruned counts what one Prune removed.
type Pruned struct {
	Events, Deliveries int
}

// Prune removes every event and delivery stamped before now - Keep,
// PruneBatch at a time, until a batch comes back short or ctx is done.
// It returns what it removed, also on error; a Keep below MinRetention
// is an error and removes nothing.
func (p *Pruner) Prune(ctx context.Context) (Pruned, error) {
	var n Pruned
	if p.Keep < MinRetention {
		return n, fmt.Errorf("webhooks: retention %s is shorter than %s, which outlasts the delivery schedule", p.Keep, MinRetention)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	cutoff := now().UTC().Add(-p.Keep)
	var errs []error
	for _, c := range []struct {
		what   string
		remove func(context.Context, time.Time, int) (int, error)
		count  *int
	}{
		{"deliveries", p.Store.RemoveDeliveriesBefore, &n.Deliveries},
		{"events", p.Store.RemoveEventsBefore, &n.Events},
	} {
		for ctx.Err() == nil {
			k, err := c.remove(ctx, cutoff, PruneBatch)
			*c.count += k
			if err != nil {
				errs = append(errs, fmt.Errorf("webhooks: remove %s before %s: %w", c.what, cutoff.Format(time.RFC3339), err))
				break
			}
			if k < PruneBatch {
				break
			}
		}
	}
	if len(errs) == 0 && ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return n, errors.Join(errs...)
}

// RunPruner prunes at once and then every interval until ctx is done,
// logging what it removed at INFO and a failure at ERROR (the next run
// tries again). Every worker prunes: a record two remove is gone once.
func (p *Pruner) RunPruner(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := p.Prune(ctx)
		switch {
		case p.Logger == nil || ctx.Err() != nil:
		case err != nil:
			p.Logger.ErrorContext(ctx, "could not remove every old webhook record", "events", n.Events, "deliveries", n.Deliveries, "error", err)
		case n.Events+n.Deliveries > 0:
			p.Logger.InfoContext(ctx, "removed old webhook records", "events", n.Events, "deliveries", n.Deliveries, "kept", p.Keep.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
