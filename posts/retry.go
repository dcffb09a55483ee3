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
// An unpublish run of the post does not stop it: a retry never touches a
// published account's result, which is all such a run deletes by.
func (s *Service) Retry(ctx context.Context, orgID, id string, accountIDs []string) (workflowID, runID string, retried []string, err error) {
	p, results, err := s.endedPost(ctx, orgID, id, accountIDs)
	if err != nil {
		return "", "", nil, err
	}
	// The default is every account that did not get the post and is not
	// in doubt: failed, or (after a run that could not record its end)
	// with no final result.
	status := func(id string) ResultStatus { return results[id].Status }
	retried, published, err := chooseAccounts(p, accountIDs,
		func(id string) bool { return status(id) != ResultPublished },
		func(id string) bool { return status(id) != ResultPublished && status(id) != ResultUnknown })
	if err != nil {
		return "", "", nil, err
	}
	if published != nil {
		return "", "", nil, &PublishedAccountsError{AccountIDs: published}
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

// chooseAccounts picks the accounts a retry or an unpublish of p acts on,
// in the post's order: those named (accountIDs, read by namedAccounts),
// of which those allowed refuses are listed in refused; or, when none is
// named, every account of p that byDefault keeps.
func chooseAccounts(p *Post, accountIDs []string, allowed, byDefault func(id string) bool) (chosen, refused []string, err error) {
	named, err := namedAccounts(p, accountIDs)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range named {
		if !allowed(id) {
			refused = append(refused, id)
		}
	}
	for _, id := range p.SocialAccountIDs {
		if named == nil && byDefault(id) || slices.Contains(named, id) {
			chosen = append(chosen, id)
		}
	}
	return chosen, refused, nil
}

// endedPost reads post id of orgID for a retry or an unpublish, which
// take only a post whose run ended (published or failed), and its results
// by account id. Errors: namedAccounts's for accountIDs, ErrNotFound,
// ErrConflict.
func (s *Service) endedPost(ctx context.Context, orgID, id string, accountIDs []string) (*Post, map[string]Result, error) {
	p, err := s.store.Get(ctx, orgID, id)
	if err != nil {
		return nil, nil, err
	}
	if _, err := namedAccounts(p, accountIDs); err != nil {
		return nil, nil, err
	}
	if p.Status != StatusFailed && p.Status != StatusPublished {
		return nil, nil, &StatusError{Status: p.Status, Want: []Status{StatusPublished, StatusFailed}}
	}
	list, err := s.store.Results(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	results := make(map[string]Result, len(list))
	for _, r := range list {
		results[r.SocialAccountID] = r
	}
	return p, results, nil
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
