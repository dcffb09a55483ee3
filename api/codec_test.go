package api_test

import (
	"bytes"
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
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(res.Body)
			res.Body.Close()
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
