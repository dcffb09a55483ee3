package realpeers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// GoToSocial is a GoToSocial v0.18.3 server, a Mastodon-API server, on
// 127.0.0.1 with a SQLite database of its own. Facts checked on it by
// TestGoToSocial, for the Mastodon provider:
//
//   - Errors are JSON {"error":"…"}. A missing, malformed or unknown
//     (revoked) bearer token answers 401 {"error":"Unauthorized: token not
//     supplied"}. There is no /oauth/revoke (404).
//   - GET /api/v2/instance: configuration.statuses.max_characters 5000 and
//     characters_reserved_per_url 25 (Mastodon: 23): read them, do not
//     assume Mastodon's.
//   - With a rate limit on (GTSRateLimit), answers carry X-RateLimit-Limit,
//     X-RateLimit-Remaining and X-RateLimit-Reset as ISO 8601 UTC with
//     milliseconds ("2026-11-30T00:03:27.000Z"), as Mastodon does; past the
//     limit 429 {"error":"rate limit reached"} with no Retry-After.
//   - GET /api/v1/accounts/:id/statuses and /api/v1/statuses/:id/source
//     work. A status posted without visibility is "unlisted".
//   - Idempotency-Key is ignored: one key twice made two statuses.
//   - /oauth/authorize takes code_challenge and code_challenge_method but
//     drops them: PKCE is not enforced (a wrong code_verifier still gets a
//     token); state comes back as sent.
//   - /.well-known/oauth-authorization-server answers 404 {"error":"Not
//     Found"}: no RFC 8414 metadata; use /oauth/authorize and /oauth/token.
//   - No password grant: user tokens come only from the authorization-code
//     flow (SignIn, Token).
//   - URLs in answers use the configured host, http://localhost:PORT
//     (PublicURL), not 127.0.0.1.
type GoToSocial struct {
	// URL is the server's base address, http://127.0.0.1:PORT.
	URL string
	// PublicURL is http://localhost:PORT, the server's configured host: the
	// origin of the URLs in its answers (statuses, media, accounts).
	PublicURL string

	bin, config, workDir string
}

// GTSAccount is a confirmed, approved local account. Email and Password
// sign in at /auth/sign_in (SignIn); Username is the part before
// @localhost:PORT.
type GTSAccount struct {
	Username string
	Email    string
	Password string
}

// GTSOption changes how StartGoToSocial configures the server.
type GTSOption func(*gtsOptions)

type gtsOptions struct {
	rateLimit int
}

// GTSRateLimit turns GoToSocial's per-IP rate limit on: n requests per
// 5-minute window, with X-RateLimit-* headers and 429s past it. Off by
// default, since GoToSocial's own default (300) would bite a test suite.
func GTSRateLimit(n int) GTSOption { return func(o *gtsOptions) { o.rateLimit = n } }

// gtsStartTimeout bounds a start: 1.5 to 3 s once the WASM compilation
// cache under Dir() is warm, 16 to 19 s when it is cold, longer on busy
// cores.
const gtsStartTimeout = 120 * time.Second

// StartGoToSocial starts GoToSocial on a free port with a fresh SQLite
// database under t.TempDir(), open registrations off, rate limits and
// throttling off (unless GTSRateLimit), and waits until GET /api/v1/instance
// answers 200. t.Cleanup stops it with SIGTERM. A failed start fails t with
// the server's output. Without the peers installed it skips or fails t, see
// the package doc.
func StartGoToSocial(t testing.TB, opts ...GTSOption) *GoToSocial {
	t.Helper()
	var o gtsOptions
	for _, opt := range opts {
		opt(&o)
	}
	gtsDir := filepath.Join(Dir(), "gts")
	requireStamp(t, "GoToSocial "+gtsVersion, gtsDir, gtsVersion)
	bin := filepath.Join(gtsDir, "gotosocial")
	if !fileExists(bin) {
		unavailable(t, "%s is missing", bin)
	}

	for attempt := 1; ; attempt++ {
		port := freePort(t)
		work := filepath.Join(t.TempDir(), "gts")
		if err := os.MkdirAll(filepath.Join(work, "storage"), 0o755); err != nil {
			t.Fatalf("realpeers: %v", err)
		}
		g := &GoToSocial{
			URL:       fmt.Sprintf("http://127.0.0.1:%d", port),
			PublicURL: fmt.Sprintf("http://localhost:%d", port),
			bin:       bin,
			config:    filepath.Join(work, "config.yaml"),
			workDir:   work,
		}
		// JSON is YAML, and quotes every path safely.
		cfg, err := json.MarshalIndent(map[string]any{
			"host":                           fmt.Sprintf("localhost:%d", port),
			"protocol":                       "http",
			"bind-address":                   "127.0.0.1",
			"port":                           port,
			"db-type":                        "sqlite",
			"db-address":                     filepath.Join(work, "sqlite.db"),
			"storage-local-base-path":        filepath.Join(work, "storage"),
			"web-template-base-dir":          filepath.Join(gtsDir, "src", "web", "template") + "/",
			"web-asset-base-dir":             filepath.Join(gtsDir, "src", "web", "assets") + "/",
			"letsencrypt-enabled":            false,
			"accounts-registration-open":     false,
			"advanced-rate-limit-requests":   o.rateLimit,
			"advanced-throttling-multiplier": 0,
			"log-client-ip":                  false,
		}, "", "  ")
		if err != nil {
			t.Fatalf("realpeers: %v", err)
		}
		if err := os.WriteFile(g.config, cfg, 0o600); err != nil {
			t.Fatalf("realpeers: %v", err)
		}

		started := time.Now()
		p, err := startProc("GoToSocial", g.command("server", "start"))
		if err != nil {
			t.Fatalf("realpeers: start GoToSocial: %v", err)
		}
		t.Cleanup(func() { p.stop(t) })
		if g.waitReady(p, gtsStartTimeout) {
			t.Logf("realpeers: GoToSocial at %s ready in %s", g.URL, time.Since(started).Round(10*time.Millisecond))
			return g
		}
		if p.portTaken() && attempt < 3 {
			continue
		}
		p.stop(t)
		t.Fatalf("realpeers: GoToSocial not ready within %s; its output:\n%s", gtsStartTimeout, p.out.String())
	}
}

// command runs the gotosocial binary with this server's configuration.
// GTS_WAZERO_COMPILATION_CACHE keeps the compiled WASM ffmpeg and ffprobe
// between starts (78 MB, shared by every start): without it each start
// compiles them again, 16 to 19 s.
func (g *GoToSocial) command(args ...string) *exec.Cmd {
	cmd := exec.Command(g.bin, append([]string{"--config-path", g.config}, args...)...)
	cmd.Dir = g.workDir
	cmd.Env = append(os.Environ(), "GTS_WAZERO_COMPILATION_CACHE="+filepath.Join(Dir(), "gts", "wazero-cache"))
	return cmd
}

func (g *GoToSocial) waitReady(p *proc, timeout time.Duration) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && p.running() {
		resp, err := c.Get(g.URL + "/api/v1/instance")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// CreateAccount creates a confirmed, approved account with `gotosocial
// admin account create`, run beside the running server on the same SQLite
// database (the server sees new accounts at once; it would not see other
// admin edits, such as `admin account disable`, behind its caches), with
// email <username>@example.org and a random password. username is
// lower-case letters, digits and underscores. Failures fail t.
func (g *GoToSocial) CreateAccount(t testing.TB, username string) GTSAccount {
	t.Helper()
	acct := GTSAccount{Username: username, Email: username + "@example.org", Password: "Pw-" + randomSecret(16)}
	cmd := g.command("admin", "account", "create",
		"--username", acct.Username, "--email", acct.Email, "--password", acct.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("realpeers: gotosocial admin account create %s: %v\n%s", username, err, strings.ReplaceAll(string(out), acct.Password, "<password>"))
	}
	return acct
}

// SignIn plays a browser's part of the OAuth authorization-code flow, with
// a cookie jar of its own: GET authorizeURL (any client's, with its own
// redirect_uri, scope, state and PKCE parameters), sign in as acct at
// /auth/sign_in, press Allow (POST /oauth/authorize), and return the
// Location of the last redirect, to the client's redirect_uri with code and
// state, without following it. For the out-of-band redirect_uri
// (urn:ietf:wg:oauth:2.0:oob) that is GoToSocial's own /oauth/oob?code=….
// authorizeURL may name the server as URL or PublicURL; every page is then
// fetched from that origin. Any unexpected answer fails t.
func (g *GoToSocial) SignIn(t testing.TB, authorizeURL string, acct GTSAccount) (redirectedTo *url.URL) {
	t.Helper()
	start, err := url.Parse(authorizeURL)
	if err != nil {
		t.Fatalf("realpeers: SignIn: authorize URL: %v", err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("realpeers: SignIn: %v", err)
	}
	c := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		// Every redirect is looked at, and the last one is the answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	step := func(what string, req *http.Request) *url.URL {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("realpeers: SignIn: %s: %v", what, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		loc, err := resp.Location()
		if resp.StatusCode/100 != 3 || err != nil {
			t.Fatalf("realpeers: SignIn: %s: %s, want a redirect: %s", what, resp.Status, body)
		}
		return loc
	}
	newReq := func(method, u string, form url.Values) *http.Request {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(context.Background(), method, u, body)
		if err != nil {
			t.Fatalf("realpeers: SignIn: %v", err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return req
	}
	origin := start.Scheme + "://" + start.Host

	// GoToSocial keeps the authorize request in its session and sends an
	// anonymous browser to sign in first.
	if loc := step("authorize", newReq(http.MethodGet, start.String(), nil)); loc.Path != "/auth/sign_in" {
		t.Fatalf("realpeers: SignIn: authorize redirected to %s, want /auth/sign_in", loc.Path)
	}
	loc := step("sign in", newReq(http.MethodPost, origin+"/auth/sign_in", url.Values{
		"username": {acct.Email}, "password": {acct.Password},
	}))
	if loc.Path != "/oauth/authorize" {
		t.Fatalf("realpeers: SignIn: sign-in redirected to %s, want /oauth/authorize (wrong password?)", loc.Path)
	}
	// The consent form posts nothing: the request's parameters are in the
	// session.
	final := step("allow", newReq(http.MethodPost, origin+"/oauth/authorize", url.Values{}))
	return start.ResolveReference(final)
}

// oobRedirect is the out-of-band redirect URI: GoToSocial shows the code on
// a page of its own instead of redirecting to a client.
const oobRedirect = "urn:ietf:wg:oauth:2.0:oob"

// Token returns a bearer token with scopes "read write" for acct: it
// registers an app (POST /api/v1/apps) with the out-of-band redirect,
// signs in through SignIn and exchanges the code at /oauth/token.
func (g *GoToSocial) Token(t testing.TB, acct GTSAccount) string {
	t.Helper()
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	g.postForm(t, "/api/v1/apps", url.Values{
		"client_name": {"realpeers"}, "redirect_uris": {oobRedirect}, "scopes": {"read write"},
	}, &app)
	authorize := g.URL + "/oauth/authorize?" + url.Values{
		"client_id": {app.ClientID}, "redirect_uri": {oobRedirect},
		"response_type": {"code"}, "scope": {"read write"},
	}.Encode()
	code := g.SignIn(t, authorize, acct).Query().Get("code")
	if code == "" {
		t.Fatalf("realpeers: Token: no code in the authorize redirect")
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	g.postForm(t, "/oauth/token", url.Values{
		"grant_type": {"authorization_code"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		"redirect_uri": {oobRedirect}, "code": {code},
	}, &tok)
	if tok.AccessToken == "" {
		t.Fatalf("realpeers: Token: no access_token in the token answer")
	}
	return tok.AccessToken
}

// postForm POSTs a form to path and decodes a 200 answer into out; any other
// answer fails t with its status and body (error bodies carry no secrets).
func (g *GoToSocial) postForm(t testing.TB, path string, form url.Values, out any) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.PostForm(g.URL+path, form)
	if err != nil {
		t.Fatalf("realpeers: POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("realpeers: POST %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("realpeers: POST %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("realpeers: POST %s: decode answer: %v", path, err)
	}
}
