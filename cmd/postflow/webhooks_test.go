package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/workflows"
)

// TestWebhookDeliverySurvivesARestart: a receiver fails the first attempt
// of a post.published event; `postflow dev` stops before the retry is due
// (webhooks.RetrySchedule[0]) and stays down past it. Started again on the
// same folder, it sends the event again: the retry's timer is Temporal's,
// not the process's. Both requests are the same event (one webhook-id),
// each signed with the endpoint's secret, and it is delivered once.
func TestWebhookDeliverySurvivesARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dev := startDev(t)
	d := dialDev(ctx, t, dev)

	rcv := newReceiver(t, http.StatusServiceUnavailable, http.StatusNoContent)
	hook, secret := d.createWebhook(rcv.srv.URL+"/postflow", webhooks.PostPublished)

	text := "announced across a restart"
	postID := d.create(text, "")
	d.trigger(postID, "webhook-restart")
	first := rcv.waitRequests(ctx, d, hook, 1)[0]
	if first.status != http.StatusServiceUnavailable {
		t.Fatalf("the receiver answered %d to the first attempt, want 503", first.status)
	}
	// Stopped at once (the post's checks wait for the restart): the retry
	// is due RetrySchedule[0] after the first attempt and must come due
	// while nothing runs.
	dev.interrupt(t)
	stopped := time.Now()
	// Down past the retry's due time; a fixed wait, as a person's restart is.
	time.Sleep(time.Until(first.at.Add(webhooks.RetrySchedule[0] + 2*time.Second)))
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("the receiver got %d requests before the restart, want 1 (PostFlow stopped %v after the first attempt; the retry was due after %v)",
			n, stopped.Sub(first.at).Round(time.Millisecond), webhooks.RetrySchedule[0])
	}
	logs := []string{dev.out.String()}
	restarted := time.Now()
	dev.restart(t)
	waitStatus(ctx, t, d.url+"/readyz", dev.out)

	d.checkPublishedOnce(d.wait(postID, 10*time.Second), text, 1)
	got := rcv.waitRequests(ctx, d, hook, 2)
	second := got[1]
	if second.status != http.StatusNoContent || second.at.Before(restarted) {
		t.Errorf("the second request came at %v (restart at %v), answered %d; want after the restart, 204", second.at, restarted, second.status)
	}
	eventID := first.header.Get(webhooks.HeaderID)
	if eventID == "" || second.header.Get(webhooks.HeaderID) != eventID {
		t.Errorf("webhook-id %q then %q, want the same event's id", eventID, second.header.Get(webhooks.HeaderID))
	}
	for i, r := range got {
		if err := verifySigned(secret, r); err != nil {
			t.Errorf("request %d does not verify with the endpoint's secret: %v", i+1, err)
		}
		if err := verifySigned(otherSecret(t), r); err == nil {
			t.Errorf("request %d verifies with another secret too", i+1)
		}
		ev := decodeEvent(t, r.body)
		if ev.Type != webhooks.PostPublished || ev.Data.Post.ID != postID || ev.Data.Post.Status != "published" {
			t.Errorf("request %d is %s for post %s (%s), want post.published for %s", i+1, ev.Type, ev.Data.Post.ID, ev.Data.Post.Status, postID)
		}
	}
	if string(first.body) != string(second.body) {
		t.Errorf("the retry's body differs from the first's:\n%s\n%s", first.body, second.body)
	}

	// The run ends delivered after two attempts: no third comes.
	run := d.deliveryResult(ctx, workflows.DeliverWebhookWorkflowID(eventID, hook))
	if run.Status != "delivered" || run.Attempts != 2 {
		t.Errorf("the delivery run ended %+v, want delivered after 2 attempts", run)
	}
	attempts := d.deliveries(hook)
	slices.Reverse(attempts) // oldest first
	if len(attempts) != 2 ||
		attempts[0].Attempt != 1 || attempts[0].Success || attempts[0].StatusCode != http.StatusServiceUnavailable || attempts[0].NextAttemptAt == nil ||
		attempts[1].Attempt != 2 || !attempts[1].Success || attempts[1].StatusCode != http.StatusNoContent || attempts[1].NextAttemptAt != nil {
		t.Errorf("GET /webhooks/%s/deliveries = %+v; want attempt 1 failed 503, then attempt 2 delivered 204", hook, attempts)
	}
	for _, a := range attempts {
		if a.EventID != eventID || a.EventType != webhooks.PostPublished {
			t.Errorf("delivery %s is of event %s %s, want %s post.published", a.ID, a.EventID, a.EventType, eventID)
		}
	}
	rcv.expectQuiet(t, 2, 3*time.Second)
	dev.interrupt(t)
	for i, log := range append(logs, dev.out.String()) {
		if strings.Contains(log, strings.TrimPrefix(secret, "whsec_")) {
			t.Errorf("run %d of postflow dev logged the endpoint's secret", i+1)
		}
	}
}

// TestOverduePostReachesAReceiver runs `postflow dev` without its worker,
// so a post published now stays queued: past OVERDUE_AFTER it is listed
// for operators and announced by one post.overdue event, which a worker
// started afterwards delivers (with the post itself). Both processes
// watch for overdue posts; the event still arrives once.
func TestOverduePostReachesAReceiver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const overdueAfter = 3 * time.Second
	overdueEnv := []string{fmt.Sprintf("OVERDUE_AFTER=%s", overdueAfter)}
	dev := startDevWith(t, append([]string{"TOKEN_ENCRYPTION_KEY=" + testTokenKey}, overdueEnv...), "--no-worker")
	d := dialDev(ctx, t, dev)

	rcv := newReceiver(t, http.StatusNoContent)
	hook, secret := d.createWebhook(rcv.srv.URL+"/postflow", webhooks.PostOverdue, webhooks.PostPublished)

	text := "overdue, no worker polls"
	postID := d.create(text, "")
	triggered := time.Now()
	d.trigger(postID, "overdue")

	// No worker: the post stays queued until the watch lists it and
	// marks it announced (the event is stored, its delivery waits for a
	// worker).
	listed := d.waitOverdue(ctx, postID)
	if listed.Status != "queued" || listed.AnnouncedAt == nil || listed.DueAt.Before(triggered.Add(-time.Second)) {
		t.Errorf("GET /operator/overdue-posts lists %+v; want queued, due at its trigger (%v), announced", listed, triggered)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("the receiver got %d requests with no worker running", n)
	}

	worker := startWorkerProcessWith(ctx, t, dev, overdueEnv)
	d.checkPublishedOnce(d.wait(postID, time.Minute), text, 1)
	got := rcv.waitRequests(ctx, d, hook, 2)

	var overdue []received
	for _, r := range got {
		if err := verifySigned(secret, r); err != nil {
			t.Errorf("a request does not verify with the endpoint's secret: %v", err)
		}
		if ev := decodeEvent(t, r.body); ev.Type == webhooks.PostOverdue {
			overdue = append(overdue, r)
		}
	}
	if len(overdue) != 1 {
		t.Fatalf("the receiver got %d post.overdue events, want 1", len(overdue))
	}
	ev := decodeEvent(t, overdue[0].body)
	if ev.Data.Post.ID != postID || ev.Data.Post.Status != "queued" || ev.Data.OverdueAfterSeconds != int64(overdueAfter/time.Second) || !ev.Data.DueAt.Equal(listed.DueAt) {
		t.Errorf("post.overdue data = %+v; want post %s queued, due %v, overdueAfterSeconds 3", ev.Data, postID, listed.DueAt)
	}
	run := d.deliveryResult(ctx, workflows.DeliverWebhookWorkflowID(overdue[0].header.Get(webhooks.HeaderID), hook))
	if run.Status != "delivered" || run.Attempts != 1 {
		t.Errorf("the post.overdue delivery run ended %+v, want delivered at the first attempt", run)
	}
	// Published now: no longer overdue, and not announced again, though
	// both processes check every 1.5 s.
	rcv.expectQuiet(t, 2, 2*posts.OverdueCheckEvery(overdueAfter))
	if _, out := d.call("GET", "/operator/overdue-posts", ""); out["posts"] == nil || len(out["posts"].([]any)) != 0 {
		t.Errorf("GET /operator/overdue-posts after the publish = %v, want none", out)
	}
	_ = worker.Process.Signal(syscall.SIGINT)
	_ = worker.Wait()
	dev.interrupt(t)
}

// received is one request a receiver got, and its answer.
type received struct {
	at     time.Time
	header http.Header
	body   []byte
	status int
}

// receiver is an organization's webhook endpoint on 127.0.0.1: it records
// every request and answers the i-th with answers[i] (the last one after).
type receiver struct {
	srv     *httptest.Server
	answers []int
	mu      sync.Mutex
	got     []received
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	t.Helper()
	r := &receiver{answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		status := r.answers[min(len(r.got), len(r.answers)-1)]
		r.got = append(r.got, received{at: time.Now(), header: req.Header.Clone(), body: body, status: status})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitRequests waits up to 30 s until the receiver has n requests and
// returns them; else it fails with the endpoint's deliveries, which say
// what PostFlow's attempts met.
func (r *receiver) waitRequests(ctx context.Context, d *devAPI, hook string, n int) []received {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if got := r.requests(); len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			d.t.Fatalf("the receiver got %d requests, want %d; deliveries: %+v", len(r.requests()), n, d.deliveries(hook))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// expectQuiet fails unless the receiver still has exactly n requests after
// within: what must not come cannot be polled for.
func (r *receiver) expectQuiet(t *testing.T, n int, within time.Duration) {
	t.Helper()
	time.Sleep(within)
	if got := r.requests(); len(got) != n {
		t.Errorf("the receiver got %d requests, want %d (delivered once)", len(got), n)
	}
}

// verifySigned verifies r with secret as a receiver does, with the
// Standard Webhooks reference Go library (signature and timestamp).
func verifySigned(secret string, r received) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(r.body, r.header)
}

// otherSecret is a secret PostFlow did not sign with.
func otherSecret(t *testing.T) string {
	t.Helper()
	s, err := webhooks.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sentEvent is the body of a post.* or post.overdue event, as much of it
// as these tests read.
type sentEvent struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		Post struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"post"`
		DueAt               time.Time `json:"dueAt"`
		OverdueAfterSeconds int64     `json:"overdueAfterSeconds"`
	} `json:"data"`
}

func decodeEvent(t *testing.T, body []byte) sentEvent {
	t.Helper()
	var ev sentEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("an event body is not JSON: %v: %s", err, body)
	}
	return ev
}

// createWebhook registers an endpoint for url and events, and returns its
// id and its secret (shown this once).
func (d *devAPI) createWebhook(url string, events ...string) (id, secret string) {
	d.t.Helper()
	body, _ := json.Marshal(map[string]any{"url": url, "events": events})
	status, out := d.call("POST", "/webhooks", string(body))
	id, _ = out["id"].(string)
	secret, _ = out["secret"].(string)
	if status != http.StatusCreated || id == "" || secret == "" {
		d.t.Fatalf("POST /webhooks = %d %v", status, out)
	}
	return id, secret
}

// deliveries is GET /webhooks/{id}/deliveries, newest first.
func (d *devAPI) deliveries(hook string) []webhooks.Delivery {
	d.t.Helper()
	req, _ := http.NewRequest("GET", d.url+"/webhooks/"+hook+"/deliveries", nil)
	req.Header.Set("X-User-Id", "dev-user")
	req.Header.Set("X-Organization-Id", "dev-org")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	var page struct{ Deliveries []webhooks.Delivery }
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || res.StatusCode != 200 {
		d.t.Fatalf("GET /webhooks/%s/deliveries = %d, %v", hook, res.StatusCode, err)
	}
	return page.Deliveries
}

// deliveryResult waits for the DeliverWebhook run workflowID to end and
// returns its result.
func (d *devAPI) deliveryResult(ctx context.Context, workflowID string) workflows.DeliverWebhookResult {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out workflows.DeliverWebhookResult
	if err := d.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &out); err != nil {
		d.t.Fatalf("the delivery run %s: %v", workflowID, err)
	}
	return out
}

// overdueListed is a post of GET /operator/overdue-posts.
type overdueListed struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	DueAt       time.Time  `json:"dueAt"`
	AnnouncedAt *time.Time `json:"announcedAt"`
}

// waitOverdue waits until GET /operator/overdue-posts (anonymous in dev)
// lists postID as announced, and returns it.
func (d *devAPI) waitOverdue(ctx context.Context, postID string) overdueListed {
	d.t.Helper()
	var last string
	for {
		req, _ := http.NewRequest("GET", d.url+"/operator/overdue-posts", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			d.t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		last = fmt.Sprintf("%d %s", res.StatusCode, body)
		var page struct{ Posts []overdueListed }
		if res.StatusCode == 200 && json.Unmarshal(body, &page) == nil {
			for _, p := range page.Posts {
				if p.ID == postID && p.AnnouncedAt != nil {
					return p
				}
			}
		}
		select {
		case <-ctx.Done():
			d.t.Fatalf("GET /operator/overdue-posts never listed %s as announced; last: %s", postID, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
