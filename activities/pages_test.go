package activities_test

import (
	"context"
	"testing"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
)

// addPage lets the world's member administer page 1001 and adds it as an
// account of the member's organization.
func (w *world) addPage(t *testing.T) *connections.Account {
	t.Helper()
	w.fake.Configure(func(s *linkedinfake.Server) {
		s.ACLs = []linkedinfake.ACL{{Sub: s.Sub, OrganizationID: "1001", Role: "ADMINISTRATOR"}}
		s.Organizations["1001"] = linkedinfake.Organization{LocalizedName: "Acme", VanityName: "acme"}
	})
	added, err := w.conns.AddPages(context.Background(), w.account.OrganizationID, w.account.ID, []string{"urn:li:organization:1001"})
	if err != nil || len(added) != 1 {
		t.Fatalf("AddPages = %v, %v", added, err)
	}
	return &added[0]
}

func (w *world) statusOf(t *testing.T, id string) connections.Status {
	t.Helper()
	a, err := w.store.Accounts().GetByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Status
}

// A post to a page account goes out as the organization, with the
// member's token.
func TestPublishToAPage(t *testing.T) {
	w := newWorld(t)
	page := w.addPage(t)
	p := w.postTo(t, "Hello from Acme", posts.StatusPublishing, page)
	out, err := w.publishTo(t, p, page.ID)
	if err != nil || out.Status != "published" {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	held := w.fake.Posts()
	if len(held) != 1 || held[0].Author != "urn:li:organization:1001" || held[0].URN != out.PlatformPostID {
		t.Fatalf("LinkedIn holds %+v; want one post by urn:li:organization:1001", held)
	}
}

// The network's refusals through a page: the member's refused refresh or
// token expires the member and its pages; the page's own 403 (the member
// lost the role) expires the page alone.
func TestPageRefusals(t *testing.T) {
	tests := []struct {
		name             string
		prepare          func(t *testing.T, w *world)
		code             string
		member, pageWant connections.Status
	}{
		{
			name: "the member's refresh is refused",
			prepare: func(t *testing.T, w *world) {
				// Reconnected with a refresh token, which LinkedIn
				// then refuses: invalid_grant.
				w.fake.Configure(func(s *linkedinfake.Server) { s.IssueRefreshTokens = true })
				w.tw.MustConnectLinkedIn(t, w.account.OrganizationID, "user-1")
				expireStoredToken(t, w)
				w.fake.RevokeAllRefreshTokens()
			},
			code: "invalid_grant", member: connections.StatusExpired, pageWant: connections.StatusExpired,
		},
		{
			name:    "the member's token is revoked",
			prepare: func(_ *testing.T, w *world) { revokeStoredToken(w) },
			code:    "REVOKED_ACCESS_TOKEN", member: connections.StatusExpired, pageWant: connections.StatusExpired,
		},
		{
			name: "the member lost the page role",
			prepare: func(_ *testing.T, w *world) {
				w.fake.Configure(func(s *linkedinfake.Server) { s.ACLs = nil })
			},
			code: "ACCESS_DENIED", member: connections.StatusActive, pageWant: connections.StatusExpired,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			page := w.addPage(t)
			p := w.postTo(t, "Hello from Acme", posts.StatusPublishing, page)
			tt.prepare(t, w)
			out, err := w.publishTo(t, p, page.ID)
			if err != nil || out.Status != "failed" || out.ErrorCode != tt.code {
				t.Fatalf("outcome %+v, %v; want failed %s", out, err, tt.code)
			}
			if m, pg := w.statusOf(t, w.account.ID), w.statusOf(t, page.ID); m != tt.member || pg != tt.pageWant {
				t.Errorf("member %s, page %s; want %s, %s", m, pg, tt.member, tt.pageWant)
			}
			if n := len(w.fake.Posts()); n != 0 {
				t.Errorf("LinkedIn got %d posts", n)
			}
		})
	}
}
