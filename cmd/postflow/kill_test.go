package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/lockedbuf"
)

// TestWorkerKilledMidPublishPublishesOnce runs `postflow dev` without its
// worker and `postflow worker` as a process of its own, and SIGKILLs that
// worker while a publish is in flight: before the platform acted on the
// call, and after it created the post but before PostFlow stored the
// result. A new worker takes the run over (the activity's heartbeat
// timeout tells Temporal the first one is gone), and the platform ends
// with the post exactly once.
func TestWorkerKilledMidPublishPublishesOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dev := startDevWith(t, []string{"TOKEN_ENCRYPTION_KEY=" + testTokenKey}, "--no-worker")
	d := dialDev(ctx, t, dev)
	apiURL := d.url

	outer := t // workers outlive the subtest that starts them
	worker := startWorkerProcess(ctx, outer, dev)
	for _, tt := range []struct {
		mode string
		step string
	}{
		{"stall_before", "before the platform acted"},
		{"stall_after", "after the platform created the post, before the result was stored"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			d.t = t
			text := "killed " + tt.step
			d.behave(fmt.Sprintf(`{"publish":%q,"publishTimes":1}`, tt.mode))
			id := d.create(text, "")
			d.trigger(id, tt.mode)
			// The worker's call is in the sandbox's hands now.
			for stalled(t, apiURL) != 1 {
				if ctx.Err() != nil {
					t.Fatal("the publish never reached the sandbox")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if want := map[string]int{"stall_before": 0, "stall_after": 1}[tt.mode]; d.inFeed(text) != want {
				t.Fatalf("before the kill the feed has %q %d times, want %d", text, d.inFeed(text), want)
			}
			if err := worker.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = worker.Wait()
			worker = startWorkerProcess(ctx, outer, dev)

			post := d.wait(id, time.Minute)
			d.checkPublishedOnce(post, text, 2)
		})
	}
	d.t = t
	_ = worker.Process.Signal(os.Interrupt)
	_ = worker.Wait()
}

// startWorkerProcess starts `postflow worker` against dev's stack and waits
// until it polls.
func startWorkerProcess(ctx context.Context, t *testing.T, dev *devProcess) *exec.Cmd {
	t.Helper()
	return startWorkerProcessWith(ctx, t, dev, nil)
}

// startWorkerProcessWith starts a worker with more environment.
func startWorkerProcessWith(ctx context.Context, t *testing.T, dev *devProcess, env []string) *exec.Cmd {
	t.Helper()
	out := &lockedbuf.Buffer{}
	cmd := exec.Command(bin, "worker")
	cmd.Env = append(dev.workerEnv(t), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitOutput(ctx, t, out, "worker polling")
	return cmd
}

// stalled is how many publish calls the sandbox holds.
func stalled(t *testing.T, apiURL string) int {
	t.Helper()
	res, err := http.Get(apiURL + "/sandbox/stalled")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Stalled int }
	_ = json.NewDecoder(res.Body).Decode(&out)
	return out.Stalled
}
