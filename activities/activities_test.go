package activities_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/linkedin"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
	"github.com/postflow/postflow/workflows"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// world is the activities against a real MongoDB-protocol store, a real
// Redis and the in-test LinkedIn, with one connected account.
type world struct {
	tw      *testworld.World
	fake    *linkedinfake.Server
	store   *mongostore.Store
	conns   *connections.Service
	env     *testsuite.TestActivityEnvironment
	account *connections.Account
	li      providers.Provider
	reg     *providers.Registry
	// sandbox is the sandbox platform, beside LinkedIn: connectSandbox
	// connects accounts on it.
	sandbox *httptest.Server
}

func newWorld(t *testing.T) *world {
	t.Helper()
	// Pages enabled: the member may add pages (pages_test.go).
	tw := testworld.New(t, testworld.Options{Sandbox: true, LinkedInPages: true})
	account := tw.MustConnectLinkedIn(t, "org-1", "user-1")

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	tw.Activities().Register(env)
	return &world{tw: tw, fake: tw.LinkedInFake, store: tw.Store, conns: tw.Connections, env: env, account: account, li: tw.LinkedIn, reg: tw.Registry, sandbox: tw.Sandbox}
}

// post makes a post with status to the world's LinkedIn account.
func (w *world) post(t *testing.T, content string, status posts.Status) *posts.Post {
	t.Helper()
	return w.postTo(t, content, status, w.account)
}

// postTo makes a post with status to one account, in its organization.
func (w *world) postTo(t *testing.T, content string, status posts.Status, account *connections.Account) *posts.Post {
	t.Helper()
	return w.tw.MustPost(t, account, content, status)
}

func (w *world) publish(t *testing.T, p *posts.Post) (*workflows.AccountOutcome, error) {
	t.Helper()
	return w.publishTo(t, p, w.account.ID)
}

func (w *world) publishTo(t *testing.T, p *posts.Post, accountID string) (*workflows.AccountOutcome, error) {
	t.Helper()
	v, err := w.env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: p.ID, AccountID: accountID})
	if err != nil {
		return nil, err
	}
	var out workflows.AccountOutcome
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return &out, nil
}

func (w *world) result(t *testing.T, p *posts.Post) *posts.Result {
	t.Helper()
	r, err := w.store.Posts().Result(context.Background(), p.ID, w.account.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPublishRecordsTheResult(t *testing.T) {
	w := newWorld(t)
	p := w.post(t, "Hello (LinkedIn)", posts.StatusPublishing)
	out, err := w.publish(t, p)
	if err != nil || out.Status != "published" {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	lp := w.fake.Posts()
	r := w.result(t, p)
	if len(lp) != 1 || r.Status != posts.ResultPublished || r.PlatformPostID != lp[0].URN ||
		r.PlatformPostURL != "https://www.linkedin.com/feed/update/"+lp[0].URN || r.PublishedAt == nil {
		t.Fatalf("LinkedIn has %v; result %+v", lp, r)
	}
	if out.PlatformPostID != lp[0].URN || r.Attempts != 1 || r.AttemptedAt == nil {
		t.Errorf("outcome %+v; result %+v, want 1 attempt", out, r)
	}
	// A second execution (a retry, a trigger, a reset) posts nothing more.
	if out, err := w.publish(t, p); err != nil || out.Status != "published" {
		t.Errorf("second run: %+v, %v", out, err)
	}
	if n := len(w.fake.Posts()); n != 1 {
		t.Errorf("LinkedIn has %d posts after a second run, want 1", n)
	}
}

func TestDuplicateAfterALostAnswerCountsAsPublished(t *testing.T) {
	w := newWorld(t)
	p := w.post(t, "once only", posts.StatusPublishing)
	w.fake.Configure(func(s *linkedinfake.Server) { s.CreateThenFail = true })
	_, err := w.publish(t, p)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrPlatformUnavailable {
		t.Fatalf("first attempt: %v, want PlatformUnavailable", err)
	}
	out, err := w.publish(t, p)
	if err != nil || out.Status != "published" {
		t.Fatalf("retry: %+v, %v", out, err)
	}
	lp := w.fake.Posts()
	if r := w.result(t, p); len(lp) != 1 || r.PlatformPostID != lp[0].URN || r.PlatformPostURL != "https://www.linkedin.com/feed/update/"+lp[0].URN {
		t.Errorf("LinkedIn has %v; result %+v", lp, r)
	}
}

// A publish whose worker died, or whose answer was lost, leaves its
// result in publishing. The next attempt must end with exactly one post
// on the platform, or say it cannot know.
func TestExactlyOnceAfterAnInterruptedAttempt(t *testing.T) {
	tests := []struct {
		name string
		// platformHasIt: the interrupted attempt reached the platform.
		platformHasIt bool
		attemptAge    time.Duration
		// then: what happens to the account's token before the next
		// attempt: "refresh refused", "access revoked", or nothing.
		then         string
		wantStatus   string
		wantPosts    int
		wantAttempts int
	}{
		{name: "died before the call: posts now", wantStatus: "published", wantPosts: 1, wantAttempts: 2},
		{name: "died after the call, before the result was stored: the duplicate answer names it", platformHasIt: true, wantStatus: "published", wantPosts: 1, wantAttempts: 2},
		{name: "past the duplicate window: unknown, not posted again", platformHasIt: true, attemptAge: linkedin.DuplicateWindow + time.Minute, wantStatus: "unknown", wantPosts: 1, wantAttempts: 1},
		{name: "past the window, never reached the platform: still unknown", attemptAge: time.Hour, wantStatus: "unknown", wantPosts: 0, wantAttempts: 1},
		// The account's failure says nothing of what the earlier attempt did.
		{name: "then the refresh is refused: unknown, not failed", platformHasIt: true, then: "refresh refused", wantStatus: "unknown", wantPosts: 1, wantAttempts: 1},
		{name: "then the platform refuses the token: unknown, not failed", platformHasIt: true, then: "access revoked", wantStatus: "unknown", wantPosts: 1, wantAttempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			p := w.post(t, "exactly once, "+tt.name, posts.StatusPublishing)
			// What the interrupted attempt left: its record, and perhaps
			// the post at LinkedIn.
			at := time.Now().Add(-tt.attemptAge).UTC()
			if err := w.store.Posts().SaveResult(ctx, &posts.Result{PostID: p.ID, SocialAccountID: w.account.ID,
				Status: posts.ResultPublishing, Attempts: 1, AttemptedAt: &at}); err != nil {
				t.Fatal(err)
			}
			if tt.platformHasIt {
				tok, _, err := w.conns.ValidAccessToken(ctx, w.account.ID)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.li.Publish(ctx, providers.Account{PlatformUserID: w.account.PlatformUserID, AccessToken: tok}, providers.Payload{Text: p.Content}); err != nil {
					t.Fatal(err)
				}
			}
			switch tt.then {
			case "refresh refused":
				expireStoredToken(t, w)
				w.fake.RevokeAllRefreshTokens()
			case "access revoked":
				revokeStoredToken(w)
			}

			out, err := w.publish(t, p)
			if err != nil || out.Status != tt.wantStatus {
				t.Fatalf("outcome %+v, %v; want %s", out, err, tt.wantStatus)
			}
			lp := w.fake.Posts()
			if len(lp) != tt.wantPosts {
				t.Fatalf("LinkedIn has %d posts, want %d", len(lp), tt.wantPosts)
			}
			r := w.result(t, p)
			switch tt.wantStatus {
			case "published":
				if r.Status != posts.ResultPublished || r.PlatformPostID != lp[0].URN || r.Attempts != tt.wantAttempts {
					t.Errorf("result %+v, want published %s after %d attempts", r, lp[0].URN, tt.wantAttempts)
				}
			case "unknown":
				if r.Status != posts.ResultUnknown || r.ErrorCode != "OUTCOME_UNKNOWN" || r.Attempts != tt.wantAttempts ||
					!strings.Contains(r.ErrorMessage, "Check the account's feed") || !strings.Contains(r.ErrorMessage, "/posts/"+p.ID+"/retry naming account "+w.account.ID) {
					t.Errorf("result %+v", r)
				}
				// And an unknown outcome is never retried by itself.
				if out, err := w.publish(t, p); err != nil || out.Status != "unknown" || len(w.fake.Posts()) != tt.wantPosts {
					t.Errorf("again: %+v, %v; LinkedIn has %d posts", out, err, len(w.fake.Posts()))
				}
			}
			if a, _ := w.store.Accounts().GetByID(ctx, w.account.ID); (tt.then != "") != (a.Status == connections.StatusExpired) {
				t.Errorf("account %s after %q", a.Status, tt.then)
			}
		})
	}
}

// When the workflow gives up on an account, the result says failed if the
// platform refused the last attempt, and unknown if its answer left it in
// doubt.
// RecordPublishFailure records what the workflow decided, with the
// category of the last answer when the workflow passes that answer's code
// (retries used up), or of the workflow's own code (codes PostFlow keeps
// in posts, as the workflow spells them).
func TestRecordFailureAfterTheLastAttempt(t *testing.T) {
	for _, tt := range []struct {
		name         string
		status       int    // the last attempt's answer; 0: no attempt
		code         string // what the workflow passes
		wantStatus   posts.ResultStatus
		wantCode     string
		wantCategory posts.Category
		// lastMessage: the result keeps the network's message of the last
		// answer (as any refusal's result does), not the workflow's
		// error text, which wraps it in Go's words.
		lastMessage bool
	}{
		{"retries used up on 503s", 503, "HTTP_503", posts.ResultFailed, "HTTP_503", posts.CategoryPlatformUnavailable, true},
		{"retries used up on 504s", 504, "HTTP_504", posts.ResultUnknown, posts.CodeOutcomeUnknown, posts.CategoryOutcomeUnknown, false},
		{"rate limited past the horizon", 429, "RATE_LIMIT_HORIZON", posts.ResultFailed, "RATE_LIMIT_HORIZON", posts.CategoryQuotaExhausted, false},
		{"cancelled", 0, workflows.CodeCancelled, posts.ResultFailed, workflows.CodeCancelled, posts.CategoryCancelled, false},
		{"an error of ours, retries used up", 0, "PUBLISH_FAILED", posts.ResultFailed, "PUBLISH_FAILED", posts.CategoryInternal, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			p := w.post(t, "given up", posts.StatusPublishing)
			attempts := 0
			if tt.status != 0 {
				attempts = 1
				w.fake.Configure(func(s *linkedinfake.Server) { s.PostStatus, s.PostFailures = tt.status, 1 })
				if _, err := w.publish(t, p); err == nil {
					t.Fatal("the attempt did not fail")
				}
			}
			wantMessage := "given up"
			if tt.lastMessage {
				wantMessage = w.result(t, p).ErrorMessage
			}
			if _, err := w.env.ExecuteActivity(workflows.RecordFailureActivity, workflows.FailureInput{PostID: p.ID, AccountID: w.account.ID, Code: tt.code, Message: "given up"}); err != nil {
				t.Fatal(err)
			}
			r := w.result(t, p)
			if r.Status != tt.wantStatus || r.ErrorCode != tt.wantCode || r.Attempts != attempts ||
				r.ErrorCategory != tt.wantCategory || r.ErrorAction != tt.wantCategory.Action() {
				t.Errorf("result %+v, want %s %s (%s)", r, tt.wantStatus, tt.wantCode, tt.wantCategory)
			}
			if tt.wantStatus == posts.ResultFailed && (r.ErrorMessage != wantMessage || wantMessage == "") {
				t.Errorf("message %q, want %q", r.ErrorMessage, wantMessage)
			}
		})
	}
}

func TestFailuresByKind(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(w *world)
		content string
		wantErr string // the workflow's error type, if an error
		// wantStatus: what the result says after an error: pending when
		// the platform refused (nothing to reconcile), publishing when
		// the answer leaves the attempt in doubt.
		wantStatus posts.ResultStatus
		wantCode   string // the recorded result's code, if an outcome
		// wantCategory is the recorded result's category, the same list
		// for every network.
		wantCategory posts.Category
		expired      bool
	}{
		{
			name:     "revoked token marks the account expired",
			prepare:  func(w *world) { revokeStoredToken(w) },
			wantCode: "REVOKED_ACCESS_TOKEN", wantCategory: posts.CategoryAuthExpired, expired: true,
		},
		{
			name:     "too long for LinkedIn",
			content:  strings.Repeat("x", 3001),
			wantCode: "TEXT_TOO_LONG", wantCategory: posts.CategoryContentRejected,
		},
		{
			name: "DAY limit is a rate limit to midnight UTC",
			prepare: func(w *world) {
				w.fake.Configure(func(s *linkedinfake.Server) { s.PostStatus, s.PostFailures = 429, 1 })
			},
			wantErr: workflows.ErrRateLimited, wantStatus: posts.ResultPending, wantCode: "TOO_MANY_REQUESTS", wantCategory: posts.CategoryRateLimited,
		},
		{
			name: "503 is for the retry policy",
			prepare: func(w *world) {
				w.fake.Configure(func(s *linkedinfake.Server) { s.PostStatus, s.PostFailures = 503, 1 })
			},
			wantErr: workflows.ErrPlatformUnavailable, wantStatus: posts.ResultPending, wantCode: "HTTP_503", wantCategory: posts.CategoryPlatformUnavailable,
		},
		{
			name: "504 leaves the attempt in doubt",
			prepare: func(w *world) {
				w.fake.Configure(func(s *linkedinfake.Server) { s.PostStatus, s.PostFailures = 504, 1 })
			},
			wantErr: workflows.ErrPlatformUnavailable, wantStatus: posts.ResultPublishing, wantCode: "HTTP_504", wantCategory: posts.CategoryPlatformUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			content := tt.content
			if content == "" {
				content = "hi"
			}
			p := w.post(t, content, posts.StatusPublishing)
			if tt.prepare != nil {
				tt.prepare(w)
			}
			out, err := w.publish(t, p)
			if tt.wantErr != "" {
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) || appErr.Type() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				if tt.wantErr == workflows.ErrRateLimited {
					var d time.Duration
					if appErr.Details(&d); d <= 0 || d > 24*time.Hour || !appErr.NonRetryable() {
						t.Errorf("retry after %v, non-retryable %v", d, appErr.NonRetryable())
					}
				}
				if r := w.result(t, p); r.Status != tt.wantStatus || r.ErrorCode != tt.wantCode || r.Attempts != 1 || r.AttemptedAt == nil ||
					r.ErrorCategory != tt.wantCategory || r.ErrorAction != tt.wantCategory.Action() {
					t.Errorf("result %+v, want %s %s (%s) after 1 attempt", r, tt.wantStatus, tt.wantCode, tt.wantCategory)
				}
				return
			}
			if err != nil || out.Status != "failed" || out.ErrorCode != tt.wantCode {
				t.Fatalf("outcome %+v, %v; want failed %s", out, err, tt.wantCode)
			}
			if r := w.result(t, p); r.Status != posts.ResultFailed || r.ErrorCode != tt.wantCode || r.ErrorMessage == "" ||
				r.ErrorCategory != tt.wantCategory || r.ErrorAction != tt.wantCategory.Action() {
				t.Errorf("result %+v, want category %s", r, tt.wantCategory)
			}
			a, _ := w.store.Accounts().GetByID(context.Background(), w.account.ID)
			if (a.Status == connections.StatusExpired) != tt.expired {
				t.Errorf("account status %s", a.Status)
			}
		})
	}
}

// An account an earlier attempt settled keeps its outcome when a retry or
// a re-run finds its token no longer works: the platform has the post (or
// may have it), and the account's failure is not the post's.
func TestSettledAccountStandsWhenItsTokenFails(t *testing.T) {
	at := time.Now().UTC().Truncate(time.Millisecond)
	tests := []struct {
		name    string
		settled posts.Result
		want    string
	}{
		{name: "published", settled: posts.Result{Status: posts.ResultPublished, PlatformPostID: "urn:li:share:7", PublishedAt: &at}, want: "published"},
		{name: "unknown", settled: posts.Result{Status: posts.ResultUnknown, ErrorCode: "OUTCOME_UNKNOWN"}, want: "unknown"},
		{name: "in doubt: unknown, not failed", settled: posts.Result{Status: posts.ResultPublishing, AttemptedAt: &at}, want: "unknown"},
		{name: "failed before: fails again, with the token's reason", settled: posts.Result{Status: posts.ResultFailed, ErrorCode: "TEXT_TOO_LONG"}, want: "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			p := w.post(t, "settled", posts.StatusFailed)
			r := tt.settled
			r.PostID, r.SocialAccountID, r.Attempts = p.ID, w.account.ID, 1
			if err := w.store.Posts().SaveResult(ctx, &r); err != nil {
				t.Fatal(err)
			}
			// The access token has expired and LinkedIn refuses the
			// refresh token: invalid_grant.
			expireStoredToken(t, w)
			w.fake.RevokeAllRefreshTokens()

			// The workflow refreshes a token about to expire first, then
			// publishes: both keep the outcome.
			v, err := w.env.ExecuteActivity(workflows.RefreshTokenActivity, workflows.AccountInput{PostID: p.ID, AccountID: w.account.ID})
			var refreshed workflows.AccountOutcome
			if err != nil || v.Get(&refreshed) != nil || refreshed.Status != tt.want {
				t.Fatalf("refresh: outcome %+v, %v; want %s", refreshed, err, tt.want)
			}
			out, err := w.publish(t, p)
			if err != nil || out.Status != tt.want {
				t.Fatalf("outcome %+v, %v; want %s", out, err, tt.want)
			}
			got := w.result(t, p)
			switch {
			case tt.want == "failed":
				if got.Status != posts.ResultFailed || got.ErrorCode == tt.settled.ErrorCode {
					t.Errorf("result %+v, want failed for the token", got)
				}
			case tt.settled.Status == posts.ResultPublishing:
				if got.Status != posts.ResultUnknown || got.ErrorCode != "OUTCOME_UNKNOWN" || got.Attempts != 1 {
					t.Errorf("result %+v, want unknown", got)
				}
			case got.Status != tt.settled.Status || got.ErrorCode != tt.settled.ErrorCode || got.PlatformPostID != tt.settled.PlatformPostID || got.Attempts != 1:
				t.Errorf("result %+v, want it as it was", got)
			}
			if out.Status == "published" && (out.PlatformPostID != "urn:li:share:7" || out.PublishedAt == nil || !out.PublishedAt.Equal(at)) {
				t.Errorf("outcome %+v, want the recorded post", out)
			}
			if n := len(w.fake.Posts()); n != 0 {
				t.Errorf("LinkedIn got %d posts", n)
			}
			if a, _ := w.store.Accounts().GetByID(ctx, w.account.ID); a.Status != connections.StatusExpired {
				t.Errorf("account %s, want expired: LinkedIn said so", a.Status)
			}
		})
	}
}

// expireStoredToken makes the access token PostFlow holds expired, as far
// as PostFlow knows, so that the next use refreshes it first.
func expireStoredToken(t *testing.T, w *world) {
	t.Helper()
	oid, _ := bson.ObjectIDFromHex(w.account.ID)
	if _, err := w.store.DB.Collection("socialAccounts").UpdateOne(context.Background(), bson.D{{Key: "_id", Value: oid}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "tokenExpiresAt", Value: time.Now().Add(-time.Hour)}}}}); err != nil {
		t.Fatal(err)
	}
}

// revokeStoredToken revokes, at LinkedIn, the access token PostFlow holds.
func revokeStoredToken(w *world) {
	tok, _, err := w.conns.ValidAccessToken(context.Background(), w.account.ID)
	if err != nil {
		panic(err)
	}
	w.fake.RevokeAccessToken(tok)
}

func TestStartAndFinish(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	start := func(p *posts.Post) workflows.StartResult {
		v, err := w.env.ExecuteActivity(workflows.StartPublishingActivity, workflows.StartInput{PostID: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		var r workflows.StartResult
		_ = v.Get(&r)
		return r
	}
	draft := w.post(t, "draft", posts.StatusDraft)
	if r := start(draft); !r.Skip || r.Status != "draft" {
		t.Errorf("draft: %+v", r)
	}
	queued := w.post(t, "queued", posts.StatusQueued)
	r := start(queued)
	if r.Skip || len(r.Accounts) != 1 || r.Accounts[0].ID != w.account.ID || r.Accounts[0].Platform != "linkedin" || r.Accounts[0].NeedsRefresh {
		t.Errorf("queued: %+v", r)
	}
	if p, _ := w.store.Posts().GetByID(ctx, queued.ID); p.Status != posts.StatusPublishing {
		t.Errorf("status after start = %s", p.Status)
	}
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	scheduled := w.post(t, "later", posts.StatusScheduled)
	scheduled.ScheduledAt = &later
	if _, err := w.store.Posts().Update(ctx, scheduled, posts.StatusScheduled); err != nil {
		t.Fatal(err)
	}
	if r := start(scheduled); r.Skip || !r.WaitUntil.Equal(later) {
		t.Errorf("scheduled: %+v, want wait until %v", r, later)
	}
	if p, _ := w.store.Posts().GetByID(ctx, scheduled.ID); p.Status != posts.StatusScheduled {
		t.Errorf("a post waiting for its time is %s", p.Status)
	}

	// Finish: one account published → published; failed → failed with
	// why. Runs pass their outcomes; runs recorded before that pass none,
	// and FinishPost reads the post's results instead.
	for _, withOutcomes := range []bool{true, false} {
		finish := func(p *posts.Post, out *workflows.AccountOutcome) *posts.Post {
			t.Helper()
			in := workflows.FinishInput{PostID: p.ID}
			if withOutcomes {
				in.Outcomes = []workflows.AccountOutcome{*out}
			}
			if _, err := w.env.ExecuteActivity(workflows.FinishPostActivity, in); err != nil {
				t.Fatal(err)
			}
			got, _ := w.store.Posts().GetByID(ctx, p.ID)
			return got
		}
		good := w.post(t, fmt.Sprintf("good %v", withOutcomes), posts.StatusPublishing)
		out, err := w.publish(t, good)
		if err != nil {
			t.Fatal(err)
		}
		r := w.result(t, good)
		if got := finish(good, out); got.Status != posts.StatusPublished || got.PublishedAt == nil || !got.PublishedAt.Equal(*r.PublishedAt) {
			t.Errorf("outcomes %v: finished %+v, result %+v", withOutcomes, got, r)
		}
		bad := w.post(t, strings.Repeat("y", 3001), posts.StatusPublishing)
		if out, err = w.publish(t, bad); err != nil {
			t.Fatal(err)
		}
		if got := finish(bad, out); got.Status != posts.StatusFailed || got.FailureCode != "TEXT_TOO_LONG" || !strings.Contains(got.FailureReason, "1 of 1 accounts failed") {
			t.Errorf("outcomes %v: finished %+v", withOutcomes, got)
		}
	}

	// A post deleted while its run published: nothing to finish.
	gone := w.post(t, "gone", posts.StatusPublishing)
	out, err := w.publish(t, gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.Posts().Delete(ctx, gone.OrganizationID, gone.ID); err != nil {
		t.Fatal(err)
	}
	v, err := w.env.ExecuteActivity(workflows.FinishPostActivity, workflows.FinishInput{PostID: gone.ID, Outcomes: []workflows.AccountOutcome{*out}})
	if err != nil {
		t.Fatal(err)
	}
	var fin workflows.FinishResult
	if err := v.Get(&fin); err != nil || fin.Status != "deleted" {
		t.Errorf("finishing a deleted post: %+v", fin)
	}
}

// The branch that records a post's last published result sets the post
// published; any other state of the other accounts leaves it to FinishPost.
func TestLastPublishedAccountFinishesThePost(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	tests := []struct {
		name   string
		finish bool
		other  *posts.Result // the result of a second account; nil: no second account
		want   bool          // the post is published, by this branch
		wantAt *time.Time    // its publishedAt, when not this account's
	}{
		{name: "only account", finish: true, want: true},
		{name: "asked not to (a run before version 2)", finish: false},
		{name: "the other account published later", finish: true, other: &posts.Result{Status: posts.ResultPublished, PublishedAt: &later}, want: true, wantAt: &later},
		{name: "the other account failed", finish: true, other: &posts.Result{Status: posts.ResultFailed, ErrorCode: "TEXT_TOO_LONG"}},
		{name: "the other account still publishing", finish: true, other: &posts.Result{Status: posts.ResultPublishing}},
		{name: "the other account not started", finish: true, other: &posts.Result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := w.post(t, tt.name, posts.StatusPublishing)
			if tt.other != nil {
				p.SocialAccountIDs = append(p.SocialAccountIDs, "000000000000000000000099")
				if _, err := w.store.Posts().Update(ctx, p, posts.StatusPublishing); err != nil {
					t.Fatal(err)
				}
				if tt.other.Status != "" {
					tt.other.PostID, tt.other.SocialAccountID = p.ID, p.SocialAccountIDs[1]
					if err := w.store.Posts().SaveResult(ctx, tt.other); err != nil {
						t.Fatal(err)
					}
				}
			}
			v, err := w.env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: p.ID, AccountID: w.account.ID, FinishPost: tt.finish})
			if err != nil {
				t.Fatal(err)
			}
			var out workflows.AccountOutcome
			if err := v.Get(&out); err != nil || out.Status != "published" {
				t.Fatalf("outcome %+v, %v", out, err)
			}
			got, _ := w.store.Posts().GetByID(ctx, p.ID)
			if out.FinishedPost != tt.want || (got.Status == posts.StatusPublished) != tt.want {
				t.Fatalf("FinishedPost %v, post %s; want finished %v", out.FinishedPost, got.Status, tt.want)
			}
			if !tt.want {
				return
			}
			wantAt := w.result(t, p).PublishedAt
			if tt.wantAt != nil {
				wantAt = tt.wantAt
			}
			if got.PublishedAt == nil || !got.PublishedAt.Equal(*wantAt) {
				t.Errorf("publishedAt %v, want %v", got.PublishedAt, wantAt)
			}
			// A retry finds its result published and does not look again:
			// the workflow's FinishPost then does what is left.
			if out, err := w.publish(t, p); err != nil || out.FinishedPost {
				t.Errorf("retry: %+v, %v", out, err)
			}
		})
	}
}
