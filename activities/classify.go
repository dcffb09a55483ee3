package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/workflows"
)

// classify turns a provider error into what the workflow decides on:
// terminal failures are recorded and returned as outcomes; rate limits and
// outages are returned as errors of the workflow's types. prev is the
// result an earlier attempt left (nil: none, or not read), for fail;
// upload says err answered an image upload (posts.Cause).
func (a *Activities) classify(ctx context.Context, in workflows.AccountInput, prev *posts.Result, err error, upload bool) (*workflows.AccountOutcome, error) {
	// Retrying cannot help these two, whatever wraps them: no account to
	// publish as, or a server PostFlow may not call (a policy, or DNS that
	// now points inward). Neither call reached the network.
	switch {
	case errors.Is(err, connections.ErrNotFound):
		activity.GetLogger(ctx).Warn("Account disconnected before its post was published", "PostID", in.PostID, "AccountID", in.AccountID)
		return a.fail(ctx, in, prev, "", posts.Cause{Code: posts.CodeAccountDisconnected}, "the account was disconnected; connecting it again makes another account: name that one in the post (PATCH /posts/{id}), then publish again")
	case errors.Is(err, providers.ErrBadServer):
		activity.GetLogger(ctx).Error("The account's server is not one PostFlow may call", "PostID", in.PostID, "AccountID", in.AccountID, "Error", err)
		return a.fail(ctx, in, prev, "", posts.Cause{Code: posts.CodeForbiddenAddress}, "the account's server is not at a public address PostFlow may call; connect the account again on a public server")
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		return nil, err // Store or network trouble of ours: retry.
	}
	if rerr := a.retryable(ctx, pe, in.PostID, in.AccountID); rerr != nil {
		return nil, rerr
	}
	logger := activity.GetLogger(ctx)
	switch pe.Kind {
	case providers.KindAuth:
		// The account is marked expired: someone must reconnect it.
		logger.Error("Platform refused the account's token: account expired, reconnect it", "PostID", in.PostID, "AccountID", in.AccountID,
			"Platform", pe.Provider, "Code", pe.Code)
	default:
		// Invalid content, or a duplicate: the author's to change.
		logger.Warn("Platform refused the post", "PostID", in.PostID, "AccountID", in.AccountID, "Platform", pe.Provider, "Code", pe.Code)
	}
	// Retrying cannot help.
	return a.fail(ctx, in, prev, pe.Provider, posts.Cause{Kind: pe.Kind, Code: pe.Code, Upload: upload}, pe.Message)
}

// retryable is the workflow's error for an answer to be tried again: a
// rate limit (ErrRateLimited: the workflow waits on a timer) or an outage
// or a session that ended early (ErrPlatformUnavailable: Temporal's retry
// policy); nil for an answer that is final. Rate limits and outages are
// answers a healthy system gets: logged at INFO and WARN with the
// platform's code, and benign to the SDK, which would otherwise log each
// as an ERROR "Activity error.". ERROR is for what needs a person: an
// expired account, an unknown outcome, retries used up, a bug.
func (a *Activities) retryable(ctx context.Context, pe *providers.Error, postID, accountID string) error {
	logger := activity.GetLogger(ctx)
	switch pe.Kind {
	case providers.KindRateLimited:
		a.Metrics.RateLimited(pe.Provider, pe.RetryAfter)
		logger.Info("Platform rate limit: the workflow waits, then calls again", "PostID", postID, "AccountID", accountID,
			"Platform", pe.Provider, "Code", pe.Code, "RetryAfter", pe.RetryAfter)
		return temporal.NewApplicationErrorWithOptions(pe.Error(), workflows.ErrRateLimited, temporal.ApplicationErrorOptions{
			NonRetryable: true, Details: []any{pe.RetryAfter}, Category: temporal.ApplicationErrorCategoryBenign})
	case providers.KindRetryable, providers.KindSessionExpired:
		logger.Warn("Platform unavailable: Temporal's retry policy decides whether to call again", "PostID", postID, "AccountID", accountID,
			"Platform", pe.Provider, "Code", pe.Code, "Status", pe.Status)
		return temporal.NewApplicationErrorWithOptions(pe.Error(), workflows.ErrPlatformUnavailable, temporal.ApplicationErrorOptions{
			Details: []any{pe.Code}, Category: temporal.ApplicationErrorCategoryBenign})
	}
	return nil
}

// saveFailed records the account's result as failed with the cause's
// code and category.
func (a *Activities) saveFailed(ctx context.Context, in workflows.AccountInput, cause posts.Cause, msg string) (*workflows.AccountOutcome, error) {
	category := posts.Categorize(cause)
	if err := a.Posts.SaveResult(ctx, &posts.Result{PostID: in.PostID, SocialAccountID: in.AccountID, Status: posts.ResultFailed,
		ErrorCode: cause.Code, ErrorMessage: msg, ErrorCategory: category}); err != nil {
		return nil, err
	}
	a.countResult(ctx, in.AccountID, posts.ResultFailed, category)
	return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: cause.Code}, nil
}

// logAttempt adds att to the account's attempts (GET
// /posts/{id}?include=attempts). A record for people, not a rule: a store
// that fails here is logged and the publish goes on, since failing it
// would retry a call the network may have acted on.
func (a *Activities) logAttempt(ctx context.Context, in workflows.AccountInput, att posts.Attempt) {
	if err := a.Posts.AppendAttempt(ctx, in.PostID, in.AccountID, att); err != nil {
		activity.GetLogger(ctx).Warn("Could not record the attempt", "PostID", in.PostID, "AccountID", in.AccountID, "Error", err)
	}
}

// logFailure records the call of step begun at `at` when err is a
// network's answer (a *providers.Error); other errors (ours, nil) are not
// the network's and are not listed.
func (a *Activities) logFailure(ctx context.Context, in workflows.AccountInput, at time.Time, step posts.AttemptStep, err error) {
	var pe *providers.Error
	if errors.As(err, &pe) {
		a.logAttempt(ctx, in, posts.FailedAttempt(at, a.now(), step, pe))
	}
}
