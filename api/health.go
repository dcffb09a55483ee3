package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Check is one dependency that /readyz asks: MongoDB, Redis or Temporal.
type Check struct {
	Name string
	Ping func(context.Context) error
}

// readyTimeout bounds each check, so that a hung dependency makes /readyz
// answer 503 instead of hanging the load balancer's probe.
const readyTimeout = 2 * time.Second

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz asks every dependency at once and names those that do not answer.
// The reason stays in the log: a dependency's error text can hold a host
// name or a user name that a public probe has no business seeing.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	failed := make([]bool, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
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
	for i, c := range s.checks {
		if failed[i] {
			status[c.Name] = "unavailable"
			down = append(down, c.Name)
		} else {
			status[c.Name] = "ok"
		}
	}
	if len(down) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": &Error{
				Code:    "dependency_unavailable",
				Message: strings.Join(down, ", ") + " not answering",
			},
			"checks": status,
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": status})
}
