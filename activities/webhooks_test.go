package activities_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/activities"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/webhooks/webhookstest"
	"github.com/postflow/postflow/workflows"
)

// FinishPost announces the post's final state with every account's
// result; run again (a retry), it announces the same event (same id), so
// receivers and the delivery's workflow id de-duplicate it.
func TestFinishPostAnnouncesTheOutcome(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sink := &webhookstest.Recorder{}
	acts := w.tw.Activities()
	acts.Events = sink
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts.Register(env)
	for _, tt := range []struct {
		result posts.ResultStatus
		want   string
	}{
		{posts.ResultPublished, webhooks.PostPublished},
		{posts.ResultFailed, webhooks.PostFailed},
		{posts.ResultUnknown, webhooks.PostOutcomeUnknown},
	} {
		t.Run(string(tt.result), func(t *testing.T) {
			p := w.post(t, "finish "+string(tt.result), posts.StatusPublishing)
			now := time.Now().UTC()
			r := &posts.Result{PostID: p.ID, SocialAccountID: w.account.ID, Status: tt.result, ErrorCode: "SOME_CODE", ErrorMessage: "why"}
			if tt.result == posts.ResultPublished {
				r.PlatformPostID, r.PublishedAt, r.ErrorCode, r.ErrorMessage = "urn:li:share:1", &now, "", ""
			}
			if err := w.store.Posts().SaveResult(ctx, r); err != nil {
				t.Fatal(err)
			}
			sink.Reset()
			for range 2 {
				if _, err := env.ExecuteActivity(workflows.FinishPostActivity, workflows.FinishInput{PostID: p.ID}); err != nil {
					t.Fatal(err)
				}
			}
			if len(sink.Events()) != 2 || sink.Events()[0].ID != sink.Events()[1].ID {
				t.Fatalf("events %v, want the same one twice", sink.Events())
			}
			ev := sink.Events()[0]
			if ev.Type != tt.want || ev.OrganizationID != p.OrganizationID {
				t.Errorf("event %s for %s, want %s", ev.Type, ev.OrganizationID, tt.want)
			}
			for _, part := range []string{`"id":"` + p.ID + `"`, `"socialAccountId":"` + w.account.ID + `"`, `"status":"` + string(tt.result) + `"`} {
				if !bytes.Contains(ev.Body, []byte(part)) {
					t.Errorf("body %s lacks %s", ev.Body, part)
				}
			}
		})
	}
}

// deliveryWorld runs DeliverWebhook in Temporal's test environment (its
// timers skip ahead) against a real store and an HTTP receiver that fails
// its first `failures` requests.
type deliveryWorld struct {
	env      *testsuite.TestWorkflowEnvironment
	store    webhooks.Store
	svc      *webhooks.Service
	requests atomic.Int32
	ids      sync.Map
	ev       *webhooks.Event
	endpoint *webhooks.Endpoint
}

func newDeliveryWorld(t *testing.T, failures int32, policy webhooks.DisablePolicy) *deliveryWorld {
	t.Helper()
	dw := &deliveryWorld{store: mongotest.Store(t).Webhooks()}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := dw.requests.Add(1)
		dw.ids.Store(r.Header.Get("webhook-id"), true)
		if n <= failures {
			rw.WriteHeader(http.StatusBadGateway)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	cipher, _ := tokencipher.New(bytes.Repeat([]byte{3}, 32))
	dw.svc = webhooks.NewService(dw.store, cipher, netguard.Policy{AllowLocal: true}, nil)
	var err error
	if dw.endpoint, _, err = dw.svc.Create(context.Background(), "org-1", webhooks.Input{URL: &srv.URL}); err != nil {
		t.Fatal(err)
	}
	dw.ev, _ = webhooks.NewEvent("org-1", webhooks.PostPublished, time.Now(), "data", "post-1", "run-1")
	if _, err := dw.store.SaveEvent(context.Background(), dw.ev); err != nil {
		t.Fatal(err)
	}
	var suite testsuite.WorkflowTestSuite
	dw.env = suite.NewTestWorkflowEnvironment()
	// The activities do real FerretDB and HTTP I/O: the SDK's 3 s wall-clock
	// idle timeout is too short for them on a loaded machine.
	dw.env.SetTestTimeout(time.Minute)
	dw.env.RegisterWorkflow(workflows.DeliverWebhook)
	acts := &activities.Activities{Webhooks: &webhooks.Deliverer{Store: dw.store, Sealer: cipher, Disable: policy,
		Client: netguard.Policy{AllowLocal: true}.Client(webhooks.AttemptTimeout)}}
	dw.env.RegisterActivityWithOptions(acts.AttemptWebhook, activity.RegisterOptions{Name: workflows.AttemptWebhookActivity})
	return dw
}

func (dw *deliveryWorld) run(t *testing.T) workflows.DeliverWebhookResult {
	t.Helper()
	dw.env.ExecuteWorkflow(workflows.DeliverWebhook, workflows.DeliverWebhookInput{EventID: dw.ev.ID, EndpointID: dw.endpoint.ID})
	if !dw.env.IsWorkflowCompleted() || dw.env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed %v, %v", dw.env.IsWorkflowCompleted(), dw.env.GetWorkflowError())
	}
	var res workflows.DeliverWebhookResult
	if err := dw.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

// A receiver that fails, then recovers, gets the event once it answers:
// every attempt with the same webhook-id, each recorded.
func TestDeliveryRetriesUntilTheReceiverRecovers(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failures int32
		policy   webhooks.DisablePolicy
		want     workflows.DeliverWebhookResult
	}{
		{"at once", 0, webhooks.DefaultDisablePolicy, workflows.DeliverWebhookResult{Status: "delivered", Attempts: 1}},
		{"fails twice, then recovers", 2, webhooks.DefaultDisablePolicy, workflows.DeliverWebhookResult{Status: "delivered", Attempts: 3}},
		{"recovers at the last attempt", int32(len(webhooks.RetrySchedule)), webhooks.DisablePolicy{},
			workflows.DeliverWebhookResult{Status: "delivered", Attempts: len(webhooks.RetrySchedule) + 1}},
		{"never recovers", 100, webhooks.DisablePolicy{},
			workflows.DeliverWebhookResult{Status: "failed", Attempts: len(webhooks.RetrySchedule) + 1}},
		{"disabled on the way", 100, webhooks.DisablePolicy{MinFailures: 3},
			workflows.DeliverWebhookResult{Status: "stopped", Attempts: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dw := newDeliveryWorld(t, tt.failures, tt.policy)
			start := dw.env.Now()
			if got := dw.run(t); got != tt.want {
				t.Fatalf("result %+v, want %+v", got, tt.want)
			}
			// The attempts followed the schedule, on durable timers.
			var waited time.Duration
			for _, d := range webhooks.RetrySchedule[:tt.want.Attempts-1] {
				waited += d
			}
			if elapsed := dw.env.Now().Sub(start); elapsed < waited || elapsed > waited+time.Minute {
				t.Errorf("the delivery took %s of workflow time, want %s", elapsed, waited)
			}
			if n := int(dw.requests.Load()); n != tt.want.Attempts {
				t.Errorf("%d requests, want %d", n, tt.want.Attempts)
			}
			ids := 0
			dw.ids.Range(func(k, _ any) bool { ids++; return k == dw.ev.ID })
			if ids != 1 {
				t.Errorf("%d distinct webhook-ids, want 1 (%s)", ids, dw.ev.ID)
			}
			list, err := dw.svc.Deliveries(context.Background(), "org-1", dw.endpoint.ID, 100, "")
			if err != nil || len(list) != tt.want.Attempts || list[0].Attempt != tt.want.Attempts || list[0].Success != (tt.want.Status == "delivered") {
				t.Errorf("deliveries %+v, %v", list, err)
			}
		})
	}
}
