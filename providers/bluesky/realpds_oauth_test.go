package bluesky_test

// atproto OAuth against the real PDS (@atproto/pds 0.5.35, whose
// authorization server is @atproto/oauth-provider): the whole flow, the
// browser's part driven through the authorization page's own API. What
// the PDS answered (checked here):
//   - discovery: /.well-known/oauth-protected-resource names the PDS
//     itself (http://localhost:PORT, its PublicURL) as the authorization
//     server; PAR is required, DPoP ES256 and PKCE S256 offered.
//   - the loopback client (client_id http://localhost?redirect_uri=...&
//     scope=...) is taken without any document; its redirect URI must be
//     http://127.0.0.1 (any port).
//   - PAR, token and refresh answer 400 use_dpop_nonce with a DPoP-Nonce
//     to a proof without the nonce; the PDS, as a resource server, answers
//     401 WWW-Authenticate: DPoP error="use_dpop_nonce".
//   - the authorization page and consent can be driven without a browser
//     through the page's own API: realpeers.PDS.SignIn says how.
//   - a revoked or replaced DPoP token: 401 WWW-Authenticate: DPoP
//     error="invalid_token"; a spent or revoked refresh token: 400
//     invalid_grant.
//   - a confidential client: the client id must be an https URL without
//     a loopback or IP host, on a name whose TLD is not local (.test,
//     .local, ...) and not example.com/.org/.net; the PDS fetches it (and
//     the jwks_uri) through its SSRF-guarded fetch, so the test serves
//     them from a self-signed https server the PDS is told to trust, at a
//     name only the PDS's process resolves, with SSRF protection off. A
//     web client's redirect URI must be https. A client assertion by a key
//     the JWKS lacks is refused at PAR, and a session made with one client
//     key cannot be refreshed with another.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
)

// loopbackRedirect is the callback of the tests' loopback client: the
// flow never follows it, it only reads its query.
const loopbackRedirect = "http://127.0.0.1:9/callback/bluesky"

func oauthProvider(t *testing.T, pds *realpeers.PDS) *bluesky.Provider {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	p, err := bluesky.New(bluesky.Config{
		ResolverURL: pds.URL, PLCURL: pds.PLCURL, AppURL: "https://bsky.app",
		Servers: netguard.Policy{AllowLocal: true},
		Connect: bluesky.ConnectOAuth, RedirectURI: loopbackRedirect, OAuthSecret: secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// connectOAuth runs a connect to server as acct through p's OAuth, as
// connections does, and returns the connection.
func connectOAuth(t *testing.T, pds *realpeers.PDS, p *bluesky.Provider, server string, acct realpeers.PDSAccount) *providers.Connection {
	t.Helper()
	return connectOAuthTo(t, pds, p, server, acct, loopbackRedirect)
}

// connectOAuthTo is connectOAuth for a client whose redirect URI is
// redirect.
func connectOAuthTo(t *testing.T, pds *realpeers.PDS, p *bluesky.Provider, server string, acct realpeers.PDSAccount, redirect string) *providers.Connection {
	t.Helper()
	ctx := context.Background()
	o := p.Connect().OAuth
	if o == nil || !o.PKCE() || o.Server() != providers.ServerOptional {
		t.Fatalf("Connect() with oauth = %+v, want an OAuth with PKCE and an optional server", p.Connect())
	}
	verifier := oauth2.GenerateVerifier()
	state := fmt.Sprintf("state-%d", time.Now().UnixNano())
	authURL, err := o.AuthURL(ctx, server, state, oauth2.S256ChallengeFromVerifier(verifier))
	if err != nil {
		t.Fatalf("AuthURL(%q): %v", server, err)
	}
	au, _ := url.Parse(authURL)
	if au.Path != "/oauth/authorize" || !strings.HasPrefix(au.Query().Get("request_uri"), "urn:ietf:params:oauth:request_uri:") || au.Query().Has("code_challenge") {
		t.Fatalf("AuthURL = %s, want the authorize endpoint with a request_uri alone", authURL)
	}
	to := pds.SignIn(t, authURL, acct)
	if !strings.HasPrefix(to.String(), redirect+"?") {
		t.Fatalf("the PDS sent the browser to %s, not the redirect URI", to.Redacted())
	}
	q := to.Query()
	if q.Get("state") != state || q.Get("iss") != pds.PublicURL || q.Get("code") == "" {
		t.Fatalf("callback: state %q iss %q code set %v; want %q, %q, a code", q.Get("state"), q.Get("iss"), q.Get("code") != "", state, pds.PublicURL)
	}
	// A callback that names another issuer, or none, is refused before
	// the code goes anywhere: it still works afterwards.
	for iss, code := range map[string]string{"https://other-as.example": "WRONG_ISSUER", "": "MISSING_ISS"} {
		_, err := o.Exchange(ctx, server, q.Get("code"), iss, verifier)
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Code != code {
			t.Fatalf("Exchange with iss %q: %v, want KindAuth %s", iss, err, code)
		}
	}
	conn, err := o.Exchange(ctx, server, q.Get("code"), q.Get("iss"), verifier)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return conn
}

func TestOAuthRealPDS(t *testing.T) {
	pds := realpeers.StartPDS(t)
	p := oauthProvider(t, pds)
	ctx := context.Background()

	t.Run("a name that is no account or atproto OAuth server", func(t *testing.T) {
		for _, server := range []string{"nobody-here.test", pds.PLCURL} {
			challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
			_, err := p.Connect().OAuth.AuthURL(ctx, server, "state-1", challenge)
			if !errors.Is(err, providers.ErrBadServer) {
				t.Errorf("AuthURL(%q): %v, want ErrBadServer (the user named the wrong thing)", server, err)
			}
		}
	})

	tests := []struct {
		name   string
		server func(a realpeers.PDSAccount) string
	}{
		{"a handle", func(a realpeers.PDSAccount) string { return a.Handle }},
		{"a DID", func(a realpeers.PDSAccount) string { return a.DID }},
		{"the PDS", func(realpeers.PDSAccount) string { return pds.URL }},
		{"no server: the entryway", func(realpeers.PDSAccount) string { return "" }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := pds.CreateAccount(t, fmt.Sprintf("oauth%d.test", i))
			conn := connectOAuth(t, pds, p, tt.server(acct), acct)
			prof := conn.Profile
			if prof.PlatformUserID != acct.DID || prof.Handle != acct.Handle || prof.Server != pds.PublicURL {
				t.Fatalf("profile = %+v, want %s %s at %s", prof, acct.DID, acct.Handle, pds.PublicURL)
			}
			tok := conn.Tokens
			if tok.RefreshToken == "" || tok.Credential == "" || tok.ExpiresAt.Before(time.Now()) {
				t.Fatalf("tokens: refresh set %v, credential set %v, expires %s", tok.RefreshToken != "", tok.Credential != "", tok.ExpiresAt)
			}
			if strings.Contains(tok.Credential, tok.RefreshToken) {
				t.Fatal("the credential holds the refresh token")
			}

			a := providers.Account{PlatformUserID: prof.PlatformUserID, Handle: prof.Handle, Server: prof.Server, AccessToken: tok.AccessToken}
			text := "posted through atproto OAuth " + tt.name
			pub, err := p.Publish(ctx, a, providers.Payload{Text: text, IdempotencyKey: "oauth-" + acct.DID, Created: time.Now()})
			if err != nil {
				t.Fatalf("Publish with a DPoP-bound token: %v", err)
			}
			if !strings.HasPrefix(pub.PlatformPostID, "at://"+acct.DID+"/") || holds(t, pds, acct.DID, text) != 1 {
				t.Fatalf("published %+v; the repo holds %d", pub, holds(t, pds, acct.DID, text))
			}

			// Refresh gets what connections keeps for it: the refresh token
			// and the credential.
			fresh, err := p.Refresh(ctx, a, providers.Tokens{RefreshToken: tok.RefreshToken, Credential: tok.Credential})
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
				t.Fatal("Refresh made no new tokens")
			}
			a.AccessToken = fresh.AccessToken
			text2 := text + ", refreshed"
			if _, err := p.Publish(ctx, a, providers.Payload{Text: text2, IdempotencyKey: "oauth2-" + acct.DID, Created: time.Now()}); err != nil {
				t.Fatalf("Publish after Refresh: %v", err)
			}
			if holds(t, pds, acct.DID, text2) != 1 {
				t.Fatal("the post after the refresh is not there")
			}
			// The old refresh token is spent.
			_, err = p.Refresh(ctx, a, providers.Tokens{RefreshToken: tok.RefreshToken, Credential: tok.Credential})
			if k := providers.KindOf(err); k != providers.KindAuth {
				t.Fatalf("Refresh with a spent refresh token: %v (kind %v), want KindAuth", err, k)
			}

			if err := p.Revoke(ctx, a, *fresh); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			// The PDS answers a revoked (or replaced) DPoP token 401
			// invalid_token: a session to refresh, whose refresh then fails.
			for _, access := range []string{fresh.AccessToken, tok.AccessToken} {
				a.AccessToken = access
				_, err = p.Publish(ctx, a, providers.Payload{Text: text + ", revoked", IdempotencyKey: "oauth3-" + acct.DID, Created: time.Now()})
				if k := providers.KindOf(err); k != providers.KindSessionExpired {
					t.Fatalf("Publish with a revoked token: %v (kind %v), want KindSessionExpired", err, k)
				}
			}
			_, err = p.Refresh(ctx, a, providers.Tokens{RefreshToken: fresh.RefreshToken, Credential: fresh.Credential})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != providers.KindAuth {
				t.Fatalf("Refresh after Revoke: %v, want KindAuth", err)
			}
		})
	}
}

// clientHost is the name the confidential client's metadata is served at,
// resolved to 127.0.0.1 inside the PDS's process alone (hostsHook): a
// client id must be an https URL on a name whose TLD is not a local one
// (.test, .local, .localhost, .invalid, .example), and the PDS's fetch
// refuses example.com, .org and .net.
const clientHost = "client.postflow-tests.dev"

// hostsHook makes the PDS's Node resolve clientHost to 127.0.0.1, where
// the test serves the client metadata.
const hostsHook = `import dns from 'node:dns'
const lookup = dns.lookup
dns.lookup = function (host, opts, cb) {
  if (typeof opts === 'function') { cb = opts; opts = {} }
  if (typeof opts === 'number') opts = { family: opts }
  if (host === '` + clientHost + `') {
    if (opts && opts.all) return process.nextTick(cb, null, [{ address: '127.0.0.1', family: 4 }])
    return process.nextTick(cb, null, '127.0.0.1', 4)
  }
  return lookup.call(this, host, opts, cb)
}
`

// confidentialClient serves PostFlow's client metadata and JWKS for the
// client key from secret over https at clientHost:PORT, and returns the
// PDS options that let the PDS fetch them (trust the server's self-signed
// certificate, resolve clientHost, allow a loopback address), the client
// id and the redirect URI.
func confidentialClient(t *testing.T, secret []byte) (opts []realpeers.PDSOption, clientID, redirect string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: clientHost}, DNSNames: []string{clientHost},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	base := fmt.Sprintf("https://%s:%d", clientHost, port)
	clientID, redirect = base+"/client-metadata.json", base+"/callback/bluesky"
	md := bluesky.ClientMetadata(clientID, redirect, bluesky.DefaultOAuthScope, base+"/jwks.json")
	jwks, err := bluesky.ClientJWKS(secret)
	if err != nil {
		t.Fatal(err)
	}
	for path, doc := range map[string]any{"/client-metadata.json": md, "/jwks.json": jwks} {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc)
		})
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	hook := filepath.Join(dir, "hosts.mjs")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hook, []byte(hostsHook), 0o600); err != nil {
		t.Fatal(err)
	}
	return []realpeers.PDSOption{realpeers.PDSEnv(
		"NODE_EXTRA_CA_CERTS="+ca, "NODE_OPTIONS=--import="+hook, "PDS_DISABLE_SSRF_PROTECTION=true",
	)}, clientID, redirect
}

func TestOAuthConfidentialRealPDS(t *testing.T) {
	clientSecret := make([]byte, 32)
	_, _ = rand.Read(clientSecret)
	opts, clientID, redirect := confidentialClient(t, clientSecret)
	pds := realpeers.StartPDS(t, opts...)
	ctx := context.Background()
	dpopSecret := make([]byte, 32)
	_, _ = rand.Read(dpopSecret)
	provider := func(t *testing.T, key []byte) *bluesky.Provider {
		p, err := bluesky.New(bluesky.Config{
			ResolverURL: pds.URL, PLCURL: pds.PLCURL, AppURL: "https://bsky.app",
			Servers: netguard.Policy{AllowLocal: true}, Connect: bluesky.ConnectOAuth,
			RedirectURI: redirect, OAuthClientID: clientID, OAuthSecret: dpopSecret, OAuthClientKey: key,
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("connect, publish, refresh", func(t *testing.T) {
		p := provider(t, clientSecret)
		acct := pds.CreateAccount(t, "confidential.test")
		conn := connectOAuthTo(t, pds, p, acct.Handle, acct, redirect)
		a := providers.Account{PlatformUserID: conn.Profile.PlatformUserID, Server: conn.Profile.Server, AccessToken: conn.Tokens.AccessToken}
		if _, err := p.Publish(ctx, a, providers.Payload{Text: "from a confidential client", IdempotencyKey: "conf-1", Created: time.Now()}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		fresh, err := p.Refresh(ctx, a, providers.Tokens{RefreshToken: conn.Tokens.RefreshToken, Credential: conn.Tokens.Credential})
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		// Another client key cannot refresh the session: it is the
		// client's, not only the DPoP key's.
		other := make([]byte, 32)
		_, _ = rand.Read(other)
		_, err = provider(t, other).Refresh(ctx, a, providers.Tokens{RefreshToken: fresh.RefreshToken, Credential: fresh.Credential})
		if k := providers.KindOf(err); k != providers.KindAuth {
			t.Fatalf("Refresh with another client key: %v (kind %v), want KindAuth", err, k)
		}
	})

	t.Run("a client key the JWKS does not hold is refused at PAR", func(t *testing.T) {
		other := make([]byte, 32)
		_, _ = rand.Read(other)
		p := provider(t, other)
		_, err := p.Connect().OAuth.AuthURL(ctx, "", "state-x", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))
		if k := providers.KindOf(err); k != providers.KindAuth {
			t.Fatalf("AuthURL: %v (kind %v), want KindAuth", err, k)
		}
	})
}
