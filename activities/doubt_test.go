package activities_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/sandboxplatform"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
	"github.com/postflow/postflow/workflows"
)

// runAsTheWorkflow calls PublishToAccount as PublishPost does: a rate
// limit is a wait and then a fresh activity, an outage is one of the
// retry policy's attempts, and when those run out RecordPublishFailure
// records the end. It returns the last outcome's status ("" when the
// attempts ran out).
func (w *world) runAsTheWorkflow(t *testing.T, p *posts.Post) string {
	t.Helper()
	attempts := 0
	for calls := 0; calls < 20; calls++ {
		out, err := w.publish(t, p)
		if err == nil {
			return out.Status
		}
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			t.Fatalf("call %d: %v", calls+1, err)
		}
		switch appErr.Type() {
		case workflows.ErrRateLimited:
			attempts = 0
			continue
		case workflows.ErrPlatformUnavailable:
			if attempts++; attempts < int(workflows.PublishRetryPolicy.MaximumAttempts) {
				continue
			}
		default:
			t.Fatalf("call %d: %v", calls+1, err)
		}
		if _, err := w.env.ExecuteActivity(workflows.RecordFailureActivity, workflows.FailureInput{
			PostID: p.ID, AccountID: w.account.ID, Code: "HTTP_503", Message: "retries used up"}); err != nil {
			t.Fatal(err)
		}
		return ""
	}
	t.Fatal("no end after 20 calls")
	return ""
}

// Every order of four platform answers (503, 429, 504 without a post, a
// post made and its answer lost, 401), then ordinary answers: the platform
// holds the post at most once, and the result never says failed while it
// holds it. Once an attempt is in doubt, only proof settles it: a later
// refusal, timeout or auth failure leaves it unknown.
func TestEveryOrderOfFourAnswers(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	kinds := []string{"503", "429", "504", "lost", "401"}
	var orders [][]string
	for i := range len(kinds) * len(kinds) * len(kinds) * len(kinds) {
		var order []string
		for n := i; len(order) < 4; n /= len(kinds) {
			order = append(order, kinds[n%len(kinds)])
		}
		orders = append(orders, order)
	}
	for _, order := range orders {
		name := strings.Join(order, ",")
		t.Run(name, func(t *testing.T) {
			if err := w.store.Accounts().SetStatus(ctx, w.account.ID, connections.StatusActive); err != nil {
				t.Fatal(err)
			}
			text := "every order: " + name
			p := w.post(t, text, posts.StatusPublishing)
			w.fake.Configure(func(s *linkedinfake.Server) { s.Answers = slices.Clone(order) })
			w.runAsTheWorkflow(t, p)
			var left []string
			w.fake.Configure(func(s *linkedinfake.Server) { left, s.Answers = s.Answers, nil })
			// The answers the platform gave: the script, less what is left.
			given := order[:len(order)-len(left)]
			doubt := slices.Contains(given, "504") || slices.Contains(given, "lost")

			var held []linkedinfake.Post
			for _, lp := range w.fake.Posts() {
				if lp.Commentary == text {
					held = append(held, lp)
				}
			}
			r := w.result(t, p)
			switch {
			case len(held) > 1:
				t.Fatalf("LinkedIn holds the post %d times", len(held))
			case r == nil:
				t.Fatal("no result")
			case r.Status == posts.ResultPublished:
				if len(held) != 1 || r.PlatformPostID != held[0].URN || r.PlatformPostURL == "" {
					t.Errorf("result %+v; LinkedIn holds %v", r, held)
				}
			case r.Status == posts.ResultFailed:
				if len(held) != 0 {
					t.Errorf("result failed (%s) while LinkedIn holds %s", r.ErrorCode, held[0].URN)
				}
			case r.Status == posts.ResultUnknown:
				if !doubt {
					t.Errorf("unknown after %v, which left nothing in doubt", given)
				}
			default:
				t.Errorf("result left %s", r.Status)
			}
		})
	}
}

// A duplicate answer is proof of this post only when this account's own
// earlier attempt for it is in doubt, and never takes a platform post that
// another post's result holds.
func TestDuplicateOfAnotherPost(t *testing.T) {
	tests := []struct {
		name string
		// inDoubt: the second post's first attempt left it in doubt (its
		// answer lost, nothing made) before the duplicate answer.
		inDoubt bool
	}{
		{name: "same text twice"},
		{name: "same text twice, the second's first answer lost", inDoubt: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			first := w.post(t, "Same text twice", posts.StatusPublishing)
			if out, err := w.publish(t, first); err != nil || out.Status != "published" {
				t.Fatalf("first post: %+v, %v", out, err)
			}
			firstURN := w.result(t, first).PlatformPostID

			second := w.post(t, "Same text twice", posts.StatusPublishing)
			if tt.inDoubt {
				w.fake.Configure(func(s *linkedinfake.Server) { s.Answers = []string{"504"} })
				if _, err := w.publish(t, second); err == nil {
					t.Fatal("the 504 was no error")
				}
				if r := w.result(t, second); !r.InDoubt() {
					t.Fatalf("after a 504: %+v, want in doubt", r)
				}
			}
			out, err := w.publish(t, second)
			if err != nil || out.Status != "failed" || out.ErrorCode != posts.ErrorCodeDuplicateContent {
				t.Fatalf("second post: %+v, %v; want failed %s", out, err, posts.ErrorCodeDuplicateContent)
			}
			r := w.result(t, second)
			if r.Status != posts.ResultFailed || r.PlatformPostID != "" || r.ErrorCode != posts.ErrorCodeDuplicateContent ||
				!strings.Contains(r.ErrorMessage, firstURN) || !strings.Contains(r.ErrorMessage, first.ID) {
				t.Errorf("second post's result %+v; want failed, naming %s and post %s", r, firstURN, first.ID)
			}
			if n := len(w.fake.Posts()); n != 1 {
				t.Errorf("LinkedIn holds %d posts, want 1", n)
			}
			if r := w.result(t, first); r.Status != posts.ResultPublished || r.PlatformPostID != firstURN {
				t.Errorf("first post's result %+v", r)
			}
		})
	}
}

// connectSandbox connects the sandbox user name into org-1 through the
// authorize form, in one browser, and returns the account.
func (w *world) connectSandbox(t *testing.T, name string) *connections.Account {
	t.Helper()
	return w.tw.MustConnectSandbox(t, "org-1", "user-1", name)
}

// behave sets the sandbox user's behaviour.
func (w *world) behave(t *testing.T, user, behaviour string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, w.sandbox.URL+"/sandbox/users/"+user+"/behaviour", strings.NewReader(behaviour))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("behaviour %s: %v %v", behaviour, res, err)
	}
	res.Body.Close()
}

// sandboxHolds counts the sandbox user's posts with text.
func (w *world) sandboxHolds(t *testing.T, user, text string) int {
	t.Helper()
	n, err := sandboxplatform.CountInFeed(context.Background(), w.sandbox.URL+"/sandbox", user, text)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Two posts with one text to one account, both in doubt: A's answer lost
// after the platform made A's post, B's first answer a 504 that made
// nothing. The platform then names A's post as a duplicate to B's retry.
// B must never take it: with a key the platform honours (the sandbox), B's
// own post would have been answered with, so the named one is another's
// (failed DUPLICATE_CONTENT); without (LinkedIn), A and B may each own it,
// so neither may claim it (unknown).
func TestDuplicateWhileAnotherPostIsInDoubt(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		wantA    string // A's outcome after its retry
		wantB    string
		bCode    string
	}{
		{name: "sandbox, keyed", provider: "sandbox", wantA: "published", wantB: "failed", bCode: posts.ErrorCodeDuplicateContent},
		{name: "LinkedIn, no key", provider: "linkedin", wantA: "unknown", wantB: "unknown", bCode: "OUTCOME_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			const text = "Still publishing"
			account, holds := w.account, func() int {
				n := 0
				for _, lp := range w.fake.Posts() {
					if lp.Commentary == text {
						n++
					}
				}
				return n
			}
			answer := func(a string) {
				w.fake.Configure(func(s *linkedinfake.Server) { s.Answers = []string{a} })
			}
			if tt.provider == "sandbox" {
				account = w.connectSandbox(t, "Ada")
				holds = func() int { return w.sandboxHolds(t, account.PlatformUserID, text) }
				answer = func(a string) {
					mode := map[string]string{"lost": "lost_answer", "504": "timeout"}[a]
					w.behave(t, account.PlatformUserID, `{"publishSequence":["`+mode+`"]}`)
				}
			}
			a, b := w.postTo(t, text, posts.StatusPublishing, account), w.postTo(t, text, posts.StatusPublishing, account)
			answer("lost")
			if _, err := w.publishTo(t, a, account.ID); err == nil {
				t.Fatal("A's lost answer was no error")
			}
			answer("504")
			if _, err := w.publishTo(t, b, account.ID); err == nil {
				t.Fatal("B's 504 was no error")
			}
			outB, err := w.publishTo(t, b, account.ID)
			if err != nil || outB.Status != tt.wantB || outB.ErrorCode != tt.bCode {
				t.Fatalf("B's retry: %+v, %v; want %s %s", outB, err, tt.wantB, tt.bCode)
			}
			outA, err := w.publishTo(t, a, account.ID)
			if err != nil || outA.Status != tt.wantA {
				t.Fatalf("A's retry: %+v, %v; want %s", outA, err, tt.wantA)
			}
			rA, _ := w.store.Posts().Result(context.Background(), a.ID, account.ID)
			rB, _ := w.store.Posts().Result(context.Background(), b.ID, account.ID)
			if rB.PlatformPostID != "" || (rA.PlatformPostID != "") != (tt.wantA == "published") {
				t.Errorf("A's result %+v; B's %+v: B must hold no platform post", rA, rB)
			}
			// Settled results keep no doubt: a re-publish of B must call
			// the network again, not end unknown.
			if (tt.wantB == "failed" && rB.InDoubt()) || (tt.wantA == "published" && rA.InDoubt()) {
				t.Errorf("settled results still in doubt: A %+v; B %+v", rA, rB)
			}
			if tt.wantA == "published" {
				// The workflow records a failure for A (a cancel racing
				// its branch): A stays published, and says so.
				v, err := w.env.ExecuteActivity(workflows.RecordFailureActivity, workflows.FailureInput{PostID: a.ID, AccountID: account.ID, Code: workflows.CodeCancelled})
				var out workflows.AccountOutcome
				if err != nil || v.Get(&out) != nil || out.Status != "published" {
					t.Errorf("RecordPublishFailure on a published account: %+v, %v", out, err)
				}
			}
			if n := holds(); n != 1 {
				t.Errorf("the platform holds the text %d times, want once", n)
			}
		})
	}
}

// Publishing again after a reset (POST /publish?again=true forgets the
// results) is a new publication with a key of its own: a new post, not
// the platform's answer to the old key. Its retries keep its key.
func TestPublishAgainIsANewPost(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	account := w.connectSandbox(t, "Grace")
	w.behave(t, account.PlatformUserID, `{"duplicateDetection":false}`)
	p := w.postTo(t, "said twice on purpose", posts.StatusPublishing, account)
	first, err := w.publishTo(t, p, account.ID)
	if err != nil || first.Status != "published" {
		t.Fatalf("first: %+v, %v", first, err)
	}
	if err := w.store.Posts().ResetResults(ctx, p); err != nil {
		t.Fatal(err)
	}
	// The second publication's first answer is lost: its retry must be
	// answered with its own post, through its own key.
	w.behave(t, account.PlatformUserID, `{"duplicateDetection":false,"publishSequence":["lost_answer"]}`)
	if _, err := w.publishTo(t, p, account.ID); err == nil {
		t.Fatal("the lost answer was no error")
	}
	again, err := w.publishTo(t, p, account.ID)
	if err != nil || again.Status != "published" || again.PlatformPostID == first.PlatformPostID {
		t.Fatalf("again: %+v, %v; want a post other than %s", again, err, first.PlatformPostID)
	}
	if n := w.sandboxHolds(t, account.PlatformUserID, "said twice on purpose"); n != 2 {
		t.Errorf("the sandbox holds the text %d times, want twice", n)
	}
}

// A post deleted from PostFlow leaves its post on the network: a later
// post with its text, in doubt, is answered "duplicate of" that post, and
// must not take it for its own.
func TestDuplicateOfADeletedPost(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	first := w.post(t, "Deleted then again", posts.StatusPublishing)
	if out, err := w.publish(t, first); err != nil || out.Status != "published" {
		t.Fatalf("first: %+v, %v", out, err)
	}
	urn := w.result(t, first).PlatformPostID
	if err := w.store.Posts().Delete(ctx, "org-1", first.ID); err != nil {
		t.Fatal(err)
	}
	again := w.post(t, "Deleted then again", posts.StatusPublishing)
	w.fake.Configure(func(s *linkedinfake.Server) { s.Answers = []string{"504"} })
	if _, err := w.publish(t, again); err == nil {
		t.Fatal("the 504 was no error")
	}
	out, err := w.publish(t, again)
	if err != nil || out.Status != "failed" || out.ErrorCode != posts.ErrorCodeDuplicateContent || out.PlatformPostID != "" {
		t.Fatalf("again: %+v, %v; want failed %s, not %s", out, err, posts.ErrorCodeDuplicateContent, urn)
	}
}

// One LinkedIn member connected into two organizations: a post of the
// other organization holds the text on LinkedIn; this organization's post
// with the same text, its first answer lost, is answered "duplicate of"
// that post and must not take it, nor learn its PostFlow id.
func TestDuplicateOfAnotherOrganizationsPost(t *testing.T) {
	w := newWorld(t)
	other := w.tw.MustConnectLinkedIn(t, "org-2", "user-2")
	if other.ID == w.account.ID || other.PlatformUserID != w.account.PlatformUserID {
		t.Fatalf("the same member in org-2: %+v", other)
	}
	theirs := w.postTo(t, "Said in two organizations", posts.StatusPublishing, other)
	if out, err := w.publishTo(t, theirs, other.ID); err != nil || out.Status != "published" {
		t.Fatalf("org-2's post: %+v, %v", out, err)
	}
	ours := w.post(t, "Said in two organizations", posts.StatusPublishing)
	w.fake.Configure(func(s *linkedinfake.Server) { s.Answers = []string{"504"} })
	if _, err := w.publish(t, ours); err == nil {
		t.Fatal("the 504 was no error")
	}
	out, err := w.publish(t, ours)
	if err != nil || out.Status != "failed" || out.ErrorCode != posts.ErrorCodeDuplicateContent || out.PlatformPostID != "" {
		t.Fatalf("org-1's post: %+v, %v; want failed %s", out, err, posts.ErrorCodeDuplicateContent)
	}
	if r := w.result(t, ours); strings.Contains(r.ErrorMessage, theirs.ID) || !strings.Contains(r.ErrorMessage, "another organization") {
		t.Errorf("message %q: it must not name org-2's post %s", r.ErrorMessage, theirs.ID)
	}
}
