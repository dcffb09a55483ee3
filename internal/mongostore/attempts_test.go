package mongostore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/postflow/postflow/posts"
)

// Attempts are kept per (post, account), oldest first, the last
// posts.MaxAttemptsKept of them, on the path the server takes ($slice on
// MongoDB, $pop after the push on FerretDB, which ignores $slice). They
// outlive a reset of the results, and go with the post.
func TestAttemptsAreCapped(t *testing.T) {
	store, ctx := postsStore(t, false), context.Background()
	post, err := store.Create(ctx, &posts.Post{OrganizationID: "org", Content: "x", SocialAccountIDs: []string{"a1", "a2"}, Status: posts.StatusFailed})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := store.Attempts(ctx, post.ID, "a1"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("before any: %v, %v; want an empty list", got, err)
	}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	total := posts.MaxAttemptsKept + 5
	for i := range total {
		until := at.Add(time.Duration(i)*time.Minute + 30*time.Second)
		a := posts.Attempt{At: at.Add(time.Duration(i) * time.Minute), Step: posts.StepPublish, Outcome: posts.OutcomeRefused,
			HTTPStatus: 429, Code: fmt.Sprintf("C%d", i), Message: "slow down", ErrorCategory: posts.CategoryRateLimited, WaitUntil: &until}
		if err := store.AppendAttempt(ctx, post.ID, "a1", a); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.AppendAttempt(ctx, post.ID, "a2", posts.Attempt{At: at, Step: posts.StepPublish, Outcome: posts.OutcomePublished, PlatformPostID: "p-1"}); err != nil {
		t.Fatal(err)
	}
	got, err := store.Attempts(ctx, post.ID, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != posts.MaxAttemptsKept {
		t.Fatalf("%d attempts kept, want %d", len(got), posts.MaxAttemptsKept)
	}
	first := got[0]
	if first.Code != "C5" || got[len(got)-1].Code != fmt.Sprintf("C%d", total-1) || !first.At.Equal(at.Add(5*time.Minute)) ||
		first.WaitUntil == nil || !first.WaitUntil.Equal(at.Add(5*time.Minute+30*time.Second)) ||
		first.HTTPStatus != 429 || first.ErrorCategory != posts.CategoryRateLimited || first.Outcome != posts.OutcomeRefused || first.Message != "slow down" {
		t.Errorf("kept %+v ... %+v; want the last %d, oldest first", first, got[len(got)-1], posts.MaxAttemptsKept)
	}
	if other, _ := store.Attempts(ctx, post.ID, "a2"); len(other) != 1 || other[0].PlatformPostID != "p-1" {
		t.Errorf("the other account's attempts: %+v", other)
	}

	if err := store.ResetResults(ctx, post); err != nil {
		t.Fatal(err)
	}
	if kept, _ := store.Attempts(ctx, post.ID, "a1"); len(kept) != posts.MaxAttemptsKept {
		t.Errorf("a reset left %d attempts, want them all", len(kept))
	}
	if err := store.Delete(ctx, "org", post.ID); err != nil {
		t.Fatal(err)
	}
	for _, acc := range []string{"a1", "a2"} {
		if left, _ := store.Attempts(ctx, post.ID, acc); len(left) != 0 {
			t.Errorf("a deleted post left %d attempts of %s", len(left), acc)
		}
	}
}
