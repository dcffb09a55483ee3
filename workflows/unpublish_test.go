package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/workflows"
)

// unpublishRun runs UnpublishPost over scripted activities: deletes[id]
// is what each call of UnpublishFromAccount for account id answers, in
// order (nil: unpublished); the last answer repeats.
type unpublishRun struct {
	mu       sync.Mutex
	env      *testsuite.TestWorkflowEnvironment
	deletes  map[string][]error
	calls    map[string]int
	failures []workflows.UnpublishFailureInput
	finished []workflows.FinishUnpublishInput
	timers   []time.Duration
	// statuses: PostflowStatus, as each upsert set it.
	statuses []string
}

func newUnpublishRun(deletes map[string][]error) *unpublishRun {
	var s testsuite.WorkflowTestSuite
	r := &unpublishRun{env: s.NewTestWorkflowEnvironment(), deletes: deletes, calls: map[string]int{}}
	r.env.RegisterWorkflow(workflows.UnpublishPost)
	r.env.RegisterActivityWithOptions(func(_ context.Context, in workflows.UnpublishAccountInput) (*workflows.UnpublishOutcome, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		script := r.deletes[in.AccountID]
		n := r.calls[in.AccountID]
		r.calls[in.AccountID]++
		if err := script[min(n, len(script)-1)]; err != nil {
			return nil, err
		}
		return &workflows.UnpublishOutcome{AccountID: in.AccountID, Status: "unpublished"}, nil
	}, activity.RegisterOptions{Name: workflows.UnpublishFromAccountActivity})
	r.env.RegisterActivityWithOptions(func(_ context.Context, in workflows.UnpublishFailureInput) (*workflows.UnpublishOutcome, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.failures = append(r.failures, in)
		return &workflows.UnpublishOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: in.Code}, nil
	}, activity.RegisterOptions{Name: workflows.RecordUnpublishFailureActivity})
	r.env.RegisterActivityWithOptions(func(_ context.Context, in workflows.FinishUnpublishInput) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.finished = append(r.finished, in)
		return nil
	}, activity.RegisterOptions{Name: workflows.FinishUnpublishActivity})
	r.env.SetOnTimerScheduledListener(func(_ string, d time.Duration) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.timers = append(r.timers, d)
	})
	r.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		status, _ := args.Get(0).(temporal.SearchAttributes).GetKeyword(workflows.StatusAttr)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.statuses = append(r.statuses, status)
	}).Return(nil)
	return r
}

func rateLimitedErr(wait time.Duration) error {
	return temporal.NewApplicationErrorWithOptions("429", workflows.ErrRateLimited, temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{wait}})
}

func unavailableErr(code string) error {
	return temporal.NewApplicationErrorWithOptions("503", workflows.ErrPlatformUnavailable, temporal.ApplicationErrorOptions{Details: []any{code}})
}

// Each account's branch follows the publish run's semantics: a 429 waits
// its Retry-After on a timer and calls again; an outage is retried by
// the policy (4 attempts) and then recorded with the network's code; a
// wait past the horizon is recorded as RATE_LIMIT_HORIZON without
// waiting. The others' outcomes are untouched, and the end is announced
// once with every outcome.
func TestUnpublishPostBranches(t *testing.T) {
	r := newUnpublishRun(map[string][]error{
		"waits":   {rateLimitedErr(10 * time.Minute), nil},
		"down":    {unavailableErr("HTTP_503")},
		"quota":   {rateLimitedErr(72 * time.Hour)},
		"at-once": {nil},
	})
	r.env.ExecuteWorkflow(workflows.UnpublishPost, workflows.UnpublishPostInput{PostID: "p", AccountIDs: []string{"waits", "down", "quota", "at-once"}})
	if err := r.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res workflows.UnpublishPostResult
	if err := r.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := []workflows.UnpublishOutcome{
		{AccountID: "waits", Status: "unpublished"},
		{AccountID: "down", Status: "failed", ErrorCode: "HTTP_503"},
		{AccountID: "quota", Status: "failed", ErrorCode: "RATE_LIMIT_HORIZON"},
		{AccountID: "at-once", Status: "unpublished"},
	}
	if len(res.Accounts) != len(want) {
		t.Fatalf("outcomes %+v, want %+v", res.Accounts, want)
	}
	for i := range want {
		if res.Accounts[i] != want[i] {
			t.Errorf("outcome %d: %+v, want %+v", i, res.Accounts[i], want[i])
		}
	}
	if r.calls["waits"] != 2 || r.calls["down"] != 4 || r.calls["quota"] != 1 || r.calls["at-once"] != 1 {
		t.Errorf("calls %v; want waits 2, down 4 (the retry policy), quota 1, at-once 1", r.calls)
	}
	waited := false
	for _, d := range r.timers {
		if d == 10*time.Minute {
			waited = true
		}
		if d >= 72*time.Hour {
			t.Errorf("waited %v: past the horizon the run must fail, not wait", d)
		}
	}
	if !waited {
		t.Errorf("timers %v; want the 10-minute Retry-After waited on a timer", r.timers)
	}
	if len(r.failures) != 2 {
		t.Errorf("failures recorded %+v; want down and quota", r.failures)
	}
	if len(r.finished) != 1 || len(r.finished[0].Outcomes) != 4 {
		t.Errorf("FinishUnpublish calls %+v; want one with every outcome", r.finished)
	}
	if len(r.statuses) != 1 || r.statuses[0] != "unpublish_failed" {
		t.Errorf("PostflowStatus upserts %v; want unpublish_failed once", r.statuses)
	}
}

// A run whose every account is unpublished says so to operators.
func TestUnpublishPostAllUnpublished(t *testing.T) {
	r := newUnpublishRun(map[string][]error{"a": {unavailableErr("HTTP_503"), nil}, "b": {nil}})
	r.env.ExecuteWorkflow(workflows.UnpublishPost, workflows.UnpublishPostInput{PostID: "p", AccountIDs: []string{"a", "b"}})
	if err := r.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(r.statuses) != 1 || r.statuses[0] != "unpublished" || len(r.failures) != 0 {
		t.Errorf("PostflowStatus upserts %v, failures %+v; want unpublished once, none", r.statuses, r.failures)
	}
}

// A run cancelled while an account waits out a rate limit records that
// account as cancelled and still announces its end.
func TestUnpublishPostCancelled(t *testing.T) {
	r := newUnpublishRun(map[string][]error{"waits": {rateLimitedErr(time.Hour)}, "done": {nil}})
	r.env.RegisterDelayedCallback(r.env.CancelWorkflow, 10*time.Minute)
	r.env.ExecuteWorkflow(workflows.UnpublishPost, workflows.UnpublishPostInput{PostID: "p", AccountIDs: []string{"waits", "done"}})
	if err := r.env.GetWorkflowError(); err != nil {
		var canceled *temporal.CanceledError
		if !errors.As(err, &canceled) {
			t.Fatalf("run ended with %v", err)
		}
	}
	if len(r.failures) != 1 || r.failures[0].AccountID != "waits" || r.failures[0].Code != workflows.CodeCancelled {
		t.Errorf("failures %+v; want waits recorded as CANCELLED", r.failures)
	}
	if len(r.finished) != 1 {
		t.Fatalf("FinishUnpublish calls %+v; want one", r.finished)
	}
	got := r.finished[0].Outcomes
	if len(got) != 2 || got[0].Status != "failed" || got[1].Status != "unpublished" {
		t.Errorf("announced outcomes %+v; want waits failed, done unpublished", got)
	}
}
