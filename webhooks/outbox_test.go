package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/webhooks"
)

// temporalLike starts deliveries as Temporal does with the reuse policy
// internal/app sets: a second start of a pair is no error and starts no
// run. While down, every start fails (the frontend unreachable).
type temporalLike struct {
	mu    sync.Mutex
	down  bool
	calls int
	runs  []string
}

func (f *temporalLike) StartDelivery(_ context.Context, eventID, endpointID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return errors.New("temporal: connection refused")
	}
	if id := eventID + "/" + endpointID; !slices.Contains(f.runs, id) {
		f.runs = append(f.runs, id)
	}
	return nil
}

func (f *temporalLike) Redeliver(context.Context, string, string) (string, error) { return "", nil }

func (f *temporalLike) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func (f *temporalLike) started() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.runs), f.calls
}

// failingStore is a store whose writes of events fail (MongoDB down).
type failingStore struct {
	webhooks.Store
}

func (failingStore) SaveEvent(context.Context, *webhooks.Event) (bool, error) {
	return false, errors.New("mongo: server selection timeout")
}

// An event stored while Temporal is down is not lost: Emit succeeds (the
// event is in the outbox), the sweeper leaves it to its emitter for the
// grace, then starts one delivery per endpoint that wants it, once.
func TestSweeperDispatchesWhatTheEmitterCouldNotStart(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	all, _ := w.endpoint(t)
	published, _ := w.endpoint(t, webhooks.PostPublished)
	w.endpoint(t, webhooks.PostFailed) // wants none of it
	temporal := &temporalLike{down: true}
	clock := w.now
	em := &webhooks.Emitter{Store: w.store, Starter: temporal, Now: func() time.Time { return clock }}

	ev, err := webhooks.NewEvent("org-1", webhooks.PostPublished, w.now, map[string]string{"post": "p1"}, "p1", "run1")
	if err != nil {
		t.Fatal(err)
	}
	if err := em.Emit(ctx, ev); err != nil {
		t.Fatalf("Emit with Temporal down = %v, want nil: the event is stored", err)
	}
	if runs, calls := temporal.started(); len(runs) != 0 || calls != 2 {
		t.Fatalf("runs %v after %d calls, want none after 2", runs, calls)
	}
	temporal.set(false)

	for _, tt := range []struct {
		name  string
		after time.Duration
		want  int
	}{
		{"within the grace", webhooks.SweepGrace / 2, 0},
		{"after the grace", webhooks.SweepGrace + time.Second, 1},
		{"the next minute", webhooks.SweepGrace + time.Minute, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock = w.now.Add(tt.after)
			n, err := em.Sweep(ctx)
			if err != nil || n != tt.want {
				t.Fatalf("Sweep = %d, %v; want %d", n, err, tt.want)
			}
		})
	}
	runs, calls := temporal.started()
	want := []string{ev.ID + "/" + all.ID, ev.ID + "/" + published.ID}
	slices.Sort(runs)
	slices.Sort(want)
	if !slices.Equal(runs, want) || calls != 4 {
		t.Errorf("runs %v after %d calls, want %v after 4 (2 refused, 2 by the sweeper, none after)", runs, calls, want)
	}
}

// A Temporal that stays down leaves the event to every later sweep, and
// an emitter that started everything leaves nothing to sweep.
func TestSweeperRetriesUntilTemporalReturns(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.endpoint(t)
	temporal := &temporalLike{down: true}
	clock := w.now.Add(time.Hour)
	em := &webhooks.Emitter{Store: w.store, Starter: temporal, Now: func() time.Time { return clock }}
	lost, _ := webhooks.NewEvent("org-1", webhooks.PostFailed, w.now, "lost", "p1", "run1")
	if err := em.Emit(ctx, lost); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if n, err := em.Sweep(ctx); n != 0 || err == nil {
			t.Fatalf("sweep %d with Temporal down = %d, %v; want 0 and an error", i, n, err)
		}
	}
	temporal.set(false)
	sent, _ := webhooks.NewEvent("org-1", webhooks.PostFailed, w.now, "sent", "p2", "run1")
	if err := em.Emit(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if n, err := em.Sweep(ctx); n != 1 || err != nil {
		t.Fatalf("Sweep = %d, %v; want the lost event alone", n, err)
	}
	if runs, _ := temporal.started(); len(runs) != 2 {
		t.Errorf("runs %v, want one per event", runs)
	}
}

// An event that cannot be stored is an error: the caller (an activity)
// fails, and Temporal tries it again.
func TestEmitFailsWhenTheEventCannotBeStored(t *testing.T) {
	w := newWorld(t)
	w.endpoint(t)
	temporal := &temporalLike{}
	em := &webhooks.Emitter{Store: failingStore{w.store}, Starter: temporal}
	ev, _ := webhooks.NewEvent("org-1", webhooks.PostPublished, w.now, "data", "p1", "run1")
	if err := em.Emit(context.Background(), ev); err == nil {
		t.Fatal("Emit = nil, want the store's error")
	}
	if _, calls := temporal.started(); calls != 0 {
		t.Errorf("%d starts of an event not stored", calls)
	}
}

// The emitter retried (an activity run again) and sweepers in two workers
// race on an event left undispatched: each endpoint gets one run, of the
// bytes first stored, and the event ends dispatched.
func TestEmitterAndSweepersRace(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	var eps []string
	for range 3 {
		e, _ := w.endpoint(t)
		eps = append(eps, e.ID)
	}
	temporal := &temporalLike{down: true}
	clock := w.now.Add(time.Hour)
	em := &webhooks.Emitter{Store: w.store, Starter: temporal, Now: func() time.Time { return clock }}
	first, _ := webhooks.NewEvent("org-1", webhooks.PostPublished, w.now, "first", "p1", "run1")
	if err := em.Emit(ctx, first); err != nil {
		t.Fatal(err)
	}
	temporal.set(false)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 4 {
		wg.Go(func() {
			retry, _ := webhooks.NewEvent("org-1", webhooks.PostPublished, w.now.Add(time.Duration(i)*time.Second), fmt.Sprint("retry ", i), "p1", "run1")
			errs <- em.Emit(ctx, retry)
		})
		wg.Go(func() {
			_, err := em.Sweep(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	runs, _ := temporal.started()
	if len(runs) != len(eps) {
		t.Errorf("runs %v, want one per endpoint %v", runs, eps)
	}
	for _, ep := range eps {
		if !slices.Contains(runs, first.ID+"/"+ep) {
			t.Errorf("no run for endpoint %s", ep)
		}
	}
	stored, err := w.store.Event(ctx, first.ID)
	if err != nil || string(stored.Body) != string(first.Body) {
		t.Errorf("stored %s, %v; want the first body %s", stored.Body, err, first.Body)
	}
	if n, err := em.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("a later sweep dispatched %d, %v; want nothing left", n, err)
	}
}

// An event emitted again (account.expiring, by each hourly scan for
// days) starts nothing once stored: Temporal's refusal of a second run
// of the same id lasts only as long as its retention of the first, so a
// start that relied on it would deliver the event again.
func TestEmitAgainStartsNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.endpoint(t)
	w.endpoint(t, webhooks.AccountExpiring)
	temporal := &temporalLike{}
	em := &webhooks.Emitter{Store: w.store, Starter: temporal, Now: func() time.Time { return w.now }}
	for i := range 4 {
		ev, err := webhooks.NewEvent("org-1", webhooks.AccountExpiring, w.now.Add(time.Duration(i)*time.Hour), "data", "acct-1", "2026-12-05T00:00:00Z")
		if err != nil {
			t.Fatal(err)
		}
		if err := em.Emit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if runs, calls := temporal.started(); len(runs) != 2 || calls != 2 {
		t.Errorf("%d starts making runs %v, want one start per endpoint", calls, runs)
	}
}

// hangingStarter never answers (a Temporal frontend that hangs) until its
// context ends.
type hangingStarter struct{ temporalLike }

func (h *hangingStarter) StartDelivery(ctx context.Context, _, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// A Temporal that hangs does not hold Emit past DispatchTimeout once the
// event is stored (FinishPost runs within 10 s): it returns nil, and the
// event waits for the sweeper.
func TestEmitDoesNotWaitForAHangingTemporal(t *testing.T) {
	w := newWorld(t)
	w.endpoint(t)
	clock := w.now.Add(time.Hour)
	em := &webhooks.Emitter{Store: w.store, Starter: &hangingStarter{}, Now: func() time.Time { return clock }}
	ev, _ := webhooks.NewEvent("org-1", webhooks.PostPublished, w.now, "data", "p1", "run1")
	ctx, cancel := context.WithTimeout(context.Background(), webhooks.DispatchTimeout+5*time.Second)
	defer cancel()
	start := time.Now()
	if err := em.Emit(ctx, ev); err != nil || time.Since(start) > webhooks.DispatchTimeout+2*time.Second {
		t.Fatalf("Emit = %v after %s, want nil within %s", err, time.Since(start), webhooks.DispatchTimeout)
	}
	if evs, err := w.store.Undispatched(context.Background(), clock, 10); err != nil || len(evs) != 1 || evs[0].ID != ev.ID {
		t.Errorf("undispatched %v, %v; want the event", evs, err)
	}
}
