package bluesky

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
)

// verifyProof checks proof as a server does (RFC 9449 §4.3): typ, alg, an
// embedded public JWK that verifies the signature; it returns the claims
// and the JWK.
func verifyProof(t *testing.T, proof string) (dpopClaims, jose.JSONWebKey) {
	t.Helper()
	jws, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("proof is no ES256 JWS: %v", err)
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders[jose.HeaderType] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("header: typ %v, jwk %+v; want dpop+jwt and a public JWK", h.ExtraHeaders[jose.HeaderType], h.JSONWebKey)
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("proof does not verify with its own JWK: %v", err)
	}
	var c dpopClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c, *h.JSONWebKey
}

func TestProofClaims(t *testing.T) {
	key, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	sum := sha256.Sum256([]byte("the-access-token"))
	tests := []struct {
		name, method, target, nonce, token string
		wantHTU, wantATH                   string
	}{
		{"PAR, no nonce yet", "POST", "https://as.example/oauth/par", "", "", "https://as.example/oauth/par", ""},
		{"token with a nonce", "POST", "https://as.example/oauth/token", "n-1", "", "https://as.example/oauth/token", ""},
		{"resource call: ath, htu without the query", "GET", "https://pds.example/xrpc/com.atproto.repo.getRecord?repo=did:plc:x#frag", "n-2", "the-access-token",
			"https://pds.example/xrpc/com.atproto.repo.getRecord", base64.RawURLEncoding.EncodeToString(sum[:])},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proof, err := key.proof(tt.method, tt.target, tt.nonce, tt.token, now)
			if err != nil {
				t.Fatal(err)
			}
			c, jwk := verifyProof(t, proof)
			if c.HTM != tt.method || c.HTU != tt.wantHTU || c.Nonce != tt.nonce || c.ATH != tt.wantATH || c.IAT != now.Unix() {
				t.Fatalf("claims = %+v", c)
			}
			if len(c.JTI) < 22 || seen[c.JTI] {
				t.Fatalf("jti %q: short or repeated", c.JTI)
			}
			seen[c.JTI] = true
			if tp, _ := jwk.Thumbprint(crypto.SHA256); base64.RawURLEncoding.EncodeToString(tp) != key.thumbprint() {
				t.Fatal("the header's JWK is not the key's")
			}
			if strings.Contains(proof, "the-access-token") {
				t.Fatal("the proof carries the access token itself")
			}
		})
	}
	if _, err := key.proof("GET", "/relative", "", "", now); err == nil {
		t.Fatal("a proof for a relative URL was made")
	}
}

func TestKeyFromVerifier(t *testing.T) {
	v1 := strings.Repeat("a", 43)
	v2 := strings.Repeat("b", 43)
	k1, err := keyFromVerifier(v1)
	if err != nil {
		t.Fatal(err)
	}
	k1again, _ := keyFromVerifier(v1)
	k2, _ := keyFromVerifier(v2)
	if !k1.priv.Equal(k1again.priv) || k1.priv.Equal(k2.priv) {
		t.Fatal("the key is not a function of the verifier alone")
	}
	if _, err := keyFromVerifier("short"); err == nil {
		t.Fatal("a short verifier made a key")
	}

	p := &Provider{cfg: Config{OAuthSecret: []byte(strings.Repeat("s", 32))}}
	other := &Provider{cfg: Config{OAuthSecret: []byte(strings.Repeat("t", 32))}}
	challenge := s256(v1)
	a, _ := p.dpopKeyFor(challenge)
	b, _ := p.dpopKeyFor(challenge)
	c, _ := other.dpopKeyFor(challenge)
	if !a.priv.Equal(b.priv) || a.priv.Equal(c.priv) {
		t.Fatal("the connect key is not a function of the challenge and the secret")
	}
}

func TestSessionToken(t *testing.T) {
	key, _ := newDPoPKey()
	jwk, err := key.privateJWK()
	if err != nil {
		t.Fatal(err)
	}
	access, _ := encodeSession(oauthSession{Token: "tok", Key: jwk, Issuer: "https://as.example"})
	cred, _ := encodeSession(oauthSession{Key: jwk, Issuer: "https://as.example"})
	tests := []struct {
		name, in  string
		ok        bool
		wantToken string
	}{
		{"access token", access, true, "tok"},
		{"credential", cred, true, ""},
		{"an app-password JWT", "eyJhbGciOiJIUzI1NiJ9.e30.sig", false, ""},
		{"an app password", "abcd-efgh-ijkl-mnop", false, ""},
		{"garbled", sessionPrefix + "!!", false, ""},
		{"no key", func() string { s, _ := encodeSession(oauthSession{Token: "t", Issuer: "x"}); return s }(), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess, k, ok := decodeSession(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if ok && (sess.Token != tt.wantToken || !k.priv.Equal(key.priv) || k.thumbprint() != key.thumbprint()) {
				t.Fatalf("decoded %+v", sess)
			}
		})
	}
}

// nonceServer answers like an atproto PDS: without the current nonce,
// 401 use_dpop_nonce (as a resource server) or 400 (as an authorization
// server); with it, 200. It records the proofs it got.
type nonceServer struct {
	*httptest.Server
	mu     sync.Mutex
	nonce  string
	proofs []string
	auths  []string
}

func newNonceServer(t *testing.T) *nonceServer {
	s := &nonceServer{nonce: "nonce-1"}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		proof := r.Header.Get("DPoP")
		s.proofs = append(s.proofs, proof)
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		c, _ := verifyProof(t, proof)
		w.Header().Set("DPoP-Nonce", s.nonce)
		w.Header().Set("Content-Type", "application/json")
		if c.Nonce != s.nonce {
			if strings.HasPrefix(r.URL.Path, "/xrpc/") {
				w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"error":"use_dpop_nonce","message":"Resource server requires nonce in DPoP proof"}`)
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
			return
		}
		_, _ = io.WriteString(w, `{"uri":"at://did:plc:x/app.bsky.feed.post/3k","request_uri":"urn:ietf:params:oauth:request_uri:req-1"}`)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *nonceServer) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.proofs)
}

func TestNonceRetry(t *testing.T) {
	key, _ := newDPoPKey()
	jwk, _ := key.privateJWK()
	access, _ := encodeSession(oauthSession{Token: "tok", Key: jwk, Issuer: "https://as.example"})
	tests := []struct {
		name string
		call func(p *Provider, base string) error
	}{
		{"authorization server (PAR)", func(p *Provider, base string) error {
			var out struct{}
			return p.oauthPost(context.Background(), base, base+"/oauth/par", key, url.Values{"a": {"b"}}, &out)
		}},
		{"resource server (createRecord)", func(p *Provider, base string) error {
			return p.xrpc(context.Background(), p.cfg.ServerClient, base, "com.atproto.repo.createRecord", access, nil, map[string]string{"x": "y"}, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newNonceServer(t)
			p, err := New(Config{ResolverURL: srv.URL, PLCURL: srv.URL, AppURL: srv.URL, Servers: netguard.Policy{AllowLocal: true}})
			if err != nil {
				t.Fatal(err)
			}
			// No nonce known: one refusal, one retry with the nonce.
			if err := tt.call(p, srv.URL); err != nil {
				t.Fatal(err)
			}
			if srv.calls() != 2 {
				t.Fatalf("%d calls, want 2 (refused, then with the nonce)", srv.calls())
			}
			// The nonce is kept for the server: the next call needs no retry.
			if err := tt.call(p, srv.URL); err != nil || srv.calls() != 3 {
				t.Fatalf("second call: %v after %d calls, want one call", err, srv.calls())
			}
			// The server moves on: one retry, with the new nonce.
			srv.mu.Lock()
			srv.nonce = "nonce-2"
			srv.mu.Unlock()
			if err := tt.call(p, srv.URL); err != nil || srv.calls() != 5 {
				t.Fatalf("after a new nonce: %v after %d calls, want 5", err, srv.calls())
			}
			for i, proof := range srv.proofs {
				c, _ := verifyProof(t, proof)
				if strings.Contains(tt.name, "resource") {
					sum := sha256.Sum256([]byte("tok"))
					if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) || srv.auths[i] != "DPoP tok" {
						t.Fatalf("call %d: ath %q, Authorization %q", i, c.ATH, srv.auths[i])
					}
				} else if c.ATH != "" || srv.auths[i] != "" {
					t.Fatalf("call %d to the authorization server carries a token", i)
				}
			}
		})
	}
}

func TestNonceRetryOnce(t *testing.T) {
	// A server that never takes the nonce is answered after one retry.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("DPoP-Nonce", "always-new-"+time.Now().String())
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"use_dpop_nonce"}`)
	}))
	defer srv.Close()
	p, _ := New(Config{ResolverURL: srv.URL, PLCURL: srv.URL, AppURL: srv.URL, Servers: netguard.Policy{AllowLocal: true}})
	key, _ := newDPoPKey()
	err := p.oauthPost(context.Background(), srv.URL, srv.URL+"/oauth/token", key, url.Values{}, nil)
	if pe := (*providers.Error)(nil); !errors.As(err, &pe) || pe.Code != "use_dpop_nonce" || pe.Kind != providers.KindAuth {
		t.Fatalf("err = %v, want the use_dpop_nonce refusal after one retry", err)
	}
}

func TestDPoPTokenRefused(t *testing.T) {
	// The PDS's answer to a revoked, replaced or expired DPoP token.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token", error_description="Invalid token"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_token","message":"Invalid token"}`)
	}))
	defer srv.Close()
	p, _ := New(Config{ResolverURL: srv.URL, PLCURL: srv.URL, AppURL: srv.URL, Servers: netguard.Policy{AllowLocal: true}})
	key, _ := newDPoPKey()
	jwk, _ := key.privateJWK()
	access, _ := encodeSession(oauthSession{Token: "secret-token", Key: jwk, Issuer: srv.URL})
	err := p.xrpc(context.Background(), p.cfg.ServerClient, srv.URL, "com.atproto.repo.createRecord", access, nil, struct{}{}, nil)
	if k := providers.KindOf(err); k != providers.KindSessionExpired {
		t.Fatalf("err = %v (kind %v), want KindSessionExpired: refresh, then see", err, k)
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Fatal("the error quotes the token")
	}
}

func TestClientAssertion(t *testing.T) {
	secret := []byte(strings.Repeat("c", 32))
	now := time.Unix(1_800_000_000, 0)
	p, err := New(Config{
		ResolverURL: "https://bsky.social", PLCURL: "https://plc.directory", AppURL: "https://bsky.app",
		Connect: ConnectOAuth, RedirectURI: "https://api.example/cb", OAuthClientID: "https://api.example/client-metadata.json",
		OAuthSecret: []byte(strings.Repeat("s", 32)), OAuthClientKey: secret, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := ClientJWKS(secret)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jwks)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
		t.Fatalf("JWKS %s: %v", b, err)
	}
	seen := map[string]bool{}
	for range 2 {
		a, err := p.clientAssertion("https://as.example")
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSigned(a, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if kid := jws.Signatures[0].Header.KeyID; kid != set.Keys[0].KeyID || kid == "" {
			t.Fatalf("kid %q, the JWKS's %q", kid, set.Keys[0].KeyID)
		}
		payload, err := jws.Verify(set.Keys[0])
		if err != nil {
			t.Fatalf("the assertion does not verify with the published key: %v", err)
		}
		var c map[string]any
		_ = json.Unmarshal(payload, &c)
		if c["iss"] != p.clientID() || c["sub"] != p.clientID() || c["aud"] != "https://as.example" ||
			c["iat"] != float64(now.Unix()) || c["exp"] != float64(now.Unix()+60) {
			t.Fatalf("claims %v", c)
		}
		jti, _ := c["jti"].(string)
		if jti == "" || seen[jti] {
			t.Fatalf("jti %q missing or repeated", jti)
		}
		seen[jti] = true
	}

	// Every call to the authorization server carries one, fresh each
	// attempt (a nonce retry is a new request).
	var assertions []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		assertions = append(assertions, r.PostForm.Get("client_assertion"))
		if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			t.Errorf("client_assertion_type %q", r.PostForm.Get("client_assertion_type"))
		}
		w.Header().Set("DPoP-Nonce", "n")
		if len(assertions) == 1 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"use_dpop_nonce"}`)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	p.cfg.ServerClient = srv.Client()
	key, _ := newDPoPKey()
	if err := p.oauthPost(context.Background(), srv.URL, srv.URL+"/oauth/token", key, url.Values{"grant_type": {"refresh_token"}}, nil); err != nil {
		t.Fatal(err)
	}
	if len(assertions) != 2 || assertions[0] == "" || assertions[0] == assertions[1] {
		t.Fatalf("assertions %d, fresh each time: %v", len(assertions), len(assertions) == 2 && assertions[0] != assertions[1])
	}
}

// TestNonceRetryResendsTheImage: an upload the PDS refuses for its DPoP
// nonce is sent again whole, its bytes opened a second time.
func TestNonceRetryResendsTheImage(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c, _ := verifyProof(t, r.Header.Get("DPoP"))
		mu.Lock()
		bodies = append(bodies, r.Header.Get("Content-Type")+" "+strconv.FormatInt(r.ContentLength, 10)+" "+string(b))
		mu.Unlock()
		w.Header().Set("DPoP-Nonce", "n-1")
		if c.Nonce != "n-1" {
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"blob":{"$type":"blob","ref":{"$link":"bafkreitest"},"mimeType":"image/png","size":9}}`)
	}))
	t.Cleanup(srv.Close)
	p, err := New(Config{ResolverURL: srv.URL, PLCURL: srv.URL, AppURL: srv.URL, Servers: netguard.Policy{AllowLocal: true}})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := newDPoPKey()
	jwk, _ := key.privateJWK()
	access, _ := encodeSession(oauthSession{Token: "tok", Key: jwk, Issuer: "https://as.example"})
	opens := 0
	img := providers.Image{MediaID: "m", Type: "image/png", Size: 9, Open: func(context.Context) (io.ReadCloser, error) {
		opens++
		return io.NopCloser(strings.NewReader("png bytes")), nil
	}}
	u, err := p.Upload(context.Background(), providers.Account{Server: srv.URL, AccessToken: access}, img)
	if err != nil || u.ID != "bafkreitest" {
		t.Fatalf("Upload: %+v, %v", u, err)
	}
	if opens != 2 || len(bodies) != 2 || bodies[0] != "image/png 9 png bytes" || bodies[1] != bodies[0] {
		t.Errorf("opened %d times; the PDS received %q", opens, bodies)
	}
}
