package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/internal/stallproxy"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
)

// networks is a `postflow dev` whose worker runs apart, with every network
// connected: a LinkedIn member and a page of theirs (on the LinkedIn
// double), a Bluesky account on a real PDS, a Mastodon account on a real
// GoToSocial, and the sandbox. Each network's calls pass a stallproxy, so
// that the kill test can hold one.
type networks struct {
	d      *devAPI
	dev    *devProcess
	li     *linkedinfake.Server
	pds    *realpeers.PDS
	gts    *realpeers.GoToSocial
	bsky   realpeers.PDSAccount
	masto  realpeers.GTSAccount
	mastoT string // a token of masto's, to read its statuses
	proxy  map[string]*stallproxy.Proxy
	ids    map[string]string // network ("linkedin", "page", ...) → account id
	env    []string          // the networks' settings, for the worker too
	// sandboxUser is the sandbox's id of the dev account's user.
	sandboxUser string
}

// orgID is the company page's id on the LinkedIn double.
const orgID = "2414183"

func startNetworks(ctx context.Context, t *testing.T) *networks {
	t.Helper()
	n := &networks{pds: realpeers.StartPDS(t), gts: realpeers.StartGoToSocial(t), li: linkedinfake.New(),
		proxy: map[string]*stallproxy.Proxy{}, ids: map[string]string{}}
	t.Cleanup(n.li.Close)
	n.bsky = n.pds.CreateAccount(t, "alice.test")
	n.masto = n.gts.CreateAccount(t, "alice")
	n.mastoT = n.gts.Token(t, n.masto)
	n.proxy["linkedin"] = stallproxy.Start(t, n.li.APIURL())
	n.proxy["bluesky"] = stallproxy.Start(t, n.pds.URL)
	n.proxy["mastodon"] = stallproxy.Start(t, n.gts.URL)

	apiPort := freePort(t)
	n.li.Configure(func(s *linkedinfake.Server) {
		s.RedirectURI = fmt.Sprintf("http://127.0.0.1:%d/connections/callback/linkedin", apiPort)
		s.IssueRefreshTokens = true
		s.ACLs = append(s.ACLs, linkedinfake.ACL{Sub: s.Sub, OrganizationID: orgID, Role: "ADMINISTRATOR"})
		s.Organizations = map[string]linkedinfake.Organization{orgID: {LocalizedName: "Acme Pages", VanityName: "acme"}}
	})
	cfg := n.li.ProviderConfig()
	n.env = []string{
		"LINKEDIN_CLIENT_ID=" + cfg.ClientID, "LINKEDIN_CLIENT_SECRET=" + cfg.ClientSecret,
		"LINKEDIN_AUTH_URL=" + cfg.AuthURL, "LINKEDIN_TOKEN_URL=" + cfg.TokenURL,
		"LINKEDIN_API_URL=" + n.proxy["linkedin"].URL, "LINKEDIN_PAGES_ENABLED=true",
		"LINKEDIN_REDIRECT_URI=" + cfg.RedirectURI,
		"BLUESKY_RESOLVER_URL=" + n.pds.URL, "BLUESKY_PLC_URL=" + n.pds.PLCURL,
		fmt.Sprintf("MASTODON_REDIRECT_URI=http://127.0.0.1:%d/connections/callback/mastodon", apiPort),
		"ALLOW_LOCAL_SERVERS=true",
		"TOKEN_ENCRYPTION_KEY=" + testTokenKey,
	}
	n.dev = startDevOn(t, apiPort, n.env, "--no-worker")
	n.d = dialDev(ctx, t, n.dev)
	n.ids["sandbox"] = n.d.account
	n.sandboxUser = n.d.platformUserOf(n.d.account)
	n.connectLinkedIn(t)
	n.connectBluesky(t)
	n.connectMastodon(t)
	return n
}

// browser is a person's browser on the API: cookies kept, redirects not
// followed, the dev identity on the API's own calls.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get GETs u and returns the Location it redirects to.
func (b *browser) get(u string, identity bool) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if identity {
		req.Header.Set("X-User-Id", "dev-user")
		req.Header.Set("X-Organization-Id", "dev-org")
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

const connected = "http://localhost:3000/connections?connected=1"

func (n *networks) connectLinkedIn(t *testing.T) {
	t.Helper()
	b := newBrowser(t)
	status, authorize := b.get(n.d.url+"/connections/connect/linkedin", true)
	if status != http.StatusFound || !strings.HasPrefix(authorize, n.li.AuthURL()+"?") {
		t.Fatalf("connect linkedin: %d to %q", status, authorize)
	}
	q, err := linkedinfake.Authorize(authorize)
	if err != nil {
		t.Fatal(err)
	}
	if _, landed := b.get(n.d.url+"/connections/callback/linkedin?"+q.Encode(), false); landed != connected {
		t.Fatalf("linkedin callback landed on %q", landed)
	}
	n.ids["linkedin"] = n.d.connectionOf("linkedin", "urn:li:person:")
	status, out := n.d.call("POST", "/connections/"+n.ids["linkedin"]+"/pages", `{"pages":["urn:li:organization:`+orgID+`"]}`)
	if status != http.StatusCreated {
		t.Fatalf("add the page: %d %v", status, out)
	}
	n.ids["page"] = n.d.connectionOf("linkedin", "urn:li:organization:"+orgID)
}

// connectBluesky connects the PDS account by its handle (its PDS is
// found from its DID document, which a named server must match), then
// routes the account's calls through the proxy, as a network path between
// the worker and the PDS would carry them: the PDS names itself by its own
// port in DID documents, so the proxy cannot stand in for it at connect.
func (n *networks) connectBluesky(t *testing.T) {
	t.Helper()
	body := fmt.Sprintf(`{"identifier":%q,"password":%q}`, n.bsky.Handle, n.pds.AppPassword(t, n.bsky))
	status, out := n.d.call("POST", "/connections/bluesky", body)
	if status != http.StatusCreated || out["platformUserId"] != n.bsky.DID || out["server"] != n.pds.PublicURL {
		t.Fatalf("connect bluesky: %d %v", status, out)
	}
	n.ids["bluesky"] = out["id"].(string)
	db, err := mongo.Connect(options.Client().ApplyURI(fmt.Sprintf("mongodb://127.0.0.1:%d", n.dev.mongoPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Disconnect(context.Background())
	oid, _ := bson.ObjectIDFromHex(n.ids["bluesky"])
	res, err := db.Database("postflow").Collection("socialAccounts").UpdateOne(context.Background(),
		bson.D{{Key: "_id", Value: oid}}, bson.D{{Key: "$set", Value: bson.D{{Key: "server", Value: n.proxy["bluesky"].URL}}}})
	if err != nil || res.ModifiedCount != 1 {
		t.Fatalf("route the Bluesky account through the proxy: %v, %+v", err, res)
	}
}

func (n *networks) connectMastodon(t *testing.T) {
	t.Helper()
	b := newBrowser(t)
	status, authorize := b.get(n.d.url+"/connections/connect/mastodon?instance="+url.QueryEscape(n.proxy["mastodon"].URL), true)
	if status != http.StatusFound {
		t.Fatalf("connect mastodon: %d to %q", status, authorize)
	}
	callback := n.gts.SignIn(t, authorize, n.masto)
	if _, landed := b.get(callback.String(), false); landed != connected {
		t.Fatalf("mastodon callback %s landed on %q", callback, landed)
	}
	n.ids["mastodon"] = n.d.connectionOf("mastodon", "")
}

// connectionOf is the id of the organization's one account of platform
// whose platform user id starts with prefix.
func (d *devAPI) connectionOf(platform, prefix string) string {
	d.t.Helper()
	_, out := d.call("GET", "/connections", "")
	conns, _ := out["connections"].([]any)
	for _, c := range conns {
		c := c.(map[string]any)
		if c["platform"] == platform && strings.HasPrefix(c["platformUserId"].(string), prefix) {
			return c["id"].(string)
		}
	}
	d.t.Fatalf("no %s connection %s*: %v", platform, prefix, out)
	return ""
}

// platformUserOf is the platform's user id of the account with id.
func (d *devAPI) platformUserOf(id string) string {
	d.t.Helper()
	_, out := d.call("GET", "/connections", "")
	conns, _ := out["connections"].([]any)
	for _, c := range conns {
		if c := c.(map[string]any); c["id"] == id {
			return c["platformUserId"].(string)
		}
	}
	d.t.Fatalf("no connection %s: %v", id, out)
	return ""
}

// holds counts the posts with text the network holds for its account, read
// from the network itself, and says who wrote them.
func (n *networks) holds(t *testing.T, network, text string) (count int, authors []string) {
	t.Helper()
	switch network {
	case "sandbox":
		return n.d.inFeed(text), nil
	case "linkedin", "page":
		for _, p := range n.li.Posts() {
			if p.Rendered() == text {
				count++
				authors = append(authors, p.Author)
			}
		}
		return count, authors
	case "bluesky":
		var out struct {
			Records []struct {
				URI   string
				Value struct{ Text string }
			}
		}
		getJSON(t, n.pds.URL+"/xrpc/com.atproto.repo.listRecords?collection=app.bsky.feed.post&limit=100&repo="+url.QueryEscape(n.bsky.DID), "", &out)
		for _, r := range out.Records {
			if r.Value.Text == text {
				count++
				authors = append(authors, strings.Split(strings.TrimPrefix(r.URI, "at://"), "/")[0])
			}
		}
		return count, authors
	case "mastodon":
		var me struct{ ID string }
		getJSON(t, n.gts.URL+"/api/v1/accounts/verify_credentials", n.mastoT, &me)
		var statuses []struct {
			Content string
			Account struct{ Username string }
		}
		getJSON(t, n.gts.URL+"/api/v1/accounts/"+me.ID+"/statuses?limit=40", n.mastoT, &statuses)
		for _, s := range statuses {
			if strings.Contains(s.Content, text) {
				count++
				authors = append(authors, s.Account.Username)
			}
		}
		return count, authors
	}
	t.Fatalf("no network %s", network)
	return 0, nil
}

func getJSON(t *testing.T, u, token string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || json.Unmarshal(body, out) != nil {
		t.Fatalf("GET %s: %d %s", u, res.StatusCode, body)
	}
}

// TestEveryNetwork is issues 14's and 15's end to end: through `postflow dev` and a
// `postflow worker` of its own, one post goes to a LinkedIn member, their
// company page, a Bluesky account, a Mastodon account and the sandbox at
// once, each with its own variant, and each network holds it once with the
// right author and the post's image (uploaded to the media library through
// the API), once, with its alt text; Bluesky's re-encoded to fit its byte
// limit. Then, network by network, the worker is killed while the
// network's call is held (before the network acts, which is after the
// image's upload, and after it acted but its answer was lost): a new
// worker publishes it exactly once, each by the network's own lever, with
// the one upload of its image.
func TestEveryNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	n := startNetworks(ctx, t)
	outer := t
	worker := n.startWorker(ctx, outer)
	d := n.d

	// The post's image is a photo over Bluesky's 1,000,000 bytes, so
	// Bluesky gets it re-encoded; the kill rows' is a smaller one.
	big := d.uploadMedia("hills.jpg", photo(t, 1800, 1350))
	small := d.uploadMedia("hills-small.jpg", photo(t, 800, 600))
	if big.Size <= 1_000_000 || big.Type != "image/jpeg" || big.Width != 1800 || small.Size >= 1_000_000 {
		t.Fatalf("the library holds the photos as %+v and %+v; want a JPEG of 1800 pixels over 1,000,000 bytes and one under", big, small)
	}

	var everyID string
	var everyTexts map[string]string
	t.Run("one post, five networks, a variant each", func(t *testing.T) {
		d.t = t
		order := []string{"linkedin", "page", "bluesky", "mastodon", "sandbox"}
		const alt = "Green hills under a pale sun: one image for every network"
		var ids, variants []string
		texts := map[string]string{}
		for _, net := range order {
			texts[net] = "One post for every network: the " + net + " variant"
			ids = append(ids, fmt.Sprintf("%q", n.ids[net]))
			variants = append(variants, fmt.Sprintf(`%q:{"content":%q}`, n.ids[net], texts[net]))
		}
		status, post := d.call("POST", "/posts", fmt.Sprintf(`{"content":"The default text","socialAccountIds":[%s],"variants":{%s},"media":[{"id":%q,"altText":%q}]}`,
			strings.Join(ids, ","), strings.Join(variants, ","), big.ID, alt))
		if status != 201 {
			t.Fatalf("POST /posts = %d %v", status, post)
		}
		id := post["id"].(string)
		everyID, everyTexts = id, texts
		uploadsBefore := map[string]int{"sandbox": n.sandboxUploads(t)}
		for net := range uploadRoutes {
			uploadsBefore[net] = n.uploads(net)
		}
		d.trigger(id, "every-network")
		got := d.wait(id, 2*time.Minute)
		if got["status"] != "published" {
			t.Fatalf("post %v", got)
		}
		results := map[string]map[string]any{}
		for _, r := range got["results"].([]any) {
			r := r.(map[string]any)
			results[r["socialAccountId"].(string)] = r
		}
		wantAuthor := map[string]string{"linkedin": "urn:li:person:" + n.li.Sub, "page": "urn:li:organization:" + orgID,
			"bluesky": n.bsky.DID, "mastodon": n.masto.Username}
		for _, net := range order {
			r := results[n.ids[net]]
			if r == nil || r["status"] != "published" || r["platformPostId"] == "" || !strings.HasPrefix(fmt.Sprint(r["platformPostUrl"]), "http") {
				t.Errorf("%s: result %v; want published with the post's URL", net, r)
			}
			count, authors := n.holds(t, net, texts[net])
			if count != 1 || (wantAuthor[net] != "" && (len(authors) != 1 || authors[0] != wantAuthor[net])) {
				t.Errorf("%s holds its variant %d times by %v; want once by %s", net, count, authors, wantAuthor[net])
			}
			if c, _ := n.holds(t, net, "The default text"); c != 0 {
				t.Errorf("%s holds the default text %d times; each got a variant", net, c)
			}
			if r == nil {
				continue
			}
			// Bluesky got the photo re-encoded; the LinkedIn double and the
			// sandbox keep the bytes they got, which are the library's.
			resultMedia(t, net, r, big.ID, net == "bluesky")
			sha := map[string]string{"linkedin": big.SHA256, "page": big.SHA256, "sandbox": big.SHA256}[net]
			// Smaller, in the same proportions (to a pixel's rounding).
			if w, h := n.checkShownOnce(t, net, texts[net], alt, sha); net == "bluesky" && (w >= big.Width || abs(w*big.Height/big.Width-h) > 1) {
				t.Errorf("bluesky holds a %dx%d image; want the %dx%d photo made smaller", w, h, big.Width, big.Height)
			}
		}
		// Each network got the image once a post: the member and the page
		// post apart on LinkedIn.
		uploaded := map[string]int{"sandbox": n.sandboxUploads(t) - uploadsBefore["sandbox"]}
		for net := range uploadRoutes {
			uploaded[net] = n.uploads(net) - uploadsBefore[net]
		}
		if want := map[string]int{"linkedin": 2, "bluesky": 1, "mastodon": 1, "sandbox": 1}; !maps.Equal(uploaded, want) {
			t.Errorf("uploads %v, want %v", uploaded, want)
		}
	})

	t.Run("unpublished from the named networks, once, though the worker dies", func(t *testing.T) {
		d.t = t
		if everyID == "" {
			t.Skip("the post was not made")
		}
		// Bluesky and Mastodon delete the post, but their answers are held
		// and the worker killed: the new worker deletes again, which the
		// real PDS and GoToSocial answer for a post they no longer hold.
		deletes := map[string]func(*http.Request) bool{
			"bluesky": stallproxy.Route("POST", "/xrpc/com.atproto.repo.deleteRecord"),
			"mastodon": func(r *http.Request) bool {
				return r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/v1/statuses/")
			},
		}
		for net, route := range deletes {
			n.proxy[net].Hold(route, stallproxy.After, 1)
		}
		status, run := d.call("POST", "/posts/"+everyID+"/unpublish", fmt.Sprintf(`{"accounts":[%q,%q]}`, n.ids["bluesky"], n.ids["mastodon"]))
		if status != 202 || fmt.Sprint(run["accounts"]) != fmt.Sprint([]any{n.ids["bluesky"], n.ids["mastodon"]}) {
			t.Fatalf("unpublish bluesky and mastodon: %d %v", status, run)
		}
		for n.proxy["bluesky"].Held() != 1 || n.proxy["mastodon"].Held() != 1 {
			if ctx.Err() != nil {
				t.Fatal("the deletes never reached the networks")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := worker.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = worker.Wait()
		worker = n.startWorker(ctx, outer)
		unpublished := func(want map[string]bool) map[string]map[string]any {
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
				_, got := d.call("GET", "/posts/"+everyID, "")
				byNet, done := map[string]map[string]any{}, true
				for net, id := range n.ids {
					for _, r := range got["results"].([]any) {
						if r := r.(map[string]any); r["socialAccountId"] == id {
							u, _ := r["unpublish"].(map[string]any)
							byNet[net] = u
							if want[net] && u["status"] != "unpublished" && u["status"] != "failed" {
								done = false
							}
						}
					}
				}
				if done {
					return byNet
				}
				if time.Now().After(deadline) {
					t.Fatalf("not unpublished within 2 minutes: %v", byNet)
				}
			}
		}
		got := unpublished(map[string]bool{"bluesky": true, "mastodon": true})
		for _, net := range []string{"linkedin", "page", "bluesky", "mastodon", "sandbox"} {
			named := net == "bluesky" || net == "mastodon"
			if c, _ := n.holds(t, net, everyTexts[net]); c != map[bool]int{true: 0, false: 1}[named] {
				t.Errorf("%s holds the post %d times after bluesky and mastodon were unpublished", net, c)
			}
			if named && (got[net]["status"] != "unpublished" || got[net]["attempts"] != 2.0) {
				t.Errorf("%s's unpublish: %v; want unpublished at the second attempt", net, got[net])
			}
			if !named && got[net] != nil {
				t.Errorf("%s has an unpublish it was not asked for: %v", net, got[net])
			}
		}

		// Then the rest, by default: the LinkedIn member, the page, the sandbox.
		if status, run := d.call("POST", "/posts/"+everyID+"/unpublish", ""); status != 202 ||
			fmt.Sprint(run["accounts"]) != fmt.Sprint([]any{n.ids["linkedin"], n.ids["page"], n.ids["sandbox"]}) {
			t.Fatalf("unpublish the rest: %d %v", status, run)
		}
		got = unpublished(map[string]bool{"linkedin": true, "page": true, "sandbox": true})
		for _, net := range []string{"linkedin", "page", "bluesky", "mastodon", "sandbox"} {
			if c, _ := n.holds(t, net, everyTexts[net]); c != 0 || got[net]["status"] != "unpublished" {
				t.Errorf("%s holds the post %d times, unpublish %v; want none, unpublished", net, c, got[net])
			}
		}
	})

	t.Run("a retry uploads nothing twice", func(t *testing.T) {
		d.t = t
		// The sandbox refuses the post once (503), after the image went up:
		// the activity's retry refers to the same upload.
		const text, alt = "Refused once, then published with its one upload", "Hills, sent to the sandbox once"
		d.behaveAs(n.sandboxUser, `{"publish":"unavailable","publishTimes":1}`)
		before := n.sandboxUploads(t)
		status, post := d.call("POST", "/posts", fmt.Sprintf(`{"content":%q,"socialAccountIds":[%q],"media":[{"id":%q,"altText":%q}]}`,
			text, n.ids["sandbox"], small.ID, alt))
		if status != 201 {
			t.Fatalf("POST /posts = %d %v", status, post)
		}
		id := post["id"].(string)
		d.trigger(id, "image-retry")
		got := d.wait(id, time.Minute)
		r := result(t, got)
		if got["status"] != "published" || r["status"] != "published" || r["attempts"] != 2.0 {
			t.Errorf("post %v, result %v; want published at the second attempt", got["status"], r)
		}
		if uploaded := n.sandboxUploads(t) - before; uploaded != 1 {
			t.Errorf("the sandbox got %d uploads, want one", uploaded)
		}
		resultMedia(t, "sandbox", r, small.ID, false)
		n.checkShownOnce(t, "sandbox", text, alt, small.SHA256)
	})

	routes := map[string]func(*http.Request) bool{
		"linkedin": stallproxy.Route("POST", "/rest/posts"),
		"bluesky":  stallproxy.Route("POST", "/xrpc/com.atproto.repo.createRecord"),
		"mastodon": stallproxy.Route("POST", "/api/v1/statuses"),
	}
	for _, net := range []string{"linkedin", "bluesky", "mastodon"} {
		for _, when := range []stallproxy.When{stallproxy.Before, stallproxy.After} {
			name := map[stallproxy.When]string{stallproxy.Before: "before", stallproxy.After: "after"}[when]
			t.Run("worker killed "+name+" "+net+" acts", func(t *testing.T) {
				d.t = t
				text := fmt.Sprintf("Killed %s %s acted, published once", name, net)
				alt := fmt.Sprintf("Hills, uploaded once though the worker died %s %s acted", name, net)
				uploadsBefore := n.uploads(net)
				n.proxy[net].Hold(routes[net], when, 1)
				status, post := d.call("POST", "/posts", fmt.Sprintf(`{"content":%q,"socialAccountIds":[%q],"media":[{"id":%q,"altText":%q}]}`,
					text, n.ids[net], small.ID, alt))
				if status != 201 {
					t.Fatalf("POST /posts = %d %v", status, post)
				}
				id := post["id"].(string)
				d.trigger(id, "kill-"+net+"-"+name)
				for n.proxy[net].Held() != 1 {
					if ctx.Err() != nil {
						t.Fatal("the publish never reached the network")
					}
					time.Sleep(20 * time.Millisecond)
				}
				if c, _ := n.holds(t, net, text); c != map[stallproxy.When]int{stallproxy.Before: 0, stallproxy.After: 1}[when] {
					t.Fatalf("before the kill %s holds the post %d times", net, c)
				}
				if err := worker.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				_ = worker.Wait()
				worker = n.startWorker(ctx, outer)
				got := d.wait(id, 2*time.Minute)
				r := result(t, got)
				if got["status"] != "published" || r["status"] != "published" || !strings.HasPrefix(fmt.Sprint(r["platformPostUrl"]), "http") {
					t.Errorf("post %v, result %v; want published with its URL", got["status"], r)
				}
				if c, _ := n.holds(t, net, text); c != 1 {
					t.Errorf("%s holds the post %d times, want once", net, c)
				}
				// Before: the worker died between the upload and the post.
				// The new one refers to the upload again.
				if got := n.uploads(net) - uploadsBefore; got != 1 {
					t.Errorf("%s got %d uploads of the post's image, want one", net, got)
				}
				resultMedia(t, net, r, small.ID, false)
				n.checkShownOnce(t, net, text, alt, map[string]string{"linkedin": small.SHA256}[net])
			})
		}
	}
	d.t = t
	_ = worker.Process.Signal(os.Interrupt)
	_ = worker.Wait()
}

// startWorker starts `postflow worker` with the networks' settings.
func (n *networks) startWorker(ctx context.Context, t *testing.T) *exec.Cmd {
	t.Helper()
	return startWorkerProcessWith(ctx, t, n.dev, n.env)
}
