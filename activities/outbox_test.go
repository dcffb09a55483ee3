package activities_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/webhooks/webhookstest"
	"github.com/postflow/postflow/workflows"
)

// An event that cannot be stored fails FinishPost, so that Temporal runs
// it again; the retry finishes the post the same way and stores the same
// event (same id). The branch that finishes a post published everywhere
// (finishIfLast) leaves it to FinishPost instead of losing the event.
func TestFinishingFailsUntilTheEventIsStored(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		branch bool // the publishing branch tries first (finishIfLast)
	}{
		{name: "FinishPost"},
		{name: "the last branch, then FinishPost", branch: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			sink := &webhookstest.Recorder{}
			sink.SetDown(true)
			acts := w.tw.Activities()
			acts.Events = sink
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			acts.Register(env)
			p := w.post(t, "outbox "+tt.name, posts.StatusPublishing)
			if tt.branch {
				v, err := env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: p.ID, AccountID: w.account.ID, FinishPost: true})
				if err != nil {
					t.Fatalf("PublishToAccount: %v (a published account must not fail for its event)", err)
				}
				var out workflows.AccountOutcome
				if err := v.Get(&out); err != nil || out.Status != "published" || out.FinishedPost {
					t.Fatalf("outcome %+v, %v; want published, the post left to FinishPost", out, err)
				}
			} else {
				now := time.Now().UTC()
				if err := w.store.Posts().SaveResult(ctx, &posts.Result{PostID: p.ID, SocialAccountID: w.account.ID, Status: posts.ResultPublished,
					PlatformPostID: "urn:li:share:1", PublishedAt: &now}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := env.ExecuteActivity(workflows.FinishPostActivity, workflows.FinishInput{PostID: p.ID}); err == nil {
				t.Fatal("FinishPost = nil with the event store down, want an error (Temporal retries)")
			}
			sink.SetDown(false)
			v, err := env.ExecuteActivity(workflows.FinishPostActivity, workflows.FinishInput{PostID: p.ID})
			if err != nil {
				t.Fatalf("FinishPost retried: %v", err)
			}
			var res workflows.FinishResult
			if err := v.Get(&res); err != nil || res.Status != string(posts.StatusPublished) {
				t.Fatalf("FinishPost = %+v, %v", res, err)
			}
			got, _ := w.store.Posts().GetByID(ctx, p.ID)
			if got.Status != posts.StatusPublished || len(sink.Events()) != 1 || sink.Events()[0].Type != webhooks.PostPublished {
				t.Fatalf("post %s, events %v; want published and one post.published", got.Status, sink.Events())
			}
			// The same run announcing again (a retry whose answer was
			// lost) makes the same event.
			if _, err := env.ExecuteActivity(workflows.FinishPostActivity, workflows.FinishInput{PostID: p.ID}); err != nil {
				t.Fatal(err)
			}
			if len(sink.Events()) != 2 || sink.Events()[1].ID != sink.Events()[0].ID {
				t.Errorf("events %v, want the same id twice", sink.Events())
			}
		})
	}
}

// resultReads counts the reads of a post's results (Store.Results), which
// only an event's data needs on the path of a post published everywhere.
type resultReads struct {
	posts.Store
	n atomic.Int32
}

func (r *resultReads) Results(ctx context.Context, p *posts.Post) ([]posts.Result, error) {
	r.n.Add(1)
	return r.Store.Results(ctx, p)
}

// The branch that finishes a post published everywhere asks the emitter
// first whether anyone wants post.published, and reads nothing more when
// nobody does: with an endpoint that wants it, the event is stored and
// its delivery started; with none, or one that wants other types only,
// nothing is stored and the results are not read. The post is finished
// either way.
func TestPublishedEventOnlyWhenWanted(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		events [][]string // one endpoint per entry, with its types
		want   int        // deliveries started
	}{
		{name: "no endpoint"},
		{name: "an endpoint for failures only", events: [][]string{{webhooks.PostFailed}}},
		{name: "an endpoint for every type and one for published", events: [][]string{{}, {webhooks.PostPublished}}, want: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			hooks := w.store.Webhooks()
			for _, types := range tt.events {
				now := time.Now().UTC()
				if err := hooks.CreateEndpoint(ctx, &webhooks.Endpoint{ID: hooks.NewID(), OrganizationID: w.account.OrganizationID,
					URL: "https://receiver.example/hook", Events: types, Enabled: true, Secret: "sealed", CreatedAt: now, UpdatedAt: now}); err != nil {
					t.Fatal(err)
				}
			}
			starter := &webhookstest.Starter{}
			acts := w.tw.Activities()
			acts.Events = &webhooks.Emitter{Store: hooks, Starter: starter}
			reads := &resultReads{Store: acts.Posts}
			acts.Posts = reads
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			acts.Register(env)
			p := w.post(t, "wanted "+tt.name, posts.StatusPublishing)
			v, err := env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: p.ID, AccountID: w.account.ID, FinishPost: true})
			if err != nil {
				t.Fatal(err)
			}
			var out workflows.AccountOutcome
			if err := v.Get(&out); err != nil || !out.FinishedPost {
				t.Fatalf("outcome %+v, %v; want the post finished", out, err)
			}
			if got := starter.Started(); len(got) != tt.want {
				t.Errorf("deliveries started %v, want %d", got, tt.want)
			}
			if n := reads.n.Load(); (n > 0) != (tt.want > 0) {
				t.Errorf("the results were read %d times, want %s", n, map[bool]string{true: "for the event", false: "not at all"}[tt.want > 0])
			}
		})
	}
}
