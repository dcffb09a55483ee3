package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// PublishPostInput starts a publish run. It carries ids and settings, never
// content or tokens: activities read those themselves.
type PublishPostInput struct {
	PostID string
	// RateLimitHorizon bounds how long one account may wait on 429s before
	// its publish fails.
	RateLimitHorizon time.Duration
}

// PublishPostResult is what a run ends with.
type PublishPostResult struct {
	Status   string
	Accounts []AccountOutcome
}

// Activity inputs and results. Names of fields are part of recorded
// histories: add fields, do not rename them.
type (
	StartInput  struct{ PostID string }
	StartResult struct {
		// Skip: the post is not to be published (deleted, cancelled,
		// already done); Status says why.
		Skip   bool
		Status string
		// WaitUntil: the post is scheduled later; sleep, then start again.
		WaitUntil time.Time
		Accounts  []AccountRef
	}
	AccountRef struct {
		ID       string
		Platform string
		// NeedsRefresh: the access token expires within 5 minutes.
		NeedsRefresh bool
	}
	AccountInput struct {
		PostID    string
		AccountID string
		// FinishPost: if this account's result is the last of the post's
		// to say published, set the post published too.
		FinishPost bool `json:",omitempty"`
	}
	AccountOutcome struct {
		AccountID      string
		Status         string // published | failed | unknown
		PlatformPostID string
		ErrorCode      string
		// PublishedAt: when the platform took the post (published only).
		PublishedAt *time.Time `json:",omitempty"`
		// FinishedPost: this branch set the post published (FinishPost
		// of AccountInput).
		FinishedPost bool `json:",omitempty"`
	}
	FailureInput struct {
		PostID    string
		AccountID string
		Code      string
		Message   string
	}
	FinishInput struct {
		PostID string
		// Outcomes: each account's, in the post's order, so that
		// FinishPost reads only the results that failed (for their
		// messages). Without them FinishPost reads the post and every
		// result.
		Outcomes []AccountOutcome
	}
	FinishResult struct{ Status string }
)

// Signal and query names, for the API and for operators (the Web UI's
// Queries tab, `temporal workflow query --type state`).
const (
	// RescheduleSignal tells a waiting run that the post's scheduledAt
	// changed: it reads the post again and sets its timer to the new time.
	// A signal rather than an update: the post in MongoDB is the truth and
	// the signal only says "read it again", so PATCH /posts needs no
	// answer from a worker and succeeds while workers are down.
	RescheduleSignal = "reschedule"
	// StateQuery answers the run's live state (RunState).
	StateQuery = "state"
)

// PublishPost has no workflow.GetVersion branch yet: v0.1.0, the first
// release, is the baseline. A change to its commands after it goes
// through GetVersion, and the histories of the release before are kept in
// a folder of their own and replayed (replay_test.go).

// RunState is a run's live state, as StateQuery answers it.
type RunState struct {
	// Phase: starting, scheduled, publishing, or the post's final status.
	Phase       string
	ScheduledAt time.Time `json:",omitempty"`
	Accounts    []AccountState
}

// AccountState is one branch of the fan-out.
type AccountState struct {
	AccountID string
	Platform  string
	// Status: pending, refreshing, publishing, rate_limited (until
	// WaitingUntil), published, failed or unknown.
	Status         string
	WaitingUntil   time.Time `json:",omitempty"`
	PlatformPostID string    `json:",omitempty"`
	ErrorCode      string    `json:",omitempty"`
}

// Activity names, as operators read them in the Web UI.
const (
	StartPublishingActivity  = "StartPublishing"
	RefreshTokenActivity     = "RefreshAccessToken"
	PublishToAccountActivity = "PublishToAccount"
	RecordFailureActivity    = "RecordPublishFailure"
	FinishPostActivity       = "FinishPost"
)

// Error types activities fail with, for the workflow to decide on.
const (
	// ErrRateLimited: wait Details[0] (a time.Duration), then call again.
	// Non-retryable for Temporal: the wait is a workflow timer, so it does
	// not use up the attempts meant for outages.
	ErrRateLimited = "RateLimited"
	// ErrPlatformUnavailable: a 5xx or network failure; Temporal retries.
	// Details[0] is the platform's code.
	ErrPlatformUnavailable = "PlatformUnavailable"
)

// CodeCancelled is the errorCode of an account whose run was cancelled
// before it published.
const CodeCancelled = "CANCELLED"

// PublishRetryPolicy is BullMQ's attempts: 4 with backoff 2 s, doubling
// (2 s, 4 s, 8 s). MaximumInterval is explicit: left out, the server caps at
// 100 × the initial interval but the test environment at 1 ×.
var PublishRetryPolicy = &temporal.RetryPolicy{
	InitialInterval:        2 * time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	MaximumAttempts:        4,
	NonRetryableErrorTypes: []string{ErrRateLimited},
}

// PublishHeartbeatTimeout: PublishToAccount heartbeats while the platform
// call is in flight, so a worker that dies mid-call is noticed within it
// (not at the minute of StartToCloseTimeout) and the retry reconciles. A
// call that answers quickly, as nearly all do, never heartbeats.
const PublishHeartbeatTimeout = 15 * time.Second

// PublishTimeout bounds one PublishToAccount attempt: the post's images
// go up inside it (up to 20 for LinkedIn, each waited on while the network
// processes it), so it is longer than the bookkeeping's minute. A worker
// that dies is still noticed within PublishHeartbeatTimeout.
const PublishTimeout = 10 * time.Minute

// DefaultRateLimitHorizon: LinkedIn's daily limits reset at midnight UTC,
// so a wait can approach a day; two leave room for one more refusal.
const DefaultRateLimitHorizon = 48 * time.Hour

// PublishPost publishes a post to every account it targets, once each:
// load the post and mark it publishing; for each account in parallel make
// sure the token is valid, publish, and record the result; then mark the
// post published or failed.
func PublishPost(ctx workflow.Context, in PublishPostInput) (*PublishPostResult, error) {
	if in.RateLimitHorizon <= 0 {
		in.RateLimitHorizon = DefaultRateLimitHorizon
	}
	r := &run{in: in, state: RunState{Phase: "starting"}}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (RunState, error) { return r.state, nil }); err != nil {
		return nil, err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         PublishRetryPolicy,
	})

	start, err := r.waitForItsTime(ctx)
	if err != nil {
		if temporal.IsCanceledError(err) {
			r.finalStatus(ctx, "cancelled")
		}
		return nil, err
	}
	if start.Skip {
		r.finalStatus(ctx, start.Status)
		return &PublishPostResult{Status: start.Status}, nil
	}

	r.state.Phase = "publishing"
	for _, acct := range start.Accounts {
		r.state.Accounts = append(r.state.Accounts, AccountState{AccountID: acct.ID, Platform: acct.Platform, Status: "pending"})
	}
	outcomes := make([]AccountOutcome, len(start.Accounts))
	wg := workflow.NewWaitGroup(ctx)
	for i, acct := range start.Accounts {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			outcomes[i] = r.publishToAccount(ctx, &r.state.Accounts[i], acct)
			r.state.Accounts[i].Status = outcomes[i].Status
			r.state.Accounts[i].PlatformPostID = outcomes[i].PlatformPostID
			r.state.Accounts[i].ErrorCode = outcomes[i].ErrorCode
		})
	}
	wg.Wait(ctx)

	finish := FinishResult{Status: "published"}
	if !finishedByABranch(outcomes) {
		if err := r.bookkeeping(ctx, FinishPostActivity, FinishInput{PostID: in.PostID, Outcomes: outcomes}).Get(ctx, &finish); err != nil {
			return nil, err
		}
	}
	r.finalStatus(ctx, finish.Status, platforms(start.Accounts)...)
	return &PublishPostResult{Status: finish.Status, Accounts: outcomes}, nil
}

// finishedByABranch: every account published and a branch set the post
// published. Otherwise FinishPost decides: an account failed, or no branch
// could tell it was the last (a retry that finds its result already
// published does not look).
func finishedByABranch(outcomes []AccountOutcome) bool {
	finished := false
	for _, o := range outcomes {
		if o.Status != "published" {
			return false
		}
		finished = finished || o.FinishedPost
	}
	return finished
}

// run is the state of one PublishPost execution.
type run struct {
	in    PublishPostInput
	state RunState
}

// waitForItsTime reads the post until its time has come: a scheduled post
// sleeps on a durable timer, which fires after restarts of anything, and
// is read again when it wakes, so it publishes its latest content.
func (r *run) waitForItsTime(ctx workflow.Context) (*StartResult, error) {
	reschedule := workflow.GetSignalChannel(ctx, RescheduleSignal)
	for {
		var start StartResult
		if err := r.bookkeeping(ctx, StartPublishingActivity, StartInput{PostID: r.in.PostID}).Get(ctx, &start); err != nil {
			return nil, err
		}
		wait := start.WaitUntil.Sub(workflow.Now(ctx))
		if start.Skip || wait <= 0 {
			return &start, nil
		}
		r.state.Phase, r.state.ScheduledAt = "scheduled", start.WaitUntil
		// Sleep until the time, or until PATCH moves it: then read again.
		// A timer only fails by being cancelled: by the run's cancellation,
		// checked below, or by stopTimer after a signal.
		timerCtx, stopTimer := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, wait), func(workflow.Future) {})
		sel.AddReceive(reschedule, func(c workflow.ReceiveChannel, _ bool) {
			for c.ReceiveAsync(nil) {
				// Several edits while asleep need one read.
			}
		})
		sel.Select(ctx)
		stopTimer()
		if ctx.Err() != nil {
			return nil, temporal.NewCanceledError()
		}
	}
}

// bookkeeping runs one of the activities that only read and write our own
// store, as a local activity: they are short, and a task through the
// server each would cost more than the work.
func (r *run) bookkeeping(ctx workflow.Context, name string, in any) workflow.Future {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         PublishRetryPolicy,
	})
	return workflow.ExecuteLocalActivity(ctx, name, in)
}

// finalStatus sets PostflowStatus (and the platforms the post went to), so
// that operators can filter runs by outcome.
func (r *run) finalStatus(ctx workflow.Context, status string, platformList ...string) {
	r.state.Phase = status
	updates := []temporal.SearchAttributeUpdate{StatusAttr.ValueSet(status)}
	if len(platformList) > 0 {
		updates = append(updates, PlatformAttr.ValueSet(platformList))
	}
	if ctx.Err() != nil {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	// A failed upsert is a bad search attribute: the SDK fails the
	// workflow task, which retries it; nothing to decide here.
	_ = workflow.UpsertTypedSearchAttributes(ctx, updates...)
}

// platforms lists the distinct platforms of refs, in order.
func platforms(refs []AccountRef) []string {
	var out []string
	for _, r := range refs {
		if r.Platform != "" && !slices.Contains(out, r.Platform) {
			out = append(out, r.Platform)
		}
	}
	return out
}

// publishToAccount is one branch of the fan-out. Its failures end in a
// failed PublishResult; they never stop the other branches.
func (r *run) publishToAccount(ctx workflow.Context, st *AccountState, acct AccountRef) AccountOutcome {
	in := r.in
	ai := AccountInput{PostID: in.PostID, AccountID: acct.ID}
	var out AccountOutcome
	if acct.NeedsRefresh {
		st.Status = "refreshing"
		// Refreshed only when needed: a fresh token costs no activity.
		if err := workflow.ExecuteActivity(ctx, RefreshTokenActivity, ai).Get(ctx, &out); err != nil {
			return r.recordFailure(ctx, ai, err)
		}
		if out.Status == "failed" {
			return out
		}
	}
	publish := ai
	publish.FinishPost = true
	deadline := workflow.Now(ctx).Add(in.RateLimitHorizon)
	for {
		st.Status, st.WaitingUntil = "publishing", time.Time{}
		actx := workflow.WithStartToCloseTimeout(workflow.WithHeartbeatTimeout(ctx, PublishHeartbeatTimeout), PublishTimeout)
		err := workflow.ExecuteActivity(actx, PublishToAccountActivity, publish).Get(ctx, &out)
		if err == nil {
			return out
		}
		retryAfter, err := rateLimitWait(ctx, err, deadline, in.RateLimitHorizon)
		if err != nil {
			return r.recordFailure(ctx, ai, err)
		}
		// BullMQ's moveToDelayed: a durable timer, then a fresh call with
		// its own attempts. The wait is not a failed attempt.
		st.Status, st.WaitingUntil = "rate_limited", workflow.Now(ctx).Add(retryAfter)
		if err := workflow.Sleep(ctx, retryAfter); err != nil {
			return r.recordFailure(ctx, ai, err)
		}
	}
}

// rateLimitWait reads an activity's failure: for a rate limit
// (ErrRateLimited), how long to wait before calling again (its
// Details[0]; a minute when the network did not say). Any other failure,
// or a wait that would end past deadline (RATE_LIMIT_HORIZON after
// horizon), is returned as the error to record instead.
func rateLimitWait(ctx workflow.Context, err error, deadline time.Time, horizon time.Duration) (time.Duration, error) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrRateLimited {
		return 0, err
	}
	var retryAfter time.Duration
	if appErr.HasDetails() {
		_ = appErr.Details(&retryAfter)
	}
	if retryAfter <= 0 {
		retryAfter = time.Minute
	}
	if workflow.Now(ctx).Add(retryAfter).After(deadline) {
		return 0, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("still rate limited after %s; the next try would be in %s", horizon, retryAfter), "RATE_LIMIT_HORIZON", nil)
	}
	return retryAfter, nil
}

// recordFailure stores a failed PublishResult for an error the activity
// could not record itself (retries used up, the run cancelled), and
// returns the outcome RecordPublishFailure stored: failed, or unknown when
// an attempt was left in doubt.
func (r *run) recordFailure(ctx workflow.Context, ai AccountInput, cause error) AccountOutcome {
	code, msg := failureCode(cause, "PUBLISH_FAILED")
	var canceled *temporal.CanceledError
	if errors.As(cause, &canceled) {
		msg = "the publish run was cancelled"
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	fi := FailureInput{PostID: ai.PostID, AccountID: ai.AccountID, Code: code, Message: msg}
	// If even this fails, FinishPost sees no published result for the
	// account and fails the post.
	failed := AccountOutcome{AccountID: ai.AccountID, Status: "failed", ErrorCode: code}
	var recorded AccountOutcome
	if err := workflow.ExecuteActivity(ctx, RecordFailureActivity, fi).Get(ctx, &recorded); err != nil || recorded.Status == "" {
		return failed
	}
	return recorded
}
