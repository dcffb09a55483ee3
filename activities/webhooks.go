package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks"
)

// announce emits the event of the post's final state (posts.Announce),
// identified by the run that decided it: FinishPost retried, or run again
// after a worker died, announces the same event, which is delivered once.
//
// A failure is logged at ERROR, not returned: the post's state is
// recorded, and failing the bookkeeping for a notification would fail a
// PublishPost run whose outcome is known (its commands are frozen since
// v0.1.0, so it cannot wait and try again itself).
func (a *Activities) announce(ctx context.Context, postID string) {
	if a.Events == nil {
		return
	}
	run := activity.GetInfo(ctx).WorkflowExecution.RunID
	if err := posts.Announce(ctx, a.Posts, a.Events, postID, a.now(), run); err != nil {
		activity.GetLogger(ctx).Error("Could not announce the post's final state to its webhooks", "PostID", postID, "Error", err)
	}
}

// AttemptWebhook makes one attempt of a webhook delivery
// (webhooks.Deliverer.Attempt): ids in, an outcome out, nothing of the
// event, the URL or the secrets in Temporal's history.
func (a *Activities) AttemptWebhook(ctx context.Context, in webhooks.AttemptInput) (*webhooks.AttemptOutcome, error) {
	return a.Webhooks.Attempt(ctx, in)
}
