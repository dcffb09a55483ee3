package posts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// UnpublishClaim is the mark an unpublish puts on its post, in one atomic
// write with the check of the post's status, before it starts its run:
// publishing the post again (which forgets the platform post ids the run
// deletes by) and deleting it (whose run would have no post left) check
// it in their own atomic writes, so of an unpublish and one of those
// arriving together exactly one goes ahead. Asking Temporal whether a run
// is going, then acting, let both through.
//
// The run's end (the FinishUnpublish activity) clears it, as does the
// unpublish request whose start failed. A claim left behind (a run
// terminated in the Web UI, or failed, runs no FinishUnpublish; a process
// that died after claiming) is stale once the run it names is not running
// (Service.staleClaim), and the next request takes it over.
type UnpublishClaim struct {
	// Token names the request that claimed: random hex.
	Token string
	// RunID is the run of UnpublishWorkflowID once started; "" until the
	// request names it.
	RunID string
	// At is when the claim was made, UTC.
	At time.Time
}

// ClaimedError: the post holds an unpublish claim, Claim, that the write
// did not name; the service decides whether it is stale.
type ClaimedError struct {
	Claim UnpublishClaim
}

func (e *ClaimedError) Error() string {
	return "posts: the post is claimed by an unpublish (" + e.Claim.Token + ")"
}

const (
	// claimGrace is how long a claim that names no run yet is taken to
	// be a start in flight. Longer than startTimeout, so the request
	// that claimed has either named its run or released by then.
	claimGrace = 2 * time.Minute
	// startTimeout bounds the start of an unpublish run.
	startTimeout = 30 * time.Second
)

// newClaimToken is 16 random bytes in hex.
func newClaimToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("posts: claim token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// staleClaim reports whether c no longer stands for a running unpublish:
// no unpublish run of the post is going (the one it names ended, failed,
// or was terminated in the Web UI), and, if it names none, claimGrace has
// passed. The post's latest run is asked rather than the run named: one
// run of a workflow id is open at a time, so the named one is not running
// if the latest is not, and a run an operator reset (a new run of the
// id, going on with the claim) keeps the claim standing.
func (s *Service) staleClaim(ctx context.Context, postID string, c UnpublishClaim) (bool, error) {
	if s.unpublisher == nil {
		return false, nil // no way to tell: the claim stands
	}
	if c.RunID == "" && s.now().Sub(c.At) < claimGrace {
		return false, nil
	}
	running, err := s.unpublisher.Unpublishing(ctx, postID)
	if err != nil {
		return false, fmt.Errorf("post %s: is its unpublish run going: %w", postID, err)
	}
	return !running, nil
}

// unclaimed runs write, a store write conditional on the post's
// unpublish claim (takeOver: the stale claim's token it may replace),
// and again over a stale claim it met. ErrUnpublishRunning: a claim that
// stands; write's other errors as they are.
func (s *Service) unclaimed(ctx context.Context, postID string, write func(takeOver string) error) error {
	takeOver := ""
	for range 3 {
		err := write(takeOver)
		var held *ClaimedError
		if !errors.As(err, &held) {
			return err
		}
		if held.Claim.Token == takeOver {
			return ErrUnpublishRunning // the store's answer did not move
		}
		stale, err := s.staleClaim(ctx, postID, held.Claim)
		if err != nil {
			return err
		}
		if !stale {
			return ErrUnpublishRunning
		}
		takeOver = held.Claim.Token
	}
	// Three claims in a row, each stale when read: another request is
	// taking them over as fast.
	return ErrUnpublishRunning
}
