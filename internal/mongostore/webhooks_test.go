package mongostore_test

import (
	"context"
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
		if err := w.SaveEvent(ctx, ev); err != nil {
			t.Fatal(err)
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
