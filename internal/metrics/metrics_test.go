package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/webhooks"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(slog.New(slog.NewTextHandler(io.Discard, nil))).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	return rec.Body.String()
}

func TestExposition(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	m.Result("bluesky", "published", "")
	m.Result("bluesky", "published", "")
	m.Result("", "failed", "content_rejected")
	m.PostFinished("published")
	m.Published("mastodon", 1500*time.Millisecond)
	m.Published("mastodon", time.Second)
	m.Late("mastodon", 90*time.Second)
	m.Late("mastodon", -time.Second) // early: counted as on time
	m.RateLimited("linkedin", 30*time.Second)
	m.RateLimited("linkedin", 0)
	m.WebhookDelivery("post.published", DeliveryDelivered)
	m.SetOverdue(3)

	body := scrape(t, m)
	for _, want := range []string{
		`postflow_publish_results_total{category="",network="bluesky",status="published"} 2`,
		`postflow_publish_results_total{category="content_rejected",network="unknown",status="failed"} 1`,
		`postflow_posts_finished_total{status="published"} 1`,
		`postflow_publish_duration_seconds_bucket{network="mastodon",le="2.5"} 2`,
		`postflow_publish_duration_seconds_bucket{network="mastodon",le="1"} 1`,
		`postflow_publish_lateness_seconds_bucket{network="mastodon",le="0.1"} 1`,
		`postflow_publish_lateness_seconds_sum{network="mastodon"} 90`,
		`postflow_rate_limit_waits_total{network="linkedin"} 2`,
		`postflow_rate_limit_wait_seconds_count{network="linkedin"} 1`,
		`postflow_webhook_deliveries_total{event="post.published",outcome="delivered"} 1`,
		`postflow_posts_overdue 3`,
		`go_goroutines `,
		`# TYPE postflow_publish_lateness_seconds histogram`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The Temporal SDK's metrics come out under Prometheus's names: counters
// with _total, timers as histograms in seconds with buckets for seconds.
func TestTemporalSDKMetrics(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.TemporalHandler(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tagged := h.WithTags(map[string]string{"task_queue": "postflow-publish"})
	tagged.Counter("temporal_request").Inc(2)
	tagged.Timer("temporal_activity_execution_latency").Record(300 * time.Millisecond)
	tagged.Gauge("temporal_num_pollers").Update(2)

	body := scrape(t, m)
	for _, want := range []string{
		`temporal_request_total{task_queue="postflow-publish"} 2`,
		`temporal_activity_execution_latency_seconds_bucket{task_queue="postflow-publish",le="0.5"} 1`,
		`temporal_activity_execution_latency_seconds_bucket{task_queue="postflow-publish",le="0.25"} 0`,
		`temporal_num_pollers{task_queue="postflow-publish"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q; it has:\n%s", want, grep(body, "temporal_"))
		}
	}
}

// A nil *Metrics records nothing and does not panic.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Result("x", "published", "")
	m.PostFinished("failed")
	m.Published("x", time.Second)
	m.Late("x", time.Second)
	m.RateLimited("x", time.Second)
	m.WebhookDelivery("post.failed", DeliveryFailed)
	m.SetOverdue(1)
}

func grep(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// recordingStore is a webhooks.Store that only records deliveries.
type recordingStore struct {
	webhooks.Store
	saved int
	err   error
}

func (r *recordingStore) SaveDelivery(context.Context, *webhooks.Delivery) error {
	if r.err != nil {
		return r.err
	}
	r.saved++
	return nil
}

// Each recorded delivery attempt is counted once, by event type and
// outcome; one the store failed to record is not.
func TestCountDeliveries(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	inner := &recordingStore{}
	store := CountDeliveries(inner, m)
	ctx := context.Background()
	for _, d := range []*webhooks.Delivery{
		{EventType: "post.published", Success: true},
		{EventType: "post.published", Success: false},
		{EventType: "post.published", Success: false},
		{EventType: "post.overdue", Success: true},
	} {
		if err := store.SaveDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	inner.err = errors.New("store down")
	if err := store.SaveDelivery(ctx, &webhooks.Delivery{EventType: "post.failed", Success: true}); err == nil {
		t.Fatal("the store's error was not returned")
	}
	body := scrape(t, m)
	for _, want := range []string{
		`postflow_webhook_deliveries_total{event="post.published",outcome="delivered"} 1`,
		`postflow_webhook_deliveries_total{event="post.published",outcome="failed"} 2`,
		`postflow_webhook_deliveries_total{event="post.overdue",outcome="delivered"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, `event="post.failed"`) || inner.saved != 4 {
		t.Errorf("an unrecorded attempt was counted, or a recorded one lost (%d saved)", inner.saved)
	}
}
