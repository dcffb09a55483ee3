package workflows_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/postflow/postflow/internal/payloadcodec/payloadcodectest"
	"github.com/postflow/postflow/workflows"
)

// TestReplayStoredHistories replays histories recorded from real runs on
// the embedded Temporal server: those of this build (one per row of the
// error contract, scheduling and cancelling) and, in v0/, those of the
// build before, which runs still in flight were started by. A change to
// PublishPost that would break either fails here: gate it with
// workflow.GetVersion. The histories are regenerated only on purpose (see
// recordHistories in cmd/postflow).
func TestReplayStoredHistories(t *testing.T) {
	current, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	previous, err := filepath.Glob(filepath.Join("testdata", "histories", "v0", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(current) < 9 || len(previous) < 3 {
		t.Fatalf("found %d histories of this build and %d of the one before, want at least 9 and 3", len(current), len(previous))
	}
	files := append(current, previous...)
	logger := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	// Runs store their payloads encrypted: the recording dev process used
	// this test key (cmd/postflow's tests set TEMPORAL_PAYLOAD_KEY to it).
	dc := payloadcodectest.DataConverter(t, filepath.Join("testdata", "histories", "payload.key"))
	for _, f := range files {
		name, _ := filepath.Rel(filepath.Join("testdata", "histories"), f)
		t.Run(name, func(t *testing.T) {
			r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DataConverter: dc})
			if err != nil {
				t.Fatal(err)
			}
			r.RegisterWorkflow(workflows.PublishPost)
			if err := r.ReplayWorkflowHistoryFromJSONFile(logger, f); err != nil {
				t.Errorf("replay %s: %v", f, err)
			}
		})
	}
}
