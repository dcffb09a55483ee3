package activities

import (
	"context"
	"errors"

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
// result an earlier attempt left (nil: none, or not read), for fail.
func (a *Activities) classify(ctx context.Context, in workflows.AccountInput, prev *posts.Result, err error) (*workflows.AccountOutcome, error) {
	// Retrying cannot help these two, whatever wraps them: no account to
	// publish as, or a server PostFlow may not call (a policy, or DNS that
	// now points inward). Neither call reached the network.
	switch {
	case errors.Is(err, connections.ErrNotFound):
		activity.GetLogger(ctx).Warn("Account disconnected before its post was published", "PostID", in.PostID, "AccountID", in.AccountID)
		return a.fail(ctx, in, prev, "", CategoryAuthExpired, "ACCOUNT_DISCONNECTED", "the account was disconnected; connect it again, then publish again")
	case errors.Is(err, providers.ErrBadServer):
		activity.GetLogger(ctx).Error("The account's server is not one PostFlow may call", "PostID", in.PostID, "AccountID", in.AccountID, "Error", err)
		return a.fail(ctx, in, prev, "", CategoryInternal, "FORBIDDEN_ADDRESS", "the account's server is not at a public address PostFlow may call; connect the account again on a public server")
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		return nil, err // Store or network trouble of ours: retry.
	}
	// Rate limits and outages are answers a healthy system gets: logged
	// here at INFO and WARN with the platform's code, and benign to the
	// SDK, which would otherwise log each as an ERROR "Activity error.".
	// ERROR is for what needs a person: an expired account, an unknown
	// outcome, retries used up (RecordPublishFailure), a bug.
	logger := activity.GetLogger(ctx)
	switch pe.Kind {
	case providers.KindRateLimited:
		a.Metrics.RateLimited(pe.Provider, pe.RetryAfter)
		logger.Info("Platform rate limit: the workflow waits, then calls again", "PostID", in.PostID, "AccountID", in.AccountID,
			"Platform", pe.Provider, "Code", pe.Code, "RetryAfter", pe.RetryAfter)
		return nil, temporal.NewApplicationErrorWithOptions(pe.Error(), workflows.ErrRateLimited, temporal.ApplicationErrorOptions{
			NonRetryable: true, Details: []any{pe.RetryAfter}, Category: temporal.ApplicationErrorCategoryBenign})
	case providers.KindRetryable, providers.KindSessionExpired:
		logger.Warn("Platform unavailable: Temporal's retry policy decides whether to call again", "PostID", in.PostID, "AccountID", in.AccountID,
			"Platform", pe.Provider, "Code", pe.Code, "Status", pe.Status)
		return nil, temporal.NewApplicationErrorWithOptions(pe.Error(), workflows.ErrPlatformUnavailable, temporal.ApplicationErrorOptions{
			Details: []any{pe.Code}, Category: temporal.ApplicationErrorCategoryBenign})
	case providers.KindAuth:
		// The account is marked expired: someone must reconnect it.
		logger.Error("Platform refused the account's token: account expired, reconnect it", "PostID", in.PostID, "AccountID", in.AccountID,
			"Platform", pe.Provider, "Code", pe.Code)
	default:
		// Invalid content, or a duplicate: the author's to change.
		logger.Warn("Platform refused the post", "PostID", in.PostID, "AccountID", in.AccountID, "Platform", pe.Provider, "Code", pe.Code)
	}
	// Retrying cannot help.
	category := CategoryContentRejected
	if pe.Kind == providers.KindAuth {
		category = CategoryAuthExpired
	}
	return a.fail(ctx, in, prev, pe.Provider, category, pe.Code, pe.Message)
}

// saveFailed records the account's result as failed with the code.
func (a *Activities) saveFailed(ctx context.Context, in workflows.AccountInput, category, code, msg string) (*workflows.AccountOutcome, error) {
	if err := a.Posts.SaveResult(ctx, &posts.Result{PostID: in.PostID, SocialAccountID: in.AccountID, Status: posts.ResultFailed,
		ErrorCode: code, ErrorMessage: msg}); err != nil {
		return nil, err
	}
	a.countResult(ctx, in.AccountID, posts.ResultFailed, category)
	return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: code}, nil
}
