package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/workflows"
)

// Stubs give the mocked activities their names and signatures.
func startStub(context.Context, workflows.StartInput) (*workflows.StartResult, error) {
	return nil, nil
}
func accountStub(context.Context, workflows.AccountInput) (*workflows.AccountOutcome, error) {
	return nil, nil
}
func failureStub(context.Context, workflows.FailureInput) (*workflows.AccountOutcome, error) {
	return nil, nil
}
func finishStub(context.Context, workflows.FinishInput) (*workflows.FinishResult, error) {
	return nil, nil
}

// run records what a test workflow did. Mocked activities run on
// goroutines of their own, so everything here is under mu.
type run struct {
	mu       sync.Mutex
	env      *testsuite.TestWorkflowEnvironment
	timers   []time.Duration
	calls    map[string]int
	starts   map[string][]time.Time // activity name → start times, in workflow time
	failures []workflows.FailureInput
	// recordAs, when set, is what RecordPublishFailure stored: unknown,
	// say, when an attempt was left in doubt.
	recordAs *workflows.AccountOutcome
	// upserts: PostflowStatus and PostflowPlatform, as each upsert set them.
	upserts []string
}

func newRun(t *testing.T) *run {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.PublishPost)
	env.RegisterActivityWithOptions(startStub, activity.RegisterOptions{Name: workflows.StartPublishingActivity})
	env.RegisterActivityWithOptions(accountStub, activity.RegisterOptions{Name: workflows.RefreshTokenActivity})
	env.RegisterActivityWithOptions(accountStub, activity.RegisterOptions{Name: workflows.PublishToAccountActivity})
	env.RegisterActivityWithOptions(failureStub, activity.RegisterOptions{Name: workflows.RecordFailureActivity})
	env.RegisterActivityWithOptions(finishStub, activity.RegisterOptions{Name: workflows.FinishPostActivity})
	r := &run{env: env, calls: map[string]int{}, starts: map[string][]time.Time{}}
	env.SetOnTimerScheduledListener(func(_ string, d time.Duration) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.timers = append(r.timers, d)
	})
	started := func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls[info.ActivityType.Name]++
		r.starts[info.ActivityType.Name] = append(r.starts[info.ActivityType.Name], env.Now())
	}
	env.SetOnActivityStartedListener(started)
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, ctx context.Context, args []any) { started(info, ctx, nil) })
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		r.mu.Lock()
		defer r.mu.Unlock()
		status, _ := sa.GetKeyword(workflows.StatusAttr)
		platforms, _ := sa.GetKeywordList(workflows.PlatformAttr)
		r.upserts = append(r.upserts, fmt.Sprintf("%s %v", status, platforms))
	}).Return(nil).Maybe()
	env.OnActivity(workflows.RecordFailureActivity, mock.Anything, mock.Anything).Return(func(_ context.Context, in workflows.FailureInput) (*workflows.AccountOutcome, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.failures = append(r.failures, in)
		if r.recordAs != nil {
			return r.recordAs, nil
		}
		return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: in.Code}, nil
	})
	env.OnActivity(workflows.FinishPostActivity, mock.Anything, mock.Anything).Return(func(context.Context, workflows.FinishInput) (*workflows.FinishResult, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.failures) > 0 {
			return &workflows.FinishResult{Status: "failed"}, nil
		}
		return &workflows.FinishResult{Status: "published"}, nil
	})
	return r
}

func (r *run) accounts(refs ...workflows.AccountRef) {
	r.env.OnActivity(workflows.StartPublishingActivity, mock.Anything, mock.Anything).Return(&workflows.StartResult{Accounts: refs}, nil).Once()
}

// publishes makes PublishToAccount answer with each of answers in turn,
// per account; the last answer repeats.
func (r *run) publishes(answers map[string][]func() (*workflows.AccountOutcome, error)) {
	seen := map[string]int{}
	r.env.OnActivity(workflows.PublishToAccountActivity, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.AccountInput) (*workflows.AccountOutcome, error) {
			r.mu.Lock()
			list := answers[in.AccountID]
			i := min(seen[in.AccountID], len(list)-1)
			seen[in.AccountID]++
			r.mu.Unlock()
			return list[i]()
		})
}

func (r *run) execute(t *testing.T, in workflows.PublishPostInput) *workflows.PublishPostResult {
	t.Helper()
	r.env.ExecuteWorkflow(workflows.PublishPost, in)
	if !r.env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	if err := r.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var res workflows.PublishPostResult
	if err := r.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return &res
}

func published(id string) func() (*workflows.AccountOutcome, error) {
	return func() (*workflows.AccountOutcome, error) {
		return &workflows.AccountOutcome{AccountID: id, Status: "published", PlatformPostID: "urn:li:share:1"}, nil
	}
}

func failed(id, code string) func() (*workflows.AccountOutcome, error) {
	return func() (*workflows.AccountOutcome, error) {
		return &workflows.AccountOutcome{AccountID: id, Status: "failed", ErrorCode: code}, nil
	}
}

func rateLimited(after time.Duration) func() (*workflows.AccountOutcome, error) {
	return func() (*workflows.AccountOutcome, error) {
		return nil, temporal.NewNonRetryableApplicationError("linkedin: rate_limited", workflows.ErrRateLimited, nil, after)
	}
}

func unavailable(code string) func() (*workflows.AccountOutcome, error) {
	return func() (*workflows.AccountOutcome, error) {
		return nil, temporal.NewApplicationError("linkedin: retryable "+code, workflows.ErrPlatformUnavailable, code)
	}
}

var in = workflows.PublishPostInput{PostID: "p1", RateLimitHorizon: 48 * time.Hour}

func TestPublishesToEveryAccountInParallel(t *testing.T) {
	r := newRun(t)
	r.accounts(workflows.AccountRef{ID: "a1", Platform: "linkedin"}, workflows.AccountRef{ID: "a2", Platform: "sandbox"})
	r.publishes(map[string][]func() (*workflows.AccountOutcome, error){"a1": {published("a1")}, "a2": {published("a2")}})
	res := r.execute(t, in)
	if res.Status != "published" || len(res.Accounts) != 2 || res.Accounts[0].Status != "published" || res.Accounts[1].Status != "published" {
		t.Errorf("result = %+v", res)
	}
	// Fresh tokens: start + one publish per account + finish; no refresh.
	if r.calls[workflows.RefreshTokenActivity] != 0 || r.calls[workflows.PublishToAccountActivity] != 2 || len(r.timers) != 0 {
		t.Errorf("calls = %v, timers %v", r.calls, r.timers)
	}
	if s := r.starts[workflows.PublishToAccountActivity]; !s[0].Equal(s[1]) {
		t.Errorf("the branches ran one after the other: %v", s)
	}
	// One upsert, at the end: operators filter on the outcome.
	if !slices.Equal(r.upserts, []string{"published [linkedin sandbox]"}) {
		t.Errorf("search attribute upserts = %q", r.upserts)
	}
}

// A branch that set the post published spares the run its FinishPost;
// when none did, or an account failed, FinishPost decides.
func TestFinishPostOnlyWhenNoBranchFinished(t *testing.T) {
	finishing := func(id string) func() (*workflows.AccountOutcome, error) {
		return func() (*workflows.AccountOutcome, error) {
			return &workflows.AccountOutcome{AccountID: id, Status: "published", FinishedPost: true}, nil
		}
	}
	tests := []struct {
		name       string
		a1, a2     func() (*workflows.AccountOutcome, error)
		wantFinish int
		wantStatus string
	}{
		{"the last branch finished the post", published("a1"), finishing("a2"), 0, "published"},
		{"no branch could tell it was last", published("a1"), published("a2"), 1, "published"},
		{"an account failed", failed("a1", "TEXT_TOO_LONG"), published("a2"), 1, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t)
			r.accounts(workflows.AccountRef{ID: "a1", Platform: "linkedin"}, workflows.AccountRef{ID: "a2", Platform: "linkedin"})
			var asked []bool
			answers := map[string]func() (*workflows.AccountOutcome, error){"a1": tt.a1, "a2": tt.a2}
			r.env.OnActivity(workflows.PublishToAccountActivity, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in workflows.AccountInput) (*workflows.AccountOutcome, error) {
					r.mu.Lock()
					asked = append(asked, in.FinishPost)
					if tt.wantStatus == "failed" && in.AccountID == "a1" {
						r.failures = append(r.failures, workflows.FailureInput{AccountID: "a1"})
					}
					r.mu.Unlock()
					return answers[in.AccountID]()
				})
			res := r.execute(t, in)
			if res.Status != tt.wantStatus || r.calls[workflows.FinishPostActivity] != tt.wantFinish {
				t.Errorf("status %s after %d FinishPost, want %s after %d", res.Status, r.calls[workflows.FinishPostActivity], tt.wantStatus, tt.wantFinish)
			}
			if !slices.Equal(asked, []bool{true, true}) {
				t.Errorf("branches asked to finish the post: %v, want both", asked)
			}
			if want := tt.wantStatus + " [linkedin]"; !slices.Equal(r.upserts, []string{want}) {
				t.Errorf("upserts %q, want %q", r.upserts, want)
			}
		})
	}
}

func TestErrorContract(t *testing.T) {
	type answers = map[string][]func() (*workflows.AccountOutcome, error)
	tests := []struct {
		name        string
		refs        []workflows.AccountRef
		refresh     func() (*workflows.AccountOutcome, error)
		publish     answers
		horizon     time.Duration
		wantAccount string // the outcome of the first account
		wantCalls   int    // PublishToAccount executions, retries included
		wantTimers  []time.Duration
		wantFailure string // code of the failure the workflow records
		check       func(t *testing.T, r *run)
	}{
		{
			name:        "429 sleeps retryAfter on a timer, then tries again; not an attempt",
			publish:     answers{"a1": {rateLimited(90 * time.Second), rateLimited(30 * time.Second), published("a1")}},
			wantAccount: "published", wantCalls: 3, wantTimers: []time.Duration{90 * time.Second, 30 * time.Second},
		},
		{
			name:        "5xx retried with backoff 2 s, 4 s, 8 s: 4 attempts, then failed",
			publish:     answers{"a1": {unavailable("HTTP_503")}},
			wantAccount: "failed", wantCalls: 4, wantFailure: "HTTP_503",
			check: func(t *testing.T, r *run) {
				s := r.starts[workflows.PublishToAccountActivity]
				for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
					if got := s[i+1].Sub(s[i]); got != want {
						t.Errorf("backoff before attempt %d = %v, want %v", i+2, got, want)
					}
				}
			},
		},
		{
			name:        "5xx then success within the attempts",
			publish:     answers{"a1": {unavailable("HTTP_500"), unavailable("HTTP_504"), published("a1")}},
			wantAccount: "published", wantCalls: 3,
		},
		{
			name:        "429 then 503 then success",
			publish:     answers{"a1": {rateLimited(time.Minute), unavailable("HTTP_503"), published("a1")}},
			wantAccount: "published", wantCalls: 3, wantTimers: []time.Duration{time.Minute},
		},
		{
			name:        "invalid_grant on refresh: failed, nothing published, no retry",
			refs:        []workflows.AccountRef{{ID: "a1", Platform: "linkedin", NeedsRefresh: true}},
			refresh:     failed("a1", "invalid_grant"),
			publish:     answers{"a1": {published("a1")}},
			wantAccount: "failed", wantCalls: 0,
			check: func(t *testing.T, r *run) {
				if r.calls[workflows.RefreshTokenActivity] != 1 {
					t.Errorf("refresh calls = %d, want 1", r.calls[workflows.RefreshTokenActivity])
				}
			},
		},
		{
			name:        "expired token (401) or invalid content: failed result, no retry",
			publish:     answers{"a1": {failed("a1", "EXPIRED_ACCESS_TOKEN")}},
			wantAccount: "failed", wantCalls: 1,
		},
		{
			name:        "rate limited past the horizon fails with a clear reason",
			publish:     answers{"a1": {rateLimited(30 * time.Hour)}},
			horizon:     48 * time.Hour,
			wantAccount: "failed", wantCalls: 2, wantTimers: []time.Duration{30 * time.Hour}, wantFailure: "RATE_LIMIT_HORIZON",
		},
		{
			name: "one account's failure never stops the others",
			refs: []workflows.AccountRef{{ID: "a1"}, {ID: "a2"}},
			publish: answers{
				"a1": {unavailable("HTTP_503")},
				"a2": {rateLimited(time.Minute), published("a2")},
			},
			wantAccount: "failed", wantCalls: 6, wantTimers: []time.Duration{time.Minute}, wantFailure: "HTTP_503",
			check: func(t *testing.T, r *run) {
				if len(r.failures) != 1 || r.failures[0].AccountID != "a1" {
					t.Errorf("failures = %+v, want a1 only", r.failures)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t)
			refs := tt.refs
			if refs == nil {
				refs = []workflows.AccountRef{{ID: "a1", Platform: "linkedin"}}
			}
			r.accounts(refs...)
			if tt.refresh != nil {
				r.env.OnActivity(workflows.RefreshTokenActivity, mock.Anything, mock.Anything).Return(
					func(context.Context, workflows.AccountInput) (*workflows.AccountOutcome, error) {
						out, err := tt.refresh()
						if out != nil && out.Status == "failed" {
							// The activity records its own failed result.
							r.mu.Lock()
							r.failures = append(r.failures, workflows.FailureInput{AccountID: out.AccountID, Code: out.ErrorCode})
							r.mu.Unlock()
						}
						return out, err
					})
			}
			r.publishes(tt.publish)
			input := in
			if tt.horizon != 0 {
				input.RateLimitHorizon = tt.horizon
			}
			res := r.execute(t, input)

			if got := res.Accounts[0].Status; got != tt.wantAccount {
				t.Errorf("account a1 = %s, want %s", got, tt.wantAccount)
			}
			if got := r.calls[workflows.PublishToAccountActivity]; got != tt.wantCalls {
				t.Errorf("PublishToAccount ran %d times, want %d", got, tt.wantCalls)
			}
			if !equalDurations(r.timers, tt.wantTimers) {
				t.Errorf("timers = %v, want %v", r.timers, tt.wantTimers)
			}
			if tt.wantFailure != "" && (len(r.failures) == 0 || r.failures[0].Code != tt.wantFailure) {
				t.Errorf("recorded failures = %+v, want code %s", r.failures, tt.wantFailure)
			}
			if tt.wantFailure == "" && tt.refresh == nil && len(r.failures) != 0 {
				// Failures the activity records itself are outcomes, not
				// workflow decisions.
				t.Errorf("unexpected failures recorded: %+v", r.failures)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestScheduledPostWaitsOnADurableTimer(t *testing.T) {
	r := newRun(t)
	start := r.env.Now()
	r.env.OnActivity(workflows.StartPublishingActivity, mock.Anything, mock.Anything).Return(&workflows.StartResult{WaitUntil: start.Add(3 * time.Hour)}, nil).Once()
	// Edited meanwhile to an hour later: the run sleeps again.
	r.env.OnActivity(workflows.StartPublishingActivity, mock.Anything, mock.Anything).Return(&workflows.StartResult{WaitUntil: start.Add(4 * time.Hour)}, nil).Once()
	r.accounts(workflows.AccountRef{ID: "a1"})
	r.publishes(map[string][]func() (*workflows.AccountOutcome, error){"a1": {published("a1")}})
	res := r.execute(t, in)
	if res.Status != "published" || !equalDurations(r.timers, []time.Duration{3 * time.Hour, time.Hour}) {
		t.Errorf("status %s, timers %v", res.Status, r.timers)
	}
	if got := r.starts[workflows.PublishToAccountActivity][0].Sub(start); got != 4*time.Hour {
		t.Errorf("published %v after the start, want 4h", got)
	}
}

// PATCH /posts moves the time of a waiting run: the reschedule signal
// makes it read the post again and set its timer to the new time, earlier
// or later.
func TestRescheduleSignalMovesTheTimer(t *testing.T) {
	r := newRun(t)
	start := r.env.Now()
	for _, at := range []time.Duration{3 * time.Hour, 2 * time.Hour, 5 * time.Hour} {
		r.env.OnActivity(workflows.StartPublishingActivity, mock.Anything, mock.Anything).Return(&workflows.StartResult{WaitUntil: start.Add(at)}, nil).Once()
	}
	r.accounts(workflows.AccountRef{ID: "a1", Platform: "linkedin"})
	r.publishes(map[string][]func() (*workflows.AccountOutcome, error){"a1": {published("a1")}})
	// Moved earlier at +1h (to +2h), then later at +90m (to +5h).
	r.env.RegisterDelayedCallback(func() { r.env.SignalWorkflow(workflows.RescheduleSignal, nil) }, time.Hour)
	r.env.RegisterDelayedCallback(func() { r.env.SignalWorkflow(workflows.RescheduleSignal, nil) }, 90*time.Minute)
	var phase workflows.RunState
	r.env.RegisterDelayedCallback(func() {
		v, err := r.env.QueryWorkflow(workflows.StateQuery)
		if err != nil {
			t.Error(err)
			return
		}
		_ = v.Get(&phase)
	}, 4*time.Hour)
	res := r.execute(t, in)
	if res.Status != "published" {
		t.Fatalf("status %s", res.Status)
	}
	if got := r.starts[workflows.PublishToAccountActivity][0].Sub(start); got != 5*time.Hour {
		t.Errorf("published %v after the start, want 5h", got)
	}
	if got := r.calls[workflows.StartPublishingActivity]; got != 4 {
		t.Errorf("StartPublishing ran %d times, want 4 (first read, two re-reads, the read at 5h)", got)
	}
	if phase.Phase != "scheduled" || !phase.ScheduledAt.Equal(start.Add(5*time.Hour)) {
		t.Errorf("state at +4h = %+v, want scheduled for +5h", phase)
	}
}

// The state query answers what each branch is doing, here a branch waiting
// out a 429.
func TestStateQueryShowsEachAccount(t *testing.T) {
	r := newRun(t)
	start := r.env.Now()
	r.accounts(workflows.AccountRef{ID: "a1", Platform: "linkedin"}, workflows.AccountRef{ID: "a2", Platform: "sandbox"})
	r.publishes(map[string][]func() (*workflows.AccountOutcome, error){
		"a1": {rateLimited(time.Hour), published("a1")},
		"a2": {published("a2")},
	})
	var mid workflows.RunState
	r.env.RegisterDelayedCallback(func() {
		v, err := r.env.QueryWorkflow(workflows.StateQuery)
		if err == nil {
			err = v.Get(&mid)
		}
		if err != nil {
			t.Error(err)
		}
	}, 30*time.Minute)
	r.execute(t, in)
	want := []workflows.AccountState{
		{AccountID: "a1", Platform: "linkedin", Status: "rate_limited", WaitingUntil: start.Add(time.Hour)},
		{AccountID: "a2", Platform: "sandbox", Status: "published", PlatformPostID: "urn:li:share:1"},
	}
	if mid.Phase != "publishing" || len(mid.Accounts) != 2 || !mid.Accounts[0].WaitingUntil.Equal(want[0].WaitingUntil) {
		t.Fatalf("state at +30m = %+v", mid)
	}
	mid.Accounts[0].WaitingUntil = want[0].WaitingUntil // compared above; monotonic clock aside
	if !slices.Equal(mid.Accounts, want) {
		t.Errorf("accounts at +30m = %+v, want %+v", mid.Accounts, want)
	}
}

// Deleting a scheduled post cancels its run: it never publishes, and its
// PostflowStatus says cancelled.
func TestCancelledWhileScheduled(t *testing.T) {
	r := newRun(t)
	r.env.OnActivity(workflows.StartPublishingActivity, mock.Anything, mock.Anything).Return(&workflows.StartResult{WaitUntil: r.env.Now().Add(time.Hour)}, nil)
	r.env.RegisterDelayedCallback(r.env.CancelWorkflow, 10*time.Minute)
	r.env.ExecuteWorkflow(workflows.PublishPost, in)
	if err := r.env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Errorf("workflow error = %v, want cancelled", err)
	}
	if r.calls[workflows.PublishToAccountActivity] != 0 || !slices.Equal(r.upserts, []string{"cancelled []"}) {
		t.Errorf("calls %v, upserts %q", r.calls, r.upserts)
	}
}

func TestSkipsAPostNotToPublish(t *testing.T) {
	r := newRun(t)
	r.env.OnActivity(workflows.StartPublishingActivity, mock.Anything, mock.Anything).Return(&workflows.StartResult{Skip: true, Status: "cancelled"}, nil)
	res := r.execute(t, in)
	if res.Status != "cancelled" || r.calls[workflows.PublishToAccountActivity] != 0 || r.calls[workflows.FinishPostActivity] != 0 {
		t.Errorf("status %s, calls %v", res.Status, r.calls)
	}
}

func TestStartFailureFailsTheRun(t *testing.T) {
	r := newRun(t)
	r.env.OnActivity(workflows.StartPublishingActivity, mock.Anything, mock.Anything).Return(nil, errors.New("mongo down"))
	r.env.ExecuteWorkflow(workflows.PublishPost, in)
	// StartPublishing is a local activity: a real worker retries it in
	// process (2 s, 4 s, 8 s: 4 attempts); the test environment retries
	// local activities through timers and ends one attempt sooner.
	if r.env.GetWorkflowError() == nil || r.calls[workflows.StartPublishingActivity] < 3 {
		t.Errorf("err %v after %d attempts, want an error after retries", r.env.GetWorkflowError(), r.calls[workflows.StartPublishingActivity])
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// When retries run out on an account an attempt left in doubt,
// RecordPublishFailure stores unknown: the run's outcome and its state
// query say unknown too, not failed.
func TestRecordedOutcomeIsTheAccountsOutcome(t *testing.T) {
	r := newRun(t)
	r.accounts(workflows.AccountRef{ID: "a1", Platform: "linkedin"})
	r.publishes(map[string][]func() (*workflows.AccountOutcome, error){"a1": {unavailable("HTTP_504")}})
	r.recordAs = &workflows.AccountOutcome{AccountID: "a1", Status: "unknown", ErrorCode: "OUTCOME_UNKNOWN"}
	res := r.execute(t, in)
	if got := res.Accounts[0]; got.Status != "unknown" || got.ErrorCode != "OUTCOME_UNKNOWN" {
		t.Errorf("the run's outcome for a1 = %+v, want unknown OUTCOME_UNKNOWN", got)
	}
	v, err := r.env.QueryWorkflow(workflows.StateQuery)
	if err != nil {
		t.Fatal(err)
	}
	var state workflows.RunState
	if err := v.Get(&state); err != nil || state.Accounts[0].Status != "unknown" {
		t.Errorf("state = %+v, %v; want a1 unknown", state, err)
	}
}
