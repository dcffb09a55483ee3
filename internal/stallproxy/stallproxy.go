// Package stallproxy is test support for the worker-kill tests: a reverse
// proxy in front of a network's server (a real one or a double) that holds
// the calls a test picks, either before forwarding them (the network never
// acts) or after the network has answered (it acted; its answer is never
// delivered). A held call is released only when its client goes away, as
// when the worker that made it is killed.
package stallproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// When says at which point a held call stops.
type When int

const (
	// Before: the call never reaches the network.
	Before When = iota + 1
	// After: the network acts and answers; the answer is held.
	After
)

// Proxy forwards every call to its target, except the ones Hold picks.
type Proxy struct {
	// URL is the proxy's base URL (http://127.0.0.1:PORT).
	URL string

	target *url.URL
	rp     *httputil.ReverseProxy
	// closed releases every held call when the test ends.
	closed chan struct{}

	mu    sync.Mutex
	rule  func(*http.Request) bool
	when  When
	times int
	held  int
	// sent counts the calls forwarded to the network, by method and path.
	sent map[string]int
}

// Start runs a proxy to target until the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("stallproxy: target %q: %v", target, err)
	}
	p := &Proxy{target: u, closed: make(chan struct{}), sent: map[string]int{}}
	p.rp = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host // The server sees the address its client used.
	}}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		close(p.closed)
		srv.Close()
	})
	p.URL = srv.URL
	return p
}

// Hold makes the next times calls that match hold at when.
func (p *Proxy) Hold(match func(*http.Request) bool, when When, times int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule, p.when, p.times = match, when, times
}

// Held is how many calls the proxy holds now: a call held After counts
// once the network has answered it.
func (p *Proxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Sent is how many calls with method and path (the URL's path, without
// its query) the proxy has forwarded to the network so far: the ones held
// After count, the ones held Before do not, since the network never saw
// them. A test counts a network's uploads with it.
func (p *Proxy) Sent(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[method+" "+path]
}

// forwarding counts r as sent to the network.
func (p *Proxy) forwarding(r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent[r.Method+" "+r.URL.Path]++
}

// Route matches calls by method and path.
func Route(method, path string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Method == method && r.URL.Path == path }
}

func (p *Proxy) take(r *http.Request) When {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.times <= 0 || p.rule == nil || !p.rule(r) {
		return 0
	}
	p.times--
	return p.when
}

func (p *Proxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held++
}

func (p *Proxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held--
}

// wait holds r until its client goes away or the test ends.
func (p *Proxy) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.closed:
	}
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	switch p.take(r) {
	case Before:
		// Read the body: until it is read, the server does not watch the
		// connection, and would not see the client go away.
		_, _ = io.Copy(io.Discard, r.Body)
		p.hold()
		defer p.release()
		p.wait(r)
	case After:
		rec := httptest.NewRecorder()
		body, _ := io.ReadAll(r.Body)
		out := r.Clone(r.Context())
		out.Body = io.NopCloser(bytes.NewReader(body))
		p.forwarding(r)
		p.rp.ServeHTTP(rec, out)
		// Held from here on: the network has answered.
		p.hold()
		defer p.release()
		p.wait(r)
	default:
		p.forwarding(r)
		p.rp.ServeHTTP(w, r)
	}
}
