package posts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/postflow/postflow/internal/ids"
)

// ErrNothingToRetry: a retry named no account and none of the post's
// failed.
var ErrNothingToRetry = errors.New("posts: no account of the post failed")

// PublishedAccountsError: a retry named accounts the post is published
// to. Refused rather than skipped: publishing to them again would post
// twice, and a retry that quietly did less than it was asked would let a
// client believe those accounts were retried.
type PublishedAccountsError struct {
	// AccountIDs are the accounts named that are published, in the
	// request's order.
	AccountIDs []string
}

func (e *PublishedAccountsError) Error() string {
	return "posts: already published to " + strings.Join(e.AccountIDs, ", ")
}

// Retry publishes the post again to the accounts named, or, when none is
// named, to every account of it that failed, and to no other: its other
// accounts' results (published, unknown, failed and not named) stand, and
// the run leaves them out (activities.StartPublishing). An account whose
// outcome is unknown is retried only when named: the caller checked the
// network and the post is not there. It returns the run and the accounts
// retried, in the post's order.
//
// Errors: a Malformed InvalidError (an id that is none), an Unacceptable
// one (account_not_on_post, duplicate_account, or what a trigger checks),
// ErrNotFound, ErrConflict (the post's run has not ended, or it was never
// published: POST /publish), *PublishedAccountsError, ErrNothingToRetry.
func (s *Service) Retry(ctx context.Context, orgID, id string, accountIDs []string) (workflowID, runID string, retried []string, err error) {
	p, err := s.store.Get(ctx, orgID, id)
	if err != nil {
		return "", "", nil, err
	}
	named, err := namedAccounts(p, accountIDs)
	if err != nil {
		return "", "", nil, err
	}
	if p.Status != StatusFailed && p.Status != StatusPublished {
		return "", "", nil, ErrConflict
	}
	results, err := s.store.Results(ctx, p)
	if err != nil {
		return "", "", nil, err
	}
	status := map[string]ResultStatus{}
	for _, r := range results {
		status[r.SocialAccountID] = r.Status
	}
	if named != nil {
		var published []string
		for _, id := range named {
			if status[id] == ResultPublished {
				published = append(published, id)
			}
		}
		if published != nil {
			return "", "", nil, &PublishedAccountsError{AccountIDs: published}
		}
	}
	// Chosen in the post's order. The default is every account that did
	// not get the post and is not in doubt: failed, or (after a run that
	// could not record its end) with no final result.
	for _, id := range p.SocialAccountIDs {
		chosen := slices.Contains(named, id)
		if named == nil {
			chosen = status[id] != ResultPublished && status[id] != ResultUnknown
		}
		if chosen {
			retried = append(retried, id)
		}
	}
	if len(retried) == 0 {
		return "", "", nil, ErrNothingToRetry
	}

	// As a trigger: everything is checked before anything changes.
	var inv *InvalidError
	if err := s.check(ctx, p); errors.As(err, &inv) {
		return "", "", nil, err
	}
	from := p.Status
	queued, err := s.store.SetStatus(ctx, p, StatusQueued, from)
	if err != nil {
		return "", "", nil, err
	}
	if err := s.recheckMedia(ctx, queued); err != nil {
		if _, rerr := s.store.SetStatus(context.WithoutCancel(ctx), queued, from, StatusQueued); rerr != nil {
			return "", "", nil, errors.Join(err, fmt.Errorf("put post %s back to %s: %w", p.ID, from, rerr))
		}
		return "", "", nil, err
	}
	// Only the chosen accounts' final results are forgotten, so that the
	// run publishes to them (a new publication, with a new idempotency
	// key) and leaves the others out. A result still in doubt
	// (publishing, pending) is kept: the run reconciles it first.
	chosen := *queued
	chosen.SocialAccountIDs = retried
	if err := s.store.ResetResults(ctx, &chosen, ResultFailed, ResultUnknown); err != nil {
		return "", "", nil, fmt.Errorf("retry post %s: reset results: %w", p.ID, err)
	}
	runID, err = s.runner.Start(ctx, queued)
	if err != nil {
		return "", "", nil, err
	}
	return WorkflowID(p.ID), runID, retried, nil
}

// namedAccounts reads the accounts a retry names, in their canonical
// spelling: nil when none is named; each must be one of p's, once.
func namedAccounts(p *Post, accountIDs []string) ([]string, error) {
	if len(accountIDs) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(accountIDs))
	for i, raw := range accountIDs {
		id, err := ids.Parse(raw)
		if err != nil {
			return nil, &InvalidError{Kind: Malformed, Code: "invalid_id", Message: fmt.Sprintf("accounts[%d] is not an account id (24 hex digits).", i)}
		}
		if slices.Contains(out, id) {
			return nil, invalid("duplicate_account", "Account %s is listed twice.", id)
		}
		if !slices.Contains(p.SocialAccountIDs, id) {
			return nil, invalid("account_not_on_post", "Account %s is not one the post goes to.", id)
		}
		out = append(out, id)
	}
	return out, nil
}
