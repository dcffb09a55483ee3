// Package idempotency keeps, in Redis, the requests made with an
// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): a key is
// claimed by the first request that carries it, held by a lease while that
// request runs, then holds the request's answer for TTL, so that a retry
// is answered with what the first request answered instead of running
// again.
//
// A key lives at idem:<organization>:<hex SHA-256 of the key>, a Redis
// hash: state "running" with the owner's random token and a lease that
// the owner renews while it runs (a crashed API instance renews nothing,
// so its key is free again one Lease later), then state "done" with the
// request's fingerprints and its answer, expiring after TTL. Redis is
// where PostFlow already keeps short-lived shared state (OAuth states):
// one atomic claim across API instances and an expiry per key, with no
// table to sweep. The key itself is stored only hashed, and answers hold
// what the API answered, which never carries a secret.
package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// TTL is how long an answer is kept after its request ended: the 24 hours
// of Stripe's keys, which the API documents.
const TTL = 24 * time.Hour

// Lease is how long a running request holds its key without renewing
// it. The owner renews it every Lease/3 while it runs.
const Lease = 30 * time.Second

// keyPrefix begins every key of this package.
const keyPrefix = "idem:"

// ErrLeaseLost is returned by Complete, Renew and Release when the key is
// no longer the caller's: its lease ran out (the request outlived it
// without renewing) and another request may have claimed it.
var ErrLeaseLost = errors.New("idempotency: the key's lease was lost")

// Answer is what a request answered: replayed as it was to its retries.
type Answer struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Header holds the answer's headers that a replay repeats
	// (Content-Type, Location, ...), one value each.
	Header map[string]string `json:"header,omitempty"`
	// Body is the answer's body, byte for byte.
	Body []byte `json:"body"`
}

// Record is the state of a key another request holds.
type Record struct {
	// Running is true while the request that claimed the key has not
	// ended (and its lease holds); Answer is nil then.
	Running bool
	// Target is the claiming request's target fingerprint (its method,
	// URI and caller: whatever is known before its body is read).
	Target string
	// Body is the digest of the claiming request's body; "" while it runs.
	Body string
	// Answer is what it answered, once it ended.
	Answer *Answer
}

// Store claims keys and keeps answers in Redis.
type Store struct {
	rdb    redis.Scripter
	ttl    time.Duration
	lease  time.Duration
	sealer Sealer
}

// Sealer seals the answers a store keeps (tokencipher.Cipher, AES-256-GCM),
// each bound to its Redis key: an answer may carry a secret shown once
// (a webhook's signing secret), which must not rest in Redis readable.
type Sealer interface {
	Seal(plaintext, binding string) (string, error)
	Open(sealed, binding string) (string, error)
}

// WithSealer returns a copy of s that keeps answers sealed by sealer.
func (s *Store) WithSealer(sealer Sealer) *Store {
	c := *s
	c.sealer = sealer
	return &c
}

// New returns a Store with TTL and Lease.
func New(rdb redis.Scripter) *Store {
	return &Store{rdb: rdb, ttl: TTL, lease: Lease}
}

// WithTimes returns a copy of s that keeps answers ttl and leases keys for
// lease; for tests of expiry.
func (s *Store) WithTimes(ttl, lease time.Duration) *Store {
	c := *s
	c.ttl, c.lease = ttl, lease
	return &c
}

// LeaseTime is how long a claim holds without renewal.
func (s *Store) LeaseTime() time.Duration { return s.lease }

// RedisKey is where org's key is kept: idem:<org>:<hex SHA-256 of key>.
// The hash keeps the stored name short and free of the client's bytes.
func RedisKey(org, key string) string {
	sum := sha256.Sum256([]byte(key))
	return keyPrefix + org + ":" + hex.EncodeToString(sum[:])
}

// Target fingerprints what is known of a request before its body: its
// method, its request URI (path and query) and its caller (a user id).
// Hex SHA-256.
func Target(method, requestURI, caller string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q", method, requestURI, caller)
	return hex.EncodeToString(h.Sum(nil))
}

// claim sets a free key running for its owner, or returns what holds it.
var claim = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1], 'target', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return redis.call('HGETALL', KEYS[1])
`)

// renew extends the lease of a key its owner still holds.
var renew = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'running' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// complete replaces its owner's running key by the request's answer.
var complete = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'running' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'state', 'done', 'target', ARGV[2], 'body', ARGV[3], 'answer', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
`)

// release deletes its owner's running key.
var release = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'running' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// Claim is a key held by the request that claimed it, until it
// completes or releases it, or its lease runs out.
type Claim struct {
	s      *Store
	key    string
	owner  string
	target string
}

// Begin claims org's key for a request of the target fingerprint target.
// It returns the claim when the key was free, else the Record of the
// request that holds it (running, or done with its answer). An error is
// Redis's, wrapped.
func (s *Store) Begin(ctx context.Context, org, key, target string) (*Claim, *Record, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, fmt.Errorf("idempotency: owner token: %w", err)
	}
	c := &Claim{s: s, key: RedisKey(org, key), owner: hex.EncodeToString(b[:]), target: target}
	res, err := claim.Run(ctx, s.rdb, []string{c.key}, c.owner, target, s.lease.Milliseconds()).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("idempotency: claim: %w", err)
	}
	fields, ok := res.([]any)
	if !ok {
		return c, nil, nil
	}
	rec, err := s.parseRecord(c.key, fields)
	if err != nil {
		return nil, nil, err
	}
	return nil, rec, nil
}

// parseRecord reads HGETALL's field, value list of key.
func (s *Store) parseRecord(key string, fields []any) (*Record, error) {
	m := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		m[k] = v
	}
	rec := &Record{Target: m["target"], Body: m["body"]}
	switch m["state"] {
	case "running":
		rec.Running = true
	case "done":
		answer := m["answer"]
		// An answer kept before answers were sealed (v0.1.0) is plain
		// JSON, and is replayed as it is for the day it lives.
		if s.sealer != nil && !strings.HasPrefix(answer, "{") {
			opened, err := s.sealer.Open(answer, key)
			if err != nil {
				return nil, fmt.Errorf("idempotency: open the stored answer: %w", err)
			}
			answer = opened
		}
		var a Answer
		if err := json.Unmarshal([]byte(answer), &a); err != nil {
			return nil, fmt.Errorf("idempotency: stored answer: %w", err)
		}
		rec.Answer = &a
	default:
		// Only claim and complete write these keys; anything else is a
		// key expiring between two commands or a foreign write.
		return nil, fmt.Errorf("idempotency: stored state %q", m["state"])
	}
	return rec, nil
}

// Renew extends the claim's lease by the store's lease time; ErrLeaseLost
// if the claim is no longer held.
func (c *Claim) Renew(ctx context.Context) error {
	return c.run(ctx, "renew", renew, c.owner, c.s.lease.Milliseconds())
}

// Complete keeps a, the answer of the request whose body digest is body,
// for the store's TTL, in place of the claim; ErrLeaseLost if the claim
// is no longer held (a is then not kept).
func (c *Claim) Complete(ctx context.Context, body string, a Answer) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("idempotency: encode answer: %w", err)
	}
	stored := string(b)
	if c.s.sealer != nil {
		if stored, err = c.s.sealer.Seal(stored, c.key); err != nil {
			return fmt.Errorf("idempotency: seal answer: %w", err)
		}
	}
	return c.run(ctx, "complete", complete, c.owner, c.target, body, stored, c.s.ttl.Milliseconds())
}

// Release frees the key, so that the next request carrying it runs;
// ErrLeaseLost if the claim was no longer held.
func (c *Claim) Release(ctx context.Context) error {
	return c.run(ctx, "release", release, c.owner)
}

func (c *Claim) run(ctx context.Context, what string, script *redis.Script, args ...any) error {
	n, err := script.Run(ctx, c.s.rdb, []string{c.key}, args...).Int()
	if err != nil {
		return fmt.Errorf("idempotency: %s: %w", what, err)
	}
	if n != 1 {
		return ErrLeaseLost
	}
	return nil
}
