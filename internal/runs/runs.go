// Package runs starts, signals and cancels PostFlow's workflows on a
// Temporal cluster: a post's publish and unpublish runs, and webhook
// deliveries. Workflow ids, reuse and conflict policies, search
// attributes and the Web UI's summaries are decided here, in one place.
package runs

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/workflows"
)

// Posts runs posts on the PublishPost and UnpublishPost workflows
// (posts.Runner, posts.UnpublishRunner).
type Posts struct {
	Client    client.Client
	TaskQueue string
	// Horizon is each run's RATE_LIMIT_HORIZON.
	Horizon time.Duration
}

// Start starts publish:{postId}, or returns the run already going: the
// conflict policy makes Temporal deduplicate, whoever triggers.
func (r *Posts) Start(ctx context.Context, p *posts.Post) (string, error) {
	run, err := r.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       posts.WorkflowID(p.ID),
		TaskQueue:                r.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.OrganizationIDAttr.ValueSet(p.OrganizationID),
			workflows.PostIDAttr.ValueSet(p.ID),
			workflows.StatusAttr.ValueSet(string(posts.StatusQueued)),
		),
		StaticSummary: runSummary(p),
	}, workflows.PublishPost, workflows.PublishPostInput{PostID: p.ID, RateLimitHorizon: r.Horizon})
	if err != nil {
		return "", fmt.Errorf("start publish run of %s: %w", p.ID, err)
	}
	return run.GetRunID(), nil
}

// runSummary is what the Web UI shows of a run at a glance: which post,
// to how many accounts, when. No content: it is user data.
func runSummary(p *posts.Post) string {
	when := "now"
	if p.ScheduledAt != nil {
		when = "at " + p.ScheduledAt.UTC().Format(time.RFC3339)
	}
	n := len(p.SocialAccountIDs)
	accounts := "accounts"
	if n == 1 {
		accounts = "account"
	}
	return fmt.Sprintf("Publish post %s to %d %s %s (organization %s)", p.ID, n, accounts, when, p.OrganizationID)
}

// Cancel cancels the post's run; a run that is not there is no error.
func (r *Posts) Cancel(ctx context.Context, postID string) error {
	err := r.Client.CancelWorkflow(ctx, posts.WorkflowID(postID), "")
	var notFound *serviceerror.NotFound
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("cancel publish run of %s: %w", postID, err)
	}
	return nil
}

// Reschedule signals the post's run to read its time again; a run that is
// not there has nothing to move.
func (r *Posts) Reschedule(ctx context.Context, postID string) error {
	err := r.Client.SignalWorkflow(ctx, posts.WorkflowID(postID), "", workflows.RescheduleSignal, nil)
	var notFound *serviceerror.NotFound
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("reschedule publish run of %s: %w", postID, err)
	}
	return nil
}

// StartUnpublish starts unpublish:{postId}. One runs at a time per post:
// while one runs, a second is refused (posts.ErrUnpublishRunning) rather
// than joined, since it may name other accounts. The SDK hides the
// server's refusal and hands back the running run unless
// WorkflowExecutionErrorWhenAlreadyStarted is set: the caller would be told
// accounts were being unpublished that no run deletes.
func (r *Posts) StartUnpublish(ctx context.Context, p *posts.Post, accountIDs []string) (string, error) {
	run, err := r.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       posts.UnpublishWorkflowID(p.ID),
		TaskQueue:                                r.TaskQueue,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.OrganizationIDAttr.ValueSet(p.OrganizationID),
			workflows.PostIDAttr.ValueSet(p.ID),
			workflows.StatusAttr.ValueSet("unpublishing"),
		),
		StaticSummary: fmt.Sprintf("Unpublish post %s from %d account(s) (organization %s)", p.ID, len(accountIDs), p.OrganizationID),
	}, workflows.UnpublishPost, workflows.UnpublishPostInput{PostID: p.ID, AccountIDs: accountIDs, RateLimitHorizon: r.Horizon})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return "", posts.ErrUnpublishRunning
	}
	if err != nil {
		return "", fmt.Errorf("start unpublish run of %s: %w", p.ID, err)
	}
	return run.GetRunID(), nil
}

// Unpublishing asks Temporal whether unpublish:{postId} has not ended;
// none ever started is not running.
func (r *Posts) Unpublishing(ctx context.Context, postID string) (bool, error) {
	desc, err := r.Client.DescribeWorkflowExecution(ctx, posts.UnpublishWorkflowID(postID), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe unpublish run of %s: %w", postID, err)
	}
	return desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// Deliveries runs webhook deliveries on the DeliverWebhook workflow
// (webhooks.Starter).
type Deliveries struct {
	Client    client.Client
	TaskQueue string
}

// StartDelivery starts webhook:{eventId}:{endpointId}. The reuse policy
// refuses a second run of the id, running or ended, so an event is never
// sent by two runs, whoever emits it again.
func (t *Deliveries) StartDelivery(ctx context.Context, eventID, endpointID string) error {
	_, err := t.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.DeliverWebhookWorkflowID(eventID, endpointID),
		TaskQueue:                t.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		StaticSummary:            fmt.Sprintf("Deliver event %s to webhook %s", eventID, endpointID),
	}, workflows.DeliverWebhook, workflows.DeliverWebhookInput{EventID: eventID, EndpointID: endpointID})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return fmt.Errorf("start delivery of %s to webhook %s: %w", eventID, endpointID, err)
	}
	return nil
}

// Redeliver starts webhook-redelivery:{eventId}:{endpointId}, or returns
// the one running.
func (t *Deliveries) Redeliver(ctx context.Context, eventID, endpointID string) (string, error) {
	id := workflows.RedeliverWebhookWorkflowID(eventID, endpointID)
	_, err := t.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                t.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Redeliver event %s to webhook %s", eventID, endpointID),
	}, workflows.DeliverWebhook, workflows.DeliverWebhookInput{EventID: eventID, EndpointID: endpointID, Redelivery: true})
	if err != nil {
		return "", fmt.Errorf("redeliver %s to webhook %s: %w", eventID, endpointID, err)
	}
	return id, nil
}
