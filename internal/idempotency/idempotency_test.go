package idempotency_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postflow/postflow/internal/idempotency"
	"github.com/postflow/postflow/internal/redistest"
	"github.com/postflow/postflow/internal/tokencipher"
)

func TestRedisKeyHidesTheKey(t *testing.T) {
	k := idempotency.RedisKey("org-a", "my secret-ish key")
	if !strings.HasPrefix(k, "idem:org-a:") || strings.Contains(k, "secret") || len(k) != len("idem:org-a:")+64 {
		t.Errorf("RedisKey = %q, want idem:org-a: and 64 hex digits", k)
	}
	if k == idempotency.RedisKey("org-b", "my secret-ish key") {
		t.Error("two organizations share a Redis key")
	}
}

// A key goes through its states: free, running (seen as such by a second
// request), done (seen with its answer), and free again after TTL.
func TestKeyLifecycle(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := newStore(t, rdb).WithTimes(time.Second, 10*time.Second)
	orgA, orgB := org(t, "org-a"), org(t, "org-b")
	c, rec, err := s.Begin(ctx, orgA, "k1", "target-1")
	if err != nil || c == nil || rec != nil {
		t.Fatalf("first Begin = %v, %v, %v; want a claim", c, rec, err)
	}
	_, rec, err = s.Begin(ctx, orgA, "k1", "target-1")
	if err != nil || rec == nil || !rec.Running || !rec.SameTarget || rec.SameBody("") || rec.Answer != nil {
		t.Fatalf("Begin while running = %+v, %v; want running target-1", rec, err)
	}
	// Another organization's key of the same name is its own.
	if other, _, err := s.Begin(ctx, orgB, "k1", "target-1"); err != nil || other == nil {
		t.Fatalf("org-b's Begin = %v, %v; want its own claim", other, err)
	}
	answer := idempotency.Answer{Status: 201, Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"id":"1"}`)}
	if err := c.Complete(ctx, "digest-1", answer); err != nil {
		t.Fatal(err)
	}
	_, rec, err = s.Begin(ctx, orgA, "k1", "target-2")
	if err != nil || rec == nil || rec.Running || rec.SameTarget || !rec.SameBody("digest-1") || rec.SameBody("digest-2") ||
		rec.Answer == nil || rec.Answer.Status != 201 || string(rec.Answer.Body) != `{"id":"1"}` || rec.Answer.Header["Content-Type"] != "application/json" {
		t.Fatalf("Begin when done = %+v, %v", rec, err)
	}
	if err := c.Complete(ctx, "digest-1", answer); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("a second Complete = %v, want ErrLeaseLost", err)
	}
	if err := c.Release(ctx); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("Release after Complete = %v, want ErrLeaseLost (the answer stays)", err)
	}
	waitFree(t, s, orgA, "k1", 3*time.Second)
}

// A crashed owner renews nothing: its key is free one lease later. An owner
// that renews keeps it; one whose lease ran out cannot complete.
func TestLeaseExpiresUnlessRenewed(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := newStore(t, rdb).WithTimes(time.Hour, 600*time.Millisecond)

	o := org(t, "org")
	crashed, _, err := s.Begin(ctx, o, "crash", "t")
	if err != nil || crashed == nil {
		t.Fatal(err)
	}
	kept, _, err := s.Begin(ctx, o, "kept", "t")
	if err != nil || kept == nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := kept.Renew(ctx); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if _, rec, err := s.Begin(ctx, o, "kept", "t"); err != nil || rec == nil || !rec.Running {
		t.Fatalf("a renewed claim: %+v, %v; want it running", rec, err)
	}
	next, _, err := s.Begin(ctx, o, "crash", "t")
	if err != nil || next == nil {
		t.Fatalf("Begin after the lease ran out = %v, %v; want a new claim", next, err)
	}
	if err := crashed.Complete(ctx, "d", idempotency.Answer{Status: 200}); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("Complete of a lapsed claim = %v, want ErrLeaseLost", err)
	}
	if err := crashed.Renew(ctx); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("Renew of a lapsed claim = %v, want ErrLeaseLost", err)
	}
	if err := next.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if again, _, err := s.Begin(ctx, o, "crash", "t"); err != nil || again == nil {
		t.Fatalf("Begin after Release = %v, %v; want a claim", again, err)
	}
}

// Of many requests claiming one key at once, one gets it.
func TestConcurrentBeginClaimsOnce(t *testing.T) {
	rdb, _ := redistest.Client(t)
	s := newStore(t, rdb)
	o := org(t, "org")
	for round := range 10 {
		var claims, held atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, rec, err := s.Begin(context.Background(), o, "k"+string(rune('a'+round)), "t")
				switch {
				case err != nil:
					t.Error(err)
				case c != nil:
					claims.Add(1)
				case rec != nil && rec.Running:
					held.Add(1)
				}
			}()
		}
		wg.Wait()
		if claims.Load() != 1 || held.Load() != 15 {
			t.Fatalf("%d claims and %d running records, want 1 and 15", claims.Load(), held.Load())
		}
	}
}

// org is an organization of this test run alone: a real Redis outlives
// the run, with the keys it claimed.
func org(t *testing.T, name string) string {
	return name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func waitFree(t *testing.T, s *idempotency.Store, org, key string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, _, err := s.Begin(context.Background(), org, key, "t")
		if err != nil {
			t.Fatal(err)
		}
		if c != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still held after %s", key, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// With a sealer, an answer rests in Redis sealed (a webhook's signing
// secret in it is not readable there), is replayed as it was, and one
// copied under another key does not open.
func TestSealedAnswers(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	cipher, err := tokencipher.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := idempotency.New(rdb, cipher)
	orgA := org(t, "org-a")
	c, _, err := s.Begin(ctx, orgA, "k1", "target-1")
	if err != nil || c == nil {
		t.Fatalf("Begin = %v, %v", c, err)
	}
	body := `{"id":"1","secret":"whsec_c2VjcmV0IHNpZ25pbmcga2V5"}`
	if err := c.Complete(ctx, "digest-1", idempotency.Answer{Status: 201, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	raw, err := rdb.HGetAll(ctx, idempotency.RedisKey(orgA, "k1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for field, v := range raw {
		if strings.Contains(v, "whsec_") {
			t.Errorf("Redis holds the secret readable in %s: %q", field, v)
		}
	}
	_, rec, err := s.Begin(ctx, orgA, "k1", "target-1")
	if err != nil || rec == nil || rec.Answer == nil || string(rec.Answer.Body) != body {
		t.Fatalf("replay = %+v, %v; want the answer as it was", rec, err)
	}
	// Moved under another key (org-b's), the sealed answer is refused.
	orgB := org(t, "org-b")
	if err := rdb.HSet(ctx, idempotency.RedisKey(orgB, "k1"), raw).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Begin(ctx, orgB, "k1", "target-1"); err == nil {
		t.Error("an answer sealed for org-a's key opened under org-b's")
	}
	// One kept before answers were sealed (v0.1.0) is replayed as it is.
	if err := rdb.HSet(ctx, idempotency.RedisKey(orgA, "k2"), "state", "done", "target", "target-1", "body", "digest-2",
		"answer", `{"status":200,"body":"eyJpZCI6IjIifQ=="}`).Err(); err != nil {
		t.Fatal(err)
	}
	if _, rec, err := s.Begin(ctx, orgA, "k2", "target-1"); err != nil || rec == nil || rec.Answer == nil || string(rec.Answer.Body) != `{"id":"2"}` {
		t.Errorf("an unsealed answer replayed by a sealing store: %+v, %v", rec, err)
	}
}

// A request's fingerprints rest in Redis as keyed digests: neither its
// target nor its body digest (the SHA-256 of a body that may hold a
// password) is there to guess against. They match under the store's key,
// as it was before a rotation too, and under the record they were made
// for only. A record written before they were keyed still matches as it
// is, for the day it lives.
func TestFingerprintsAreKeyed(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	c1, err := tokencipher.New(k1)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := tokencipher.New(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := tokencipher.New(k2)
	if err != nil {
		t.Fatal(err)
	}
	s := idempotency.New(rdb, c1)
	o := org(t, "org")
	sum := sha256.Sum256([]byte(`{"identifier":"alice.test","password":"hunter22"}`))
	target, body := idempotency.Target("POST", "/connections/bluesky", "alice"), "sha256:"+hex.EncodeToString(sum[:])
	claim, _, err := s.Begin(ctx, o, "k", target)
	if err != nil || claim == nil {
		t.Fatalf("Begin = %v, %v", claim, err)
	}
	if err := claim.Complete(ctx, body, idempotency.Answer{Status: 201, Body: []byte(`{"id":"1"}`)}); err != nil {
		t.Fatal(err)
	}
	raw, err := rdb.HGetAll(ctx, idempotency.RedisKey(o, "k")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for field, v := range raw {
		if strings.Contains(v, target) || strings.Contains(v, hex.EncodeToString(sum[:])) {
			t.Errorf("Redis holds a plain fingerprint in %s: %q", field, v)
		}
	}
	// The answers from here on are plain (as v0.1.0 kept them), which
	// every store reads: what is compared is the fingerprints alone.
	plain := `{"status":201,"body":"e30="}`
	if err := rdb.HSet(ctx, idempotency.RedisKey(o, "k"), "answer", plain).Err(); err != nil {
		t.Fatal(err)
	}
	// A record under another key with the first one's digests.
	if err := rdb.HSet(ctx, idempotency.RedisKey(o, "copied"), "state", "done", "target", raw["target"], "body", raw["body"],
		"keyed", raw["keyed"], "answer", plain).Err(); err != nil {
		t.Fatal(err)
	}
	// Written as v0.2 wrote it: plain digests, no "keyed" mark.
	if err := rdb.HSet(ctx, idempotency.RedisKey(o, "legacy"), "state", "done", "target", target, "body", body,
		"answer", plain).Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		store    *idempotency.Store
		key      string
		target   string
		body     string
		wantSame bool // target and body
	}{
		{"the same request", s, "k", target, body, true},
		{"after a key rotation", idempotency.New(rdb, rotated), "k", target, body, true},
		{"another body", s, "k", target, body + "0", false},
		{"another target", s, "k", idempotency.Target("POST", "/connections/bluesky", "bob"), body, false},
		{"a store with another key", idempotency.New(rdb, otherKey), "k", target, body, false},
		{"digests copied under another key", s, "copied", target, body, false},
		{"a record written before keyed digests", s, "legacy", target, body, true},
		{"a record written before keyed digests, another body", s, "legacy", target, body + "0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rec, err := tt.store.Begin(ctx, o, tt.key, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if rec == nil {
				t.Fatal("Begin claimed a held key")
			}
			if same := rec.SameTarget && rec.SameBody(tt.body); same != tt.wantSame {
				t.Errorf("same target and body = %v (target %v), want %v", same, rec.SameTarget, tt.wantSame)
			}
		})
	}
}

// newStore is a store with a test key.
func newStore(t *testing.T, rdb redis.Scripter) *idempotency.Store {
	t.Helper()
	cipher, err := tokencipher.New(bytes.Repeat([]byte{4}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return idempotency.New(rdb, cipher)
}
