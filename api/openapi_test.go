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
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/payloadcodec"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/webhooks"
)

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	return doc
}

// Every route the router serves is documented, and nothing else is. The
// sandbox (a dev tool, not PostFlow's API) is left out.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	cipher, _ := tokencipher.New(bytes.Repeat([]byte{1}, 32))
	h := api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend,
		Connections: &connections.Service{}, Posts: &posts.Service{}, Webhooks: &webhooks.Service{},
		Sandbox:               http.NotFoundHandler(),
		Codec:                 api.CodecOptions{Codec: payloadcodec.New(cipher)},
		BlueskyClientMetadata: map[string]any{},
		BlueskyJWKS:           map[string]any{},
		Media:                 newMediaAPI(t, false).options,
		Metrics:               http.NotFoundHandler(),
		Overdue:               api.OverdueOptions{List: func(context.Context, int) ([]posts.Overdue, error) { return nil, nil }},
	})
	var served []string
	err := chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		switch {
		case strings.HasPrefix(route, "/sandbox/"):
		case route == "/temporal-codec/*":
			// A mounted handler: chi lists it once per method.
			if method == http.MethodPost {
				served = append(served, "POST /temporal-codec/decode", "POST /temporal-codec/encode")
			}
		default:
			served = append(served, method+" "+route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	if !slices.Equal(served, documented) {
		t.Errorf("routes served and documented differ:\nserved:     %v\ndocumented: %v", served, documented)
	}
}

// schemas compiles the response schemas of the document on demand.
type schemas struct {
	t   *testing.T
	c   *jsonschema.Compiler
	doc map[string]any
}

func newSchemas(t *testing.T) *schemas {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	return &schemas{t: t, c: c, doc: doc.(map[string]any)}
}

// check validates body against what the document says path (a template)
// answers to method with status.
func (s *schemas) check(method, path string, status int, body []byte) {
	s.t.Helper()
	ptr := "/paths/" + escape(path) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status)
	resp, ok := lookup(s.doc, ptr).(map[string]any)
	if !ok {
		s.t.Errorf("%s %s answered %d, which the document does not list (%s)", method, path, status, body)
		return
	}
	if ref, ok := resp["$ref"].(string); ok {
		ptr = strings.TrimPrefix(ref, "#")
		resp = lookup(s.doc, ptr).(map[string]any)
	}
	if _, ok := resp["content"]; !ok {
		return // No JSON promised (a redirect, 204).
	}
	sch, err := s.c.Compile("openapi.json#" + ptr + "/content/application~1json/schema")
	if err != nil {
		s.t.Fatalf("%s %s %d: %v", method, path, status, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		s.t.Errorf("%s %s %d: not JSON: %s", method, path, status, body)
		return
	}
	if err := sch.Validate(v); err != nil {
		s.t.Errorf("%s %s %d does not match the document: %v\nbody: %s", method, path, status, err, body)
	}
}

func escape(path string) string {
	return strings.ReplaceAll(strings.ReplaceAll(path, "~", "~0"), "/", "~1")
}

func lookup(doc any, ptr string) any {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		cur = m[tok]
	}
	return cur
}

// The answers of the post routes, success and failure, are what the
// document says they are.
func TestResponsesMatchTheOpenAPI(t *testing.T) {
	s := newSchemas(t)
	p := newPostsAPI(t)
	call := func(method, template, path, body string) map[string]any {
		t.Helper()
		status, raw := p.raw(t, method, path, body)
		s.check(method, template, status, raw)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	created := call("POST", "/posts", "/posts", fmt.Sprintf(`{"content":"hi","socialAccountIds":[%q],"variants":{%q:{"content":"hey"}},"scheduledAt":"2030-01-01T09:00:00+01:00"}`, p.account, p.account))
	id, _ := created["id"].(string)
	call("POST", "/posts", "/posts", `{"content":""}`)                                                  // 422
	call("POST", "/posts", "/posts", `{"content":"x","nope":1}`)                                        // 400
	call("POST", "/posts", "/posts", fmt.Sprintf(`{"content":"x","socialAccountIds":[%q]}`, p.foreign)) // 422
	call("GET", "/posts", "/posts?limit=1", "")
	call("GET", "/posts", "/posts?status=nope", "")
	call("GET", "/posts/{id}", "/posts/"+id, "")
	// A result holding an image's upload, kept as the publish activity
	// keeps it: the answer shows the upload, not its network-side ref.
	ctx, now := context.Background(), time.Now().UTC()
	if err := p.store.SaveResult(ctx, &posts.Result{PostID: id, SocialAccountID: p.account, Status: posts.ResultPublishing, AttemptedAt: &now}); err != nil {
		t.Fatal(err)
	}
	up := posts.MediaUpload{Upload: providers.Upload{MediaID: "6b0ce8e3fe7323571c56241a", ID: "bafkreiaor7dp4fbzfkiei5wzlvuwhkv34ky5cm7c4esir4q2fz7f2i7mhu",
		Ref: `{"$type":"blob","ref":{"$link":"bafkrei"}}`, UploadedAt: now, ExpiresAt: now.Add(time.Hour)},
		Adjusted: "re-encoded as image/jpeg, 1620x1215, 406477 bytes, to fit Bluesky's 1000000 bytes per image", Width: 1620, Height: 1215}
	if err := p.store.SaveUpload(ctx, id, p.account, up); err != nil {
		t.Fatal(err)
	}
	withMedia := call("GET", "/posts/{id}", "/posts/"+id, "")
	if got := fmt.Sprint(withMedia["results"]); !strings.Contains(got, "platformMediaId:bafkrei") || strings.Contains(got, "$link") {
		t.Errorf("GET /posts/{id} results %s; want the upload, without its ref", got)
	}
	call("GET", "/posts/{id}", "/posts/000000000000000000000000", "")
	call("GET", "/posts/{id}", "/posts/nope", "")          // 400 invalid_id
	call("GET", "/posts", "/posts?before=nope", "")        // 400 invalid_id
	call("DELETE", "/posts/{id}", "/posts/nope", "")       // 400 invalid_id
	call("POST", "/publish/{postId}", "/publish/nope", "") // 400 invalid_id
	call("PATCH", "/posts/{id}", "/posts/"+id, `{"content":"edited"}`)
	call("POST", "/publish/{postId}", "/publish/"+id, "")
	call("DELETE", "/posts/{id}", "/posts/"+id, "")
	call("POST", "/publish/{postId}", "/publish/"+id, "") // 409: cancelled
	call("GET", "/healthz", "/healthz", "")
	call("GET", "/openapi.json", "/openapi.json", "")
}

// The answers of the connection routes match the document too.
func TestConnectionResponsesMatchTheOpenAPI(t *testing.T) {
	s := newSchemas(t)
	ta := newTestAPI(t, false)
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	check := func(method, template, path string, h http.Header) []byte {
		t.Helper()
		res, body := ta.do(t, method, path, h)
		s.check(method, template, res.StatusCode, body)
		return body
	}
	check("GET", "/providers", "/providers", nil)
	check("GET", "/connections/connect/{providerId}", "/connections/connect/linkedin", nil) // 401
	check("GET", "/connections/connect/{providerId}", "/connections/connect/nope", alice)   // 404
	body := check("GET", "/connections/connect/{providerId}", "/connections/connect/linkedin",
		http.Header{"Authorization": alice["Authorization"], "Accept": {"application/json"}})
	_, _, start := ta.connectJSON(t, alice)
	for _, origin := range []string{"https://evil.example", frontend} {
		res := ta.browser.submit(t, start, origin) // refused, then taken
		s.check("POST", "/connections/connect/{providerId}/start", res.StatusCode, nil)
	}
	callback := ta.browser.get(t, ta.authorize(t, body), nil)
	s.check("GET", "/connections/callback/{providerId}", callback.StatusCode, nil)
	check("GET", "/connections", "/connections", alice)
	check("GET", "/connections", "/connections?organizationId=org-b", alice) // 403
	check("DELETE", "/connections/{id}", "/connections/000000000000000000000000", alice)
	check("DELETE", "/connections/{id}", "/connections/nope", alice) // 400 invalid_id
}

// The codec endpoint's answers, successes and errors, match the document.
func TestCodecResponsesMatchTheOpenAPI(t *testing.T) {
	s := newSchemas(t)
	plain, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{plain}})
	for _, tt := range []struct {
		anonymous       bool
		host, ctype, op string
		body            string
	}{
		{true, "", "application/json", "/encode", string(body)},                                 // 200
		{true, "", "application/json", "/decode", string(body)},                                 // 200
		{true, "", "application/json", "/decode", `{"payloads":[{"DATA":""}]}`},                 // 400
		{true, "", "application/json", "/decode", `{"payloads":"` + strings.Repeat("a", 1<<20)}, // 413
		{true, "", "text/plain", "/decode", string(body)},                                       // 415
		{true, "rebound.example", "application/json", "/decode", string(body)},                  // 403
		{false, "", "application/json", "/decode", string(body)},                                // 401
	} {
		srv, _ := codecServer(t, tt.anonymous)
		req, _ := http.NewRequest("POST", srv.URL+"/temporal-codec"+tt.op, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.ctype)
		if tt.host != "" {
			req.Host = tt.host
		}
		res, out := send(t, req)
		s.check("POST", "/temporal-codec"+tt.op, res.StatusCode, out)
	}
}

func TestBlueskyClientMetadata(t *testing.T) {
	s := newSchemas(t)
	const base = "https://api.example"
	clientKey := bytes.Repeat([]byte{7}, 32)
	jwks, err := bluesky.ClientJWKS(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	public := bluesky.ClientMetadata(base+api.BlueskyClientMetadataPath, base+"/connections/callback/bluesky", bluesky.DefaultOAuthScope, "")
	confidential := bluesky.ClientMetadata(base+api.BlueskyClientMetadataPath, base+"/connections/callback/bluesky", bluesky.DefaultOAuthScope, base+api.BlueskyJWKSPath)
	tests := []struct {
		name           string
		metadata, keys map[string]any
		wantMetadata   int
		wantKeys       int
		wantAuth       string
	}{
		{"public client", public, nil, http.StatusOK, http.StatusNotFound, "none"},
		{"confidential client", confidential, jwks, http.StatusOK, http.StatusOK, "private_key_jwt"},
		{"app passwords: nothing served", nil, nil, http.StatusNotFound, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := api.NewHandler(api.Options{
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend,
				BlueskyClientMetadata: tt.metadata, BlueskyJWKS: tt.keys,
			})
			get := func(path string) *httptest.ResponseRecorder {
				req, _ := http.NewRequest(http.MethodGet, path, nil)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code == http.StatusOK {
					s.check(http.MethodGet, path, rec.Code, rec.Body.Bytes())
				}
				return rec
			}
			md, keys := get(api.BlueskyClientMetadataPath), get(api.BlueskyJWKSPath)
			if md.Code != tt.wantMetadata || keys.Code != tt.wantKeys {
				t.Fatalf("status %d and %d, want %d and %d", md.Code, keys.Code, tt.wantMetadata, tt.wantKeys)
			}
			if tt.wantMetadata != http.StatusOK {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(md.Body.Bytes(), &got); err != nil || got["client_id"] != base+api.BlueskyClientMetadataPath || got["token_endpoint_auth_method"] != tt.wantAuth {
				t.Fatalf("metadata %v (%v)", got, err)
			}
			if strings.Contains(keys.Body.String(), `"d"`) {
				t.Fatal("the JWK set holds the private key")
			}
		})
	}
}
