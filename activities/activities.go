// Package activities does the I/O of the publishing workflow: reading and
// writing posts and results, refreshing tokens and calling the platforms.
// Activities take ids and decrypt tokens themselves, and return only what
// is safe to keep in Temporal's history: statuses, platform ids, error
// codes and messages, never content or tokens. Each is idempotent: a retry
// or a reset never posts twice to an account whose result says published.
//
// One file per job: publish.go (PublishToAccount), doubt.go (an earlier
// attempt's result, duplicates, unknown outcomes), classify.go (a
// provider's error into an outcome or a retry), tokens.go
// (RefreshAccessToken), bookkeeping.go (the post's own status:
// StartPublishing, RecordPublishFailure, FinishPost), webhooks.go (the
// post's final state announced; AttemptWebhook for DeliverWebhook).
package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/metrics"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/workflows"
)

// AccountStore is what the activities need from the account store.
type AccountStore interface {
	GetByID(ctx context.Context, id string) (*connections.Account, error)
	// SamePlatformUser returns the ids of every account, in any
	// organization, of one platform user.
	SamePlatformUser(ctx context.Context, platform, platformUserID string) ([]string, error)
}

// TokenSource hands out valid access tokens (connections.Service).
type TokenSource interface {
	ValidAccessToken(ctx context.Context, accountID string) (string, *connections.Account, error)
	// RenewAccessToken refreshes a token the network refused before its
	// time, unless another has been stored since.
	RenewAccessToken(ctx context.Context, accountID, refused string) (string, *connections.Account, error)
	// Expire marks the account expired after the network refused to
	// publish as it for good (KindAuth), with the accounts that share
	// its fate: a member's pages, or a page's member when the token
	// itself was refused.
	Expire(ctx context.Context, accountID string, cause *providers.Error) error
}

// Activities holds the dependencies of the publishing activities.
type Activities struct {
	Posts     posts.Store
	Accounts  AccountStore
	Tokens    TokenSource
	Providers *providers.Registry
	// Media is the organizations' media library, where a post's images
	// are read; nil on a worker that publishes text only.
	Media MediaLibrary
	// Metrics counts results, finished posts, publish times and rate
	// limits; nil counts nothing.
	Metrics *metrics.Metrics
	// Events, if not nil, is told of each post that reaches its final
	// state (webhooks.go).
	Events webhooks.Sink
	// Webhooks, if not nil, makes the attempts of DeliverWebhook.
	Webhooks *webhooks.Deliverer
	Now      func() time.Time
}

// Register registers the activities under the names the workflow calls.
func (a *Activities) Register(w worker.ActivityRegistry) {
	w.RegisterActivityWithOptions(a.StartPublishing, activity.RegisterOptions{Name: workflows.StartPublishingActivity})
	w.RegisterActivityWithOptions(a.RefreshAccessToken, activity.RegisterOptions{Name: workflows.RefreshTokenActivity})
	w.RegisterActivityWithOptions(a.PublishToAccount, activity.RegisterOptions{Name: workflows.PublishToAccountActivity})
	w.RegisterActivityWithOptions(a.RecordPublishFailure, activity.RegisterOptions{Name: workflows.RecordFailureActivity})
	w.RegisterActivityWithOptions(a.FinishPost, activity.RegisterOptions{Name: workflows.FinishPostActivity})
	w.RegisterActivityWithOptions(a.UnpublishFromAccount, activity.RegisterOptions{Name: workflows.UnpublishFromAccountActivity})
	w.RegisterActivityWithOptions(a.RecordUnpublishFailure, activity.RegisterOptions{Name: workflows.RecordUnpublishFailureActivity})
	w.RegisterActivityWithOptions(a.FinishUnpublish, activity.RegisterOptions{Name: workflows.FinishUnpublishActivity})
	if a.Webhooks != nil {
		w.RegisterActivityWithOptions(a.AttemptWebhook, activity.RegisterOptions{Name: workflows.AttemptWebhookActivity})
	}
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
