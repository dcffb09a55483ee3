package activities

import (
	"context"
	"errors"

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

// tokenError is a refusal of the token service (ValidAccessToken,
// RenewAccessToken), not of the network's publish or delete: the service expired
// whatever it refused itself, and the account it names is not the one
// whose token the network refused (Tokens.Expire on a page resolves to
// its member, so a page expired on its own would expire a healthy member
// and all its pages).
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// tokenRefusal marks err, if any, as the token service's.
func tokenRefusal(err error) error {
	if err == nil {
		return nil
	}
	return &tokenError{err: err}
}

// fromTokenService says whether err is the token service's refusal
// (tokenRefusal), which must not expire the account again through
// Tokens.Expire.
func fromTokenService(err error) bool {
	var te *tokenError
	return errors.As(err, &te)
}
