package stallproxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/stallproxy"
)

func TestHoldBeforeAndAfter(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(201)
	}))
	defer target.Close()
	p := stallproxy.Start(t, target.URL)

	for _, tc := range []struct {
		when    stallproxy.When
		reached int32
	}{{stallproxy.Before, 0}, {stallproxy.After, 1}} {
		reached.Store(0)
		p.Hold(stallproxy.Route("POST", "/posts"), tc.when, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			// With a body, as a network's create has: the proxy must see
			// its client go away all the same.
			req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+"/posts", strings.NewReader(`{"text":"held"}`))
			_, err := http.DefaultClient.Do(req)
			done <- err
		}()
		deadline := time.Now().Add(5 * time.Second)
		for p.Held() != 1 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if p.Held() != 1 || reached.Load() != tc.reached {
			t.Fatalf("when %d: held %d, the server reached %d times; want 1 and %d", tc.when, p.Held(), reached.Load(), tc.reached)
		}
		cancel()
		if err := <-done; err == nil {
			t.Fatalf("when %d: the held call was answered", tc.when)
		}
		for p.Held() != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if p.Held() != 0 {
			t.Fatalf("when %d: the call is still held after its client went away", tc.when)
		}
		// Only one call was to be held: the next goes through.
		res, err := http.Post(p.URL+"/posts", "text/plain", nil)
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("when %d: the call after the held one: %v %v", tc.when, res, err)
		}
		res.Body.Close()
	}
	res, err := http.Get(p.URL + "/other")
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("a call that does not match: %v %v", res, err)
	}
	res.Body.Close()
}

func TestSentCountsWhatReachesTheNetwork(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(200)
	}))
	defer target.Close()
	p := stallproxy.Start(t, target.URL)

	post := func(ctx context.Context, path string) {
		req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+path, strings.NewReader("bytes"))
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}
	// waitHeld waits until the proxy holds n calls.
	waitHeld := func(n int) {
		for deadline := time.Now().Add(5 * time.Second); p.Held() != n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the proxy holds %d calls, want %d", p.Held(), n)
			}
		}
	}
	// held makes one call to path that the proxy holds at when, then lets
	// its client go away, and waits until the proxy has let the call go.
	held := func(when stallproxy.When, path string) {
		p.Hold(stallproxy.Route("POST", path), when, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { post(ctx, path); close(done) }()
		waitHeld(1)
		cancel()
		<-done
		waitHeld(0)
	}
	post(context.Background(), "/upload?action=one")
	post(context.Background(), "/upload?action=two")
	post(context.Background(), "/other")
	held(stallproxy.Before, "/upload")
	held(stallproxy.After, "/upload")

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/upload", 3}, // two passed, one held After; the one held Before never reached it
		{"POST", "/other", 1},
		{"GET", "/upload", 0},
		{"POST", "/upload?action=one", 0}, // a path has no query
	} {
		if got := p.Sent(tc.method, tc.path); got != tc.want {
			t.Errorf("Sent(%s, %s) = %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	if reached.Load() != 4 {
		t.Errorf("the network got %d calls, want 4", reached.Load())
	}
}
