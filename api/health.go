package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/postflow/postflow/internal/echo"
)

// Check is one dependency that /readyz asks: MongoDB, Redis or Temporal.
type Check struct {
	Name string
	Ping func(context.Context) error
}

// WorkerCheck asks whether a worker polls the publish task queue (see
// temporalconn.Pollers): whether posts go out, not whether this API can
// answer.
type WorkerCheck struct {
	// Ping returns nil when a worker polled within
	// temporalconn.PollWindow (70 s).
	Ping func(context.Context) error
	// Required makes plain /readyz answer 503 without a polling worker
	// (READYZ_REQUIRE_WORKER: a single-host deployment). Off, an API
	// scaled apart from its workers stays in its load balancer while the
	// workers are down; /readyz?scope=publishing says 503 either way.
	Required bool
}

// workerCheckName is the worker's entry in /readyz's checks.
const workerCheckName = "worker"

// readyTimeout bounds each check, so that a hung dependency makes /readyz
// answer 503 instead of hanging the load balancer's probe.
const readyTimeout = 2 * time.Second

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz asks every dependency at once and names those that do not answer.
// The reason stays in the log: a dependency's error text can hold a host
// name or a user name that a public probe has no business seeing.
//
// With ?scope=publishing it answers for publishing: 503 also when no
// worker polls, whatever WorkerCheck.Required says (for monitors).
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	publishing := false
	switch scope := r.URL.Query().Get("scope"); scope {
	case "":
	case "publishing":
		publishing = true
	default:
		writeError(w, r, s.logger, BadRequest("invalid_scope", "scope must be publishing, or absent; got "+echo.Quote(scope)+"."))
		return
	}
	checks := s.checks
	if s.worker.Ping != nil {
		checks = append(checks[:len(checks):len(checks)], Check{Name: workerCheckName, Ping: s.worker.Ping})
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	failed := make([]bool, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Ping(ctx); err != nil {
				failed[i] = true
				s.logger.WarnContext(r.Context(), "readiness check failed", "dependency", c.Name, "error", err)
			}
		}()
	}
	wg.Wait()

	status := map[string]string{}
	var down []string
	for i, c := range checks {
		switch {
		case !failed[i]:
			status[c.Name] = "ok"
		case c.Name == workerCheckName:
			status[c.Name] = "not_polling"
			if publishing || s.worker.Required {
				down = append(down, c.Name)
			}
		default:
			status[c.Name] = "unavailable"
			down = append(down, c.Name)
		}
	}
	if len(down) > 0 {
		e := &Error{Code: "dependency_unavailable", Message: strings.Join(down, ", ") + " not answering"}
		if len(down) == 1 && down[0] == workerCheckName {
			e = &Error{Code: "worker_not_polling", Message: "no worker has polled the publish task queue within 70 s: nothing publishes"}
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": e, "checks": status})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": status})
}
