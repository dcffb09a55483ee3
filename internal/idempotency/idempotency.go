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
// table to sweep. The key itself is stored only hashed.
//
// Nothing of a request rests in Redis readable: its fingerprints (target
// and body) are keyed digests (Sealer.MAC), since a body may hold a
// password (a Bluesky login's) whose plain SHA-256 would let anyone who
// reads Redis guess it offline; answers are sealed, since one may show a
// secret once (a webhook's signing secret).
package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
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
	// SameTarget is true when the claiming request's target fingerprint
	// (its method, URI and caller: whatever is known before its body is
	// read) is the one given to Begin.
	SameTarget bool
	// Answer is what it answered, once it ended.
	Answer *Answer

	s   *Store
	key string
	// target and body are the stored fingerprints of the claiming
	// request's target and body (keyed digests); body is ""
	// while it runs.
	target string
	body   string
	// legacy marks a record written before fingerprints were keyed.
	legacy bool
}

// SameBody reports whether digest is the body digest of the request that
// completed the key (false while it runs).
func (r *Record) SameBody(digest string) bool {
	return r.body != "" && r.s.matches(r.legacy, r.body, digest, "body", r.key)
}

// Store claims keys and keeps answers in Redis.
type Store struct {
	rdb    redis.Scripter
	ttl    time.Duration
	lease  time.Duration
	sealer Sealer
}

// Sealer keeps what a store writes unreadable in Redis (tokencipher.Cipher,
// with TOKEN_ENCRYPTION_KEY's keys): it seals the answers (AES-256-GCM) and
// makes the requests' fingerprints keyed digests (HMAC-SHA256), each bound
// to its Redis key and field.
type Sealer interface {
	Seal(plaintext, binding string) (string, error)
	Open(sealed, binding string) (string, error)
	// MAC is a keyed digest of data for binding; CheckMAC tells whether
	// mac is one of data for binding, made with a key the sealer holds.
	MAC(data, binding string) string
	CheckMAC(mac, data, binding string) bool
}

// New returns a Store with TTL and Lease that seals answers and keys
// fingerprints with sealer, which must not be nil: there is no store that
// keeps requests readable.
func New(rdb redis.Scripter, sealer Sealer) *Store {
	if sealer == nil {
		panic("idempotency: New without a Sealer")
	}
	return &Store{rdb: rdb, ttl: TTL, lease: Lease, sealer: sealer}
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
// Hex SHA-256; the store keeps only a keyed digest of it.
func Target(method, requestURI, caller string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q", method, requestURI, caller)
	return hex.EncodeToString(h.Sum(nil))
}

// claim sets a free key running for its owner, or returns what holds it.
// "keyed" marks the fingerprints as keyed digests (fingerprint).
var claim = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1], 'target', ARGV[2], 'keyed', '1')
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
  redis.call('HSET', KEYS[1], 'state', 'done', 'target', ARGV[2], 'body', ARGV[3], 'answer', ARGV[4], 'keyed', '1')
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
	s     *Store
	key   string
	owner string
	// target is the keyed digest of the request's target, as stored.
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
	c := &Claim{s: s, key: RedisKey(org, key), owner: hex.EncodeToString(b[:])}
	c.target = s.fingerprint(target, "target", c.key)
	res, err := claim.Run(ctx, s.rdb, []string{c.key}, c.owner, c.target, s.lease.Milliseconds()).Result()
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
	rec.SameTarget = s.matches(rec.legacy, rec.target, target, "target", c.key)
	return nil, rec, nil
}

// fingerprint is the keyed digest of a request's value (its target or
// body digest) as key's record keeps it: bound to the Redis key and the
// field, so that equal requests under two keys leave unequal digests.
func (s *Store) fingerprint(value, field, key string) string {
	return s.sealer.MAC(value, field+" "+key)
}

// matches tells whether stored, key's field, is value's fingerprint. A
// record written before fingerprints were keyed (legacy) holds value
// itself: compared as it is, for the TTL it lives, so that a retry across
// the upgrade is answered, not refused (its plain digest is in Redis
// already; comparing with it reveals nothing more).
func (s *Store) matches(legacy bool, stored, value, field, key string) bool {
	if legacy {
		return subtle.ConstantTimeCompare([]byte(stored), []byte(value)) == 1
	}
	return s.sealer.CheckMAC(stored, value, field+" "+key)
}

// parseRecord reads HGETALL's field, value list of key.
func (s *Store) parseRecord(key string, fields []any) (*Record, error) {
	m := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		m[k] = v
	}
	rec := &Record{s: s, key: key, target: m["target"], body: m["body"], legacy: m["keyed"] != "1"}
	switch m["state"] {
	case "running":
		rec.Running = true
	case "done":
		answer := m["answer"]
		// An answer kept before answers were sealed (v0.1.0) is plain
		// JSON, and is replayed as it is for the day it lives.
		if !strings.HasPrefix(answer, "{") {
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
// is no longer held (a is then not kept). body is kept as a keyed digest
// and a sealed.
func (c *Claim) Complete(ctx context.Context, body string, a Answer) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("idempotency: encode answer: %w", err)
	}
	stored, err := c.s.sealer.Seal(string(b), c.key)
	if err != nil {
		return fmt.Errorf("idempotency: seal answer: %w", err)
	}
	return c.run(ctx, "complete", complete, c.owner, c.target, c.s.fingerprint(body, "body", c.key), stored, c.s.ttl.Milliseconds())
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
