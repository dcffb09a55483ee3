package mongostore_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/webhooks/webhookstest"
)

// eventIDs are the ids of the events r kept, oldest first.
func eventIDs(r *webhookstest.Recorder) []string {
	var out []string
	for _, ev := range r.Events() {
		out = append(out, ev.ID)
	}
	return out
}

// Which posts are overdue: not in a final state, their time (the later of
// scheduledAt and their last change of state) past by more than the
// margin. Each is announced once; a change of state starts it afresh.
func TestOverduePosts(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	margin := 10 * time.Minute
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }

	made := map[string]bool{} // post id -> overdue wanted
	var names = map[string]string{}
	for _, tt := range []struct {
		name        string
		status      posts.Status
		scheduledAt *time.Time
		updatedAt   time.Time
		overdue     bool
	}{
		{"scheduled, its time 11 min ago", posts.StatusScheduled, ago(11 * time.Minute), *ago(time.Hour), true},
		{"scheduled, its time 9 min ago: within the margin", posts.StatusScheduled, ago(9 * time.Minute), *ago(time.Hour), false},
		{"scheduled for later", posts.StatusScheduled, ago(-time.Hour), *ago(2 * time.Hour), false},
		{"queued now-post, triggered 20 min ago", posts.StatusQueued, nil, *ago(20 * time.Minute), true},
		{"publishing, taken up 30 min ago", posts.StatusPublishing, nil, *ago(30 * time.Minute), true},
		{"publishing, taken up a minute ago", posts.StatusPublishing, ago(time.Hour), *ago(time.Minute), false},
		{"published", posts.StatusPublished, ago(time.Hour), *ago(time.Hour), false},
		{"failed", posts.StatusFailed, nil, *ago(time.Hour), false},
		{"cancelled", posts.StatusCancelled, ago(time.Hour), *ago(time.Hour), false},
		{"draft", posts.StatusDraft, nil, *ago(time.Hour), false},
	} {
		p, err := store.Create(ctx, &posts.Post{OrganizationID: "org-1", Content: "secret text", SocialAccountIDs: []string{"a1"},
			ScheduledAt: tt.scheduledAt, Status: tt.status, CreatedAt: *ago(2 * time.Hour), UpdatedAt: tt.updatedAt})
		if err != nil {
			t.Fatal(err)
		}
		made[p.ID], names[p.ID] = tt.overdue, tt.name
	}

	cutoff := now.Add(-margin)
	list, err := store.Overdue(ctx, cutoff, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, o := range list {
		got[o.ID] = true
		if o.OrganizationID != "org-1" || o.DueAt.After(cutoff) {
			t.Errorf("%s: %+v", names[o.ID], o)
		}
	}
	for id, overdue := range made {
		if got[id] != overdue {
			t.Errorf("%s: listed overdue %v, want %v", names[id], got[id], overdue)
		}
	}
	if n, err := store.CountOverdue(ctx, cutoff); err != nil || n != 3 {
		t.Errorf("CountOverdue = %d, %v; want 3", n, err)
	}

	// The watch counts them and announces each once, however often it looks.
	events := &webhookstest.Recorder{}
	var counted []int
	w := &posts.OverdueWatch{Store: store, After: margin, Events: events, Count: func(n int) { counted = append(counted, n) },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	for range 2 {
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(counted, []int{3, 3}) {
		t.Errorf("counts %v, want [3 3]", counted)
	}
	first := eventIDs(events)
	if len(first) != 3 {
		t.Fatalf("%d events after two checks, want 3 (one per overdue post)", len(first))
	}
	for _, ev := range events.Events() {
		var body struct {
			Type string
			Data posts.OverdueEventData
		}
		if err := json.Unmarshal(ev.Body, &body); err != nil {
			t.Fatal(err)
		}
		if ev.Type != webhooks.PostOverdue || body.Type != "post.overdue" || body.Data.Post == nil || !made[body.Data.Post.ID] ||
			body.Data.OverdueAfterSeconds != 600 || body.Data.DueAt.IsZero() || body.Data.Results == nil {
			t.Errorf("event %s: %s", ev.Type, ev.Body)
		}
	}
	list, _ = store.Overdue(ctx, cutoff, false, 100)
	for _, o := range list {
		if o.AnnouncedAt == nil {
			t.Errorf("%s: not marked announced", names[o.ID])
		}
	}

	// A change of state starts afresh: overdue again, announced again,
	// as another event (another due time).
	var queued *posts.Post
	for id, overdue := range made {
		if p, _ := store.GetByID(ctx, id); overdue && p.Status == posts.StatusQueued {
			queued = p
		}
	}
	if _, err := store.SetStatus(ctx, queued, posts.StatusPublishing, posts.StatusQueued); err != nil {
		t.Fatal(err)
	}
	later := now.Add(margin + time.Minute)
	w.Now = func() time.Time { return later }
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// Per post: the queued one twice (two ids), the two others announced
	// before once; the two that passed the margin since, once.
	perPost := map[string][]string{}
	for _, ev := range events.Events() {
		var body struct{ Data posts.OverdueEventData }
		_ = json.Unmarshal(ev.Body, &body)
		perPost[body.Data.Post.ID] = append(perPost[body.Data.Post.ID], ev.ID)
	}
	for id, overdue := range made {
		want := 0
		switch {
		case id == queued.ID:
			want = 2
		case overdue, names[id] == "scheduled, its time 9 min ago: within the margin", names[id] == "publishing, taken up a minute ago":
			want = 1
		}
		if len(perPost[id]) != want || want == 2 && perPost[id][0] == perPost[id][1] {
			t.Errorf("%s: events %v, want %d distinct", names[id], perPost[id], want)
		}
	}
}

// A post that changes state while its overdue event goes out is not
// marked announced: stalled again in its new state, it is announced again.
func TestOverdueMarkSkipsAPostThatMovedOn(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	p, err := store.Create(ctx, &posts.Post{OrganizationID: "org-1", Content: "stuck", SocialAccountIDs: []string{"a1"},
		Status: posts.StatusQueued, CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.Overdue(ctx, now.Add(-10*time.Minute), true, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("Overdue = %+v, %v; want the queued post", list, err)
	}
	if _, err := store.SetStatus(ctx, p, posts.StatusPublishing, posts.StatusQueued); err != nil { // the run takes it up
		t.Fatal(err)
	}
	if err := store.MarkOverdueAnnounced(ctx, list[0], now); err != nil {
		t.Fatal(err)
	}
	// Later, stalled in publishing: listed as not yet announced.
	later, err := store.Overdue(ctx, time.Now().Add(time.Hour), true, 10)
	if err != nil || len(later) != 1 || later[0].Status != posts.StatusPublishing || later[0].AnnouncedAt != nil {
		t.Fatalf("after a mark of the state it left: %+v, %v; want it unannounced in publishing", later, err)
	}
	// Unmoved, the mark holds.
	if err := store.MarkOverdueAnnounced(ctx, later[0], now); err != nil {
		t.Fatal(err)
	}
	if left, _ := store.Overdue(ctx, time.Now().Add(time.Hour), true, 10); len(left) != 0 {
		t.Errorf("marked, still unannounced: %+v", left)
	}
}
