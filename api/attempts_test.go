package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The old route keeps working: POST /publish of a failed post publishes
// to the accounts that failed, not to the published ones. GET
// /posts/{id}?include=attempts then lists each account's attempts: a 503,
// a 429 and its wait, a refusal, and the publish.
func TestPublishAgainAndAttempts(t *testing.T) {
	w := newRunWorld(t)
	const text = "Old route, new record"
	w.behave(t, w.a, `{"publishSequence":["unavailable","rate_limited","rejected"],"retryAfterSeconds":30}`)
	_, out := w.call(t, "POST", "/posts", fmt.Sprintf(`{"content":%q,"socialAccountIds":[%q,%q]}`, text, w.a.ID, w.b.ID))
	id := out["id"].(string)
	for range 2 {
		if status, out := w.call(t, "POST", "/publish/"+id, ""); status != 202 {
			t.Fatalf("publish: %d %v", status, out)
		}
	}
	postStatus, results := w.results(t, id)
	if postStatus != "published" || results[w.a.ID]["status"] != "published" {
		t.Errorf("after publishing twice: %s %v", postStatus, results)
	}
	if a, b := w.holds(t, w.a, text), w.holds(t, w.b, text); a != 1 || b != 1 {
		t.Errorf("the sandbox holds the post %d, %d times; want once each", a, b)
	}

	if status, out := w.call(t, "GET", "/posts/"+id+"?include=comments", ""); status != 400 || code(out) != "invalid_include" {
		t.Errorf("include=comments: %d %v", status, out)
	}
	if _, out := w.call(t, "GET", "/posts/"+id, ""); out["attempts"] != nil {
		t.Errorf("attempts without include: %v", out["attempts"])
	}
	status, out := w.call(t, "GET", "/posts/"+id+"?include=attempts", "")
	byAccount, _ := out["attempts"].(map[string]any)
	if status != 200 || len(byAccount) != 2 {
		t.Fatalf("include=attempts: %d %v", status, out)
	}
	var got []string
	for _, a := range byAccount[w.a.ID].([]any) {
		m := a.(map[string]any)
		got = append(got, fmt.Sprintf("%v %v %v %v wait:%v", m["step"], m["outcome"], m["httpStatus"], m["errorCategory"], m["waitUntil"] != nil))
		if m["at"] == nil {
			t.Errorf("an attempt without its time: %v", m)
		}
	}
	want := []string{
		"publish refused 503 platform_unavailable wait:false",
		"publish refused 429 rate_limited wait:true",
		"publish refused 422 content_rejected wait:false",
		"publish published <nil> <nil> wait:false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("attempts of the account that failed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b := byAccount[w.b.ID].([]any); len(b) != 1 || b[0].(map[string]any)["outcome"] != "published" {
		t.Errorf("attempts of the account published at once: %v", b)
	}
	raw, _ := json.Marshal(out)
	if strings.Contains(string(raw), "sbx-at-") || strings.Contains(strings.ToLower(string(raw)), "bearer") {
		t.Errorf("the answer holds a token: %s", raw)
	}
}
