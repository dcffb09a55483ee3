package devstack_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/internal/devstack"
	"github.com/postflow/postflow/internal/temporalconn"
)

// GET /readyz?scope=publishing against a real Temporal server: ready while
// an idle worker polls the task queue (its long polls last a minute, so
// for more than that), 503 once it stops (this server keeps a stopped
// worker listed, so it takes temporalconn.PollWindow and the 5 s cache),
// and ready again when a worker returns.
func TestPublishingReadinessFollowsTheWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack, err := devstack.Start(devstack.Options{
		DataDir: t.TempDir(), TemporalPort: freePort(t), UIPort: -1, MongoPort: freePort(t), RedisPort: freePort(t),
		Namespace: "default", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer stack.Stop()
	c := temporalClient(t, stack.Temporal.Address())
	defer c.Close()

	const queue = "postflow-publish"
	srv := httptest.NewServer(api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: "http://localhost:3000",
		Worker: api.WorkerCheck{Ping: temporalconn.NewPollers(c, queue).Ping},
	}))
	defer srv.Close()
	startWorker := func() worker.Worker {
		w := worker.New(c, queue, worker.Options{})
		// One of each, so that the worker polls workflow and activity tasks.
		w.RegisterWorkflowWithOptions(func(workflow.Context) error { return nil }, workflow.RegisterOptions{Name: "Noop"})
		w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "NoopActivity"})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	status := func() int {
		res, err := http.Get(srv.URL + "/readyz?scope=publishing")
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitFor := func(want int, within time.Duration) {
		t.Helper()
		start := time.Now()
		for status() != want {
			if time.Since(start) > within || ctx.Err() != nil {
				t.Fatalf("/readyz?scope=publishing did not answer %d within %s", want, within)
			}
			time.Sleep(time.Second)
		}
		t.Logf("%d after %s", want, time.Since(start).Round(time.Second))
	}

	w := startWorker()
	waitFor(http.StatusOK, 30*time.Second)
	for start := time.Now(); time.Since(start) < 65*time.Second; time.Sleep(time.Second) {
		if got := status(); got != http.StatusOK {
			t.Fatalf("an idle, polling worker made /readyz?scope=publishing answer %d after %s", got, time.Since(start).Round(time.Second))
		}
	}
	w.Stop()
	waitFor(http.StatusServiceUnavailable, temporalconn.PollWindow+20*time.Second)
	w = startWorker()
	defer w.Stop()
	waitFor(http.StatusOK, 30*time.Second)
}
