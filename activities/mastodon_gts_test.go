package activities_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/internal/testworld"
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
	var loseNext, dropNext atomic.Bool
	var creates atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/statuses" {
			rp.ServeHTTP(w, r)
			return
		}
		if dropNext.CompareAndSwap(true, false) {
			// No answer, and GoToSocial never saw the call.
			http.Error(w, `{"error":"Gateway Timeout"}`, http.StatusGatewayTimeout)
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

	w := testworld.New(t, testworld.Options{Providers: func(w *testworld.World) ([]providers.Provider, error) {
		p, err := mastodon.New(mastodon.Config{RedirectURI: "http://127.0.0.1:9/connections/callback/mastodon",
			Apps: w.Store.ServerApps(w.Cipher), Servers: netguard.Policy{AllowLocal: true}})
		return []providers.Provider{p}, err
	}})
	account := w.MustConnect(t, "mastodon", proxy.URL, "org-1", "user-1", func(u string) url.Values {
		return gts.SignIn(t, u, acct).Query()
	})
	if account.Handle == "" || account.Server != proxy.URL || account.Status != connections.StatusActive {
		t.Fatalf("connected %+v", account)
	}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	w.Activities().Register(env)
	text := "Once on GoToSocial, whatever the network loses"
	p := w.MustPost(t, account, text, posts.StatusPublishing)
	in := workflows.AccountInput{PostID: p.ID, AccountID: account.ID}

	loseNext.Store(true)
	if _, err := env.ExecuteActivity(workflows.PublishToAccountActivity, in); err == nil {
		t.Fatal("the first attempt, whose answer was lost, succeeded")
	}
	if r, err := w.Store.Posts().Result(ctx, p.ID, account.ID); err != nil || !r.InDoubt() {
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
	r, err := w.Store.Posts().Result(ctx, p.ID, account.ID)
	if err != nil {
		t.Fatal(err)
	}

	// What GoToSocial holds, read from it directly.
	token, _, err := w.Connections.ValidAccessToken(ctx, account.ID)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, gts.URL+"/api/v1/accounts/"+mastodon.LocalID(account.PlatformUserID)+"/statuses?limit=40", nil)
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
	// Another post with the same text, published first; then this one,
	// whose first attempt never reached GoToSocial. Its read back finds
	// the other's status (same text, within the window) and must leave it
	// to the post that holds it: the retry posts its own.
	same := "Same words, two posts"
	other := w.MustPost(t, account, same, posts.StatusPublishing)
	if _, err := env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: other.ID, AccountID: account.ID}); err != nil {
		t.Fatal(err)
	}
	mine := w.MustPost(t, account, same, posts.StatusPublishing)
	in = workflows.AccountInput{PostID: mine.ID, AccountID: account.ID}
	dropNext.Store(true)
	if _, err := env.ExecuteActivity(workflows.PublishToAccountActivity, in); err == nil {
		t.Fatal("the attempt that never reached GoToSocial succeeded")
	}
	if _, err := env.ExecuteActivity(workflows.PublishToAccountActivity, in); err != nil {
		t.Fatalf("retry: %v", err)
	}
	theirs, _ := w.Store.Posts().Result(ctx, other.ID, account.ID)
	ours, _ := w.Store.Posts().Result(ctx, mine.ID, account.ID)
	if ours.Status != posts.ResultPublished || ours.PlatformPostID == "" || ours.PlatformPostID == theirs.PlatformPostID {
		t.Errorf("this post's result %+v, the other's %s: want published with a status of its own", ours, theirs.PlatformPostID)
	}
}
