// Package oauthstate keeps the state of OAuth flows in progress in Redis:
// the OAuthStateStore of the design. A state ties the callback to the user,
// organization and provider that started the flow and to the browser that
// started it (the hash of a key the browser holds in a cookie), carries
// the PKCE verifier where the provider uses PKCE, and works once within
// 600 s. A start ticket carries a connect request made with fetch to the
// browser's navigation that binds it (oauth:start:{ticket}, 60 s, once).
package oauthstate

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postflow/postflow/connections"
)

// TTL is how long a state stays valid, as in the design.
const TTL = 600 * time.Second

// TicketTTL is how long a start ticket stays valid: the frontend submits
// it as soon as it has it.
const TicketTTL = 60 * time.Second

// keyPrefix is the Redis key of a state, as in the design; ticketPrefix
// that of a start ticket.
const (
	keyPrefix    = "oauth:state:"
	ticketPrefix = "oauth:start:"
)

// The errors the store answers with are the domain's, which decides on
// them (connections.Service turns them into the callback's codes).
var (
	// ErrInvalid: the state is unknown, malformed, or already used.
	ErrInvalid = connections.ErrStateInvalid
	// ErrExpired: the state was issued more than TTL ago.
	ErrExpired = connections.ErrStateExpired
	// ErrOtherBrowser: the state exists, but the browser key presented is
	// not the one of the browser that started the flow. The state is left
	// unused, for the callback of the browser that did.
	ErrOtherBrowser = connections.ErrOtherBrowser
)

// State is what the connect request leaves for its callback: the domain's
// connections.State, which this store keeps as JSON.
type State = connections.State

// Store is the Redis-backed OAuthStateStore.
type Store struct {
	rdb       redis.Cmdable
	ttl       time.Duration
	ticketTTL time.Duration
	now       func() time.Time
}

// New returns a Store with the design's 600 s TTL.
func New(rdb redis.Cmdable) *Store {
	return &Store{rdb: rdb, ttl: TTL, ticketTTL: TicketTTL, now: time.Now}
}

// WithTTL returns a copy of s whose states and tickets live ttl; for tests
// of expiry.
func (s *Store) WithTTL(ttl time.Duration) *Store {
	c := *s
	c.ttl, c.ticketTTL = ttl, ttl
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

// Create makes a new state for data, stores it and returns it. A state
// that should complete in one browser only has data.BrowserHash set.
func (s *Store) Create(ctx context.Context, data State) (string, error) {
	return s.create(ctx, keyPrefix, s.ttl, data)
}

// CreateTicket stores data under a new start ticket for TicketTTL and
// returns the ticket; ConsumeTicket takes it back once.
func (s *Store) CreateTicket(ctx context.Context, data State) (string, error) {
	data.BrowserHash = "" // A ticket binds no browser yet.
	return s.create(ctx, ticketPrefix, s.ticketTTL, data)
}

func (s *Store) create(ctx context.Context, prefix string, ttl time.Duration, data State) (string, error) {
	data.CreatedAt = s.now().UTC()
	state, err := NewState(data.CreatedAt)
	if err != nil {
		return "", err
	}
	if err := s.set(ctx, prefix+state, ttl, data); err != nil {
		return "", err
	}
	return state, nil
}

// Set stores data under state for the TTL. It refuses to overwrite a
// state in use.
func (s *Store) Set(ctx context.Context, state string, data State) error {
	return s.set(ctx, keyPrefix+state, s.ttl, data)
}

func (s *Store) set(ctx context.Context, key string, ttl time.Duration, data State) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("oauthstate: encode: %w", err)
	}
	ok, err := s.rdb.SetNX(ctx, key, b, ttl).Result()
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
	return s.decode(state, s.ttl, b, err)
}

// Delete forgets a state.
func (s *Store) Delete(ctx context.Context, state string) error {
	if err := s.rdb.Del(ctx, keyPrefix+state).Err(); err != nil {
		return fmt.Errorf("oauthstate: delete: %w", err)
	}
	return nil
}

// Consume returns the state's data and deletes it, if browserKey is the key
// of the browser that started the flow. It reads the state first and
// leaves it in Redis when the key does not match (ErrOtherBrowser): a
// callback opened in another browser must not use up the state of the
// browser that started it. Then it deletes it in one atomic step (GETDEL):
// of two concurrent callbacks with one state, one gets it and the other
// ErrInvalid. A state stored without a browser hash matches no key.
func (s *Store) Consume(ctx context.Context, state, browserKey string) (*State, error) {
	peek, err := s.Get(ctx, state)
	if err != nil {
		return nil, err
	}
	if !boundTo(peek, browserKey) {
		return nil, ErrOtherBrowser
	}
	b, err := s.rdb.GetDel(ctx, keyPrefix+state).Bytes()
	data, err := s.decode(state, s.ttl, b, err)
	if err != nil {
		return nil, err
	}
	// A stored state is never overwritten (SETNX), so this is the value
	// read above; checked again all the same, since it is what is used.
	if !boundTo(data, browserKey) {
		return nil, ErrOtherBrowser
	}
	return data, nil
}

// boundTo compares in constant time, so that timing tells nothing of the
// stored hash.
func boundTo(d *State, browserKey string) bool {
	if d.BrowserHash == "" || browserKey == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(d.BrowserHash), []byte(connections.HashBrowserKey(browserKey))) == 1
}

// ConsumeTicket returns a start ticket's data and deletes it (GETDEL): a
// ticket works once, within TicketTTL.
func (s *Store) ConsumeTicket(ctx context.Context, ticket string) (*State, error) {
	if _, ok := issuedAt(ticket); !ok {
		return nil, ErrInvalid
	}
	b, err := s.rdb.GetDel(ctx, ticketPrefix+ticket).Bytes()
	return s.decode(ticket, s.ticketTTL, b, err)
}

func (s *Store) decode(state string, ttl time.Duration, b []byte, err error) (*State, error) {
	if errors.Is(err, redis.Nil) {
		if at, _ := issuedAt(state); s.now().Sub(at) >= ttl {
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
