package connections_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/linkedin"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
)

// pagesWorld is a member connected with pages enabled, who administers
// page 1001 (Acme) and is only an analyst of 1002.
func pagesWorld(t *testing.T) (*env, *connections.Account) {
	t.Helper()
	e := setupWith(t, true)
	e.fake.Configure(func(s *linkedinfake.Server) {
		s.IssueRefreshTokens = true
		s.ACLs = []linkedinfake.ACL{
			{Sub: s.Sub, OrganizationID: "1001", Role: "ADMINISTRATOR"},
			{Sub: s.Sub, OrganizationID: "1002", Role: "ANALYST"},
		}
		s.Organizations["1001"] = linkedinfake.Organization{LocalizedName: "Acme", VanityName: "acme"}
		s.Organizations["1002"] = linkedinfake.Organization{LocalizedName: "Acme Labs", VanityName: "acme-labs"}
	})
	return e, e.connect(t, "org-1")
}

// addPage adds page 1001 from member and returns its account.
func addPage(t *testing.T, e *env, member *connections.Account) *connections.Account {
	t.Helper()
	added, err := e.svc.AddPages(context.Background(), member.OrganizationID, member.ID, []string{"urn:li:organization:1001"})
	if err != nil || len(added) != 1 {
		t.Fatalf("AddPages = %v, %v", added, err)
	}
	return &added[0]
}

func status(t *testing.T, e *env, id string) connections.Status {
	t.Helper()
	a, err := e.store.Accounts().GetByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Status
}

func TestAddPages(t *testing.T) {
	ctx := context.Background()
	e, member := pagesWorld(t)

	list, err := e.svc.ListPages(ctx, "org-1", member.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].PlatformUserID != "urn:li:organization:1001" || list[0].DisplayName != "Acme" || list[0].Handle != "acme" || list[0].Added {
		t.Fatalf("pages = %+v; want Acme alone, not added", list)
	}

	// Only pages the member may post as now.
	for _, urn := range []string{"urn:li:organization:1002", "urn:li:organization:9999", "urn:li:person:someone"} {
		_, err := e.svc.AddPages(ctx, "org-1", member.ID, []string{"urn:li:organization:1001", urn})
		var na *connections.ErrNotAdministered
		if !errors.As(err, &na) || na.Page != urn {
			t.Errorf("adding %s: %v, want ErrNotAdministered naming it", urn, err)
		}
	}
	if all, _ := e.svc.List(ctx, "org-1"); len(all) != 1 {
		t.Fatalf("a refused add added %d accounts", len(all)-1)
	}

	page := addPage(t, e, member)
	if page.OrganizationID != "org-1" || page.Platform != "linkedin" || page.PlatformUserID != "urn:li:organization:1001" ||
		page.DisplayName != "Acme" || page.Handle != "acme" || page.TokensFrom != member.ID || page.Status != connections.StatusActive {
		t.Errorf("page account = %+v", page)
	}
	var raw bson.M
	if err := e.store.DB.Collection("socialAccounts").FindOne(ctx, bson.D{{Key: "platformUserId", Value: page.PlatformUserID}}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if raw["accessToken"] != "" || raw["refreshToken"] != nil || raw["tokensFrom"] != member.ID {
		t.Errorf("the page stores tokens of its own or no member: %v", raw)
	}

	list, _ = e.svc.ListPages(ctx, "org-1", member.ID)
	if len(list) != 1 || !list[0].Added || list[0].AccountID != page.ID {
		t.Errorf("after adding: %+v", list)
	}

	// Another organization's connection is not found.
	if _, err := e.svc.ListPages(ctx, "org-2", member.ID); !errors.Is(err, connections.ErrNotFound) {
		t.Errorf("ListPages from another organization: %v", err)
	}
	if _, err := e.svc.AddPages(ctx, "org-2", member.ID, []string{page.PlatformUserID}); !errors.Is(err, connections.ErrNotFound) {
		t.Errorf("AddPages from another organization: %v", err)
	}
	// A page lists no pages.
	var np *connections.ErrNoPages
	if _, err := e.svc.ListPages(ctx, "org-1", page.ID); !errors.As(err, &np) {
		t.Errorf("ListPages of a page: %v, want ErrNoPages", err)
	}

	// A second member of the organization adds the same page: still one
	// account, now posting with the second member's tokens.
	e.fake.Configure(func(s *linkedinfake.Server) {
		s.Sub = "second-member"
		s.ACLs = append(s.ACLs, linkedinfake.ACL{Sub: "second-member", OrganizationID: "1001", Role: "CONTENT_ADMINISTRATOR"})
	})
	second := e.connect(t, "org-1")
	again := addPage(t, e, second)
	if again.ID != page.ID || again.TokensFrom != second.ID {
		t.Errorf("the page added again: %+v; want account %s with member %s", again, page.ID, second.ID)
	}
	if all, _ := e.svc.List(ctx, "org-1"); len(all) != 3 {
		t.Errorf("%d accounts, want 2 members and 1 page", len(all))
	}
}

func TestNoPages(t *testing.T) {
	ctx := context.Background()
	t.Run("pages not enabled", func(t *testing.T) {
		e := setup(t)
		a := e.connect(t, "org-1")
		var np *connections.ErrNoPages
		if _, err := e.svc.ListPages(ctx, "org-1", a.ID); !errors.As(err, &np) {
			t.Errorf("ListPages: %v, want ErrNoPages", err)
		}
	})
	t.Run("scopes not granted", func(t *testing.T) {
		// Connected while pages were off: only the member scopes.
		e := setupWith(t, true)
		cfg := e.fake.ProviderConfig()
		off, err := linkedin.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		reg, _ := providers.NewRegistry(off)
		before := connections.NewService(e.store.Accounts(), e.states, reg, e.cipher, slog.New(slog.NewTextHandler(io.Discard, nil)))
		u, _, err := before.ConnectURL(ctx, "linkedin", "", "org-1", "user-1", e.browser)
		if err != nil {
			t.Fatal(err)
		}
		q, err := linkedinfake.Authorize(u)
		if err != nil {
			t.Fatal(err)
		}
		member, err := before.Callback(ctx, "linkedin", q, e.browser)
		if err != nil {
			t.Fatal(err)
		}
		e.fake.Configure(func(s *linkedinfake.Server) {
			s.ACLs = []linkedinfake.ACL{{Sub: s.Sub, OrganizationID: "1001", Role: "ADMINISTRATOR"}}
		})
		if _, err := e.svc.ListPages(ctx, "org-1", member.ID); !errors.Is(err, providers.ErrPagesNotGranted) {
			t.Errorf("ListPages: %v, want ErrPagesNotGranted", err)
		}
		var na *connections.ErrNotAdministered
		if _, err := e.svc.AddPages(ctx, "org-1", member.ID, []string{"urn:li:organization:1001"}); !errors.As(err, &na) || !na.NotGranted {
			t.Errorf("AddPages: %v, want ErrNotAdministered, not granted", err)
		}
		if status(t, e, member.ID) != connections.StatusActive {
			t.Error("a member without the page scopes was marked expired")
		}
	})
}

func TestPageUsesTheMembersToken(t *testing.T) {
	ctx := context.Background()
	e, member := pagesWorld(t)
	page := addPage(t, e, member)

	tok, acc, err := e.svc.ValidAccessToken(ctx, page.ID)
	if err != nil {
		t.Fatal(err)
	}
	memberTok, _, _ := e.svc.ValidAccessToken(ctx, member.ID)
	if tok != memberTok || acc.ID != page.ID || acc.Provider(tok).PlatformUserID != "urn:li:organization:1001" {
		t.Fatalf("page token is the member's: %v; account %s as %s", tok == memberTok, acc.ID, acc.PlatformUserID)
	}

	// Near expiry, callers through the page and through the member share
	// one refresh: the member's, under the member's lease.
	e.clock.jumpTo(member.TokenExpiresAt.Add(-4 * time.Minute))
	var wg sync.WaitGroup
	got := make([]string, 10)
	errs := make([]error, 10)
	for i := range got {
		id := page.ID
		if i%2 == 1 {
			id = member.ID
		}
		wg.Go(func() { got[i], _, errs[i] = e.svc.ValidAccessToken(ctx, id) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] == tok || got[i] != got[0] {
			t.Fatalf("caller %d: %v; a stale or different token", i, errs[i])
		}
	}
	if n := refreshes(e.fake); n != 1 {
		t.Errorf("%d refreshes for the member and its page, want 1", n)
	}
	// The refreshed token still posts as the page: LinkedIn keeps the
	// scopes a refresh token was granted with.
	li, _ := linkedin.New(e.fake.ProviderConfig())
	if _, err := li.Publish(ctx, providers.Account{PlatformUserID: page.PlatformUserID, AccessToken: got[0]}, providers.Payload{Text: "as Acme"}); err != nil {
		t.Errorf("publish as the page with the refreshed token: %v", err)
	}
}

func TestMemberExpiredTakesItsPages(t *testing.T) {
	ctx := context.Background()
	e, member := pagesWorld(t)
	page := addPage(t, e, member)
	e.fake.RevokeAllRefreshTokens()
	e.clock.jumpTo(member.TokenExpiresAt.Add(time.Hour))

	// The refresh is refused through the page: the member is expired, and
	// with it the page.
	_, acc, err := e.svc.ValidAccessToken(ctx, page.ID)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Code != "invalid_grant" || acc == nil || acc.ID != page.ID || acc.Status != connections.StatusExpired {
		t.Fatalf("ValidAccessToken(page) = %v, %+v; want invalid_grant and the page expired", err, acc)
	}
	if status(t, e, member.ID) != connections.StatusExpired || status(t, e, page.ID) != connections.StatusExpired {
		t.Errorf("member %s, page %s; want both expired", status(t, e, member.ID), status(t, e, page.ID))
	}

	// Reconnecting the member brings its pages back.
	e.clock.jumpTo(time.Now())
	e.connect(t, "org-1")
	if status(t, e, member.ID) != connections.StatusActive || status(t, e, page.ID) != connections.StatusActive {
		t.Errorf("after reconnecting: member %s, page %s; want both active", status(t, e, member.ID), status(t, e, page.ID))
	}
	if _, _, err := e.svc.ValidAccessToken(ctx, page.ID); err != nil {
		t.Errorf("page after reconnecting: %v", err)
	}
}

func TestExpire(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name                string
		expire              string // "page" or "member"
		status              int
		memberSt, pageSt    connections.Status
		pageTokenAfterwards bool
	}{
		{"a page's 403 is the page's", "page", 403, connections.StatusActive, connections.StatusExpired, false},
		{"a page's 401 is the member's token", "page", 401, connections.StatusExpired, connections.StatusExpired, false},
		{"a member's refusal takes its pages", "member", 403, connections.StatusExpired, connections.StatusExpired, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, member := pagesWorld(t)
			page := addPage(t, e, member)
			id := page.ID
			if tc.expire == "member" {
				id = member.ID
			}
			if err := e.svc.Expire(ctx, id, &providers.Error{Kind: providers.KindAuth, Provider: "linkedin", Status: tc.status, Code: "X"}); err != nil {
				t.Fatal(err)
			}
			if m, p := status(t, e, member.ID), status(t, e, page.ID); m != tc.memberSt || p != tc.pageSt {
				t.Errorf("member %s, page %s; want %s, %s", m, p, tc.memberSt, tc.pageSt)
			}
			// A page that is not active gives no token, whatever its member.
			if _, _, err := e.svc.ValidAccessToken(ctx, page.ID); providers.KindOf(err) != providers.KindAuth {
				t.Errorf("an expired page still gives tokens: %v", err)
			}
		})
	}
}

func TestDisconnectPages(t *testing.T) {
	ctx := context.Background()
	t.Run("a page alone, revoking nothing", func(t *testing.T) {
		e, member := pagesWorld(t)
		page := addPage(t, e, member)
		tok, _, _ := e.svc.ValidAccessToken(ctx, member.ID)
		if err := e.svc.Disconnect(ctx, "org-1", page.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Accounts().GetByID(ctx, page.ID); !errors.Is(err, connections.ErrNotFound) {
			t.Errorf("page still stored: %v", err)
		}
		li, _ := linkedin.New(e.fake.ProviderConfig())
		if _, err := li.Publish(ctx, member.Provider(tok), providers.Payload{Text: "still here"}); err != nil {
			t.Errorf("disconnecting a page revoked the member's token: %v", err)
		}
	})
	t.Run("the member takes its pages", func(t *testing.T) {
		e, member := pagesWorld(t)
		page := addPage(t, e, member)
		if err := e.svc.Disconnect(ctx, "org-1", member.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Accounts().GetByID(ctx, page.ID); !errors.Is(err, connections.ErrNotFound) {
			t.Errorf("the page outlived its member: %v", err)
		}
	})
}
