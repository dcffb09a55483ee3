package temporalconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"golang.org/x/sync/singleflight"
)

// TaskQueueDescriber is the part of client.Client that Pollers asks.
type TaskQueueDescriber interface {
	DescribeTaskQueue(ctx context.Context, taskQueue string, taskQueueType enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error)
}

// ErrNoPoller: no worker has polled the task queue recently, so nothing
// publishes (workers stopped, or cut off from Temporal).
var ErrNoPoller = errors.New("no worker polls the task queue")

// PollWindow is how recently a worker must have polled. An idle worker's
// long poll lasts up to a minute (matching.longPollExpirationInterval)
// and Temporal records a poll when it begins, so a healthy idle worker's
// last poll can be a minute old: ten seconds of slack keep it ready.
const PollWindow = 70 * time.Second

// pollerCacheTTL is how long one describe answers every probe: a probe
// storm (many load balancers, a monitor per region) makes one call to
// Temporal every few seconds.
const pollerCacheTTL = 5 * time.Second

// describeTimeout bounds one describe, whoever asked first.
const describeTimeout = 2 * time.Second

// Pollers tells whether a worker polls a task queue, for both of the kinds
// of task a publish needs (workflow and activity): the one signal that
// separates "the API is up" from "posts go out". Safe for concurrent use.
type Pollers struct {
	describe  TaskQueueDescriber
	taskQueue string
	now       func() time.Time

	flight singleflight.Group
	mu     sync.Mutex
	at     time.Time // when cached was found; zero: nothing cached
	cached error
}

// NewPollers checks taskQueue through d (a client.Client).
func NewPollers(d TaskQueueDescriber, taskQueue string) *Pollers {
	return &Pollers{describe: d, taskQueue: taskQueue, now: time.Now}
}

// Ping returns nil when a worker polled the task queue's workflow and
// activity tasks within PollWindow; an error wrapping ErrNoPoller when one
// kind had none; or the describe's error (Temporal unreachable). Answers
// are cached for a few seconds; a caller whose ctx ends stops waiting, but
// the describe goes on for those who share it.
func (p *Pollers) Ping(ctx context.Context) error {
	p.mu.Lock()
	if !p.at.IsZero() && p.now().Sub(p.at) < pollerCacheTTL {
		err := p.cached
		p.mu.Unlock()
		return err
	}
	p.mu.Unlock()
	ch := p.flight.DoChan("describe", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), describeTimeout)
		defer cancel()
		err := p.check(ctx)
		p.mu.Lock()
		p.at, p.cached = p.now(), err
		p.mu.Unlock()
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("temporal: describe task queue %s: %w", p.taskQueue, ctx.Err())
	}
}

func (p *Pollers) check(ctx context.Context) error {
	since := p.now().Add(-PollWindow)
	var idle []string
	for _, kind := range []struct {
		typ  enumspb.TaskQueueType
		name string
	}{
		{enumspb.TASK_QUEUE_TYPE_WORKFLOW, "workflow"},
		{enumspb.TASK_QUEUE_TYPE_ACTIVITY, "activity"},
	} {
		resp, err := p.describe.DescribeTaskQueue(ctx, p.taskQueue, kind.typ)
		if err != nil {
			return fmt.Errorf("temporal: describe %s task queue %s: %w", kind.name, p.taskQueue, err)
		}
		if !polledSince(resp, since) {
			idle = append(idle, kind.name)
		}
	}
	if len(idle) > 0 {
		return fmt.Errorf("%w %s: no %s poll within %s", ErrNoPoller, p.taskQueue, strings.Join(idle, " or "), PollWindow)
	}
	return nil
}

// polledSince says whether any poller of resp polled after since.
func polledSince(resp *workflowservice.DescribeTaskQueueResponse, since time.Time) bool {
	for _, pi := range resp.GetPollers() {
		if t := pi.GetLastAccessTime(); t != nil && t.AsTime().After(since) {
			return true
		}
	}
	return false
}
