package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/postflow/postflow/webhooks"
)

// DeliverWebhookInput starts the delivery of one event to one endpoint:
// ids only, so no payload, URL or secret enters the history.
type DeliverWebhookInput struct {
	EventID    string
	EndpointID string
	// Redelivery: started on request (POST .../redeliver), not by the
	// event.
	Redelivery bool `json:",omitempty"`
}

// DeliverWebhookResult is how a delivery ended.
type DeliverWebhookResult struct {
	// Status: delivered, stopped (the endpoint was deleted or disabled,
	// or the event is gone) or failed (the schedule ran out).
	Status   string
	Attempts int
}

// AttemptWebhookActivity is the name of one delivery attempt
// (webhooks.Deliverer.Attempt).
const AttemptWebhookActivity = "AttemptWebhook"

// DeliverWebhookWorkflowID is the id of the delivery of eventID to
// endpointID: started with a reuse policy that refuses duplicates, so an
// event is never sent by two runs.
func DeliverWebhookWorkflowID(eventID, endpointID string) string {
	return "webhook:" + eventID + ":" + endpointID
}

// RedeliverWebhookWorkflowID is the id of a redelivery on request: one
// runs at a time per event and endpoint.
func RedeliverWebhookWorkflowID(eventID, endpointID string) string {
	return "webhook-redelivery:" + eventID + ":" + endpointID
}

// webhookAttemptRetry retries an attempt only for PostFlow's own failures
// (its store): the endpoint's failures are results, not errors, and wait
// for the schedule's next timer.
var webhookAttemptRetry = &temporal.RetryPolicy{
	InitialInterval:    time.Second,
	BackoffCoefficient: 2,
	MaximumInterval:    30 * time.Second,
	MaximumAttempts:    3,
}

// DeliverWebhook sends an event to an endpoint until it answers 2xx,
// following webhooks.RetrySchedule (about a day) with durable timers
// between attempts, which survive restarts of the API and the worker. It
// stops early when the endpoint is deleted or disabled (by its owner, or
// by the attempt that found it failing for too long).
func DeliverWebhook(ctx workflow.Context, in DeliverWebhookInput) (*DeliverWebhookResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// The request's own timeout is webhooks.AttemptTimeout; the rest
		// is reading and writing PostFlow's store.
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         webhookAttemptRetry,
	})
	schedule := webhooks.RetrySchedule
	for attempt := 1; ; attempt++ {
		ai := webhooks.AttemptInput{EventID: in.EventID, EndpointID: in.EndpointID, Attempt: attempt, Redelivery: in.Redelivery}
		if attempt <= len(schedule) {
			ai.NextAttemptIn = schedule[attempt-1]
		}
		var out webhooks.AttemptOutcome
		if err := workflow.ExecuteActivity(ctx, AttemptWebhookActivity, ai).Get(ctx, &out); err != nil {
			// PostFlow's store failed this attempt: it counts as one,
			// and the schedule goes on.
			workflow.GetLogger(ctx).Warn("Webhook attempt failed on PostFlow's side", "Attempt", attempt, "Error", err)
		}
		switch {
		case out.Delivered:
			return &DeliverWebhookResult{Status: "delivered", Attempts: attempt}, nil
		case out.Stop:
			return &DeliverWebhookResult{Status: "stopped", Attempts: attempt}, nil
		case attempt > len(schedule):
			return &DeliverWebhookResult{Status: "failed", Attempts: attempt}, nil
		}
		if err := workflow.Sleep(ctx, schedule[attempt-1]); err != nil {
			return nil, err
		}
	}
}
