package connections_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/webhooks/webhookstest"
)

// An account the network refuses is announced once, when it turns
// expired, with the network's code and without its tokens.
func TestExpireAnnouncesTheAccount(t *testing.T) {
	ctx := context.Background()
	e, member := pagesWorld(t)
	sink := &webhookstest.Recorder{}
	svc := e.svc.WithEvents(sink)
	for range 2 {
		if err := svc.Expire(ctx, member.ID, &providers.Error{Kind: providers.KindAuth, Provider: "linkedin", Status: 401,
			Code: "REVOKED_ACCESS_TOKEN", Message: "the token was revoked"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(sink.Events()) != 1 {
		t.Fatalf("%d events, want 1 (the second expire found it expired)", len(sink.Events()))
	}
	ev := sink.Events()[0]
	var body struct {
		Type string `json:"type"`
		Data struct {
			Account map[string]any `json:"account"`
			Code    string         `json:"code"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ev.Body, &body); err != nil {
		t.Fatal(err)
	}
	if ev.Type != webhooks.AccountExpired || ev.OrganizationID != member.OrganizationID || body.Data.Account["id"] != member.ID ||
		body.Data.Account["status"] != "expired" || body.Data.Code != "REVOKED_ACCESS_TOKEN" {
		t.Errorf("event %s: %s", ev.Type, ev.Body)
	}
	for _, k := range []string{"accessToken", "AccessToken", "refreshToken", "credential"} {
		if _, ok := body.Data.Account[k]; ok {
			t.Errorf("the event carries %s", k)
		}
	}
}

// The accounts that must be reconnected within the window are announced,
// each with its deadline, once: later scans send nothing (the account
// keeps what it was announced for) until a reconnect makes a new
// deadline; a scan whose event could not be stored leaves it for the
// next. Accounts that refresh by themselves, or later, or not active, or
// pages (their member speaks for them), are not announced.
func TestAnnounceExpiring(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	now := e.clock.now()
	day := 24 * time.Hour
	at := func(d time.Duration) time.Time { return now.Add(d).UTC().Truncate(time.Millisecond) }
	add := func(uid string, status connections.Status, refresh string, expires, refreshExpires time.Time, tokensFrom string) *connections.Account {
		t.Helper()
		a, err := e.store.Accounts().Upsert(ctx, &connections.Account{OrganizationID: "org-1", Platform: "linkedin", PlatformUserID: uid,
			DisplayName: uid, AccessToken: "sealed", RefreshToken: refresh, TokenExpiresAt: expires, RefreshTokenExpiresAt: refreshExpires,
			TokensFrom: tokensFrom, Status: status, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	soon := add("urn:li:person:soon", connections.StatusActive, "", at(3*day), time.Time{}, "")
	refreshSoon := add("urn:li:person:refresh-soon", connections.StatusActive, "sealed-refresh", at(time.Hour), at(2*day), "")
	add("urn:li:person:later", connections.StatusActive, "", at(30*day), time.Time{}, "")
	add("urn:li:person:refreshes", connections.StatusActive, "sealed-refresh", at(time.Hour), at(300*day), "")
	add("urn:li:person:expired", connections.StatusExpired, "", at(3*day), time.Time{}, "")
	add("urn:li:person:past", connections.StatusActive, "", at(-time.Hour), time.Time{}, "")
	add("urn:li:organization:page", connections.StatusActive, "", at(3*day), time.Time{}, soon.ID)

	sink := &webhookstest.Recorder{}
	svc := e.svc.WithEvents(sink)
	sink.SetDown(true)
	if n, err := svc.AnnounceExpiring(ctx, e.store.Accounts(), 7*day); !errors.Is(err, webhookstest.ErrDown) || n != 0 {
		t.Fatalf("announced %d, %v with the event store down; want 0, %v", n, err, webhookstest.ErrDown)
	}
	sink.SetDown(false)
	for i, want := range []int{2, 0, 0} {
		if n, err := svc.AnnounceExpiring(ctx, e.store.Accounts(), 7*day); err != nil || n != want {
			t.Fatalf("scan %d announced %d, %v; want %d", i, n, err, want)
		}
	}
	if len(sink.Events()) != 2 || sink.Events()[0].ID == sink.Events()[1].ID {
		t.Fatalf("events %v: want two", sink.Events())
	}
	want := map[string]time.Time{soon.ID: at(3 * day), refreshSoon.ID: at(2 * day)}
	for _, ev := range sink.Events()[:2] {
		var body struct {
			Data struct {
				Account     map[string]any `json:"account"`
				ReconnectBy time.Time      `json:"reconnectBy"`
			} `json:"data"`
		}
		if err := json.Unmarshal(ev.Body, &body); err != nil {
			t.Fatal(err)
		}
		id, _ := body.Data.Account["id"].(string)
		if ev.Type != webhooks.AccountExpiring || !body.Data.ReconnectBy.Equal(want[id]) {
			t.Errorf("event %s for %s: reconnect by %v, want %v", ev.Type, id, body.Data.ReconnectBy, want[id])
		}
		delete(want, id)
	}
	if len(want) != 0 {
		t.Errorf("not announced: %v", want)
	}

	// Reconnected with a token that ends in 5 days: a new deadline, a new
	// event, once.
	add("urn:li:person:soon", connections.StatusActive, "", at(5*day), time.Time{}, "")
	for i, want := range []int{1, 0} {
		if n, err := svc.AnnounceExpiring(ctx, e.store.Accounts(), 7*day); err != nil || n != want {
			t.Fatalf("scan %d after the reconnect announced %d, %v; want %d", i, n, err, want)
		}
	}
	if evs := sink.Events(); len(evs) != 3 || evs[2].ID == evs[0].ID || evs[2].ID == evs[1].ID {
		t.Fatalf("events %v: want a third, new one", evs)
	}
}

// wanter is a recording sink that says whether anyone wants events.
type wanter struct {
	*webhookstest.Recorder
	want bool
}

func (w *wanter) Wants(context.Context, string, string) (bool, error) { return w.want, nil }

// An organization with no endpoint wanting account.expiring is not marked
// announced: an endpoint added later in the window still hears of the
// deadline.
func TestAnnounceExpiringWaitsForAListener(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	now := e.clock.now()
	expires := now.Add(3 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	if _, err := e.store.Accounts().Upsert(ctx, &connections.Account{OrganizationID: "org-1", Platform: "linkedin", PlatformUserID: "urn:li:person:soon",
		DisplayName: "soon", AccessToken: "sealed", TokenExpiresAt: expires, Status: connections.StatusActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	sink := &wanter{Recorder: &webhookstest.Recorder{}}
	svc := e.svc.WithEvents(sink)
	for i, tt := range []struct {
		want      bool
		announced int
	}{{false, 0}, {false, 0}, {true, 1}, {true, 0}} {
		sink.want = tt.want
		if n, err := svc.AnnounceExpiring(ctx, e.store.Accounts(), 7*24*time.Hour); err != nil || n != tt.announced {
			t.Fatalf("scan %d (wanted %v): announced %d, %v; want %d", i, tt.want, n, err, tt.announced)
		}
	}
	if evs := sink.Events(); len(evs) != 1 {
		t.Fatalf("events %v, want one, once an endpoint wanted it", evs)
	}
}
