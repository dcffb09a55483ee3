package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

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

// FinishUnpublish, the run's last step, releases the post's unpublish
// claim if it names the run (so the post may be published again or
// deleted at once), and no other claim: one a later request made, or one
// not yet named, stays.
func TestFinishUnpublishReleasesTheRunsClaim(t *testing.T) {
	const thisRun = "default-test-run-id" // the SDK's test environment's
	tests := []struct {
		name     string
		claimRun string // "" : the claim names no run
		wantKept bool
	}{
		{name: "this run's", claimRun: thisRun},
		{name: "another run's", claimRun: "run-2", wantKept: true},
		{name: "not named yet", wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			p := w.post(t, "Soon gone", posts.StatusPublished)
			store := w.store.Posts()
			if err := store.ClaimUnpublish(ctx, p.ID, posts.UnpublishClaim{Token: "tok", At: time.Now()}, ""); err != nil {
				t.Fatal(err)
			}
			if tt.claimRun != "" {
				if err := store.NameUnpublishRun(ctx, p.ID, "tok", tt.claimRun); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.env.ExecuteActivity(workflows.FinishUnpublishActivity, workflows.FinishUnpublishInput{PostID: p.ID}); err != nil {
				t.Fatalf("FinishUnpublish: %v", err)
			}
			// A claim held answers a publish again's write with the claim.
			_, err := store.SetStatusIf(ctx, p, posts.StatusQueued, "", posts.StatusPublished)
			var held *posts.ClaimedError
			if kept := errors.As(err, &held); kept != tt.wantKept {
				t.Fatalf("after FinishUnpublish, a publish again's write: %v; want the claim kept %v", err, tt.wantKept)
			}
			if !tt.wantKept && err != nil {
				t.Fatal(err)
			}
		})
	}
}
