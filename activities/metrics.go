package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/workflows"
)

// Error categories of the results the activities write, for the metrics'
// category label: what the failure calls for, shared by every network.
const (
	CategoryAuthExpired         = "auth_expired"         // reconnect the account
	CategoryContentRejected     = "content_rejected"     // edit the post
	CategoryRateLimited         = "rate_limited"         // wait
	CategoryPlatformUnavailable = "platform_unavailable" // the network is down: wait, or check it
	CategoryOutcomeUnknown      = "outcome_unknown"      // check the network's feed
	CategoryCancelled           = "cancelled"            // the run was cancelled
	CategoryInternal            = "internal"             // PostFlow's side
)

// workflowFailureCategory is the category of a failure the workflow
// decided on (RecordPublishFailure): its code is the workflow's, or the
// network's code after the retries on an outage were used up.
func workflowFailureCategory(code string) string {
	switch code {
	case workflows.CodeCancelled:
		return CategoryCancelled
	case "RATE_LIMIT_HORIZON":
		return CategoryRateLimited
	case "PUBLISH_FAILED":
		return CategoryInternal
	default:
		return CategoryPlatformUnavailable
	}
}

// countResult counts a final result written for accountID, on its
// account's network (read here: results do not name it; "" if the read
// fails, which must not fail the activity).
func (a *Activities) countResult(ctx context.Context, accountID string, status posts.ResultStatus, category string) {
	if a.Metrics == nil {
		return
	}
	a.Metrics.Result(a.network(ctx, accountID), string(status), category)
}

// countPublished counts a published result, with the time this attempt
// took and, for a scheduled post, how long after scheduledAt it went out.
func (a *Activities) countPublished(ctx context.Context, accountID string, p *posts.Post, at time.Time) {
	if a.Metrics == nil {
		return
	}
	network := a.network(ctx, accountID)
	a.Metrics.Result(network, string(posts.ResultPublished), "")
	if activity.IsActivity(ctx) {
		a.Metrics.Published(network, at.Sub(activity.GetInfo(ctx).StartedTime))
	}
	if p != nil && p.ScheduledAt != nil {
		a.Metrics.Late(network, at.Sub(*p.ScheduledAt))
	}
}

func (a *Activities) network(ctx context.Context, accountID string) string {
	acc, err := a.Accounts.GetByID(ctx, accountID)
	if err != nil || acc == nil {
		return ""
	}
	return acc.Platform
}
