// Package providertest is the conformance suite that every provider runs
// against its platform's double (or a real server): the rows of the shared
// error contract (contracts/platforms.md §5), the exactly-once lever the
// provider declares in its Rules, and its images (§8): uploaded, attached
// in order with their alt texts, reused after a lost answer, refused. A new network passes it before
// anything else is built on it.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
)

// Harness is one provider wired to a platform, with an account connected.
type Harness struct {
	Provider providers.Provider
	// Account returns an account whose token the platform takes, new for
	// each row, so that rows do not see each other's posts or switches.
	Account func(t *testing.T) providers.Account
	// Answer makes the platform's next publish call for a answer as named,
	// and reports false when the double cannot: "429" (rate limited),
	// "503" (refused, nothing made), "504" (no post made, answer 504),
	// "lost" (the post made, then the answer lost or a 504), "401" (the
	// token refused).
	Answer func(t *testing.T, a providers.Account, answer string) bool
	// Holds counts the posts with text that the platform holds for a.
	Holds func(t *testing.T, a providers.Account, text string) int
	// AnswerDelete makes the platform's next delete call for a answer as
	// named ("429", "503", "401", as Answer), and reports false when the
	// double cannot; nil skips those rows (a real server).
	AnswerDelete func(t *testing.T, a providers.Account, answer string) bool
	// Other returns an account of another member of the platform than
	// Account's, for the row that deletes someone else's post; nil skips it.
	Other func(t *testing.T) providers.Account
	// Media reads images back and scripts uploads for the media rows,
	// which run when the provider's MediaLimits take images; its zero
	// value runs them with the checks that need nothing more.
	Media MediaHarness
}

// Run runs every row of the contract against h: the text rows, then,
// when the network takes images, the media rows (runMedia).
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	rules := h.Provider.Rules()
	n := 0
	payload := func(text string) providers.Payload {
		n++
		// Created as the activity sets it: a record-key lever (Bluesky)
		// derives the key from it.
		return providers.Payload{Text: text, IdempotencyKey: fmt.Sprintf("providertest-%d-%d", time.Now().UnixNano(), n), Created: time.Now().UTC()}
	}

	t.Run("published: its id, and its URL from PostURL", func(t *testing.T) {
		a := h.Account(t)
		pub, err := h.Provider.Publish(ctx, a, payload("conformance: published"))
		if err != nil {
			t.Fatal(err)
		}
		if pub.PlatformPostID == "" || pub.URL == "" || pub.URL != h.Provider.PostURL(a, pub.PlatformPostID) {
			t.Errorf("published %+v; PostURL gives %q", pub, h.Provider.PostURL(a, pub.PlatformPostID))
		}
		if got := h.Holds(t, a, "conformance: published"); got != 1 {
			t.Errorf("the platform holds %d posts, want 1", got)
		}
	})

	for _, row := range []struct {
		answer  string
		kind    providers.Kind
		refused bool
		holds   int
	}{
		{"429", providers.KindRateLimited, true, 0},
		{"503", providers.KindRetryable, true, 0},
		{"504", providers.KindRetryable, false, 0},
		{"lost", providers.KindRetryable, false, 1},
		{"401", providers.KindAuth, true, 0},
	} {
		t.Run("answer "+row.answer, func(t *testing.T) {
			a := h.Account(t)
			if !h.Answer(t, a, row.answer) {
				t.Skipf("the double cannot answer %s", row.answer)
			}
			text := "conformance: answer " + row.answer
			_, err := h.Provider.Publish(ctx, a, payload(text))
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != row.kind || pe.Refused() != row.refused || pe.Provider != h.Provider.ID() || pe.Code == "" {
				t.Fatalf("error %#v; want kind %s, refused %v, with a code", err, row.kind, row.refused)
			}
			if row.kind == providers.KindRateLimited && pe.RetryAfter <= 0 {
				t.Errorf("a rate limit with no wait: %v", pe)
			}
			if got := h.Holds(t, a, text); got != row.holds {
				t.Errorf("the platform holds %d posts, want %d", got, row.holds)
			}
		})
	}

	// The exactly-once lever: a repeat of an attempt whose answer was lost
	// is answered with the post it made, never a second post. Where the
	// provider reads back (ReadBack), the repeat goes as the activity makes
	// it: Find first, and Publish only when the network holds nothing, so
	// a server that ignores the lever (GoToSocial and Idempotency-Key)
	// still ends with one post.
	t.Run("a repeat after a lost answer is answered with the first post", func(t *testing.T) {
		if rules.ExactlyOnce.ReconcileWindow() <= 0 {
			t.Skip("no lever declared: PostFlow never repeats an attempt in doubt")
		}
		a := h.Account(t)
		if !h.Answer(t, a, "lost") {
			t.Skip("the double cannot lose an answer")
		}
		text := "conformance: repeat after a lost answer"
		p := payload(text)
		since := time.Now().Add(-time.Minute)
		if _, err := h.Provider.Publish(ctx, a, p); err == nil {
			t.Fatal("the lost answer was no error")
		}
		var pub *providers.Published
		var err error
		if rules.ExactlyOnce.ReadBack {
			var found []providers.Published
			if found, err = h.Provider.Find(ctx, a, p, since); len(found) > 0 {
				pub = &found[0]
			}
		}
		if err == nil && pub == nil {
			pub, err = h.Provider.Publish(ctx, a, p)
		}
		var id string
		var pe *providers.Error
		switch {
		case err == nil:
			id = pub.PlatformPostID
		case errors.As(err, &pe) && pe.Kind == providers.KindDuplicate:
			id = pe.ExistingPostID
		default:
			t.Fatalf("repeat: %v", err)
		}
		if got := h.Holds(t, a, text); got != 1 || id == "" {
			t.Errorf("the platform holds %d posts and answered %q, want 1 and its id", got, id)
		}
	})

	// Read back: a provider that declares it finds the post an attempt
	// whose answer was lost made, and finds none for a publication that
	// made nothing; one that does not says so with ErrCannotFind.
	t.Run("find after a lost answer", func(t *testing.T) {
		a := h.Account(t)
		since := time.Now().Add(-time.Minute)
		none, err := h.Provider.Find(ctx, a, payload("conformance: never posted"), since)
		if !rules.ExactlyOnce.ReadBack {
			if !errors.Is(err, providers.ErrCannotFind) {
				t.Fatalf("Find without ReadBack: %v, %v; want ErrCannotFind", none, err)
			}
			return
		}
		if err != nil || len(none) != 0 {
			t.Fatalf("Find of a publication that made nothing: %+v, %v; want none", none, err)
		}
		if !h.Answer(t, a, "lost") {
			t.Skip("the double cannot lose an answer")
		}
		p := payload("conformance: find after a lost answer")
		if _, err := h.Provider.Publish(ctx, a, p); err == nil {
			t.Fatal("the lost answer was no error")
		}
		found, err := h.Provider.Find(ctx, a, p, since)
		if err != nil || len(found) != 1 || found[0].PlatformPostID == "" || found[0].URL == "" {
			t.Fatalf("Find after a lost answer: %+v, %v; want the post", found, err)
		}
	})

	// Too long: the provider's own limits refuse a text before the network
	// sees it, a refusal that names the unit. The double answers, so the
	// limits are known: none (unknown now, the network decides) is only
	// for a server that has never answered, and is a failure here.
	t.Run("text over the limit", func(t *testing.T) {
		a := h.Account(t)
		limits, err := h.Provider.TextLimits(ctx, a)
		if err != nil || len(limits) == 0 {
			t.Fatalf("TextLimits: %v, %v; want the limits of a double that answers", limits, err)
		}
		text := strings.Repeat("a", limits[0].Max+1)
		_, err = h.Provider.Publish(ctx, a, payload(text))
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != providers.KindInvalidContent || !pe.Refused() {
			t.Fatalf("publish of %d characters: %v; want invalid content", len(text), err)
		}
		if got := h.Holds(t, a, text); got != 0 {
			t.Errorf("the platform holds %d posts, want 0", got)
		}
	})

	// Another post's same text: a platform with duplicate detection refuses
	// it (a refusal: nothing made) and may name the post it holds; the
	// activity then decides whose it is (posts.JudgeDuplicate).
	t.Run("the same text as another post", func(t *testing.T) {
		if rules.ExactlyOnce.DuplicateWindow <= 0 {
			t.Skip("the platform detects no duplicates")
		}
		a := h.Account(t)
		text := "conformance: same text twice"
		first, err := h.Provider.Publish(ctx, a, payload(text))
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.Provider.Publish(ctx, a, payload(text))
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != providers.KindDuplicate || !pe.Refused() {
			t.Fatalf("second post: %v; want a duplicate refusal", err)
		}
		if pe.ExistingPostID != "" && pe.ExistingPostID != first.PlatformPostID {
			t.Errorf("duplicate of %q, want %q or none", pe.ExistingPostID, first.PlatformPostID)
		}
		if got := h.Holds(t, a, text); got != 1 {
			t.Errorf("the platform holds %d posts, want 1", got)
		}
	})

	runDelete(t, h, payload)
	runMedia(t, h, payload)
}
