package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/idempotency"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/media/gridfs"
	"github.com/postflow/postflow/media/mediatest"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/webhooks/webhookstest"
)

// gatedRunner is fakeRunner whose starts wait for gate (when set) and fail
// while fail is above zero.
type gatedRunner struct {
	*fakeRunner
	gate chan struct{}
	fail int
}

func (g *gatedRunner) Start(ctx context.Context, p *posts.Post) (string, error) {
	if g.gate != nil {
		<-g.gate
	}
	g.mu.Lock()
	failing := g.fail > 0
	g.fail--
	g.mu.Unlock()
	if failing {
		return "", errors.New("temporal: unavailable")
	}
	return g.fakeRunner.Start(ctx, p)
}

// idemAPI is the four routes that take an Idempotency-Key, over testworld's
// MongoDB-protocol store and Redis.
type idemAPI struct {
	srv      *httptest.Server
	world    *testworld.World
	runner   *gatedRunner
	keys     *idempotency.Store
	accountA string // an account of org-a
	accountB string // an account of org-b
}

func newIdemAPI(t *testing.T, keys func(*idempotency.Store) *idempotency.Store, runner *gatedRunner) *idemAPI {
	t.Helper()
	w := testworld.New(t, testworld.Options{})
	ctx := context.Background()
	add := func(org, uid string) string {
		a, err := w.Store.Accounts().Upsert(ctx, &connections.Account{OrganizationID: org, Platform: "linkedin", PlatformUserID: uid,
			DisplayName: "Ada", AccessToken: "v1.x", Status: connections.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	if runner == nil {
		runner = &gatedRunner{}
	}
	runner.fakeRunner = &fakeRunner{started: map[string]int{}}
	lib, err := media.NewLibrary(w.Store.Media(), gridfs.New(w.Store.DB, gridfs.Options{}), media.Limits{MaxBytes: testMaxBytes, MaxPixels: 10_000_000}, w.Store.Posts().UsesMedia)
	if err != nil {
		t.Fatal(err)
	}
	cipher, err := tokencipher.New(bytes.Repeat([]byte{6}, 32))
	if err != nil {
		t.Fatal(err)
	}
	store := idempotency.New(w.Redis, cipher)
	if keys != nil {
		store = keys(store)
	}
	a := &idemAPI{world: w, runner: runner, keys: store, accountA: add("org-a", "urn:li:person:a"), accountB: add("org-b", "urn:li:person:b")}
	a.srv = httptest.NewServer(api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend, MaxBodyBytes: 64 << 10,
		Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret)}, Posts: w.PostsService(runner),
		Media: api.MediaOptions{Library: lib}, Idempotency: store,
		Webhooks: webhooks.NewService(w.Store.Webhooks(), cipher, netguard.Policy{}, &webhookstest.Starter{}),
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// newKey is a key of this test run alone: a real Redis outlives the run.
func newKey(t *testing.T) string {
	return fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
}

// do sends method path as user of org with the Idempotency-Keys given
// (none: no header) and returns the answer with its body.
func (a *idemAPI) do(t *testing.T, user, org, method, path, contentType string, body []byte, keys ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token(t, user, []string{org}, ""))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, k := range keys {
		req.Header.Add("Idempotency-Key", k)
	}
	return send(t, req)
}

func (a *idemAPI) createPost(t *testing.T, org, content string, keys ...string) (*http.Response, []byte) {
	t.Helper()
	account := a.accountA
	if org == "org-b" {
		account = a.accountB
	}
	body, _ := json.Marshal(map[string]any{"content": content, "socialAccountIds": []string{account}})
	return a.do(t, "alice", org, http.MethodPost, "/posts", "application/json", body, keys...)
}

// posts counts org's posts.
func (a *idemAPI) posts(t *testing.T, org string) int {
	t.Helper()
	list, err := a.world.Store.Posts().List(context.Background(), org, posts.ListFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// The same key with the same request answers what the first answered,
// byte for byte, and creates nothing more.
func TestIdempotentCreateReplays(t *testing.T) {
	a := newIdemAPI(t, nil, nil)
	s := newSchemas(t)
	key := newKey(t)
	first, body := a.createPost(t, "org-a", "Launch day", key)
	if first.StatusCode != http.StatusCreated || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s, replayed %q", first.StatusCode, body, first.Header.Get("Idempotent-Replayed"))
	}
	for range 2 {
		again, replayed := a.createPost(t, "org-a", "Launch day", key)
		if again.StatusCode != http.StatusCreated || !bytes.Equal(replayed, body) || again.Header.Get("Idempotent-Replayed") != "true" ||
			again.Header.Get("Content-Type") != first.Header.Get("Content-Type") || again.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("retry: %d %s (replayed %q, type %q); want 201 %s", again.StatusCode, replayed, again.Header.Get("Idempotent-Replayed"), again.Header.Get("Content-Type"), body)
		}
		s.check(http.MethodPost, "/posts", again.StatusCode, replayed)
	}
	if n := a.posts(t, "org-a"); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
	// Without a key, every request runs.
	a.createPost(t, "org-a", "Launch day")
	a.createPost(t, "org-a", "Launch day")
	if n := a.posts(t, "org-a"); n != 3 {
		t.Errorf("%d posts after two without a key, want 3", n)
	}
}

// A key is one request: any other request under it (another body, route,
// query or member) is 422 idempotency_key_reused, and runs nothing.
// Another organization's key of the same name is its own.
func TestIdempotencyKeyReused(t *testing.T) {
	a := newIdemAPI(t, nil, nil)
	s := newSchemas(t)
	key := newKey(t)
	res, body := a.createPost(t, "org-a", "Launch day", key)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("first: %d %s", res.StatusCode, body)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(body, &created)
	same, _ := json.Marshal(map[string]any{"content": "Launch day", "socialAccountIds": []string{a.accountA}})
	other, _ := json.Marshal(map[string]any{"content": "Launch night", "socialAccountIds": []string{a.accountA}})
	tests := []struct {
		name                     string
		user, method, path, body string
		template                 string
	}{
		{"another body", "alice", "POST", "/posts", string(other), "/posts"},
		{"the body spaced differently", "alice", "POST", "/posts", string(same) + " ", "/posts"},
		{"another member of the organization", "bob", "POST", "/posts", string(same), "/posts"},
		{"another route", "alice", "PATCH", "/posts/" + created.ID, string(same), "/posts/{id}"},
		{"another query", "alice", "POST", "/posts?organizationId=org-a", string(same), "/posts"},
		{"publish under the key", "alice", "POST", "/publish/" + created.ID, "", "/publish/{postId}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out := a.do(t, tt.user, "org-a", tt.method, tt.path, "application/json", []byte(tt.body), key)
			var e map[string]any
			_ = json.Unmarshal(out, &e)
			if res.StatusCode != http.StatusUnprocessableEntity || code(e) != "idempotency_key_reused" {
				t.Errorf("%d %s, want 422 idempotency_key_reused", res.StatusCode, out)
			}
			s.check(tt.method, tt.template, res.StatusCode, out)
		})
	}
	if n := a.posts(t, "org-a"); n != 1 {
		t.Errorf("org-a has %d posts, want 1", n)
	}
	if a.runner.started[created.ID] != 0 {
		t.Error("a publish under a reused key started a run")
	}
	res, body = a.createPost(t, "org-b", "Launch day", key)
	if res.StatusCode != http.StatusCreated || res.Header.Get("Idempotent-Replayed") != "" || a.posts(t, "org-b") != 1 {
		t.Errorf("org-b with org-a's key: %d %s, replayed %q; want its own new post", res.StatusCode, body, res.Header.Get("Idempotent-Replayed"))
	}
}

// A key is 1 to 255 printable ASCII characters, sent once. (A control
// character but a tab never gets here: net/http answers 400 itself.)
func TestIdempotencyKeyFormat(t *testing.T) {
	a := newIdemAPI(t, nil, nil)
	tests := []struct {
		name   string
		keys   []string
		status int
	}{
		{"a UUID", []string{"8e03978e-40d5-43e8-bc93-6894a57f9324"}, 201},
		{"255 characters", []string{strings.Repeat("k", 255)}, 201},
		{"a space and punctuation inside", []string{`a "quoted" key, ~!`}, 201},
		{"empty", []string{""}, 400},
		{"256 characters", []string{strings.Repeat("k", 256)}, 400},
		{"not ASCII", []string{"clé-1"}, 400},
		{"a tab", []string{"key\tkey"}, 400},
		{"two headers", []string{"key-1", "key-2"}, 400},
	}
	s := newSchemas(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status == 201 { // a key of this run alone, at most 255 long
				unique := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
				tt.keys[0] = unique + tt.keys[0][max(0, len(unique)+len(tt.keys[0])-255):]
			}
			before := a.posts(t, "org-a")
			res, out := a.createPost(t, "org-a", "hi", tt.keys...)
			var e map[string]any
			_ = json.Unmarshal(out, &e)
			if res.StatusCode != tt.status || (tt.status == 400 && code(e) != "invalid_idempotency_key") {
				t.Errorf("%d %s, want %d", res.StatusCode, out, tt.status)
			}
			if created := a.posts(t, "org-a") - before; (tt.status == 201) != (created == 1) {
				t.Errorf("%d posts created", created)
			}
			s.check(http.MethodPost, "/posts", res.StatusCode, out)
		})
	}
}

// Many requests with one key at once: exactly one runs; each of the others
// gets 409 idempotency_key_in_progress with Retry-After, or the first's
// answer replayed.
func TestIdempotencyConcurrentRequests(t *testing.T) {
	runner := &gatedRunner{gate: make(chan struct{})}
	a := newIdemAPI(t, nil, runner)
	s := newSchemas(t)
	res, body := a.createPost(t, "org-a", "Launch day")
	var post struct{ ID string }
	if err := json.Unmarshal(body, &post); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	key := newKey(t)
	const n = 24
	type answer struct {
		status     int
		body       []byte
		replayed   string
		retryAfter string
	}
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, out := a.do(t, "alice", "org-a", http.MethodPost, "/publish/"+post.ID, "", nil, key)
			answers <- answer{res.StatusCode, out, res.Header.Get("Idempotent-Replayed"), res.Header.Get("Retry-After")}
		}()
	}
	// The first request waits at the runner while the others arrive.
	deadline := time.Now().Add(10 * time.Second)
	var got []answer
	for len(got) < n-1 && time.Now().Before(deadline) {
		select {
		case ans := <-answers:
			got = append(got, ans)
		case <-time.After(100 * time.Millisecond):
		}
	}
	close(runner.gate)
	wg.Wait()
	close(answers)
	for ans := range answers {
		got = append(got, ans)
	}
	var ran, replays, busy int
	var first []byte
	for _, ans := range got {
		switch {
		case ans.status == http.StatusAccepted && ans.replayed == "":
			ran++
			first = ans.body
		case ans.status == http.StatusAccepted && ans.replayed == "true":
			replays++
		case ans.status == http.StatusConflict && strings.Contains(string(ans.body), "idempotency_key_in_progress") && ans.retryAfter != "":
			busy++
			s.check(http.MethodPost, "/publish/{postId}", ans.status, ans.body)
		default:
			t.Errorf("answer %d %s (replayed %q, Retry-After %q)", ans.status, ans.body, ans.replayed, ans.retryAfter)
		}
	}
	if ran != 1 || busy < n/2 || ran+replays+busy != n {
		t.Errorf("%d ran, %d replayed, %d told it runs; want 1 run and the others mostly 409", ran, replays, busy)
	}
	if a.runner.started[post.ID] != 1 {
		t.Errorf("%d runs started, want 1", a.runner.started[post.ID])
	}
	res, out := a.do(t, "alice", "org-a", http.MethodPost, "/publish/"+post.ID, "", nil, key)
	if res.StatusCode != http.StatusAccepted || res.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(out, first) {
		t.Errorf("retry after the run: %d %s, want the first answer %s replayed", res.StatusCode, out, first)
	}

	// Creates racing under one key, ungated: one post.
	createKey := newKey(t) + "-create"
	before := a.posts(t, "org-a")
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, out := a.createPost(t, "org-a", "Race", createKey)
			if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusConflict {
				t.Errorf("create: %d %s", res.StatusCode, out)
			}
		}()
	}
	wg.Wait()
	if created := a.posts(t, "org-a") - before; created != 1 {
		t.Errorf("%d concurrent creates under one key made %d posts, want 1", n, created)
	}
}

// An answer is kept for the store's TTL; after it the key is free and the
// request runs again.
func TestIdempotencyKeyExpires(t *testing.T) {
	a := newIdemAPI(t, func(s *idempotency.Store) *idempotency.Store { return s.WithTimes(time.Second, 10*time.Second) }, nil)
	key := newKey(t)
	if res, body := a.createPost(t, "org-a", "hi", key); res.StatusCode != http.StatusCreated {
		t.Fatalf("first: %d %s", res.StatusCode, body)
	}
	if res, _ := a.createPost(t, "org-a", "hi", key); res.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("the retry within the TTL was not replayed")
	}
	time.Sleep(1500 * time.Millisecond)
	res, body := a.createPost(t, "org-a", "hi", key)
	if res.StatusCode != http.StatusCreated || res.Header.Get("Idempotent-Replayed") != "" || a.posts(t, "org-a") != 2 {
		t.Errorf("after the TTL: %d %s, replayed %q, %d posts; want a second post", res.StatusCode, body, res.Header.Get("Idempotent-Replayed"), a.posts(t, "org-a"))
	}
}

// A key whose request runs on an API instance that died is held by its
// lease only: 409 until the lease runs out, then the request runs.
func TestIdempotencyLeaseOfACrashedInstance(t *testing.T) {
	a := newIdemAPI(t, func(s *idempotency.Store) *idempotency.Store { return s.WithTimes(time.Hour, 800*time.Millisecond) }, nil)
	key := newKey(t)
	// The instance that died had claimed the key for this very request.
	claim, _, err := a.keys.Begin(context.Background(), "org-a", key, idempotency.Target(http.MethodPost, "/posts", "alice"))
	if err != nil || claim == nil {
		t.Fatalf("claim: %v", err)
	}
	res, out := a.createPost(t, "org-a", "hi", key)
	if res.StatusCode != http.StatusConflict || res.Header.Get("Retry-After") == "" || !strings.Contains(string(out), "idempotency_key_in_progress") {
		t.Fatalf("while claimed: %d %s (Retry-After %q), want 409 idempotency_key_in_progress", res.StatusCode, out, res.Header.Get("Retry-After"))
	}
	time.Sleep(1200 * time.Millisecond)
	if res, out := a.createPost(t, "org-a", "hi", key); res.StatusCode != http.StatusCreated || a.posts(t, "org-a") != 1 {
		t.Fatalf("after the lease: %d %s, want the request run", res.StatusCode, out)
	}
	if err := claim.Complete(context.Background(), "x", idempotency.Answer{Status: 500}); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("the dead instance's late Complete = %v, want ErrLeaseLost", err)
	}
}

// POST /media under a key: a retry of the same upload, framed with a new
// multipart boundary as clients do, gets the first item and stores no
// second image; another file under the key is 422.
func TestIdempotentMediaUpload(t *testing.T) {
	a := newIdemAPI(t, nil, nil)
	s := newSchemas(t)
	key := newKey(t)
	image := mediatest.JPEGWithGPS(64, 48)
	upload := func(data []byte) (*http.Response, []byte) {
		t.Helper()
		ct, body := multipartBody(t, part{"file", "beach.jpg", data})
		return a.do(t, "alice", "org-a", http.MethodPost, "/media", ct, body.Bytes(), key)
	}
	first, item := upload(image)
	if first.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", first.StatusCode, item)
	}
	again, replayed := upload(image)
	if again.StatusCode != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(replayed, item) {
		t.Fatalf("retry: %d %s (replayed %q), want %s", again.StatusCode, replayed, again.Header.Get("Idempotent-Replayed"), item)
	}
	s.check(http.MethodPost, "/media", again.StatusCode, replayed)
	other, out := upload(mediatest.JPEGWithGPS(48, 64))
	if other.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(out), "idempotency_key_reused") {
		t.Errorf("another file: %d %s, want 422 idempotency_key_reused", other.StatusCode, out)
	}
	s.check(http.MethodPost, "/media", other.StatusCode, out)
	stored, err := a.world.Store.DB.Collection(gridfs.DefaultBucket+".files").CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if stored != 1 {
		t.Errorf("%d images stored, want 1", stored)
	}
}

// A request refused as written (400, 413, 415, 422) frees its key, so the
// corrected request may use it; a request that ran and failed (5xx) keeps
// its answer, as Stripe and the draft keep errors, and runs no more.
func TestIdempotencyRefusalFreesKeyFailureIsKept(t *testing.T) {
	runner := &gatedRunner{fail: 1}
	a := newIdemAPI(t, nil, runner)
	key := newKey(t)
	res, out := a.createPost(t, "org-a", strings.Repeat("a", 3001), key) // LinkedIn takes 3,000
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(out), "content_too_long") {
		t.Fatalf("too long: %d %s", res.StatusCode, out)
	}
	res, out = a.createPost(t, "org-a", "hi", key)
	if res.StatusCode != http.StatusCreated || res.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the corrected request under the key: %d %s, want it run", res.StatusCode, out)
	}
	var post struct{ ID string }
	_ = json.Unmarshal(out, &post)

	publishKey := newKey(t) + "-publish"
	res, failed := a.do(t, "alice", "org-a", http.MethodPost, "/publish/"+post.ID, "", nil, publishKey)
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("publish with Temporal down: %d %s, want 500", res.StatusCode, failed)
	}
	res, again := a.do(t, "alice", "org-a", http.MethodPost, "/publish/"+post.ID, "", nil, publishKey)
	if res.StatusCode != http.StatusInternalServerError || res.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again, failed) {
		t.Errorf("retry of the failed publish: %d %s (replayed %q), want the 500 replayed", res.StatusCode, again, res.Header.Get("Idempotent-Replayed"))
	}
	if res, out := a.do(t, "alice", "org-a", http.MethodPost, "/publish/"+post.ID, "", nil, newKey(t)+"-new"); res.StatusCode != http.StatusAccepted {
		t.Errorf("publish under a new key: %d %s, want 202", res.StatusCode, out)
	}
	if a.runner.started[post.ID] != 1 {
		t.Errorf("%d runs started, want 1", a.runner.started[post.ID])
	}
}

// A request that outlasts the lease keeps its key: the API renews the
// lease while the request runs.
func TestIdempotencyLeaseRenewedWhileRunning(t *testing.T) {
	runner := &gatedRunner{gate: make(chan struct{})}
	// A 2 s lease is renewed every 667 ms, each renewal given as long: a
	// Redis call stalled on a loaded machine still renews in time.
	const lease = 2 * time.Second
	a := newIdemAPI(t, func(s *idempotency.Store) *idempotency.Store { return s.WithTimes(time.Hour, lease) }, runner)
	res, body := a.createPost(t, "org-a", "slow")
	var post struct{ ID string }
	if err := json.Unmarshal(body, &post); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	key := newKey(t)
	done := make(chan int)
	go func() {
		res, _ := a.do(t, "alice", "org-a", http.MethodPost, "/publish/"+post.ID, "", nil, key)
		done <- res.StatusCode
	}()
	time.Sleep(5 * lease / 2) // over two leases
	// A second run would wait at the gate: the client gives up on it.
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/publish/"+post.ID, nil)
	req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{"org-a"}, ""))
	req.Header.Set("Idempotency-Key", key)
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	switch {
	case err != nil:
		t.Errorf("while the first runs past its lease: %v; want 409 at once, not a second run", err)
	case res.StatusCode != http.StatusConflict:
		t.Errorf("while the first runs past its lease: %d, want 409", res.StatusCode)
	}
	if err == nil {
		res.Body.Close()
	}
	close(runner.gate)
	if status := <-done; status != http.StatusAccepted {
		t.Errorf("the first request: %d", status)
	}
	if a.runner.started[post.ID] != 1 {
		t.Errorf("%d runs started, want 1", a.runner.started[post.ID])
	}
}

// Every trigger takes the key, the per-account retry too: a malformed key
// is refused before the route runs (without the key's middleware the
// retry of a post that does not exist would be 404).
func TestIdempotencyKeyOnEveryTrigger(t *testing.T) {
	a := newIdemAPI(t, nil, nil)
	missing := "6b0ce0000000000000000001"
	for _, path := range []string{"/posts/" + missing + "/retry", "/publish/" + missing} {
		res, out := a.do(t, "user-1", "org-a", http.MethodPost, path, "application/json", []byte(`{}`), strings.Repeat("k", 256))
		var e map[string]any
		_ = json.Unmarshal(out, &e)
		if res.StatusCode != http.StatusBadRequest || code(e) != "invalid_idempotency_key" {
			t.Errorf("POST %s with a 256-character key = %d %s, want 400 invalid_idempotency_key", path, res.StatusCode, out)
		}
	}
}

// A webhook's creation and its secret's rotation, retried with their key
// after a lost answer, answer as the first did: one endpoint, one
// rotation (a second would end the first secret at once), and the secret
// each answer shows rests in Redis sealed, not readable.
func TestIdempotentWebhookRoutes(t *testing.T) {
	a := newIdemAPI(t, nil, nil)
	body := []byte(`{"url":"https://93.184.215.14/hooks"}`)
	key := newKey(t)
	var first map[string]any
	for i := range 2 {
		res, raw := a.do(t, "alice", "org-a", http.MethodPost, "/webhooks", "application/json", body, key)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		if res.StatusCode != 201 || (i == 1) != (res.Header.Get("Idempotent-Replayed") == "true") {
			t.Fatalf("create %d: %d %s (replayed %q)", i, res.StatusCode, raw, res.Header.Get("Idempotent-Replayed"))
		}
		if i == 0 {
			first = out
		} else if out["id"] != first["id"] || out["secret"] != first["secret"] {
			t.Errorf("the retry answered %v; want the first answer %v", out, first)
		}
	}
	if list, err := a.world.Store.Webhooks().Endpoints(context.Background(), "org-a"); err != nil || len(list) != 1 {
		t.Fatalf("endpoints after a retried create: %d, %v; want 1", len(list), err)
	}
	id := first["id"].(string)
	rotate, rkey := "/webhooks/"+id+"/rotate-secret", newKey(t)
	var secrets []string
	for range 2 {
		res, raw := a.do(t, "alice", "org-a", http.MethodPost, rotate, "", nil, rkey)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		if res.StatusCode != 200 {
			t.Fatalf("rotate: %d %s", res.StatusCode, raw)
		}
		secrets = append(secrets, fmt.Sprint(out["secret"]))
	}
	if secrets[0] != secrets[1] || secrets[0] == first["secret"] {
		t.Errorf("rotations answered %v (first secret %v); want one new secret, twice", secrets, first["secret"])
	}
	ep, err := a.world.Store.Webhooks().Endpoint(context.Background(), id)
	if err != nil || ep.PreviousSecret == "" {
		t.Fatalf("endpoint after one rotation: %+v, %v; want the first secret kept as the previous one", ep, err)
	}
	for _, k := range []string{key, rkey} {
		stored, err := a.world.Redis.HGetAll(context.Background(), idempotency.RedisKey("org-a", k)).Result()
		if err != nil || len(stored) == 0 {
			t.Fatalf("the key's record: %v, %v", stored, err)
		}
		for field, v := range stored {
			if strings.Contains(v, "whsec_") {
				t.Errorf("Redis holds a signing secret readable in %s", field)
			}
		}
	}
}
