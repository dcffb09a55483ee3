package posts

import (
	"context"
	"errors"
	"time"

	"github.com/postflow/postflow/webhooks"
)

// EventData is the "data" of a post.* webhook event: the post and every
// account's result, as GET /posts/{id} answers them.
type EventData struct {
	Post    *Post    `json:"post"`
	Results []Result `json:"results"`
}

// EventType is the webhook event a post in its final state announces:
// published everywhere, on some accounts only, on none with some outcome
// unknown (the network may hold it: check before publishing again), on
// none, or cancelled. "" for a post that is not in a final state.
func EventType(p *Post, results []Result) string {
	var published, unknown int
	for _, r := range results {
		switch r.Status {
		case ResultPublished:
			published++
		case ResultUnknown:
			unknown++
		}
	}
	switch {
	case p.Status == StatusPublished:
		return webhooks.PostPublished
	case p.Status == StatusCancelled:
		return webhooks.PostCancelled
	case p.Status != StatusFailed:
		return ""
	case published > 0:
		return webhooks.PostPartiallyPublished
	case unknown > 0:
		return webhooks.PostOutcomeUnknown
	default:
		return webhooks.PostFailed
	}
}

// NewEvent is the event p's final state announces (EventType; nil if
// none), at `at`. Its id is derived from the post, the type and run, the
// run that decided the state (a publish run's id; "" for a cancel), so
// that the same decision announced again is the same event.
func NewEvent(p *Post, results []Result, at time.Time, run string) (*webhooks.Event, error) {
	typ := EventType(p, results)
	if typ == "" {
		return nil, nil
	}
	if results == nil {
		results = []Result{}
	}
	return webhooks.NewEvent(p.OrganizationID, typ, at, EventData{Post: p, Results: results}, p.ID, run)
}

// Announce emits the event of post id's final state (NewEvent) to sink,
// reading the post and its results from store; nothing if sink is nil or
// the post is gone or not final.
func Announce(ctx context.Context, store Store, sink webhooks.Sink, id string, at time.Time, run string) error {
	if sink == nil {
		return nil
	}
	p, err := store.GetByID(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	results, err := store.Results(ctx, p)
	if err != nil {
		return err
	}
	ev, err := NewEvent(p, results, at, run)
	if err != nil || ev == nil {
		return err
	}
	return sink.Emit(ctx, ev)
}
