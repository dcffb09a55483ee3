package posts

import (
	"context"
	"fmt"
	"time"

	"github.com/postflow/postflow/providers"
)

// Attempt is one call to a network for one account of a post, as
// GET /posts/{id}?include=attempts lists it: when, what was asked, and what
// the network answered. It holds the network's code and message (which
// providers build never from a token) and no content.
type Attempt struct {
	// At is when the call began (UTC).
	At time.Time `json:"at"`
	// Step is what was asked: publish (the post), upload (an image of
	// it), token (a valid access token for the account, refreshed if due)
	// or delete (the published post, for an unpublish).
	Step AttemptStep `json:"step"`
	// Outcome is what the answer means: published; deleted (an
	// unpublish's delete); refused (the network made nothing, such as a
	// 429, a 503 or a 4xx); or in_doubt (no answer, a 500, 502 or 504:
	// the call may have acted).
	Outcome AttemptOutcome `json:"outcome"`
	// HTTPStatus is the network's HTTP status; 0 when none came.
	HTTPStatus int `json:"httpStatus,omitempty"`
	// Code and Message are the network's (providers.Error), for a
	// failure.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// ErrorCategory is the failure's category (Categorize).
	ErrorCategory Category `json:"errorCategory,omitempty"`
	// WaitUntil, for a rate limit, is when the network said to call again:
	// the run waits until then.
	WaitUntil *time.Time `json:"waitUntil,omitempty"`
	// PlatformPostID is the network's post, for published.
	PlatformPostID string `json:"platformPostId,omitempty"`
}

// AttemptStep is what a call to a network asked.
type AttemptStep string

const (
	StepPublish AttemptStep = "publish"
	StepUpload  AttemptStep = "upload"
	StepToken   AttemptStep = "token"
	// StepDelete: a delete of the published post (an unpublish).
	StepDelete AttemptStep = "delete"
)

// AttemptOutcome is what a network's answer to a call means.
type AttemptOutcome string

const (
	OutcomePublished AttemptOutcome = "published"
	OutcomeRefused   AttemptOutcome = "refused"
	OutcomeInDoubt   AttemptOutcome = "in_doubt"
	// OutcomeDeleted: the network no longer holds the post (StepDelete).
	OutcomeDeleted AttemptOutcome = "deleted"
)

// MaxAttemptsKept bounds the attempts kept per (post, account): enough
// for a day of rate limits and outages, not a document that grows without
// end.
const MaxAttemptsKept = 50

// FailedAttempt is the attempt of step, begun at `at`, that the network's
// answer e, which came at answered, ended.
func FailedAttempt(at, answered time.Time, step AttemptStep, e *providers.Error) Attempt {
	a := Attempt{At: at.UTC(), Step: step, Outcome: OutcomeInDoubt, HTTPStatus: e.Status, Code: e.Code, Message: e.Message,
		ErrorCategory: Categorize(Cause{Kind: e.Kind, Code: e.Code, Upload: step == StepUpload, Delete: step == StepDelete})}
	if e.Refused() {
		a.Outcome = OutcomeRefused
	}
	if e.Kind == providers.KindRateLimited {
		until := answered.Add(e.RetryAfter).UTC()
		a.WaitUntil = &until
	}
	return a
}

// Attempts returns the attempts of each of p's accounts, by account id,
// oldest first; an account without any has an empty list. p is a post the
// caller may read (Get).
func (s *Service) Attempts(ctx context.Context, p *Post) (map[string][]Attempt, error) {
	out := make(map[string][]Attempt, len(p.SocialAccountIDs))
	for _, id := range p.SocialAccountIDs {
		list, err := s.store.Attempts(ctx, p.ID, id)
		if err != nil {
			return nil, fmt.Errorf("attempts of post %s, account %s: %w", p.ID, id, err)
		}
		out[id] = list
	}
	return out, nil
}
