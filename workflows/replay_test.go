package workflows_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/postflow/postflow/workflows"
)

// TestReplayStoredHistories replays histories recorded from real runs on
// the embedded Temporal server. A change to PublishPost that would break
// runs already in flight fails here: gate it with workflow.GetVersion. The
// histories are regenerated only on purpose (see recordHistories in
// cmd/postflow).
func TestReplayStoredHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d stored histories, want at least 3", len(files))
	}
	logger := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflows.PublishPost)
			if err := r.ReplayWorkflowHistoryFromJSONFile(logger, f); err != nil {
				t.Errorf("replay %s: %v", f, err)
			}
		})
	}
}
