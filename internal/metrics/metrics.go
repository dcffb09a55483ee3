// Package metrics is what PostFlow's processes tell Prometheus: posts and
// results by network, status and category, publish latency and lateness,
// rate-limit waits, webhook deliveries, overdue posts, the Go runtime, and
// the Temporal SDK's own metrics (through its OpenTelemetry integration and
// OpenTelemetry's Prometheus exporter). Everything is registered on one
// *prometheus.Registry per process, never the default one, and served by
// Handler in the exposition format (prometheus/client_golang).
//
// Names follow Prometheus's conventions: the postflow_ namespace, base
// units (seconds), _total for counters. Labels carry only bounded values
// (networks, statuses, categories, event types), never ids.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// latencyBuckets, in seconds, span a quick network call to a slow upload
// of four images; lateness has the same range and the minutes beyond.
var (
	latencyBuckets  = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	latenessBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400}
	waitBuckets     = []float64{1, 5, 15, 60, 300, 900, 3600, 14400, 86400}
	// sdkBuckets are the Temporal SDK's latencies (seconds): OpenTelemetry's
	// default buckets are for milliseconds.
	sdkBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
)

// Metrics are one process's metrics. A nil *Metrics records nothing, so
// code that counts runs unchanged where no one collects (tests).
type Metrics struct {
	reg *prometheus.Registry

	results      *prometheus.CounterVec
	posts        *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	lateness     *prometheus.HistogramVec
	rateLimits   *prometheus.CounterVec
	rateLimitFor *prometheus.HistogramVec
	deliveries   *prometheus.CounterVec
	overdue      prometheus.Gauge
	unpublished  *prometheus.CounterVec
}

// New registers PostFlow's metrics, and the Go runtime's and the
// process's, on a new registry.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "postflow", Name: "publish_results_total",
			Help: "Per-account publish results written, by network, status (published, failed, unknown) and error category (\"\" when published).",
		}, []string{"network", "status", "category"}),
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "postflow", Name: "posts_finished_total",
			Help: "Posts whose publish run ended, by status (published, failed).",
		}, []string{"status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "postflow", Name: "publish_duration_seconds",
			Help:    "Time of a successful publish to one account: the call to the network, images included, to the answer recorded.",
			Buckets: latencyBuckets,
		}, []string{"network"}),
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "postflow", Name: "publish_lateness_seconds",
			Help:    "How long after its scheduledAt a scheduled post went out to an account.",
			Buckets: latenessBuckets,
		}, []string{"network"}),
		rateLimits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "postflow", Name: "rate_limit_waits_total",
			Help: "Rate-limit answers (429) after which the run waits and calls again, by network.",
		}, []string{"network"}),
		rateLimitFor: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "postflow", Name: "rate_limit_wait_seconds",
			Help:    "How long networks asked to wait (Retry-After), by network.",
			Buckets: waitBuckets,
		}, []string{"network"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "postflow", Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts, by event type and outcome (delivered, failed).",
		}, []string{"event", "outcome"}),
		unpublished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "postflow", Name: "unpublish_results_total",
			Help: "Per-account unpublish outcomes written, by network and status (unpublished, failed).",
		}, []string{"network", "status"}),
		overdue: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "postflow", Name: "posts_overdue",
			Help: "Posts whose time passed by more than OVERDUE_AFTER without a final state, as last counted.",
		}),
	}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.results, m.posts, m.latency, m.lateness, m.rateLimits, m.rateLimitFor, m.deliveries, m.overdue, m.unpublished,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Registry is the process's registry, for metrics other packages add.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus's exposition format; an error
// collecting one metric is logged and the rest still served.
func (m *Metrics) Handler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// TemporalHandler is the Temporal SDK's metrics handler (client.Options'
// MetricsHandler), exported on the registry: temporal_* metrics such as
// temporal_workflow_task_schedule_to_start_latency_seconds and
// temporal_activity_execution_failed_total, as the SDK names them.
func (m *Metrics) TemporalHandler(logger *slog.Logger) (client.MetricsHandler, error) {
	exporter, err := otelprom.New(otelprom.WithRegisterer(m.reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: temporal sdk exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithView(sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: sdkBuckets}},
	)))
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                provider.Meter("temporal-sdk-go"),
		UseMonotonicCounters: true,
		// The SDK's default panics; a metric is never worth a crash.
		OnError: func(err error) { logger.Warn("temporal sdk metric", "error", err) },
	}), nil
}

// Result counts a per-account result written with a final status
// (published, failed, unknown), on network (the account's platform; ""
// when not known) with its error category ("" when published).
func (m *Metrics) Result(network, status, category string) {
	if m == nil {
		return
	}
	m.results.WithLabelValues(orUnknown(network), status, category).Inc()
}

// PostFinished counts a post whose run ended with status.
func (m *Metrics) PostFinished(status string) {
	if m == nil {
		return
	}
	m.posts.WithLabelValues(status).Inc()
}

// Published observes a successful publish to an account on network that
// took took.
func (m *Metrics) Published(network string, took time.Duration) {
	if m == nil {
		return
	}
	m.latency.WithLabelValues(orUnknown(network)).Observe(took.Seconds())
}

// Late observes a scheduled post that went out to an account on network
// late after its scheduledAt (zero or less: on time).
func (m *Metrics) Late(network string, late time.Duration) {
	if m == nil {
		return
	}
	m.lateness.WithLabelValues(orUnknown(network)).Observe(max(late, 0).Seconds())
}

// RateLimited counts a rate-limit answer from network asking to wait for
// retryAfter (zero: not said).
func (m *Metrics) RateLimited(network string, retryAfter time.Duration) {
	if m == nil {
		return
	}
	network = orUnknown(network)
	m.rateLimits.WithLabelValues(network).Inc()
	if retryAfter > 0 {
		m.rateLimitFor.WithLabelValues(network).Observe(retryAfter.Seconds())
	}
}

// Webhook delivery outcomes, for WebhookDelivery.
const (
	DeliveryDelivered = "delivered" // a 2xx answer
	DeliveryFailed    = "failed"    // anything else: another answer, a timeout, none, a refused address
)

// WebhookDelivery counts one delivery attempt of an event type (such as
// post.published) with its outcome (DeliveryDelivered, ...).
func (m *Metrics) WebhookDelivery(event, outcome string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(event, outcome).Inc()
}

// Unpublished counts an account's unpublish that ended with status
// (unpublished, failed) on network ("" when not known).
func (m *Metrics) Unpublished(network, status string) {
	if m == nil {
		return
	}
	m.unpublished.WithLabelValues(orUnknown(network), status).Inc()
}

// SetOverdue sets the number of overdue posts last counted.
func (m *Metrics) SetOverdue(n int) {
	if m == nil {
		return
	}
	m.overdue.Set(float64(n))
}

func orUnknown(network string) string {
	if network == "" {
		return "unknown"
	}
	return network
}
