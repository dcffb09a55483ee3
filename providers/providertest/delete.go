package providertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
)

// runDelete runs the rows of Provider.Delete: the post is gone after it, a
// second Delete (a retry after a lost answer) succeeds, another member's
// post stays, and the network's refusals map to the kinds of the error
// contract. A provider without Rules().Delete answers ErrCannotDelete.
func runDelete(t *testing.T, h Harness, payload func(string) providers.Payload) {
	ctx := context.Background()
	if !h.Provider.Rules().Delete {
		t.Run("delete without Rules().Delete", func(t *testing.T) {
			if err := h.Provider.Delete(ctx, h.Account(t), "any"); !errors.Is(err, providers.ErrCannotDelete) {
				t.Fatalf("Delete: %v; want ErrCannotDelete", err)
			}
		})
		return
	}
	publish := func(t *testing.T, a providers.Account, text string) string {
		t.Helper()
		pub, err := h.Provider.Publish(ctx, a, payload(text))
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		if got := h.Holds(t, a, text); got != 1 {
			t.Fatalf("the platform holds %d posts before the delete, want 1", got)
		}
		return pub.PlatformPostID
	}

	t.Run("delete: the post is gone, and a second delete succeeds", func(t *testing.T) {
		a := h.Account(t)
		text := "conformance: delete"
		id := publish(t, a, text)
		if err := h.Provider.Delete(ctx, a, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		// A real server may finish a delete in the background (GoToSocial
		// does): the post must be gone within seconds.
		got := h.Holds(t, a, text)
		for deadline := time.Now().Add(5 * time.Second); got != 0 && time.Now().Before(deadline); got = h.Holds(t, a, text) {
			time.Sleep(100 * time.Millisecond)
		}
		if got != 0 {
			t.Errorf("the platform holds %d posts 5 s after the delete, want 0", got)
		}
		// The retry after a lost answer: the post is already gone.
		if err := h.Provider.Delete(ctx, a, id); err != nil {
			t.Errorf("second Delete: %v; want success (already gone)", err)
		}
	})

	t.Run("delete of another member's post leaves it", func(t *testing.T) {
		if h.Other == nil {
			t.Skip("no account of another member")
		}
		a := h.Account(t)
		text := "conformance: delete of another's post"
		id := publish(t, a, text)
		err := h.Provider.Delete(ctx, h.Other(t), id)
		// Refused, or nil where the network answers another's post as an
		// absent one (Mastodon's 404): either way it must stay.
		var pe *providers.Error
		if err != nil && (!errors.As(err, &pe) || !pe.Refused() || pe.Code == "") {
			t.Errorf("Delete as another member: %#v; want a refusal with a code, or nil", err)
		}
		if got := h.Holds(t, a, text); got != 1 {
			t.Errorf("the platform holds %d posts of the owner after another's delete, want 1", got)
		}
	})

	for _, row := range []struct {
		answer string
		kind   providers.Kind
	}{
		{"429", providers.KindRateLimited},
		{"503", providers.KindRetryable},
		{"401", providers.KindAuth},
	} {
		t.Run("delete answer "+row.answer, func(t *testing.T) {
			if h.AnswerDelete == nil {
				t.Skip("the platform cannot be scripted")
			}
			a := h.Account(t)
			text := "conformance: delete answer " + row.answer
			id := publish(t, a, text)
			if !h.AnswerDelete(t, a, row.answer) {
				t.Skipf("the double cannot answer %s to a delete", row.answer)
			}
			err := h.Provider.Delete(ctx, a, id)
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != row.kind || pe.Provider != h.Provider.ID() || pe.Code == "" {
				t.Fatalf("error %#v; want kind %s with a code", err, row.kind)
			}
			if row.kind == providers.KindRateLimited && pe.RetryAfter <= 0 {
				t.Errorf("a rate limit with no wait: %v", pe)
			}
			if got := h.Holds(t, a, text); got != 1 {
				t.Errorf("the platform holds %d posts after a refused delete, want 1", got)
			}
		})
	}
}
