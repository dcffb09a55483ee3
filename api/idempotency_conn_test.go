package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/internal/idempotency"
	"github.com/postflow/postflow/internal/lockedbuf"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/providers/bluesky/blueskyfake"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
)

// connIdemAPI is the connection routes with Idempotency-Keys kept: a
// Bluesky (fake) for password logins and LinkedIn with pages.
type connIdemAPI struct {
	*testAPI
	world   *testworld.World
	bluesky *blueskyfake.Server
}

func newConnIdemAPI(t *testing.T) *connIdemAPI {
	t.Helper()
	logs := &lockedbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	a := &connIdemAPI{testAPI: &testAPI{logs: logs, browser: newBrowser(t)}, bluesky: blueskyfake.New()}
	t.Cleanup(a.bluesky.Close)
	mux := http.NewServeMux()
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.world = testworld.New(t, testworld.Options{Logger: logger, LinkedInPages: true,
		LinkedIn: func(s *linkedinfake.Server) { s.RedirectURI = a.srv.URL + "/connections/callback/linkedin" },
		Providers: func(w *testworld.World) ([]providers.Provider, error) {
			b, err := bluesky.New(bluesky.Config{ResolverURL: a.bluesky.URL, PLCURL: a.bluesky.PLCURL(), AppURL: "https://bsky.app",
				Servers: netguard.Policy{AllowLocal: true}})
			return []providers.Provider{b}, err
		}})
	a.fake = a.world.LinkedInFake
	cipher, err := tokencipher.New(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", api.NewHandler(api.Options{Logger: logger, FrontendURL: frontend, MaxBodyBytes: 1 << 20,
		Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret)}, Connections: a.world.Connections,
		Idempotency: idempotency.New(a.world.Redis, cipher)}))
	return a
}

// post sends body to path as auth with the Idempotency-Key key.
func (a *connIdemAPI) post(t *testing.T, path, body, key string, auth http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range auth {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	return send(t, req)
}

// A login retried with its Idempotency-Key logs in once and answers the
// first answer; another login under the key is 422. Redis holds neither
// the app password nor any plain SHA-256 of the body that carried it.
func TestIdempotentLogin(t *testing.T) {
	a := newConnIdemAPI(t)
	acct := a.bluesky.CreateAccount("alice.test", "Alice")
	password := a.bluesky.AppPassword(acct.DID)
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	body := `{"identifier":"alice.test","password":"` + password + `"}`
	key := newKey(t)

	var first []byte
	for i := range 2 {
		res, raw := a.post(t, "/connections/bluesky", body, key, alice)
		if res.StatusCode != http.StatusCreated || (i == 1) != (res.Header.Get(api.ReplayedHeader) == "true") {
			t.Fatalf("login %d: %d %s (replayed %q)", i, res.StatusCode, raw, res.Header.Get(api.ReplayedHeader))
		}
		if strings.Contains(string(raw), password) {
			t.Fatalf("the answer shows the app password: %s", raw)
		}
		if i == 0 {
			first = raw
		} else if !bytes.Equal(raw, first) {
			t.Errorf("the retry answered %s; want the first answer %s", raw, first)
		}
	}
	if n := a.bluesky.Count("com.atproto.server.createSession"); n != 1 {
		t.Errorf("the network saw %d logins; want 1", n)
	}
	if list, err := a.world.Connections.List(context.Background(), "org-a"); err != nil || len(list) != 1 {
		t.Errorf("connections after a retried login: %d, %v; want 1", len(list), err)
	}

	// The same key with another body (another password), or on the pages
	// route, is another request.
	other := `{"identifier":"alice.test","password":"` + a.bluesky.AppPassword(acct.DID) + `"}`
	for _, tc := range []struct{ name, path, body string }{
		{"another password", "/connections/bluesky", other},
		{"another route", "/connections/bluesky/pages", body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, raw := a.post(t, tc.path, tc.body, key, alice)
			if res.StatusCode != http.StatusUnprocessableEntity || errorCode(raw) != "idempotency_key_reused" {
				t.Errorf("%d %s; want 422 idempotency_key_reused", res.StatusCode, raw)
			}
		})
	}
	if n := a.bluesky.Count("com.atproto.server.createSession"); n != 1 {
		t.Errorf("the network saw %d logins after the refused ones; want 1", n)
	}

	// A refused login keeps nothing: the corrected one runs under the
	// same key.
	retryKey := newKey(t)
	if res, raw := a.post(t, "/connections/bluesky", `{"identifier":"alice.test","password":"wrong-wrong-wrong-0000"}`, retryKey, alice); res.StatusCode != 422 || errorCode(raw) != "login_refused" {
		t.Fatalf("a wrong password: %d %s", res.StatusCode, raw)
	}
	if res, raw := a.post(t, "/connections/bluesky", body, retryKey, alice); res.StatusCode != 201 || res.Header.Get(api.ReplayedHeader) != "" {
		t.Fatalf("the corrected login under the same key: %d %s (replayed %q)", res.StatusCode, raw, res.Header.Get(api.ReplayedHeader))
	}

	// Nothing a password can be guessed against is left in Redis: not
	// the password, nor the SHA-256 of the body, in hex or base64.
	sum := sha256.Sum256([]byte(body))
	pwSum := sha256.Sum256([]byte(password))
	leaks := []string{password, hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(sum[:]),
		hex.EncodeToString(pwSum[:])}
	ctx := context.Background()
	keys, err := a.world.Redis.Keys(ctx, "idem:org-a:*").Result()
	if err != nil || len(keys) < 2 {
		t.Fatalf("the keys' records: %v, %v", keys, err)
	}
	for _, k := range keys {
		stored, err := a.world.Redis.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for field, v := range stored {
			for _, leak := range leaks {
				if strings.Contains(v, leak) {
					t.Errorf("Redis holds the app password or a plain digest of it in %s of %s: %q", field, k, v)
				}
			}
		}
	}
}

// Pages added with an Idempotency-Key are added once: a retry asks the
// network nothing and answers the first answer.
func TestIdempotentAddPages(t *testing.T) {
	a := newConnIdemAPI(t)
	a.fake.Configure(func(f *linkedinfake.Server) {
		f.ACLs = []linkedinfake.ACL{{Sub: f.Sub, OrganizationID: "1001", Role: "ADMINISTRATOR"}}
		f.Organizations["1001"] = linkedinfake.Organization{LocalizedName: "Acme", VanityName: "acme"}
	})
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	member := a.connectMember(t, alice)
	path := "/connections/" + member + "/pages"
	body := `{"pages":["urn:li:organization:1001"]}`
	key := newKey(t)
	calls := func() int {
		n := 0
		for _, r := range a.fake.Requests() {
			if strings.Contains(r.URL.Path, "organizationAcls") {
				n++
			}
		}
		return n
	}
	before := calls()
	var first []byte
	var pageUpdated string
	for i := range 2 {
		res, raw := a.post(t, path, body, key, alice)
		if res.StatusCode != http.StatusCreated || (i == 1) != (res.Header.Get(api.ReplayedHeader) == "true") {
			t.Fatalf("add %d: %d %s (replayed %q)", i, res.StatusCode, raw, res.Header.Get(api.ReplayedHeader))
		}
		if i == 0 {
			first = raw
		} else if !bytes.Equal(raw, first) {
			t.Errorf("the retry answered %s; want the first answer %s", raw, first)
		}
		// Adding a page again updates it: its UpdatedAt tells a second
		// write, which the count of accounts would not.
		list, err := a.world.Connections.List(context.Background(), "org-a")
		if err != nil || len(list) != 2 {
			t.Fatalf("connections: %d, %v; want the member and its page", len(list), err)
		}
		for _, c := range list {
			if c.TokensFrom != member {
				continue
			}
			if u := c.UpdatedAt.String(); i == 0 {
				pageUpdated = u
			} else if u != pageUpdated {
				t.Errorf("the retry wrote the page again: updated %s, then %s", pageUpdated, u)
			}
		}
	}
	if n := calls() - before; n != 1 {
		t.Errorf("the network was asked for the member's roles %d times; want 1", n)
	}
	if res, raw := a.post(t, path, `{"pages":["urn:li:organization:1002"]}`, key, alice); res.StatusCode != 422 || errorCode(raw) != "idempotency_key_reused" {
		t.Errorf("another page under the key: %d %s; want 422 idempotency_key_reused", res.StatusCode, raw)
	}
}

// The start of a connection takes no Idempotency-Key: a browser's form
// POST cannot send one, and its ticket is single-use, so a repeat does
// nothing again by itself. A key sent anyway is ignored, not kept.
func TestConnectStartTakesNoIdempotencyKey(t *testing.T) {
	a := newConnIdemAPI(t)
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	_, body, _ := a.connectJSON(t, alice)
	var out struct{ URL string }
	if err := json.Unmarshal(body, &out); err != nil || out.URL == "" {
		t.Fatalf("connect: %s", body)
	}
	key := newKey(t)
	var locations []string
	for range 2 {
		req, err := http.NewRequest(http.MethodPost, out.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", frontend)
		req.Header.Set("Idempotency-Key", key)
		res, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.Header.Get(api.ReplayedHeader) != "" {
			t.Error("a start was replayed")
		}
		locations = append(locations, res.Header.Get("Location"))
	}
	if !strings.HasPrefix(locations[0], a.fake.AuthURL()) || locations[1] != frontend+"/connections?error=invalid_state" {
		t.Errorf("starts went to %q; want the provider, then the frontend with invalid_state (the ticket is spent)", locations)
	}
	if n, err := a.world.Redis.Exists(context.Background(), idempotency.RedisKey("", key)).Result(); err != nil || n != 0 {
		t.Errorf("a record for the start's key: %d, %v", n, err)
	}
}
