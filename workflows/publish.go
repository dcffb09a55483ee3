package workflows

import (
	"errors"
	"fmt"
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
	}
	AccountOutcome struct {
		AccountID      string
		Status         string // published | failed
		PlatformPostID string
		ErrorCode      string
	}
	FailureInput struct {
		PostID    string
		AccountID string
		Code      string
		Message   string
	}
	FinishInput  struct{ PostID string }
	FinishResult struct{ Status string }
)

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
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         PublishRetryPolicy,
	})

	var start StartResult
	for {
		if err := workflow.ExecuteActivity(ctx, StartPublishingActivity, StartInput{PostID: in.PostID}).Get(ctx, &start); err != nil {
			return nil, err
		}
		if start.Skip {
			return &PublishPostResult{Status: start.Status}, nil
		}
		wait := start.WaitUntil.Sub(workflow.Now(ctx))
		if wait <= 0 {
			break
		}
		// A durable timer: it fires after restarts of anything. The post
		// is read again afterwards, so it publishes its latest content,
		// and a later scheduledAt sleeps again.
		if err := workflow.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}

	outcomes := make([]AccountOutcome, len(start.Accounts))
	wg := workflow.NewWaitGroup(ctx)
	for i, acct := range start.Accounts {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			outcomes[i] = publishToAccount(ctx, in, acct)
		})
	}
	wg.Wait(ctx)

	var finish FinishResult
	if err := workflow.ExecuteActivity(ctx, FinishPostActivity, FinishInput{PostID: in.PostID}).Get(ctx, &finish); err != nil {
		return nil, err
	}
	return &PublishPostResult{Status: finish.Status, Accounts: outcomes}, nil
}

// publishToAccount is one branch of the fan-out. Its failures end in a
// failed PublishResult; they never stop the other branches.
func publishToAccount(ctx workflow.Context, in PublishPostInput, acct AccountRef) AccountOutcome {
	ai := AccountInput{PostID: in.PostID, AccountID: acct.ID}
	var out AccountOutcome
	if acct.NeedsRefresh {
		// Refreshed only when needed: a fresh token costs no activity.
		if err := workflow.ExecuteActivity(ctx, RefreshTokenActivity, ai).Get(ctx, &out); err != nil {
			return recordFailure(ctx, ai, err)
		}
		if out.Status == "failed" {
			return out
		}
	}
	deadline := workflow.Now(ctx).Add(in.RateLimitHorizon)
	for {
		err := workflow.ExecuteActivity(ctx, PublishToAccountActivity, ai).Get(ctx, &out)
		if err == nil {
			return out
		}
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != ErrRateLimited {
			return recordFailure(ctx, ai, err)
		}
		var retryAfter time.Duration
		if appErr.HasDetails() {
			_ = appErr.Details(&retryAfter)
		}
		if retryAfter <= 0 {
			retryAfter = time.Minute
		}
		if workflow.Now(ctx).Add(retryAfter).After(deadline) {
			return recordFailure(ctx, ai, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("still rate limited after %s; the next try would be in %s", in.RateLimitHorizon, retryAfter),
				"RATE_LIMIT_HORIZON", nil))
		}
		// BullMQ's moveToDelayed: a durable timer, then a fresh call with
		// its own attempts. The wait is not a failed attempt.
		if err := workflow.Sleep(ctx, retryAfter); err != nil {
			return recordFailure(ctx, ai, err)
		}
	}
}

// recordFailure stores a failed PublishResult for an error the activity
// could not record itself (retries used up, the run cancelled).
func recordFailure(ctx workflow.Context, ai AccountInput, cause error) AccountOutcome {
	code, msg := "PUBLISH_FAILED", cause.Error()
	var appErr *temporal.ApplicationError
	if errors.As(cause, &appErr) {
		msg = appErr.Message()
		code = appErr.Type()
		var platformCode string
		if appErr.Type() == ErrPlatformUnavailable && appErr.HasDetails() && appErr.Details(&platformCode) == nil && platformCode != "" {
			code = platformCode
		}
	}
	var canceled *temporal.CanceledError
	if errors.As(cause, &canceled) {
		code, msg = "CANCELLED", "the publish run was cancelled"
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	fi := FailureInput{PostID: ai.PostID, AccountID: ai.AccountID, Code: code, Message: msg}
	// If even this fails, FinishPost sees no published result for the
	// account and fails the post.
	_ = workflow.ExecuteActivity(ctx, RecordFailureActivity, fi).Get(ctx, nil)
	return AccountOutcome{AccountID: ai.AccountID, Status: "failed", ErrorCode: code}
}
