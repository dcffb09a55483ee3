package activities_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/activities"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/oauthstate"
	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/internal/redistest"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/mastodon"
	"github.com/postflow/postflow/workflows"
)

// GoToSocial ignores Idempotency-Key, so after a lost answer only a read
// back keeps a retry from posting twice: an account connected through
// PostFlow's connections service (the real sign-in on GoToSocial), a first
// attempt whose answer is lost after GoToSocial made the status, then the
// retry: PublishToAccount finds the status (Find) and records it, and
// GoToSocial holds it once, from one create.
func TestMastodonLostAnswerOnGoToSocialPublishesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gts := realpeers.StartGoToSocial(t)
	acct := gts.CreateAccount(t, "alice")

	// A proxy in front of GoToSocial that loses the answer to the next
	// status created, after GoToSocial made it.
	target, _ := url.Parse(gts.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	var loseNext atomic.Bool
	var creates atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/statuses" {
			rp.ServeHTTP(w, r)
			return
		}
		creates.Add(1)
		if !loseNext.CompareAndSwap(true, false) {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		http.Error(w, `{"error":"Gateway Timeout"}`, http.StatusGatewayTimeout)
	}))
	t.Cleanup(proxy.Close)

	store := mongotest.Store(t)
	for _, ix := range []interface{ EnsureIndexes(context.Context) error }{store.Accounts(), store.Posts()} {
		if err := ix.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cipher, _ := tokencipher.New(bytes.Repeat([]byte{5}, 32))
	prov, err := mastodon.New(mastodon.Config{RedirectURI: "http://127.0.0.1:9/connections/callback/mastodon",
		Apps: store.ServerApps(cipher), Servers: netguard.Policy{AllowLocal: true}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := providers.NewRegistry(prov)
	if err != nil {
		t.Fatal(err)
	}
	rdb, _ := redistest.Client(t)
	conns := connections.NewService(store.Accounts(), oauthstate.New(rdb), reg, cipher, slog.New(slog.NewTextHandler(io.Discard, nil)))

	browser, _ := connections.NewBrowserKey()
	authorize, err := conns.ConnectURL(ctx, "mastodon", proxy.URL, "org-1", "user-1", browser)
	if err != nil {
		t.Fatal(err)
	}
	back := gts.SignIn(t, authorize, acct)
	account, err := conns.Callback(ctx, "mastodon", back.Query(), browser)
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	if account.Handle == "" || account.Server != proxy.URL || account.Status != connections.StatusActive {
		t.Fatalf("connected %+v", account)
	}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	(&activities.Activities{Posts: store.Posts(), Accounts: store.Accounts(), Tokens: conns, Providers: reg}).Register(env)
	now := time.Now().UTC()
	text := "Once on GoToSocial, whatever the network loses"
	p, err := store.Posts().Create(ctx, &posts.Post{OrganizationID: "org-1", Content: text, SocialAccountIDs: []string{account.ID},
		Status: posts.StatusPublishing, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	in := workflows.AccountInput{PostID: p.ID, AccountID: account.ID}

	loseNext.Store(true)
	if _, err := env.ExecuteActivity(workflows.PublishToAccountActivity, in); err == nil {
		t.Fatal("the first attempt, whose answer was lost, succeeded")
	}
	if r, err := store.Posts().Result(ctx, p.ID, account.ID); err != nil || !r.InDoubt() {
		t.Fatalf("after the lost answer: %+v, %v; want a result in doubt", r, err)
	}
	v, err := env.ExecuteActivity(workflows.PublishToAccountActivity, in)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	var out workflows.AccountOutcome
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	r, err := store.Posts().Result(ctx, p.ID, account.ID)
	if err != nil {
		t.Fatal(err)
	}

	// What GoToSocial holds, read from it directly.
	token, _, err := conns.ValidAccessToken(ctx, account.ID)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, gts.URL+"/api/v1/accounts/"+account.PlatformUserID+"/statuses?limit=40", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var held []struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&held); err != nil {
		t.Fatal(err)
	}
	if out.Status != "published" || r.Status != posts.ResultPublished || len(held) != 1 || r.PlatformPostID != held[0].ID || creates.Load() != 1 {
		t.Errorf("outcome %s, result %s %s; GoToSocial holds %v from %d creates; want published, the one status, one create",
			out.Status, r.Status, r.PlatformPostID, held, creates.Load())
	}
}
