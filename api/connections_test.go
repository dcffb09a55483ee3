package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/internal/lockedbuf"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

const (
	jwtSecret = "test-secret-that-is-at-least-32-bytes-long"
	frontend  = "https://app.example.com"
)

type testAPI struct {
	srv  *httptest.Server
	fake *linkedinfake.Server
	logs *lockedbuf.Buffer
	// browser is the person's browser of the test's journeys.
	browser *browser
}

func newTestAPI(t testing.TB, trustHeaders bool) *testAPI {
	t.Helper()
	return newTestAPIWith(t, trustHeaders, false)
}

func newTestAPIWith(t testing.TB, trustHeaders, secureCookies bool) *testAPI {
	t.Helper()
	return newTestAPIFor(t, frontend, trustHeaders, secureCookies)
}

// newTestAPIFor is newTestAPIWith with FRONTEND_URL set to frontendURL.
func newTestAPIFor(t testing.TB, frontendURL string, trustHeaders, secureCookies bool) *testAPI {
	t.Helper()
	return newTestAPIPages(t, frontendURL, trustHeaders, secureCookies, false)
}

// newTestAPIPages is newTestAPIFor with LinkedIn company pages enabled or not.
func newTestAPIPages(t testing.TB, frontendURL string, trustHeaders, secureCookies, pages bool) *testAPI {
	t.Helper()
	logs := &lockedbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ta := &testAPI{logs: logs, browser: newBrowser(t)}

	mux := http.NewServeMux()
	ta.srv = httptest.NewServer(mux)
	t.Cleanup(ta.srv.Close)
	w := testworld.New(t, testworld.Options{Logger: logger, LinkedInPages: pages, LinkedIn: func(s *linkedinfake.Server) {
		s.RedirectURI = ta.srv.URL + "/connections/callback/linkedin"
		s.IssueRefreshTokens = true
	}})
	ta.fake = w.LinkedInFake
	conns := w.Connections
	mux.Handle("/", api.NewHandler(api.Options{
		Logger:        logger,
		FrontendURL:   frontendURL,
		MaxBodyBytes:  1 << 20,
		Auth:          api.AuthOptions{JWTSecret: []byte(jwtSecret), TrustHeaders: trustHeaders},
		Connections:   conns,
		SecureCookies: secureCookies,
	}))
	return ta
}

// browser is a person's browser: it keeps its cookies and follows no
// redirect, so that each step of a journey can be read.
type browser struct{ client *http.Client }

func newBrowser(t testing.TB) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{client: &http.Client{Jar: jar, CheckRedirect: noFollow.CheckRedirect}}
}

// get navigates to u.
func (b *browser) get(t testing.TB, u string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// submit posts an empty form to u from a page of origin ("": no Origin
// header, as a non-browser client sends).
func (b *browser) submit(t testing.TB, u, origin string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func token(t *testing.T, sub string, orgs []string, org string) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "orgs": orgs, "exp": time.Now().Add(time.Hour).Unix()}
	if org != "" {
		c["org"] = org
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (ta *testAPI) do(t *testing.T, method, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ta.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

// authorize submits the URL of a JSON connect answer from the frontend in
// ta.browser, as the frontend does, follows it through LinkedIn's authorize
// page and returns the callback URL it sends the browser to.
func (ta *testAPI) authorize(t *testing.T, connectBody []byte) string {
	t.Helper()
	var got struct{ URL string }
	if err := json.Unmarshal(connectBody, &got); err != nil || got.URL == "" {
		t.Fatalf("connect answered %s", connectBody)
	}
	res := ta.browser.submit(t, got.URL, frontend)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("start = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res = ta.browser.get(t, res.Header.Get("Location"), nil)
	return res.Header.Get("Location")
}

// connectJSON asks for a connection as the frontend's fetch does and
// returns the URL answered.
func (ta *testAPI) connectJSON(t *testing.T, auth http.Header) (int, []byte, string) {
	t.Helper()
	res, body := ta.do(t, "GET", "/connections/connect/linkedin", http.Header{"Authorization": auth["Authorization"], "Accept": {"application/json"}})
	var got struct{ URL string }
	_ = json.Unmarshal(body, &got)
	return res.StatusCode, body, got.URL
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func errorCode(body []byte) string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Code
}

func TestAuth(t *testing.T) {
	ta := newTestAPI(t, false)
	hs := func(claims jwt.MapClaims, key string) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "u", "orgs": []string{"o"}, "exp": exp}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs384, _ := jwt.NewWithClaims(jwt.SigningMethodHS384, jwt.MapClaims{"sub": "u", "orgs": []string{"o"}, "exp": exp}).SignedString([]byte(jwtSecret))

	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
		code   string
	}{
		{"no credentials", "/connections", nil, 401, "unauthorized"},
		{"not a bearer", "/connections", http.Header{"Authorization": {"Basic dTpw"}}, 401, "unauthorized"},
		{"bad signature", "/connections", bearer(hs(jwt.MapClaims{"sub": "u", "orgs": []string{"o"}, "exp": exp}, "another-secret-another-secret-12345")), 401, "unauthorized"},
		{"alg none", "/connections", bearer(none), 401, "unauthorized"},
		{"alg HS384", "/connections", bearer(hs384), 401, "unauthorized"},
		{"expired", "/connections", bearer(hs(jwt.MapClaims{"sub": "u", "orgs": []string{"o"}, "exp": time.Now().Add(-time.Hour).Unix()}, jwtSecret)), 401, "unauthorized"},
		{"no exp", "/connections", bearer(hs(jwt.MapClaims{"sub": "u", "orgs": []string{"o"}}, jwtSecret)), 401, "unauthorized"},
		{"no sub", "/connections", bearer(hs(jwt.MapClaims{"orgs": []string{"o"}, "exp": exp}, jwtSecret)), 401, "unauthorized"},
		{"only org", "/connections", bearer(token(t, "u", []string{"o1"}, "")), 200, ""},
		{"active org", "/connections", bearer(token(t, "u", []string{"o1", "o2"}, "o2")), 200, ""},
		{"query org", "/connections?organizationId=o1", bearer(token(t, "u", []string{"o1", "o2"}, "o2")), 200, ""},
		{"query org not a member", "/connections?organizationId=o3", bearer(token(t, "u", []string{"o1", "o2"}, "")), 403, "forbidden"},
		{"active org not a member", "/connections", bearer(token(t, "u", []string{"o1"}, "o9")), 403, "forbidden"},
		{"several orgs, none chosen", "/connections", bearer(token(t, "u", []string{"o1", "o2"}, "")), 400, "organization_required"},
		{"trusted headers while off", "/connections", http.Header{"X-User-Id": {"u"}, "X-Organization-Id": {"o1"}}, 401, "unauthorized"},
		{"providers need no auth", "/providers", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := ta.do(t, "GET", tt.path, tt.header)
			if res.StatusCode != tt.status || errorCode(body) != tt.code {
				t.Errorf("got %d %s, want %d %q", res.StatusCode, body, tt.status, tt.code)
			}
		})
	}

	trusted := newTestAPI(t, true)
	res, body := trusted.do(t, "GET", "/connections", http.Header{"X-User-Id": {"u"}, "X-Organization-Id": {"o1"}})
	if res.StatusCode != 200 {
		t.Errorf("trusted headers while on: %d %s", res.StatusCode, body)
	}
	res, _ = trusted.do(t, "GET", "/connections?organizationId=o2", http.Header{"X-User-Id": {"u"}, "X-Organization-Id": {"o1"}})
	if res.StatusCode != 403 {
		t.Errorf("trusted headers, other org: %d, want 403", res.StatusCode)
	}
}

// TestConnectFlow is the browser's journey: connect → LinkedIn's authorize
// page → PostFlow's callback → the frontend.
func TestConnectFlow(t *testing.T) {
	ta := newTestAPI(t, false)
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))

	// The frontend's fetch gets the API's start URL...
	status, body, start := ta.connectJSON(t, alice)
	if status != 200 || !strings.HasPrefix(start, ta.srv.URL+"/connections/connect/linkedin/start?ticket=") {
		t.Fatalf("connect (JSON) = %d %s", status, body)
	}
	// ...which the frontend submits: the browser gets the cookie that binds
	// the connection to it, and goes on to LinkedIn's authorize page...
	res := ta.browser.submit(t, start, frontend)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), ta.fake.AuthURL()+"?") {
		t.Fatalf("start = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	cookie := res.Cookies()
	if len(cookie) != 1 || !strings.HasPrefix(cookie[0].Name, "postflow_oauth_") || !cookie[0].HttpOnly || cookie[0].SameSite != http.SameSiteLaxMode ||
		cookie[0].Path != "/" || cookie[0].MaxAge != 600 || cookie[0].Secure {
		t.Fatalf("start set cookies %v, want one HttpOnly, SameSite=Lax postflow_oauth for 600 s", res.Header.Values("Set-Cookie"))
	}
	// ...which redirects to PostFlow's callback...
	authRes := ta.browser.get(t, res.Header.Get("Location"), nil)
	callback := authRes.Header.Get("Location")
	if !strings.HasPrefix(callback, ta.srv.URL+"/connections/callback/linkedin?") {
		t.Fatalf("authorize redirected to %q", callback)
	}
	// ...which lands on the frontend.
	res = ta.browser.get(t, callback, nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != frontend+"/connections?connected=1" {
		t.Fatalf("callback = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	// The cookie has served, and is gone from the browser.
	if u, _ := url.Parse(ta.srv.URL); len(ta.browser.client.Jar.Cookies(u)) != 0 {
		t.Errorf("cookies left after the callback: %v", ta.browser.client.Jar.Cookies(u))
	}
	// A replayed callback is refused.
	res = ta.browser.get(t, callback, nil)
	if loc := res.Header.Get("Location"); loc != frontend+"/connections?error=invalid_state" {
		t.Errorf("replayed callback went to %q", loc)
	}
	// So is a start ticket used twice.
	res = ta.browser.submit(t, start, frontend)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != frontend+"/connections?error=invalid_state" {
		t.Errorf("start submitted twice = %d to %q", res.StatusCode, loc)
	}

	res, body = ta.do(t, "GET", "/connections", alice)
	var list struct{ Connections []map[string]any }
	if err := json.Unmarshal(body, &list); err != nil || res.StatusCode != 200 || len(list.Connections) != 1 {
		t.Fatalf("connections = %d %s", res.StatusCode, body)
	}
	c := list.Connections[0]
	if c["platform"] != "linkedin" || c["platformUserId"] != "urn:li:person:"+ta.fake.Sub || c["status"] != "active" || c["tokenExpiresAt"] == nil {
		t.Errorf("connection = %v", c)
	}
	for _, secret := range []string{"accessToken", "refreshToken", "AQV", "AQW", "v1."} {
		if strings.Contains(string(body), secret) {
			t.Errorf("GET /connections shows %q: %s", secret, body)
		}
	}

	// Another organization sees nothing and cannot disconnect it.
	bob := bearer(token(t, "bob", []string{"org-b"}, ""))
	if _, body := ta.do(t, "GET", "/connections", bob); !strings.Contains(string(body), `"connections":[]`) {
		t.Errorf("org-b sees %s", body)
	}
	id, _ := c["id"].(string)
	if res, body := ta.do(t, "DELETE", "/connections/"+id, bob); res.StatusCode != 404 || errorCode(body) != "connection_not_found" {
		t.Errorf("org-b DELETE = %d %s", res.StatusCode, body)
	}
	// What is no id at all is bad input; an id in capitals is the same id.
	if res, body := ta.do(t, "DELETE", "/connections/"+id+"x", alice); res.StatusCode != 400 || errorCode(body) != "invalid_id" {
		t.Errorf("DELETE of no id = %d %s", res.StatusCode, body)
	}
	if res, _ := ta.do(t, "DELETE", "/connections/"+strings.ToUpper(id), alice); res.StatusCode != 204 {
		t.Errorf("DELETE = %d", res.StatusCode)
	}
	if _, body := ta.do(t, "GET", "/connections", alice); !strings.Contains(string(body), `"connections":[]`) {
		t.Errorf("after DELETE: %s", body)
	}

	// No token, code, state, ticket or cookie ever reached a log line.
	logs := ta.logs.String()
	cb, _ := url.Parse(callback)
	st, _ := url.Parse(start)
	for _, secret := range []string{"AQV", "AQW", cb.Query().Get("code"), cb.Query().Get("state"), st.Query().Get("ticket"), cookie[0].Value} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("a log line holds %q:\n%s", secret, logs)
		}
	}
}

// TestConnectionCompletesOnlyInItsBrowser is the login CSRF on account
// linking: a member of org-b starts a connection and hands its URL to a
// victim. LinkedIn's fake skips its consent screen, as networks do for an
// app the member already approved, so opening the URL is all it takes.
// The victim's browser connects nothing into org-b, and the state is left
// for the browser that started the connection, which still completes it.
func TestConnectionCompletesOnlyInItsBrowser(t *testing.T) {
	mallory := bearer(token(t, "mallory", []string{"org-b"}, ""))
	tests := []struct {
		name string
		// start runs the connect in the attacker's browser and returns
		// the URL the attacker hands the victim.
		start func(t *testing.T, ta *testAPI, attacker *browser) string
	}{
		{"redirect: the authorize URL", func(t *testing.T, ta *testAPI, attacker *browser) string {
			res := attacker.get(t, ta.srv.URL+"/connections/connect/linkedin", mallory)
			if res.StatusCode != http.StatusFound || len(res.Cookies()) != 1 {
				t.Fatalf("connect = %d, cookies %v", res.StatusCode, res.Header.Values("Set-Cookie"))
			}
			return res.Header.Get("Location")
		}},
		{"JSON: the authorize URL after the start", func(t *testing.T, ta *testAPI, attacker *browser) string {
			_, _, start := ta.connectJSON(t, mallory)
			res := attacker.submit(t, start, frontend)
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("start = %d to %q", res.StatusCode, res.Header.Get("Location"))
			}
			return res.Header.Get("Location")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta := newTestAPI(t, false)
			attacker, victim := newBrowser(t), newBrowser(t)
			authorize := tt.start(t, ta, attacker)

			callback := victim.get(t, authorize, nil).Header.Get("Location")
			res := victim.get(t, callback, nil)
			if loc := res.Header.Get("Location"); loc != frontend+"/connections?error=other_browser" {
				t.Errorf("the victim's callback landed on %q", loc)
			}
			if _, body := ta.do(t, "GET", "/connections", mallory); !strings.Contains(string(body), `"connections":[]`) {
				t.Fatalf("the victim's account was connected into org-b: %s", body)
			}

			res = attacker.get(t, callback, nil)
			if loc := res.Header.Get("Location"); loc != frontend+"/connections?connected=1" {
				t.Errorf("the starting browser's callback, afterwards, landed on %q", loc)
			}
		})
	}
}

// TestStartIsTakenOnlyFromTheFrontend: the start URL of a JSON connect
// (which sets the cookie) refuses what an attacker can make a victim's
// browser send: a link (GET), a form on another site, a request without
// Origin. A refused start leaves the ticket to the frontend.
func TestStartIsTakenOnlyFromTheFrontend(t *testing.T) {
	ta := newTestAPI(t, false)
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	_, _, start := ta.connectJSON(t, alice)
	victim := newBrowser(t)
	if res := victim.get(t, start, nil); res.StatusCode != http.StatusMethodNotAllowed || len(res.Cookies()) != 0 {
		t.Errorf("GET start = %d, cookies %v", res.StatusCode, res.Header.Values("Set-Cookie"))
	}
	for _, origin := range []string{"https://evil.example", "null", "", "https://app.example.com.evil.example"} {
		res := victim.submit(t, start, origin)
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != frontend+"/connections?error=invalid_start" || len(res.Cookies()) != 0 {
			t.Errorf("start from origin %q = %d to %q, cookies %v", origin, res.StatusCode, loc, res.Header.Values("Set-Cookie"))
		}
	}
	if res := ta.browser.submit(t, start, frontend); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), ta.fake.AuthURL()+"?") {
		t.Errorf("start from the frontend, afterwards = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res := ta.browser.submit(t, ta.srv.URL+"/connections/connect/linkedin/start?ticket=junk", frontend)
	if loc := res.Header.Get("Location"); loc != frontend+"/connections?error=invalid_state" {
		t.Errorf("junk ticket landed on %q", loc)
	}
}

// TestStartTakesTheFrontendOriginWithItsDefaultPort: browsers send Origin
// without the scheme's default port, so FRONTEND_URL=https://...:443 must
// still let the frontend's own form start a connection.
func TestStartTakesTheFrontendOriginWithItsDefaultPort(t *testing.T) {
	for _, tt := range []struct {
		frontendURL, origin string
		taken               bool
	}{
		{"https://app.example.com:443", "https://app.example.com", true},
		{"https://App.Example.com:443/app", "https://app.example.com", true},
		{"https://app.example.com", "https://APP.example.com:443", true},
		{"https://app.example.com:443", "https://app.example.com:8443", false},
		{"https://app.example.com:443", "https://app.example.com/connections", false},
	} {
		ta := newTestAPIFor(t, tt.frontendURL, false, false)
		_, _, start := ta.connectJSON(t, bearer(token(t, "alice", []string{"org-a"}, "")))
		res := ta.browser.submit(t, start, tt.origin)
		taken := res.StatusCode == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), ta.fake.AuthURL()+"?")
		if taken != tt.taken {
			t.Errorf("FRONTEND_URL=%s, Origin %s: %d to %q, want taken=%v", tt.frontendURL, tt.origin, res.StatusCode, res.Header.Get("Location"), tt.taken)
		}
	}
}

// TestBrowserCookie: outside development the cookie is Secure, and its
// __Host- name keeps other subdomains from planting one; two connections
// started in one browser each have a cookie of their own, so both complete.
func TestBrowserCookie(t *testing.T) {
	ta := newTestAPIWith(t, false, true)
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	res := ta.browser.get(t, ta.srv.URL+"/connections/connect/linkedin", alice)
	set := res.Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-postflow_oauth_", "; Path=/;", "; Max-Age=600;", "; HttpOnly;", "; Secure;", "; SameSite=Lax"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %q", set, want)
		}
	}
	if strings.Contains(strings.ToLower(set), "domain=") {
		t.Errorf("Set-Cookie %q names a domain", set)
	}

	dev := newTestAPI(t, false)
	first := dev.browser.get(t, dev.srv.URL+"/connections/connect/linkedin", alice).Header.Get("Location")
	second := dev.browser.get(t, dev.srv.URL+"/connections/connect/linkedin", alice).Header.Get("Location")
	for i, authorize := range []string{first, second} {
		callback := dev.browser.get(t, authorize, nil).Header.Get("Location")
		if loc := dev.browser.get(t, callback, nil).Header.Get("Location"); loc != frontend+"/connections?connected=1" {
			t.Errorf("connection %d of one browser landed on %q", i+1, loc)
		}
	}
}

func TestConnectRedirectsAndErrors(t *testing.T) {
	ta := newTestAPI(t, false)
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	res, _ := ta.do(t, "GET", "/connections/connect/linkedin", alice)
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), ta.fake.AuthURL()+"?") {
		t.Errorf("connect = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := ta.do(t, "GET", "/connections/connect/myspace", alice)
	if res.StatusCode != 404 || errorCode(body) != "unknown_provider" {
		t.Errorf("unknown provider = %d %s", res.StatusCode, body)
	}
	// The name is echoed bounded.
	res, body = ta.do(t, "GET", "/connections/connect/"+strings.Repeat("p", 20<<10), alice)
	if res.StatusCode != 404 || errorCode(body) != "unknown_provider" || len(body) > 1024 {
		t.Errorf("a long unknown provider = %d, %d bytes", res.StatusCode, len(body))
	}

	ta.fake.Configure(func(s *linkedinfake.Server) { s.DenyConsent = true })
	_, body = ta.do(t, "GET", "/connections/connect/linkedin", http.Header{"Authorization": alice["Authorization"], "Accept": {"application/json"}})
	res = ta.browser.get(t, ta.authorize(t, body), nil)
	if loc := res.Header.Get("Location"); loc != frontend+"/connections?error=denied" {
		t.Errorf("denied consent went to %q", loc)
	}

	for _, q := range []string{"", "?state=nope&code=x", "?error=access_denied"} {
		res, _ := ta.do(t, "GET", "/connections/callback/linkedin"+q, nil)
		if loc := res.Header.Get("Location"); loc != frontend+"/connections?error=invalid_state" {
			t.Errorf("callback%s went to %q", q, loc)
		}
	}
	res, body = ta.do(t, "GET", "/providers", nil)
	if res.StatusCode != 200 || !strings.Contains(string(body), `"id":"linkedin"`) || !strings.Contains(string(body), `"limits":[{"max":3000,"unit":"UTF-16 code units"}]`) {
		t.Errorf("providers = %d %s", res.StatusCode, body)
	}
}

// FuzzCallbackQuery sends arbitrary callback queries: each one lands on the
// frontend with a known error code, and none connects an account.
func FuzzCallbackQuery(f *testing.F) {
	f.Add("state=abc&code=def")
	f.Add("error=user_cancelled_authorize&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("state=" + strings.Repeat("A", 54) + "&code=x")
	f.Add("code=%00%ff&state=%2F%2E%2E")
	f.Add("state=a&state=b&code=c&code=d")
	f.Add(";;;&&&==")
	// One API for all inputs: starting one per input would measure
	// start-up, not the callback.
	ta := newTestAPI(f, false)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		res, err := noFollow.Get(ta.srv.URL + "/connections/callback/linkedin?" + rawQuery)
		if err != nil {
			return // The client refused to send it.
		}
		res.Body.Close()
		if res.StatusCode == http.StatusBadRequest {
			return // net/http refused the request line.
		}
		loc, err := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), frontend+"/connections?") {
			t.Fatalf("%q: %d to %q", rawQuery, res.StatusCode, res.Header.Get("Location"))
		}
		switch loc.Query().Get("error") {
		case "invalid_state", "expired_state", "other_browser", "denied", "exchange_failed":
		default:
			t.Fatalf("%q: landed on %q", rawQuery, loc)
		}
	})
}

// Two connections started at once from a frontend on another site: the
// start POSTs are cross-site, so the browser sends neither of them the
// SameSite=Lax cookie the other set. Each sets a cookie of its own, and
// both callbacks complete.
func TestTwoCrossSiteStartsBothComplete(t *testing.T) {
	ta := newTestAPI(t, false)
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	var authorize []string
	for range 2 {
		_, _, start := ta.connectJSON(t, alice)
		// A cross-site POST: no cookies go with it (a client without
		// the jar); the browser keeps what it sets (put in the jar).
		crossSite := &browser{client: &http.Client{CheckRedirect: noFollow.CheckRedirect}}
		res := crossSite.submit(t, start, frontend)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("start = %d", res.StatusCode)
		}
		u, _ := url.Parse(ta.srv.URL)
		ta.browser.client.Jar.SetCookies(u, res.Cookies())
		authorize = append(authorize, res.Header.Get("Location"))
	}
	for i, a := range authorize {
		callback := ta.browser.get(t, a, nil).Header.Get("Location")
		if loc := ta.browser.get(t, callback, nil).Header.Get("Location"); loc != frontend+"/connections?connected=1" {
			t.Errorf("connection %d landed on %q", i+1, loc)
		}
	}
}
