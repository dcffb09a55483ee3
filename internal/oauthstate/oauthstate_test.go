package oauthstate_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/oauthstate"
	"github.com/postflow/postflow/internal/redistest"
)

func TestCreateAndConsume(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := oauthstate.New(rdb)

	in := oauthstate.State{OrganizationID: "org1", UserID: "user1", ProviderID: "x", Verifier: "pkce-verifier"}
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
	if _, err := s.Consume(ctx, state); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if _, err := s.Consume(ctx, state); !errors.Is(err, oauthstate.ErrInvalid) {
		t.Errorf("second Consume: %v, want ErrInvalid", err)
	}
	if n, _ := rdb.Exists(ctx, "oauth:state:"+state).Result(); n != 0 {
		t.Error("a consumed state is still in Redis")
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
	state, err := s.Create(ctx, oauthstate.State{OrganizationID: "o", UserID: "u", ProviderID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n, _ := rdb.Exists(ctx, "oauth:state:"+state).Result(); n != 0 {
		t.Fatal("Redis still holds the state after its TTL")
	}
	if _, err := s.Consume(ctx, state); !errors.Is(err, oauthstate.ErrExpired) {
		t.Errorf("Consume after TTL: %v, want ErrExpired", err)
	}
}

func TestConcurrentConsumeWinsOnce(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	s := oauthstate.New(rdb)
	for range 20 {
		state, err := s.Create(ctx, oauthstate.State{OrganizationID: "o", UserID: "u", ProviderID: "p"})
		if err != nil {
			t.Fatal(err)
		}
		var wins, refused atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Consume(ctx, state)
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
		if _, err := s.Consume(context.Background(), state); !errors.Is(err, oauthstate.ErrInvalid) {
			t.Errorf("Consume(%q) = %v, want ErrInvalid", state, err)
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
