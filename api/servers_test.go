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

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/internal/lockedbuf"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/providers/bluesky/blueskyfake"
	"github.com/postflow/postflow/providers/mastodon"
)

// serversAPI is the API with the networks whose servers users name,
// Mastodon and Bluesky, under policy.
func serversAPI(t *testing.T, policy netguard.Policy, fake *blueskyfake.Server) (*httptest.Server, *lockedbuf.Buffer) {
	t.Helper()
	logs := &lockedbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	w := testworld.New(t, testworld.Options{Logger: logger, Providers: func(w *testworld.World) ([]providers.Provider, error) {
		m, err := mastodon.New(mastodon.Config{RedirectURI: "http://127.0.0.1:9/connections/callback/mastodon",
			Apps: w.Store.ServerApps(w.Cipher), Servers: policy})
		if err != nil {
			return nil, err
		}
		b, err := bluesky.New(bluesky.Config{ResolverURL: fake.URL, PLCURL: fake.PLCURL(), AppURL: "https://bsky.app", Servers: policy})
		return []providers.Provider{m, b}, err
	}})
	srv := httptest.NewServer(api.NewHandler(api.Options{Logger: logger, FrontendURL: frontend, MaxBodyBytes: 1 << 20,
		Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret), TrustHeaders: true}, Connections: w.Connections}))
	t.Cleanup(srv.Close)
	return srv, logs
}

// TestServersUsersName: what a user names as a server is checked on every
// way in (a navigation, a fetch, a password login), refused with a clear
// 400 that says nothing of PostFlow's network (what a name resolves to,
// which resolver answered: those go to the log), and bounded in length.
func TestServersUsersName(t *testing.T) {
	fake := blueskyfake.New()
	t.Cleanup(fake.Close)
	srv, logs := serversAPI(t, netguard.Policy{}, fake)
	identity := http.Header{"X-User-Id": {"u"}, "X-Organization-Id": {"org-a"}}
	long := "https://" + strings.Repeat("a", 300) + ".example"
	for _, tc := range []struct {
		name, method, path, body string
		json                     bool
		status                   int
		code, says               string
	}{
		{"loopback instance", "GET", "/connections/connect/mastodon?instance=localhost", "", false, 400, "invalid_server", "public server"},
		{"loopback instance, fetch", "GET", "/connections/connect/mastodon?instance=127.0.0.1:8080", "", true, 400, "invalid_server", "public server"},
		{"metadata address, fetch", "GET", "/connections/connect/mastodon?instance=169.254.169.254", "", true, 400, "invalid_server", "public server"},
		{"no instance", "GET", "/connections/connect/mastodon", "", false, 400, "invalid_server", "Name the server"},
		{"an instance too long", "GET", "/connections/connect/mastodon?instance=" + long, "", false, 400, "invalid_server", "at most 300"},
		{"a PDS on loopback", "POST", "/connections/bluesky", `{"identifier":"alice.test","password":"a-b-c-d","server":"http://127.0.0.1:1"}`, false, 400, "invalid_server", "public server"},
		{"an identifier too long", "POST", "/connections/bluesky", `{"identifier":"` + strings.Repeat("a", 3000) + `","password":"x"}`, false, 400, "invalid_login", "at most 2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
			for k, v := range identity {
				req.Header[k] = v
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.json {
				req.Header.Set("Accept", "application/json")
			}
			res, raw := send(t, req)
			var out map[string]any
			_ = json.Unmarshal(raw, &out)
			e, _ := out["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if res.StatusCode != tc.status || code(out) != tc.code || !strings.Contains(msg, tc.says) {
				t.Fatalf("%d %s; want %d %s saying %q", res.StatusCode, raw, tc.status, tc.code, tc.says)
			}
			for _, leak := range []string{"netguard", "127.0.0.1", "169.254", "resolve", "lookup", "providers:", "connections:"} {
				if strings.Contains(msg, leak) {
					t.Errorf("the answer says %q: %s", leak, msg)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "not a server PostFlow connects to") {
		t.Error("the refusals' detail is not in the log")
	}
}

// TestLoginRefusedSaysWhy: the network's reason for refusing a login
// reaches the user (the provider builds it without the password).
func TestLoginRefusedSaysWhy(t *testing.T) {
	fake := blueskyfake.New()
	t.Cleanup(fake.Close)
	srv, logs := serversAPI(t, netguard.Policy{AllowLocal: true}, fake)
	acct := fake.CreateAccount("alice.test", "")
	for _, tc := range []struct{ name, password, says string }{
		{"the account's own password", acct.Password, "app password"},
		{"a wrong password", "wrong-wrong-wrong-0000", "The network refused the login"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := json.Marshal(map[string]string{"identifier": "alice.test", "password": tc.password})
			req, _ := http.NewRequest("POST", srv.URL+"/connections/bluesky", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-User-Id", "u")
			req.Header.Set("X-Organization-Id", "org-a")
			res, raw := send(t, req)
			if res.StatusCode != 422 || !strings.Contains(string(raw), "login_refused") || !strings.Contains(string(raw), tc.says) {
				t.Fatalf("%d %s; want 422 login_refused saying %q", res.StatusCode, raw, tc.says)
			}
			if strings.Contains(string(raw), tc.password) || strings.Contains(logs.String(), tc.password) {
				t.Error("the password is in the answer or the log")
			}
		})
	}
}
