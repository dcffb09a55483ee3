package bluesky_test

// Tests against the real Bluesky PDS (@atproto/pds 0.5.35, internal/realpeers):
// skipped locally when it is not installed, failed in CI.
//
// What the real PDS answered where contracts/platforms.md §4 is silent or
// differs (checked here or by the probes these tests grew from):
//   - createRecord under a record key that exists: 500 InternalServerError,
//     not a conflict (the read back settles it).
//   - a garbled or foreign access token: 400 InvalidToken ("Token could not
//     be verified"), not 401; only no token at all is 401 AuthMissing.
//   - revoking an app password: its refresh tokens answer 400 ExpiredToken
//     "Token has been revoked", createSession 401 AuthenticationRequired,
//     but its access tokens keep working until they expire (up to 2 h).
//   - deleteSession takes the refresh JWT only (an access JWT: 400
//     InvalidToken), so Revoke cannot end a session from an access token.
//   - refreshSession and deleteSession take no input: any body, {} too,
//     is 400 InvalidRequest "A request body was provided when none was
//     expected".
//   - sessions from an app password carry scope com.atproto.appPass, from
//     the account's own password com.atproto.access.
//   - TIDs with timestamps years in the past are taken as record keys.
//   - getRecord of app.bsky.actor.profile/self of a new account: 400
//     RecordNotFound (no profile record until a client writes one).
//   - images (realpds_media_test.go): uploadBlob sniffs the type from the
//     bytes and ignores Content-Type (a PNG sent as image/jpeg is
//     image/png, an executable application/x-msdownload) and decodes
//     nothing; createRecord checks the blob: 400 BlobNotFound "Could not
//     find blob: <cid>" for one it does not hold, 400 InvalidRequest
//     `Expected "image/*"` for another type, and 400 InvalidRequest "blob
//     too big (maximum 2000000, got N)": the PDS's lexicon says
//     2,000,000 bytes, the contract (and PostFlow) 1,000,000. alt has no
//     length limit in its lexicon. The same bytes make the same CID.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/providers/providertest"
)

func realProvider(t *testing.T, pds *realpeers.PDS) *bluesky.Provider {
	t.Helper()
	p, err := bluesky.New(bluesky.Config{
		ResolverURL: pds.URL, PLCURL: pds.PLCURL, AppURL: "https://bsky.app",
		Servers: netguard.Policy{AllowLocal: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pdsGet reads an XRPC query of the PDS into out.
func pdsGet(t *testing.T, pds *realpeers.PDS, nsid string, q url.Values, out any) {
	t.Helper()
	res, err := http.Get(pds.URL + "/xrpc/" + nsid + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s %s", nsid, res.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// pdsPost calls an XRPC procedure of the PDS; its answer's status and body.
func pdsPost(t *testing.T, pds *realpeers.PDS, nsid, bearer string, in any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, pds.URL+"/xrpc/"+nsid, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

type listed struct {
	Records []struct {
		URI   string         `json:"uri"`
		Value map[string]any `json:"value"`
	} `json:"records"`
}

// holds counts the account's posts with text, read with listRecords.
func holds(t *testing.T, pds *realpeers.PDS, did, text string) int {
	t.Helper()
	var l listed
	pdsGet(t, pds, "com.atproto.repo.listRecords", url.Values{"repo": {did}, "collection": {bluesky.PostCollection}, "limit": {"100"}}, &l)
	n := 0
	for _, r := range l.Records {
		if r.Value["text"] == text {
			n++
		}
	}
	return n
}

// faultProxy stands between the provider and the real PDS, so that the PDS
// itself does the work while an answer is lost: "lost" forwards the next
// createRecord of a repo, then drops the connection, and the read back
// that follows too (an outage); "401" forwards it without its token, which
// the PDS answers 401 AuthMissing.
type faultProxy struct {
	*httptest.Server
	mu      sync.Mutex
	next    map[string]string // repo → fault
	dropGet map[string]bool
	calls   map[string]int // path → calls forwarded
}

// count is how many calls of nsid went through the proxy.
func (fp *faultProxy) count(nsid string) int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.calls["/xrpc/"+nsid]
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	fp := &faultProxy{next: map[string]string{}, dropGet: map[string]bool{}, calls: map[string]int{}}
	fp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fp.mu.Lock()
		fp.calls[r.URL.Path]++
		fp.mu.Unlock()
		switch r.URL.Path {
		case "/xrpc/com.atproto.repo.createRecord":
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			var in struct{ Repo string }
			_ = json.Unmarshal(b, &in)
			fp.mu.Lock()
			fault := fp.next[in.Repo]
			delete(fp.next, in.Repo)
			fp.mu.Unlock()
			switch fault {
			case "401":
				r.Header.Del("Authorization")
			case "lost":
				rec := httptest.NewRecorder()
				rp.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK {
					t.Errorf("the PDS refused the create to be lost: %d %s", rec.Code, rec.Body)
				}
				fp.mu.Lock()
				fp.dropGet[in.Repo] = true
				fp.mu.Unlock()
				hijackClose(w)
				return
			}
		case "/xrpc/com.atproto.repo.deleteRecord":
			// A delete without its token: the PDS's own 401.
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			var in struct{ Repo string }
			_ = json.Unmarshal(b, &in)
			fp.mu.Lock()
			fault := fp.next["delete "+in.Repo]
			delete(fp.next, "delete "+in.Repo)
			fp.mu.Unlock()
			if fault == "401" {
				r.Header.Del("Authorization")
			}
		case "/xrpc/com.atproto.repo.getRecord":
			repo := r.URL.Query().Get("repo")
			fp.mu.Lock()
			drop := fp.dropGet[repo]
			delete(fp.dropGet, repo)
			fp.mu.Unlock()
			if drop {
				hijackClose(w)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(fp.Close)
	return fp
}

func hijackClose(w http.ResponseWriter) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = c.Close()
}

func TestConformanceRealPDS(t *testing.T) {
	pds := realpeers.StartPDS(t)
	p := realProvider(t, pds)
	proxy := newFaultProxy(t, pds.URL)
	n := 0
	account := func(t *testing.T) providers.Account {
		n++
		acct := pds.CreateAccount(t, fmt.Sprintf("row%d.test", n))
		// Connected at the PDS its DID document names (a named server
		// must be that one), then called through the proxy.
		conn, err := p.Connect().Password.Login(context.Background(), pds.PublicURL, acct.Handle, pds.AppPassword(t, acct))
		if err != nil {
			t.Fatal(err)
		}
		return providers.Account{PlatformUserID: conn.Profile.PlatformUserID, Handle: conn.Profile.Handle, Server: proxy.URL, AccessToken: conn.Tokens.AccessToken}
	}
	providertest.Run(t, providertest.Harness{
		Provider: p,
		Account:  account,
		Other:    account,
		// The PDS's rate limit and outage cannot be had; its 401 can.
		AnswerDelete: func(_ *testing.T, a providers.Account, answer string) bool {
			if answer != "401" {
				return false
			}
			proxy.mu.Lock()
			proxy.next["delete "+a.PlatformUserID] = answer
			proxy.mu.Unlock()
			return true
		},
		// 429, 503 and 504 would be the proxy's answers, not the PDS's
		// (its rate limits take 3,000 calls in 5 minutes to reach).
		Answer: func(_ *testing.T, a providers.Account, answer string) bool {
			if answer != "lost" && answer != "401" {
				return false
			}
			proxy.mu.Lock()
			proxy.next[a.PlatformUserID] = answer
			proxy.mu.Unlock()
			return true
		},
		Holds: func(t *testing.T, a providers.Account, text string) int { return holds(t, pds, a.PlatformUserID, text) },
		// Uploads are counted as they pass the proxy (the rows run one
		// after another); the PDS cannot be made to forget a blob now, nor
		// to refuse an upload.
		Media: providertest.MediaHarness{
			HoldsImages: func(t *testing.T, a providers.Account, text string) [][]providertest.HeldImage {
				var l listed
				pdsGet(t, pds, "com.atproto.repo.listRecords", url.Values{"repo": {a.PlatformUserID}, "collection": {bluesky.PostCollection}, "limit": {"100"}}, &l)
				var out [][]providertest.HeldImage
				for _, r := range l.Records {
					if r.Value["text"] == text {
						out = append(out, heldImages(t, r.Value, func(cid string) []byte { return pdsBlob(t, pds, a.PlatformUserID, cid) }))
					}
				}
				return out
			},
			Uploads: func(*testing.T, providers.Account) int { return proxy.count("com.atproto.repo.uploadBlob") },
		},
	})
}

// pdsBlob reads a blob of the repo did from the PDS (com.atproto.sync.getBlob).
func pdsBlob(t *testing.T, pds *realpeers.PDS, did, cid string) []byte {
	t.Helper()
	res, err := http.Get(pds.URL + "/xrpc/com.atproto.sync.getBlob?" + url.Values{"did": {did}, "cid": {cid}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("getBlob %s: %s, %v", cid, res.Status, err)
	}
	return b
}

func TestRealPDS(t *testing.T) {
	ctx := context.Background()
	pds := realpeers.StartPDS(t)
	p := realProvider(t, pds)
	alice := pds.CreateAccount(t, "alice.test")
	bob := pds.CreateAccount(t, "bob.test")
	app := pds.AppPassword(t, alice)
	login := p.Connect().Password

	conn, err := login.Login(ctx, "", "alice.test", app)
	if err != nil {
		t.Fatalf("login with an app password: %v", err)
	}
	t.Run("login: the PDS from the DID document, tokens from the session", func(t *testing.T) {
		pr, tk := conn.Profile, conn.Tokens
		if pr.PlatformUserID != alice.DID || pr.Handle != "alice.test" || pr.DisplayName != "alice.test" || pr.Server != pds.PublicURL {
			t.Errorf("profile %+v; want %s, alice.test, server %s", pr, alice.DID, pds.PublicURL)
		}
		if tk.Credential != app || tk.RefreshToken == "" {
			t.Error("the app password or the refresh token is not kept")
		}
		if d := time.Until(tk.ExpiresAt); d < 110*time.Minute || d > 2*time.Hour+time.Minute {
			t.Errorf("access token expires in %s; the PDS gives 2 h", d)
		}
		if d := time.Until(tk.RefreshExpiresAt); d < 89*24*time.Hour {
			t.Errorf("refresh token expires in %s; the PDS gives 90 days", d)
		}
	})
	for _, tc := range []struct{ name, identifier, password, code string }{
		{"wrong password", "alice.test", "aaaa-bbbb-cccc-dddd", "AuthenticationRequired"},
		{"the account's own password", "alice.test", alice.Password, "NOT_AN_APP_PASSWORD"},
		{"unknown handle", "nobody.test", app, "HANDLE_NOT_FOUND"},
		{"unknown DID", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", app, "DID_NOT_FOUND"},
		{"a DID of no valid form", "did:plc:nobody", app, "DID_NOT_FOUND"},
		{"email without a server", "alice@example.com", app, "SERVER_NEEDED"},
	} {
		t.Run("login refused: "+tc.name, func(t *testing.T) {
			_, err := login.Login(ctx, "", tc.identifier, tc.password)
			pe := wantKind(t, err, providers.KindAuth, tc.code)
			if pe.Message == "" || strings.Contains(pe.Error(), tc.password) || strings.Contains(pe.Error(), alice.Password) {
				t.Errorf("error %q: want a message, and no password", pe)
			}
		})
	}

	t.Run("login naming the server: the PDS of the DID document works", func(t *testing.T) {
		for _, id := range []string{"alice.test", "alice@example.com", alice.DID} {
			c, err := login.Login(ctx, pds.PublicURL+"/", id, app)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if pr := c.Profile; pr.PlatformUserID != alice.DID || pr.Handle != "alice.test" || pr.Server != pds.PublicURL {
				t.Errorf("%s: profile %+v", id, pr)
			}
			_ = p.Revoke(ctx, providers.Account{Server: c.Profile.Server}, c.Tokens)
		}
	})
	t.Run("login naming a server its DID document does not name: WRONG_PDS", func(t *testing.T) {
		// An impostor in front of the PDS, answering for alice.
		proxy := newFaultProxy(t, pds.URL)
		for _, id := range []string{"alice.test", "alice@example.com"} {
			_, err := login.Login(ctx, proxy.URL, id, app)
			wantKind(t, err, providers.KindAuth, "WRONG_PDS")
		}
		if n := proxy.count("com.atproto.server.createSession"); n != 1 {
			t.Errorf("createSession through the impostor %d times; want 1 (the email's)", n)
		}
	})

	a := providers.Account{PlatformUserID: alice.DID, Handle: alice.Handle, Server: conn.Profile.Server, AccessToken: conn.Tokens.AccessToken}

	t.Run("publish with facets: byte ranges over the text", func(t *testing.T) {
		pl := payload("👩‍👩‍👧 Grüße @bob.test & @nobody.test #launch! https://example.com/päth?q=1.")
		pl.Language = "de"
		pub, err := p.Publish(ctx, a, pl)
		if err != nil {
			t.Fatal(err)
		}
		_, rkey, _ := strings.Cut(strings.TrimPrefix(pub.PlatformPostID, "at://"+alice.DID+"/"), "/")
		var rec struct {
			Value struct {
				Text   string          `json:"text"`
				Langs  []string        `json:"langs"`
				Facets []bluesky.Facet `json:"facets"`
			} `json:"value"`
		}
		pdsGet(t, pds, "com.atproto.repo.getRecord", url.Values{"repo": {alice.DID}, "collection": {bluesky.PostCollection}, "rkey": {rkey}}, &rec)
		got := spans(rec.Value.Text, rec.Value.Facets)
		want := []span{
			{"@bob.test", "mention", bob.DID},
			{"#launch", "tag", "launch"},
			{"https://example.com/päth?q=1", "link", "https://example.com/päth?q=1"},
		}
		if rec.Value.Text != pl.Text || len(got) != len(want) || len(rec.Value.Langs) != 1 || rec.Value.Langs[0] != "de" {
			t.Fatalf("record %+v; facets %q, want %q", rec.Value, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("facet %d: %q, want %q", i, got[i], want[i])
			}
		}
	})

	t.Run("find, publish, find, repeat: one record", func(t *testing.T) {
		pl := payload("find and repeat")
		pl.Created = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC) // an old TID is taken
		if found, err := p.Find(ctx, a, pl, time.Time{}); err != nil || len(found) != 0 {
			t.Fatalf("Find before: %+v, %v; want none", found, err)
		}
		pub, err := p.Publish(ctx, a, pl)
		if err != nil {
			t.Fatal(err)
		}
		found, err := p.Find(ctx, a, pl, time.Time{})
		if err != nil || len(found) != 1 || found[0] != *pub {
			t.Fatalf("Find after: %+v, %v; want %+v", found, err, pub)
		}
		// The PDS answers the repeated key 500; the read back answers it.
		again, err := p.Publish(ctx, a, pl)
		if err != nil || *again != *pub {
			t.Fatalf("repeat: %+v, %v; want %+v", again, err, pub)
		}
		if n := holds(t, pds, alice.DID, pl.Text); n != 1 {
			t.Errorf("the PDS holds %d records, want 1", n)
		}
	})

	t.Run("refresh by refreshSession, then publish with the new session", func(t *testing.T) {
		// Through a proxy that counts: refreshSession must do it, with no
		// new session from the app password (the PDS refuses a body there).
		proxy := newFaultProxy(t, pds.URL)
		via := a
		via.Server = proxy.URL
		fresh, err := p.Refresh(ctx, via, conn.Tokens)
		if err != nil {
			t.Fatal(err)
		}
		if fresh.AccessToken == conn.Tokens.AccessToken || fresh.Credential != app {
			t.Fatal("no new session, or the app password lost")
		}
		if r, c := proxy.count("com.atproto.server.refreshSession"), proxy.count("com.atproto.server.createSession"); r != 1 || c != 0 {
			t.Fatalf("refreshSession called %d times, createSession %d; want 1 and 0", r, c)
		}
		b := a
		b.AccessToken = fresh.AccessToken
		if _, err := p.Publish(ctx, b, payload("after refresh")); err != nil {
			t.Fatal(err)
		}
		conn.Tokens = *fresh
	})

	t.Run("Revoke ends the session: its refresh JWT no longer refreshes", func(t *testing.T) {
		other, err := login.Login(ctx, "", "alice.test", app)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Revoke(ctx, a, providers.Tokens{AccessToken: other.Tokens.AccessToken, RefreshToken: other.Tokens.RefreshToken}); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		// Without the app password to fall back on.
		_, err = p.Refresh(ctx, a, providers.Tokens{RefreshToken: other.Tokens.RefreshToken})
		wantKind(t, err, providers.KindAuth, "SESSION_ENDED")
	})

	t.Run("a revoked app password: refresh and a new session refused, KindAuth", func(t *testing.T) {
		st, body := pdsPost(t, pds, "com.atproto.server.createSession", "", map[string]string{"identifier": alice.Handle, "password": alice.Password})
		var own struct{ AccessJwt string }
		if err := json.Unmarshal(body, &own); st != http.StatusOK || err != nil {
			t.Fatalf("own session: %d %s", st, body)
		}
		var list struct{ Passwords []struct{ Name string } }
		req, _ := http.NewRequest(http.MethodGet, pds.URL+"/xrpc/com.atproto.server.listAppPasswords", nil)
		req.Header.Set("Authorization", "Bearer "+own.AccessJwt)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(res.Body).Decode(&list)
		res.Body.Close()
		for _, pw := range list.Passwords {
			if st, body := pdsPost(t, pds, "com.atproto.server.revokeAppPassword", own.AccessJwt, map[string]string{"name": pw.Name}); st != http.StatusOK {
				t.Fatalf("revoke: %d %s", st, body)
			}
		}
		_, err = p.Refresh(ctx, a, conn.Tokens)
		pe := wantKind(t, err, providers.KindAuth, "AuthenticationRequired")
		if strings.Contains(pe.Error(), app) || strings.Contains(pe.Error(), conn.Tokens.RefreshToken) {
			t.Error("the error holds a secret")
		}
	})

	t.Run("a token the PDS cannot verify: the session must be renewed", func(t *testing.T) {
		b := a
		b.AccessToken = conn.Tokens.RefreshToken // a JWT, of the wrong kind
		_, err := p.Publish(ctx, b, payload("wrong token"))
		wantKind(t, err, providers.KindSessionExpired, "InvalidToken")
	})
}
