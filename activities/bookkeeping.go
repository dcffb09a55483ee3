package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/workflows"
)

// StartPublishing loads the post, checks that it is to be published, and
// marks it publishing when its time has come. It lists the accounts the
// run publishes to: every account of the post, less (see leftOut), when
// the API triggers a post that ran before (POST /publish, POST
// /posts/{id}/retry), those whose result is final (published, failed,
// unknown). The trigger forgot the results of the accounts it means to
// publish to again; the others stand untouched.
func (a *Activities) StartPublishing(ctx context.Context, in workflows.StartInput) (*workflows.StartResult, error) {
	p, err := a.Posts.GetByID(ctx, in.PostID)
	if errors.Is(err, posts.ErrNotFound) {
		return &workflows.StartResult{Skip: true, Status: "deleted"}, nil
	}
	if err != nil {
		return nil, err
	}
	switch p.Status {
	case posts.StatusScheduled, posts.StatusQueued, posts.StatusPublishing:
	case posts.StatusFailed:
		// Only an operator starts a run for a failed post (a reset or a
		// new run from the Web UI or CLI; the API queues it first): a
		// re-run. Accounts already published are skipped by
		// PublishToAccount, and unknown ones stay unknown.
	default:
		return &workflows.StartResult{Skip: true, Status: string(p.Status)}, nil
	}
	if p.ScheduledAt != nil && p.ScheduledAt.After(a.now()) {
		return &workflows.StartResult{WaitUntil: *p.ScheduledAt}, nil
	}
	if _, err := a.Posts.SetStatus(ctx, p, posts.StatusPublishing, posts.StatusScheduled, posts.StatusQueued, posts.StatusPublishing, posts.StatusFailed); err != nil {
		if errors.Is(err, posts.ErrConflict) || errors.Is(err, posts.ErrNotFound) {
			// Cancelled or deleted between the read and the write.
			return &workflows.StartResult{Skip: true, Status: "cancelled"}, nil
		}
		return nil, err
	}
	res := &workflows.StartResult{Status: string(posts.StatusPublishing)}
	for _, id := range p.SocialAccountIDs {
		leave, err := a.leftOut(ctx, p, id)
		if err != nil {
			return nil, err
		}
		if leave {
			continue
		}
		ref := workflows.AccountRef{ID: id}
		if acc, err := a.Accounts.GetByID(ctx, id); err == nil {
			ref.Platform = acc.Platform
			ref.NeedsRefresh = acc.NeedsRefresh(a.now())
		}
		res.Accounts = append(res.Accounts, ref)
	}
	return res, nil
}

// leftOut says whether a run of p leaves out its account accountID: only
// a run triggered through the API for a post run before, whose result for
// the account is final. A failed post's run is an operator's re-run (a
// reset, the Web UI), which goes to every account as it always has:
// PublishToAccount keeps published and unknown ones, and publishes to
// failed ones again. A first run has no results to read: a post that
// ran before has a failure reason or a publication time, and only such a
// post costs the reads.
func (a *Activities) leftOut(ctx context.Context, p *posts.Post, accountID string) (bool, error) {
	if p.Status == posts.StatusFailed || p.FailureReason == "" && p.PublishedAt == nil {
		return false, nil
	}
	r, err := a.Posts.Result(ctx, p.ID, accountID)
	if err != nil {
		return false, err
	}
	return r != nil && (r.Status == posts.ResultPublished || r.Status == posts.ResultFailed || r.Status == posts.ResultUnknown), nil
}

// RecordPublishFailure records a failure the workflow decided on: retries
// used up, rate limited past the horizon, the run cancelled. When the last
// attempt's answer left it in doubt (a 504, no answer), the outcome is
// unknown, not failed: the platform may have the post.
func (a *Activities) RecordPublishFailure(ctx context.Context, in workflows.FailureInput) (*workflows.AccountOutcome, error) {
	prev, err := a.Posts.Result(ctx, in.PostID, in.AccountID)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.Status == posts.ResultPublished {
		// Published meanwhile (a branch still finishing while its run
		// was cancelled, or a worker that died after recording it): the
		// result stands, and so does the outcome.
		return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "published", PlatformPostID: prev.PlatformPostID, PublishedAt: prev.PublishedAt}, nil
	}
	if prev.InDoubt() {
		platform := "the platform"
		if acc, err := a.Accounts.GetByID(ctx, in.AccountID); err == nil {
			platform = acc.Platform
		}
		if prev.ErrorCode == "" {
			prev.ErrorCode = in.Code
		}
		return a.unknown(ctx, workflows.AccountInput{PostID: in.PostID, AccountID: in.AccountID}, prev, platform)
	}
	// The workflow passes a code, not the answer's kind: the last
	// attempt's result, which recorded that answer (retries used up on a
	// 503), has its category; a code of the workflow's own has one of its
	// own (RATE_LIMIT_HORIZON, CANCELLED).
	// Its message is the network's own, as on any refusal's result; the
	// workflow's is the activity error's text ("sandbox: retryable
	// unavailable: ...").
	category, msg := posts.Categorize(posts.Cause{Code: in.Code}), in.Message
	if prev != nil && prev.ErrorCode == in.Code && prev.ErrorCategory != "" {
		category = prev.ErrorCategory
	}
	if prev != nil && prev.ErrorCode == in.Code && prev.ErrorMessage != "" {
		msg = prev.ErrorMessage
	}
	if err := a.Posts.SaveResult(ctx, &posts.Result{PostID: in.PostID, SocialAccountID: in.AccountID, Status: posts.ResultFailed,
		ErrorCode: in.Code, ErrorMessage: msg, ErrorCategory: category}); err != nil {
		return nil, err
	}
	a.countResult(ctx, in.AccountID, posts.ResultFailed, category)
	if in.Code != workflows.CodeCancelled {
		activity.GetLogger(ctx).Error("Publishing to the account failed for good", "PostID", in.PostID, "AccountID", in.AccountID,
			"Code", in.Code, "Reason", in.Message)
	}
	return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: in.Code}, nil
}

// FinishPost sets the post published when every account is, else failed
// with the reasons. The run's outcomes say which accounts are published
// (each was recorded before its outcome was returned); only the others'
// results are read, for their codes and messages, with those of the
// accounts the run left out (StartPublishing), whose results stand.
func (a *Activities) FinishPost(ctx context.Context, in workflows.FinishInput) (*workflows.FinishResult, error) {
	p, err := a.Posts.GetByID(ctx, in.PostID)
	if errors.Is(err, posts.ErrNotFound) {
		return &workflows.FinishResult{Status: "deleted"}, nil
	}
	if err != nil {
		return nil, err
	}
	// A run recorded before outcomes were passed passes none: every
	// account is read.
	outcomes := slices.Clone(in.Outcomes)
	for _, id := range p.SocialAccountIDs {
		if !slices.ContainsFunc(outcomes, func(o workflows.AccountOutcome) bool { return o.AccountID == id }) {
			outcomes = append(outcomes, workflows.AccountOutcome{AccountID: id})
		}
	}
	var published, unknown int
	var last *time.Time
	var firstCode, firstMsg string
	for _, o := range outcomes {
		if o.Status != "published" || o.PublishedAt == nil {
			r, err := a.Posts.Result(ctx, in.PostID, o.AccountID)
			if err != nil {
				return nil, err
			}
			if r != nil && r.Status == posts.ResultUnknown {
				unknown++
			}
			if r != nil && r.Status == posts.ResultPublished {
				o.Status, o.PublishedAt = "published", r.PublishedAt
			} else if firstCode == "" {
				firstCode, firstMsg = "NOT_PUBLISHED", "no result was recorded"
				if r != nil {
					firstCode, firstMsg = r.ErrorCode, r.ErrorMessage
				}
			}
		}
		if o.Status == "published" {
			published++
			if last == nil || (o.PublishedAt != nil && o.PublishedAt.After(*last)) {
				last = o.PublishedAt
			}
		}
	}
	total := len(outcomes)
	status, code, reason := posts.StatusPublished, "", ""
	if published < total {
		status, code = posts.StatusFailed, firstCode
		if published > 0 {
			code = "PARTIAL_FAILURE"
		}
		reason = fmt.Sprintf("%d of %d accounts failed; first: %s: %s", total-published, total, firstCode, firstMsg)
		if unknown > 0 {
			// Not failed: the network may hold the post.
			reason = fmt.Sprintf("%d of %d accounts not published: %d failed, %d unknown (check the network before publishing again); first: %s: %s",
				total-published, total, total-published-unknown, unknown, firstCode, firstMsg)
		}
	}
	err = a.Posts.Finish(ctx, in.PostID, status, last, reason, code)
	if errors.Is(err, posts.ErrNotFound) {
		return &workflows.FinishResult{Status: "deleted"}, nil
	}
	if err != nil {
		return nil, err
	}
	// The event is stored after the state it tells of (its body is the
	// post as finished); failing here makes Temporal retry FinishPost (4
	// attempts, 14 s), whose write is the same and whose event has the
	// same id. If every attempt fails, the run fails with the post final
	// and its event not stored: the failed run and this ERROR say so.
	if err := a.announce(ctx, in.PostID); err != nil {
		activity.GetLogger(ctx).Error("Could not store the post's final-state event; FinishPost fails to be tried again", "PostID", in.PostID, "Error", err)
		return nil, err
	}
	a.Metrics.PostFinished(string(status))
	return &workflows.FinishResult{Status: string(status)}, nil
}

// finishIfLast sets the post published if every other account's result
// already says published, and says whether it did. Of branches recording
// their results at the same time, the one whose write lands last sees all
// the others', so a post published everywhere is finished here; anything
// else (a failed account, a read or write that fails, its event that
// cannot be stored) is left to FinishPost, which the workflow runs when no
// branch finished the post: it writes the same state and stores the same
// event (the same run), or fails to be retried.
func (a *Activities) finishIfLast(ctx context.Context, p *posts.Post, accountID string, publishedAt time.Time) bool {
	last := publishedAt
	for _, id := range p.SocialAccountIDs {
		if id == accountID {
			continue
		}
		r, err := a.Posts.Result(ctx, p.ID, id)
		if err != nil || r == nil || r.Status != posts.ResultPublished {
			return false
		}
		if r.PublishedAt != nil && r.PublishedAt.After(last) {
			last = *r.PublishedAt
		}
	}
	if a.Posts.Finish(ctx, p.ID, posts.StatusPublished, &last, "", "") != nil {
		return false
	}
	if err := a.announcePublished(ctx, p); err != nil {
		activity.GetLogger(ctx).Warn("Could not store the post's published event; FinishPost will", "PostID", p.ID, "Error", err)
		return false
	}
	a.Metrics.PostFinished(string(posts.StatusPublished))
	return true
}
