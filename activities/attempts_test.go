package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/workflows"
)

// Each account's attempts are listed: a 503, a 429 with the time its wait
// ends, then the publish, with what the network answered.
func TestAttemptsAreRecorded(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	account := w.connectSandbox(t, "Tries")
	w.behave(t, account.PlatformUserID, `{"publishSequence":["unavailable","rate_limited"],"retryAfterSeconds":30}`)
	p := w.postTo(t, "third time lucky", posts.StatusPublishing, account)
	var out *workflows.AccountOutcome
	for calls := 0; out == nil; calls++ {
		if calls == 3 {
			t.Fatal("not published after 3 calls")
		}
		out, _ = w.publishTo(t, p, account.ID)
	}
	got, err := w.store.Posts().Attempts(ctx, p.ID, account.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d attempts: %+v", len(got), got)
	}
	unavailable, limited, published := got[0], got[1], got[2]
	if unavailable.Step != posts.StepPublish || unavailable.Outcome != posts.OutcomeRefused || unavailable.HTTPStatus != 503 ||
		unavailable.ErrorCategory != posts.CategoryPlatformUnavailable || unavailable.Code == "" || unavailable.WaitUntil != nil {
		t.Errorf("the 503: %+v", unavailable)
	}
	if limited.HTTPStatus != 429 || limited.ErrorCategory != posts.CategoryRateLimited || limited.WaitUntil == nil ||
		limited.WaitUntil.Sub(limited.At) < 30*time.Second || limited.WaitUntil.Sub(limited.At) > 35*time.Second {
		t.Errorf("the 429: %+v, want a wait of 30 s", limited)
	}
	if published.Outcome != posts.OutcomePublished || published.PlatformPostID != out.PlatformPostID || published.Code != "" ||
		published.At.Before(limited.At) || limited.At.Before(unavailable.At) {
		t.Errorf("the publish: %+v, outcome %+v", published, out)
	}
}
