package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks"
)

// announce emits the event of the post's final state (posts.Announce),
// identified by the run that decided it: FinishPost retried, or run again
// after a worker died, announces the same event, which is delivered once.
//
// It fails when the event could not be stored (webhooks.Emitter.Emit):
// the caller fails too, and Temporal runs it again, which finishes the
// post again (the same write) and stores the same event. Once stored, the
// event goes out even if Temporal cannot start its delivery now: the
// worker's sweeper starts it later (the outbox).
func (a *Activities) announce(ctx context.Context, postID string) error {
	if a.Events == nil {
		return nil
	}
	run := activity.GetInfo(ctx).WorkflowExecution.RunID
	if err := posts.Announce(ctx, a.Posts, a.Events, postID, a.now(), run); err != nil {
		return fmt.Errorf("post %s: store the event of its final state: %w", postID, err)
	}
	return nil
}

// announcePublished announces post p published (announce), unless no
// endpoint of its organization wants post.published: then the post and
// its results are not read again for an event nobody gets (the path of
// every post published to all its accounts).
func (a *Activities) announcePublished(ctx context.Context, p *posts.Post) error {
	if w, ok := a.Events.(webhooks.Wanter); ok {
		want, err := w.Wants(ctx, p.OrganizationID, webhooks.PostPublished)
		if err != nil {
			return fmt.Errorf("post %s: does anyone want post.published: %w", p.ID, err)
		}
		if !want {
			return nil
		}
	}
	return a.announce(ctx, p.ID)
}

// AttemptWebhook makes one attempt of a webhook delivery
// (webhooks.Deliverer.Attempt): ids in, an outcome out, nothing of the
// event, the URL or the secrets in Temporal's history.
func (a *Activities) AttemptWebhook(ctx context.Context, in webhooks.AttemptInput) (*webhooks.AttemptOutcome, error) {
	return a.Webhooks.Attempt(ctx, in)
}
