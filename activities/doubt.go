package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/workflows"
)

// earlier reads the result earlier attempts left for the account (nil:
// none) and, if they settled it (posts.Result.Settled), its outcome, which
// stands whatever this attempt meets.
func (a *Activities) earlier(ctx context.Context, in workflows.AccountInput) (*posts.Result, *workflows.AccountOutcome, error) {
	prev, err := a.Posts.Result(ctx, in.PostID, in.AccountID)
	if err != nil || !prev.Settled() {
		return prev, nil, err
	}
	if prev.Status == posts.ResultPublished {
		return prev, &workflows.AccountOutcome{AccountID: in.AccountID, Status: "published", PlatformPostID: prev.PlatformPostID, PublishedAt: prev.PublishedAt}, nil
	}
	return prev, &workflows.AccountOutcome{AccountID: in.AccountID, Status: "unknown", ErrorCode: prev.ErrorCode}, nil
}

// findSlack: a read back looks this much before the attempt in doubt
// began, for clocks that disagree.
const findSlack = time.Minute

// readBack asks the network whether it holds the post of the attempt prev
// leaves in doubt (posts.StepReadBack): the newest post it names that no
// other post's published result holds (a network that tells posts apart
// by their text alone names another post's with the same text too), or
// nil when it holds none.
func (a *Activities) readBack(ctx context.Context, in workflows.AccountInput, p *posts.Post, prov providers.Provider, acc *connections.Account, token string, prev *posts.Result) (*providers.Published, error) {
	since := time.Time{}
	if start := prev.DoubtStart(); start != nil {
		since = start.Add(-findSlack)
	}
	found, err := prov.Find(ctx, acc.Provider(token), payload(p, in.AccountID, prevKey(prev, in)), since)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	// The platform user may be connected into other organizations too.
	accounts, err := a.Accounts.SamePlatformUser(ctx, acc.Platform, acc.PlatformUserID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(accounts, in.AccountID) {
		accounts = append(accounts, in.AccountID)
	}
	for i := range found {
		claimedBy, _, err := a.Posts.PostByPlatformID(ctx, accounts, found[i].PlatformPostID)
		if err != nil {
			return nil, err
		}
		if claimedBy == "" || claimedBy == in.PostID {
			return &found[i], nil
		}
	}
	return nil, nil
}

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
	out, err := a.saveFailed(ctx, in, posts.Cause{Kind: pe.Kind, Code: posts.ErrorCodeDuplicateContent}, msg)
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
		"Check the account's feed: if the post is there, nothing is missing; if not, publish to it again with POST /posts/%s/retry naming account %s.",
		when, platform, platform, in.PostID, in.AccountID)
	category := posts.Categorize(posts.Cause{Code: posts.CodeOutcomeUnknown})
	if err := a.Posts.SaveResult(ctx, &posts.Result{PostID: in.PostID, SocialAccountID: in.AccountID,
		Status: posts.ResultUnknown, ErrorCode: posts.CodeOutcomeUnknown, ErrorMessage: msg,
		ErrorCategory: category}); err != nil {
		return nil, err
	}
	a.countResult(ctx, in.AccountID, posts.ResultUnknown, category)
	activity.GetLogger(ctx).Error("Outcome unknown: check the account's feed", "PostID", in.PostID, "AccountID", in.AccountID, "Platform", platform)
	return &workflows.AccountOutcome{AccountID: in.AccountID, Status: "unknown", ErrorCode: posts.CodeOutcomeUnknown}, nil
}

// fail records that publishing to the account failed for good, for
// cause, unless an earlier attempt that prev leaves in doubt may have
// published: this failure cannot tell, so the outcome is unknown.
func (a *Activities) fail(ctx context.Context, in workflows.AccountInput, prev *posts.Result, platform string, cause posts.Cause, msg string) (*workflows.AccountOutcome, error) {
	if prev.InDoubt() {
		return a.unknown(ctx, in, prev, platform)
	}
	return a.saveFailed(ctx, in, cause, msg)
}
