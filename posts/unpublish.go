package posts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/webhooks"
)

// UnpublishStatus is where the removal of an account's published post
// from its network is.
type UnpublishStatus string

const (
	// UnpublishRunning: an unpublish run is deleting the post (its first
	// call made, or a rate limit or an outage being waited out).
	UnpublishRunning UnpublishStatus = "unpublishing"
	// Unpublished: the network no longer holds the post (it deleted it,
	// or had already).
	Unpublished UnpublishStatus = "unpublished"
	// UnpublishFailed: the network refused to delete the post (it is
	// still there), or did not answer until the run's retries ran out (it
	// may be; an unpublish again settles it).
	UnpublishFailed UnpublishStatus = "failed"
)

// Unpublish is the removal of a result's post from its network (POST
// /posts/{id}/unpublish): set on a published result only; the result's
// own status stays published, a record of what was published.
type Unpublish struct {
	Status UnpublishStatus `json:"status"`
	// UnpublishedAt is when the network answered that the post is gone.
	UnpublishedAt *time.Time `json:"unpublishedAt,omitempty"`
	// ErrorCode, ErrorMessage, ErrorCategory and ErrorAction say why the
	// last attempt failed, as a result's own do.
	ErrorCode     string   `json:"errorCode,omitempty"`
	ErrorMessage  string   `json:"errorMessage,omitempty"`
	ErrorCategory Category `json:"errorCategory,omitempty"`
	ErrorAction   Action   `json:"errorAction,omitempty"`
	// Attempts counts the network's delete calls of every unpublish of
	// the result; AttemptedAt is when the last began.
	Attempts    int        `json:"attempts"`
	AttemptedAt *time.Time `json:"attemptedAt,omitempty"`
}

// UnpublishWorkflowID is the id of a post's unpublish run: one runs at a
// time per post.
func UnpublishWorkflowID(postID string) string { return "unpublish:" + postID }

// UnpublishRunner starts unpublish runs (the UnpublishPost workflow).
type UnpublishRunner interface {
	// StartUnpublish starts the run that deletes p's posts of accountIDs
	// from their networks. ErrUnpublishRunning: one is running for p.
	StartUnpublish(ctx context.Context, p *Post, accountIDs []string) (runID string, err error)
	// Unpublishing reports whether the post's unpublish run has not
	// ended (started, and waiting for a worker counts).
	Unpublishing(ctx context.Context, postID string) (bool, error)
}

// refuseWhileUnpublishing is ErrUnpublishRunning while the post's
// unpublish run has not ended. Publishing a published post again then
// would forget the results the run deletes by (their platform post ids):
// the run would skip those accounts as never published, leaving their
// posts up, and the 202 that started it would have promised otherwise.
// The post's unpublish claim decides (see UnpublishClaim); this check,
// before it, still refuses a run started without one (by a version
// before claims, during a deploy).
func (s *Service) refuseWhileUnpublishing(ctx context.Context, postID string) error {
	if s.unpublisher == nil {
		return nil
	}
	running, err := s.unpublisher.Unpublishing(ctx, postID)
	if err != nil {
		return fmt.Errorf("post %s: is an unpublish running: %w", postID, err)
	}
	if running {
		return ErrUnpublishRunning
	}
	return nil
}

// ErrUnpublishRunning: an unpublish run of the post has not ended; its
// outcome is in GET /posts/{id} and a post.unpublished event.
var ErrUnpublishRunning = errors.New("posts: an unpublish of the post is running")

// ErrNothingToUnpublish: an unpublish named no account, and every account
// the post is published to is unpublished already (or none is).
var ErrNothingToUnpublish = errors.New("posts: the post is published to no account that is not unpublished")

// NotPublishedAccountsError: an unpublish named accounts the post is not
// published to (failed, unknown, never tried): nothing PostFlow knows of
// is there to delete. An outcome unknown is the author's to check.
type NotPublishedAccountsError struct {
	AccountIDs []string
}

func (e *NotPublishedAccountsError) Error() string {
	return "posts: not published to " + strings.Join(e.AccountIDs, ", ")
}

// Unpublish deletes the post from the networks of the accounts named, or,
// when none is named, of every account it is published to and not yet
// unpublished from, and from no other. It returns the run and the
// accounts, in the post's order. An account named again after it was
// unpublished stays so, without a call (a deleted post does not come
// back), so a repeated request ends the same.
//
// The post is claimed (UnpublishClaim) before the run starts, and read
// again once claimed: a publish again or a delete of the post arriving
// meanwhile is refused, or this is.
//
// Errors: a Malformed InvalidError (an id that is none), an Unacceptable
// one (account_not_on_post, duplicate_account, cannot_unpublish: the
// account's network deletes no posts), ErrNotFound, ErrConflict (the
// post's publish run has not ended), *NotPublishedAccountsError,
// ErrNothingToUnpublish, ErrUnpublishRunning.
func (s *Service) Unpublish(ctx context.Context, orgID, id string, accountIDs []string) (workflowID, runID string, chosen []string, err error) {
	if s.unpublisher == nil {
		return "", "", nil, errors.New("posts: no unpublish runner")
	}
	// Everything is checked before the claim, so a refused request
	// writes nothing; then again once claimed, on what the run will meet.
	p, chosen, err := s.unpublishable(ctx, orgID, id, accountIDs, nil)
	if err != nil {
		return "", "", nil, err
	}
	token, err := newClaimToken()
	if err != nil {
		return "", "", nil, err
	}
	claim := UnpublishClaim{Token: token, At: s.now().UTC()}
	if err := s.unclaimed(ctx, p.ID, func(takeOver string) error {
		return s.store.ClaimUnpublish(ctx, p.ID, claim, takeOver)
	}); err != nil {
		return "", "", nil, err
	}
	release := func(cause error) error {
		if err := s.store.ReleaseUnpublish(context.WithoutCancel(ctx), p.ID, token, ""); err != nil {
			return errors.Join(cause, fmt.Errorf("post %s: release its unpublish claim: %w", p.ID, err))
		}
		return cause
	}
	// The networks already checked are not asked again (an account's
	// network does not change); only accounts new to the choice are.
	if p, chosen, err = s.unpublishable(ctx, orgID, id, accountIDs, chosen); err != nil {
		return "", "", nil, release(err)
	}
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	runID, err = s.unpublisher.StartUnpublish(startCtx, p, chosen)
	uncertain := startCtx.Err() != nil
	cancel()
	switch {
	case err != nil && uncertain:
		// Out of time (or the request gone): the run may have started.
		// The claim stays, naming no run: it stands while a run of the
		// post goes, and is stale once none does (staleClaim).
		return "", "", nil, err
	case err != nil:
		return "", "", nil, release(err)
	}
	// The run is going whether or not the client still waits: its name
	// is written anyway, or its end (FinishUnpublish, by run id) would not
	// release the claim.
	if err := s.store.NameUnpublishRun(context.WithoutCancel(ctx), p.ID, token, runID); err != nil && s.logger != nil {
		// The run is going: the 202 stands. Its claim names no run, so
		// it stands while a run of the post goes, and is stale after.
		s.logger.WarnContext(ctx, "could not name the unpublish run in the post's claim", "post_id", p.ID, "run_id", runID, "error", err)
	}
	return UnpublishWorkflowID(p.ID), runID, chosen, nil
}

// unpublishable reads post id and chooses the accounts an unpublish of it
// acts on (Unpublish's errors but ErrUnpublishRunning); the networks of
// those in checked are known to delete posts already.
func (s *Service) unpublishable(ctx context.Context, orgID, id string, accountIDs, checked []string) (*Post, []string, error) {
	p, results, err := s.endedPost(ctx, orgID, id, accountIDs)
	if err != nil {
		return nil, nil, err
	}
	published := func(id string) bool {
		r, ok := results[id]
		return ok && r.Status == ResultPublished && r.PlatformPostID != ""
	}
	chosen, refused, err := chooseAccounts(p, accountIDs, published, func(id string) bool {
		u := results[id].Unpublish
		return published(id) && (u == nil || u.Status != Unpublished)
	})
	if err != nil {
		return nil, nil, err
	}
	if refused != nil {
		return nil, nil, &NotPublishedAccountsError{AccountIDs: refused}
	}
	if len(chosen) == 0 {
		return nil, nil, ErrNothingToUnpublish
	}
	for _, id := range chosen {
		if slices.Contains(checked, id) {
			continue
		}
		if err := s.canDelete(ctx, orgID, id); err != nil {
			return nil, nil, err
		}
	}
	return p, chosen, nil
}

// ReleaseUnpublishClaim clears the unpublish claim of run runID on post
// postID, if it holds it: the run's end (activities.FinishUnpublish).
func ReleaseUnpublishClaim(ctx context.Context, store Store, postID, runID string) error {
	if runID == "" {
		return errors.New("posts: release an unpublish claim: no run id")
	}
	if err := store.ReleaseUnpublish(ctx, postID, "", runID); err != nil {
		return fmt.Errorf("post %s: release the unpublish claim of run %s: %w", postID, runID, err)
	}
	return nil
}

// canDelete refuses an account whose network has no delete call. An
// account disconnected since, or a network this deployment no longer
// configures, is left to the run, whose result says so per account.
func (s *Service) canDelete(ctx context.Context, orgID, accountID string) error {
	acc, err := s.accounts.Get(ctx, orgID, accountID)
	if errors.Is(err, connections.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	prov, ok := s.providers.Get(acc.Platform)
	if ok && !prov.Rules().Delete {
		return invalid("cannot_unpublish", "Account %s is on %s, which offers no way to delete a post; delete it there by hand.", accountID, prov.Name())
	}
	return nil
}

// UnpublishedEventData is the "data" of a post.unpublished event: the
// post, every account's result (whose unpublish says how each ended), and
// the accounts the run unpublished from.
type UnpublishedEventData struct {
	Post    *Post    `json:"post"`
	Results []Result `json:"results"`
	// Accounts are the accounts the run was asked to unpublish from, in
	// the post's order; results of others may hold an earlier run's
	// unpublish.
	Accounts []string `json:"accounts"`
}

// NewUnpublishedEvent is the post.unpublished event of the unpublish run
// of p from accounts that ended. Its id is derived from the post and the
// run, so the run's end announced again is the same event.
func NewUnpublishedEvent(p *Post, results []Result, accounts []string, at time.Time, run string) (*webhooks.Event, error) {
	if results == nil {
		results = []Result{}
	}
	if accounts == nil {
		accounts = []string{}
	}
	return webhooks.NewEvent(p.OrganizationID, webhooks.PostUnpublished, at, UnpublishedEventData{Post: p, Results: results, Accounts: accounts}, p.ID, run)
}
