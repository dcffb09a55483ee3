package activities_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/workflows"
)

// postToAll stores a post with status to every one of accounts, as an
// earlier run left it: with a failure reason when failed.
func (w *world) postToAll(t *testing.T, content string, status posts.Status, accounts ...*connections.Account) *posts.Post {
	t.Helper()
	ctx := context.Background()
	p := w.postTo(t, content, status, accounts[0])
	for _, a := range accounts[1:] {
		p.SocialAccountIDs = append(p.SocialAccountIDs, a.ID)
	}
	if _, err := w.store.Posts().Update(ctx, p, status); err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) start(t *testing.T, p *posts.Post) workflows.StartResult {
	t.Helper()
	v, err := w.env.ExecuteActivity(workflows.StartPublishingActivity, workflows.StartInput{PostID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	var r workflows.StartResult
	if err := v.Get(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func refIDs(refs []workflows.AccountRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.ID)
	}
	return out
}

// A run triggered for a post that ran before publishes only to the
// accounts whose result the trigger forgot (and those with no final
// result): it leaves out the published, the failed and the unknown ones,
// so a retry of some accounts touches no other. FinishPost still judges
// the post on every account. An operator's re-run of a failed post (a
// reset) goes to every account, as before.
func TestARunLeavesOutFinalResults(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	failed, published, unknown, pending, none := w.connectSandbox(t, "Failed"), w.connectSandbox(t, "Published"),
		w.connectSandbox(t, "Unknown"), w.connectSandbox(t, "Pending"), w.connectSandbox(t, "None")
	all := []*connections.Account{failed, published, unknown, pending, none}
	at := time.Now().UTC().Truncate(time.Millisecond)
	prepare := func(t *testing.T, status posts.Status, ranBefore bool) *posts.Post {
		t.Helper()
		p := w.postToAll(t, "ran before "+t.Name(), posts.StatusPublishing, all...)
		for _, r := range []posts.Result{
			{SocialAccountID: failed.ID, Status: posts.ResultFailed, ErrorCode: "HTTP_422"},
			{SocialAccountID: published.ID, Status: posts.ResultPublished, PlatformPostID: "sbx-1", PublishedAt: &at},
			{SocialAccountID: unknown.ID, Status: posts.ResultUnknown, ErrorCode: posts.CodeOutcomeUnknown},
			{SocialAccountID: pending.ID, Status: posts.ResultPending, ErrorCode: "HTTP_503"},
		} {
			r.PostID = p.ID
			if err := w.store.Posts().SaveResult(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
		if ranBefore {
			if err := w.store.Posts().Finish(ctx, p.ID, posts.StatusFailed, &at, "3 of 5 accounts failed", "PARTIAL_FAILURE"); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := w.store.Posts().GetByID(ctx, p.ID)
		if _, err := w.store.Posts().SetStatus(ctx, got, status, got.Status); err != nil {
			t.Fatal(err)
		}
		got.Status = status
		return got
	}
	tests := []struct {
		name      string
		status    posts.Status
		ranBefore bool
		want      []*connections.Account
	}{
		{"triggered after a run", posts.StatusQueued, true, []*connections.Account{pending, none}},
		{"its activity retried after marking it publishing", posts.StatusPublishing, true, []*connections.Account{pending, none}},
		{"an operator's re-run of a failed post", posts.StatusFailed, true, all},
		{"a first run", posts.StatusQueued, false, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prepare(t, tt.status, tt.ranBefore)
			var want []string
			for _, a := range tt.want {
				want = append(want, a.ID)
			}
			if got := refIDs(w.start(t, p).Accounts); !slices.Equal(got, want) {
				t.Errorf("the run goes to %v, want %v", got, want)
			}
		})
	}

	// The two accounts the run went to publish; FinishPost, told only of
	// theirs, reads the others': failed and unknown stand, so the post is
	// failed, counting all five.
	p := prepare(t, posts.StatusQueued, true)
	w.start(t, p)
	var outcomes []workflows.AccountOutcome
	for _, a := range []*connections.Account{pending, none} {
		out, err := w.publishTo(t, p, a.ID)
		if err != nil || out.Status != "published" {
			t.Fatalf("publish to %s: %+v, %v", a.DisplayName, out, err)
		}
		outcomes = append(outcomes, *out)
	}
	if _, err := w.env.ExecuteActivity(workflows.FinishPostActivity, workflows.FinishInput{PostID: p.ID, Outcomes: outcomes}); err != nil {
		t.Fatal(err)
	}
	got, _ := w.store.Posts().GetByID(ctx, p.ID)
	if got.Status != posts.StatusFailed || got.FailureCode != "PARTIAL_FAILURE" || !strings.Contains(got.FailureReason, "2 of 5 accounts not published: 1 failed, 1 unknown") {
		t.Errorf("finished as %s %s %q", got.Status, got.FailureCode, got.FailureReason)
	}
	for _, a := range []*connections.Account{failed, published, unknown} {
		if n := w.sandboxHolds(t, a.PlatformUserID, p.Content); n != 0 {
			t.Errorf("%s got the post %d times; the run left it out", a.DisplayName, n)
		}
	}
}
