package realpeers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// call sends one request and returns the status, headers and body; a
// transport error fails t.
func call(t *testing.T, method, u, bearer, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp.StatusCode, resp.Header, b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// tid makes an atproto record key: 13 base32-sortable characters of
// microseconds since the epoch shifted past a 10-bit clock id.
func tid(at time.Time) string {
	const alphabet = "234567abcdefghijklmnopqrstuvwxyz"
	v := uint64(at.UnixMicro())<<10 | 7
	out := make([]byte, 13)
	for i := 12; i >= 0; i-- {
		out[i] = alphabet[v&31]
		v >>= 5
	}
	return string(out)
}

// TestPDS starts a PDS, signs in with an app password, posts, reads the post
// back, and checks the answers the package doc records.
func TestPDS(t *testing.T) {
	t.Parallel()
	pds := StartPDS(t, PDSRateLimits())
	acct := pds.CreateAccount(t, "alice.test")
	if !strings.HasPrefix(acct.DID, "did:plc:") {
		t.Fatalf("DID = %q, want did:plc:…", acct.DID)
	}
	appPassword := pds.AppPassword(t, acct)

	// PostFlow signs in with the handle and an app password.
	code, _, body := call(t, "POST", pds.URL+"/xrpc/com.atproto.server.createSession", "", "application/json",
		mustJSON(t, map[string]string{"identifier": acct.Handle, "password": appPassword}))
	if code != http.StatusOK {
		t.Fatalf("createSession with the app password: %d %s", code, body)
	}
	var sess struct {
		AccessJwt string `json:"accessJwt"`
		DID       string `json:"did"`
	}
	decode(t, body, &sess)
	if sess.DID != acct.DID {
		t.Fatalf("session DID = %q, want %q", sess.DID, acct.DID)
	}

	// The PLC directory knows the account, and names the PDS by PublicURL.
	code, _, body = call(t, "GET", pds.PLCURL+"/"+acct.DID, "", "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), pds.PublicURL) {
		t.Fatalf("PLC %s: %d %s; want the DID document naming %s", acct.DID, code, body, pds.PublicURL)
	}

	rkey := tid(time.Now())
	text := "Hello from PostFlow's realpeers test"
	create := mustJSON(t, map[string]any{
		"repo": acct.DID, "collection": "app.bsky.feed.post", "rkey": rkey,
		"record": map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": time.Now().UTC().Format(time.RFC3339Nano)},
	})
	code, hdr, body := call(t, "POST", pds.URL+"/xrpc/com.atproto.repo.createRecord", sess.AccessJwt, "application/json", create)
	if code != http.StatusOK {
		t.Fatalf("createRecord: %d %s", code, body)
	}
	var created struct {
		URI string `json:"uri"`
		CID string `json:"cid"`
	}
	decode(t, body, &created)
	if want := "at://" + acct.DID + "/app.bsky.feed.post/" + rkey; created.URI != want {
		t.Fatalf("createRecord uri = %q, want %q", created.URI, want)
	}
	for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"} {
		if hdr.Get(h) == "" {
			t.Errorf("createRecord answer has no %s header", h)
		}
	}
	t.Logf("createRecord RateLimit-Limit=%s Remaining=%s Reset=%s Policy=%s", hdr.Get("RateLimit-Limit"),
		hdr.Get("RateLimit-Remaining"), hdr.Get("RateLimit-Reset"), hdr.Get("RateLimit-Policy"))
	if reset, err := strconv.ParseInt(hdr.Get("RateLimit-Reset"), 10, 64); err != nil || reset < time.Now().Unix() || reset > time.Now().Add(24*time.Hour).Unix() {
		t.Errorf("RateLimit-Reset %q: want Unix seconds within a day", hdr.Get("RateLimit-Reset"))
	}

	// The same rkey again: an untyped 500, not a conflict.
	code, _, body = call(t, "POST", pds.URL+"/xrpc/com.atproto.repo.createRecord", sess.AccessJwt, "application/json", create)
	t.Logf("createRecord, same rkey: %d %s", code, body)
	if code != http.StatusInternalServerError || !strings.Contains(string(body), `"InternalServerError"`) {
		t.Errorf("createRecord, same rkey: %d %s; want 500 InternalServerError", code, body)
	}

	get := func(rkey string) (int, []byte) {
		code, _, body := call(t, "GET", pds.URL+"/xrpc/com.atproto.repo.getRecord?"+url.Values{
			"repo": {acct.DID}, "collection": {"app.bsky.feed.post"}, "rkey": {rkey},
		}.Encode(), "", "", nil)
		return code, body
	}
	code, body = get(rkey)
	var got struct {
		URI   string `json:"uri"`
		CID   string `json:"cid"`
		Value struct {
			Text string `json:"text"`
		} `json:"value"`
	}
	decode(t, body, &got)
	if code != http.StatusOK || got.Value.Text != text || got.CID != created.CID {
		t.Fatalf("getRecord: %d %s; want the post, cid %s", code, body, created.CID)
	}

	code, body = get(tid(time.Now().Add(time.Hour)))
	t.Logf("getRecord, missing: %d %s", code, body)
	if code != http.StatusBadRequest || !strings.Contains(string(body), `"RecordNotFound"`) {
		t.Errorf("getRecord, missing: %d %s; want 400 RecordNotFound", code, body)
	}
}

// TestGoToSocial starts GoToSocial, connects an account as PostFlow would
// (its own redirect_uri, state and PKCE), posts, reads the post back, and
// checks the answers GoToSocial's doc comment records.
func TestGoToSocial(t *testing.T) {
	t.Parallel()
	// A limit above this test's needs, to see the headers, and a 429 at the end.
	gts := StartGoToSocial(t, GTSRateLimit(100))
	acct := gts.CreateAccount(t, "alice")

	// A client with its own redirect_uri, state and S256 challenge.
	redirect := "http://127.0.0.1:1/connections/callback/mastodon"
	code, _, body := call(t, "POST", gts.URL+"/api/v1/apps", "", "application/x-www-form-urlencoded", []byte(url.Values{
		"client_name": {"PostFlow test"}, "redirect_uris": {redirect}, "scopes": {"read write"},
	}.Encode()))
	if code != http.StatusOK {
		t.Fatalf("register app: %d %s", code, body)
	}
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	decode(t, body, &app)
	verifier := "a-verifier-of-at-least-forty-three-characters-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	authorize := gts.URL + "/oauth/authorize?" + url.Values{
		"client_id": {app.ClientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"read write"},
		"state": {"state-123"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
	to := gts.SignIn(t, authorize, acct)
	if got := to.Scheme + "://" + to.Host + to.Path; got != redirect {
		t.Fatalf("SignIn redirected to %s, want %s", got, redirect)
	}
	if to.Query().Get("state") != "state-123" || to.Query().Get("code") == "" {
		t.Fatalf("SignIn redirect query has state %q and code set %v; want state-123 and a code", to.Query().Get("state"), to.Query().Get("code") != "")
	}
	// A wrong code_verifier still gets a token: GoToSocial drops the challenge.
	code, _, body = call(t, "POST", gts.URL+"/oauth/token", "", "application/x-www-form-urlencoded", []byte(url.Values{
		"grant_type": {"authorization_code"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		"redirect_uri": {redirect}, "code": {to.Query().Get("code")}, "code_verifier": {"wrong-" + verifier},
	}.Encode()))
	if code != http.StatusOK || !strings.Contains(string(body), `"access_token"`) {
		t.Errorf("token with a wrong code_verifier: %d; want 200 with a token (PKCE not enforced)", code)
	}

	// The same through the server's public name.
	if to := gts.SignIn(t, strings.Replace(authorize, gts.URL, gts.PublicURL, 1), acct); to.Query().Get("code") == "" {
		t.Errorf("SignIn through %s: no code in %s", gts.PublicURL, to.Path)
	}

	token := gts.Token(t, acct)

	code, _, body = call(t, "GET", gts.URL+"/api/v2/instance", "", "", nil)
	var inst struct {
		Configuration struct {
			Statuses struct {
				MaxCharacters            int `json:"max_characters"`
				CharactersReservedPerURL int `json:"characters_reserved_per_url"`
			} `json:"statuses"`
		} `json:"configuration"`
	}
	decode(t, body, &inst)
	t.Logf("/api/v2/instance configuration.statuses: %+v", inst.Configuration.Statuses)
	if s := inst.Configuration.Statuses; code != http.StatusOK || s.MaxCharacters != 5000 || s.CharactersReservedPerURL != 25 {
		t.Errorf("/api/v2/instance: %d, statuses %+v; want 5000 and 25", code, s)
	}

	text := "Hello from PostFlow's realpeers test"
	code, hdr, body := call(t, "POST", gts.URL+"/api/v1/statuses", token, "application/x-www-form-urlencoded",
		[]byte(url.Values{"status": {text}, "visibility": {"public"}}.Encode()))
	if code != http.StatusOK {
		t.Fatalf("post status: %d %s", code, body)
	}
	t.Logf("post status X-RateLimit-Limit=%s Remaining=%s Reset=%s", hdr.Get("X-RateLimit-Limit"), hdr.Get("X-RateLimit-Remaining"), hdr.Get("X-RateLimit-Reset"))
	if _, err := time.Parse(time.RFC3339, hdr.Get("X-RateLimit-Reset")); err != nil || hdr.Get("X-RateLimit-Limit") != "100" || hdr.Get("X-RateLimit-Remaining") == "" {
		t.Errorf("rate limit headers %v; want X-RateLimit-Limit 100, X-RateLimit-Remaining, X-RateLimit-Reset ISO 8601", hdr)
	}
	var st struct {
		ID         string `json:"id"`
		URL        string `json:"url"`
		Content    string `json:"content"`
		Visibility string `json:"visibility"`
		Account    struct {
			ID string `json:"id"`
		} `json:"account"`
	}
	decode(t, body, &st)
	if st.Visibility != "public" || !strings.HasPrefix(st.URL, gts.PublicURL+"/") {
		t.Errorf("status visibility %q, url %q; want public, under %s", st.Visibility, st.URL, gts.PublicURL)
	}

	code, _, body = call(t, "GET", gts.URL+"/api/v1/statuses/"+st.ID, token, "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), text) {
		t.Fatalf("GET status: %d %s", code, body)
	}
	code, _, body = call(t, "GET", gts.URL+"/api/v1/statuses/"+st.ID+"/source", token, "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"text":"`+text+`"`) {
		t.Errorf("GET status source: %d %s; want 200 with the text", code, body)
	}
	code, _, body = call(t, "GET", gts.URL+"/api/v1/accounts/"+st.Account.ID+"/statuses?limit=5", token, "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), st.ID) {
		t.Errorf("GET account statuses: %d %s; want 200 listing %s", code, body, st.ID)
	}

	// Without visibility a status is unlisted; Idempotency-Key is ignored.
	var ids []string
	for range 2 {
		req, err := http.NewRequest("POST", gts.URL+"/api/v1/statuses", strings.NewReader(url.Values{"status": {"same key"}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Idempotency-Key", "key-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var s struct {
			ID         string `json:"id"`
			Visibility string `json:"visibility"`
		}
		decode(t, b, &s)
		if resp.StatusCode != http.StatusOK || s.Visibility != "unlisted" {
			t.Errorf("status without visibility: %d, visibility %q; want 200, unlisted", resp.StatusCode, s.Visibility)
		}
		ids = append(ids, s.ID)
	}
	if ids[0] == ids[1] {
		t.Errorf("one Idempotency-Key twice gave one status %s; want two (GoToSocial ignores the key)", ids[0])
	}

	code, _, body = call(t, "POST", gts.URL+"/api/v1/statuses", "not-a-token", "application/x-www-form-urlencoded",
		[]byte(url.Values{"status": {"x"}}.Encode()))
	t.Logf("bad token: %d %s", code, body)
	if code != http.StatusUnauthorized {
		t.Errorf("bad token: %d %s; want 401", code, body)
	}

	code, _, body = call(t, "GET", gts.URL+"/.well-known/oauth-authorization-server", "", "", nil)
	t.Logf("/.well-known/oauth-authorization-server: %d %s", code, body)
	if code != http.StatusNotFound {
		t.Errorf("/.well-known/oauth-authorization-server: %d %s; want 404", code, body)
	}

	// GoToSocial v0.18.3 has no /oauth/revoke. A revoked token is one the
	// server no longer finds: the real token with one character changed.
	code, _, body = call(t, "POST", gts.URL+"/oauth/revoke", "", "application/x-www-form-urlencoded",
		[]byte(url.Values{"token": {token}}.Encode()))
	if code != http.StatusNotFound {
		t.Errorf("/oauth/revoke: %d %s; want 404", code, body)
	}
	unknown := []byte(token)
	unknown[0] = map[bool]byte{true: 'B', false: 'A'}[unknown[0] == 'A']
	code, _, body = call(t, "GET", gts.URL+"/api/v1/accounts/verify_credentials", string(unknown), "", nil)
	t.Logf("unknown token: %d %s", code, body)
	if code != http.StatusUnauthorized || string(body) != `{"error":"Unauthorized: token not supplied"}` {
		t.Errorf("unknown token: %d %s; want 401 {\"error\":\"Unauthorized: token not supplied\"}", code, body)
	}

	// Past the limit: 429 with a JSON error, and no Retry-After.
	for range 100 {
		code, hdr, body = call(t, "GET", gts.URL+"/api/v1/instance", "", "", nil)
		if code != http.StatusOK {
			break
		}
	}
	t.Logf("past the limit: %d %s, Retry-After %q, X-RateLimit-Remaining %s", code, body, hdr.Get("Retry-After"), hdr.Get("X-RateLimit-Remaining"))
	if code != http.StatusTooManyRequests || string(body) != `{"error":"rate limit reached"}` {
		t.Errorf("past the limit: %d %s; want 429 {\"error\":\"rate limit reached\"}", code, body)
	}
}

// versitygw refuses unsigned requests, and a bucket made with CreateBucket
// is a folder of its posix backend.
func TestS3(t *testing.T) {
	s := StartS3(t)
	if code, _, _ := call(t, http.MethodGet, s.URL+"/", "", "", nil); code != http.StatusForbidden {
		t.Errorf("unsigned ListBuckets = %d, want 403", code)
	}
	s.CreateBucket(t, "media")
	if !fileExists(filepath.Join(s.Dir, "media")) {
		t.Errorf("no folder %s/media after CreateBucket", s.Dir)
	}
}

// failAfter hands out n zero bytes, then fails, as a client whose source
// broke mid-upload.
type failAfter struct{ n int }

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("source broke")
	}
	m := min(len(p), f.n)
	clear(p[:m])
	f.n -= m
	return m, nil
}

// versitygw keeps a PUT cut short (see S3): 600 KiB of 1 MiB promised,
// then the connection breaks, and an object of 600 KiB appears. (A body
// small enough for its HTTP server to read whole before the handler runs,
// 1000 bytes, is refused.)
func TestS3TruncatedPut(t *testing.T) {
	s := StartS3(t)
	s.CreateBucket(t, "bkt")
	req, err := http.NewRequest(http.MethodPut, s.URL+"/bkt/cut", &failAfter{600 << 10})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 1 << 20
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", s.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Client.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("PUT with a broken body answered %d, want a transport error", res.StatusCode)
	}
	path := filepath.Join(s.Dir, "bkt", "cut")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(path); err == nil {
			if fi.Size() != 600<<10 {
				t.Fatalf("stored %d bytes, want the %d that arrived", fi.Size(), 600<<10)
			}
			return // the fact still holds
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no object stored for the cut PUT: versitygw now refuses it; media/s3 may PUT in place")
}
