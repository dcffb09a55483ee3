package activities_test

import (
	"context"
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
