package mastodon_test

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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/mastodon"
	"github.com/postflow/postflow/providers/mastodon/mastodonfake"
	"github.com/postflow/postflow/providers/providertest"
)

func TestConformance(t *testing.T) {
	p, fake, _ := setupMedia(t)
	providertest.Run(t, fakeHarness(p, fake))
}

// TestConformanceProcessing runs the suite against an instance that
// processes PNGs after the upload (202, then 206 twice): the same rows
// hold, with polls and waits before each image is ready.
func TestConformanceProcessing(t *testing.T) {
	p, fake, _ := setupMedia(t)
	fake.Configure(func(s *mastodonfake.Server) { s.AsyncType, s.ProcessingPolls = "image/png", 2 })
	providertest.Run(t, fakeHarness(p, fake))
}

// TestConformanceGoToSocialFake runs the suite against the fake playing
// GoToSocial, whose answers differ (another account's status is 403 to a
// delete, as the real one answers in TestConformanceGoToSocial).
func TestConformanceGoToSocialFake(t *testing.T) {
	p, fake, _ := setupMedia(t)
	fake.Configure(func(s *mastodonfake.Server) { s.SourceURL = "https://github.com/superseriousbusiness/gotosocial" })
	providertest.Run(t, fakeHarness(p, fake))
}

// fakeHarness is the suite's harness over mastodonfake.
func fakeHarness(p *mastodon.Provider, fake *mastodonfake.Server) providertest.Harness {
	users := 0
	newAccount := func(t *testing.T) providers.Account {
		users++
		name := fmt.Sprint("user", users)
		fake.AddAccount(name)
		return account(connect(t, p, fake, name))
	}
	return providertest.Harness{
		Provider: p,
		Account:  newAccount,
		Other:    newAccount,
		Answer: func(_ *testing.T, a providers.Account, answer string) bool {
			if !slices.Contains([]string{"429", "503", "504", "lost", "401"}, answer) {
				return false
			}
			fake.Configure(func(s *mastodonfake.Server) { s.Answers[mastodon.LocalID(a.PlatformUserID)] = []string{answer} })
			return true
		},
		AnswerDelete: func(_ *testing.T, a providers.Account, answer string) bool {
			fake.Configure(func(s *mastodonfake.Server) { s.DeleteAnswers[mastodon.LocalID(a.PlatformUserID)] = []string{answer} })
			return true
		},
		Holds: func(_ *testing.T, a providers.Account, text string) int {
			n := 0
			for _, st := range fake.Statuses(mastodon.LocalID(a.PlatformUserID)) {
				if st.Text == text {
					n++
				}
			}
			return n
		},
		Media: providertest.MediaHarness{
			HoldsImages: func(_ *testing.T, a providers.Account, text string) [][]providertest.HeldImage {
				id := mastodon.LocalID(a.PlatformUserID)
				media := map[string]mastodonfake.Media{}
				for _, m := range fake.Media(id) {
					media[m.ID] = m
				}
				var out [][]providertest.HeldImage
				for _, st := range fake.Statuses(id) {
					if st.Text != text {
						continue
					}
					held := []providertest.HeldImage{}
					for _, mid := range st.MediaIDs {
						held = append(held, providertest.HeldImage{Bytes: media[mid].Bytes, AltText: media[mid].Description})
					}
					out = append(out, held)
				}
				return out
			},
			Uploads: func(_ *testing.T, a providers.Account) int {
				return len(fake.Media(mastodon.LocalID(a.PlatformUserID)))
			},
			AnswerUpload: func(_ *testing.T, a providers.Account, answer string) bool {
				if answer != "429" && answer != "503" {
					return false
				}
				fake.Configure(func(s *mastodonfake.Server) { s.MediaAnswers[mastodon.LocalID(a.PlatformUserID)] = []string{answer} })
				return true
			},
			Forget: func(_ *testing.T, _ providers.Account, u providers.Upload) bool {
				fake.ForgetMedia(u.ID)
				return true
			},
		},
	}
}

// TestConformanceGoToSocial runs the suite against a real Mastodon-API
// server. GoToSocial cannot be made to answer 429 per account, 503, 504
// or 401 on demand, so those rows are skipped; a lost answer is a real
// one: GoToSocial makes the status and a proxy in front of it drops the
// answer, as a network can.
func TestConformanceGoToSocial(t *testing.T) {
	t.Parallel()
	gts := startGTS(t)
	users := 0
	newAccount := func(t *testing.T) providers.Account {
		users++
		return gts.connect(t, fmt.Sprint("conformance", users))
	}
	providertest.Run(t, providertest.Harness{
		Provider: gts.p,
		Account:  newAccount,
		Other:    newAccount,
		// Its 401 is had by sending the delete without the token.
		AnswerDelete: func(_ *testing.T, a providers.Account, answer string) bool {
			if answer != "401" {
				return false
			}
			gts.mu.Lock()
			defer gts.mu.Unlock()
			gts.unauthDelete[a.AccessToken] = true
			return true
		},
		Answer: func(_ *testing.T, a providers.Account, answer string) bool {
			if answer != "lost" {
				return false
			}
			gts.loseNext(a.AccessToken)
			return true
		},
		Holds: func(t *testing.T, a providers.Account, text string) int {
			return gts.holds(t, a, text)
		},
		// GoToSocial cannot be made to refuse an upload or forget one.
		Media: providertest.MediaHarness{
			HoldsImages: gts.holdsImages,
			Uploads: func(_ *testing.T, a providers.Account) int {
				gts.mu.Lock()
				defer gts.mu.Unlock()
				return gts.uploads[a.AccessToken]
			},
		},
	})
}

// holdsImages reads the images of the account's statuses whose source is
// text from GoToSocial: each attachment's description and file.
func (g *gtsWorld) holdsImages(t *testing.T, a providers.Account, text string) [][]providertest.HeldImage {
	t.Helper()
	var sts []struct {
		ID               string `json:"id"`
		MediaAttachments []struct {
			URL         string  `json:"url"`
			Description *string `json:"description"`
		} `json:"media_attachments"`
	}
	g.get(t, a, "/api/v1/accounts/"+mastodon.LocalID(a.PlatformUserID)+"/statuses?limit=40", &sts)
	var out [][]providertest.HeldImage
	for _, st := range sts {
		var src struct {
			Text string `json:"text"`
		}
		g.get(t, a, "/api/v1/statuses/"+st.ID+"/source", &src)
		if src.Text != text {
			continue
		}
		held := []providertest.HeldImage{}
		for _, m := range st.MediaAttachments {
			res, err := http.Get(m.URL)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s, %v", m.URL, res.Status, err)
			}
			h := providertest.HeldImage{Bytes: b}
			if m.Description != nil {
				h.AltText = *m.Description
			}
			held = append(held, h)
		}
		out = append(out, held)
	}
	return out
}

// gtsWorld is GoToSocial behind a proxy that can lose answers, and a
// provider that reaches it through the proxy.
type gtsWorld struct {
	*realpeers.GoToSocial
	p     *mastodon.Provider
	apps  *providertest.Apps
	proxy *httptest.Server

	mu   sync.Mutex
	lose map[string]bool // by access token: the next POST /api/v1/statuses
	// unauthDelete: the next DELETE /api/v1/statuses/:id of the access
	// token goes without it.
	unauthDelete map[string]bool
	// uploads counts POST /api/v2/media by access token.
	uploads map[string]int
	// statusCreates counts POST /api/v1/statuses that reached GoToSocial.
	statusCreates atomic.Int64
	// appTokens counts client_credentials grants asked of GoToSocial,
	// tokens it cannot revoke.
	appTokens atomic.Int64
}

func startGTS(t *testing.T) *gtsWorld {
	t.Helper()
	g := &gtsWorld{GoToSocial: realpeers.StartGoToSocial(t), apps: &providertest.Apps{}, lose: map[string]bool{}, unauthDelete: map[string]bool{}, uploads: map[string]int{}}
	target, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	g.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/oauth/token" {
			body, _ := io.ReadAll(r.Body)
			if q, _ := url.ParseQuery(string(body)); q.Get("grant_type") == "client_credentials" {
				g.appTokens.Add(1)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if r.Method == http.MethodPost && r.URL.Path == "/api/v2/media" {
			g.mu.Lock()
			g.uploads[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]++
			g.mu.Unlock()
		}
		if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/v1/statuses/") {
			// A delete sent without its token: GoToSocial's own 401.
			g.mu.Lock()
			unauth := g.unauthDelete[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			delete(g.unauthDelete, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			g.mu.Unlock()
			if unauth {
				r.Header.Del("Authorization")
			}
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/statuses" {
			rp.ServeHTTP(w, r)
			return
		}
		g.statusCreates.Add(1)
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		g.mu.Lock()
		lose := g.lose[tok]
		delete(g.lose, tok)
		g.mu.Unlock()
		if !lose {
			rp.ServeHTTP(w, r)
			return
		}
		// GoToSocial makes the status; its answer never arrives.
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Errorf("the lost create failed at GoToSocial: %d %s", rec.Code, rec.Body)
		}
		http.Error(w, `{"error":"Gateway Timeout"}`, http.StatusGatewayTimeout)
	}))
	t.Cleanup(g.proxy.Close)
	g.p, err = mastodon.New(mastodon.Config{RedirectURI: redirectURI, Apps: g.apps, Servers: netguard.Policy{AllowLocal: true}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// loseNext makes the proxy lose the answer to the next status the token
// creates.
func (g *gtsWorld) loseNext(token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lose[token] = true
}

// connect creates a GoToSocial account and connects it through the
// provider: AuthURL, the browser's sign-in and consent, Exchange.
func (g *gtsWorld) connect(t *testing.T, username string) providers.Account {
	t.Helper()
	ctx := context.Background()
	acct := g.CreateAccount(t, username)
	u, err := g.p.AuthURL(ctx, g.proxy.URL, "state-"+username, challenge())
	if err != nil {
		t.Fatal(err)
	}
	back := g.SignIn(t, u, acct)
	if got := back.Scheme + "://" + back.Host + back.Path; got != redirectURI || back.Query().Get("state") != "state-"+username {
		t.Fatalf("GoToSocial sent the browser to %s, state %q", got, back.Query().Get("state"))
	}
	conn, err := g.p.Exchange(ctx, g.proxy.URL, back.Query().Get("code"), "", verifier)
	if err != nil {
		t.Fatal(err)
	}
	return account(conn)
}

// holds counts the account's statuses whose source is text, read from
// GoToSocial itself.
func (g *gtsWorld) holds(t *testing.T, a providers.Account, text string) int {
	t.Helper()
	var sts []struct {
		ID string `json:"id"`
	}
	g.get(t, a, "/api/v1/accounts/"+mastodon.LocalID(a.PlatformUserID)+"/statuses?limit=40", &sts)
	n := 0
	for _, st := range sts {
		var src struct {
			Text string `json:"text"`
		}
		// GoToSocial deletes in the background: a status it has just
		// deleted may still be listed while its source is already 404.
		if g.read(t, a, "/api/v1/statuses/"+st.ID+"/source", &src) && src.Text == text {
			n++
		}
	}
	return n
}

func (g *gtsWorld) get(t *testing.T, a providers.Account, path string, out any) {
	t.Helper()
	if !g.read(t, a, path, out) {
		t.Fatalf("GET %s: 404", path)
	}
}

// read is get that reports false for a 404.
func (g *gtsWorld) read(t *testing.T, a providers.Account, path string, out any) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.AccessToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusNotFound {
		return false
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, res.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return true
}
