package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// One account failed (its content refused), one published, one unknown
// (every attempt a 504): POST /posts/{id}/retry publishes to the failed one
// alone, then, named, to the unknown one alone; the published one is
// never posted to twice, and each refusal says why.
func TestRetryTouchesOnlyTheChosenAccounts(t *testing.T) {
	w := newRunWorld(t)
	const text = "Retry me, and only me"
	w.behave(t, w.a, `{"publish":"rejected","publishTimes":1}`)
	w.behave(t, w.c, `{"publish":"timeout"}`)
	status, out := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":%q,"socialAccountIds":[%q,%q,%q]}`, text, w.a.ID, w.b.ID, w.c.ID))
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	id := out["id"].(string)
	if status, out := w.call(t, "POST", "/publish/"+id, ""); status != 202 {
		t.Fatalf("publish: %d %v", status, out)
	}
	postStatus, results := w.results(t, id)
	want := map[string][3]string{ // status, errorCategory, errorAction
		w.a.ID: {"failed", "content_rejected", "edit"},
		w.b.ID: {"published", "", ""},
		w.c.ID: {"unknown", "outcome_unknown", "check_network"},
	}
	for acc, wr := range want {
		r := results[acc]
		got := [3]string{fmt.Sprint(r["status"]), fmt.Sprint(r["errorCategory"]), fmt.Sprint(r["errorAction"])}
		if wr[1] == "" {
			wr[1], wr[2] = "<nil>", "<nil>"
		}
		if got != wr {
			t.Errorf("after the first run, %s: %v, want %v", acc, r, wr)
		}
	}
	if postStatus != "failed" {
		t.Fatalf("post %s after the first run", postStatus)
	}
	bPost := results[w.b.ID]["platformPostId"]

	// The unknown account's attempts made nothing; the sandbox now
	// answers it.
	w.behave(t, w.c, `{"publish":"ok"}`)
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"a published account named", fmt.Sprintf(`{"accounts":[%q,%q]}`, w.a.ID, w.b.ID), 409, "account_published"},
		{"an account not on the post", `{"accounts":["6b09cf9f12f072c903d40dad"]}`, 422, "account_not_on_post"},
		{"an account twice", fmt.Sprintf(`{"accounts":[%q,%q]}`, w.a.ID, strings.ToUpper(w.a.ID)), 422, "duplicate_account"},
		{"no id", `{"accounts":["x"]}`, 400, "invalid_id"},
		{"an unknown field", `{"account":[]}`, 400, "unknown_field"},
	}
	for _, tt := range tests {
		if status, out := w.call(t, "POST", "/posts/"+id+"/retry", tt.body); status != tt.status || code(out) != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, status, out, tt.status, tt.code)
		}
	}
	if _, out := w.call(t, "POST", "/posts/"+id+"/retry", fmt.Sprintf(`{"accounts":[%q]}`, w.b.ID)); fmt.Sprint(out["error"].(map[string]any)["details"]) != fmt.Sprintf("map[accounts:[%s]]", w.b.ID) {
		t.Errorf("account_published names %v, want %s", out, w.b.ID)
	}

	// No body: the failed account alone.
	status, out = w.call(t, "POST", "/posts/"+id+"/retry", "")
	if status != 202 || fmt.Sprint(out["accounts"]) != fmt.Sprintf("[%s]", w.a.ID) || out["workflowId"] != "publish:"+id {
		t.Fatalf("retry: %d %v, want the failed account alone", status, out)
	}
	postStatus, results = w.results(t, id)
	if results[w.a.ID]["status"] != "published" || results[w.b.ID]["status"] != "published" || results[w.b.ID]["platformPostId"] != bPost ||
		results[w.c.ID]["status"] != "unknown" || postStatus != "failed" {
		t.Errorf("after the retry: post %s, results %v", postStatus, results)
	}
	if a, b, c := w.holds(t, w.a, text), w.holds(t, w.b, text), w.holds(t, w.c, text); a != 1 || b != 1 || c != 0 {
		t.Errorf("the sandbox holds the post %d, %d, %d times; want 1, 1, 0", a, b, c)
	}

	// Only the unknown one is left, and only by name.
	if status, out := w.call(t, "POST", "/posts/"+id+"/retry", `{}`); status != 409 || code(out) != "nothing_to_retry" {
		t.Errorf("retry with only an unknown account left: %d %v", status, out)
	}
	status, out = w.call(t, "POST", "/posts/"+id+"/retry", fmt.Sprintf(`{"accounts":[%q]}`, strings.ToUpper(w.c.ID)))
	if status != 202 || fmt.Sprint(out["accounts"]) != fmt.Sprintf("[%s]", w.c.ID) {
		t.Fatalf("retry naming the unknown account: %d %v", status, out)
	}
	postStatus, results = w.results(t, id)
	if postStatus != "published" || results[w.c.ID]["status"] != "published" || results[w.b.ID]["platformPostId"] != bPost {
		t.Errorf("after the second retry: post %s, results %v", postStatus, results)
	}
	if a, b, c := w.holds(t, w.a, text), w.holds(t, w.b, text), w.holds(t, w.c, text); a != 1 || b != 1 || c != 1 {
		t.Errorf("the sandbox holds the post %d, %d, %d times; want each once", a, b, c)
	}
	if status, out := w.call(t, "POST", "/posts/"+id+"/retry", ""); status != 409 || code(out) != "nothing_to_retry" {
		t.Errorf("retry of a published post: %d %v", status, out)
	}
	if status, out := w.call(t, "POST", "/posts/6b09cf9f12f072c903d40dad/retry", ""); status != 404 || code(out) != "post_not_found" {
		t.Errorf("retry of no post: %d %v", status, out)
	}
	_, draft := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":"never published","socialAccountIds":[%q]}`, w.a.ID))
	if status, out := w.call(t, "POST", "/posts/"+draft["id"].(string)+"/retry", ""); status != 409 || code(out) != "post_state_conflict" {
		t.Errorf("retry of a draft: %d %v", status, out)
	}
}

// The old route keeps its meaning: POST /publish of a failed post leaves
// an unknown outcome alone; with ?again=true it publishes to it, and never
// to the account already published.
func TestPublishAgainTrueKeepsWorking(t *testing.T) {
	w := newRunWorld(t)
	const text = "Again, on purpose"
	w.behave(t, w.b, `{"publish":"timeout"}`)
	_, out := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":%q,"socialAccountIds":[%q,%q]}`, text, w.a.ID, w.b.ID))
	id := out["id"].(string)
	w.call(t, "POST", "/publish/"+id, "")
	if _, results := w.results(t, id); results[w.b.ID]["status"] != "unknown" {
		t.Fatalf("after the first run: %v", results)
	}
	w.behave(t, w.b, `{"publish":"ok"}`)
	for _, tt := range []struct {
		query      string
		wantStatus string
		wantB      int
	}{
		{"", "failed", 0},
		{"?again=true", "published", 1},
	} {
		if status, out := w.call(t, "POST", "/publish/"+id+tt.query, ""); status != 202 {
			t.Fatalf("publish%s: %d %v", tt.query, status, out)
		}
		postStatus, results := w.results(t, id)
		if postStatus != tt.wantStatus || w.holds(t, w.a, text) != 1 || w.holds(t, w.b, text) != tt.wantB {
			t.Errorf("publish%s: post %s, the sandbox holds it %d and %d times; want %s, 1 and %d (results %v)",
				tt.query, postStatus, w.holds(t, w.a, text), w.holds(t, w.b, text), tt.wantStatus, tt.wantB, results)
		}
	}
}
