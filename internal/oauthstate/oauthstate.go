// Package oauthstate keeps the state of OAuth flows in progress in Redis:
// the OAuthStateStore of the design. A state ties the callback to the user,
// organization and provider that started the flow, carries the PKCE
// verifier where the provider uses PKCE, and works once within 600 s.
package oauthstate

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// TTL is how long a state stays valid, as in the design.
const TTL = 600 * time.Second

// keyPrefix is the Redis key of a state, as in the design.
const keyPrefix = "oauth:state:"

var (
	// ErrInvalid: the state is unknown, malformed, or already used.
	ErrInvalid = errors.New("oauthstate: unknown or already used state")
	// ErrExpired: the state was issued more than TTL ago.
	ErrExpired = errors.New("oauthstate: expired state")
)

// State is what the connect request leaves for its callback.
type State struct {
	OrganizationID string    `json:"organizationId"`
	UserID         string    `json:"userId"`
	ProviderID     string    `json:"providerId"`
	Verifier       string    `json:"verifier,omitempty"` // PKCE only; lives in Redis only
	CreatedAt      time.Time `json:"createdAt"`
}

// Store is the Redis-backed OAuthStateStore.
type Store struct {
	rdb redis.Cmdable
	ttl time.Duration
	now func() time.Time
}

// New returns a Store with the design's 600 s TTL.
func New(rdb redis.Cmdable) *Store { return &Store{rdb: rdb, ttl: TTL, now: time.Now} }

// WithTTL returns a copy of s whose states live ttl; for tests of expiry.
func (s *Store) WithTTL(ttl time.Duration) *Store {
	c := *s
	c.ttl = ttl
	return &c
}

// stateLen is the length of a state: 32 random bytes (256 bits, twice
// the 128 asked for) and the 8-byte issue time, base64url without padding.
const stateLen = 54

// NewState returns a fresh state string. The issue time inside it only
// tells an expired state from an unknown one after Redis has forgotten it;
// it grants nothing, since only Redis's copy is trusted.
func NewState(now time.Time) (string, error) {
	var b [40]byte
	if _, err := rand.Read(b[:32]); err != nil {
		return "", fmt.Errorf("oauthstate: random: %w", err)
	}
	binary.BigEndian.PutUint64(b[32:], uint64(now.Unix()))
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// issuedAt reads the issue time of a well-formed state.
func issuedAt(state string) (time.Time, bool) {
	if len(state) != stateLen {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil || len(b) != 40 {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint64(b[32:])), 0), true
}

// Create makes a new state for data, stores it and returns it.
func (s *Store) Create(ctx context.Context, data State) (string, error) {
	data.CreatedAt = s.now().UTC()
	state, err := NewState(data.CreatedAt)
	if err != nil {
		return "", err
	}
	if err := s.Set(ctx, state, data); err != nil {
		return "", err
	}
	return state, nil
}

// Set stores data under state for the TTL. It refuses to overwrite a
// state in use.
func (s *Store) Set(ctx context.Context, state string, data State) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("oauthstate: encode: %w", err)
	}
	ok, err := s.rdb.SetNX(ctx, keyPrefix+state, b, s.ttl).Result()
	if err != nil {
		return fmt.Errorf("oauthstate: store: %w", err)
	}
	if !ok {
		return fmt.Errorf("oauthstate: state already in use")
	}
	return nil
}

// Get returns the state's data without using it up.
func (s *Store) Get(ctx context.Context, state string) (*State, error) {
	if _, ok := issuedAt(state); !ok {
		return nil, ErrInvalid
	}
	b, err := s.rdb.Get(ctx, keyPrefix+state).Bytes()
	return s.decode(state, b, err)
}

// Delete forgets a state.
func (s *Store) Delete(ctx context.Context, state string) error {
	if err := s.rdb.Del(ctx, keyPrefix+state).Err(); err != nil {
		return fmt.Errorf("oauthstate: delete: %w", err)
	}
	return nil
}

// Consume returns the state's data and deletes it in one atomic step
// (GETDEL): of two concurrent callbacks with one state, one gets it and the
// other ErrInvalid.
func (s *Store) Consume(ctx context.Context, state string) (*State, error) {
	if _, ok := issuedAt(state); !ok {
		return nil, ErrInvalid
	}
	b, err := s.rdb.GetDel(ctx, keyPrefix+state).Bytes()
	return s.decode(state, b, err)
}

func (s *Store) decode(state string, b []byte, err error) (*State, error) {
	if errors.Is(err, redis.Nil) {
		if at, _ := issuedAt(state); s.now().Sub(at) >= s.ttl {
			return nil, ErrExpired
		}
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("oauthstate: read: %w", err)
	}
	var data State
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, fmt.Errorf("oauthstate: decode: %w", err)
	}
	return &data, nil
}

// Valid reports whether state has the form NewState gives, so callers can
// refuse junk before asking Redis.
func Valid(state string) bool {
	_, ok := issuedAt(state)
	return ok
}
