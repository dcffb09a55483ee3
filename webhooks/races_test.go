package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/postflow/postflow/webhooks"
)

// Rotations of one endpoint's secret at once (different Idempotency-Keys),
// many rounds: none hands out a secret that is lost. Each secret returned
// is the one in force, or the one a later rotation replaced (its
// previous secret, which still signs); a loser gets ErrSecretRotated.
func TestConcurrentRotations(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	cipher := w.cipher
	e, _ := w.endpoint(t)
	open := func(sealed, field string) string {
		t.Helper()
		s, err := cipher.Open(sealed, webhooks.SecretBinding(e.ID, field))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	lost := 0
	for round := range 15 {
		type rotation struct {
			secret, replaced string
		}
		var (
			mu   sync.Mutex
			won  []rotation
			wg   sync.WaitGroup
			errs []error
		)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rotated, secret, err := w.svc.RotateSecret(ctx, "org-1", e.ID)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				won = append(won, rotation{secret: secret, replaced: open(rotated.PreviousSecret, "previousSecret")})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if !errors.Is(err, webhooks.ErrSecretRotated) {
				t.Fatalf("round %d: a rotation failed with %v", round, err)
			}
		}
		if len(won) == 0 {
			t.Fatalf("round %d: no rotation went ahead (%v)", round, errs)
		}
		stored, err := w.store.Endpoint(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		current := open(stored.Secret, "secret")
		for _, r := range won {
			if r.secret != current && !slices.ContainsFunc(won, func(o rotation) bool { return o.replaced == r.secret }) {
				lost++
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d rotations handed out a secret that neither signs nor was replaced by a later rotation", lost)
	}
}

// Creates at once for an organization near MaxEndpoints, many rounds:
// the organization never ends up over it, each create that answered is
// kept, and each refused is too_many_webhooks or, under the limit,
// ErrCreateContended; clients that retry that fill the organization to
// the limit exactly (refusing "at most 20" while it held fewer told them
// not to).
func TestConcurrentCreatesHoldTheLimit(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	u := w.srv.URL + "/hooks"
	for round := range 4 {
		org := fmt.Sprintf("org-limit-%d", round)
		for range webhooks.MaxEndpoints - 2 {
			if _, _, err := w.svc.Create(ctx, org, webhooks.Input{URL: &u}); err != nil {
				t.Fatal(err)
			}
		}
		var (
			mu      sync.Mutex
			created []string
			wg      sync.WaitGroup
		)
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e, _, err := w.svc.Create(ctx, org, webhooks.Input{URL: &u})
				for try := 0; errors.Is(err, webhooks.ErrCreateContended) && try < 50; try++ {
					e, _, err = w.svc.Create(ctx, org, webhooks.Input{URL: &u})
				}
				var inv *webhooks.InvalidError
				switch {
				case err == nil:
					mu.Lock()
					created = append(created, e.ID)
					mu.Unlock()
				case errors.As(err, &inv) && inv.Code == "too_many_webhooks":
				default:
					t.Errorf("round %d: create: %v", round, err)
				}
			}()
		}
		wg.Wait()
		all, err := w.store.Endpoints(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != webhooks.MaxEndpoints {
			t.Fatalf("round %d: %d endpoints after creates that retried, want the limit, %d", round, len(all), webhooks.MaxEndpoints)
		}
		for _, id := range created {
			if !slices.ContainsFunc(all, func(e webhooks.Endpoint) bool { return e.ID == id }) {
				t.Fatalf("round %d: endpoint %s was answered as created and is gone", round, id)
			}
		}
	}
}

// Deliveries' outcomes counted while the secret is rotated, many rounds:
// the rotation's secret is the one stored after (on FerretDB, which
// writes the whole document it read, an outcome counted from a read
// before the rotation put the old secret back), and no failure is lost
// from the streak.
func TestOutcomesDuringARotation(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	cipher := w.cipher
	e, _ := w.endpoint(t)
	streak := 0
	for round := range 10 {
		var (
			wg     sync.WaitGroup
			secret string
			rotErr error
		)
		wg.Add(1)
		go func() { defer wg.Done(); _, secret, rotErr = w.svc.RotateSecret(ctx, "org-1", e.ID) }()
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := w.store.RecordOutcome(ctx, e.ID, false, w.now); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		streak += 4
		if rotErr != nil {
			t.Fatal(rotErr)
		}
		stored, err := w.store.Endpoint(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := cipher.Open(stored.Secret, webhooks.SecretBinding(e.ID, "secret")); err != nil || got != secret {
			t.Fatalf("round %d: the stored secret is not the rotation's (%v)", round, err)
		}
		if stored.FailureStreak != streak {
			t.Fatalf("round %d: failure streak %d, want %d", round, stored.FailureStreak, streak)
		}
	}
}
