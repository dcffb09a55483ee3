package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/internal/payloadcodec"
	"github.com/postflow/postflow/internal/tokencipher"
)

const uiOrigin = "http://127.0.0.1:8233"

func codecServer(t *testing.T, anonymous bool) (*httptest.Server, *payloadcodec.Codec) {
	t.Helper()
	cipher, _ := tokencipher.New(bytes.Repeat([]byte{9}, 32))
	codec := payloadcodec.New(cipher)
	srv := httptest.NewServer(api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend, MaxBodyBytes: 1 << 20,
		Auth:  api.AuthOptions{JWTSecret: []byte(jwtSecret)},
		Codec: api.CodecOptions{Codec: codec, UIOrigin: uiOrigin, Anonymous: anonymous},
	}))
	t.Cleanup(srv.Close)
	return srv, codec
}

func operatorToken(t *testing.T, claims jwt.MapClaims, method jwt.SigningMethod) string {
	t.Helper()
	key := any([]byte(jwtSecret))
	if method == jwt.SigningMethodNone {
		key = jwt.UnsafeAllowNoneSignatureType
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The Web UI decodes a run's payloads through PostFlow, as an operator.
func TestCodecEndpoint(t *testing.T) {
	srv, codec := codecServer(t, false)
	plain, _ := converter.GetDefaultDataConverter().ToPayload(map[string]string{"content": "launch day"})
	sealed, err := codec.Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"operator", "Bearer " + operatorToken(t, jwt.MapClaims{"sub": "op", "operator": true, "exp": exp}, jwt.SigningMethodHS256), 200},
		{"a user, not an operator", "Bearer " + token(t, "alice", []string{"org-a"}, ""), 403},
		{"no credentials", "", 401},
		{"alg none", "Bearer " + operatorToken(t, jwt.MapClaims{"sub": "op", "operator": true, "exp": exp}, jwt.SigningMethodNone), 401},
		{"expired", "Bearer " + operatorToken(t, jwt.MapClaims{"sub": "op", "operator": true, "exp": time.Now().Add(-time.Hour).Unix()}, jwt.SigningMethodHS256), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/temporal-codec/decode", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Namespace", "default")
			req.Header.Set("Origin", uiOrigin)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res, out := send(t, req)
			if res.StatusCode != tt.status || res.Header.Get("Access-Control-Allow-Origin") != uiOrigin {
				t.Fatalf("status %d (CORS %q): %s", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), out)
			}
			if tt.status != 200 {
				if strings.Contains(string(out), "launch day") {
					t.Errorf("a refused caller saw the content: %s", out)
				}
				return
			}
			var got commonpb.Payloads
			if err := protojson.Unmarshal(out, &got); err != nil || len(got.Payloads) != 1 {
				t.Fatalf("decode answered %s (%v)", out, err)
			}
			var v map[string]string
			if err := converter.GetDefaultDataConverter().FromPayload(got.Payloads[0], &v); err != nil || v["content"] != "launch day" {
				t.Errorf("decoded %v, %v", v, err)
			}
		})
	}
}

// Browsers ask first, without credentials; only the UI's origin is told
// yes, with the headers the UI sends.
func TestCodecPreflight(t *testing.T) {
	srv, _ := codecServer(t, false)
	for _, tt := range []struct {
		origin, want string
	}{
		{uiOrigin, uiOrigin},
		{"https://evil.example", ""},
	} {
		req, _ := http.NewRequest("OPTIONS", srv.URL+"/temporal-codec/decode", nil)
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, x-namespace")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != tt.want {
			t.Errorf("origin %s: allowed %q, want %q", tt.origin, got, tt.want)
		}
		if tt.want != "" && (res.StatusCode != 204 || !strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "X-Namespace")) {
			t.Errorf("preflight = %d, headers %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Headers"))
		}
	}
}

// In postflow dev the UI has no login: the endpoint answers anyone who can
// reach 127.0.0.1, and encodes too.
func TestCodecAnonymousForDev(t *testing.T) {
	srv, _ := codecServer(t, true)
	plain, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{plain}})
	res, err := http.Post(srv.URL+"/temporal-codec/encode", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var got commonpb.Payloads
	if res.StatusCode != 200 || protojson.Unmarshal(out, &got) != nil || string(got.Payloads[0].GetMetadata()["encoding"]) != payloadcodec.Encoding {
		t.Errorf("encode = %d %s", res.StatusCode, out)
	}
}

// Every answer of the codec endpoint, refusals included, is in the spec's
// error shape, and its body is read like every other JSON body.
func TestCodecErrorsHaveTheErrorShape(t *testing.T) {
	srv, codec := codecServer(t, false)
	plain, _ := converter.GetDefaultDataConverter().ToPayload("launch day")
	sealed, err := codec.Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	tampered := &commonpb.Payload{Metadata: sealed[0].GetMetadata(), Data: append([]byte("x"), sealed[0].GetData()...)}
	bad, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{tampered}})
	operator := "Bearer " + operatorToken(t, jwt.MapClaims{"sub": "op", "operator": true, "exp": time.Now().Add(time.Hour).Unix()}, jwt.SigningMethodHS256)
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"decodes", "POST", "/decode", "application/json", string(good), 200, ""},
		{"over the body cap", "POST", "/decode", "application/json", `{"payloads":[{"data":"` + strings.Repeat("A", 1<<20) + `"}]}`, 413, "body_too_large"},
		{"not json", "POST", "/decode", "application/json", `{"payloads":`, 400, "invalid_json"},
		{"field name in capitals", "POST", "/decode", "application/json", `{"PAYLOADS":[]}`, 400, "unknown_field"},
		{"repeated key", "POST", "/decode", "application/json", `{"payloads":[],"payloads":[]}`, 400, "duplicate_key"},
		{"null body", "POST", "/decode", "application/json", `null`, 400, "invalid_json"},
		{"lone surrogate", "POST", "/decode", "application/json", `{"payloads":[{"metadata":{"\udc00":""}}]}`, 400, "invalid_json"},
		{"data not base64", "POST", "/decode", "application/json", `{"payloads":[{"data":"!!"}]}`, 400, "invalid_field"},
		{"metadata value not a string", "POST", "/decode", "application/json", `{"payloads":[{"metadata":{"encoding":1}}]}`, 400, "invalid_field"},
		{"jsonp", "POST", "/decode", "application/jsonp", string(good), 415, "unsupported_media_type"},
		{"tampered payload", "POST", "/decode", "application/json", string(bad), 400, "undecodable_payload"},
		{"unknown operation", "POST", "/rotate", "application/json", string(good), 404, "not_found"},
		{"not a POST", "PUT", "/decode", "application/json", string(good), 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/temporal-codec"+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			req.Header.Set("Authorization", operator)
			res, out := send(t, req)
			if res.StatusCode != tt.status || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("got %d (%s) %.200s, want %d %s", res.StatusCode, res.Header.Get("Content-Type"), out, tt.status, tt.code)
			}
			if tt.status == 200 {
				return
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(out, &e); err != nil || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Errorf("body %.200s, want the error shape with code %s", out, tt.code)
			}
			if strings.Contains(string(out), "launch day") {
				t.Errorf("a refusal shows the content: %s", out)
			}
		})
	}
}

// Without credentials (postflow dev), the endpoint answers only requests
// to a loopback host: a name an attacker points at 127.0.0.1 (DNS
// rebinding) is another origin to the browser only until it resolves.
func TestCodecAnonymousOnlyForLoopbackHosts(t *testing.T) {
	srv, _ := codecServer(t, true)
	plain, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{plain}})
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	for _, tt := range []struct {
		host   string
		status int
	}{
		{"127.0.0.1:" + port, 200},
		{"localhost:" + port, 200},
		{"LOCALHOST.:" + port, 200},
		{"[::1]:" + port, 200},
		{"127.1.2.3", 200},
		{"ui.localhost:" + port, 200},
		{"rebound.example:" + port, 403},
		{"127.0.0.1.example:" + port, 403},
		{"localhost.example", 403},
		{"10.0.0.1:" + port, 403},
		{"[::ffff:10.0.0.1]:" + port, 403},
	} {
		for _, method := range []string{"POST", "OPTIONS"} {
			req, _ := http.NewRequest(method, srv.URL+"/temporal-codec/decode", bytes.NewReader(body))
			req.Host = tt.host
			req.Header.Set("Content-Type", "application/json")
			if method == "OPTIONS" {
				req.Header.Set("Origin", uiOrigin)
				req.Header.Set("Access-Control-Request-Method", "POST")
			}
			res, out := send(t, req)
			want := tt.status
			if method == "OPTIONS" && want == 200 {
				want = 204
			}
			if res.StatusCode != want {
				t.Errorf("%s with Host %s = %d %s, want %d", method, tt.host, res.StatusCode, out, want)
			}
			if want == 403 && (!strings.Contains(string(out), `"host_not_allowed"`) || strings.Contains(string(out), "hello")) {
				t.Errorf("%s with Host %s answered %s", method, tt.host, out)
			}
		}
	}
}

// The SDK's remote codec client (what the temporal CLI's --codec-endpoint
// uses) reads and writes the endpoint's bodies.
func TestCodecServesTheSDKsRemoteCodec(t *testing.T) {
	srv, codec := codecServer(t, false)
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: srv.URL + "/temporal-codec",
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+operatorToken(t, jwt.MapClaims{"sub": "op", "operator": true, "exp": time.Now().Add(time.Hour).Unix()}, jwt.SigningMethodHS256))
			return nil
		},
	})
	plain, _ := converter.GetDefaultDataConverter().ToPayload("launch day")
	sealed, err := remote.Encode([]*commonpb.Payload{plain})
	if err != nil || len(sealed) != 1 || string(sealed[0].GetMetadata()["encoding"]) != payloadcodec.Encoding {
		t.Fatalf("remote encode = %v, %v", sealed, err)
	}
	opened, err := codec.Decode(sealed)
	if err != nil || string(opened[0].GetData()) != string(plain.GetData()) {
		t.Fatalf("the endpoint sealed something else: %v, %v", opened, err)
	}
	back, err := remote.Decode(sealed)
	if err != nil || len(back) != 1 || string(back[0].GetData()) != string(plain.GetData()) {
		t.Errorf("remote decode = %v, %v", back, err)
	}
}

// An API listening on loopback alone (postflow dev) answers no request
// that names another host: trusted identity headers and the sandbox take
// no credentials, and a DNS-rebinding page's requests name its own host.
func TestLoopbackListenerAnswersOnlyLoopbackHosts(t *testing.T) {
	sandbox := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	for _, loopbackOnly := range []bool{true, false} {
		srv := httptest.NewServer(api.NewHandler(api.Options{
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend, MaxBodyBytes: 1 << 20,
			Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret), TrustHeaders: true}, Sandbox: sandbox,
			LoopbackHostsOnly: loopbackOnly,
		}))
		for _, tt := range []struct {
			host string
			want int
		}{
			{"127.0.0.1", http.StatusOK},
			{"localhost:8080", http.StatusOK},
			{"evil.example", http.StatusForbidden},
			{"127.0.0.1.nip.io:8080", http.StatusForbidden},
		} {
			if !loopbackOnly {
				tt.want = http.StatusOK
			}
			for _, path := range []string{"/healthz", "/sandbox/feed"} {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
				req.Host = tt.host
				res, body := send(t, req)
				if res.StatusCode != tt.want || (tt.want == http.StatusForbidden && !strings.Contains(string(body), "host_not_allowed")) {
					t.Errorf("loopback only %v: GET %s with Host %s = %d %s, want %d", loopbackOnly, path, tt.host, res.StatusCode, body, tt.want)
				}
			}
		}
		srv.Close()
	}
}

// The API's body cap (MAX_BODY_BYTES) is not the sandbox network's: its
// image upload takes what the sandbox itself allows, other sandbox routes
// stay under the API's cap.
func TestSandboxImageUploadHasTheSandboxesCap(t *testing.T) {
	var got int
	sandbox := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		got = len(b)
		w.WriteHeader(http.StatusCreated)
	})
	srv := httptest.NewServer(api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend, MaxBodyBytes: 1 << 20,
		Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret), TrustHeaders: true}, Sandbox: sandbox,
	}))
	defer srv.Close()
	body := strings.Repeat("x", 3<<20)
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/sandbox/api/media", http.StatusCreated},
		{"/sandbox/api/posts", http.StatusRequestEntityTooLarge},
	} {
		got = 0
		res, err := http.Post(srv.URL+tt.path, "image/jpeg", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.want || (tt.want == http.StatusCreated && got != len(body)) {
			t.Errorf("POST %s of 3 MiB = %d (sandbox read %d bytes), want %d", tt.path, res.StatusCode, got, tt.want)
		}
	}
}
