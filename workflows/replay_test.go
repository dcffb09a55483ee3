package workflows_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/postflow/postflow/internal/payloadcodec/payloadcodectest"
	"github.com/postflow/postflow/workflows"
)

// TestReplayStoredHistories replays histories recorded from real runs on
// the embedded Temporal server: those of this build (one per row of the
// error contract, scheduling and cancelling) and, in v0/ and v1/, those of
// the builds before (version 0 and 1 of the "local-bookkeeping" change),
// which runs still in flight were started by. A change to PublishPost that
// would break any of them fails here: gate it with workflow.GetVersion.
// The histories are regenerated only on purpose (see recordHistories in
// cmd/postflow).
func TestReplayStoredHistories(t *testing.T) {
	glob := func(dir ...string) []string {
		files, err := filepath.Glob(filepath.Join(append(append([]string{"testdata", "histories"}, dir...), "*.json")...))
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	current, v0, v1 := glob(), glob("v0"), glob("v1")
	if len(current) < 10 || len(v0) < 3 || len(v1) < 5 {
		t.Fatalf("found %d histories of this build, %d of version 0 and %d of version 1; want at least 10, 3 and 5", len(current), len(v0), len(v1))
	}
	files := slices.Concat(current, v0, v1)
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
