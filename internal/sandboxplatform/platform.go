// Package sandboxplatform is a pretend social network that PostFlow serves
// itself under /sandbox, so that `make dev` can be tried end to end with no
// platform credentials. It behaves like a real one: an authorize page that
// redirects back, OAuth codes with PKCE, access tokens that expire and
// single-use refresh tokens, a feed of published posts, duplicate
// detection, Idempotency-Key on creates (as Mastodon has), images with alt
// text (uploaded, then referred to by posts, shown in the feed), and
// switches that make it answer 429, 503 or invalid_grant, always or at
// random rates.
// Its state lives in MongoDB, so tokens survive a restart of `make dev`.
package sandboxplatform

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ClientID is the only app the sandbox knows.
const ClientID = "postflow"

// Options configure the platform.
type Options struct {
	// AccessTTL is the life of an access token; short, so that refreshes
	// happen while you watch.
	AccessTTL time.Duration
	// DuplicateWindow refuses the same text from the same user within it.
	DuplicateWindow time.Duration
	// IdempotencyWindow is how long a create's Idempotency-Key answers
	// the post it made (default 1 h, as Mastodon keeps it).
	IdempotencyWindow time.Duration
	// Random draws the outcomes of publish "random"; nil: a source seeded
	// from crypto/rand. Tests pass a seeded one.
	Random mrand.Source
	// MaxImageBytes is the largest image POST /api/media takes (default
	// ImageBytesLimit).
	MaxImageBytes int64
	Logger        *slog.Logger
}

// Platform is the sandbox's HTTP surface.
type Platform struct {
	db          *mongo.Database
	opts        Options
	now         func() time.Time
	mux         *http.ServeMux
	stalled     atomic.Int64 // requests held by the stall switches
	access      accessCache
	cachedUsers userCache
	randMu      sync.Mutex // rand.Rand is not safe for concurrent use
	rand        *mrand.Rand
}

// accessCache keeps the access grants bearer has read. A grant never
// changes once issued (only its expiry passes, checked on every use), so
// a publish reads only its user, whose switches do change. Cleared when
// full: it is only a saving.
type accessCache struct {
	mu     sync.Mutex
	grants map[string]grant
}

const accessCacheSize = 10_000

func (c *accessCache) get(key string) (grant, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.grants[key]
	return g, ok
}

func (c *accessCache) put(g grant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.grants == nil || len(c.grants) >= accessCacheSize {
		c.grants = map[string]grant{}
	}
	c.grants[g.Key] = g
}

// userCache keeps the users bearer has read for up to userTTL. Every change
// this process makes to a user drops it, so its own switches apply at once;
// one set through another process serving the same sandbox applies within
// userTTL. A read that a change overtook is not kept (gen).
type userCache struct {
	mu    sync.Mutex
	gen   uint64
	users map[string]cachedUser
}

type cachedUser struct {
	user
	read time.Time
}

const userTTL = time.Second

// get returns the user if kept and fresh, and the generation to put it
// back under otherwise.
func (c *userCache) get(id string, now time.Time) (user, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cu, ok := c.users[id]
	if !ok || now.Sub(cu.read) >= userTTL {
		return user{}, c.gen, false
	}
	return cu.user, c.gen, true
}

func (c *userCache) put(u user, gen uint64, read time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.users == nil || len(c.users) >= accessCacheSize {
		c.users = map[string]cachedUser{}
	}
	c.users[u.ID] = cachedUser{user: u, read: read}
}

func (c *userCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.users, id)
}

// New serves the sandbox from db's sandbox* collections.
func New(db *mongo.Database, opts Options) *Platform {
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = time.Hour
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = 10 * time.Minute
	}
	if opts.IdempotencyWindow <= 0 {
		opts.IdempotencyWindow = time.Hour
	}
	if opts.MaxImageBytes <= 0 {
		opts.MaxImageBytes = ImageBytesLimit
	}
	if opts.Random == nil {
		var seed [32]byte
		_, _ = rand.Read(seed[:])
		opts.Random = mrand.NewChaCha8(seed)
	}
	p := &Platform{db: db, opts: opts, now: time.Now, mux: http.NewServeMux(), rand: mrand.New(opts.Random)}
	p.mux.HandleFunc("GET /authorize", p.authorizePage)
	p.mux.HandleFunc("POST /authorize", p.authorize)
	p.mux.HandleFunc("POST /token", p.token)
	p.mux.HandleFunc("GET /api/me", p.me)
	p.mux.HandleFunc("POST /api/posts", p.createPost)
	p.mux.HandleFunc("DELETE /api/posts/{id}", p.deletePost)
	p.mux.HandleFunc("POST /api/media", p.createImage)
	p.mux.HandleFunc("GET /api/media/{id}", p.imageInfo)
	p.mux.HandleFunc("DELETE /api/media/{id}", p.deleteImage)
	p.mux.HandleFunc("GET /media/{id}", p.serveImage)
	p.mux.HandleFunc("GET /users/{id}/media", p.userImages)
	p.mux.HandleFunc("GET /feed", p.feed)
	p.mux.HandleFunc("PUT /users/{id}/behaviour", p.setBehaviour)
	p.mux.HandleFunc("GET /stalled", p.stalledCount)
	return p
}

func (p *Platform) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// Behaviour is what a sandbox user's next calls answer.
type Behaviour struct {
	// Publish, for the next PublishTimes publishes (0: until changed):
	//   ok
	//   rate_limited   429 with Retry-After
	//   unavailable    503, the post not created
	//   timeout        504, the post not created (an answer that proves
	//                  nothing: PostFlow must treat it as in doubt)
	//   lost_answer    the post created, then 504, as LinkedIn does: the
	//                  answer is lost and a retry gets "duplicate"
	//   expired_token  401 token_expired
	//   rejected       422, the content refused
	//   stall_before   holds the request, unanswered, without creating the
	//                  post, until the caller goes away
	//   stall_after    creates the post, then holds the request likewise
	//                  (with stall_before: a caller killed mid-call)
	//   random         each publish draws: unavailable, rate_limited,
	//                  lost_answer or timeout at the rates below, ok
	//                  otherwise
	Publish      string `bson:"publish" json:"publish"`
	PublishTimes int    `bson:"publishTimes" json:"publishTimes"`
	// PublishSequence scripts the next publishes, one mode each (any of
	// Publish's but random), before Publish applies: ["unavailable",
	// "lost_answer", "unavailable"] answers 503, then 504 with the post
	// made, then 503.
	PublishSequence []string `bson:"publishSequence,omitempty" json:"publishSequence,omitempty"`
	// UploadSequence scripts the next image uploads (POST /api/media), one
	// mode each: ok, rate_limited, unavailable, timeout (504, nothing
	// kept), expired_token or rejected (422).
	UploadSequence []string `bson:"uploadSequence,omitempty" json:"uploadSequence,omitempty"`
	// DeleteSequence scripts the next deletes (DELETE /api/posts/{id}),
	// one mode each: ok, rate_limited, unavailable, timeout (504, nothing
	// deleted), lost_answer (deleted, then 504) or expired_token.
	DeleteSequence []string `bson:"deleteSequence,omitempty" json:"deleteSequence,omitempty"`
	// DiscardImageBytes: an upload's bytes are checked as always, then
	// only their size and SHA-256 are kept, not the bytes, and the feed
	// shows no picture for such an image. For load tests: the bench's
	// 1,200 uploads of 5 MB would fill the development database, which is
	// not what it measures.
	DiscardImageBytes bool `bson:"discardImageBytes,omitempty" json:"discardImageBytes,omitempty"`
	// RetryAfterSeconds is the Retry-After of a 429.
	RetryAfterSeconds int `bson:"retryAfterSeconds" json:"retryAfterSeconds"`
	// UnavailableRate, RateLimitedRate, LostAnswerRate and TimeoutRate are
	// the chances, each in [0, 1] and together at most 1, that a publish
	// of mode random answers 503, 429, 504 with the post created, or 504
	// with nothing created.
	UnavailableRate float64 `bson:"unavailableRate,omitempty" json:"unavailableRate,omitempty"`
	RateLimitedRate float64 `bson:"rateLimitedRate,omitempty" json:"rateLimitedRate,omitempty"`
	LostAnswerRate  float64 `bson:"lostAnswerRate,omitempty" json:"lostAnswerRate,omitempty"`
	TimeoutRate     float64 `bson:"timeoutRate,omitempty" json:"timeoutRate,omitempty"`
	// DuplicateDetection false lets the same text from the user through
	// again within the duplicate window (nil: on). An Idempotency-Key is
	// honoured either way.
	DuplicateDetection *bool `bson:"duplicateDetection,omitempty" json:"duplicateDetection,omitempty"`
	// Refresh: "ok" or "invalid_grant" (every refresh token refused).
	Refresh string `bson:"refresh" json:"refresh"`
	// AccessTokenSeconds, when set, is the life of the access tokens
	// issued to this user from now on (reconnect, refresh): under 5
	// minutes, PostFlow refreshes before each publish.
	AccessTokenSeconds int `bson:"accessTokenSeconds,omitempty" json:"accessTokenSeconds,omitempty"`
}

// publishModes are the values of Behaviour.Publish.
var publishModes = []string{"ok", "rate_limited", "unavailable", "timeout", "lost_answer", "expired_token", "rejected", "stall_before", "stall_after", "random"}

// detectsDuplicates says whether b refuses a repeated text.
func (b Behaviour) detectsDuplicates() bool {
	return b.DuplicateDetection == nil || *b.DuplicateDetection
}

// next is the mode of a publish and the fields of the user's behaviour
// it counts off (nil: none): the first of PublishSequence, else Publish,
// one of its PublishTimes, the last of which switches it back to ok.
func (b Behaviour) next() (mode string, counted bson.D) {
	if seq := b.PublishSequence; len(seq) > 0 {
		return seq[0], bson.D{{Key: "behaviour.publishSequence", Value: seq[1:]}}
	}
	if b.Publish == "ok" || b.Publish == "" || b.PublishTimes <= 0 {
		return b.Publish, nil
	}
	counted = bson.D{{Key: "behaviour.publishTimes", Value: b.PublishTimes - 1}}
	if b.PublishTimes == 1 {
		counted = append(counted, bson.E{Key: "behaviour.publish", Value: "ok"})
	}
	return b.Publish, counted
}

// validRates checks the rates of mode random: each in [0, 1], together at
// most 1 (with room for rounding), and none set for another mode.
func (b Behaviour) validRates() error {
	rates := []float64{b.UnavailableRate, b.RateLimitedRate, b.LostAnswerRate, b.TimeoutRate}
	sum := 0.0
	for _, r := range rates {
		if math.IsNaN(r) || r < 0 || r > 1 {
			return errors.New("unavailableRate, rateLimitedRate, lostAnswerRate and timeoutRate must be between 0 and 1")
		}
		sum += r
	}
	if sum > 1+1e-9 {
		return errors.New("unavailableRate, rateLimitedRate, lostAnswerRate and timeoutRate must add up to at most 1")
	}
	if sum > 0 && b.Publish != "random" {
		return errors.New("unavailableRate, rateLimitedRate, lostAnswerRate and timeoutRate apply to publish random only")
	}
	return nil
}

// draw picks the answer of one publish of mode random.
func (p *Platform) draw(b Behaviour) string {
	p.randMu.Lock()
	x := p.rand.Float64()
	p.randMu.Unlock()
	switch {
	case x < b.UnavailableRate:
		return "unavailable"
	case x < b.UnavailableRate+b.RateLimitedRate:
		return "rate_limited"
	case x < b.UnavailableRate+b.RateLimitedRate+b.LostAnswerRate:
		return "lost_answer"
	case x < b.UnavailableRate+b.RateLimitedRate+b.LostAnswerRate+b.TimeoutRate:
		return "timeout"
	}
	return "ok"
}

type user struct {
	ID        string    `bson:"_id" json:"id"`
	Name      string    `bson:"name" json:"name"`
	Behaviour Behaviour `bson:"behaviour" json:"behaviour"`
}

type grant struct {
	Key         string    `bson:"_id"` // SHA-256 of the code or token
	Kind        string    `bson:"kind"`
	UserID      string    `bson:"userId"`
	RedirectURI string    `bson:"redirectUri,omitempty"`
	Challenge   string    `bson:"challenge,omitempty"`
	ExpiresAt   time.Time `bson:"expiresAt"`
}

// Post is a published sandbox post.
type Post struct {
	ID     string `bson:"_id" json:"id"`
	UserID string `bson:"userId" json:"userId"`
	Text   string `bson:"text" json:"text"`
	// IdempotencyKey is the Idempotency-Key of the create that made it.
	IdempotencyKey string    `bson:"idempotencyKey,omitempty" json:"idempotencyKey,omitempty"`
	CreatedAt      time.Time `bson:"createdAt" json:"createdAt"`
	// Media are the images the post shows, in order.
	Media []PostImage `bson:"media,omitempty" json:"media,omitempty"`
}

func (p *Platform) users() *mongo.Collection  { return p.db.Collection("sandboxUsers") }
func (p *Platform) grants() *mongo.Collection { return p.db.Collection("sandboxGrants") }
func (p *Platform) posts() *mongo.Collection  { return p.db.Collection("sandboxPosts") }
func (p *Platform) recent() *mongo.Collection { return p.db.Collection("sandboxRecent") }
func (p *Platform) keys() *mongo.Collection   { return p.db.Collection("sandboxIdempotencyKeys") }

// Every lookup here filters on _id alone: FerretDB, the dev store, uses an
// index for nothing else and would scan the collection on each call.

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func random(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

var pageTmpl = template.Must(template.New("authorize").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sandbox: authorize PostFlow</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto}button{margin-right:.5rem}</style></head>
<body><h1>Sandbox</h1><p><b>PostFlow</b> wants to publish posts as you.</p>
<form method="post" action="">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<label>Your sandbox name <input name="name" value="Sandbox User" required maxlength="60"></label>
<p><button name="action" value="allow">Authorize</button><button name="action" value="deny">Deny</button></p>
</form></body></html>`))

// authorizeParams checks an authorize request as a real platform does.
func authorizeParams(v url.Values) (map[string]string, error) {
	if v.Get("response_type") != "code" {
		return nil, errors.New("response_type must be code")
	}
	if v.Get("client_id") != ClientID {
		return nil, errors.New("unknown client_id")
	}
	u, err := url.Parse(v.Get("redirect_uri"))
	if err != nil || !u.IsAbs() || u.Fragment != "" {
		return nil, errors.New("redirect_uri must be an absolute URL")
	}
	if v.Get("code_challenge") == "" || v.Get("code_challenge_method") != "S256" {
		return nil, errors.New("PKCE with S256 is required")
	}
	params := map[string]string{}
	for _, k := range []string{"response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope"} {
		if v.Get(k) != "" {
			params[k] = v.Get(k)
		}
	}
	return params, nil
}

func (p *Platform) authorizePage(w http.ResponseWriter, r *http.Request) {
	params, err := authorizeParams(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, map[string]any{"Params": params})
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func (p *Platform) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	params, err := authorizeParams(r.PostForm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(params["redirect_uri"])
	q := back.Query()
	if params["state"] != "" {
		q.Set("state", params["state"])
	}
	if r.PostForm.Get("action") != "allow" {
		q.Set("error", "access_denied")
		back.RawQuery = q.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if name == "" || len(name) > 60 {
		http.Error(w, "name must be 1 to 60 characters", http.StatusBadRequest)
		return
	}
	id := "sbx-" + strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(name), "-"), "-")
	ctx := r.Context()
	_, err = p.users().UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: name}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "behaviour", Value: Behaviour{Publish: "ok", Refresh: "ok"}}}}},
		options.UpdateOne().SetUpsert(true))
	p.cachedUsers.drop(id)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	code := random("sbc_")
	if _, err := p.grants().InsertOne(ctx, grant{Key: hash(code), Kind: "code", UserID: id, RedirectURI: params["redirect_uri"],
		Challenge: params["code_challenge"], ExpiresAt: p.now().Add(10 * time.Minute)}); err != nil {
		p.fail(w, r, err)
		return
	}
	q.Set("code", code)
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (p *Platform) fail(w http.ResponseWriter, r *http.Request, err error) {
	if p.opts.Logger != nil {
		p.opts.Logger.ErrorContext(r.Context(), "sandbox platform failed", "path", r.URL.Path, "error", err)
	}
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
}

// take consumes a code or refresh token: the delete that removes it is
// the one that may use it, so it works once.
func (p *Platform) take(ctx context.Context, secret, kind string) (*grant, error) {
	var g grant
	err := p.grants().FindOne(ctx, bson.D{{Key: "_id", Value: hash(secret)}}).Decode(&g)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if g.Kind != kind {
		return nil, nil
	}
	res, err := p.grants().DeleteOne(ctx, bson.D{{Key: "_id", Value: g.Key}})
	if err != nil {
		return nil, err
	}
	if res.DeletedCount != 1 || !p.now().Before(g.ExpiresAt) {
		return nil, nil
	}
	return &g, nil
}

func (p *Platform) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	f := r.PostForm
	if f.Get("client_id") != ClientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	ctx := r.Context()
	switch f.Get("grant_type") {
	case "authorization_code":
		g, err := p.take(ctx, f.Get("code"), "code")
		if err != nil {
			p.fail(w, r, err)
			return
		}
		if g == nil || g.RedirectURI != f.Get("redirect_uri") {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "The code is unknown, used, expired, or for another redirect_uri.")
			return
		}
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.Challenge {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "The code_verifier does not match the code_challenge.")
			return
		}
		u, err := p.user(ctx, g.UserID)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		p.issue(w, r, u)
	case "refresh_token":
		g, err := p.take(ctx, f.Get("refresh_token"), "refresh")
		if err != nil {
			p.fail(w, r, err)
			return
		}
		if g == nil {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "The refresh token is unknown, used or expired.")
			return
		}
		u, err := p.user(ctx, g.UserID)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		if u.Behaviour.Refresh == "invalid_grant" {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "The refresh token has been revoked.")
			return
		}
		p.issue(w, r, u)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

// user reads a sandbox user by id.
func (p *Platform) user(ctx context.Context, id string) (*user, error) {
	var u user
	if err := p.users().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&u); err != nil {
		return nil, err
	}
	return &u, nil
}

// issue answers a token request with new tokens for u, living as long as
// u's behaviour says.
func (p *Platform) issue(w http.ResponseWriter, r *http.Request, u *user) {
	access, refresh := random("sba_"), random("sbr_")
	now := p.now()
	ttl := p.opts.AccessTTL
	if u.Behaviour.AccessTokenSeconds > 0 {
		ttl = time.Duration(u.Behaviour.AccessTokenSeconds) * time.Second
	}
	_, err := p.grants().InsertMany(r.Context(), []any{
		grant{Key: hash(access), Kind: "access", UserID: u.ID, ExpiresAt: now.Add(ttl)},
		grant{Key: hash(refresh), Kind: "refresh", UserID: u.ID, ExpiresAt: now.Add(90 * 24 * time.Hour)},
	})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": int(ttl.Seconds()),
		"refresh_token": refresh, "refresh_token_expires_in": 90 * 24 * 3600, "scope": "publish profile",
	})
}

// bearer finds the user of a valid access token, or answers 401.
func (p *Platform) bearer(w http.ResponseWriter, r *http.Request) *user {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	key := hash(tok)
	g, ok := p.access.get(key)
	if !ok {
		err := p.grants().FindOne(r.Context(), bson.D{{Key: "_id", Value: key}}).Decode(&g)
		if errors.Is(err, mongo.ErrNoDocuments) || err == nil && g.Kind != "access" {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "message": "The access token is invalid."})
			return nil
		}
		if err != nil {
			p.fail(w, r, err)
			return nil
		}
		p.access.put(g)
	}
	if !p.now().Before(g.ExpiresAt) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "token_expired", "message": "The access token has expired."})
		return nil
	}
	now := p.now()
	u, gen, ok := p.cachedUsers.get(g.UserID, now)
	if !ok {
		if err := p.users().FindOne(r.Context(), bson.D{{Key: "_id", Value: g.UserID}}).Decode(&u); err != nil {
			p.fail(w, r, err)
			return nil
		}
		p.cachedUsers.put(u, gen, now)
	}
	return &u
}

func (p *Platform) me(w http.ResponseWriter, r *http.Request) {
	u := p.bearer(w, r)
	if u == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": u.ID, "name": u.Name, "avatarUrl": ""})
}

// recentPost is the last post of a (user, text).
type recentPost struct {
	ID        string    `bson:"_id,omitempty"` // empty in a $set, which must not touch _id
	PostID    string    `bson:"postId"`
	CreatedAt time.Time `bson:"createdAt"`
}

// TextLimit is the longest post the sandbox takes, in code points.
const TextLimit = 500

// answerFault answers a refusal the user's behaviour switches asked for
// (mode), for a create of what (e.g. "posts"), with rejected as the code of
// a refused one; false when mode is not a refusal.
func answerFault(w http.ResponseWriter, mode string, retryAfterSeconds int, what, rejected string) bool {
	switch mode {
	case "rate_limited":
		wait := max(retryAfterSeconds, 1)
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "rate_limited", "message": "Too many " + what + "; slow down.", "retryAfterSeconds": wait})
	case "unavailable":
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable", "message": "The sandbox is having a bad day."})
	case "timeout":
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": "gateway_timeout", "message": "The sandbox took too long to answer."})
	case "expired_token":
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "token_expired", "message": "The access token has expired."})
	case "rejected":
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": rejected, "message": "The sandbox does not take these " + what + "."})
	default:
		return false
	}
	return true
}

// postBodyLimit caps the body of POST /api/posts.
const postBodyLimit = 512 << 10

// IdempotencyKeyLimit is the longest Idempotency-Key the sandbox takes.
const IdempotencyKeyLimit = 200

func (p *Platform) createPost(w http.ResponseWriter, r *http.Request) {
	u := p.bearer(w, r)
	if u == nil {
		return
	}
	// A platform finishes a create it has begun even if its caller goes
	// away (a worker killed mid-call): a write cut half way would leave a
	// key or a duplicate record naming a post that was never made.
	ctx := context.WithoutCancel(r.Context())
	mode, counted := u.Behaviour.next()
	if counted != nil {
		_, err := p.users().UpdateOne(ctx, bson.D{{Key: "_id", Value: u.ID}}, bson.D{{Key: "$set", Value: counted}})
		p.cachedUsers.drop(u.ID)
		if err != nil {
			p.fail(w, r, err)
			return
		}
	}
	if mode != "ok" && mode != "" {
		if mode == "random" {
			mode = p.draw(u.Behaviour)
		}
		if answerFault(w, mode, u.Behaviour.RetryAfterSeconds, "posts", "content_rejected") {
			return
		}
		switch mode {
		case "stall_before":
			p.hold(w, r)
			return
		}
		// lost_answer: create the post below, then answer as if it had not.
	}
	var body struct {
		Text  string             `json:"text"`
		Media []postImageRequest `json:"media"`
	}
	// 2,000 bytes of text, and 4 alt texts of 1,500 graphemes, which may
	// be emoji of a dozen bytes or more each.
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, postBodyLimit)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "The body must be JSON {\"text\": ..., \"media\": [{\"id\", \"altText\"}]}."})
		return
	}
	if strings.TrimSpace(body.Text) == "" || len([]rune(body.Text)) > TextLimit {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "invalid_text", "message": fmt.Sprintf("Text must be 1 to %d characters.", TextLimit)})
		return
	}
	idemKey := r.Header.Get("Idempotency-Key")
	if len(idemKey) > IdempotencyKeyLimit {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": fmt.Sprintf("Idempotency-Key must be at most %d bytes.", IdempotencyKeyLimit)})
		return
	}
	now := p.now()
	post := Post{ID: random("sbp_"), UserID: u.ID, Text: body.Text, IdempotencyKey: idemKey, CreatedAt: now.UTC()}
	// The key comes first: a repeat of a create answers its post whatever
	// duplicate detection would say of the text, or what became of its
	// images since.
	release := func() error { return nil }
	if idemKey != "" {
		orig, err := p.claimKey(ctx, u.ID, idemKey, post.ID, now)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		if orig != "" {
			writeJSON(w, http.StatusOK, map[string]string{"id": orig})
			return
		}
		release = func() error { return p.releaseKey(ctx, u.ID, idemKey, post.ID) }
	}
	images, ok := p.postImages(ctx, w, r, u.ID, body.Media)
	if !ok {
		_ = release() // Refused: the key makes nothing.
		return
	}
	post.Media = images
	restore := func() error { return nil }
	if u.Behaviour.detectsDuplicates() {
		existing, undo, err := p.claimText(ctx, u.ID, post, now)
		if err != nil {
			_ = release()
			p.fail(w, r, err)
			return
		}
		if existing != "" {
			if err := release(); err != nil {
				p.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "duplicate", "message": "You already posted this: " + existing, "existingId": existing})
			return
		}
		restore = undo
	}
	if _, err := p.posts().InsertOne(ctx, post); err != nil {
		// Not posted: neither the key nor the text may name it.
		_, _ = restore(), release()
		p.fail(w, r, err)
		return
	}
	if mode == "stall_after" {
		p.hold(w, r)
		return
	}
	if mode == "lost_answer" {
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": "gateway_timeout", "message": "The sandbox took too long to answer."})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": post.ID})
}

// deleteModes are the values of Behaviour.DeleteSequence.
var deleteModes = []string{"ok", "rate_limited", "unavailable", "timeout", "lost_answer", "expired_token"}

// deletePost is DELETE /api/posts/{id}: 204 when the user's post is
// deleted (the feed no longer shows it), 404 not_found when no post has
// the id, 403 not_yours for another user's post, which stays. The
// behaviour's DeleteSequence scripts refusals. The text's duplicate claim
// goes with the post, so the same text may be posted again; an
// Idempotency-Key of its create keeps answering its id for its window,
// as a repeat of that create would.
func (p *Platform) deletePost(w http.ResponseWriter, r *http.Request) {
	u := p.bearer(w, r)
	if u == nil {
		return
	}
	ctx := context.WithoutCancel(r.Context()) // As createPost: a delete begun is finished.
	mode := "ok"
	if seq := u.Behaviour.DeleteSequence; len(seq) > 0 {
		mode = seq[0]
		_, err := p.users().UpdateOne(ctx, bson.D{{Key: "_id", Value: u.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "behaviour.deleteSequence", Value: seq[1:]}}}})
		p.cachedUsers.drop(u.ID)
		if err != nil {
			p.fail(w, r, err)
			return
		}
	}
	if answerFault(w, mode, u.Behaviour.RetryAfterSeconds, "deletes", "rejected") {
		return
	}
	var post Post
	err := p.posts().FindOne(ctx, bson.D{{Key: "_id", Value: r.PathValue("id")}}).Decode(&post)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "No such post."})
		return
	case err != nil:
		p.fail(w, r, err)
		return
	case post.UserID != u.ID:
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "not_yours", "message": "That post is another user's."})
		return
	}
	if _, err := p.posts().DeleteOne(ctx, bson.D{{Key: "_id", Value: post.ID}, {Key: "userId", Value: u.ID}}); err != nil {
		p.fail(w, r, err)
		return
	}
	if _, err := p.recent().DeleteOne(ctx, bson.D{{Key: "_id", Value: hash(u.ID + "\n" + post.Text)}, {Key: "postId", Value: post.ID}}); err != nil {
		p.fail(w, r, err)
		return
	}
	if mode == "lost_answer" {
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": "gateway_timeout", "message": "The sandbox took too long to answer."})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// claimText is duplicate detection: it claims post's text for post, or
// answers the id of the user's post with the same text within the
// duplicate window (and claims nothing). undo gives the claim back, for a
// post that is not made after all.
func (p *Platform) claimText(ctx context.Context, userID string, post Post, now time.Time) (existing string, undo func() error, err error) {
	// The last post of each (user, text). A text new to the user is
	// claimed for this post by an insert; one seen before, by a
	// findAndModify that returns the post it named, which a duplicate
	// puts back.
	id := hash(userID + "\n" + post.Text)
	key := bson.D{{Key: "_id", Value: id}}
	var last recentPost
	_, err = p.recent().InsertOne(ctx, recentPost{ID: id, PostID: post.ID, CreatedAt: post.CreatedAt})
	had := mongo.IsDuplicateKeyError(err)
	if had {
		err = p.recent().FindOneAndUpdate(ctx, key, bson.D{{Key: "$set", Value: recentPost{PostID: post.ID, CreatedAt: post.CreatedAt}}},
			options.FindOneAndUpdate().SetUpsert(true)).Decode(&last)
		had = err == nil
		if errors.Is(err, mongo.ErrNoDocuments) {
			err = nil // Gone since the insert: claimed now all the same.
		}
	}
	if err != nil {
		return "", nil, err
	}
	undo = func() error {
		if !had {
			_, err := p.recent().DeleteOne(ctx, key)
			return err
		}
		_, err := p.recent().UpdateOne(ctx, key, bson.D{{Key: "$set", Value: recentPost{PostID: last.PostID, CreatedAt: last.CreatedAt}}})
		return err
	}
	if had && now.Sub(last.CreatedAt) < p.opts.DuplicateWindow {
		return last.PostID, nil, undo()
	}
	return "", undo, nil
}

// keyClaim is an Idempotency-Key a user sent with a create, and the post
// that create makes. Its _id is unique per (user, key), so two processes
// serving one sandbox agree on which create owns a key: the one whose
// insert went in. (An _id, not another unique index: FerretDB, the dev
// store, uses an index for nothing else.)
type keyClaim struct {
	ID        string    `bson:"_id"`
	UserID    string    `bson:"userId"`
	Key       string    `bson:"key"`
	PostID    string    `bson:"postId"`
	CreatedAt time.Time `bson:"createdAt"`
}

// keyWait bounds how long a create waits for another create with its key
// to make its post (a few milliseconds of writes, which no caller going
// away cuts short).
const keyWait = 10 * time.Second

// claimKey claims (user, key) for postID, or answers the post an earlier
// create with it made within the idempotency window. A claim past the
// window is taken over. It waits while a create holding the key has not
// made its post yet.
func (p *Platform) claimKey(ctx context.Context, userID, key, postID string, now time.Time) (string, error) {
	id := hash(userID + "\n" + key)
	deadline := time.Now().Add(keyWait)
	for {
		_, err := p.keys().InsertOne(ctx, keyClaim{ID: id, UserID: userID, Key: key, PostID: postID, CreatedAt: now.UTC()})
		if err == nil {
			return "", nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return "", fmt.Errorf("claim idempotency key: %w", err)
		}
		var c keyClaim
		err = p.keys().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&c)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // Released since: claim it again.
		}
		if err != nil {
			return "", fmt.Errorf("read idempotency key: %w", err)
		}
		if now.Sub(c.CreatedAt) >= p.opts.IdempotencyWindow {
			// Expired: this create owns the key from now, unless another
			// took it over first.
			res, err := p.keys().UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "postId", Value: c.PostID}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "postId", Value: postID}, {Key: "createdAt", Value: now.UTC()}}}})
			if err != nil {
				return "", fmt.Errorf("take over idempotency key: %w", err)
			}
			if res.ModifiedCount == 1 {
				return "", nil
			}
			continue
		}
		err = p.posts().FindOne(ctx, bson.D{{Key: "_id", Value: c.PostID}}).Err()
		if err == nil {
			return c.PostID, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return "", fmt.Errorf("read the post of an idempotency key: %w", err)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("idempotency key held for %s by a create that made no post", keyWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// releaseKey gives back a key claimed for postID, whose create made no post.
func (p *Platform) releaseKey(ctx context.Context, userID, key, postID string) error {
	_, err := p.keys().DeleteOne(ctx, bson.D{{Key: "_id", Value: hash(userID + "\n" + key)}, {Key: "postId", Value: postID}})
	return err
}

// hold keeps a request unanswered until its caller goes away (or for 5
// minutes), counting it in GET /stalled meanwhile.
func (p *Platform) hold(w http.ResponseWriter, r *http.Request) {
	// net/http notices a caller going away only once the body is read.
	_, _ = io.Copy(io.Discard, r.Body)
	p.stalled.Add(1)
	defer p.stalled.Add(-1)
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Minute):
	}
	writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": "gateway_timeout", "message": "The sandbox held this request."})
}

// stalledCount answers how many requests the stall switches hold now.
func (p *Platform) stalledCount(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int64{"stalled": p.stalled.Load()})
}

// FeedLimit is the most posts one feed answer lists.
const FeedLimit = 10_000

// feed lists published posts, newest first: ?user= filters by user,
// ?limit= (1 to FeedLimit, default 200) caps the list. A browser (Accept:
// text/html) gets a page that shows each post's images; any other caller
// JSON, each image with the path its bytes are served at.
func (p *Platform) feed(w http.ResponseWriter, r *http.Request) {
	filter := bson.D{}
	if u := r.URL.Query().Get("user"); u != "" {
		filter = bson.D{{Key: "userId", Value: u}}
	}
	limit := int64(200)
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > FeedLimit {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": fmt.Sprintf("limit must be 1 to %d", FeedLimit)})
			return
		}
		limit = n
	}
	cur, err := p.posts().Find(r.Context(), filter, options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}}).SetLimit(limit))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	posts := []Post{}
	if err := cur.All(r.Context(), &posts); err != nil {
		p.fail(w, r, err)
		return
	}
	withImageURLs(posts, mountedAt(r))
	if wantsHTML(r) {
		writeFeedHTML(w, posts)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"posts": posts})
}

// ReadFeed reads the feed of the sandbox served at base (where it is
// mounted, e.g. "http://127.0.0.1:8080/sandbox"): user's posts (everyone's
// if empty), newest first, up to FeedLimit. It is how a test sees what the
// platform holds. Errors: the call's, an answer other than 200, a body
// that is not a feed.
func ReadFeed(ctx context.Context, base, user string) ([]Post, error) {
	q := url.Values{"limit": {strconv.Itoa(FeedLimit)}}
	if user != "" {
		q.Set("user", user)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/feed?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("sandbox feed: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sandbox feed: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sandbox feed: status %d", res.StatusCode)
	}
	var feed struct{ Posts []Post }
	if err := json.NewDecoder(res.Body).Decode(&feed); err != nil {
		return nil, fmt.Errorf("sandbox feed: %w", err)
	}
	return feed.Posts, nil
}

// CountInFeed counts user's posts (everyone's if empty) in the feed at
// base whose text is text: how a test sees that a post went out once.
// Errors: ReadFeed's.
func CountInFeed(ctx context.Context, base, user, text string) (int, error) {
	feed, err := ReadFeed(ctx, base, user)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range feed {
		if p.Text == text {
			n++
		}
	}
	return n, nil
}

func (p *Platform) setBehaviour(w http.ResponseWriter, r *http.Request) {
	var b Behaviour
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": err.Error()})
		return
	}
	if b.Publish == "" {
		b.Publish = "ok"
	}
	if b.Refresh == "" {
		b.Refresh = "ok"
	}
	switch {
	case !slices.Contains(publishModes, b.Publish):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "publish must be one of " + strings.Join(publishModes, ", ")})
		return
	case b.Refresh != "ok" && b.Refresh != "invalid_grant":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "refresh must be ok or invalid_grant"})
		return
	case b.PublishTimes < 0 || b.RetryAfterSeconds < 0 || b.AccessTokenSeconds < 0:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "publishTimes, retryAfterSeconds and accessTokenSeconds must not be negative"})
		return
	}
	if err := b.validRates(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": err.Error()})
		return
	}
	for _, m := range b.PublishSequence {
		if m == "random" || !slices.Contains(publishModes, m) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "publishSequence holds modes of publish other than random"})
			return
		}
	}
	for _, m := range b.UploadSequence {
		if !slices.Contains(uploadModes, m) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "uploadSequence holds modes among " + strings.Join(uploadModes, ", ")})
			return
		}
	}
	for _, m := range b.DeleteSequence {
		if !slices.Contains(deleteModes, m) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "deleteSequence holds modes among " + strings.Join(deleteModes, ", ")})
			return
		}
	}
	res, err := p.users().UpdateOne(r.Context(), bson.D{{Key: "_id", Value: r.PathValue("id")}}, bson.D{{Key: "$set", Value: bson.D{{Key: "behaviour", Value: b}}}})
	p.cachedUsers.drop(r.PathValue("id"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if res.MatchedCount == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "No such sandbox user."})
		return
	}
	writeJSON(w, http.StatusOK, b)
}
