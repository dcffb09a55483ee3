package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

func newTestHandler(checks ...Check) http.Handler {
	return NewHandler(Options{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		FrontendURL:  "https://app.example.com/some/path",
		MaxBodyBytes: 64,
		Checks:       checks,
	})
}

type errorBody struct {
	Error  *Error            `json:"error"`
	Checks map[string]string `json:"checks"`
	Status string            `json:"status"`
}

func do(t *testing.T, h http.Handler, req *http.Request) (*http.Response, errorBody) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	var body errorBody
	if ct := res.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("decode body: %v", err)
		}
	}
	return res, body
}

func TestProbes(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error {
		return errors.New("dial tcp 10.0.0.7:6379: connection refused (user admin)")
	}
	hung := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

	tests := []struct {
		name       string
		path       string
		checks     []Check
		wantStatus int
		wantDown   string
	}{
		{"healthz needs nothing", "/healthz", []Check{{"redis", down}}, 200, ""},
		{"all ready", "/readyz", []Check{{"mongodb", ok}, {"redis", ok}, {"temporal", ok}}, 200, ""},
		{"one down", "/readyz", []Check{{"mongodb", ok}, {"redis", down}, {"temporal", ok}}, 503, "redis"},
		{"two down", "/readyz", []Check{{"mongodb", down}, {"redis", ok}, {"temporal", down}}, 503, "mongodb, temporal"},
		{"hung dependency times out", "/readyz", []Check{{"mongodb", ok}, {"temporal", hung}}, 503, "temporal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := do(t, newTestHandler(tt.checks...), httptest.NewRequest("GET", tt.path, nil))
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if tt.wantDown == "" {
				if body.Error != nil {
					t.Errorf("unexpected error %+v", body.Error)
				}
				return
			}
			if body.Error == nil || body.Error.Code != "dependency_unavailable" || !strings.HasPrefix(body.Error.Message, tt.wantDown+" ") {
				t.Fatalf("error = %+v, want dependency_unavailable naming %q", body.Error, tt.wantDown)
			}
			if strings.Contains(body.Error.Message, "10.0.0.7") || strings.Contains(body.Error.Message, "admin") {
				t.Errorf("message %q leaks the dependency's error", body.Error.Message)
			}
			for _, name := range strings.Split(tt.wantDown, ", ") {
				if body.Checks[name] != "unavailable" {
					t.Errorf("checks[%s] = %q", name, body.Checks[name])
				}
			}
		})
	}
}

// The worker's check turns /readyz 503 only where the deployment requires
// it; ?scope=publishing turns 503 without a polling worker either way.
func TestReadyzWorker(t *testing.T) {
	ok := func(context.Context) error { return nil }
	idle := func(context.Context) error { return errors.New("no worker polls the task queue postflow-publish") }
	down := func(context.Context) error { return errors.New("connection refused") }
	deps := []Check{{"mongodb", ok}, {"temporal", ok}}
	tests := []struct {
		name       string
		path       string
		deps       []Check
		worker     WorkerCheck
		wantStatus int
		wantCode   string
		wantWorker string
	}{
		{"polling worker", "/readyz", deps, WorkerCheck{Ping: ok}, 200, "", "ok"},
		{"polling worker, publishing scope", "/readyz?scope=publishing", deps, WorkerCheck{Ping: ok}, 200, "", "ok"},
		{"no worker, not required", "/readyz", deps, WorkerCheck{Ping: idle}, 200, "", "not_polling"},
		{"no worker, required", "/readyz", deps, WorkerCheck{Ping: idle, Required: true}, 503, "worker_not_polling", "not_polling"},
		{"no worker, publishing scope", "/readyz?scope=publishing", deps, WorkerCheck{Ping: idle}, 503, "worker_not_polling", "not_polling"},
		{"no worker and mongodb down", "/readyz?scope=publishing", []Check{{"mongodb", down}}, WorkerCheck{Ping: idle}, 503, "dependency_unavailable", "not_polling"},
		{"mongodb down, worker not required", "/readyz", []Check{{"mongodb", down}}, WorkerCheck{Ping: idle}, 503, "dependency_unavailable", "not_polling"},
		{"no worker check configured", "/readyz?scope=publishing", deps, WorkerCheck{}, 200, "", ""},
		{"unknown scope", "/readyz?scope=everything", deps, WorkerCheck{Ping: ok}, 400, "invalid_scope", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHandler(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: "https://app.example.com",
				Checks: tt.deps, Worker: tt.worker})
			res, body := do(t, h, httptest.NewRequest("GET", tt.path, nil))
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%+v)", res.StatusCode, tt.wantStatus, body.Error)
			}
			if tt.wantCode == "" && body.Error != nil || tt.wantCode != "" && (body.Error == nil || body.Error.Code != tt.wantCode) {
				t.Fatalf("error = %+v, want code %q", body.Error, tt.wantCode)
			}
			if body.Checks["worker"] != tt.wantWorker {
				t.Errorf("checks.worker = %q, want %q", body.Checks["worker"], tt.wantWorker)
			}
			if tt.wantCode == "dependency_unavailable" && !strings.HasPrefix(body.Error.Message, "mongodb") {
				t.Errorf("message %q does not name mongodb first", body.Error.Message)
			}
		})
	}
}

func TestUnknownRouteHasErrorShape(t *testing.T) {
	res, body := do(t, newTestHandler(), httptest.NewRequest("GET", "/nope", nil))
	if res.StatusCode != 404 || body.Error == nil || body.Error.Code != "not_found" {
		t.Errorf("got %d %+v", res.StatusCode, body.Error)
	}
	res, body = do(t, newTestHandler(), httptest.NewRequest("DELETE", "/healthz", nil))
	if res.StatusCode != 405 || body.Error == nil || body.Error.Code != "method_not_allowed" {
		t.Errorf("got %d %+v", res.StatusCode, body.Error)
	}
}

func TestCORS(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		origin     string
		wantAllow  string
		wantStatus int
	}{
		{"preflight from the frontend", "OPTIONS", "https://app.example.com", "https://app.example.com", 204},
		{"preflight from elsewhere", "OPTIONS", "https://evil.example.com", "", 405},
		{"simple request from the frontend", "GET", "https://app.example.com", "https://app.example.com", 200},
		{"simple request from elsewhere", "GET", "https://evil.example.com", "", 200},
		{"no origin", "GET", "", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/healthz", nil)
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.method == "OPTIONS" {
				req.Header.Set("Access-Control-Request-Method", "GET")
			}
			res, _ := do(t, newTestHandler(), req)
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != tt.wantAllow {
				t.Errorf("Allow-Origin = %q, want %q", got, tt.wantAllow)
			}
			if tt.wantStatus == 204 && !strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("Allow-Headers = %q", res.Header.Get("Access-Control-Allow-Headers"))
			}
		})
	}
}

// An origin is compared as browsers write it: no default port, scheme and
// host in lower case. FRONTEND_URL=https://app.example.com:443 kept the
// port, and every browser's Origin (which never has it) was refused.
func TestOriginOf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://app.example.com", "https://app.example.com"},
		{"https://app.example.com:443", "https://app.example.com"},
		{"https://app.example.com:443/some/path?x=1", "https://app.example.com"},
		{"http://localhost:80/", "http://localhost"},
		{"HTTPS://App.Example.COM:443", "https://app.example.com"},
		{"https://app.example.com:8443", "https://app.example.com:8443"},
		{"http://app.example.com:443", "http://app.example.com:443"},
		{"https://app.example.com:80", "https://app.example.com:80"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"https://user:pw@app.example.com", "https://app.example.com"},
		{"http://[::1]:80", "http://[::1]"},
		{"http://[::1]:3000", "http://[::1]:3000"},
		{"/relative", ""},
		{"null", ""},
		{"", ""},
	} {
		if got := originOf(tt.in); got != tt.want {
			t.Errorf("originOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// CORS and the connection's start take the browser's Origin whatever
// spelling of the same origin FRONTEND_URL and TEMPORAL_UI_ORIGIN use.
func TestOriginsAreComparedNormalized(t *testing.T) {
	for _, tt := range []struct {
		frontendURL, origin, wantAllow string
	}{
		{"https://app.example.com:443", "https://app.example.com", "https://app.example.com"},
		{"HTTPS://APP.example.com/app", "https://app.example.com", "https://app.example.com"},
		{"http://localhost:80", "http://localhost", "http://localhost"},
		{"https://app.example.com", "https://app.example.com:443", "https://app.example.com"},
		{"https://app.example.com:443", "https://app.example.com:8443", ""},
		{"https://app.example.com", "http://app.example.com", ""},
		{"https://app.example.com", "https://app.example.com/path", ""},
		{"https://app.example.com", "https://evil@app.example.com", ""},
	} {
		h := NewHandler(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: tt.frontendURL, MaxBodyBytes: 64,
			Codec: CodecOptions{Codec: passthroughCodec{}, UIOrigin: tt.frontendURL}})
		for _, path := range []string{"/healthz", codecPath + "/decode"} {
			req := httptest.NewRequest("OPTIONS", path, nil)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			res, _ := do(t, h, req)
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != tt.wantAllow {
				t.Errorf("origin %s at %s for %s: Allow-Origin %q, want %q", tt.origin, path, tt.frontendURL, got, tt.wantAllow)
			}
		}
	}
}

func TestPanicIsA500InTheErrorShape(t *testing.T) {
	s := &server{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := s.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret detail") }))
	res, body := do(t, h, httptest.NewRequest("GET", "/", nil))
	if res.StatusCode != 500 || body.Error == nil || body.Error.Code != "internal" {
		t.Fatalf("got %d %+v", res.StatusCode, body.Error)
	}
	if strings.Contains(body.Error.Message, "secret") {
		t.Errorf("message %q leaks the panic", body.Error.Message)
	}
}

func TestDecodeJSON(t *testing.T) {
	type variant struct {
		Content string `json:"content"`
	}
	type input struct {
		Content  *string            `json:"content"`
		Count    int                `json:"count"`
		Variants map[string]variant `json:"variants"`
		Items    []variant          `json:"items"`
		Raw      json.RawMessage    `json:"raw"`
		IDs      []string           `json:"ids"`
		OK       bool               `json:"ok"`
		Ratio    float32            `json:"ratio"`
	}
	tests := []struct {
		name       string
		body       string
		ctype      string
		wantStatus int
		wantCode   string
		wantInMsg  string
	}{
		{"valid", `{"content":"hi","count":2}`, "application/json", 0, "", ""},
		{"unknown field named", `{"content":"hi","colour":"red"}`, "application/json", 400, "unknown_field", `"colour"`},
		{"too large", `{"content":"` + strings.Repeat("x", 100) + `"}`, "application/json", 413, "body_too_large", "64 bytes"},
		{"syntax", `{"content":}`, "application/json", 400, "invalid_json", "byte"},
		{"truncated", `{"content":"hi"`, "application/json", 400, "invalid_json", "middle"},
		{"empty", ``, "application/json", 400, "invalid_json", "empty"},
		{"wrong type", `{"count":"two"}`, "application/json", 400, "invalid_field", `"count"`},
		{"two objects", `{"content":"a"}{"content":"b"}`, "application/json", 400, "invalid_json", "single"},
		{"not json", `content=hi`, "application/x-www-form-urlencoded", 415, "unsupported_media_type", "application/json"},
		{"charset is fine", `{"content":"hi"}`, "application/json; charset=utf-8", 0, "", ""},
		{"charset in capitals is fine", `{"content":"hi"}`, "Application/JSON; Charset=\"UTF-8\"", 0, "", ""},
		{"nested values", `{"variants":{"a":{}},"items":[{}],"raw":{"k":[1]}}`, "application/json", 0, "", ""},
		// Names match exactly: encoding/json alone takes any case.
		{"field name in capitals", `{"CONTENT":"hi"}`, "application/json", 400, "unknown_field", `"CONTENT"`},
		{"field name in another case", `{"Content":"hi"}`, "application/json", 400, "unknown_field", `"Content"`},
		{"nested field name in capitals", `{"variants":{"a":{"Content":"x"}}}`, "application/json", 400, "unknown_field", `"variants.a.Content"`},
		{"field name in capitals in a list", `{"items":[{"content":"y"},{"CONTENT":"z"}]}`, "application/json", 400, "unknown_field", `"items[1].CONTENT"`},
		// A repeated key is refused, not resolved to its last value.
		{"repeated key", `{"content":"a","content":"b"}`, "application/json", 400, "duplicate_key", `"content"`},
		{"repeated map key", `{"variants":{"a":{"content":"x"},"a":{"content":"y"}}}`, "application/json", 400, "duplicate_key", `"variants.a"`},
		{"repeated nested key", `{"items":[{"content":"x","content":"y"}]}`, "application/json", 400, "duplicate_key", `"items[0].content"`},
		{"repeated key in a raw value", `{"raw":{"k":1,"k":2}}`, "application/json", 400, "duplicate_key", `"raw.k"`},
		{"repeated key spelled with an escape", `{"content":"a","con\u0074ent":"b"}`, "application/json", 400, "duplicate_key", `"content"`},
		{"nested too deep", `{"raw":` + strings.Repeat("[", 40), "application/json", 400, "invalid_json", "deeper"},
		{"not an object", `["content"]`, "application/json", 400, "invalid_json", "object"},
		{"truncated inside a list", `{"items":[{"content":"y"}`, "application/json", 400, "invalid_json", "middle"},
		// The media type is parsed, not matched on a prefix.
		{"jsonp is not json", `{"content":"hi"}`, "application/jsonp", 415, "unsupported_media_type", "application/json"},
		{"json-seq is not json", `{"content":"hi"}`, "application/json-seq", 415, "unsupported_media_type", "application/json"},
		{"no media type", `{"content":"hi"}`, "", 415, "unsupported_media_type", "application/json"},
		{"another charset", `{"content":"hi"}`, "application/json; charset=latin1", 415, "unsupported_media_type", "application/json"},
		{"another parameter", `{"content":"hi"}`, "application/json; profile=x", 415, "unsupported_media_type", "application/json"},
		{"malformed media type", `{"content":"hi"}`, "application/json; charset", 415, "unsupported_media_type", "application/json"},
		// Text is what it claims: encoding/json alone turns both into U+FFFD.
		{"invalid UTF-8", "{\"content\":\"hi\xff\"}", "application/json", 400, "invalid_json", "not valid UTF-8 (at byte 14)"},
		{"invalid UTF-8 in a key", "{\"c\xc3\":\"hi\"}", "application/json", 400, "invalid_json", "not valid UTF-8"},
		{"UTF-8 of a surrogate", "{\"content\":\"\xed\xa0\x80\"}", "application/json", 400, "invalid_json", "not valid UTF-8"},
		{"lone high surrogate", `{"content":"\ud800"}`, "application/json", 400, "invalid_json", `lone surrogate escape (\ud800) at byte 12`},
		{"high surrogate before a letter", `{"content":"\uD800a"}`, "application/json", 400, "invalid_json", "lone surrogate"},
		{"two high surrogates", `{"content":"\ud83d\ud83d"}`, "application/json", 400, "invalid_json", "lone surrogate"},
		{"high surrogate before another escape", `{"content":"\ud83d\n"}`, "application/json", 400, "invalid_json", "lone surrogate"},
		{"lone low surrogate", `{"content":"a\udc00"}`, "application/json", 400, "invalid_json", "lone surrogate"},
		{"lone surrogate in a key", `{"variants":{"\udfff":{}}}`, "application/json", 400, "invalid_json", "lone surrogate"},
		{"surrogate pair", `{"content":"\ud83d\ude00"}`, "application/json", 0, "", ""},
		{"surrogate pair in capitals", `{"content":"\uD83D\uDE00"}`, "application/json", 0, "", ""},
		{"escaped backslash before ud800", `{"content":"\\ud800"}`, "application/json", 0, "", ""},
		{"escaped backslash then a lone surrogate", `{"content":"\\\ud800"}`, "application/json", 400, "invalid_json", "lone surrogate"},
		// The top-level value is an object, nothing else.
		{"null", `null`, "application/json", 400, "invalid_json", "object, not null"},
		{"a string", `"hi"`, "application/json", 400, "invalid_json", "object, not a string"},
		{"a number", `1`, "application/json", 400, "invalid_json", "object, not a number"},
		{"true", `true`, "application/json", 400, "invalid_json", "object, not true or false"},
		// Kinds are named in words, at their full path.
		{"number out of range for a string", `{"content":1e999}`, "application/json", 400, "invalid_field", `"content" must be a string, not a number`},
		{"number out of range for a whole number", `{"count":1e999}`, "application/json", 400, "invalid_field", `"count" holds a number out of range`},
		{"whole number too large", `{"count":99999999999999999999}`, "application/json", 400, "invalid_field", `"count" holds a number out of range`},
		{"number out of range for a float32", `{"ratio":1e39}`, "application/json", 400, "invalid_field", `"ratio" holds a number out of range`},
		{"fraction for a whole number", `{"count":1.5}`, "application/json", 400, "invalid_field", `"count" must be a whole number`},
		{"string for a whole number", `{"count":"two"}`, "application/json", 400, "invalid_field", `"count" must be a whole number, not a string`},
		{"wrong kind in a map keeps the key", `{"variants":{"abc":{"content":2}}}`, "application/json", 400, "invalid_field", `"variants.abc.content" must be a string`},
		{"map value not an object", `{"variants":{"abc":1e999}}`, "application/json", 400, "invalid_field", `"variants.abc" must be an object`},
		{"string for a list of strings", `{"ids":"x"}`, "application/json", 400, "invalid_field", `"ids" must be a list of strings, not a string`},
		{"number in a list of strings", `{"ids":["a",1]}`, "application/json", 400, "invalid_field", `"ids[1]" must be a string`},
		{"list for an object", `{"variants":[]}`, "application/json", 400, "invalid_field", `"variants" must be an object, not a list`},
		{"string for true or false", `{"ok":"yes"}`, "application/json", 400, "invalid_field", `"ok" must be true or false`},
		{"object for a list of objects", `{"items":{}}`, "application/json", 400, "invalid_field", `"items" must be a list of objects`},
		{"unknown field in a later object of one type", `{"items":[{"content":"a"},{"colour":"b"}]}`, "application/json", 400, "unknown_field", `"items[1].colour"`},
		{"null for a field", `{"content":null,"ids":null}`, "application/json", 0, "", ""},
		{"anything in a raw value", `{"raw":[1e999,"x",{}]}`, "application/json", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			req.Body = http.MaxBytesReader(httptest.NewRecorder(), req.Body, 64)
			var in input
			err := decodeJSON(req, &in)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("decodeJSON: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantInMsg) {
				t.Errorf("got %d %s %q; want %d %s ...%s...", e.Status, e.Code, e.Message, tt.wantStatus, tt.wantCode, tt.wantInMsg)
			}
		})
	}
}

// passthroughCodec is a PayloadCodec that changes nothing, for tests that
// need the codec endpoint mounted but not what it decodes.
type passthroughCodec struct{}

func (passthroughCodec) Encode(p []*commonpb.Payload) ([]*commonpb.Payload, error) { return p, nil }
func (passthroughCodec) Decode(p []*commonpb.Payload) ([]*commonpb.Payload, error) { return p, nil }
