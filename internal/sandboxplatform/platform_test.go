package sandboxplatform

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/mongotest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// sandbox is a platform on a fresh database, served over HTTP, with a
// clock the test moves ahead of the wall clock.
type sandbox struct {
	t     *testing.T
	p     *Platform
	srv   *httptest.Server
	mu    sync.Mutex
	ahead time.Duration
}

func serve(t *testing.T, p *Platform) *sandbox {
	t.Helper()
	s := &sandbox{t: t, p: p}
	p.now = func() time.Time { s.mu.Lock(); defer s.mu.Unlock(); return time.Now().Add(s.ahead) }
	s.srv = httptest.NewServer(p)
	t.Cleanup(s.srv.Close)
	return s
}

func newSandbox(t *testing.T, opts Options) *sandbox {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return serve(t, New(mongotest.Store(t).DB, opts))
}

func (s *sandbox) advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ahead += d
}

// connect authorizes the app as name and returns the user's id and an
// access token, through the authorize form and the token endpoint.
func (s *sandbox) connect(name string) (userID, token string) {
	s.t.Helper()
	const redirect = "http://127.0.0.1:9/back"
	verifier := "a-verifier-long-enough-for-pkce-0123456789abcdef"
	sum := sha256.Sum256([]byte(verifier))
	form := url.Values{"response_type": {"code"}, "client_id": {ClientID}, "redirect_uri": {redirect},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"name": {name}, "action": {"allow"}}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.PostForm(s.srv.URL+"/authorize", form)
	if err != nil {
		s.t.Fatal(err)
	}
	res.Body.Close()
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil || back.Query().Get("code") == "" {
		s.t.Fatalf("authorize: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, err = http.PostForm(s.srv.URL+"/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {ClientID},
		"code": {back.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		s.t.Fatalf("token: %d %v", res.StatusCode, err)
	}
	me := "sbx-" + strings.ReplaceAll(strings.ToLower(name), " ", "-")
	return me, tok.AccessToken
}

// behave sets a user's behaviour and returns the status and body.
func (s *sandbox) behave(userID, body string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, s.srv.URL+"/users/"+userID+"/behaviour", strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// answer is what a create answered.
type answer struct {
	status     int
	id         string
	existingID string
	retryAfter string
}

func (s *sandbox) create(token, text, key string) answer {
	s.t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/api/posts", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Error(err)
		return answer{}
	}
	defer res.Body.Close()
	var out struct{ ID, ExistingID string }
	_ = json.NewDecoder(res.Body).Decode(&out)
	return answer{status: res.StatusCode, id: out.ID, existingID: out.ExistingID, retryAfter: res.Header.Get("Retry-After")}
}

func (s *sandbox) feed(userID string) []Post {
	s.t.Helper()
	posts, err := ReadFeed(context.Background(), s.srv.URL, userID)
	if err != nil {
		s.t.Fatal(err)
	}
	return posts
}

func TestBehaviourRatesValidated(t *testing.T) {
	s := newSandbox(t, Options{})
	user, _ := s.connect("Ada")
	for _, tt := range []struct {
		name, body string
		status     int
	}{
		{"random with rates", `{"publish":"random","unavailableRate":0.15,"rateLimitedRate":0.15,"retryAfterSeconds":1,"lostAnswerRate":0.05,"duplicateDetection":false}`, 200},
		{"rates adding up to 1", `{"publish":"random","unavailableRate":0.5,"rateLimitedRate":0.3,"lostAnswerRate":0.1,"timeoutRate":0.1}`, 200},
		{"random without rates: all ok", `{"publish":"random"}`, 200},
		{"duplicate detection off alone", `{"duplicateDetection":false}`, 200},
		{"a negative rate", `{"publish":"random","unavailableRate":-0.1}`, 400},
		{"a rate above 1", `{"publish":"random","lostAnswerRate":1.5}`, 400},
		{"rates adding up to more than 1", `{"publish":"random","unavailableRate":0.6,"rateLimitedRate":0.3,"lostAnswerRate":0.2}`, 400},
		{"the timeout rate tipping the sum over 1", `{"publish":"random","unavailableRate":0.5,"rateLimitedRate":0.3,"lostAnswerRate":0.2,"timeoutRate":0.1}`, 400},
		{"a negative timeout rate", `{"publish":"random","timeoutRate":-0.1}`, 400},
		{"a timeout rate above 1", `{"publish":"random","timeoutRate":1.5}`, 400},
		{"a timeout rate for another mode", `{"publish":"ok","timeoutRate":0.5}`, 400},
		{"rates for another mode", `{"publish":"unavailable","unavailableRate":0.5}`, 400},
		{"duplicate detection not a bool", `{"duplicateDetection":"off"}`, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := s.behave(user, tt.body); status != tt.status {
				t.Errorf("%s: %d %s, want %d", tt.body, status, body, tt.status)
			}
		})
	}
}

// Publish random answers 503, 429 and 504 at about the rates set, from
// the source the options give: the same seed, the same answers.
func TestRandomPublish(t *testing.T) {
	const n = 300
	run := func(seed uint64) []int {
		s := newSandbox(t, Options{Random: mrand.NewPCG(seed, 1)})
		user, token := s.connect("Grace")
		if status, body := s.behave(user, `{"publish":"random","unavailableRate":0.3,"rateLimitedRate":0.3,"lostAnswerRate":0.2,"retryAfterSeconds":2,"duplicateDetection":false}`); status != 200 {
			t.Fatalf("behave: %d %s", status, body)
		}
		got := make([]int, n)
		count := map[int]int{}
		for i := range n {
			a := s.create(token, "the same words", "")
			got[i] = a.status
			count[a.status]++
			if a.status == 429 && a.retryAfter != "2" {
				t.Errorf("429 with Retry-After %q, want 2", a.retryAfter)
			}
		}
		for status, want := range map[int]float64{503: 0.3, 429: 0.3, 504: 0.2, 201: 0.2} {
			if c := count[status]; c < int(want*n)-35 || c > int(want*n)+35 {
				t.Errorf("seed %d: %d answers %d of %d, want about %.0f", seed, status, c, n, want*n)
			}
		}
		// A 504 made its post; nothing else refused did. Duplicate
		// detection is off: the same text each time.
		if posts := len(s.feed(user)); posts != count[201]+count[504] {
			t.Errorf("seed %d: %d posts in the feed, want %d created + %d lost answers", seed, posts, count[201], count[504])
		}
		return got
	}
	first, again := run(7), run(7)
	for i := range first {
		if first[i] != again[i] {
			t.Fatalf("the same seed answered differently at publish %d: %d then %d", i, first[i], again[i])
		}
	}
}

// Publish random's timeoutRate answers 504 with nothing made, beside
// lostAnswerRate's 504 with the post made: the feed tells them apart.
func TestRandomPublishTimeout(t *testing.T) {
	const n = 400
	for _, seed := range []uint64{3, 11} {
		s := newSandbox(t, Options{Random: mrand.NewPCG(seed, 1)})
		user, token := s.connect("Edsger")
		if status, body := s.behave(user, `{"publish":"random","unavailableRate":0.2,"rateLimitedRate":0.2,"lostAnswerRate":0.2,"timeoutRate":0.2,"duplicateDetection":false}`); status != 200 {
			t.Fatalf("behave: %d %s", status, body)
		}
		count := map[int]int{}
		for range n {
			count[s.create(token, "the same words", "").status]++
		}
		// Of the 504s, those that made a post are lost answers, the rest
		// timeouts.
		lost := len(s.feed(user)) - count[201]
		timeouts := count[504] - lost
		for name, c := range map[string]int{"503": count[503], "429": count[429], "201": count[201], "lost answers": lost, "timeouts": timeouts} {
			if c < n/5-40 || c > n/5+40 {
				t.Errorf("seed %d: %d %s of %d, want about %d", seed, c, name, n, n/5)
			}
		}
	}
}

// An Idempotency-Key answers the post its first create made, within the
// window, whether duplicate detection is on or off, and before it.
func TestIdempotencyKey(t *testing.T) {
	for _, tt := range []struct {
		name      string
		behaviour string
		// second create: a key and a text, and what it must answer
		sameKey   bool
		sameText  bool
		after     time.Duration // the clock moves this much first
		status    int
		samePost  bool
		feedAfter int
	}{
		{"repeated key, detection on", `{}`, true, true, 0, 200, true, 1},
		{"repeated key, detection off", `{"duplicateDetection":false}`, true, true, 0, 200, true, 1},
		{"repeated key, other text", `{}`, true, false, 0, 200, true, 1},
		// 30 s short of the window: the clock is the wall clock moved ahead,
		// and a second create stalled on a loaded machine must stay within it.
		{"repeated key just within the window", `{"duplicateDetection":false}`, true, true, time.Hour - 30*time.Second, 200, true, 1},
		{"repeated key past the window", `{"duplicateDetection":false}`, true, true, time.Hour, 201, false, 2},
		{"other key, same text, detection on", `{}`, false, true, 0, 422, true, 1},
		{"other key, same text, detection off", `{"duplicateDetection":false}`, false, true, 0, 201, false, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t, Options{AccessTTL: 48 * time.Hour})
			user, token := s.connect("Linus")
			if status, body := s.behave(user, tt.behaviour); status != 200 {
				t.Fatalf("behave: %d %s", status, body)
			}
			first := s.create(token, "hello", "postflow-p1-a1")
			if first.status != 201 || first.id == "" {
				t.Fatalf("first create: %+v", first)
			}
			s.advance(tt.after)
			key, text := "postflow-p1-a1", "hello"
			if !tt.sameKey {
				key = "postflow-p2-a1"
			}
			if !tt.sameText {
				text = "other words"
			}
			second := s.create(token, text, key)
			id := second.id
			if tt.status == 422 {
				id = second.existingID
			}
			if second.status != tt.status || (id == first.id) != tt.samePost {
				t.Errorf("second create: %+v, want %d with the first post %v (%s)", second, tt.status, tt.samePost, first.id)
			}
			posts := s.feed(user)
			if len(posts) != tt.feedAfter {
				t.Fatalf("feed has %d posts, want %d", len(posts), tt.feedAfter)
			}
			for _, p := range posts {
				if p.ID == first.id && p.IdempotencyKey != "postflow-p1-a1" {
					t.Errorf("the first post's key = %q", p.IdempotencyKey)
				}
			}
			// The key keeps answering: a third create with it is the
			// post that owns the key now.
			owner := first.id
			if tt.sameKey && !tt.samePost {
				owner = second.id
			}
			if third := s.create(token, "hello", "postflow-p1-a1"); third.status != 200 || third.id != owner {
				t.Errorf("third create: %+v, want 200 with %s", third, owner)
			}
		})
	}
}

// A create that made nothing (refused, or a duplicate) leaves its key free
// for the retry; an answer lost after the post was made does not.
func TestIdempotencyKeyAfterFailures(t *testing.T) {
	s := newSandbox(t, Options{})
	user, token := s.connect("Barbara")
	s.create(token, "taken", "k-dup")
	for _, tt := range []struct {
		behaviour string
		text, key string
		status    int
	}{
		{`{"publish":"unavailable","publishTimes":1}`, "one", "k1", 503},
		{`{"publish":"rate_limited","publishTimes":1}`, "two", "k2", 429},
		{`{}`, "taken", "k3", 422}, // a duplicate of the post of k-dup
		{`{"publish":"lost_answer","publishTimes":1}`, "four", "k4", 504},
	} {
		if status, body := s.behave(user, tt.behaviour); status != 200 {
			t.Fatalf("behave: %d %s", status, body)
		}
		if a := s.create(token, tt.text, tt.key); a.status != tt.status {
			t.Fatalf("%s: %+v, want %d", tt.key, a, tt.status)
		}
		retry := s.create(token, tt.text+" again", tt.key)
		posts := s.feed(user)
		// The retry's text differs: a new post shows that the key was free,
		// the lost answer's post shows that it was not.
		if tt.status == 504 {
			if retry.status != 200 || posts[0].Text != "four" || posts[0].ID != retry.id {
				t.Errorf("%s: retry %+v with %s newest; want the lost answer's post", tt.key, retry, posts[0].Text)
			}
		} else if retry.status != 201 || posts[0].ID != retry.id {
			t.Errorf("%s: retry %+v; want a new post", tt.key, retry)
		}
	}
}

// Creates with one key at once, through two processes serving one
// sandbox, make one post and all answer it.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	store := mongotest.Store(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	one := serve(t, New(store.DB, Options{Logger: logger}))
	other := serve(t, New(store.DB, Options{Logger: logger}))
	user, token := one.connect("Edsger")
	if status, body := one.behave(user, `{"duplicateDetection":false}`); status != 200 {
		t.Fatalf("behave: %d %s", status, body)
	}
	const n = 8
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := one
			if i%2 == 1 {
				s = other
			}
			answers[i] = s.create(token, fmt.Sprint("try ", i), "postflow-p9-a9")
		})
	}
	wg.Wait()
	posts := one.feed(user)
	if len(posts) != 1 {
		t.Fatalf("%d posts in the feed, want 1", len(posts))
	}
	for i, a := range answers {
		if (a.status != 201 && a.status != 200) || a.id != posts[0].ID {
			t.Errorf("create %d: %+v, want the post %s", i, a, posts[0].ID)
		}
	}
}

func TestFeedLimit(t *testing.T) {
	s := newSandbox(t, Options{})
	user, token := s.connect("Niklaus")
	for i := range 3 {
		s.create(token, fmt.Sprint("post ", i), "")
	}
	for _, tt := range []struct {
		query  string
		status int
		posts  int
	}{
		{"", 200, 3},
		{"&limit=2", 200, 2},
		{"&limit=0", 400, 0},
		{"&limit=10001", 400, 0},
		{"&limit=x", 400, 0},
	} {
		res, err := http.Get(s.srv.URL + "/feed?user=" + user + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		var f struct{ Posts []Post }
		_ = json.NewDecoder(res.Body).Decode(&f)
		res.Body.Close()
		if res.StatusCode != tt.status || len(f.Posts) != tt.posts {
			t.Errorf("feed%s: %d with %d posts, want %d with %d", tt.query, res.StatusCode, len(f.Posts), tt.status, tt.posts)
		}
	}
	// ReadFeed reads every post, and no answer but a feed.
	ctx := context.Background()
	if posts, err := ReadFeed(ctx, s.srv.URL, user); err != nil || len(posts) != 3 {
		t.Errorf("ReadFeed: %d posts, %v; want 3", len(posts), err)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"posts": []Post{}})
	}))
	defer down.Close()
	for _, base := range []string{s.srv.URL + "/users", down.URL} {
		if posts, err := ReadFeed(ctx, base, user); err == nil {
			t.Errorf("ReadFeed of %s: %d posts, no error", base, len(posts))
		}
	}
}

// A create goes through to its end once begun, even if its caller has gone
// away meanwhile (a worker killed mid-call): a write cut half way would
// leave a key or a duplicate record naming a post that was never made.
func TestCreateFinishedWhenTheCallerIsGone(t *testing.T) {
	s := newSandbox(t, Options{})
	user, token := s.connect("Alan")
	// Read the token and the user once, so that the create below meets
	// the caller's cancellation at its first write, as one would when the
	// caller dies during the call. The platform's clock stands still, so
	// that they stay read (userTTL) however slow the machine is.
	frozen := s.p.now()
	s.p.now = func() time.Time { return frozen }
	if a := s.create(token, "warm up", ""); a.status != 201 {
		t.Fatalf("warm up: %+v", a)
	}
	for _, key := range []string{"", "postflow-p1-a1"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/posts", strings.NewReader(`{"text":"abandoned `+key+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		rec := httptest.NewRecorder()
		s.p.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			t.Fatalf("key %q: %d %s, want 201", key, rec.Code, rec.Body)
		}
	}
	posts := s.feed(user)
	if len(posts) != 3 {
		t.Fatalf("%d posts in the feed, want 3", len(posts))
	}
	var keyed string
	for _, p := range posts {
		if p.IdempotencyKey == "postflow-p1-a1" {
			keyed = p.ID
		}
	}
	if a := s.create(token, "abandoned postflow-p1-a1", "postflow-p1-a1"); a.status != 200 || a.id != keyed {
		t.Errorf("the retry: %+v, want 200 with %s", a, keyed)
	}
	// Duplicate detection was on: the same text again is refused.
	if a := s.create(token, "abandoned ", ""); a.status != 422 {
		t.Errorf("the same text again: %+v, want a duplicate", a)
	}
}

// A sequence answers the next publishes in its order, then Publish
// applies again.
func TestPublishSequence(t *testing.T) {
	s := newSandbox(t, Options{})
	user, token := s.connect("Ada")
	if status, body := s.behave(user, `{"publishSequence":["random"]}`); status != 400 {
		t.Errorf("a sequence with random: %d %s, want 400", status, body)
	}
	if status, body := s.behave(user, `{"publishSequence":["unavailable","lost_answer","rate_limited","expired_token"]}`); status != 200 {
		t.Fatalf("behave: %d %s", status, body)
	}
	var got []int
	for i := range 5 {
		got = append(got, s.create(token, fmt.Sprint("sequence ", i), "").status)
	}
	if want := []int{503, 504, 429, 401, 201}; !slices.Equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	if n := len(s.feed(user)); n != 2 {
		t.Errorf("the feed holds %d posts, want 2 (the lost answer's and the last)", n)
	}
}

// del deletes post id as token's user and returns the status.
func (s *sandbox) del(token, id string) int {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, s.srv.URL+"/api/posts/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// DELETE /api/posts/{id}: the user's post leaves the feed (and its text
// may be posted again), a second delete is 404, another user's post is
// 403 and stays, and DeleteSequence scripts refusals one by one (a
// lost_answer deletes, then answers 504).
func TestDeletePost(t *testing.T) {
	s := newSandbox(t, Options{DuplicateWindow: time.Hour})
	ada, adaToken := s.connect("Ada")
	bob, bobToken := s.connect("Bob")
	first := s.create(adaToken, "to be deleted", "")
	kept := s.create(bobToken, "Bob's", "")
	if first.status != 201 || kept.status != 201 {
		t.Fatalf("creates: %+v %+v", first, kept)
	}
	for _, tt := range []struct {
		name, token, id string
		status          int
	}{
		{"another user's post", adaToken, kept.id, 403},
		{"the user's own", adaToken, first.id, 204},
		{"again: gone", adaToken, first.id, 404},
		{"never made", adaToken, "sbp_none", 404},
		{"without a token", "", kept.id, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.del(tt.token, tt.id); got != tt.status {
				t.Errorf("DELETE %s: %d, want %d", tt.id, got, tt.status)
			}
		})
	}
	if n := len(s.feed(ada)); n != 0 {
		t.Errorf("Ada's feed holds %d posts after the delete, want 0", n)
	}
	if n := len(s.feed(bob)); n != 1 {
		t.Errorf("Bob's feed holds %d posts, want 1", n)
	}
	if again := s.create(adaToken, "to be deleted", ""); again.status != 201 {
		t.Errorf("the deleted post's text again: %+v, want 201 (its duplicate claim went with it)", again)
	}

	if status, body := s.behave(ada, `{"deleteSequence":["rejected"]}`); status != 400 {
		t.Errorf("a delete sequence with rejected: %d %s, want 400", status, body)
	}
	if status, body := s.behave(ada, `{"deleteSequence":["rate_limited","unavailable","expired_token","timeout","lost_answer"],"retryAfterSeconds":7}`); status != 200 {
		t.Fatalf("behave: %d %s", status, body)
	}
	post := s.create(adaToken, "scripted deletes", "")
	var got []int
	for range 6 {
		got = append(got, s.del(adaToken, post.id))
	}
	if want := []int{429, 503, 401, 504, 504, 404}; !slices.Equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
}
