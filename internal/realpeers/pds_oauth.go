package realpeers

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// SignIn does what a person does in a browser on the PDS's atproto OAuth
// authorization page at authorizeURL (the authorization endpoint with
// client_id and request_uri, as PAR left it): signs in as acct and
// consents. It returns where the PDS then sends the browser: the client's
// redirect URI with code, state and iss (or error). Failures fail t.
//
// The page is @atproto/oauth-provider's; its script calls the provider's
// API, which this drives the same way (checked on @atproto/pds 0.5.35):
//   - GET /oauth/authorize with the fetch metadata of a navigation
//     (Sec-Fetch-Mode navigate, Sec-Fetch-Dest document) sets the device
//     cookies (Secure: a cookie jar would keep them from http://localhost,
//     so they are sent by hand).
//   - POST /@atproto/oauth-provider/~api/sign-in and then /consent want
//     Sec-Fetch-Mode and Sec-Fetch-Site same-origin, the issuer's Origin,
//     the authorize URL as Referer (it names the request_uri), and a CSRF
//     token (24 hex characters the client picks) as both the csrf-token
//     cookie and the X-CSRF-Token header. sign-in without "remember"
//     answers an ephemeral token, which /consent takes as a Bearer with the
//     account's DID; /consent answers {"url"}: /oauth/authorize/redirect.
//   - That URL, as a same-origin navigation from the authorize page,
//     answers 303 to the redirect URI.
func (s *PDS) SignIn(t testing.TB, authorizeURL string, acct PDSAccount) (redirectedTo *url.URL) {
	t.Helper()
	b := &pdsBrowser{t: t, cookies: map[string]string{}, client: &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	au, err := url.Parse(authorizeURL)
	if err != nil {
		t.Fatalf("realpeers: authorize URL: %v", err)
	}
	origin := au.Scheme + "://" + au.Host

	req, _ := http.NewRequest(http.MethodGet, authorizeURL, nil)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Accept", "text/html")
	if res, body := b.do(req); res.StatusCode != http.StatusOK {
		t.Fatalf("realpeers: authorize page: %s %.300s", res.Status, body)
	}

	csrf := make([]byte, 12)
	_, _ = rand.Read(csrf)
	b.cookies["csrf-token"] = hex.EncodeToString(csrf)
	api := func(endpoint, bearer string, in, out any) {
		t.Helper()
		js, _ := json.Marshal(in)
		req, _ := http.NewRequest(http.MethodPost, origin+"/@atproto/oauth-provider/~api/"+endpoint, strings.NewReader(string(js)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Mode", "same-origin")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Origin", origin)
		req.Header.Set("Referer", authorizeURL)
		req.Header.Set("X-CSRF-Token", b.cookies["csrf-token"])
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, body := b.do(req)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("realpeers: %s: %s %.300s", endpoint, res.Status, body)
		}
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("realpeers: %s: %v", endpoint, err)
		}
	}
	var signedIn struct {
		EphemeralToken string `json:"ephemeralToken"`
	}
	api("sign-in", "", map[string]any{"locale": "en", "username": acct.Handle, "password": acct.Password, "remember": false}, &signedIn)
	var consented struct {
		URL string `json:"url"`
	}
	api("consent", signedIn.EphemeralToken, map[string]any{"did": acct.DID}, &consented)

	req, _ = http.NewRequest(http.MethodGet, consented.URL, nil)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Referer", authorizeURL)
	res, body := b.do(req)
	loc, err := res.Location()
	if err != nil {
		t.Fatalf("realpeers: authorize redirect: %s %.300s", res.Status, body)
	}
	return loc
}

// pdsBrowser keeps cookies by name and follows no redirects.
type pdsBrowser struct {
	t       testing.TB
	client  *http.Client
	cookies map[string]string
}

func (b *pdsBrowser) do(req *http.Request) (*http.Response, []byte) {
	b.t.Helper()
	var cs []string
	for k, v := range b.cookies {
		cs = append(cs, k+"="+v)
	}
	if len(cs) > 0 {
		req.Header.Set("Cookie", strings.Join(cs, "; "))
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("realpeers: %s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	for _, c := range res.Cookies() {
		b.cookies[c.Name] = c.Value
	}
	return res, body
}
