// Package activities does the I/O of the publishing workflow: reading and
// writing posts and results, refreshing tokens and calling the platforms.
// Activities take ids and decrypt tokens themselves, and return only what
// is safe to keep in Temporal's history: statuses, platform ids, error
// codes and messages, never content or tokens. Each is idempotent: a retry
// or a reset never posts twice to an account whose result says published.
package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/workflows"
)

// AccountStore is what the activities need from the account store.
type AccountStore interface {
	GetByID(ctx context.Context, id string) (*connections.Account, error)
	// SamePlatformUser returns the ids of every account, in any
	// organization, of one platform user.
	SamePlatformUser(ctx context.Context, platform, platformUserID string) ([]string, error)
}

// TokenSource hands out valid access tokens (connections.Service).
type TokenSource interface {
	ValidAccessToken(ctx context.Context, accountID string) (string, *connections.Account, error)
	// RenewAccessToken refreshes a token the network refused before its
	// time, unless another has been stored since.
	RenewAccessToken(ctx context.Context, accountID, refused string) (string, *connections.Account, error)
	// Expire marks the account expired after the network refused to
	// publish as it for good (KindAuth), with the accounts that share
	// its fate: a member's pages, or a page's member when the token
	// itself was refused.
	Expire(ctx context.Context, accountID string, cause *providers.Error) error
}

// Activities holds the dependencies of the publishing activities.
type Activities struct {
	Posts     posts.Store
	Accounts  AccountStore
	Tokens    TokenSource
	Providers *providers.Registry
	Now       func() time.Time
}

// Register registers the activities under the names the workflow calls.
func (a *Activities) Register(w worker.ActivityRegistry) {
	w.RegisterActivityWithOptions(a.StartPublishing, activity.RegisterOptions{Name: workflows.StartPublishingActivity})
	w.RegisterActivityWithOptions(a.RefreshAccessToken, activity.RegisterOptions{Name: workflows.RefreshTokenActivity})
	w.RegisterActivityWithOptions(a.PublishToAccount, activity.RegisterOptions{Name: workflows.PublishToAccountActivity})
	w.RegisterActivityWithOptions(a.RecordPublishFailure, activity.RegisterOptions{Name: workflows.RecordFailureActivity})
	w.RegisterActivityWithOptions(a.FinishPost, activity.RegisterOptions{Name: workflows.FinishPostActivity})
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// StartPublishing loads the post, checks that it is to be published, and
// marks it publishing when its time has come.
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
		ref := workflows.AccountRef{ID: id}
		if acc, err := a.Accounts.GetByID(ctx, id); err == nil {
			ref.Platform = acc.Platform
			ref.NeedsRefresh = acc.NeedsRefresh(a.now())
		}
		res.Accounts = append(res.Accounts, ref)
	}
	return res, nil
}

// RefreshAccessToken makes sure the account's token is valid, refreshing
// it if it expires soon. An account the platform refuses is marked expired
// and its result recorded as failed: that is an outcome, not an error. An
// account an earlier run settled keeps its outcome (see earlier); the
// workflow then goes on to PublishToAccount, which answers the same
// without posting.
func (a *Activities) RefreshAccessToken(ctx context.Context, in workflows.AccountInput) (*workflows.AccountOutcome, error) {
	_, _, err := a.Tokens.ValidAccessToken(ctx, in.AccountID)
	if err == nil {
		return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "ok"}, nil
	}
	prev, out, rerr := a.earlier(ctx, in)
	if rerr != nil {
		return nil, rerr
	}
	if out != nil {
		return out, nil
	}
	return a.classify(ctx, in, prev, err)
}

// PublishToAccount publishes the post to one account and records the
// result, once: the attempt is recorded before the platform is called, so
// that a retry after a lost answer or a killed worker knows it may already
// have published, and reconciles instead of posting again.
func (a *Activities) PublishToAccount(ctx context.Context, in workflows.AccountInput) (*workflows.AccountOutcome, error) {
	p, err := a.Posts.GetByID(ctx, in.PostID)
	if err != nil {
		return nil, err
	}
	token, acc, err := a.Tokens.ValidAccessToken(ctx, in.AccountID)
	var prov providers.Provider
	if err == nil {
		var ok bool
		if prov, ok = a.Providers.Get(acc.Platform); !ok {
			err = errNotConfigured
		}
	}
	if err != nil {
		// A failure to record, unless an earlier attempt settled the
		// account (a retry after the platform took the post still
		// answers published) or left it in doubt (unknown, see fail).
		prev, out, rerr := a.earlier(ctx, in)
		if rerr != nil {
			return nil, rerr
		}
		if out != nil {
			return out, nil
		}
		if errors.Is(err, errNotConfigured) {
			return a.fail(ctx, in, prev, acc.Platform, "PLATFORM_UNAVAILABLE", acc.Platform+" is not configured on this worker")
		}
		return a.classify(ctx, in, prev, err)
	}

	now := a.now().UTC()
	// Usually the first attempt: one insert records it. Otherwise the
	// earlier result decides.
	key, err := newIdempotencyKey(in.PostID, in.AccountID)
	if err != nil {
		return nil, err
	}
	first, err := a.Posts.RecordFirstAttempt(ctx, in.PostID, in.AccountID, now, key)
	if err != nil {
		return nil, err
	}
	var prev *posts.Result
	if !first {
		var out *workflows.AccountOutcome
		if prev, out, err = a.earlier(ctx, in); err != nil {
			return nil, err
		}
		if out != nil {
			return out, nil
		}
		// An earlier attempt whose outcome was never learnt may have
		// published. Posting again is safe only while the platform would
		// answer with the post it made (a duplicate answer naming it, or
		// the idempotency key's post).
		eo := prov.Rules().ExactlyOnce
		if prev.InDoubt() && eo.ReadBack {
			// The network can be asked: what it holds settles the doubt.
			since := time.Time{}
			if start := prev.DoubtStart(); start != nil {
				since = start.Add(-findSlack)
			}
			found, err := prov.Find(ctx, acc.Provider(token), payload(p, in.AccountID, prevKey(prev, in)), since)
			if err != nil {
				return a.classify(ctx, in, prev, err)
			}
			if found != nil {
				return a.published(ctx, in, p, found)
			}
			// It holds none: the attempt in doubt made nothing, and a
			// repeat is a first post.
		} else if !posts.MayRepeat(prev, eo.ReconcileWindow(), now) {
			return a.unknown(ctx, in, prev, prov.Name())
		}
		key = prevKey(prev, in)
		if err := a.Posts.RecordAttempt(ctx, prev, in.PostID, in.AccountID, now); err != nil {
			return nil, err
		}
	}

	stopHeartbeats := heartbeatWhileWaiting(ctx)
	pub, err := prov.Publish(ctx, acc.Provider(token), payload(p, in.AccountID, key))
	if providers.KindOf(err) == providers.KindSessionExpired {
		// Refused before its time, so nothing was made: a new session,
		// then the same call once more.
		if token, acc, err = a.Tokens.RenewAccessToken(ctx, in.AccountID, token); err == nil {
			pub, err = prov.Publish(ctx, acc.Provider(token), payload(p, in.AccountID, key))
		}
	}
	stopHeartbeats()
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Kind == providers.KindDuplicate {
		var out *workflows.AccountOutcome
		if pub, out, err = a.duplicate(ctx, in, p, acc, prev, prov, pe, now); out != nil || err != nil {
			return out, err
		}
	}
	if err != nil {
		if errors.As(err, &pe) && pe.Kind == providers.KindAuth {
			if serr := a.Tokens.Expire(ctx, in.AccountID, pe); serr != nil {
				return nil, serr
			}
		}
		if pe != nil && (pe.Kind == providers.KindRateLimited || pe.Kind == providers.KindRetryable || pe.Kind == providers.KindSessionExpired) {
			// To be tried again. Refused (a 429, a 503): this attempt
			// made nothing, though an earlier one may have (DoubtSince
			// is kept). Otherwise (a 504, no answer) this attempt is in
			// doubt too, with the answer for operators.
			r := &posts.Result{PostID: in.PostID, SocialAccountID: in.AccountID,
				Status: posts.ResultPending, ErrorCode: pe.Code, ErrorMessage: pe.Message}
			if !pe.Refused() {
				r.Status, r.DoubtSince = posts.ResultPublishing, &now
			}
			if serr := a.Posts.SaveResult(ctx, r); serr != nil {
				return nil, serr
			}
		}
		return a.classify(ctx, in, prev, err)
	}
	return a.published(ctx, in, p, pub)
}

// findSlack: a read back looks this much before the attempt in doubt
// began, for clocks that disagree.
const findSlack = time.Minute

// payload is what the network receives for the post p on account.
func payload(p *posts.Post, accountID, key string) providers.Payload {
	return providers.Payload{Text: p.ContentFor(accountID), IdempotencyKey: key, Created: p.CreatedAt}
}

// prevKey is the idempotency key of the publication prev records.
func prevKey(prev *posts.Result, in workflows.AccountInput) string {
	if prev.IdempotencyKey != "" {
		return prev.IdempotencyKey
	}
	// Recorded by a build before keys were stored, or by a failure
	// recorded before any attempt.
	return IdempotencyKey(in.PostID, in.AccountID)
}

// published records that the network holds pub for the account.
func (a *Activities) published(ctx context.Context, in workflows.AccountInput, p *posts.Post, pub *providers.Published) (*workflows.AccountOutcome, error) {
	publishedAt := a.now().UTC()
	if err := a.Posts.SaveResult(ctx, &posts.Result{
		PostID: in.PostID, SocialAccountID: in.AccountID, Status: posts.ResultPublished,
		PlatformPostID: pub.PlatformPostID, PlatformPostURL: pub.URL, PublishedAt: &publishedAt,
	}); err != nil {
		// Published, but not recorded: the result still says publishing,
		// so the retry reconciles through the network's lever.
		return nil, err
	}
	out := &workflows.AccountOutcome{AccountID: in.AccountID, Status: "published", PlatformPostID: pub.PlatformPostID, PublishedAt: &publishedAt}
	if in.FinishPost {
		out.FinishedPost = a.finishIfLast(ctx, p, in.AccountID, publishedAt)
	}
	return out, nil
}

// IdempotencyKey is the key of the attempts to publish post postID to
// account accountID whose result holds none (recorded before keys were
// stored): ids only, so it reveals nothing the platform should not see.
func IdempotencyKey(postID, accountID string) string {
	return "postflow-" + postID + "-" + accountID
}

// newIdempotencyKey is the key of a new publication of post postID to
// account accountID (posts.Result.IdempotencyKey): the ids, for operators
// reading the platform's side, and 64 random bits, so that publishing
// again after a reset is a new post, not the platform's answer to the old.
func newIdempotencyKey(postID, accountID string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("idempotency key: %w", err)
	}
	return IdempotencyKey(postID, accountID) + "-" + hex.EncodeToString(b[:]), nil
}

// errNotConfigured: the account's platform has no provider on this worker.
var errNotConfigured = errors.New("platform not configured")

// duplicate decides what the platform's answer that it already holds this
// post means (posts.JudgeDuplicate): the post an earlier attempt of ours
// made (pub, to be recorded as published), an outcome nobody can know, or
// another post's content (failed DUPLICATE_CONTENT). It never takes a
// platform post that another post's result holds.
func (a *Activities) duplicate(ctx context.Context, in workflows.AccountInput, p *posts.Post, acc *connections.Account, prev *posts.Result, prov providers.Provider, pe *providers.Error, now time.Time) (*providers.Published, *workflows.AccountOutcome, error) {
	// Without doubt the answer is another's whoever holds it: this
	// account's own results serve for the message. In doubt, the
	// platform's user may be connected into other organizations too, and
	// their posts are as much the platform's as this one's.
	accounts := []string{in.AccountID}
	if prev.InDoubt() {
		var err error
		if accounts, err = a.Accounts.SamePlatformUser(ctx, acc.Platform, acc.PlatformUserID); err != nil {
			return nil, nil, err
		}
		if !slices.Contains(accounts, in.AccountID) {
			accounts = append(accounts, in.AccountID)
		}
	}
	var err error
	d := posts.DuplicateAnswer{PostID: in.PostID, ExistingPostID: pe.ExistingPostID}
	var claimedVia string
	if pe.ExistingPostID != "" {
		if d.ClaimedBy, claimedVia, err = a.Posts.PostByPlatformID(ctx, accounts, pe.ExistingPostID); err != nil {
			return nil, nil, err
		}
	}
	if start := prev.DoubtStart(); start != nil {
		eo := prov.Rules().ExactlyOnce
		d.Keyed = eo.Forever || eo.IdempotencyWindow > 0 && now.Sub(*start) < eo.IdempotencyWindow
		if !d.Keyed {
			rivals, err := a.rivals(ctx, in, p, accounts)
			if err != nil {
				return nil, nil, err
			}
			d.Rivals = rivals
		}
	}
	switch posts.JudgeDuplicate(prev, d) {
	case posts.DuplicateOfOurs:
		return &providers.Published{PlatformPostID: pe.ExistingPostID, URL: prov.PostURL(acc.Provider(""), pe.ExistingPostID)}, nil, nil
	case posts.DuplicateUnknown:
		out, err := a.unknown(ctx, in, prev, prov.Name())
		return nil, out, err
	}
	claimedBy := d.ClaimedBy
	msg := prov.Name() + " already holds this text from this account"
	if pe.ExistingPostID != "" {
		msg += " as " + pe.ExistingPostID
		if u := prov.PostURL(acc.Provider(""), pe.ExistingPostID); u != "" {
			msg += " (" + u + ")"
		}
	}
	switch {
	case claimedBy != "" && claimedVia == in.AccountID:
		msg += ", published by post " + claimedBy
	case claimedBy != "":
		// Another organization's post: its id is not this one's to see.
		msg += ", published through PostFlow by another organization that connected the same account"
	}
	msg += " and refused it as a duplicate (" + pe.Code + "). Change the text, or publish again once " + prov.Name() + " accepts a repeat."
	// Not through fail: an earlier attempt in doubt cannot hold this
	// post, since the platform would have refused it as the same repeat
	// (or, keyed, answered with it).
	out, err := a.saveFailed(ctx, in, posts.ErrorCodeDuplicateContent, msg)
	return nil, out, err
}

// rivals says whether another post of the account, with the text this one
// sends it, has an attempt in doubt or an unknown outcome: a post the
// platform names as a duplicate may then be that one's.
func (a *Activities) rivals(ctx context.Context, in workflows.AccountInput, p *posts.Post, accounts []string) (bool, error) {
	others, err := a.Posts.DoubtfulResults(ctx, accounts, in.PostID)
	if err != nil {
		return false, err
	}
	text := p.ContentFor(in.AccountID)
	for _, r := range others {
		other, err := a.Posts.GetByID(ctx, r.PostID)
		if errors.Is(err, posts.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if other.ContentFor(r.SocialAccountID) == text {
			return true, nil
		}
	}
	return false, nil
}

// earlier reads the result earlier attempts left for the account (nil:
// none) and, if they settled it, its outcome, which stands whatever this
// attempt meets. Published: the platform has the post, and posting again
// would duplicate it. Unknown: publishing again is an operator's decision
// (POST /publish with again=true), not a retry's.
func (a *Activities) earlier(ctx context.Context, in workflows.AccountInput) (*posts.Result, *workflows.AccountOutcome, error) {
	prev, err := a.Posts.Result(ctx, in.PostID, in.AccountID)
	if err != nil || prev == nil {
		return prev, nil, err
	}
	switch prev.Status {
	case posts.ResultPublished:
		return prev, &workflows.AccountOutcome{AccountID: in.AccountID, Status: "published", PlatformPostID: prev.PlatformPostID, PublishedAt: prev.PublishedAt}, nil
	case posts.ResultUnknown:
		return prev, &workflows.AccountOutcome{AccountID: in.AccountID, Status: "unknown", ErrorCode: prev.ErrorCode}, nil
	}
	return prev, nil, nil
}

// finishIfLast sets the post published if every other account's result
// already says published, and says whether it did. Of branches recording
// their results at the same time, the one whose write lands last sees all
// the others', so a post published everywhere is finished here; anything
// else (a failed account, a read or write that fails) is left to
// FinishPost, which the workflow runs when no branch finished the post.
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
	return a.Posts.Finish(ctx, p.ID, posts.StatusPublished, &last, "", "") == nil
}

// heartbeatWhileWaiting heartbeats at a third of the activity's heartbeat
// timeout until stopped, so that Temporal notices a worker that died while
// a platform call was in flight. The first one only comes after that third:
// quick calls cost no heartbeat.
func heartbeatWhileWaiting(ctx context.Context) (stop func()) {
	timeout := activity.GetInfo(ctx).HeartbeatTimeout
	if timeout <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(timeout / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// unknown records that an earlier attempt may have published and that
// PostFlow cannot find out: an operator checks the account and decides.
func (a *Activities) unknown(ctx context.Context, in workflows.AccountInput, prev *posts.Result, platform string) (*workflows.AccountOutcome, error) {
	if platform == "" {
		platform = "the platform"
	}
	when := "an earlier attempt"
	if start := prev.DoubtStart(); start != nil {
		when = "the attempt of " + start.UTC().Format(time.RFC3339)
	}
	if prev.ErrorCode != "" {
		// The last answer, which may be a later call's, not the one in doubt.
		when += " (last answer: " + prev.ErrorCode + ")"
	}
	msg := fmt.Sprintf("%s may have published this post to %s, and %s can no longer tell. "+
		"Check the account's feed: if the post is there, nothing is missing; if not, publish again with POST /publish/%s?again=true.",
		when, platform, platform, in.PostID)
	if err := a.Posts.SaveResult(ctx, &posts.Result{PostID: in.PostID, SocialAccountID: in.AccountID,
		Status: posts.ResultUnknown, ErrorCode: "OUTCOME_UNKNOWN", ErrorMessage: msg}); err != nil {
		return nil, err
	}
	activity.GetLogger(ctx).Error("Outcome unknown: check the account's feed", "PostID", in.PostID, "AccountID", in.AccountID, "Platform", platform)
	return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "unknown", ErrorCode: "OUTCOME_UNKNOWN"}, nil
}

// classify turns a provider error into what the workflow decides on:
// terminal failures are recorded and returned as outcomes; rate limits and
// outages are returned as errors of the workflow's types. prev is the
// result an earlier attempt left (nil: none, or not read), for fail.
func (a *Activities) classify(ctx context.Context, in workflows.AccountInput, prev *posts.Result, err error) (*workflows.AccountOutcome, error) {
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
	return a.fail(ctx, in, prev, pe.Provider, pe.Code, pe.Message)
}

// fail records that publishing to the account failed for good, unless an
// earlier attempt that prev leaves in doubt may have published: this
// failure cannot tell, so the outcome is unknown.
func (a *Activities) fail(ctx context.Context, in workflows.AccountInput, prev *posts.Result, platform, code, msg string) (*workflows.AccountOutcome, error) {
	if prev.InDoubt() {
		return a.unknown(ctx, in, prev, platform)
	}
	return a.saveFailed(ctx, in, code, msg)
}

// saveFailed records the account's result as failed with the code.
func (a *Activities) saveFailed(ctx context.Context, in workflows.AccountInput, code, msg string) (*workflows.AccountOutcome, error) {
	if err := a.Posts.SaveResult(ctx, &posts.Result{PostID: in.PostID, SocialAccountID: in.AccountID, Status: posts.ResultFailed,
		ErrorCode: code, ErrorMessage: msg}); err != nil {
		return nil, err
	}
	return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: code}, nil
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
	if err := a.Posts.SaveResult(ctx, &posts.Result{PostID: in.PostID, SocialAccountID: in.AccountID, Status: posts.ResultFailed,
		ErrorCode: in.Code, ErrorMessage: in.Message}); err != nil {
		return nil, err
	}
	if in.Code != workflows.CodeCancelled {
		activity.GetLogger(ctx).Error("Publishing to the account failed for good", "PostID", in.PostID, "AccountID", in.AccountID,
			"Code", in.Code, "Reason", in.Message)
	}
	return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "failed", ErrorCode: in.Code}, nil
}

// FinishPost sets the post published when every account is, else failed
// with the reasons. The run's outcomes say which accounts are published
// (each was recorded before its outcome was returned); only the others'
// results are read, for their codes and messages.
func (a *Activities) FinishPost(ctx context.Context, in workflows.FinishInput) (*workflows.FinishResult, error) {
	outcomes := in.Outcomes
	if len(outcomes) == 0 {
		// A run recorded before outcomes were passed: read them.
		p, err := a.Posts.GetByID(ctx, in.PostID)
		if errors.Is(err, posts.ErrNotFound) {
			return &workflows.FinishResult{Status: "deleted"}, nil
		}
		if err != nil {
			return nil, err
		}
		for _, id := range p.SocialAccountIDs {
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
	err := a.Posts.Finish(ctx, in.PostID, status, last, reason, code)
	if errors.Is(err, posts.ErrNotFound) {
		return &workflows.FinishResult{Status: "deleted"}, nil
	}
	if err != nil {
		return nil, err
	}
	return &workflows.FinishResult{Status: string(status)}, nil
}
