package bluesky

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/postflow/postflow/providers"
)

func TestVerifiedHandle(t *testing.T) {
	const did = "did:plc:alice"
	tests := []struct {
		name     string
		aliases  []string
		resolves string // the DID the resolver answers; "" answers 400
		want     string
	}{
		{"resolves back", []string{"at://alice.test"}, did, "alice.test"},
		{"resolves to someone else", []string{"at://bob.test"}, "did:plc:bob", ""},
		{"does not resolve", []string{"at://alice.test"}, "", ""},
		{"no alias", nil, did, ""},
		{"first at:// alias", []string{"https://alice.example", "at://alice.test"}, did, "alice.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if tt.resolves == "" {
					w.WriteHeader(http.StatusBadRequest)
					_, _ = io.WriteString(w, `{"error":"InvalidRequest","message":"Unable to resolve handle"}`)
					return
				}
				_, _ = io.WriteString(w, `{"did":"`+tt.resolves+`"}`)
			}))
			defer srv.Close()
			p, err := New(Config{ResolverURL: srv.URL, PLCURL: srv.URL, AppURL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			doc := &didDocument{ID: did, AlsoKnownAs: tt.aliases}
			if got := p.verifiedHandle(context.Background(), did, doc); got != tt.want {
				t.Fatalf("verifiedHandle = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckTokens(t *testing.T) {
	good := tokenAnswer{AccessToken: "a", RefreshToken: "r", TokenType: "DPoP", Sub: "did:plc:x", Scope: "atproto transition:generic"}
	tests := []struct {
		name   string
		change func(*tokenAnswer)
		code   string // "": taken
	}{
		{"good", func(*tokenAnswer) {}, ""},
		{"token type in any case", func(a *tokenAnswer) { a.TokenType = "dpop" }, ""},
		{"a bearer token", func(a *tokenAnswer) { a.TokenType = "Bearer" }, "NOT_DPOP"},
		{"no refresh token", func(a *tokenAnswer) { a.RefreshToken = "" }, "BAD_RESPONSE"},
		{"no DID", func(a *tokenAnswer) { a.Sub = "alice.test" }, "NO_SUB"},
		{"no atproto scope", func(a *tokenAnswer) { a.Scope = "transition:generic atprotox" }, "NO_ATPROTO_SCOPE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := good
			tt.change(&a)
			err := checkTokens(&a)
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Fatalf("checkTokens: %v, want %s", err, tt.code)
			}
		})
	}
}
