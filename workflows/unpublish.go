package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// UnpublishPostInput starts an unpublish run: ids only, as for publishing.
type UnpublishPostInput struct {
	PostID string
	// AccountIDs are the accounts whose published post the run deletes.
	AccountIDs []string
	// RateLimitHorizon bounds how long one account may wait on 429s
	// before its unpublish fails (DefaultRateLimitHorizon when zero).
	RateLimitHorizon time.Duration `json:",omitempty"`
}

// UnpublishPostResult is what an unpublish run ends with.
type UnpublishPostResult struct {
	Accounts []UnpublishOutcome
}

// Activity inputs and results of UnpublishPost. Names of fields are part
// of recorded histories: add fields, do not rename them.
type (
	UnpublishAccountInput struct {
		PostID    string
		AccountID string
	}
	UnpublishOutcome struct {
		AccountID string
		Status    string // unpublished | failed
		ErrorCode string `json:",omitempty"`
	}
	UnpublishFailureInput struct {
		PostID    string
		AccountID string
		Code      string
		Message   string
	}
	FinishUnpublishInput struct {
		PostID   string
		Outcomes []UnpublishOutcome
	}
)

// Activity names of UnpublishPost, as operators read them in the Web UI.
const (
	UnpublishFromAccountActivity   = "UnpublishFromAccount"
	RecordUnpublishFailureActivity = "RecordUnpublishFailure"
	FinishUnpublishActivity        = "FinishUnpublish"
)

// UnpublishPost deletes a post from the networks of the accounts named,
// once each and durably: each account in parallel, with the publish
// run's semantics (5xx and no answer: Temporal's backoff; 429: a durable
// timer, then a fresh call; refusals: failed, not retried); then the run's
// end is announced (post.unpublished). A network answers a delete of a
// post it no longer holds as done, so a call repeated after a lost answer
// or a dead worker is harmless.
func UnpublishPost(ctx workflow.Context, in UnpublishPostInput) (*UnpublishPostResult, error) {
	if in.RateLimitHorizon <= 0 {
		in.RateLimitHorizon = DefaultRateLimitHorizon
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         PublishRetryPolicy,
	})
	outcomes := make([]UnpublishOutcome, len(in.AccountIDs))
	wg := workflow.NewWaitGroup(ctx)
	for i, id := range in.AccountIDs {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			outcomes[i] = unpublishFromAccount(ctx, in, id)
		})
	}
	wg.Wait(ctx)
	// The end is announced even when the run was cancelled: every
	// account's outcome is recorded by then.
	if ctx.Err() != nil {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	if err := workflow.ExecuteActivity(ctx, FinishUnpublishActivity, FinishUnpublishInput{PostID: in.PostID, Outcomes: outcomes}).Get(ctx, nil); err != nil {
		return nil, err
	}
	// For operators' filters, as a publish run's final status: a failed
	// upsert (a bad attribute) fails the workflow task, which retries.
	_ = workflow.UpsertTypedSearchAttributes(ctx, StatusAttr.ValueSet(UnpublishStatus(outcomes)))
	return &UnpublishPostResult{Accounts: outcomes}, nil
}

// UnpublishStatus is an unpublish run's PostflowStatus: "unpublished"
// when every account is, "unpublish_failed" when any is not.
func UnpublishStatus(outcomes []UnpublishOutcome) string {
	for _, o := range outcomes {
		if o.Status != "unpublished" {
			return "unpublish_failed"
		}
	}
	return "unpublished"
}

// unpublishFromAccount is one branch: its failures end in a failed
// unpublish of the account, never in the others'.
func unpublishFromAccount(ctx workflow.Context, in UnpublishPostInput, accountID string) UnpublishOutcome {
	ai := UnpublishAccountInput{PostID: in.PostID, AccountID: accountID}
	deadline := workflow.Now(ctx).Add(in.RateLimitHorizon)
	for {
		var out UnpublishOutcome
		// It heartbeats while the network's call is in flight, so a worker
		// that dies mid-call is noticed within PublishHeartbeatTimeout.
		err := workflow.ExecuteActivity(workflow.WithHeartbeatTimeout(ctx, PublishHeartbeatTimeout), UnpublishFromAccountActivity, ai).Get(ctx, &out)
		if err == nil {
			return out
		}
		retryAfter, err := rateLimitWait(ctx, err, deadline, in.RateLimitHorizon)
		if err != nil {
			return recordUnpublishFailure(ctx, ai, err)
		}
		if err := workflow.Sleep(ctx, retryAfter); err != nil {
			return recordUnpublishFailure(ctx, ai, err)
		}
	}
}

// recordUnpublishFailure stores the failure of an account's unpublish
// that its activity could not record itself (retries used up, the run
// cancelled, rate limited past the horizon).
func recordUnpublishFailure(ctx workflow.Context, ai UnpublishAccountInput, cause error) UnpublishOutcome {
	code, msg := failureCode(cause, "UNPUBLISH_FAILED")
	var canceled *temporal.CanceledError
	if errors.As(cause, &canceled) {
		msg = "the unpublish run was cancelled"
	}
	if ctx.Err() != nil {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	fi := UnpublishFailureInput{PostID: ai.PostID, AccountID: ai.AccountID, Code: code, Message: msg}
	out := UnpublishOutcome{AccountID: ai.AccountID, Status: "failed", ErrorCode: code}
	var recorded UnpublishOutcome
	if err := workflow.ExecuteActivity(ctx, RecordUnpublishFailureActivity, fi).Get(ctx, &recorded); err == nil && recorded.Status != "" {
		return recorded
	}
	return out
}

// failureCode is the code and message an error the workflow decided on
// is recorded with: an ApplicationError's type (a platform's code for an
// outage whose retries ran out), CodeCancelled for a cancelled run,
// fallback for any other.
func failureCode(cause error, fallback string) (code, msg string) {
	code, msg = fallback, cause.Error()
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
		code, msg = CodeCancelled, "the run was cancelled"
	}
	return code, msg
}
