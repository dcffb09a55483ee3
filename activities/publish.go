package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/workflows"
)

// PublishToAccount publishes the post to one account and records the
// result, once: the attempt is recorded before the platform is called, so
// that a retry after a lost answer or a killed worker knows it may already
// have published, and reconciles instead of posting again.
func (a *Activities) PublishToAccount(ctx context.Context, in workflows.AccountInput) (*workflows.AccountOutcome, error) {
	p, err := a.Posts.GetByID(ctx, in.PostID)
	if err != nil {
		return nil, err
	}
	began := a.now().UTC()
	token, acc, err := a.Tokens.ValidAccessToken(ctx, in.AccountID)
	a.logFailure(ctx, in, began, posts.StepToken, err)
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
			return a.fail(ctx, in, prev, acc.Platform, posts.Cause{Code: posts.CodeNotConfigured}, acc.Platform+" is not configured on this worker")
		}
		return a.classify(ctx, in, prev, err, false)
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
		// An earlier attempt left a result: it decides (posts.NextStep).
		var out *workflows.AccountOutcome
		if prev, out, err = a.earlier(ctx, in); err != nil {
			return nil, err
		}
		eo := prov.Rules().ExactlyOnce
		switch posts.NextStep(prev, posts.Lever{Window: eo.ReconcileWindow(), ReadBack: eo.ReadBack}, now) {
		case posts.StepFirst:
			// The result the insert met is gone (published again
			// meanwhile): the retry records a first attempt.
			return nil, errResultGone
		case posts.StepSettled:
			return out, nil
		case posts.StepUnknown:
			return a.unknown(ctx, in, prev, prov.Name())
		case posts.StepReadBack:
			found, err := a.readBack(ctx, in, p, prov, acc, token, prev)
			if err != nil {
				return a.classify(ctx, in, prev, err, false)
			}
			if found != nil {
				return a.published(ctx, in, p, acc.Platform, found)
			}
			// It holds none: the attempt in doubt made nothing, and a
			// repeat is a first post.
		case posts.StepRepeat:
			// Nothing in doubt, or the lever's window vouches for it.
		}
		key = prevKey(prev, in)
		if err := a.Posts.RecordAttempt(ctx, prev, in.PostID, in.AccountID, now); err != nil {
			return nil, err
		}
	}

	stopHeartbeats := heartbeatWhileWaiting(ctx)
	// A token refused before its time made nothing: a new session, then
	// the same call once more.
	renew := func() (providers.Account, error) {
		t, ac, err := a.Tokens.RenewAccessToken(ctx, in.AccountID, token)
		if err != nil {
			return providers.Account{}, tokenRefusal(err)
		}
		token, acc = t, ac
		return acc.Provider(token), nil
	}
	images, err := a.attachImages(ctx, in, p, prov, renew, acc.Provider(token), prev)
	if err != nil {
		stopHeartbeats()
		return a.uploadFailed(ctx, in, prev, err)
	}
	pl := payload(p, in.AccountID, key)
	pl.Images = images
	call := func(account providers.Account) (*providers.Published, error) {
		at := a.now().UTC()
		pub, err := prov.Publish(ctx, account, pl)
		if err == nil {
			a.logAttempt(ctx, in, posts.Attempt{At: at, Step: posts.StepPublish, Outcome: posts.OutcomePublished, PlatformPostID: pub.PlatformPostID})
		}
		a.logFailure(ctx, in, at, posts.StepPublish, err)
		return pub, err
	}
	pub, err := call(acc.Provider(token))
	if providers.KindOf(err) == providers.KindSessionExpired {
		var account providers.Account
		if account, err = renew(); err == nil {
			pub, err = call(account)
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
		if errors.As(err, &pe) && pe.Kind == providers.KindAuth && !fromTokenService(err) {
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
				Status: posts.ResultPending, ErrorCode: pe.Code, ErrorMessage: pe.Message,
				ErrorCategory: posts.Categorize(posts.Cause{Kind: pe.Kind, Code: pe.Code})}
			if !pe.Refused() {
				r.Status, r.DoubtSince = posts.ResultPublishing, &now
			}
			if serr := a.Posts.SaveResult(ctx, r); serr != nil {
				return nil, serr
			}
		}
		return a.classify(ctx, in, prev, err, false)
	}
	return a.published(ctx, in, p, acc.Platform, pub)
}

// uploadFailed records an attempt that ended before the post was sent,
// while its images were read or uploaded: whatever the answer, this
// attempt made no post (an upload is not one), so the result says pending,
// not in doubt, and an earlier attempt's doubt is kept. The error then
// decides as a refusal of the post would (classify).
func (a *Activities) uploadFailed(ctx context.Context, in workflows.AccountInput, prev *posts.Result, err error) (*workflows.AccountOutcome, error) {
	r := &posts.Result{PostID: in.PostID, SocialAccountID: in.AccountID, Status: posts.ResultPending}
	var pe *providers.Error
	if errors.As(err, &pe) {
		r.ErrorCode, r.ErrorMessage = pe.Code, pe.Message
		r.ErrorCategory = posts.Categorize(posts.Cause{Kind: pe.Kind, Code: pe.Code, Upload: true})
		if pe.Kind == providers.KindAuth && !fromTokenService(err) {
			if serr := a.Tokens.Expire(ctx, in.AccountID, pe); serr != nil {
				return nil, serr
			}
		}
	}
	if serr := a.Posts.SaveResult(ctx, r); serr != nil {
		return nil, serr
	}
	return a.classify(ctx, in, prev, err, true)
}

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

// published records that the network holds pub for the account, on
// network (its platform id, for the metrics).
func (a *Activities) published(ctx context.Context, in workflows.AccountInput, p *posts.Post, network string, pub *providers.Published) (*workflows.AccountOutcome, error) {
	// Every network's answer passes here: a URL that is no web link
	// (javascript:, data:) is not kept for frontends to render.
	pub = &providers.Published{PlatformPostID: pub.PlatformPostID, URL: providers.WebURL(pub.URL)}
	publishedAt := a.now().UTC()
	if err := a.Posts.SaveResult(ctx, &posts.Result{
		PostID: in.PostID, SocialAccountID: in.AccountID, Status: posts.ResultPublished,
		PlatformPostID: pub.PlatformPostID, PlatformPostURL: pub.URL, PublishedAt: &publishedAt,
	}); err != nil {
		// Published, but not recorded: the result still says publishing,
		// so the retry reconciles through the network's lever.
		return nil, err
	}
	a.countPublished(ctx, network, p, publishedAt)
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

// errResultGone: the account's result vanished between the insert that
// met it and its read; an error, so that Temporal retries.
var errResultGone = errors.New("the account's result was removed meanwhile")

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
