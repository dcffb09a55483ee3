package temporalconn

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeDescriber answers with the last poll of each task type (zero: no
// poller listed), or err.
type fakeDescriber struct {
	last  map[enumspb.TaskQueueType]time.Time
	err   error
	calls atomic.Int32
	// block, if not nil, holds every describe until closed.
	block chan struct{}
}

func (f *fakeDescriber) DescribeTaskQueue(ctx context.Context, taskQueue string, typ enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error) {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
	}
	if f.err != nil {
		return nil, f.err
	}
	resp := &workflowservice.DescribeTaskQueueResponse{}
	if t := f.last[typ]; !t.IsZero() {
		resp.Pollers = []*taskqueuepb.PollerInfo{{Identity: "worker@host", LastAccessTime: timestamppb.New(t)}}
	}
	return resp, nil
}

func TestPollersPing(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	wf, act := enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY
	unreachable := errors.New("connection refused")
	for _, tt := range []struct {
		name     string
		last     map[enumspb.TaskQueueType]time.Time
		err      error
		noPoller bool
		wantErr  error
	}{
		{name: "both polled just now", last: map[enumspb.TaskQueueType]time.Time{wf: now, act: now}},
		{name: "an idle worker's long poll began a minute ago", last: map[enumspb.TaskQueueType]time.Time{wf: now.Add(-time.Minute), act: now.Add(-time.Minute)}},
		{name: "no poller at all", last: nil, wantErr: ErrNoPoller},
		{name: "workflow pollers only", last: map[enumspb.TaskQueueType]time.Time{wf: now}, wantErr: ErrNoPoller},
		{name: "activity pollers only", last: map[enumspb.TaskQueueType]time.Time{act: now}, wantErr: ErrNoPoller},
		{name: "a stopped worker still listed", last: map[enumspb.TaskQueueType]time.Time{wf: now.Add(-2 * time.Minute), act: now.Add(-2 * time.Minute)}, wantErr: ErrNoPoller},
		{name: "temporal unreachable", err: unreachable, wantErr: unreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPollers(&fakeDescriber{last: tt.last, err: tt.err}, "postflow-publish")
			p.now = func() time.Time { return now }
			err := p.Ping(context.Background())
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Ping = %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Ping = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// A probe storm makes one describe per kind of task, and the answer is
// kept for a few seconds only: a worker that stops is noticed.
func TestPollersCacheAnswersAProbeStorm(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := now
	var mu sync.Mutex
	d := &fakeDescriber{last: map[enumspb.TaskQueueType]time.Time{
		enumspb.TASK_QUEUE_TYPE_WORKFLOW: now, enumspb.TASK_QUEUE_TYPE_ACTIVITY: now,
	}, block: make(chan struct{})}
	p := NewPollers(d, "postflow-publish")
	p.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- p.Ping(context.Background()) }()
	}
	time.Sleep(50 * time.Millisecond) // let every probe join the one describe
	close(d.block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Ping = %v", err)
		}
	}
	if got := d.calls.Load(); got != 2 {
		t.Fatalf("50 concurrent probes made %d describes, want 2 (workflow and activity)", got)
	}
	_ = p.Ping(context.Background())
	if got := d.calls.Load(); got != 2 {
		t.Fatalf("a probe within the cache's life made a describe (%d calls)", got)
	}

	// The worker stops; past the cache's life the probe asks again.
	d.last = nil
	mu.Lock()
	clock = clock.Add(pollerCacheTTL)
	mu.Unlock()
	if err := p.Ping(context.Background()); !errors.Is(err, ErrNoPoller) {
		t.Fatalf("after the cache's life, Ping = %v, want ErrNoPoller", err)
	}
}

// A probe whose own deadline passes stops waiting for a hung Temporal.
func TestPollersPingHonoursTheCallersDeadline(t *testing.T) {
	d := &fakeDescriber{block: make(chan struct{})}
	defer close(d.block)
	p := NewPollers(d, "postflow-publish")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping = %v, want the deadline", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("Ping waited %s for a hung describe", time.Since(start))
	}
}
