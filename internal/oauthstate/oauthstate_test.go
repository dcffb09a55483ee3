package oauthstate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/oauthstate"
	"github.com/postflow/postflow/internal/redistest"
)

func TestCreateAndConsume(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := oauthstate.New(rdb)

	key := mustBrowserKey(t)
	in := oauthstate.State{OrganizationID: "org1", UserID: "user1", ProviderID: "x", Verifier: "pkce-verifier", BrowserHash: connections.HashBrowserKey(key)}
	state, err := s.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !oauthstate.Valid(state) {
		t.Errorf("Valid(%q) = false", state)
	}
	ttl, err := rdb.TTL(ctx, "oauth:state:"+state).Result()
	if err != nil || ttl <= 590*time.Second || ttl > 600*time.Second {
		t.Errorf("TTL of oauth:state:%s = %v, %v; want 600 s", state, ttl, err)
	}

	got, err := s.Get(ctx, state)
	if err != nil || got.OrganizationID != "org1" || got.UserID != "user1" || got.ProviderID != "x" || got.Verifier != "pkce-verifier" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if time.Since(got.CreatedAt) > time.Minute {
		t.Errorf("CreatedAt = %v", got.CreatedAt)
	}
	if _, err := s.Consume(ctx, state, key); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if _, err := s.Consume(ctx, state, key); !errors.Is(err, oauthstate.ErrInvalid) {
		t.Errorf("second Consume: %v, want ErrInvalid", err)
	}
	if n, _ := rdb.Exists(ctx, "oauth:state:"+state).Result(); n != 0 {
		t.Error("a consumed state is still in Redis")
	}
}

func mustBrowserKey(t *testing.T) string {
	t.Helper()
	key, err := connections.NewBrowserKey()
	if err != nil || !connections.ValidBrowserKey(key) {
		t.Fatalf("NewBrowserKey = %q, %v", key, err)
	}
	return key
}

// TestOtherBrowserLeavesTheStateUnused: a callback with another browser's
// key, or none, is refused and uses nothing up; the browser that started
// the flow still completes it. Redis holds the key's hash, never the key.
func TestOtherBrowserLeavesTheStateUnused(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := oauthstate.New(rdb)
	key := mustBrowserKey(t)
	state, err := s.Create(ctx, oauthstate.State{OrganizationID: "o", UserID: "u", ProviderID: "p", BrowserHash: connections.HashBrowserKey(key)})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := rdb.Get(ctx, "oauth:state:"+state).Result(); strings.Contains(raw, key) || !strings.Contains(raw, connections.HashBrowserKey(key)) {
		t.Errorf("Redis holds %s; want the key's hash and not the key", raw)
	}
	for name, other := range map[string]string{"no key": "", "another key": mustBrowserKey(t), "the hash as the key": connections.HashBrowserKey(key)} {
		if _, err := s.Consume(ctx, state, other); !errors.Is(err, oauthstate.ErrOtherBrowser) {
			t.Errorf("%s: Consume = %v, want ErrOtherBrowser", name, err)
		}
	}
	if got, err := s.Consume(ctx, state, key); err != nil || got.UserID != "u" {
		t.Fatalf("Consume by the browser that started = %+v, %v", got, err)
	}

	// A state stored without a browser hash completes in no browser.
	unbound, _ := s.Create(ctx, oauthstate.State{OrganizationID: "o", UserID: "u", ProviderID: "p"})
	if _, err := s.Consume(ctx, unbound, key); !errors.Is(err, oauthstate.ErrOtherBrowser) {
		t.Errorf("unbound state: Consume = %v, want ErrOtherBrowser", err)
	}
}

func TestTickets(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := oauthstate.New(rdb)
	ticket, err := s.CreateTicket(ctx, oauthstate.State{OrganizationID: "o", UserID: "u", ProviderID: "p", BrowserHash: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.TTL(ctx, "oauth:start:"+ticket).Result()
	if err != nil || ttl <= 50*time.Second || ttl > 60*time.Second {
		t.Errorf("TTL of oauth:start:%s = %v, %v; want 60 s", ticket, ttl, err)
	}
	if _, err := s.Get(ctx, ticket); !errors.Is(err, oauthstate.ErrInvalid) {
		t.Errorf("a ticket is a state: Get = %v", err)
	}
	got, err := s.ConsumeTicket(ctx, ticket)
	if err != nil || got.OrganizationID != "o" || got.UserID != "u" || got.ProviderID != "p" || got.BrowserHash != "" {
		t.Fatalf("ConsumeTicket = %+v, %v", got, err)
	}
	if _, err := s.ConsumeTicket(ctx, ticket); !errors.Is(err, oauthstate.ErrInvalid) {
		t.Errorf("second ConsumeTicket = %v, want ErrInvalid", err)
	}

	short := s.WithTTL(time.Second)
	expiring, _ := short.CreateTicket(ctx, oauthstate.State{ProviderID: "p"})
	time.Sleep(1500 * time.Millisecond)
	if _, err := short.ConsumeTicket(ctx, expiring); !errors.Is(err, oauthstate.ErrExpired) {
		t.Errorf("ConsumeTicket after its TTL = %v, want ErrExpired", err)
	}
}

func TestStatesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := oauthstate.NewState(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if seen[s] {
			t.Fatalf("state %q issued twice", s)
		}
		seen[s] = true
	}
}

func TestExpiry(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := oauthstate.New(rdb).WithTTL(time.Second)
	key := mustBrowserKey(t)
	state, err := s.Create(ctx, oauthstate.State{OrganizationID: "o", UserID: "u", ProviderID: "p", BrowserHash: connections.HashBrowserKey(key)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n, _ := rdb.Exists(ctx, "oauth:state:"+state).Result(); n != 0 {
		t.Fatal("Redis still holds the state after its TTL")
	}
	if _, err := s.Consume(ctx, state, key); !errors.Is(err, oauthstate.ErrExpired) {
		t.Errorf("Consume after TTL: %v, want ErrExpired", err)
	}
}

func TestConcurrentConsumeWinsOnce(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := oauthstate.New(rdb)
	key := mustBrowserKey(t)
	for range 20 {
		state, err := s.Create(ctx, oauthstate.State{OrganizationID: "o", UserID: "u", ProviderID: "p", BrowserHash: connections.HashBrowserKey(key)})
		if err != nil {
			t.Fatal(err)
		}
		var wins, refused atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Consume(ctx, state, key)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, oauthstate.ErrInvalid):
					refused.Add(1)
				default:
					t.Errorf("Consume: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || refused.Load() != 7 {
			t.Fatalf("%d callbacks consumed one state, %d refused; want 1 and 7", wins.Load(), refused.Load())
		}
	}
}

func TestRefusesJunkWithoutAskingRedis(t *testing.T) {
	rdb, _ := redistest.Client(t)
	s := oauthstate.New(rdb)
	for _, state := range []string{"", "abc", "../../etc", "*", "oauth:state:*", string(make([]byte, 54))} {
		if _, err := s.Consume(context.Background(), state, mustBrowserKey(t)); !errors.Is(err, oauthstate.ErrInvalid) {
			t.Errorf("Consume(%q) = %v, want ErrInvalid", state, err)
		}
		if _, err := s.ConsumeTicket(context.Background(), state); !errors.Is(err, oauthstate.ErrInvalid) {
			t.Errorf("ConsumeTicket(%q) = %v, want ErrInvalid", state, err)
		}
	}
}

func TestSetRefusesToOverwrite(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := oauthstate.New(rdb)
	state, _ := oauthstate.NewState(time.Now())
	if err := s.Set(ctx, state, oauthstate.State{UserID: "first"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, state, oauthstate.State{UserID: "second"}); err == nil {
		t.Error("Set overwrote a state in use")
	}
	if got, _ := s.Get(ctx, state); got == nil || got.UserID != "first" {
		t.Errorf("Get = %+v", got)
	}
	if err := s.Delete(ctx, state); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, state); !errors.Is(err, oauthstate.ErrInvalid) {
		t.Errorf("Get after Delete: %v", err)
	}
}
