package webhooks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/postflow/postflow/webhooks"
)

// stampRemover holds records as their stamps and removes them as the
// store does: up to limit stamped before the cutoff per call.
type stampRemover struct {
	events, deliveries []time.Time
	cutoffs            []time.Time
	calls              int
	failDeliveries     error
}

func removeBefore(recs *[]time.Time, cutoff time.Time, limit int) int {
	kept, n := (*recs)[:0], 0
	for _, at := range *recs {
		if at.Before(cutoff) && n < limit {
			n++
			continue
		}
		kept = append(kept, at)
	}
	*recs = kept
	return n
}

func (r *stampRemover) RemoveEventsBefore(_ context.Context, cutoff time.Time, limit int) (int, error) {
	r.calls++
	r.cutoffs = append(r.cutoffs, cutoff)
	return removeBefore(&r.events, cutoff, limit), nil
}

func (r *stampRemover) RemoveDeliveriesBefore(_ context.Context, cutoff time.Time, limit int) (int, error) {
	r.calls++
	r.cutoffs = append(r.cutoffs, cutoff)
	if r.failDeliveries != nil {
		return 0, r.failDeliveries
	}
	return removeBefore(&r.deliveries, cutoff, limit), nil
}

func stamps(from time.Time, n int, step time.Duration) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = from.Add(time.Duration(i) * step)
	}
	return out
}

// Prune removes what is older than Keep, batch after batch until a short
// one, keeps the rest, and refuses a Keep shorter than the delivery
// schedule; a store's failure on one collection leaves the other pruned.
func TestPrune(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	keep := webhooks.DefaultRetention
	cutoff := now.Add(-keep)
	storeDown := errors.New("mongo: server selection timeout")
	for _, tt := range []struct {
		name           string
		keep           time.Duration
		events, dels   []time.Time
		failDeliveries error
		want           webhooks.Pruned
		wantErr        bool
		wantCalls      int
		wantLeft       int
	}{
		{name: "nothing old", keep: keep, events: stamps(cutoff, 3, time.Hour), dels: stamps(cutoff.Add(time.Second), 2, time.Minute),
			wantCalls: 2, wantLeft: 5},
		{name: "old and recent", keep: keep, events: stamps(cutoff.Add(-3*time.Hour), 6, time.Hour), dels: stamps(cutoff.Add(-time.Minute), 2, time.Minute),
			want: webhooks.Pruned{Events: 3, Deliveries: 1}, wantCalls: 2, wantLeft: 4},
		// 2*PruneBatch+1 old deliveries: two full batches, then a short one.
		{name: "in batches", keep: keep, dels: stamps(cutoff.Add(-48*time.Hour), 2*webhooks.PruneBatch+1, time.Second),
			want: webhooks.Pruned{Deliveries: 2*webhooks.PruneBatch + 1}, wantCalls: 4},
		// Exactly a batch: one more call finds nothing.
		{name: "a full batch then none", keep: keep, events: stamps(cutoff.Add(-time.Hour), webhooks.PruneBatch, time.Millisecond),
			want: webhooks.Pruned{Events: webhooks.PruneBatch}, wantCalls: 3},
		{name: "deliveries fail, events still pruned", keep: keep, events: stamps(cutoff.Add(-time.Hour), 2, time.Minute), failDeliveries: storeDown,
			want: webhooks.Pruned{Events: 2}, wantErr: true, wantCalls: 2},
		{name: "shorter than the schedule", keep: webhooks.MinRetention - time.Hour, events: stamps(cutoff.Add(-time.Hour), 2, time.Minute),
			wantErr: true, wantCalls: 0, wantLeft: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &stampRemover{events: tt.events, deliveries: tt.dels, failDeliveries: tt.failDeliveries}
			p := &webhooks.Pruner{Store: r, Keep: tt.keep, Now: func() time.Time { return now }}
			got, err := p.Prune(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Prune error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Prune = %+v, want %+v", got, tt.want)
			}
			if r.calls != tt.wantCalls {
				t.Errorf("%d removals, want %d", r.calls, tt.wantCalls)
			}
			if left := len(r.events) + len(r.deliveries); left != tt.wantLeft {
				t.Errorf("%d records left, want %d", left, tt.wantLeft)
			}
			for _, c := range r.cutoffs {
				if !c.Equal(now.Add(-tt.keep)) {
					t.Errorf("cutoff %s, want now - Keep = %s", c, now.Add(-tt.keep))
				}
			}
			if tt.failDeliveries != nil && !errors.Is(err, tt.failDeliveries) {
				t.Errorf("error %v does not wrap the store's", err)
			}
		})
	}
}

// MinRetention outlasts a delivery's whole schedule, each attempt taking
// its full timeout, with half a day to spare (for a worker that was down).
func TestMinRetentionOutlastsTheSchedule(t *testing.T) {
	span := time.Duration(len(webhooks.RetrySchedule)+1) * webhooks.AttemptTimeout
	for _, wait := range webhooks.RetrySchedule {
		span += wait
	}
	if webhooks.MinRetention < span+12*time.Hour {
		t.Errorf("MinRetention %s, the schedule spans %s: keep half a day more", webhooks.MinRetention, span)
	}
}

// Retention on the store: an event older than Keep is removed; a later
// delivery of it stays listed, but is not redelivered (its event is gone:
// 404) and starts nothing. Real time: a delivery's id is dated by the
// store's clock.
func TestPrunedEventIsNotRedelivered(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.now = time.Now().UTC().Add(-2 * time.Hour)
	e, _ := w.endpoint(t)
	ev := w.event(t, webhooks.PostPublished)
	w.now = time.Now().UTC()
	if _, err := w.d.Attempt(ctx, webhooks.AttemptInput{EventID: ev.ID, EndpointID: e.ID, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	p := &webhooks.Pruner{Store: w.store, Keep: webhooks.DefaultRetention,
		Now: func() time.Time { return ev.Timestamp.Add(webhooks.DefaultRetention + time.Hour) }}
	n, err := p.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != (webhooks.Pruned{Events: 1}) {
		t.Errorf("Prune = %+v, want the event alone", n)
	}
	if _, err := w.store.Event(ctx, ev.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("the event after pruning: %v, want removed", err)
	}
	list, err := w.svc.Deliveries(ctx, "org-1", e.ID, 10, "")
	if err != nil || len(list) != 1 {
		t.Fatalf("deliveries after pruning = %+v, %v; want the one", list, err)
	}
	started := len(w.starter.Started())
	if _, err := w.svc.Redeliver(ctx, "org-1", e.ID, list[0].ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("redeliver a pruned event: %v, want ErrNotFound", err)
	}
	if len(w.starter.Started()) != started {
		t.Errorf("a redelivery started: %v", w.starter.Started()[started:])
	}
}
