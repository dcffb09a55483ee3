package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/webhooks"
)

// The outbox: events are stored undispatched; Undispatched lists those
// stamped before a time, oldest first, up to a limit; MarkDispatched takes
// one out; an event stored before the outbox (no dispatched field) is
// never listed; the index is made on every start.
func TestUndispatchedEvents(t *testing.T) {
	ctx := context.Background()
	s := mongotest.Store(t)
	w := s.Webhooks()
	for i := range 2 {
		if err := w.EnsureIndexes(ctx); err != nil {
			t.Fatalf("EnsureIndexes, start %d: %v", i+1, err)
		}
	}
	t0 := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 4 {
		// Stored newest first, to see the order come from the query.
		ev, err := webhooks.NewEvent("org-1", webhooks.PostPublished, t0.Add(time.Duration(3-i)*time.Minute), "data", "p", string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if stored, err := w.SaveEvent(ctx, ev); err != nil || !stored {
			t.Fatalf("SaveEvent = %v, %v, want stored", stored, err)
		}
		// The second save of an id keeps the first and says so.
		if stored, err := w.SaveEvent(ctx, ev); err != nil || stored {
			t.Fatalf("SaveEvent again = %v, %v, want not stored", stored, err)
		}
		ids = append([]string{ev.ID}, ids...)
	}
	if _, err := s.DB.Collection("webhook_events").InsertOne(ctx, bson.D{{Key: "_id", Value: "msg_old"}, {Key: "organizationId", Value: "org-1"},
		{Key: "type", Value: webhooks.PostFailed}, {Key: "timestamp", Value: t0.Add(-time.Hour)}, {Key: "body", Value: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	if err := w.MarkDispatched(ctx, ids[1], t0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		before time.Time
		limit  int
		want   []string
	}{
		{"all but the dispatched", t0.Add(time.Hour), 10, []string{ids[0], ids[2], ids[3]}},
		{"oldest first, limited", t0.Add(time.Hour), 2, []string{ids[0], ids[2]}},
		{"stamped before", t0.Add(2 * time.Minute), 10, []string{ids[0]}},
		{"none yet", t0, 10, []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := w.Undispatched(ctx, tt.before, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, ev := range evs {
				got = append(got, ev.ID)
				if len(ev.Body) == 0 || ev.OrganizationID != "org-1" {
					t.Errorf("event %+v lacks its body or organization", ev)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Undispatched = %v, want %v", got, tt.want)
			}
		})
	}
}

// Retention: deliveries and events stamped before the cutoff are removed,
// up to the limit a call, oldest deliveries first; those at or after it
// stay. Deliveries are dated by their ObjectID, events by timestamp.
func TestRemoveOldWebhookRecords(t *testing.T) {
	ctx := context.Background()
	s := mongotest.Store(t)
	w := s.Webhooks()
	cutoff := time.Date(2026, 10, 31, 6, 0, 0, 0, time.UTC)
	ages := []time.Duration{-72 * time.Hour, -2 * time.Hour, -time.Second, 0, time.Second, 24 * time.Hour}
	var oldDeliveries, keptDeliveries, oldEvents, keptEvents []string
	for i, age := range ages {
		at := cutoff.Add(age)
		d := &webhooks.Delivery{ID: bson.NewObjectIDFromTimestamp(at).Hex(), EndpointID: "ep-1", EventID: "msg_x", At: at}
		if err := w.SaveDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		ev, err := webhooks.NewEvent("org-1", webhooks.PostPublished, at, "data", "p", string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.SaveEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if age < 0 {
			oldDeliveries, oldEvents = append(oldDeliveries, d.ID), append(oldEvents, ev.ID)
		} else {
			keptDeliveries, keptEvents = append(keptDeliveries, d.ID), append(keptEvents, ev.ID)
		}
	}
	for _, tt := range []struct {
		name   string
		remove func(context.Context, time.Time, int) (int, error)
		read   func(string) error
		old    []string
		kept   []string
	}{
		{"deliveries", w.RemoveDeliveriesBefore, func(id string) error { _, err := w.Delivery(ctx, id); return err }, oldDeliveries, keptDeliveries},
		{"events", w.RemoveEventsBefore, func(id string) error { _, err := w.Event(ctx, id); return err }, oldEvents, keptEvents},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// 3 old ones, 2 a call: 2, then 1, then none.
			for i, want := range []int{2, 1, 0} {
				n, err := tt.remove(ctx, cutoff, 2)
				if err != nil {
					t.Fatal(err)
				}
				if n != want {
					t.Errorf("call %d removed %d, want %d", i+1, n, want)
				}
			}
			for _, id := range tt.old {
				if err := tt.read(id); !errors.Is(err, webhooks.ErrNotFound) {
					t.Errorf("%s before the cutoff: read = %v, want removed", id, err)
				}
			}
			for _, id := range tt.kept {
				if err := tt.read(id); err != nil {
					t.Errorf("%s at or after the cutoff: read = %v, want kept", id, err)
				}
			}
		})
	}
	// The oldest delivery goes first: the batch of one is the 72-hour-old.
	d := &webhooks.Delivery{ID: bson.NewObjectIDFromTimestamp(cutoff.Add(-time.Minute)).Hex(), EndpointID: "ep-1", At: cutoff.Add(-time.Minute)}
	oldest := &webhooks.Delivery{ID: bson.NewObjectIDFromTimestamp(cutoff.Add(-time.Hour)).Hex(), EndpointID: "ep-1", At: cutoff.Add(-time.Hour)}
	for _, x := range []*webhooks.Delivery{d, oldest} {
		if err := w.SaveDelivery(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := w.RemoveDeliveriesBefore(ctx, cutoff, 1); err != nil || n != 1 {
		t.Fatalf("RemoveDeliveriesBefore = %d, %v; want 1", n, err)
	}
	if _, err := w.Delivery(ctx, oldest.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("the oldest delivery: %v, want removed first", err)
	}
	if _, err := w.Delivery(ctx, d.ID); err != nil {
		t.Errorf("the newer old delivery: %v, want left to the next batch", err)
	}
}

// EnsureRetention runs at every start, with the setting of the day: on
// MongoDB a TTL index whose expireAfterSeconds follows the setting (collMod);
// on FerretDB v1, which refuses TTL indexes, no error and no TTL (the
// worker's Pruner removes old records there).
func TestEnsureRetention(t *testing.T) {
	ctx := context.Background()
	s := mongotest.Store(t)
	w := s.Webhooks()
	var info bson.M
	if err := s.DB.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		t.Fatal(err)
	}
	_, ferret := info["ferretdbVersion"]
	for _, keep := range []time.Duration{webhooks.DefaultRetention, webhooks.DefaultRetention, 48 * time.Hour} {
		ttl, err := w.EnsureRetention(ctx, keep)
		if err != nil {
			t.Fatalf("EnsureRetention(%s): %v", keep, err)
		}
		if ttl == ferret {
			t.Fatalf("EnsureRetention(%s) = TTL %v on a server that is FerretDB: %v", keep, ttl, ferret)
		}
		if !ttl {
			continue
		}
		for _, coll := range []string{"webhook_events", "webhook_deliveries"} {
			cur, err := s.DB.Collection(coll).Indexes().List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ixs []bson.M
			if err := cur.All(ctx, &ixs); err != nil {
				t.Fatal(err)
			}
			var got any
			for _, ix := range ixs {
				if ix["name"] == "retention_ttl" {
					got = ix["expireAfterSeconds"]
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(int64(keep/time.Second)) {
				t.Errorf("%s: expireAfterSeconds = %v, want %d", coll, got, int64(keep/time.Second))
			}
		}
	}
	if _, err := w.EnsureRetention(ctx, 0); err == nil {
		t.Error("EnsureRetention(0) made an index that would remove everything")
	}
}

// Disable disables an endpoint still enabled, and leaves one its owner
// disabled meanwhile (a PATCH) as the owner left it; a PATCH of settings
// read before a Disable leaves the endpoint disabled.
func TestDisableOnlyAnEnabledEndpoint(t *testing.T) {
	ctx := context.Background()
	w := mongotest.Store(t).Webhooks()
	now := time.Now().UTC().Truncate(time.Millisecond)
	e := &webhooks.Endpoint{ID: w.NewID(), OrganizationID: "org-1", URL: "https://93.184.215.14/h", Enabled: true, Secret: "sealed", CreatedAt: now, UpdatedAt: now}
	if err := w.CreateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	n := webhooks.Notice{Type: webhooks.DisabledNotice, At: now, Reason: "a day of failures"}
	read, err := w.Endpoint(ctx, e.ID) // a PATCH reads it ...
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Disable(ctx, e.ID, n); err != nil { // ... a delivery disables it ...
		t.Fatal(err)
	}
	read.Description = "renamed" // ... and the PATCH writes its settings.
	if err := w.UpdateEndpoint(ctx, read, webhooks.PartSettings); err != nil {
		t.Fatal(err)
	}
	got, err := w.Endpoint(ctx, e.ID)
	if err != nil || got.Enabled || got.Notice == nil || got.Description != "renamed" {
		t.Fatalf("after Disable and a PATCH read before it: %+v, %v; want disabled with the notice, renamed", got, err)
	}
	// The owner disabled it by hand (no notice): a late Disable adds none.
	got.Enabled, got.Notice = false, nil
	if err := w.UpdateEndpoint(ctx, got, webhooks.PartState); err != nil {
		t.Fatal(err)
	}
	if err := w.Disable(ctx, e.ID, n); err != nil {
		t.Fatal(err)
	}
	if got, err := w.Endpoint(ctx, e.ID); err != nil || got.Notice != nil {
		t.Errorf("a Disable of an endpoint already disabled: %+v, %v; want it as its owner left it", got, err)
	}
}

// RotateSecret writes only over the secret the rotation read, on the path
// the store takes on FerretDB and on MongoDB's; it says a missing
// endpoint from one rotated meanwhile.
func TestRotateSecretOverTheOneRead(t *testing.T) {
	for _, tt := range paths {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			w := storeOn(t, tt.mongoDB).Webhooks()
			now := time.Now().UTC().Truncate(time.Millisecond)
			e := &webhooks.Endpoint{ID: w.NewID(), OrganizationID: "org-1", URL: "https://example.com/h", Events: []string{},
				Enabled: true, Secret: "sealed-0", CreatedAt: now, UpdatedAt: now}
			if err := w.CreateEndpoint(ctx, e); err != nil {
				t.Fatal(err)
			}
			until := now.Add(time.Hour)
			rotate := func(from, to string) error {
				r := *e
				r.Secret, r.PreviousSecret, r.PreviousSecretExpiresAt = to, from, &until
				return w.RotateSecret(ctx, &r, from)
			}
			if err := rotate("sealed-0", "sealed-1"); err != nil {
				t.Fatal(err)
			}
			if err := rotate("sealed-0", "sealed-2"); !errors.Is(err, webhooks.ErrSecretRotated) {
				t.Fatalf("a rotation over a secret replaced: %v", err)
			}
			got, err := w.Endpoint(ctx, e.ID)
			if err != nil || got.Secret != "sealed-1" || got.PreviousSecret != "sealed-0" || got.PreviousSecretExpiresAt == nil {
				t.Fatalf("endpoint = %+v, %v", got, err)
			}
			if err := w.DeleteEndpoint(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
			if err := rotate("sealed-1", "sealed-3"); !errors.Is(err, webhooks.ErrNotFound) {
				t.Fatalf("a rotation of a deleted endpoint: %v", err)
			}
		})
	}
}
