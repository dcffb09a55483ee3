package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/postflow/postflow/internal/sandboxplatform"
)

// The fault drill: posts to five sandbox accounts that fail at random (503,
// 429 with a 1 s wait, created-then-504, 504 with nothing made), a share
// of them repeating another drill post's text with the sandbox's duplicate
// detection on, so that PostFlow's bookkeeping, the idempotency key and
// its judging of "duplicate" answers must keep each (post, account) to its
// own one post. Its figures come from the sandbox's own feed set against
// what PostFlow says of each pair and each post, so a fault of the
// exactly-once kind shows as a count, not as a test someone had to think of.

// drillFaults are the sandbox's random answers in a drill round, and the
// drill's repeated texts.
type drillFaults struct {
	unavailable, rateLimited, lostAnswer, timeout float64
	// duplicateDetection is the sandbox's on the drill accounts.
	duplicateDetection bool
	// repeatEvery: every repeatEvery-th post repeats the text of the post
	// before it (0: none).
	repeatEvery int
}

func (f drillFaults) String() string {
	detection := "on"
	if !f.duplicateDetection {
		detection = "off"
	}
	repeats := "no repeated texts"
	if f.repeatEvery > 1 {
		repeats = fmt.Sprintf("1 post in %d repeats the text of the post before it", f.repeatEvery)
	}
	return fmt.Sprintf("%.0f%% 503, %.0f%% 429 (Retry-After 1 s), %.0f%% created-then-504, %.0f%% 504 with nothing made;\n"+
		"  duplicate detection %s, %s",
		100*f.unavailable, 100*f.rateLimited, 100*f.lostAnswer, 100*f.timeout, detection, repeats)
}

// repeats says whether post i repeats the text of post i-1.
func (f drillFaults) repeats(i int) bool {
	return f.repeatEvery > 1 && i%f.repeatEvery == f.repeatEvery-1
}

// drillAccount is a PostFlow account and its sandbox user.
type drillAccount struct{ id, user string }

// drillTimeout bounds the wait for a round's runs: with 4 attempts 2 s
// apart (doubling), 1 s rate-limit waits and a 15 s heartbeat timeout
// after a kill, a run takes well under a minute.
const drillTimeout = 5 * time.Minute

// drillKillAfter is the earliest a kill round kills the worker (and not
// before half its posts are triggered): by then first retries (2 s
// backoff) and 1 s rate-limit waits are running out, so calls of every
// kind are in flight.
const drillKillAfter = 2 * time.Second

// drillResult counts one round, per (post, account) pair unless said.
type drillResult struct {
	name  string
	posts int
	pairs int
	// PostFlow's result for the pair; dupContent: failed DUPLICATE_CONTENT.
	published, failed, unknown, open, dupContent int
	// From the sandbox's feed: pairs with more than one post (with
	// duplicate detection on: texts an account's feed holds more than
	// once), and pairs with none.
	duplicates, missing int
	// Disagreements: PostFlow's result against the feed. wrongID: published
	// with a platform id that is not this pair's feed post. postStatus:
	// posts whose own status is not what their results make it.
	failedInFeed, unknownInFeed, openInFeed, publishedNotInFeed, wrongID, postStatus int
	notClosed                                                                        int // runs still open at drillTimeout
	perSec                                                                           float64
	note                                                                             string
}

// drillPair is PostFlow's result for one (post, account) pair.
type drillPair struct {
	Status, PlatformPostID, ErrorCode string
}

// feedPost is a post in a sandbox user's feed.
type feedPost struct {
	ID, Text, IdempotencyKey string
}

// connectDrillAccounts connects n sandbox accounts and sets faults on them.
func connectDrillAccounts(api *apiClient, n int, f drillFaults) ([]drillAccount, error) {
	accounts := make([]drillAccount, n)
	for i := range accounts {
		id, err := api.connectSandbox(fmt.Sprintf("Drill Person %d", i))
		if err != nil {
			return nil, err
		}
		accounts[i].id = id
	}
	var list struct {
		Connections []struct{ ID, PlatformUserID string }
	}
	if _, err := api.do("GET", "/connections", "", &list); err != nil {
		return nil, err
	}
	for i := range accounts {
		for _, c := range list.Connections {
			if c.ID == accounts[i].id {
				accounts[i].user = c.PlatformUserID
			}
		}
		if accounts[i].user == "" {
			return nil, fmt.Errorf("drill account %s has no platform user id", accounts[i].id)
		}
		b, _ := json.Marshal(map[string]any{"publish": "random", "unavailableRate": f.unavailable, "rateLimitedRate": f.rateLimited,
			"retryAfterSeconds": 1, "lostAnswerRate": f.lostAnswer, "timeoutRate": f.timeout, "duplicateDetection": f.duplicateDetection})
		if _, err := api.do("PUT", "/sandbox/users/"+url.PathEscape(accounts[i].user)+"/behaviour", string(b), nil); err != nil {
			return nil, err
		}
	}
	return accounts, nil
}

// drillRound publishes n posts to every account, calls kill (if not nil)
// once half of them are triggered and drillKillAfter has passed, waits for
// every run to close (up to drillTimeout) and counts.
func drillRound(ctx context.Context, api *apiClient, tc client.Client, accounts []drillAccount, f drillFaults, n, c int, name string, kill func() error) (drillResult, error) {
	res := drillResult{name: name, posts: n, pairs: n * len(accounts)}
	ids := make([]string, n)
	accountIDs := make([]string, len(accounts))
	for i, a := range accounts {
		accountIDs[i] = a.id
	}
	// A text of its own per post but the repeats: the feed tells which
	// post a sandbox post is, also from a build that sends no idempotency
	// key.
	round := time.Now().UnixNano()
	textOf := make([]string, n)
	for i := range n {
		textOf[i] = fmt.Sprintf("drill %d post %d", round, i)
		if i > 0 && f.repeats(i) {
			textOf[i] = textOf[i-1]
		}
	}
	err := parallel(n, c, func(i int) error {
		id, err := api.createPost(textOf[i], accountIDs)
		ids[i] = id
		return err
	})
	if err != nil {
		return res, err
	}

	wf := make([]string, n)
	var triggered atomic.Int64
	half := make(chan struct{})
	killed := make(chan error, 1)
	start := time.Now()
	if kill != nil {
		go func() {
			<-half
			time.Sleep(time.Until(start.Add(drillKillAfter)))
			at := time.Since(start)
			err := kill()
			res.note = fmt.Sprintf("worker SIGKILLed %.1f s after the first trigger, %d of %d triggered by then; the new one started in %.1f s",
				at.Seconds(), triggered.Load(), n, (time.Since(start) - at).Seconds())
			killed <- err
		}()
	}
	err = parallel(n, c, func(i int) error {
		id, err := api.publish(ids[i])
		if err != nil {
			return err
		}
		wf[i] = id
		if triggered.Add(1) == int64(max(n/2, 1)) {
			close(half)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if kill != nil {
		if err := <-killed; err != nil {
			return res, fmt.Errorf("kill the worker: %w", err)
		}
	}

	waitCtx, cancel := context.WithTimeout(ctx, drillTimeout)
	defer cancel()
	var mu sync.Mutex
	var lastClose time.Time
	closed := make([]bool, n)
	err = parallel(n, n, func(i int) error {
		// A run ends with its post published or failed; either is closed.
		var out struct{ Status string }
		err := tc.GetWorkflow(waitCtx, wf[i], "").Get(waitCtx, &out)
		if waitCtx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("run %s: %w", wf[i], err)
		}
		mu.Lock()
		lastClose = time.Now()
		closed[i] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		return res, err
	}
	for _, ok := range closed {
		if !ok {
			res.notClosed++
		}
	}
	if !lastClose.IsZero() {
		res.perSec = float64(n-res.notClosed) / lastClose.Sub(start).Seconds()
	}

	// PostFlow's post and result per pair.
	postStatus := make([]string, n)
	results := make([]map[string]drillPair, n)
	err = parallel(n, c, func(i int) error {
		var p struct {
			Status  string
			Results []struct {
				SocialAccountID string
				drillPair
			}
		}
		if _, err := api.do("GET", "/posts/"+ids[i], "", &p); err != nil {
			return err
		}
		postStatus[i] = p.Status
		results[i] = map[string]drillPair{}
		for _, r := range p.Results {
			results[i][r.SocialAccountID] = r.drillPair
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	for i := range n {
		if closed[i] && !postAgrees(postStatus[i], results[i], accountIDs) {
			res.postStatus++
		}
	}
	// The sandbox's feed, per account.
	for _, a := range accounts {
		var feed struct{ Posts []feedPost }
		if _, err := api.do("GET", fmt.Sprintf("/sandbox/feed?limit=%d&user=%s", sandboxplatform.FeedLimit, url.QueryEscape(a.user)), "", &feed); err != nil {
			return res, err
		}
		if len(feed.Posts) == sandboxplatform.FeedLimit {
			return res, errors.New("a drill account's feed is longer than one page: lower -n")
		}
		pairs := make([]drillPair, n)
		keys := make([]string, n)
		for i := range n {
			pairs[i] = results[i][a.id]
			keys[i] = idempotencyKey(ids[i], a.id)
		}
		res.countAccount(textOf, keys, pairs, closed, feed.Posts, f.duplicateDetection)
	}
	return res, nil
}

// idempotencyKey is how the Idempotency-Key PostFlow sends for a pair
// begins: "postflow-<post>-<account>", then "-" and a random part of each
// publication of it (activities.IdempotencyKey, not imported: the bench
// reads PostFlow from outside, and a build that sends none is still
// counted by text).
func idempotencyKey(postID, accountID string) string {
	return "postflow-" + postID + "-" + accountID
}

// pairOfKey is the pair part of a key (idempotencyKey), without the part
// of its publication.
func pairOfKey(key string) string {
	if i := strings.LastIndexByte(key, '-'); i > 0 && strings.Count(key, "-") == 3 {
		return key[:i]
	}
	return key
}

// postAgrees says whether a post's own status is what its results make
// it: published if every account's result is published, failed otherwise.
func postAgrees(status string, results map[string]drillPair, accounts []string) bool {
	want := "published"
	for _, a := range accounts {
		if results[a].Status != "published" {
			want = "failed"
		}
	}
	return status == want
}

// countAccount adds the pairs of one account: texts[i], keys[i] and
// pairs[i] are post i's text, its Idempotency-Key on this account and
// PostFlow's result; closed[i] says whether its run closed; feed is the
// account's sandbox feed; detection, whether the sandbox refused
// repeated texts.
//
// A feed post belongs to the pair whose Idempotency-Key made it; without
// a known key, to the first post of its text. So a text several posts
// share is in the feed for one of them only, and a result published with
// a post made for another pair is told apart.
func (r *drillResult) countAccount(texts, keys []string, pairs []drillPair, closed []bool, feed []feedPost, detection bool) {
	byKey := make(map[string]int, len(keys))
	for i, k := range keys {
		byKey[k] = i
	}
	byText := make(map[string]int, len(texts))
	for i := len(texts) - 1; i >= 0; i-- {
		byText[texts[i]] = i
	}
	own := make([][]string, len(texts)) // feed post ids per post
	perText := map[string]int{}
	for _, p := range feed {
		i, ok := byKey[pairOfKey(p.IdempotencyKey)] // no key: "", no pair's
		if !ok {
			if i, ok = byText[p.Text]; !ok {
				continue // not this round's
			}
		}
		own[i] = append(own[i], p.ID)
		perText[p.Text]++
	}
	for i, p := range pairs {
		inFeed := len(own[i])
		switch p.Status {
		case "published":
			r.published++
			if inFeed == 0 {
				r.publishedNotInFeed++
			}
			if !slices.Contains(own[i], p.PlatformPostID) {
				r.wrongID++
			}
		case "failed":
			r.failed++
			if p.ErrorCode == "DUPLICATE_CONTENT" {
				r.dupContent++
			}
			if inFeed > 0 {
				r.failedInFeed++
			}
		case "unknown":
			r.unknown++
			if inFeed > 0 {
				r.unknownInFeed++
			}
		default: // pending, publishing, none: the run did not settle it
			r.open++
			if inFeed > 0 && closed[i] {
				r.openInFeed++
			}
		}
		if inFeed == 0 {
			r.missing++
		}
		if inFeed > 1 && !detection {
			r.duplicates++
		}
	}
	if detection {
		// A text twice is a duplicate whichever pairs the posts belong to.
		for _, c := range perText {
			if c > 1 {
				r.duplicates++
			}
		}
	}
}

func drillTable(f drillFaults, n, accounts int, rounds []drillResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Fault drill: %d posts x %d accounts per round (n/5), the sandbox answering at random\n  %s\n", n, accounts, f)
	fmt.Fprintf(&b, "%-15s %5s %5s %6s %5s %5s %7s %5s %7s | %9s %7s %7s %6s %8s %7s | %7s\n",
		"round", "pairs", "pub", "failed", "unkn", "open", "dupcont", "dupes", "missing",
		"failed+in", "unkn+in", "open+in", "pub+no", "wrong-id", "post-st", "posts/s")
	for _, r := range rounds {
		fmt.Fprintf(&b, "%-15s %5d %5d %6d %5d %5d %7d %5d %7d | %9d %7d %7d %6d %8d %7d | %7.1f\n",
			r.name, r.pairs, r.published, r.failed, r.unknown, r.open, r.dupContent, r.duplicates, r.missing,
			r.failedInFeed, r.unknownInFeed, r.openInFeed, r.publishedNotInFeed, r.wrongID, r.postStatus, r.perSec)
		if r.note != "" {
			fmt.Fprintf(&b, "  (%s)\n", r.note)
		}
		if r.notClosed > 0 {
			fmt.Fprintf(&b, "  (%d runs still open after %s)\n", r.notClosed, drillTimeout)
		}
	}
	b.WriteString("Per (post, account) pair: PostFlow's result (pub, failed, unkn, open: pending or publishing; dupcont: failed\n" +
		"DUPLICATE_CONTENT), then from the sandbox's feed, whose posts go to the pair whose Idempotency-Key made them:\n" +
		"dupes (a pair in it more than once; with duplicate detection on, a text in an account's feed more than once),\n" +
		"missing (not in it); then where they disagree: failed+in, unkn+in, open+in (PostFlow says failed, unknown, or\n" +
		"still open after the run closed, the feed has the post), pub+no (PostFlow says published, the feed lacks it),\n" +
		"wrong-id (published with a platform id that is not the pair's feed post: another pair's, or none), post-st\n" +
		"(posts, not pairs: the post's status is not published when all its results are, failed otherwise).\n" +
		"Target: 0 dupes, failed+in, open+in, pub+no, wrong-id and post-st; unkn+in is PostFlow saying it cannot tell\n" +
		"(an operator checks). A repeated text's second post should end failed DUPLICATE_CONTENT (or unknown).\n" +
		"posts/s: posts over the time from the first trigger to the last run's end.\n")
	return b.String()
}
