package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/postflow/postflow/internal/payloadcodec"
	"github.com/postflow/postflow/internal/payloadcodec/payloadcodectest"
	"github.com/postflow/postflow/internal/sandboxplatform"
	"github.com/postflow/postflow/workflows"
)

// devAPI calls a running `postflow dev` as the frontend and an operator do.
type devAPI struct {
	t       *testing.T
	url     string
	uiURL   string
	account string
	tc      client.Client
	runs    map[string]string // history name → workflow id, for -record-histories
}

func (d *devAPI) call(method, path, body string) (int, map[string]any) {
	d.t.Helper()
	req, _ := http.NewRequest(method, d.url+path, strings.NewReader(body))
	req.Header.Set("X-User-Id", "dev-user")
	req.Header.Set("X-Organization-Id", "dev-org")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// behave sets what the sandbox user's next calls answer.
func (d *devAPI) behave(b string) { d.behaveAs("sbx-dev-person", b) }

func (d *devAPI) behaveAs(user, b string) {
	d.t.Helper()
	req, _ := http.NewRequest("PUT", d.url+"/sandbox/users/"+user+"/behaviour", strings.NewReader(b))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		d.t.Fatalf("behaviour %s: %v %v", b, res, err)
	}
	res.Body.Close()
}

// create creates a post; extra is more JSON fields ("" for none).
func (d *devAPI) create(text, extra string) string {
	d.t.Helper()
	body := fmt.Sprintf(`{"content":%q,"socialAccountIds":[%q]%s}`, text, d.account, extra)
	status, post := d.call("POST", "/posts", body)
	if status != 201 {
		d.t.Fatalf("POST /posts = %d %v", status, post)
	}
	return post["id"].(string)
}

// trigger starts the post's run, twice: a second trigger, while it runs
// or after, publishes nothing more.
func (d *devAPI) trigger(id, history string) {
	d.t.Helper()
	for range 2 {
		if status, run := d.call("POST", "/publish/"+id, ""); status != 202 || run["workflowId"] != "publish:"+id {
			d.t.Fatalf("POST /publish = %d %v", status, run)
		}
	}
	d.runs[history] = "publish:" + id
}

// unpublish unpublishes the post from its one account and waits for the
// run's end: the result's unpublish.
func (d *devAPI) unpublish(id, history string) map[string]any {
	d.t.Helper()
	if status, run := d.call("POST", "/posts/"+id+"/unpublish", ""); status != 202 || run["workflowId"] != "unpublish:"+id {
		d.t.Fatalf("POST /posts/%s/unpublish = %d %v", id, status, run)
	}
	d.runs[history] = "unpublish:" + id
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, got := d.call("GET", "/posts/"+id, "")
		if u, _ := result(d.t, got)["unpublish"].(map[string]any); u["status"] == "unpublished" || u["status"] == "failed" {
			return u
		}
	}
	d.t.Fatalf("post %s not unpublished within a minute", id)
	return nil
}

// wait polls the post until it is published or failed.
func (d *devAPI) wait(id string, within time.Duration) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		_, got := d.call("GET", "/posts/"+id, "")
		if got["status"] == "published" || got["status"] == "failed" {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("post %s neither published nor failed within %v", id, within)
	return nil
}

// publish creates a post, triggers it and waits for its end.
func (d *devAPI) publish(text, history string) map[string]any {
	d.t.Helper()
	id := d.create(text, "")
	d.trigger(id, history)
	return d.wait(id, time.Minute)
}

// inFeed counts text in the sandbox's feed.
func (d *devAPI) inFeed(text string) int {
	d.t.Helper()
	n, err := sandboxplatform.CountInFeed(context.Background(), d.url+"/sandbox", "", text)
	if err != nil {
		d.t.Fatal(err)
	}
	return n
}

// result is the post's one PublishResult.
func result(t *testing.T, post map[string]any) map[string]any {
	t.Helper()
	results, _ := post["results"].([]any)
	if len(results) != 1 {
		t.Fatalf("post = %v, want one result", post)
	}
	return results[0].(map[string]any)
}

// checkPublishedOnce: the post is published, its result holds the
// platform's id and URL, and the platform has it once.
func (d *devAPI) checkPublishedOnce(post map[string]any, text string, attempts float64) {
	d.t.Helper()
	r := result(d.t, post)
	if post["status"] != "published" || r["status"] != "published" || !strings.HasPrefix(r["platformPostId"].(string), "sbp_") ||
		r["platformPostUrl"] == "" || r["attempts"] != attempts {
		d.t.Errorf("post %v, result %v; want published after %v attempts", post["status"], r, attempts)
	}
	if n := d.inFeed(text); n != 1 {
		d.t.Errorf("the sandbox feed has %q %d times, want once", text, n)
	}
}

// checkFailed: the post failed with code, and the platform has nothing.
func (d *devAPI) checkFailed(post map[string]any, text, code string) {
	d.t.Helper()
	r := result(d.t, post)
	if post["status"] != "failed" || r["status"] != "failed" || r["errorCode"] != code || r["errorMessage"] == "" || post["failureCode"] != code {
		d.t.Errorf("post %v (%v), result %v; want failed %s", post["status"], post["failureCode"], r, code)
	}
	if n := d.inFeed(text); n != 0 {
		d.t.Errorf("the sandbox feed has %q %d times, want none", text, n)
	}
}

// accountStatus is the status GET /connections shows for the account.
func (d *devAPI) accountStatus() string {
	d.t.Helper()
	_, out := d.call("GET", "/connections", "")
	conns, _ := out["connections"].([]any)
	for _, c := range conns {
		if c := c.(map[string]any); c["id"] == d.account {
			return c["status"].(string)
		}
	}
	d.t.Fatalf("GET /connections = %v", out)
	return ""
}

// waitScheduled waits until the post's run sleeps on its timer, as the
// state query tells, and returns that state.
func (d *devAPI) waitScheduled(postID string) workflows.RunState {
	d.t.Helper()
	var state workflows.RunState
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if v, err := d.tc.QueryWorkflow(context.Background(), "publish:"+postID, "", workflows.StateQuery); err == nil && v.Get(&state) == nil && state.Phase == "scheduled" {
			return state
		}
	}
	d.t.Fatalf("the run of %s is not waiting for its time: %+v", postID, state)
	return state
}

func mustParse(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitClosed waits until the run has ended, however it ended.
func (d *devAPI) waitClosed(workflowID string) {
	d.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		desc, err := d.tc.DescribeWorkflowExecution(context.Background(), workflowID, "")
		if err != nil {
			d.t.Fatal(err)
		}
		status := desc.GetWorkflowExecutionInfo().GetStatus()
		if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("the run %s is still %s after 30 s", workflowID, status)
		}
	}
}

// searchAttributes are the run's search attributes, as the Web UI filters
// on them.
func (d *devAPI) searchAttributes(workflowID string) map[string]any {
	d.t.Helper()
	desc, err := d.tc.DescribeWorkflowExecution(context.Background(), workflowID, "")
	if err != nil {
		d.t.Fatal(err)
	}
	out := map[string]any{"ExecutionStatus": desc.GetWorkflowExecutionInfo().GetStatus().String()}
	for name, p := range desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields() {
		var v any
		if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
			d.t.Fatal(err)
		}
		out[name] = fmt.Sprint(v)
	}
	return out
}

// publishThroughTemporal publishes through the embedded Temporal server and
// the worker, one row of the error contract after the other, switching the
// sandbox as an operator would, and checks what each row must do.
func publishThroughTemporal(t *testing.T, apiURL, uiURL, temporalHostPort string) {
	// Queries answer through the codec; histories come as stored (the SDK
	// does not decode them), which checkEncrypted relies on.
	tc, err := client.Dial(client.Options{HostPort: temporalHostPort, DataConverter: testDataConverter(t), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	d := &devAPI{t: t, url: apiURL, uiURL: uiURL, account: connectSandboxAccount(t, apiURL, "Dev Person"), tc: tc, runs: map[string]string{}}

	// postflow dev listens on loopback: a DNS-rebinding page's requests,
	// which name its own host, get nothing (the headers are trusted here).
	rebound, _ := http.NewRequest(http.MethodGet, apiURL+"/connections", nil)
	rebound.Host = "rebound.example"
	rebound.Header.Set("X-User-Id", "dev-user")
	rebound.Header.Set("X-Organization-Id", "dev-org")
	if res, err := http.DefaultClient.Do(rebound); err != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("GET /connections with Host rebound.example: %v %v, want 403", res, err)
	} else {
		res.Body.Close()
	}

	first := d.publish("first post through Temporal", "published")
	d.checkPublishedOnce(first, "first post through Temporal", 1)
	// The branch that publishes last sets the post published; the run
	// upserts its final search attributes a workflow task later.
	d.waitClosed(d.runs["published"])
	sa := d.searchAttributes(d.runs["published"])
	for name, want := range map[string]string{
		"PostflowOrganizationId": "dev-org", "PostflowPostId": first["id"].(string),
		"PostflowStatus": "published", "PostflowPlatform": "[sandbox]",
	} {
		if sa[name] != want {
			t.Errorf("search attribute %s = %v, want %s", name, sa[name], want)
		}
	}

	d.checkEncrypted(d.runs["published"], "first post through Temporal", "Dev Person")
	// The run's summary, as the Web UI shows it (decoded through the codec).
	desc, err := tc.DescribeWorkflowExecution(context.Background(), d.runs["published"], "")
	if err != nil {
		t.Fatal(err)
	}
	var summary string
	if err := testDataConverter(t).FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary); err != nil ||
		summary != "Publish post "+first["id"].(string)+" to 1 account now (organization dev-org)" {
		t.Errorf("run summary = %q, %v", summary, err)
	}

	// Another post with the same text: the sandbox answers "duplicate of"
	// the first post, which is not this post's: failed DUPLICATE_CONTENT,
	// naming the post the network holds, and never taking its id.
	same := d.publish("first post through Temporal", "duplicate-content")
	if r := result(t, same); same["status"] != "failed" || r["errorCode"] != "DUPLICATE_CONTENT" || r["platformPostId"] != nil ||
		!strings.Contains(r["errorMessage"].(string), result(t, first)["platformPostId"].(string)) {
		t.Errorf("the same text again: post %v, result %v; want failed DUPLICATE_CONTENT naming the first", same["status"], r)
	}
	if n := d.inFeed("first post through Temporal"); n != 1 {
		t.Errorf("the sandbox feed has the text %d times, want once", n)
	}

	// 429 (retry after 1 s) on a timer, then 503 on backoff, then success:
	// one script, so no sleep has to guess when the 429 was answered.
	d.behave(`{"publishSequence":["rate_limited","unavailable"],"retryAfterSeconds":1}`)
	id := d.create("second post, after a 429 and a 503", "")
	d.trigger(id, "rate-limited-unavailable")
	d.checkPublishedOnce(d.wait(id, time.Minute), "second post, after a 429 and a 503", 3)

	// The answer lost after the platform took the post: the retry finds
	// it (the sandbox answers the attempt's Idempotency-Key with it, as
	// Mastodon does; LinkedIn would name the duplicate), not a second.
	d.behave(`{"publish":"lost_answer","publishTimes":1}`)
	d.checkPublishedOnce(d.publish("third post, whose answer is lost", "lost-answer"), "third post, whose answer is lost", 2)

	// 503, 503, the post made and its answer lost, 503: the retries run
	// out on a refusal, which proves nothing of the attempt before it.
	// The sandbox holds the post, so the result is unknown, never failed.
	d.behave(`{"publishSequence":["unavailable","unavailable","lost_answer","unavailable"]}`)
	doubt := d.publish("third post again, in doubt to the end", "doubt-kept")
	if r := result(t, doubt); r["status"] != "unknown" || r["errorCode"] != "OUTCOME_UNKNOWN" || r["attempts"] != 4.0 || r["doubtSince"] == nil {
		t.Errorf("after 503, 503, a lost answer, 503: result %v, want unknown after 4 attempts", r)
	}
	if reason, _ := doubt["failureReason"].(string); !strings.Contains(reason, "0 failed, 1 unknown") {
		t.Errorf("the post's failureReason = %q, want it to count the account unknown, not failed", reason)
	}
	if n := d.inFeed("third post again, in doubt to the end"); n != 1 {
		t.Errorf("the sandbox feed has the post %d times, want once", n)
	}

	// Content the platform refuses: failed with its message, no retry.
	d.behave(`{"publish":"rejected","publishTimes":1}`)
	rejected := d.publish("fourth post, refused", "rejected")
	d.checkFailed(rejected, "fourth post, refused", "content_rejected")
	if r := result(t, rejected); r["attempts"] != 1.0 {
		t.Errorf("a refused post was tried %v times", r["attempts"])
	}

	// Scheduled a minute ahead, then moved to two seconds ahead: the
	// running timer follows (the reschedule signal).
	at := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	id = d.create("fifth post, moved earlier", fmt.Sprintf(`,"scheduledAt":%q`, at))
	d.trigger(id, "rescheduled")
	// An operator asks the run what it is doing (the Web UI's Queries tab).
	if state := d.waitScheduled(id); !state.ScheduledAt.Equal(mustParse(t, at)) {
		t.Errorf("state query = %+v, want scheduled for %s", state, at)
	}
	moved := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second)
	if status, out := d.call("PATCH", "/posts/"+id, fmt.Sprintf(`{"scheduledAt":%q,"content":"fifth post, moved earlier and edited"}`, moved.Format(time.RFC3339))); status != 200 {
		t.Fatalf("PATCH = %d %v", status, out)
	}
	fifth := d.wait(id, 20*time.Second)
	d.checkPublishedOnce(fifth, "fifth post, moved earlier and edited", 1)
	if pub, _ := time.Parse(time.RFC3339Nano, result(t, fifth)["publishedAt"].(string)); pub.Before(moved) || pub.After(moved.Add(5*time.Second)) {
		t.Errorf("published at %v, scheduled for %v", pub, moved)
	}

	// Taken down: the sandbox answers the delete 503, then deletes it; its
	// feed no longer holds the post.
	d.behave(`{"deleteSequence":["unavailable"]}`)
	if u := d.unpublish(first["id"].(string), "unpublished"); u["status"] != "unpublished" || u["attempts"] != 2.0 {
		t.Errorf("unpublish of the first post: %v; want unpublished at the second attempt", u)
	}
	if n := d.inFeed("first post through Temporal"); n != 0 {
		t.Errorf("the sandbox feed has the unpublished post %d times", n)
	}

	// Deleted while scheduled: cancelled, never published. A time of its
	// own: the fifth's may be near by now.
	at = time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	id = d.create("sixth post, deleted", fmt.Sprintf(`,"scheduledAt":%q`, at))
	d.trigger(id, "cancelled")
	d.waitScheduled(id) // else the run may read the post cancelled and end by itself
	if status, _ := d.call("DELETE", "/posts/"+id, ""); status != 204 {
		t.Fatalf("DELETE = %d", status)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		sa := d.searchAttributes("publish:" + id)
		if sa["ExecutionStatus"] == enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED.String() && sa["PostflowStatus"] == "cancelled" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run of a deleted post: %v", sa)
		}
		time.Sleep(50 * time.Millisecond)
	}

	d.rerunByReset()

	if *recordHistories {
		// Retries used up: 4 attempts, 2 + 4 + 8 s of backoff.
		d.behave(`{"publish":"unavailable","publishTimes":4}`)
		d.checkFailed(d.publish("seventh post, which fails", "retries-exhausted"), "seventh post, which fails", "unavailable")
	}

	// The platform says the access token expired: the account is marked
	// expired, and the post fails without retries.
	d.behave(`{"publish":"expired_token","publishTimes":1}`)
	d.checkFailed(d.publish("eighth post, token expired", "expired-token"), "eighth post, token expired", "token_expired")
	if s := d.accountStatus(); s != "expired" {
		t.Errorf("account status after a 401 = %s, want expired", s)
	}

	// Reconnected with tokens that expire within 5 minutes: the run
	// refreshes first, and the platform answers invalid_grant.
	d.behave(`{"accessTokenSeconds":120}`)
	if again := connectSandboxAccount(t, apiURL, "Dev Person"); again != d.account {
		t.Fatalf("reconnecting made account %s, want %s", again, d.account)
	}
	if s := d.accountStatus(); s != "active" {
		t.Errorf("account status after reconnecting = %s, want active", s)
	}
	d.behave(`{"refresh":"invalid_grant"}`)
	d.checkFailed(d.publish("ninth post, refresh refused", "invalid-grant"), "ninth post, refresh refused", "invalid_grant")
	if s := d.accountStatus(); s != "expired" {
		t.Errorf("account status after invalid_grant = %s, want expired", s)
	}

	if *recordHistories {
		d.record()
	}
}

// rerunByReset: a post to two accounts fails on one; an operator fixes the
// cause and resets the run from the Web UI or CLI (here through the same
// API: `temporal workflow reset --type FirstWorkflowTask`). The new run
// publishes to the account that failed and not again to the one that has
// the post.
func (d *devAPI) rerunByReset() {
	t := d.t
	second := connectSandboxAccount(t, d.url, "Dev Second")
	d.behaveAs("sbx-dev-second", `{"publish":"unavailable","publishTimes":4}`)
	text := "tenth post, to two accounts"
	status, post := d.call("POST", "/posts", fmt.Sprintf(`{"content":%q,"socialAccountIds":[%q,%q]}`, text, d.account, second))
	if status != 201 {
		t.Fatalf("POST /posts = %d %v", status, post)
	}
	id := post["id"].(string)
	d.trigger(id, "partial-failure")
	if got := d.wait(id, time.Minute); got["status"] != "failed" || got["failureCode"] != "PARTIAL_FAILURE" {
		t.Fatalf("post = %v, want failed with PARTIAL_FAILURE", got)
	}
	if n := d.inFeed(text); n != 1 {
		t.Fatalf("the feed has %q %d times before the reset, want once", text, n)
	}

	ctx := context.Background()
	desc, err := d.tc.DescribeWorkflowExecution(ctx, "publish:"+id, "")
	if err != nil {
		t.Fatal(err)
	}
	var firstTask int64
	it := d.tc.GetWorkflowHistory(ctx, "publish:"+id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() && firstTask == 0 {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			firstTask = e.GetEventId()
		}
	}
	if _, err := d.tc.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 "default",
		WorkflowExecution:         desc.GetWorkflowExecutionInfo().GetExecution(),
		Reason:                    "the second account's outage is over",
		WorkflowTaskFinishEventId: firstTask,
		RequestId:                 fmt.Sprintf("reset-%d", time.Now().UnixNano()),
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		_, got := d.call("GET", "/posts/"+id, "")
		if got["status"] == "published" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the reset the post is %v", got)
		}
	}
	if n := d.inFeed(text); n != 2 {
		t.Errorf("the feed has %q %d times after the reset, want twice (once per account)", text, n)
	}
}

// checkEncrypted reads a run's history as Temporal stores it (this client
// has no codec): every payload is sealed, and neither the post's content
// nor the account's name appears. Then it decodes the run's input through
// PostFlow's codec endpoint, as the Web UI does.
func (d *devAPI) checkEncrypted(workflowID string, plaintexts ...string) {
	t := d.t
	ctx := context.Background()
	var started *historypb.HistoryEvent
	it := d.tc.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var sealed int
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		// Search attributes are indexed by the server, so never sealed;
		// PostFlow puts only ids and states in them.
		if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			started = proto.Clone(e).(*historypb.HistoryEvent)
			a.SearchAttributes = nil
		}
		if a := e.GetUpsertWorkflowSearchAttributesEventAttributes(); a != nil {
			a.SearchAttributes = nil
		}
		raw, _ := protojson.Marshal(e)
		text := string(raw)
		sealed += strings.Count(text, base64.StdEncoding.EncodeToString([]byte(payloadcodec.Encoding)))
		for _, plain := range []string{base64.StdEncoding.EncodeToString([]byte("json/plain")), base64.StdEncoding.EncodeToString([]byte("binary/null"))} {
			if strings.Contains(text, plain) {
				t.Errorf("event %d %s holds an unencrypted payload: %s", e.GetEventId(), e.GetEventType(), text)
			}
		}
		for _, p := range plaintexts {
			if strings.Contains(text, p) {
				t.Errorf("event %d %s holds %q in the clear", e.GetEventId(), e.GetEventType(), p)
			}
		}
	}
	if started == nil || sealed < 4 {
		t.Fatalf("found %d sealed payloads in %s", sealed, workflowID)
	}

	// The Web UI of postflow dev is told where the codec is...
	res, err := http.Get(d.uiURL + "/api/v1/settings")
	if err != nil {
		t.Fatal(err)
	}
	var settings struct{ Codec struct{ Endpoint string } }
	_ = json.NewDecoder(res.Body).Decode(&settings)
	res.Body.Close()
	if settings.Codec.Endpoint != d.url+"/temporal-codec" {
		t.Errorf("the Web UI's codec endpoint is %q, want %s/temporal-codec", settings.Codec.Endpoint, d.url)
	}
	// ...and decodes the run's input through it, from its own origin.
	body, _ := protojson.Marshal(started.GetWorkflowExecutionStartedEventAttributes().GetInput())
	req, _ := http.NewRequest("POST", settings.Codec.Endpoint+"/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", d.uiURL)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != d.uiURL || !strings.Contains(string(out), base64.StdEncoding.EncodeToString([]byte("json/plain"))) {
		t.Errorf("decode through the codec endpoint = %d (CORS %q) %s", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), out)
	}
}

// dialDev waits for a started dev process, connects a sandbox account and
// a Temporal client (closed when the test ends), and returns the devAPI.
func dialDev(ctx context.Context, t *testing.T, dev *devProcess) *devAPI {
	t.Helper()
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", dev.apiPort)
	waitStatus(ctx, t, apiURL+"/readyz", dev.out)
	waitOutput(ctx, t, dev.out, "PostFlow dev is running.")
	tc, err := client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", dev.temporalPort), DataConverter: testDataConverter(t), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	d := &devAPI{t: t, url: apiURL, tc: tc, runs: map[string]string{}}
	d.account = connectSandboxAccount(t, apiURL, "Dev Person")
	return d
}

// quietLogger keeps the SDK's client quiet in tests.
func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// historyKeyFile holds the key the dev processes of these tests seal
// payloads with: the stored histories' test key.
var historyKeyFile = filepath.Join("..", "..", "workflows", "testdata", "histories", "payload.key")

func testPayloadKey(t *testing.T) string { return payloadcodectest.Key(t, historyKeyFile) }

func testDataConverter(t *testing.T) converter.DataConverter {
	return payloadcodectest.DataConverter(t, historyKeyFile)
}

// record writes each run's history where the replay test reads it.
func (d *devAPI) record() {
	t := d.t
	names := make([]string, 0, len(d.runs))
	for name := range d.runs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		id := d.runs[name]
		d.waitClosed(id)
		var h historypb.History
		it := d.tc.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			h.Events = append(h.Events, e)
		}
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", "workflows", "testdata", "histories", name+".json")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s (%d events) into %s", id, len(h.Events), path)
	}
}
