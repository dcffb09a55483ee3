package activities_test

import (
	"context"
	"testing"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
	"github.com/postflow/postflow/workflows"
)

// An unpublish from a page expires whom the refusal is about, as a
// publish does (TestPageRefusals): the member's token refused expires the
// member and its pages; a page expired on its own (its 403 earlier: the
// member lost the role) fails that page's unpublish and leaves the member
// active: a token the token service refused is no network's answer about
// the member.
func TestUnpublishFromAPageExpiresWhomTheRefusalIsAbout(t *testing.T) {
	tests := []struct {
		name             string
		prepare          func(t *testing.T, w *world, page *connections.Account)
		code             string
		member, pageWant connections.Status
	}{
		{
			name:    "the member's token is revoked",
			prepare: func(_ *testing.T, w *world, _ *connections.Account) { revokeStoredToken(w) },
			code:    "REVOKED_ACCESS_TOKEN", member: connections.StatusExpired, pageWant: connections.StatusExpired,
		},
		{
			name: "the page expired on its own",
			prepare: func(t *testing.T, w *world, page *connections.Account) {
				if err := w.store.Accounts().SetStatus(context.Background(), page.ID, connections.StatusExpired); err != nil {
					t.Fatal(err)
				}
			},
			code: "ACCOUNT_EXPIRED", member: connections.StatusActive, pageWant: connections.StatusExpired,
		},
		{
			name: "the member lost the page role",
			prepare: func(_ *testing.T, w *world, _ *connections.Account) {
				w.fake.Configure(func(s *linkedinfake.Server) { s.ACLs = nil })
			},
			code: "ACCESS_DENIED", member: connections.StatusActive, pageWant: connections.StatusExpired,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			page := w.addPage(t)
			p := w.postTo(t, "Hello from Acme, soon gone", posts.StatusPublishing, page)
			if out, err := w.publishTo(t, p, page.ID); err != nil || out.Status != "published" {
				t.Fatalf("publish: %+v, %v", out, err)
			}
			tt.prepare(t, w, page)
			v, err := w.env.ExecuteActivity(workflows.UnpublishFromAccountActivity, workflows.UnpublishAccountInput{PostID: p.ID, AccountID: page.ID})
			if err != nil {
				t.Fatalf("UnpublishFromAccount: %v", err)
			}
			var out workflows.UnpublishOutcome
			if err := v.Get(&out); err != nil {
				t.Fatal(err)
			}
			if out.Status != "failed" || out.ErrorCode != tt.code {
				t.Errorf("outcome %+v; want failed %s", out, tt.code)
			}
			if m, pg := w.statusOf(t, w.account.ID), w.statusOf(t, page.ID); m != tt.member || pg != tt.pageWant {
				t.Errorf("member %s, page %s; want %s, %s", m, pg, tt.member, tt.pageWant)
			}
			if n := len(w.fake.Posts()); n != 1 {
				t.Errorf("LinkedIn holds %d posts; want the page's still there", n)
			}
		})
	}
}
