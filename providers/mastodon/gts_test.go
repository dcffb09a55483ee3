package mastodon_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
)

// TestGoToSocial connects a GoToSocial account through the provider (the
// browser's part played by realpeers.SignIn), reads the instance's
// limits, publishes, reads the status back, and has a token GoToSocial no
// longer knows refused.
func TestGoToSocial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := startGTS(t)
	a := g.connect(t, "alice")
	// The server PostFlow called (the proxy) names the account, not the
	// domain GoToSocial names itself with.
	host := strings.TrimPrefix(g.proxy.URL, "http://")
	if id, ok := strings.CutSuffix(a.PlatformUserID, "@"+host); !ok || id == "" || a.Handle != "@alice@"+host || a.Server != g.proxy.URL {
		t.Errorf("account %s %s on %s; want id <id>@%s, handle @alice@%s, server %s", a.PlatformUserID, a.Handle, a.Server, host, host, g.proxy.URL)
	}
	// A second account on the same instance uses PostFlow's registration,
	// without an app token to check it (GoToSocial cannot revoke one).
	first, err := g.apps.Get(ctx, "mastodon", g.proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	g.connect(t, "bob")
	if n := g.appTokens.Load(); n != 0 {
		t.Errorf("connects asked GoToSocial for %d app tokens, which it cannot revoke; want none", n)
	}
	if app, err := g.apps.Get(ctx, "mastodon", g.proxy.URL); err != nil || app.ClientID != first.ClientID {
		t.Errorf("stored app %+v, %v; want client %s still", app, err, first.ClientID)
	}

	// GoToSocial advertises 25 characters per URL but counts links at
	// their length: PostFlow counts as it does, and what PostFlow lets
	// through it takes, what PostFlow refuses it refuses.
	limits, err := g.p.TextLimits(ctx, a)
	if err != nil || len(limits) != 1 || limits[0].Max != 5000 || limits[0].URLLength != 0 {
		t.Errorf("limits %+v, %v; want GoToSocial's 5000, links at their length", limits, err)
	}
	link := "https://example.com/" + strings.Repeat("p", 200)
	for _, n := range []int{5000, 5001} {
		long := link + " " + strings.Repeat("x", n-len(link)-1)
		_, _, over := providers.Over(limits, long)
		// Straight to GoToSocial, past the provider's own check.
		req, _ := http.NewRequest("POST", a.Server+"/api/v1/statuses", strings.NewReader(url.Values{"status": {long}, "visibility": {"public"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+a.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if refused := res.StatusCode != 200; over != refused {
			t.Errorf("%d characters with a 220-character link: PostFlow refuses %t, GoToSocial answers %d", n, over, res.StatusCode)
		}
	}

	text := "Hello from PostFlow's Mastodon provider https://example.com/a/long/path/that/counts/as/twenty-five"
	pub, err := g.p.Publish(ctx, a, providers.Payload{Text: text, IdempotencyKey: "gts-1", Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if want := g.PublicURL + "/@alice/statuses/" + pub.PlatformPostID; pub.URL != want || g.p.PostURL(a, pub.PlatformPostID) != want {
		t.Errorf("published %+v, PostURL %s; want %s", pub, g.p.PostURL(a, pub.PlatformPostID), want)
	}
	var st struct {
		Visibility string `json:"visibility"`
		Language   string `json:"language"`
	}
	g.get(t, a, "/api/v1/statuses/"+pub.PlatformPostID, &st)
	if st.Visibility != "public" || st.Language != "en" {
		t.Errorf("status visibility %q, language %q; want public, en", st.Visibility, st.Language)
	}
	found, err := g.p.Find(ctx, a, providers.Payload{Text: text}, time.Now().Add(-time.Minute))
	if err != nil || len(found) != 1 || found[0] != *pub {
		t.Errorf("find: %+v, %v; want %+v", found, err, pub)
	}

	// GoToSocial v0.18.3 has no /oauth/revoke: Revoke says so.
	err = g.p.Revoke(ctx, a, providers.Tokens{AccessToken: a.AccessToken})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusNotFound {
		t.Errorf("revoke on GoToSocial: %v; want its 404", err)
	}
	// A token the server does not know (revoked, as GoToSocial cannot
	// revoke on request: the real one with a character changed) is a 401:
	// the account must reconnect.
	revoked := a
	revoked.AccessToken = map[bool]string{true: "B", false: "A"}[a.AccessToken[0] == 'A'] + a.AccessToken[1:]
	_, err = g.p.Publish(ctx, revoked, providers.Payload{Text: "with a revoked token", IdempotencyKey: "gts-2"})
	if !errors.As(err, &pe) || pe.Kind != providers.KindAuth || !pe.Refused() || strings.Contains(pe.Error(), revoked.AccessToken) {
		t.Errorf("publish with a revoked token: %v; want auth, refused, no token in the message", err)
	}
	if n := g.holds(t, a, "with a revoked token"); n != 0 {
		t.Errorf("GoToSocial holds %d statuses made with a revoked token", n)
	}
}
