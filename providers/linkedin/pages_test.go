package linkedin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/linkedin"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
	"github.com/postflow/postflow/providers/providertest"
)

// pageScopes are a member's scopes with the organization ones granted.
var pageScopes = append(slices.Clone(linkedinfake.MemberScopes), linkedin.PageScopes...)

// setupPages is setup with company pages enabled.
func setupPages(t *testing.T) (*linkedin.Provider, *linkedinfake.Server) {
	t.Helper()
	fake := linkedinfake.New()
	t.Cleanup(fake.Close)
	cfg := fake.ProviderConfig()
	cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	cfg.Pages = true
	p, err := linkedin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, fake
}

func TestPagesAreDeclaredOnlyWhenEnabled(t *testing.T) {
	off, _ := setup(t, time.Now())
	on, _ := setupPages(t)
	for _, tc := range []struct {
		p     *linkedin.Provider
		pages bool
		scope string
	}{
		{off, false, "openid profile email w_member_social"},
		{on, true, "openid profile email w_member_social w_organization_social rw_organization_admin"},
	} {
		if got := tc.p.Connect().Pages != nil; got != tc.pages {
			t.Errorf("Connect().Pages set = %v, want %v", got, tc.pages)
		}
		u, err := url.Parse(mustAuthURL(t, tc.p, "s", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Query().Get("scope"); got != tc.scope {
			t.Errorf("scope = %q, want %q", got, tc.scope)
		}
	}
}

func TestPages(t *testing.T) {
	orgs := map[string]linkedinfake.Organization{
		"1001": {LocalizedName: "Acme", VanityName: "acme"},
		"1002": {LocalizedName: "Acme Labs", VanityName: "acme-labs"},
		"1003": {LocalizedName: "Acme Ads", VanityName: "acme-ads"},
		"1004": {LocalizedName: "Watched", VanityName: "watched"},
		"1005": {LocalizedName: "Requested", VanityName: "requested"},
	}
	const me = "kfW51gr4Ja"
	acls := []linkedinfake.ACL{
		{Sub: me, OrganizationID: "1001", Role: "ADMINISTRATOR"},
		{Sub: me, OrganizationID: "1001", Role: "CONTENT_ADMINISTRATOR"}, // a second posting role on one page: listed once
		{Sub: me, OrganizationID: "1002", Role: "CONTENT_ADMINISTRATOR"},
		{Sub: me, OrganizationID: "1003", Role: "DIRECT_SPONSORED_CONTENT_POSTER"},
		{Sub: me, OrganizationID: "1004", Role: "ANALYST"},                           // no posting role
		{Sub: me, OrganizationID: "1005", Role: "ADMINISTRATOR", State: "REQUESTED"}, // not approved
		{Sub: "someone-else", OrganizationID: "1004", Role: "ADMINISTRATOR"},
	}
	want := []providers.Page{
		{PlatformUserID: "urn:li:organization:1001", DisplayName: "Acme", Handle: "acme"},
		{PlatformUserID: "urn:li:organization:1002", DisplayName: "Acme Labs", Handle: "acme-labs"},
		{PlatformUserID: "urn:li:organization:1003", DisplayName: "Acme Ads", Handle: "acme-ads"},
	}
	for _, key := range []string{"organization", "organizationTarget", "organizationalTarget"} {
		t.Run(key, func(t *testing.T) {
			p, fake := setupPages(t)
			fake.Configure(func(s *linkedinfake.Server) {
				s.ACLs, s.Organizations, s.ACLOrganizationKey = acls, orgs, key
			})
			got, err := p.Pages(context.Background(), providers.Account{AccessToken: fake.IssueAccessToken(pageScopes...)})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("pages = %+v\nwant    %+v", got, want)
			}
			for _, r := range fake.Requests() {
				if r.Header.Get("LinkedIn-Version") == "" || r.Header.Get("X-Restli-Protocol-Version") != "2.0.0" {
					t.Errorf("%s without the versioned headers", r.URL.Path)
				}
			}
		})
	}
}

func TestPagesNotGranted(t *testing.T) {
	p, fake := setupPages(t)
	fake.Configure(func(s *linkedinfake.Server) {
		s.ACLs = []linkedinfake.ACL{{Sub: s.Sub, OrganizationID: "1001", Role: "ADMINISTRATOR"}}
		s.Organizations["1001"] = linkedinfake.Organization{LocalizedName: "Acme"}
	})
	// A member who connected before pages were enabled has only the
	// member scopes: LinkedIn answers 403, which is "no pages".
	got, err := p.Pages(context.Background(), providers.Account{AccessToken: fake.IssueAccessToken()})
	if !errors.Is(err, providers.ErrPagesNotGranted) || got != nil {
		t.Fatalf("Pages = %v, %v; want ErrPagesNotGranted", got, err)
	}
	// A refused token is the token's failure, not "no pages".
	tok := fake.IssueAccessToken(pageScopes...)
	fake.RevokeAccessToken(tok)
	if _, err := p.Pages(context.Background(), providers.Account{AccessToken: tok}); providers.KindOf(err) != providers.KindAuth || errors.Is(err, providers.ErrPagesNotGranted) {
		t.Errorf("Pages with a revoked token: %v, want KindAuth", err)
	}
}

// More ACLs than one call returns: every page is read.
func TestPagesFollowsPaging(t *testing.T) {
	p, fake := setupPages(t)
	const n = 230
	fake.Configure(func(s *linkedinfake.Server) {
		for i := range n {
			id := strconv.Itoa(5000 + i)
			s.ACLs = append(s.ACLs, linkedinfake.ACL{Sub: s.Sub, OrganizationID: id, Role: "ADMINISTRATOR"})
			s.Organizations[id] = linkedinfake.Organization{LocalizedName: "Page " + id}
		}
	})
	got, err := p.Pages(context.Background(), providers.Account{AccessToken: fake.IssueAccessToken(pageScopes...)})
	if err != nil || len(got) != n || got[n-1].PlatformUserID != fmt.Sprintf("urn:li:organization:%d", 5000+n-1) {
		t.Fatalf("Pages = %d pages, %v; want %d", len(got), err, n)
	}
}

// Posting as a page: with w_organization_social and a posting role only
// (contracts §1.7, §1.8); otherwise 403 ACCESS_DENIED, a KindAuth refusal.
func TestPublishAsPage(t *testing.T) {
	p, fake := setupPages(t)
	fake.Configure(func(s *linkedinfake.Server) {
		s.ACLs = []linkedinfake.ACL{
			{Sub: s.Sub, OrganizationID: "1001", Role: "CONTENT_ADMINISTRATOR"},
			{Sub: s.Sub, OrganizationID: "1002", Role: "ANALYST"},
			{Sub: "someone-else", OrganizationID: "1003", Role: "ADMINISTRATOR"},
		}
	})
	for i, tc := range []struct {
		name   string
		author string
		scopes []string
		ok     bool
	}{
		{"posting role", "urn:li:organization:1001", pageScopes, true},
		{"posting role without w_organization_social", "urn:li:organization:1001", linkedinfake.MemberScopes, false},
		{"analyst", "urn:li:organization:1002", pageScopes, false},
		{"another member's page", "urn:li:organization:1003", pageScopes, false},
		{"the member", "urn:li:person:" + fake.Sub, pageScopes, true},
		{"another member", "urn:li:person:someone-else", pageScopes, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := providers.Account{PlatformUserID: tc.author, AccessToken: fake.IssueAccessToken(tc.scopes...)}
			text := fmt.Sprintf("as a page %d", i)
			_, err := p.Publish(context.Background(), a, providers.Payload{Text: text})
			if tc.ok != (err == nil) {
				t.Fatalf("Publish as %s: %v, want ok %v", tc.author, err, tc.ok)
			}
			var pe *providers.Error
			if !tc.ok && (!errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Status != 403 || pe.Code != "ACCESS_DENIED") {
				t.Errorf("refusal %#v, want 403 ACCESS_DENIED of KindAuth", err)
			}
			held := 0
			for _, lp := range fake.Posts() {
				if lp.Author == tc.author && strings.Contains(lp.Commentary, text) {
					held++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tc.ok]; held != want {
				t.Errorf("LinkedIn holds %d posts by %s, want %d", held, tc.author, want)
			}
		})
	}
}

// The contract's rows hold for a page account too: the member's token,
// the organization as the author.
func TestConformanceAsPage(t *testing.T) {
	p, fake := setupPages(t)
	n := 0
	providertest.Run(t, fakeHarness(p, fake, func(*testing.T) providers.Account {
		n++
		id := strconv.Itoa(7000 + n)
		fake.Configure(func(s *linkedinfake.Server) {
			s.ACLs = append(s.ACLs, linkedinfake.ACL{Sub: s.Sub, OrganizationID: id, Role: "ADMINISTRATOR"})
		})
		return providers.Account{PlatformUserID: linkedin.OrganizationURN(id), AccessToken: fake.IssueAccessToken(pageScopes...)}
	}))
}
