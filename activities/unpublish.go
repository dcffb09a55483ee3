package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/workflows"
)

// UnpublishFromAccount deletes the account's published post of the post
// from its network (Provider.Delete) and records how it ended in the
// result's unpublish. Idempotent: every network answers a delete of a post
// it no longer holds as done, so a retry after a lost answer or a dead
// worker ends the same, and no post is deleted that the result does not
// name.
func (a *Activities) UnpublishFromAccount(ctx context.Context, in workflows.UnpublishAccountInput) (*workflows.UnpublishOutcome, error) {
	r, err := a.Posts.Result(ctx, in.PostID, in.AccountID)
	if err != nil {
		return nil, err
	}
	if r == nil || r.Status != posts.ResultPublished || r.PlatformPostID == "" {
		// Published again meanwhile (its results forgotten), or never:
		// nothing of the run's is there to delete.
		return &workflows.UnpublishOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: posts.CodeNotPublished}, nil
	}
	if r.Unpublish != nil && r.Unpublish.Status == posts.Unpublished {
		// Named again after the network said the post is gone: a
		// deleted post does not come back, so the outcome stands, its
		// time too, and a failure now (a token expired since) cannot
		// turn it into "still there".
		return &workflows.UnpublishOutcome{AccountID: in.AccountID, Status: string(posts.Unpublished)}, nil
	}
	began := a.now().UTC()
	token, acc, err := a.Tokens.ValidAccessToken(ctx, in.AccountID)
	a.logDeleteFailure(ctx, in, began, posts.StepToken, err)
	err = tokenRefusal(err)
	var prov providers.Provider
	if err == nil {
		var ok bool
		if prov, ok = a.Providers.Get(acc.Platform); !ok {
			return a.unpublishFailed(ctx, in, posts.Cause{Code: posts.CodeNotConfigured, Delete: true}, acc.Platform+" is not configured on this worker")
		}
	}
	if err == nil {
		// Recorded before the network is called: attempts count delete
		// calls, not token failures.
		if err := a.Posts.RecordUnpublishAttempt(ctx, in.PostID, in.AccountID, a.now().UTC()); err != nil {
			return nil, err
		}
		stopHeartbeats := heartbeatWhileWaiting(ctx)
		call := func(account providers.Account) error {
			at := a.now().UTC()
			err := prov.Delete(ctx, account, r.PlatformPostID)
			if err == nil {
				a.logUnpublishAttempt(ctx, in, posts.Attempt{At: at, Step: posts.StepDelete, Outcome: posts.OutcomeDeleted, PlatformPostID: r.PlatformPostID})
			}
			a.logDeleteFailure(ctx, in, at, posts.StepDelete, err)
			return err
		}
		err = call(acc.Provider(token))
		if providers.KindOf(err) == providers.KindSessionExpired {
			// A token refused before its time: a new session, then the
			// same call once more.
			var t string
			if t, acc, err = a.Tokens.RenewAccessToken(ctx, in.AccountID, token); err == nil {
				err = call(acc.Provider(t))
			} else {
				err = tokenRefusal(err)
			}
		}
		stopHeartbeats()
	}
	if err != nil {
		return a.unpublishError(ctx, in, err)
	}
	at := a.now().UTC()
	if err := a.Posts.FinishUnpublish(ctx, in.PostID, in.AccountID, posts.Unpublish{Status: posts.Unpublished, UnpublishedAt: &at}); err != nil {
		// Deleted, not recorded: the retry deletes again, which the
		// network answers as done.
		return nil, err
	}
	a.Metrics.Unpublished(acc.Platform, string(posts.Unpublished))
	return &workflows.UnpublishOutcome{AccountID: in.AccountID, Status: string(posts.Unpublished)}, nil
}

// unpublishError decides on a failed delete as the publish path does
// (retryable), with the one difference that a refusal is the delete's
// (posts.CategoryDeleteRefused): the post is still there.
func (a *Activities) unpublishError(ctx context.Context, in workflows.UnpublishAccountInput, err error) (*workflows.UnpublishOutcome, error) {
	switch {
	case errors.Is(err, connections.ErrNotFound):
		return a.unpublishFailed(ctx, in, posts.Cause{Code: posts.CodeAccountDisconnected, Delete: true},
			"the account was disconnected, and connecting it again makes another account: PostFlow can no longer delete this post; delete it on the network by hand (platformPostUrl)")
	case errors.Is(err, providers.ErrBadServer):
		return a.unpublishFailed(ctx, in, posts.Cause{Code: posts.CodeForbiddenAddress, Delete: true},
			"the account's server is not at a public address PostFlow may call")
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		return nil, err // Store or network trouble of ours: retry.
	}
	if rerr := a.retryable(ctx, pe, in.PostID, in.AccountID); rerr != nil {
		// Kept for RecordUnpublishFailure, should the retries run out.
		u := posts.Unpublish{Status: posts.UnpublishRunning, ErrorCode: pe.Code, ErrorMessage: pe.Message,
			ErrorCategory: posts.Categorize(posts.Cause{Kind: pe.Kind, Code: pe.Code, Delete: true})}
		if serr := a.Posts.FinishUnpublish(ctx, in.PostID, in.AccountID, u); serr != nil {
			return nil, serr
		}
		return nil, rerr
	}
	switch {
	case pe.Kind == providers.KindAuth && fromTokenService(err):
		// The token service refused (and expired, and logged) it: the
		// account was not usable before any delete.
		activity.GetLogger(ctx).Warn("No usable token to unpublish with: reconnect the account", "PostID", in.PostID,
			"AccountID", in.AccountID, "Platform", pe.Provider, "Code", pe.Code)
	case pe.Kind == providers.KindAuth:
		// The same rule as for publishing: a token refused for good
		// expires the account.
		activity.GetLogger(ctx).Error("Platform refused the account's token while unpublishing: account expired, reconnect it",
			"PostID", in.PostID, "AccountID", in.AccountID, "Platform", pe.Provider, "Code", pe.Code)
		if serr := a.Tokens.Expire(ctx, in.AccountID, pe); serr != nil {
			return nil, serr
		}
	default:
		activity.GetLogger(ctx).Warn("Platform refused to delete the post", "PostID", in.PostID, "AccountID", in.AccountID,
			"Platform", pe.Provider, "Code", pe.Code)
	}
	return a.unpublishFailed(ctx, in, posts.Cause{Kind: pe.Kind, Code: pe.Code, Delete: true}, pe.Message)
}

// unpublishFailed records the account's unpublish as failed, of the
// cause's category.
func (a *Activities) unpublishFailed(ctx context.Context, in workflows.UnpublishAccountInput, cause posts.Cause, msg string) (*workflows.UnpublishOutcome, error) {
	return a.saveUnpublishFailed(ctx, in, cause.Code, msg, posts.Categorize(cause))
}

func (a *Activities) saveUnpublishFailed(ctx context.Context, in workflows.UnpublishAccountInput, code, msg string, category posts.Category) (*workflows.UnpublishOutcome, error) {
	u := posts.Unpublish{Status: posts.UnpublishFailed, ErrorCode: code, ErrorMessage: msg, ErrorCategory: category}
	if err := a.Posts.FinishUnpublish(ctx, in.PostID, in.AccountID, u); err != nil {
		if errors.Is(err, posts.ErrNotFound) {
			return &workflows.UnpublishOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: posts.CodeNotPublished}, nil
		}
		return nil, err
	}
	a.Metrics.Unpublished(a.network(ctx, in.AccountID), string(posts.UnpublishFailed))
	return &workflows.UnpublishOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: code}, nil
}

// RecordUnpublishFailure records a failure the workflow decided on
// (retries used up, rate limited past the horizon, the run cancelled),
// unless the account was unpublished meanwhile.
func (a *Activities) RecordUnpublishFailure(ctx context.Context, in workflows.UnpublishFailureInput) (*workflows.UnpublishOutcome, error) {
	r, err := a.Posts.Result(ctx, in.PostID, in.AccountID)
	if err != nil {
		return nil, err
	}
	if r == nil || r.Status != posts.ResultPublished {
		return &workflows.UnpublishOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: posts.CodeNotPublished}, nil
	}
	if r.Unpublish != nil && r.Unpublish.Status == posts.Unpublished {
		return &workflows.UnpublishOutcome{AccountID: in.AccountID, Status: string(posts.Unpublished)}, nil
	}
	// The workflow passes a code, not the answer's kind: the last
	// attempt's answer (retries used up on a 503) has its category; a
	// code of the workflow's own has one of its own.
	category, msg := posts.Categorize(posts.Cause{Code: in.Code, Delete: true}), in.Message
	if u := r.Unpublish; u != nil && u.ErrorCode == in.Code && u.ErrorCategory != "" {
		category = u.ErrorCategory
	}
	if u := r.Unpublish; u != nil && u.ErrorCode == in.Code && u.ErrorMessage != "" {
		msg = u.ErrorMessage // the network's, as RecordPublishFailure keeps
	}
	if in.Code != workflows.CodeCancelled {
		activity.GetLogger(ctx).Error("Unpublishing from the account failed for good", "PostID", in.PostID, "AccountID", in.AccountID,
			"Code", in.Code, "Reason", in.Message)
	}
	return a.saveUnpublishFailed(ctx, workflows.UnpublishAccountInput{PostID: in.PostID, AccountID: in.AccountID}, in.Code, msg, category)
}

// FinishUnpublish announces the end of an unpublish run: post.unpublished,
// with every account's result, identified by the run, so that a retry
// stores the same event. A post deleted meanwhile announces nothing. Then
// it releases the run's claim on the post (posts.UnpublishClaim): last,
// so that nothing the run does follows a publish again of the post.
func (a *Activities) FinishUnpublish(ctx context.Context, in workflows.FinishUnpublishInput) error {
	if err := a.announceUnpublished(ctx, in); err != nil {
		return err
	}
	return posts.ReleaseUnpublishClaim(ctx, a.Posts, in.PostID, activity.GetInfo(ctx).WorkflowExecution.RunID)
}

// announceUnpublished emits the run's post.unpublished, if anyone listens.
func (a *Activities) announceUnpublished(ctx context.Context, in workflows.FinishUnpublishInput) error {
	if a.Events == nil {
		return nil
	}
	p, err := a.Posts.GetByID(ctx, in.PostID)
	if errors.Is(err, posts.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	results, err := a.Posts.Results(ctx, p)
	if err != nil {
		return err
	}
	accounts := make([]string, 0, len(in.Outcomes))
	for _, o := range in.Outcomes {
		accounts = append(accounts, o.AccountID)
	}
	ev, err := posts.NewUnpublishedEvent(p, results, accounts, a.now(), activity.GetInfo(ctx).WorkflowExecution.RunID)
	if err == nil {
		err = a.Events.Emit(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("post %s: store its post.unpublished event: %w", in.PostID, err)
	}
	return nil
}

// logUnpublishAttempt adds att to the account's attempts, beside its
// publish attempts (GET /posts/{id}?include=attempts).
func (a *Activities) logUnpublishAttempt(ctx context.Context, in workflows.UnpublishAccountInput, att posts.Attempt) {
	a.logAttempt(ctx, workflows.AccountInput{PostID: in.PostID, AccountID: in.AccountID}, att)
}

// logDeleteFailure lists a network's answer that failed step of an
// unpublish (logFailure).
func (a *Activities) logDeleteFailure(ctx context.Context, in workflows.UnpublishAccountInput, at time.Time, step posts.AttemptStep, err error) {
	a.logFailure(ctx, workflows.AccountInput{PostID: in.PostID, AccountID: in.AccountID}, at, step, err)
}
