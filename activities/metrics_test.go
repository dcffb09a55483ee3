package activities_test

import (
	"context"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/internal/metrics"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
	"github.com/postflow/postflow/workflows"
)

// meter gives the world's activities metrics to count on.
func (w *world) meter(t *testing.T) *metrics.Metrics {
	t.Helper()
	m, err := metrics.New()
	if err != nil {
		t.Fatal(err)
	}
	a := w.tw.Activities()
	a.Metrics = m
	var suite testsuite.WorkflowTestSuite
	w.env = suite.NewTestActivityEnvironment()
	a.Register(w.env)
	return m
}

// sample is the value of the metric name whose labels include want (a
// histogram's: its count); -1 when there is none.
func sample(t *testing.T, m *metrics.Metrics, name string, want map[string]string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, s := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return value(s)
		}
	}
	return -1
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	}
	return -1
}

// Each result is counted when it is written, on its account's network
// with the category its failure calls for.
func TestResultsAreCounted(t *testing.T) {
	for _, tt := range []struct {
		name         string
		prepare      func(w *world)
		content      string
		wantStatus   string
		wantCategory string
	}{
		{name: "published", wantStatus: "published", wantCategory: ""},
		{name: "refused content", content: strings.Repeat("x", 3001), wantStatus: "failed", wantCategory: "content_rejected"},
		{name: "revoked token", prepare: revokeStoredToken, wantStatus: "failed", wantCategory: "auth_expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			m := w.meter(t)
			content := tt.content
			if content == "" {
				content = "counted"
			}
			p := w.post(t, content, posts.StatusPublishing)
			if tt.prepare != nil {
				tt.prepare(w)
			}
			if _, err := w.publish(t, p); err != nil {
				t.Fatal(err)
			}
			labels := map[string]string{"network": "linkedin", "status": tt.wantStatus, "category": tt.wantCategory}
			if got := sample(t, m, "postflow_publish_results_total", labels); got != 1 {
				t.Errorf("postflow_publish_results_total%v = %v, want 1", labels, got)
			}
			wantLatency := -1.0
			if tt.wantStatus == "published" {
				wantLatency = 1
			}
			if got := sample(t, m, "postflow_publish_duration_seconds", map[string]string{"network": "linkedin"}); got != wantLatency {
				t.Errorf("publish_duration_seconds count = %v, want %v", got, wantLatency)
			}
		})
	}
}

// A scheduled post's lateness, a rate limit, a failure the workflow
// decided on and a finished post are counted too.
func TestLatenessRateLimitsAndFinishedPosts(t *testing.T) {
	w := newWorld(t)
	m := w.meter(t)
	ctx := context.Background()

	p := w.post(t, "late", posts.StatusPublishing)
	due := time.Now().Add(-3 * time.Minute).UTC().Truncate(time.Millisecond)
	p.ScheduledAt = &due
	if _, err := w.store.Posts().Update(ctx, p, posts.StatusPublishing); err != nil {
		t.Fatal(err)
	}
	if out, err := w.publish(t, p); err != nil || out.Status != "published" {
		t.Fatalf("publish: %+v, %v", out, err)
	}
	if got := sample(t, m, "postflow_publish_lateness_seconds", map[string]string{"network": "linkedin"}); got != 1 {
		t.Errorf("lateness observations = %v, want 1", got)
	}
	if _, err := w.env.ExecuteActivity(workflows.FinishPostActivity, workflows.FinishInput{PostID: p.ID}); err != nil {
		t.Fatal(err)
	}
	if got := sample(t, m, "postflow_posts_finished_total", map[string]string{"status": "published"}); got != 1 {
		t.Errorf("posts_finished_total{published} = %v, want 1", got)
	}

	limited := w.post(t, "limited", posts.StatusPublishing)
	w.fake.Configure(func(s *linkedinfake.Server) { s.PostStatus, s.PostFailures = 429, 1 })
	if _, err := w.publish(t, limited); err == nil {
		t.Fatal("the rate-limited attempt did not fail")
	}
	if got := sample(t, m, "postflow_rate_limit_waits_total", map[string]string{"network": "linkedin"}); got != 1 {
		t.Errorf("rate_limit_waits_total = %v, want 1", got)
	}
	if _, err := w.env.ExecuteActivity(workflows.RecordFailureActivity, workflows.FailureInput{PostID: limited.ID, AccountID: w.account.ID,
		Code: "RATE_LIMIT_HORIZON", Message: "still rate limited"}); err != nil {
		t.Fatal(err)
	}
	// The category is the one the result was written with.
	r, err := w.store.Posts().Result(ctx, limited.ID, w.account.ID)
	if err != nil || r.ErrorCategory == "" {
		t.Fatalf("result %+v, %v: want a category", r, err)
	}
	if got := sample(t, m, "postflow_publish_results_total", map[string]string{"network": "linkedin", "status": "failed", "category": string(r.ErrorCategory)}); got != 1 {
		t.Errorf("results_total{failed, %s} = %v, want 1", r.ErrorCategory, got)
	}
}
