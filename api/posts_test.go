package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/posts"
)

// fakeRunner stands in for Temporal: it records starts and cancels, and
// reports the run already going for a post started before, as the
// workflow id conflict policy does.
type fakeRunner struct {
	mu          sync.Mutex
	started     map[string]int
	cancelled   []string
	rescheduled []string
}

func (f *fakeRunner) Start(_ context.Context, p *posts.Post) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started[p.ID]++
	return "run-" + p.ID, nil
}

func (f *fakeRunner) Cancel(_ context.Context, postID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, postID)
	return nil
}

func (f *fakeRunner) Reschedule(_ context.Context, postID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rescheduled = append(f.rescheduled, postID)
	return nil
}

type postsAPI struct {
	srv     *httptest.Server
	runner  *fakeRunner
	account string // a LinkedIn account of org-a
	second  string // another one
	foreign string // an account of org-b
	store   posts.Store
}

func newPostsAPI(t *testing.T) *postsAPI {
	t.Helper()
	w := testworld.New(t, testworld.Options{})
	store := w.Store
	ctx := context.Background()
	add := func(org, uid string) string {
		a, err := store.Accounts().Upsert(ctx, &connections.Account{OrganizationID: org, Platform: "linkedin", PlatformUserID: uid,
			DisplayName: "Ada", AccessToken: "v1.x", Status: connections.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	runner := &fakeRunner{started: map[string]int{}}
	svc := w.PostsService(runner)
	srv := httptest.NewServer(api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend, MaxBodyBytes: 64 << 10,
		Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret)}, Posts: svc,
	}))
	t.Cleanup(srv.Close)
	return &postsAPI{srv: srv, runner: runner, account: add("org-a", "urn:li:person:a"), second: add("org-a", "urn:li:person:a2"),
		foreign: add("org-b", "urn:li:person:b"), store: store.Posts()}
}

func (p *postsAPI) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	status, raw := p.raw(t, method, path, body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return status, out
}

// raw calls path as alice of org-a and returns the status and the body.
func (p *postsAPI) raw(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, p.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{"org-a"}, ""))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, raw := send(t, req)
	return res.StatusCode, raw
}

// send does req on the default client and returns the answer with its
// body read and closed.
func send(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

func code(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestCreatePostValidation(t *testing.T) {
	p := newPostsAPI(t)
	j := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"draft", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account}}), 201, ""},
		{"scheduled with offset", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account}, "scheduledAt": "2030-01-01T09:00:00+01:00"}), 201, ""},
		{"no content", j(map[string]any{"socialAccountIds": []string{p.account}}), 400, "empty_content"},
		{"blank content", j(map[string]any{"content": " \n", "socialAccountIds": []string{p.account}}), 400, "empty_content"},
		{"too long for LinkedIn", j(map[string]any{"content": strings.Repeat("a", 3001), "socialAccountIds": []string{p.account}}), 422, "content_too_long"},
		{"too long variant", j(map[string]any{"content": "ok", "socialAccountIds": []string{p.account}, "variants": map[string]any{p.account: map[string]string{"content": strings.Repeat("🚀", 1501)}}}), 422, "content_too_long"},
		{"variant for another account", j(map[string]any{"content": "ok", "socialAccountIds": []string{p.account}, "variants": map[string]any{p.second: map[string]string{"content": "y"}}}), 422, "unknown_variant"},
		{"no accounts", j(map[string]any{"content": "hi"}), 422, "no_accounts"},
		{"unknown account", j(map[string]any{"content": "hi", "socialAccountIds": []string{"6b09cf9f12f072c903d40dad"}}), 422, "unknown_account"},
		{"another organization's account", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.foreign}}), 422, "unknown_account"},
		{"account twice", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account, p.account}}), 422, "duplicate_account"},
		// Ids are compared as ids: one spelled in capitals is the same.
		{"account twice, once in capitals", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account, strings.ToUpper(p.account)}}), 422, "duplicate_account"},
		{"account twice, a variant under each spelling", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account, strings.ToUpper(p.account)},
			"variants": map[string]any{p.account: map[string]string{"content": "one"}, strings.ToUpper(p.account): map[string]string{"content": "two"}}}), 422, "duplicate_account"},
		{"two variants for one account", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account},
			"variants": map[string]any{p.account: map[string]string{"content": "one"}, strings.ToUpper(p.account): map[string]string{"content": "two"}}}), 422, "duplicate_variant"},
		{"account id that is no id", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account, "x"}}), 400, "invalid_id"},
		{"variant key that is no id", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account}, "variants": map[string]any{"x": map[string]string{"content": "y"}}}), 400, "invalid_id"},
		// Field names match exactly, and a key is given once.
		{"field name in capitals", `{"CONTENT":"hi","socialAccountIds":["` + p.account + `"]}`, 400, "unknown_field"},
		{"variant field name in capitals", `{"content":"hi","socialAccountIds":["` + p.account + `"],"variants":{"` + p.account + `":{"Content":"x"}}}`, 400, "unknown_field"},
		{"content twice", `{"content":"hi","content":"","socialAccountIds":["` + p.account + `"]}`, 400, "duplicate_key"},
		{"scheduledAt without offset", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account}, "scheduledAt": "2030-01-01T09:00:00"}), 400, "invalid_scheduled_at"},
		{"unknown field", `{"content":"hi","socialAccountIds":[],"publishAt":"now"}`, 400, "unknown_field"},
		{"too large", j(map[string]any{"content": strings.Repeat("a", 70<<10)}), 413, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := p.call(t, "POST", "/posts", tt.body)
			if status != tt.status || code(out) != tt.code {
				t.Errorf("got %d %v, want %d %q", status, out, tt.status, tt.code)
			}
		})
	}
	_, out := p.call(t, "POST", "/posts", j(map[string]any{"content": "hi", "socialAccountIds": []string{p.account}, "scheduledAt": "2030-01-01T09:00:00+01:00"}))
	if out["status"] != "scheduled" || out["scheduledAt"] != "2030-01-01T08:00:00Z" {
		t.Errorf("scheduled post = %v, want status scheduled at 08:00 UTC", out)
	}
	// Ids in capitals are stored in their one spelling.
	status, out := p.call(t, "POST", "/posts", j(map[string]any{"content": "hi", "socialAccountIds": []string{strings.ToUpper(p.account)},
		"variants": map[string]any{strings.ToUpper(p.account): map[string]string{"content": "hey"}}}))
	accounts, _ := out["socialAccountIds"].([]any)
	variants, _ := out["variants"].(map[string]any)
	if status != 201 || len(accounts) != 1 || accounts[0] != p.account || len(variants) != 1 || variants[p.account] == nil {
		t.Errorf("post with ids in capitals = %d %v, want them as %s", status, out, p.account)
	}
}

// Content is judged on what a reader sees: text of white space and
// characters that render as nothing is empty, and control characters
// other than line breaks and tabs are refused; for the content and for
// each variant, on create and on edit.
func TestContentIsJudgedOnWhatAReaderSees(t *testing.T) {
	p := newPostsAPI(t)
	tests := []struct {
		name    string
		content string
		status  int
		code    string
	}{
		{"text", "Launch day", 201, ""},
		{"lines and tabs", "a\tb\nc", 201, ""},
		{"CRLF line breaks", "a\r\nb\r\n", 201, ""},
		{"emoji joined by ZWJ", "\U0001F469\u200d\U0001F4BB", 201, ""},
		{"word joined by a soft hyphen", "in\u00adcredible", 201, ""},
		{"zero-width space", "\u200b", 400, "empty_content"},
		{"zero-width characters and spaces", "\u200b \u2060\n\ufeff\u00a0\u3000", 400, "empty_content"},
		{"hangul filler", "\u3164\u3164", 400, "empty_content"},
		{"variation selector", "\ufe0f", 400, "empty_content"},
		{"bidi marks", "\u200e\u202e\u2066", 400, "empty_content"},
		{"NUL", "hi\x00", 400, "invalid_content"},
		{"NUL alone", "\x00", 400, "invalid_content"},
		{"escape sequence", "\x1b[31mred", 400, "invalid_content"},
		{"DEL", "a\x7f", 400, "invalid_content"},
		{"C1 control", "a\u0085b", 400, "invalid_content"},
		{"lone carriage return", "a\rb", 400, "invalid_content"},
		{"carriage return at the end", "a\r", 400, "invalid_content"},
		{"braille pattern blank", "\u2800", 400, "empty_content"},
		{"braille blanks and spaces", "\u2800 \u2800\n", 400, "empty_content"},
		{"braille pattern with a dot", "\u2801", 201, ""},
		{"combining acute alone", "\u0301", 400, "empty_content"},
		{"enclosing circle alone", "\u20dd", 400, "empty_content"},
		{"combining marks and spaces", " \u0301\u0308 \u20dd", 400, "empty_content"},
		{"accent on a letter", "e\u0301", 201, ""},
		{"keycap", "1\ufe0f\u20e3", 201, ""},
		{"noncharacter U+FFFE", "a\ufffe", 400, "invalid_content"},
		{"noncharacter U+FFFF", "\uffff", 400, "invalid_content"},
		{"noncharacter U+FDD0", "a\ufdd0b", 400, "invalid_content"},
		{"noncharacter at the end of plane 1", "a\U0001FFFF", 400, "invalid_content"},
		{"noncharacter at the end of plane 16", "a\U0010FFFE", 400, "invalid_content"},
		// Unicode assigns characters every year; text is not refused
		// for being newer than Go's tables (U+10D40 GARAY, Unicode 16).
		{"a character newer than Go's tables", "a\U00010D40", 201, ""},
		{"private use", "\uf8ff", 201, ""},
		{"private use in plane 16", "\U00100000", 201, ""},
		{"emoji newer than Go's Unicode tables", "\U0001FAE9", 201, ""},
	}
	j := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := p.call(t, "POST", "/posts", j(map[string]any{"content": tt.content, "socialAccountIds": []string{p.account}}))
			if status != tt.status || code(out) != tt.code {
				t.Errorf("content: got %d %v, want %d %q", status, out, tt.status, tt.code)
			}
			status, out = p.call(t, "POST", "/posts", j(map[string]any{"content": "fine", "socialAccountIds": []string{p.account, p.second},
				"variants": map[string]any{p.second: map[string]string{"content": tt.content}}}))
			if status != tt.status || code(out) != tt.code {
				t.Errorf("variant: got %d %v, want %d %q", status, out, tt.status, tt.code)
			}
			_, draft := p.call(t, "POST", "/posts", j(map[string]any{"content": "draft", "socialAccountIds": []string{p.account}}))
			want := tt.status
			if want == 201 {
				want = 200
			}
			status, out = p.call(t, "PATCH", "/posts/"+draft["id"].(string), j(map[string]any{"content": tt.content}))
			if status != want || code(out) != tt.code {
				t.Errorf("edit: got %d %v, want %d %q", status, out, want, tt.code)
			}
		})
	}
	// A variant cannot be empty either, even where the content is not.
	status, out := p.call(t, "POST", "/posts", j(map[string]any{"content": "fine", "socialAccountIds": []string{p.account},
		"variants": map[string]any{p.account: map[string]string{"content": ""}}}))
	if status != 400 || code(out) != "empty_content" || !strings.Contains(fmt.Sprint(out), "neither content nor media") {
		t.Errorf("empty variant: got %d %v", status, out)
	}
	// A variant that changes only the images omits content and inherits
	// the post's text.
	for _, variant := range []map[string]any{{"media": []any{}}, {"content": "", "media": []any{}}} {
		status, out = p.call(t, "POST", "/posts", j(map[string]any{"content": "fine", "socialAccountIds": []string{p.account},
			"variants": map[string]any{p.account: variant}}))
		vs, _ := out["variants"].(map[string]any)
		v, _ := vs[p.account].(map[string]any)
		if status != 201 || v == nil || v["content"] != nil {
			t.Errorf("variant %v: got %d %v", variant, status, out)
		}
	}
	// A variant's key is echoed bounded.
	status, out = p.call(t, "POST", "/posts", j(map[string]any{"content": "fine", "socialAccountIds": []string{p.account},
		"variants": map[string]any{strings.Repeat("k", 20<<10): map[string]any{"content": "x"}}}))
	if status != 400 || len(fmt.Sprint(out)) > 1024 {
		t.Errorf("a long variant key: %d, %d bytes", status, len(fmt.Sprint(out)))
	}
}

// The media type is parsed: application/jsonp is not JSON.
func TestPostBodyMediaType(t *testing.T) {
	p := newPostsAPI(t)
	body := `{"content":"hi","socialAccountIds":["` + p.account + `"]}`
	for _, tt := range []struct {
		ctype  string
		status int
	}{
		{"application/json", 201},
		{"application/json; charset=utf-8", 201},
		{"application/jsonp", 415},
		{"application/json-patch+json", 415},
		{"text/plain", 415},
		{"", 415},
	} {
		req, _ := http.NewRequest("POST", p.srv.URL+"/posts", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{"org-a"}, ""))
		if tt.ctype != "" {
			req.Header.Set("Content-Type", tt.ctype)
		}
		res, raw := send(t, req)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		if res.StatusCode != tt.status || (tt.status == 415 && code(out) != "unsupported_media_type") {
			t.Errorf("Content-Type %q: %d %s, want %d", tt.ctype, res.StatusCode, raw, tt.status)
		}
	}
}

// An edit whose body is not an object (null, a list, a scalar) is refused
// and changes nothing: encoding/json alone takes null as {} and the edit
// answers 200 with a new updatedAt. The same for text that is not what it
// claims (bytes that are not UTF-8, half a surrogate pair).
func TestEditWithABodyThatIsNoObjectChangesNothing(t *testing.T) {
	p := newPostsAPI(t)
	_, draft := p.call(t, "POST", "/posts", `{"content":"draft","socialAccountIds":["`+p.account+`"]}`)
	id, _ := draft["id"].(string)
	_, before := p.call(t, "GET", "/posts/"+id, "")
	for _, body := range []string{`null`, `[]`, `"content"`, `0`, `false`, "{\"content\":\"hi\xff\"}", `{"content":"hi\udc00"}`} {
		status, out := p.call(t, "PATCH", "/posts/"+id, body)
		if status != 400 || code(out) != "invalid_json" {
			t.Errorf("PATCH %s: %d %v, want 400 invalid_json", body, status, out)
		}
	}
	_, got := p.call(t, "GET", "/posts/"+id, "")
	if got["content"] != "draft" || got["updatedAt"] != before["updatedAt"] {
		t.Errorf("after refused edits: content %v, updatedAt %v; want draft, %v", got["content"], got["updatedAt"], before["updatedAt"])
	}
}

// Ids in paths and cursors are read as ids: a post id in capitals names
// the same post, and its run is told under the post's one workflow id;
// what is no id at all is 400 invalid_id.
func TestPostIDsInPathsAndCursors(t *testing.T) {
	p := newPostsAPI(t)
	_, created := p.call(t, "POST", "/posts", `{"content":"first","socialAccountIds":["`+p.account+`"],"scheduledAt":"2030-01-01T00:00:00Z"}`)
	id := created["id"].(string)
	upper := strings.ToUpper(id)

	if status, out := p.call(t, "GET", "/posts/"+upper, ""); status != 200 || out["id"] != id {
		t.Errorf("GET in capitals = %d %v", status, out)
	}
	if status, out := p.call(t, "POST", "/publish/"+upper, ""); status != 202 || out["workflowId"] != "publish:"+id {
		t.Errorf("publish in capitals = %d %v, want workflow publish:%s", status, out, id)
	}
	if status, out := p.call(t, "PATCH", "/posts/"+upper, `{"scheduledAt":"2030-01-02T00:00:00Z"}`); status != 200 {
		t.Errorf("PATCH in capitals = %d %v", status, out)
	}
	if !slices.Equal(p.runner.rescheduled, []string{id}) {
		t.Errorf("rescheduled runs = %v, want [%s]", p.runner.rescheduled, id)
	}
	if status, _ := p.call(t, "DELETE", "/posts/"+upper, ""); status != 204 {
		t.Errorf("DELETE in capitals = %d", status)
	}
	if !slices.Equal(p.runner.cancelled, []string{id}) {
		t.Errorf("cancelled runs = %v, want [%s]", p.runner.cancelled, id)
	}
	_, newer := p.call(t, "POST", "/posts", `{"content":"second","socialAccountIds":["`+p.account+`"]}`)
	_, page := p.call(t, "GET", "/posts?before="+strings.ToUpper(newer["id"].(string)), "")
	if items, _ := page["posts"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id {
		t.Errorf("page before the newer post, in capitals = %v", page)
	}

	for _, r := range []struct{ method, path, body string }{
		{"GET", "/posts/" + id + "0", ""},
		{"GET", "/posts/nope", ""},
		{"PATCH", "/posts/" + id[:23] + "g", `{"content":"x"}`},
		{"DELETE", "/posts/nope", ""},
		{"POST", "/publish/nope", ""},
		{"GET", "/posts?before=nope", ""},
	} {
		if status, out := p.call(t, r.method, r.path, r.body); status != 400 || code(out) != "invalid_id" {
			t.Errorf("%s %s = %d %v, want 400 invalid_id", r.method, r.path, status, out)
		}
	}
}

func TestPostLifecycle(t *testing.T) {
	p := newPostsAPI(t)
	_, created := p.call(t, "POST", "/posts", `{"content":"first","socialAccountIds":["`+p.account+`"]}`)
	id := created["id"].(string)

	if status, out := p.call(t, "PATCH", "/posts/"+id, `{"content":"edited"}`); status != 200 || out["content"] != "edited" {
		t.Errorf("PATCH = %d %v", status, out)
	}
	if status, out := p.call(t, "GET", "/posts/"+id, ""); status != 200 || out["content"] != "edited" || out["results"] == nil {
		t.Errorf("GET = %d %v", status, out)
	}
	// Publish twice: one run.
	for range 2 {
		if status, out := p.call(t, "POST", "/publish/"+id, ""); status != 202 || out["workflowId"] != "publish:"+id {
			t.Errorf("publish = %d %v", status, out)
		}
	}
	if _, got := p.call(t, "GET", "/posts/"+id, ""); got["status"] != "queued" {
		t.Errorf("status after publish = %v", got["status"])
	}
	// The run finishes: a published post is not edited, deleted is fine,
	// and publishing again needs asking.
	now := time.Now()
	if err := p.store.Finish(context.Background(), id, posts.StatusPublished, &now, "", ""); err != nil {
		t.Fatal(err)
	}
	if status, out := p.call(t, "PATCH", "/posts/"+id, `{"content":"too late"}`); status != 409 {
		t.Errorf("PATCH published = %d %v", status, out)
	}
	if status, out := p.call(t, "POST", "/publish/"+id, ""); status != 409 || code(out) != "already_published" {
		t.Errorf("publish published = %d %v", status, out)
	}
	if status, _ := p.call(t, "POST", "/publish/"+id+"?again=true", ""); status != 202 {
		t.Errorf("publish again = %d", status)
	}

	// Deleting a queued post cancels it and keeps it, cancelled.
	_, other := p.call(t, "POST", "/posts", `{"content":"second","socialAccountIds":["`+p.account+`"],"scheduledAt":"2030-01-01T00:00:00Z"}`)
	oid := other["id"].(string)
	p.call(t, "POST", "/publish/"+oid, "")
	// Moving its time tells the run; editing only its content does not
	// need to (the run reads the post when it wakes).
	if status, out := p.call(t, "PATCH", "/posts/"+oid, `{"scheduledAt":"2030-01-02T09:00:00+01:00"}`); status != 200 || out["scheduledAt"] != "2030-01-02T08:00:00Z" {
		t.Errorf("PATCH scheduledAt = %d %v", status, out)
	}
	p.call(t, "PATCH", "/posts/"+oid, `{"content":"second, edited"}`)
	if len(p.runner.rescheduled) != 1 || p.runner.rescheduled[0] != oid {
		t.Errorf("rescheduled runs = %v, want [%s]", p.runner.rescheduled, oid)
	}
	if status, _ := p.call(t, "DELETE", "/posts/"+oid, ""); status != 204 {
		t.Errorf("DELETE queued = %d", status)
	}
	if _, got := p.call(t, "GET", "/posts/"+oid, ""); got["status"] != "cancelled" {
		t.Errorf("deleted scheduled post = %v", got["status"])
	}
	if len(p.runner.cancelled) != 1 || p.runner.cancelled[0] != oid {
		t.Errorf("cancelled runs = %v", p.runner.cancelled)
	}
	if status, out := p.call(t, "POST", "/publish/"+oid, ""); status != 409 {
		t.Errorf("publish cancelled = %d %v", status, out)
	}

	// Lists filter by status, newest first, and page.
	_, list := p.call(t, "GET", "/posts?status=cancelled", "")
	if items, _ := list["posts"].([]any); len(items) != 1 {
		t.Errorf("cancelled posts = %v", list)
	}
	_, page := p.call(t, "GET", "/posts?limit=1", "")
	items, _ := page["posts"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["id"] != oid || page["next"] != oid {
		t.Errorf("first page = %v", page)
	}
	_, page2 := p.call(t, "GET", "/posts?limit=1&before="+oid, "")
	if items, _ := page2["posts"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id {
		t.Errorf("second page = %v", page2)
	}
	if status, out := p.call(t, "GET", "/posts?limit=500", ""); status != 400 || code(out) != "invalid_limit" {
		t.Errorf("limit=500: %d %v", status, out)
	}
}

func TestPostsOfAnotherOrganizationAreNotFound(t *testing.T) {
	p := newPostsAPI(t)
	_, created := p.call(t, "POST", "/posts", `{"content":"mine","socialAccountIds":["`+p.account+`"]}`)
	id := created["id"].(string)
	bob := token(t, "bob", []string{"org-b"}, "")
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/posts/" + id, ""}, {"PATCH", "/posts/" + id, `{"content":"x"}`},
		{"DELETE", "/posts/" + id, ""}, {"POST", "/publish/" + id, ""},
	} {
		req, _ := http.NewRequest(r.method, p.srv.URL+r.path, bytes.NewBufferString(r.body))
		req.Header.Set("Authorization", "Bearer "+bob)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Errorf("%s %s as another organization = %d, want 404", r.method, r.path, res.StatusCode)
		}
	}
}

// Publishing a failed post again never publishes again to an account that
// has it: failed accounts are retried, unknown ones only when asked.
func TestPublishAFailedPostAgain(t *testing.T) {
	p := newPostsAPI(t)
	ctx := context.Background()
	_, post := p.call(t, "POST", "/posts", `{"content":"half way","socialAccountIds":["`+p.account+`","`+p.second+`"]}`)
	id := post["id"].(string)
	now := time.Now().UTC()
	for _, r := range []posts.Result{
		{PostID: id, SocialAccountID: p.account, Status: posts.ResultPublished, PlatformPostID: "urn:li:share:1", PublishedAt: &now},
		{PostID: id, SocialAccountID: p.second, Status: posts.ResultUnknown, ErrorCode: "OUTCOME_UNKNOWN"},
	} {
		if err := p.store.SaveResult(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.store.Finish(ctx, id, posts.StatusFailed, &now, "1 of 2 accounts failed", "PARTIAL_FAILURE"); err != nil {
		t.Fatal(err)
	}
	statuses := func() []string {
		_, got := p.call(t, "GET", "/posts/"+id, "")
		var out []string
		for _, r := range got["results"].([]any) {
			out = append(out, r.(map[string]any)["status"].(string))
		}
		return out
	}
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/publish/" + id, []string{"published", "unknown"}},
		{"/publish/" + id + "?again=true", []string{"published"}},
	} {
		// The run of the try before ended failed.
		if err := p.store.Finish(ctx, id, posts.StatusFailed, &now, "", "PARTIAL_FAILURE"); err != nil {
			t.Fatal(err)
		}
		if status, out := p.call(t, "POST", tt.path, ""); status != 202 {
			t.Fatalf("POST %s = %d %v", tt.path, status, out)
		}
		if got := statuses(); !slices.Equal(got, tt.want) {
			t.Errorf("after POST %s results are %v, want %v", tt.path, got, tt.want)
		}
	}
}
