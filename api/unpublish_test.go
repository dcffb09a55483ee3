package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/webhooks"
)

// A post published to three sandbox accounts: POST /posts/{id}/unpublish
// naming one deletes it from that account's feed alone; without a list it
// then deletes it from the two others; each run announces
// post.unpublished with every account's result; asking again is refused
// with a reason, and an account never published to is refused by name.
func TestUnpublishTouchesOnlyTheNamedAccounts(t *testing.T) {
	w := newRunWorld(t)
	const text = "Take me down, one account at a time"
	status, out := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":%q,"socialAccountIds":[%q,%q,%q]}`, text, w.a.ID, w.b.ID, w.c.ID))
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	id := out["id"].(string)
	if status, out := w.call(t, "POST", "/publish/"+id, ""); status != 202 {
		t.Fatalf("publish: %d %v", status, out)
	}
	for _, acc := range []string{w.a.ID, w.b.ID, w.c.ID} {
		if _, results := w.results(t, id); results[acc]["status"] != "published" {
			t.Fatalf("%s not published: %v", acc, results[acc])
		}
	}

	status, out = w.call(t, "POST", "/posts/"+id+"/unpublish", fmt.Sprintf(`{"accounts":[%q]}`, w.b.ID))
	if status != 202 || fmt.Sprint(out["accounts"]) != fmt.Sprint([]any{w.b.ID}) || out["workflowId"] != "unpublish:"+id {
		t.Fatalf("unpublish b: %d %v", status, out)
	}
	if n := w.holds(t, w.b, text); n != 0 {
		t.Errorf("b's feed holds the post %d times after its unpublish", n)
	}
	for _, acc := range []string{w.a.ID, w.c.ID} {
		if n := w.holds(t, w.account(t, acc), text); n != 1 {
			t.Errorf("%s's feed holds the post %d times; an unpublish of b alone touched it", acc, n)
		}
	}
	postStatus, results := w.results(t, id)
	if postStatus != "published" {
		t.Errorf("post status %q after an unpublish; want it to stay published (a record of what went out)", postStatus)
	}
	if u, _ := results[w.b.ID]["unpublish"].(map[string]any); u["status"] != "unpublished" || u["unpublishedAt"] == nil || u["attempts"] != 1.0 {
		t.Errorf("b's unpublish: %v", results[w.b.ID]["unpublish"])
	}
	for _, acc := range []string{w.a.ID, w.c.ID} {
		if u := results[acc]["unpublish"]; u != nil {
			t.Errorf("%s has an unpublish it was not asked for: %v", acc, u)
		}
	}
	checkUnpublishedEvent(t, w, id, []string{w.b.ID}, map[string]string{w.b.ID: "unpublished"})

	// The default: every account published to and not unpublished.
	status, out = w.call(t, "POST", "/posts/"+id+"/unpublish", "")
	if status != 202 || fmt.Sprint(out["accounts"]) != fmt.Sprint([]any{w.a.ID, w.c.ID}) {
		t.Fatalf("unpublish the rest: %d %v", status, out)
	}
	for _, acc := range []string{w.a.ID, w.b.ID, w.c.ID} {
		if n := w.holds(t, w.account(t, acc), text); n != 0 {
			t.Errorf("%s's feed still holds the post %d times", acc, n)
		}
	}
	checkUnpublishedEvent(t, w, id, []string{w.a.ID, w.c.ID}, map[string]string{w.a.ID: "unpublished", w.b.ID: "unpublished", w.c.ID: "unpublished"})

	if status, out := w.call(t, "POST", "/posts/"+id+"/unpublish", ""); status != 409 || code(out) != "nothing_to_unpublish" {
		t.Errorf("a third unpublish without accounts: %d %v; want 409 nothing_to_unpublish", status, out)
	}
	// Named again: it stays unpublished, at its time, without a call to
	// the network (whose answer now, a token refused say, could only
	// mislead), so a client's repeat ends the same.
	_, results = w.results(t, id)
	before := results[w.a.ID]["unpublish"].(map[string]any)
	w.behave(t, w.a, `{"deleteSequence":["expired_token"]}`)
	if status, out := w.call(t, "POST", "/posts/"+id+"/unpublish", fmt.Sprintf(`{"accounts":[%q]}`, w.a.ID)); status != 202 {
		t.Errorf("unpublish a again: %d %v", status, out)
	}
	if _, results := w.results(t, id); fmt.Sprint(results[w.a.ID]["unpublish"]) != fmt.Sprint(before) {
		t.Errorf("a after a repeated unpublish: %v; want it as it was, %v", results[w.a.ID]["unpublish"], before)
	}
	if acc := w.account(t, w.a.ID); acc.Status != connections.StatusActive {
		t.Errorf("a repeated unpublish called the network: the account is %s", acc.Status)
	}
}

// An account the post failed on is refused by name (nothing PostFlow
// published is there); a post not yet published is a conflict; a
// malformed or foreign account id is bad input.
func TestUnpublishRefusals(t *testing.T) {
	w := newRunWorld(t)
	w.behave(t, w.a, `{"publish":"rejected","publishTimes":1}`)
	status, out := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":"refused on a","socialAccountIds":[%q,%q]}`, w.a.ID, w.b.ID))
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	id := out["id"].(string)
	status, out = w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":"a draft","socialAccountIds":[%q]}`, w.a.ID))
	if status != 201 {
		t.Fatalf("create draft: %d %v", status, out)
	}
	draft := out["id"].(string)
	if status, out := w.call(t, "POST", "/publish/"+id, ""); status != 202 {
		t.Fatalf("publish: %d %v", status, out)
	}
	for _, tc := range []struct {
		name, post, body string
		status           int
		code             string
		// message, if set, is what the error's message must say.
		message string
	}{
		{"failed account named", id, fmt.Sprintf(`{"accounts":[%q]}`, w.a.ID), 409, "account_not_published", ""},
		{"account not on the post", id, fmt.Sprintf(`{"accounts":[%q]}`, w.c.ID), 422, "account_not_on_post", ""},
		{"account twice", id, fmt.Sprintf(`{"accounts":[%q,%q]}`, w.b.ID, w.b.ID), 422, "duplicate_account", ""},
		{"not an id", id, `{"accounts":["nope"]}`, 400, "invalid_id", ""},
		{"unknown field", id, `{"account":[]}`, 400, "unknown_field", ""},
		{"draft", draft, "", 409, "post_state_conflict", "The post is draft; this needs it published or failed."},
		{"no such post", "0123456789abcdef01234567", "", 404, "post_not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := w.call(t, "POST", "/posts/"+tc.post+"/unpublish", tc.body)
			if status != tc.status || code(out) != tc.code {
				t.Errorf("%d %v; want %d %s", status, out, tc.status, tc.code)
			}
			if e, _ := out["error"].(map[string]any); tc.message != "" && e["message"] != tc.message {
				t.Errorf("message %q; want %q", e["message"], tc.message)
			}
		})
	}
	if n := w.holds(t, w.b, "refused on a"); n != 1 {
		t.Errorf("b's feed holds the post %d times after refused unpublishes; want 1", n)
	}
	// The default is the published account alone.
	if status, out := w.call(t, "POST", "/posts/"+id+"/unpublish", ""); status != 202 || fmt.Sprint(out["accounts"]) != fmt.Sprint([]any{w.b.ID}) {
		t.Errorf("unpublish: %d %v; want b alone", status, out)
	}
}

// A delete the network answers 503 (then 429, then lost) is tried again
// until it is done; one it refuses for the token expires the account and
// fails, with a category and action a program can act on.
func TestUnpublishRetriesOutagesAndFailsOnRefusal(t *testing.T) {
	w := newRunWorld(t)
	status, out := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":"flaky deletes","socialAccountIds":[%q,%q]}`, w.a.ID, w.b.ID))
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	id := out["id"].(string)
	if status, out := w.call(t, "POST", "/publish/"+id, ""); status != 202 {
		t.Fatalf("publish: %d %v", status, out)
	}
	w.behave(t, w.a, `{"publish":"ok","deleteSequence":["unavailable","rate_limited","lost_answer"],"retryAfterSeconds":30}`)
	w.behave(t, w.b, `{"publish":"ok","deleteSequence":["expired_token"]}`)
	if status, out := w.call(t, "POST", "/posts/"+id+"/unpublish", ""); status != 202 {
		t.Fatalf("unpublish: %d %v", status, out)
	}
	_, results := w.results(t, id)
	ua, _ := results[w.a.ID]["unpublish"].(map[string]any)
	if ua["status"] != "unpublished" || ua["attempts"] != 4.0 || ua["errorCode"] != nil {
		t.Errorf("a's unpublish after 503, 429 and a lost answer: %v; want unpublished after 4 attempts", ua)
	}
	if n := w.holds(t, w.a, "flaky deletes"); n != 0 {
		t.Errorf("a's feed holds the post %d times", n)
	}
	ub, _ := results[w.b.ID]["unpublish"].(map[string]any)
	if ub["status"] != "failed" || ub["errorCategory"] != "auth_expired" || ub["errorAction"] != "reconnect" || ub["attempts"] != 1.0 {
		t.Errorf("b's unpublish refused for its token: %v; want failed, auth_expired, reconnect, 1 attempt", ub)
	}
	if n := w.holds(t, w.b, "flaky deletes"); n != 1 {
		t.Errorf("b's feed holds the post %d times; want it still there", n)
	}
	if acc := w.account(t, w.b.ID); acc.Status != connections.StatusExpired {
		t.Errorf("b's account is %s after its token was refused; want expired", acc.Status)
	}
	// The attempts list the deletes beside the publish.
	_, out = w.call(t, "GET", "/posts/"+id+"?include=attempts", "")
	var steps []string
	list, _ := out["attempts"].(map[string]any)[w.a.ID].([]any)
	for _, a := range list {
		am := a.(map[string]any)
		steps = append(steps, fmt.Sprint(am["step"], ":", am["outcome"]))
	}
	want := []string{"publish:published", "delete:refused", "delete:refused", "delete:in_doubt", "delete:deleted"}
	if !slices.Equal(steps, want) {
		t.Errorf("a's attempts: %v; want %v", steps, want)
	}
	checkUnpublishedEvent(t, w, id, []string{w.a.ID, w.b.ID}, map[string]string{w.a.ID: "unpublished", w.b.ID: "failed"})
}

// checkUnpublishedEvent checks the newest post.unpublished event: post
// id's, for the run's accounts, with each account's unpublish status as
// want says.
func checkUnpublishedEvent(t *testing.T, w *runWorld, id string, runAccounts []string, want map[string]string) {
	t.Helper()
	evs := w.events.OfType(webhooks.PostUnpublished)
	if len(evs) == 0 {
		t.Fatal("no post.unpublished event")
	}
	var body struct {
		Type string `json:"type"`
		Data struct {
			Post     struct{ ID string }
			Accounts []string
			Results  []struct {
				SocialAccountID string
				Unpublish       *struct{ Status string }
			}
		} `json:"data"`
	}
	if err := json.Unmarshal(evs[len(evs)-1].Body, &body); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range body.Data.Results {
		if r.Unpublish != nil {
			got[r.SocialAccountID] = r.Unpublish.Status
		}
	}
	if len(body.Data.Accounts) != len(runAccounts) || fmt.Sprint(body.Data.Accounts) != fmt.Sprint(runAccounts) {
		t.Errorf("post.unpublished names accounts %v; want the run's %v", body.Data.Accounts, runAccounts)
	}
	if body.Type != webhooks.PostUnpublished || body.Data.Post.ID != id || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("post.unpublished: type %s, post %s, unpublish %v; want post %s, %v", body.Type, body.Data.Post.ID, got, id, want)
	}
}

// account reads an account of the world's by id.
func (w *runWorld) account(t *testing.T, id string) *connections.Account {
	t.Helper()
	acc, err := w.tw.Store.Accounts().GetByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// errCode is the code of an error answer ("" for none).
// While a post's unpublish run has not ended, publishing it again
// (?again=true on a published post) is 409 unpublish_running, and nothing
// changes: it would forget every result, those the run deletes by too, so
// the run would skip those accounts and leave their posts up after a 202
// that promised otherwise. A retry, or a publish of a failed post, goes
// ahead: it publishes to the failed accounts only and leaves the published
// ones' results as they are.
func TestPublishWaitsForUnpublish(t *testing.T) {
	w := newRunWorld(t)
	create := func(text string) string {
		status, out := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":%q,"socialAccountIds":[%q,%q]}`, text, w.a.ID, w.b.ID))
		if status != 201 {
			t.Fatalf("create: %d %v", status, out)
		}
		id := out["id"].(string)
		if status, out := w.call(t, "POST", "/publish/"+id, ""); status != 202 {
			t.Fatalf("publish: %d %v", status, out)
		}
		w.runner.mu.Lock()
		w.runner.unpublishing[id] = true
		w.runner.mu.Unlock()
		return id
	}

	published := create("Up everywhere, coming down")
	if status, out := w.call(t, "POST", "/publish/"+published+"?again=true", ""); status != 409 || code(out) != "unpublish_running" {
		t.Errorf("publish again: %d %v; want 409 unpublish_running", status, out)
	}
	postStatus, results := w.results(t, published)
	if postStatus != "published" || results[w.a.ID]["platformPostId"] == nil || results[w.b.ID]["platformPostId"] == nil {
		t.Errorf("after a refused publish: post %q, results %v; want them as the publish left them", postStatus, results)
	}

	w.behave(t, w.b, `{"publish":"rejected","publishTimes":2}`)
	failed := create("Up on a, refused on b")
	_, results = w.results(t, failed)
	before := results[w.a.ID]["platformPostId"]
	for _, path := range []string{"/posts/" + failed + "/retry", "/publish/" + failed} {
		if status, out := w.call(t, "POST", path, ""); status != 202 {
			t.Errorf("%s during the unpublish: %d %v; want 202", path, status, out)
		}
		if _, results := w.results(t, failed); results[w.a.ID]["platformPostId"] != before || results[w.a.ID]["status"] != "published" {
			t.Errorf("a after %s during the unpublish: %v; want its result untouched", path, results[w.a.ID])
		}
	}

	w.runner.mu.Lock()
	w.runner.unpublishing[published] = false
	w.runner.mu.Unlock()
	// Nor is the post deleted while it runs: its end would announce nothing.
	if status, out := w.call(t, "DELETE", "/posts/"+failed, ""); status != 409 || code(out) != "unpublish_running" {
		t.Errorf("DELETE during the unpublish: %d %v; want 409 unpublish_running", status, out)
	}
	if status, out := w.call(t, "POST", "/publish/"+published+"?again=true", ""); status != 202 {
		t.Errorf("publish again once the unpublish ended: %d %v; want 202", status, out)
	}
}

// A delete the network keeps answering 503 fails once the retries run
// out, with the network's code and its own message, as a refusal's
// result has, not the activity error's text.
func TestUnpublishOutageOutlastingTheRetries(t *testing.T) {
	w := newRunWorld(t)
	status, out := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":"down for long","socialAccountIds":[%q]}`, w.a.ID))
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	id := out["id"].(string)
	if status, out := w.call(t, "POST", "/publish/"+id, ""); status != 202 {
		t.Fatalf("publish: %d %v", status, out)
	}
	w.behave(t, w.a, `{"publish":"ok","deleteSequence":["unavailable","unavailable","unavailable","unavailable","unavailable"]}`)
	if status, out := w.call(t, "POST", "/posts/"+id+"/unpublish", ""); status != 202 {
		t.Fatalf("unpublish: %d %v", status, out)
	}
	_, results := w.results(t, id)
	u, _ := results[w.a.ID]["unpublish"].(map[string]any)
	if u["status"] != "failed" || u["errorCode"] != "unavailable" || u["errorCategory"] != "platform_unavailable" ||
		u["errorMessage"] != "The sandbox is having a bad day." || u["attempts"] != 4.0 {
		t.Errorf("a's unpublish: %v; want failed after 4 attempts, unavailable, with the sandbox's message", u)
	}
	if n := w.holds(t, w.a, "down for long"); n != 1 {
		t.Errorf("a's feed holds the post %d times; want it still there", n)
	}
}

// An account disconnected after its post went out cannot delete it: a new
// connection of the same network user is another account, which the
// post's result does not name, so an unpublish fails every time, and its
// message says to delete the post by hand rather than to reconnect.
func TestUnpublishFromADisconnectedAccount(t *testing.T) {
	w := newRunWorld(t)
	status, out := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":"left behind","socialAccountIds":[%q]}`, w.a.ID))
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	id := out["id"].(string)
	if status, out := w.call(t, "POST", "/publish/"+id, ""); status != 202 {
		t.Fatalf("publish: %d %v", status, out)
	}
	if err := w.tw.Connections.Disconnect(context.Background(), "org-a", w.a.ID); err != nil {
		t.Fatal(err)
	}
	again := w.tw.MustConnectSandbox(t, "org-a", "alice", "Ada")
	if again.ID == w.a.ID {
		t.Fatalf("reconnecting gave the same account %s; this test expects a new one", again.ID)
	}
	for i := range 2 {
		if status, out := w.call(t, "POST", "/posts/"+id+"/unpublish", fmt.Sprintf(`{"accounts":[%q]}`, w.a.ID)); status != 202 {
			t.Fatalf("unpublish %d: %d %v", i, status, out)
		}
		_, results := w.results(t, id)
		u, _ := results[w.a.ID]["unpublish"].(map[string]any)
		msg, _ := u["errorMessage"].(string)
		if u["status"] != "failed" || u["errorCode"] != "ACCOUNT_DISCONNECTED" || !strings.Contains(msg, "by hand") || strings.Contains(msg, "unpublish again") ||
			u["errorAction"] != "check_network" || u["attempts"] != 0.0 {
			t.Errorf("unpublish %d after a reconnect: %v; want failed ACCOUNT_DISCONNECTED, check_network, no delete call, telling to delete it by hand", i, u)
		}
	}
	if n := w.holds(t, again, "left behind"); n != 1 {
		t.Errorf("the feed holds the post %d times; want it still there", n)
	}
}
