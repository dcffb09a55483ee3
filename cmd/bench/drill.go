package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
)

// The fault drill: posts to five sandbox accounts that fail at random (503,
// 429 with a 1 s wait, created-then-504) with duplicate detection off, so
// that only PostFlow's own bookkeeping and the idempotency key keep each
// (post, account) to one post. Its figures come from the sandbox's own feed
// set against what PostFlow says of each account, so a fault of the
// exactly-once kind shows as a count, not as a test someone had to think of.

// drillFaults are the sandbox's random answers in a drill round.
type drillFaults struct {
	unavailable, rateLimited, lostAnswer float64
}

func (f drillFaults) String() string {
	return fmt.Sprintf("%.0f%% 503, %.0f%% 429 (Retry-After 1 s), %.0f%% created-then-504, duplicate detection off",
		100*f.unavailable, 100*f.rateLimited, 100*f.lostAnswer)
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

// drillResult counts one round, per (post, account) pair.
type drillResult struct {
	name  string
	posts int
	pairs int
	// PostFlow's result for the pair.
	published, failed, unknown, open int
	// From the sandbox's feed: pairs with more than one post, and with none.
	duplicates, missing int
	// Disagreements: PostFlow's result against the feed.
	failedInFeed, unknownInFeed, publishedNotInFeed int
	notClosed                                       int // runs still open at drillTimeout
	perSec                                          float64
	note                                            string
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
			"retryAfterSeconds": 1, "lostAnswerRate": f.lostAnswer, "duplicateDetection": false})
		if _, err := api.do("PUT", "/sandbox/users/"+url.PathEscape(accounts[i].user)+"/behaviour", string(b), nil); err != nil {
			return nil, err
		}
	}
	return accounts, nil
}

// drillRound publishes n posts to every account, calls kill (if not nil)
// once half of them are triggered and drillKillAfter has passed, waits for
// every run to close (up to drillTimeout) and counts.
func drillRound(ctx context.Context, api *apiClient, tc client.Client, accounts []drillAccount, n, c int, name string, kill func() error) (drillResult, error) {
	res := drillResult{name: name, posts: n, pairs: n * len(accounts)}
	ids := make([]string, n)
	// A text of its own per post: the feed tells which post a sandbox
	// post is, also from a build that sends no idempotency key.
	texts := make(map[string]int, n)
	accountIDs := make([]string, len(accounts))
	for i, a := range accounts {
		accountIDs[i] = a.id
	}
	round := time.Now().UnixNano()
	textOf := make([]string, n)
	for i := range n {
		textOf[i] = fmt.Sprintf("drill %d post %d", round, i)
		texts[textOf[i]] = i
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
	var notClosed atomic.Int64
	err = parallel(n, n, func(i int) error {
		// A run ends with its post published or failed; either is closed.
		var out struct{ Status string }
		err := tc.GetWorkflow(waitCtx, wf[i], "").Get(waitCtx, &out)
		if waitCtx.Err() != nil {
			notClosed.Add(1)
			return nil
		}
		if err != nil {
			return fmt.Errorf("run %s: %w", wf[i], err)
		}
		mu.Lock()
		lastClose = time.Now()
		mu.Unlock()
		return nil
	})
	if err != nil {
		return res, err
	}
	res.notClosed = int(notClosed.Load())
	if !lastClose.IsZero() {
		res.perSec = float64(n-res.notClosed) / lastClose.Sub(start).Seconds()
	}

	// PostFlow's result per pair.
	status := make([]map[string]string, n)
	err = parallel(n, c, func(i int) error {
		var p struct {
			Results []struct{ SocialAccountID, Status string }
		}
		if _, err := api.do("GET", "/posts/"+ids[i], "", &p); err != nil {
			return err
		}
		status[i] = map[string]string{}
		for _, r := range p.Results {
			status[i][r.SocialAccountID] = r.Status
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	// The sandbox's feed, per pair.
	for _, a := range accounts {
		var feed struct{ Posts []struct{ Text string } }
		if _, err := api.do("GET", "/sandbox/feed?limit=10000&user="+url.QueryEscape(a.user), "", &feed); err != nil {
			return res, err
		}
		if len(feed.Posts) == 10000 {
			return res, errors.New("a drill account's feed is longer than one page: lower -n")
		}
		inFeed := make([]int, n)
		for _, p := range feed.Posts {
			if i, ok := texts[p.Text]; ok {
				inFeed[i]++
			}
		}
		for i := range n {
			res.count(status[i][a.id], inFeed[i])
		}
	}
	return res, nil
}

// count adds one pair: PostFlow's result for it and how many times the
// feed has it.
func (r *drillResult) count(status string, inFeed int) {
	switch status {
	case "published":
		r.published++
		if inFeed == 0 {
			r.publishedNotInFeed++
		}
	case "failed":
		r.failed++
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
	}
	if inFeed > 1 {
		r.duplicates++
	}
	if inFeed == 0 {
		r.missing++
	}
}

func drillTable(f drillFaults, n, accounts int, rounds []drillResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Fault drill: %d posts x %d accounts per round (n/5), the sandbox answering at random %s\n", n, accounts, f)
	fmt.Fprintf(&b, "%-24s %6s %9s %7s %8s %5s %6s %8s | %9s %10s %12s | %8s\n",
		"round", "pairs", "published", "failed", "unknown", "open", "dupes", "missing",
		"failed+in", "unknown+in", "published+no", "posts/s")
	for _, r := range rounds {
		fmt.Fprintf(&b, "%-24s %6d %9d %7d %8d %5d %6d %8d | %9d %10d %12d | %8.1f\n",
			r.name, r.pairs, r.published, r.failed, r.unknown, r.open, r.duplicates, r.missing,
			r.failedInFeed, r.unknownInFeed, r.publishedNotInFeed, r.perSec)
		if r.note != "" {
			fmt.Fprintf(&b, "  (%s)\n", r.note)
		}
		if r.notClosed > 0 {
			fmt.Fprintf(&b, "  (%d runs still open after %s)\n", r.notClosed, drillTimeout)
		}
	}
	b.WriteString("Per (post, account) pair: PostFlow's result, then from the sandbox's feed: dupes (in it more than once),\n" +
		"missing (not in it); then where they disagree: failed+in and unknown+in (PostFlow says failed or unknown,\n" +
		"the feed has the post), published+no (PostFlow says published, the feed lacks it). Target: 0 dupes,\n" +
		"failed+in and published+no; unknown+in is PostFlow saying it cannot tell (an operator checks).\n" +
		"posts/s: posts over the time from the first trigger to the last run's end.\n")
	return b.String()
}
