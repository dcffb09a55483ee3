package api_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
)

// TestBlueskyOAuthConnectsThroughTheAPI: a connect whose authorize URL
// carries no state (atproto's PAR: only client_id and request_uri) still
// binds the browser, by the state the service made, and completes in the
// browser that started it, on the real PDS: by navigation and by the
// frontend's fetch-then-form start. The cookie was named from the URL's
// (missing) state, so every such connect landed on ?error=other_browser.
func TestBlueskyOAuthConnectsThroughTheAPI(t *testing.T) {
	pds := realpeers.StartPDS(t)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	w := testworld.New(t, testworld.Options{Providers: func(*testworld.World) ([]providers.Provider, error) {
		p, err := bluesky.New(bluesky.Config{ResolverURL: pds.URL, PLCURL: pds.PLCURL, AppURL: "https://bsky.app",
			Servers: netguard.Policy{AllowLocal: true}, Connect: bluesky.ConnectOAuth,
			RedirectURI: srv.URL + "/connections/callback/bluesky", OAuthSecret: secret})
		return []providers.Provider{p}, err
	}})
	mux.Handle("/", api.NewHandler(api.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend,
		MaxBodyBytes: 1 << 20, Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret), TrustHeaders: true}, Connections: w.Connections}))
	identity := http.Header{"X-User-Id": {"u"}, "X-Organization-Id": {"org-a"}}

	for _, flow := range []string{"navigation", "fetch"} {
		t.Run(flow, func(t *testing.T) {
			acct := pds.CreateAccount(t, "via"+flow+".test")
			b := newBrowser(t)
			connect := srv.URL + "/connections/connect/bluesky?instance=" + url.QueryEscape(acct.Handle)
			var res *http.Response
			if flow == "navigation" {
				res = b.get(t, connect, identity)
			} else {
				req, _ := http.NewRequest("GET", connect, nil)
				req.Header = identity.Clone()
				req.Header.Set("Accept", "application/json")
				_, body := send(t, req)
				var out struct{ URL string }
				if err := json.Unmarshal(body, &out); err != nil || out.URL == "" {
					t.Fatalf("JSON connect: %s", body)
				}
				res = b.submit(t, out.URL, frontend)
			}
			authorize := res.Header.Get("Location")
			if res.StatusCode/100 != 3 || !strings.Contains(authorize, "request_uri=") {
				t.Fatalf("connect: %d to %q", res.StatusCode, authorize)
			}
			back := pds.SignIn(t, authorize, acct)
			res = b.get(t, back.String(), nil)
			if loc := res.Header.Get("Location"); loc != frontend+"/connections?connected=1" {
				t.Fatalf("callback landed on %q", loc)
			}
		})
	}
}
