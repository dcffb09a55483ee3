package workflows_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/postflow/postflow/internal/payloadcodec/payloadcodectest"
	"github.com/postflow/postflow/workflows"
)

// TestReplayStoredHistories replays histories recorded from real runs on
// the embedded Temporal server: those of this build (one per row of the
// error contract, scheduling and cancelling) at the top of
// testdata/histories, and, in a folder per release (v0.1.0/, ...), those of
// each released build whose runs may still be in flight when this one
// takes over. A change to PublishPost or UnpublishPost that would break any of them fails
// here: gate it with workflow.GetVersion, and before recording this
// build's histories move the released build's into its folder. The
// histories are recorded only on purpose (see recordHistories in
// cmd/postflow).
func TestReplayStoredHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d histories of this build, want at least 10", len(files))
	}
	released, err := filepath.Glob(filepath.Join("testdata", "histories", "v*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, released...)
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
			r.RegisterWorkflow(workflows.UnpublishPost)
			h := readHistory(t, f)
			// One recorded before its run closed would replay only its
			// beginning.
			if last := h.GetEvents()[len(h.GetEvents())-1].GetEventType(); !closing[last] {
				t.Fatalf("%s ends with %s, not with its run's close", f, last)
			}
			if err := r.ReplayWorkflowHistory(logger, h); err != nil {
				t.Errorf("replay %s: %v", f, err)
			}
		})
	}
}

// closing are the events that end a run.
var closing = map[enumspb.EventType]bool{
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:        true,
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:           true,
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:         true,
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:       true,
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:        true,
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: true,
}

func readHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(h.GetEvents()) == 0 {
		t.Fatalf("%s holds no events", path)
	}
	return h
}
