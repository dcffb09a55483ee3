package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/postflow/postflow/posts"
)

// countResult counts a final result written for accountID with its
// category (posts.Categorize), on its account's network: results do not
// name it, so it is read here ("" if the read fails, which must not fail
// the activity).
func (a *Activities) countResult(ctx context.Context, accountID string, status posts.ResultStatus, category posts.Category) {
	if a.Metrics == nil {
		return
	}
	a.Metrics.Result(a.network(ctx, accountID), string(status), string(category))
}

// countPublished counts a published result, with the time this attempt
// took and, for a scheduled post, how long after scheduledAt it went out.
func (a *Activities) countPublished(ctx context.Context, network string, p *posts.Post, at time.Time) {
	if a.Metrics == nil {
		return
	}
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
