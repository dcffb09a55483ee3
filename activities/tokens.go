package activities

import (
	"context"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/workflows"
)

// RefreshAccessToken makes sure the account's token is valid, refreshing
// it if it expires soon. An account the platform refuses is marked expired
// and its result recorded as failed: that is an outcome, not an error. An
// account an earlier run settled keeps its outcome (see earlier); the
// workflow then goes on to PublishToAccount, which answers the same
// without posting.
func (a *Activities) RefreshAccessToken(ctx context.Context, in workflows.AccountInput) (*workflows.AccountOutcome, error) {
	began := a.now().UTC()
	_, _, err := a.Tokens.ValidAccessToken(ctx, in.AccountID)
	a.logFailure(ctx, in, began, posts.StepToken, err)
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
	return a.classify(ctx, in, prev, err, false)
}
