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
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/webhooks/webhookstest"
)

// The webhook routes, as a production deployment serves them (public
// addresses only): the secret is shown at creation and rotation only,
// another organization sees nothing, a cancelled post is announced, and
// every answer is what the document says.
func TestWebhookRoutes(t *testing.T) {
	s := newSchemas(t)
	w := testworld.New(t, testworld.Options{})
	ctx := context.Background()
	store := w.Store.Webhooks()
	cipher, _ := tokencipher.New(bytes.Repeat([]byte{5}, 32))
	starter := &webhookstest.Starter{}
	emitter := &webhooks.Emitter{Store: store, Starter: starter}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	acc, err := w.Store.Accounts().Upsert(ctx, &connections.Account{OrganizationID: "org-a", Platform: "linkedin", PlatformUserID: "urn:li:person:w",
		DisplayName: "Ada", AccessToken: "v1.x", Status: connections.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(api.Options{
		Logger: logger, FrontendURL: frontend, MaxBodyBytes: 64 << 10, Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret)},
		Posts:    w.PostsService(&fakeRunner{started: map[string]int{}}).WithEvents(emitter, logger),
		Webhooks: webhooks.NewService(store, cipher, netguard.Policy{}, starter),
	}))
	t.Cleanup(srv.Close)
	call := func(org, method, template, path, body string) (int, map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{org}, ""))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		s.check(method, template, resp.StatusCode, raw)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return resp.StatusCode, out, string(raw)
	}
	code := func(out map[string]any) string {
		e, _ := out["error"].(map[string]any)
		c, _ := e["code"].(string)
		return c
	}

	st, created, _ := call("org-a", "POST", "/webhooks", "/webhooks", `{"url":"https://93.184.215.14/hooks?k=1","events":["post.cancelled","post.failed"]}`)
	secret, _ := created["secret"].(string)
	id, _ := created["id"].(string)
	if st != 201 || !strings.HasPrefix(secret, "whsec_") || id == "" {
		t.Fatalf("create: %d %v", st, created)
	}
	for _, tt := range []struct{ body, code string }{
		{`{"url":"https://10.0.0.1/hooks"}`, "url_not_allowed"},
		{`{"url":"https://[::1]/hooks"}`, "url_not_allowed"},
		{`{"url":"http://93.184.215.14/hooks"}`, "invalid_url"},
		{`{"url":"https://93.184.215.14/","events":["post.nope"]}`, "invalid_events"},
		{`{"url":"https://93.184.215.14/","secret":"mine"}`, "unknown_field"},
	} {
		if st, out, _ := call("org-a", "POST", "/webhooks", "/webhooks", tt.body); st/100 != 4 || code(out) != tt.code {
			t.Errorf("create %s: %d %s, want %s", tt.body, st, code(out), tt.code)
		}
	}
	st, _, raw := call("org-a", "GET", "/webhooks/{id}", "/webhooks/"+id, "")
	if st != 200 || strings.Contains(raw, "whsec_") || strings.Contains(raw, `"secret"`) {
		t.Errorf("get shows the secret: %d %s", st, raw)
	}
	if _, list, raw := call("org-a", "GET", "/webhooks", "/webhooks", ""); len(list["webhooks"].([]any)) != 1 || strings.Contains(raw, "whsec_") {
		t.Errorf("list: %s", raw)
	}
	if st, _, _ := call("org-b", "GET", "/webhooks/{id}", "/webhooks/"+id, ""); st != 404 {
		t.Errorf("another organization's get: %d", st)
	}
	if _, list, _ := call("org-b", "GET", "/webhooks", "/webhooks", ""); len(list["webhooks"].([]any)) != 0 {
		t.Errorf("another organization lists %v", list)
	}
	if st, out, _ := call("org-a", "PATCH", "/webhooks/{id}", "/webhooks/"+id, `{"description":"the backend"}`); st != 200 || out["description"] != "the backend" {
		t.Errorf("patch: %d %v", st, out)
	}
	st, rotated, _ := call("org-a", "POST", "/webhooks/{id}/rotate-secret", "/webhooks/"+id+"/rotate-secret", "")
	if st != 200 || rotated["secret"] == secret || !strings.HasPrefix(fmt.Sprint(rotated["secret"]), "whsec_") || rotated["previousSecretExpiresAt"] == nil {
		t.Errorf("rotate: %d %v", st, rotated)
	}

	// Deleting a scheduled post cancels it, and announces it.
	_, post, _ := call("org-a", "POST", "/posts", "/posts", fmt.Sprintf(`{"content":"later","socialAccountIds":[%q],"scheduledAt":"2030-01-01T09:00:00Z"}`, acc.ID))
	if st, _, _ := call("org-a", "DELETE", "/posts/{id}", "/posts/"+fmt.Sprint(post["id"]), ""); st != 204 {
		t.Fatalf("cancel: %d", st)
	}
	if len(starter.Started()) != 1 || !strings.HasSuffix(starter.Started()[0], "/"+id) {
		t.Fatalf("deliveries started: %v", starter.Started())
	}
	eventID := strings.TrimSuffix(starter.Started()[0], "/"+id)
	ev, err := store.Event(ctx, eventID)
	if err != nil || ev.Type != webhooks.PostCancelled || !strings.Contains(string(ev.Body), `"status":"cancelled"`) {
		t.Fatalf("event %v: %v", ev, err)
	}

	if _, page, _ := call("org-a", "GET", "/webhooks/{id}/deliveries", "/webhooks/"+id+"/deliveries", ""); len(page["deliveries"].([]any)) != 0 {
		t.Errorf("deliveries before any: %v", page)
	}
	d := &webhooks.Delivery{ID: store.NewID(), EndpointID: id, OrganizationID: "org-a", EventID: eventID, EventType: ev.Type, Attempt: 1,
		At: time.Now().UTC(), StatusCode: 500, Response: "oops", DurationMs: 12}
	if err := store.SaveDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, page, _ := call("org-a", "GET", "/webhooks/{id}/deliveries", "/webhooks/"+id+"/deliveries?limit=1", ""); len(page["deliveries"].([]any)) != 1 || page["next"] != d.ID {
		t.Errorf("deliveries: %v", page)
	}
	redeliver := "/webhooks/" + id + "/deliveries/" + d.ID + "/redeliver"
	if st, _, _ := call("org-b", "POST", "/webhooks/{id}/deliveries/{deliveryId}/redeliver", redeliver, ""); st != 404 {
		t.Errorf("another organization's redeliver: %d", st)
	}
	if st, out, _ := call("org-a", "POST", "/webhooks/{id}/deliveries/{deliveryId}/redeliver", redeliver, ""); st != 202 || out["workflowId"] == "" {
		t.Errorf("redeliver: %d %v", st, out)
	}
	if st, _, _ := call("org-a", "PATCH", "/webhooks/{id}", "/webhooks/"+id, `{"enabled":false}`); st != 200 {
		t.Errorf("disable: %d", st)
	}
	if st, out, _ := call("org-a", "POST", "/webhooks/{id}/deliveries/{deliveryId}/redeliver", redeliver, ""); st != 409 || code(out) != "webhook_disabled" {
		t.Errorf("redeliver to a disabled endpoint: %d %v", st, out)
	}
	if st, _, _ := call("org-a", "DELETE", "/webhooks/{id}", "/webhooks/"+id, ""); st != 204 {
		t.Errorf("delete: %d", st)
	}
	if st, _, _ := call("org-a", "GET", "/webhooks/{id}", "/webhooks/"+id, ""); st != 404 {
		t.Errorf("get after delete: %d", st)
	}
}
