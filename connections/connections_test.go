package connections_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/oauthstate"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/linkedin"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// clock is the time of the test's world: PostFlow and the provider read it.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// jumpTo moves the clock to t.
func (c *clock) jumpTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = time.Until(t)
}

type env struct {
	clock  *clock
	svc    *connections.Service
	fake   *linkedinfake.Server
	store  *mongostore.Store
	states *oauthstate.Store
	cipher *tokencipher.Cipher
	// browser is the key of the test's browser, as its cookie holds it.
	browser string
}

func setup(t *testing.T) *env { t.Helper(); return setupWith(t, false) }

// setupWith is setup with LinkedIn company pages enabled or not.
func setupWith(t *testing.T, pages bool) *env {
	t.Helper()
	clk := &clock{}
	w := testworld.New(t, testworld.Options{Now: clk.now, LinkedInPages: pages})
	browser, err := connections.NewBrowserKey()
	if err != nil {
		t.Fatal(err)
	}
	return &env{clock: clk, svc: w.Connections, fake: w.LinkedInFake, store: w.Store, states: w.States, cipher: w.Cipher, browser: browser}
}

// connect runs connect → authorize page → callback as a browser would and
// returns the callback's query.
func (e *env) authorize(t *testing.T, orgID string) url.Values {
	t.Helper()
	u, _, err := e.svc.ConnectURL(context.Background(), "linkedin", "", orgID, "user-1", e.browser)
	if err != nil {
		t.Fatal(err)
	}
	q, err := linkedinfake.Authorize(u)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func (e *env) connect(t *testing.T, orgID string) *connections.Account {
	t.Helper()
	a, err := e.svc.Callback(context.Background(), "linkedin", e.authorize(t, orgID), e.browser)
	if err != nil {
		t.Fatalf("Callback: %v", err)
	}
	return a
}

func TestConnectStoresOnlyCiphertext(t *testing.T) {
	e := setup(t)
	e.fake.Configure(func(s *linkedinfake.Server) { s.IssueRefreshTokens = true })
	ctx := context.Background()
	a := e.connect(t, "org-1")
	if a.OrganizationID != "org-1" || a.Platform != "linkedin" || a.PlatformUserID != "urn:li:person:"+e.fake.Sub ||
		a.DisplayName != e.fake.Name || a.Status != connections.StatusActive || a.TokenExpiresAt.IsZero() {
		t.Errorf("account = %+v", a)
	}

	token, _, err := e.svc.ValidAccessToken(ctx, a.ID)
	if err != nil || !strings.HasPrefix(token, "AQV") {
		t.Fatalf("ValidAccessToken = %q, %v", token, err)
	}
	var raw bson.M
	if err := e.store.DB.Collection("socialAccounts").FindOne(ctx, bson.D{}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	doc, _ := bson.MarshalExtJSON(raw, false, false)
	if strings.Contains(string(doc), token) || strings.Contains(string(doc), "AQV") || strings.Contains(string(doc), "AQW") {
		t.Errorf("the stored document holds a plaintext token: %s", doc)
	}
	for _, field := range []string{"accessToken", "refreshToken"} {
		if s, _ := raw[field].(string); !strings.HasPrefix(s, "v1.") {
			t.Errorf("%s = %q, want a sealed token", field, s)
		}
	}
}

func TestReconnectUpdatesTheSameAccount(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	e.fake.Configure(func(s *linkedinfake.Server) { s.IssueRefreshTokens = true })
	first := e.connect(t, "org-1")
	var before bson.M
	_ = e.store.DB.Collection("socialAccounts").FindOne(ctx, bson.D{}).Decode(&before)

	// LinkedIn sends no refresh token this time: the stored one stays.
	e.fake.Configure(func(s *linkedinfake.Server) { s.IssueRefreshTokens = false; s.Name = "Ada King" })
	second := e.connect(t, "org-1")
	if second.ID != first.ID || second.DisplayName != "Ada King" {
		t.Errorf("reconnect gave %s %q, want the same account %s renamed", second.ID, second.DisplayName, first.ID)
	}
	var after bson.M
	_ = e.store.DB.Collection("socialAccounts").FindOne(ctx, bson.D{}).Decode(&after)
	if after["refreshToken"] != before["refreshToken"] || after["refreshToken"] == nil {
		t.Error("the reconnect dropped the refresh token LinkedIn gave before")
	}
	if after["accessToken"] == before["accessToken"] {
		t.Error("the reconnect kept the old access token")
	}

	// The same member connected to another organization is another account.
	other := e.connect(t, "org-2")
	if other.ID == first.ID {
		t.Error("two organizations share one account")
	}
	if list, _ := e.svc.List(ctx, "org-1"); len(list) != 1 {
		t.Errorf("org-1 has %d accounts, want 1", len(list))
	}
}

func TestCallbackErrors(t *testing.T) {
	ctx := context.Background()
	code := func(err error) string {
		var ce *connections.CallbackError
		if errors.As(err, &ce) {
			return ce.Code
		}
		return "no CallbackError: " + errors.Unwrap(err).Error()
	}

	t.Run("replayed state", func(t *testing.T) {
		e := setup(t)
		q := e.authorize(t, "org-1")
		if _, err := e.svc.Callback(ctx, "linkedin", q, e.browser); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Callback(ctx, "linkedin", q, e.browser); code(err) != "invalid_state" {
			t.Errorf("replay: %v", err)
		}
	})
	t.Run("denied consumes the state", func(t *testing.T) {
		e := setup(t)
		e.fake.Configure(func(s *linkedinfake.Server) { s.DenyConsent = true })
		q := e.authorize(t, "org-1")
		if _, err := e.svc.Callback(ctx, "linkedin", q, e.browser); code(err) != "denied" {
			t.Errorf("denied: %v", err)
		}
		q.Set("code", "forged")
		q.Del("error")
		if _, err := e.svc.Callback(ctx, "linkedin", q, e.browser); code(err) != "invalid_state" {
			t.Errorf("state reused after a denial: %v", err)
		}
	})
	t.Run("unknown, junk and missing states", func(t *testing.T) {
		e := setup(t)
		fresh, _ := oauthstate.NewState(time.Now())
		for _, st := range []string{fresh, "junk", "", strings.Repeat("A", 5000)} {
			if _, err := e.svc.Callback(ctx, "linkedin", url.Values{"state": {st}, "code": {"x"}}, e.browser); code(err) != "invalid_state" {
				t.Errorf("state %.20q: %v", st, err)
			}
		}
	})
	t.Run("expired state", func(t *testing.T) {
		e := setup(t)
		old, _ := oauthstate.NewState(time.Now().Add(-11 * time.Minute))
		if _, err := e.svc.Callback(ctx, "linkedin", url.Values{"state": {old}, "code": {"x"}}, e.browser); code(err) != "expired_state" {
			t.Errorf("expired: %v", err)
		}
	})
	t.Run("state of another provider", func(t *testing.T) {
		e := setup(t)
		st, err := e.states.Create(ctx, oauthstate.State{OrganizationID: "o", UserID: "u", ProviderID: "x", BrowserHash: connections.HashBrowserKey(e.browser)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Callback(ctx, "linkedin", url.Values{"state": {st}, "code": {"x"}}, e.browser); code(err) != "invalid_state" {
			t.Errorf("cross-provider state: %v", err)
		}
	})
	t.Run("another browser connects nothing and leaves the state", func(t *testing.T) {
		e := setup(t)
		q := e.authorize(t, "org-b")
		other, _ := connections.NewBrowserKey()
		for name, key := range map[string]string{"no cookie": "", "another browser's cookie": other} {
			if _, err := e.svc.Callback(ctx, "linkedin", q, key); code(err) != "other_browser" {
				t.Errorf("%s: %v, want other_browser", name, err)
			}
		}
		if list, _ := e.svc.List(ctx, "org-b"); len(list) != 0 {
			t.Fatalf("another browser connected %d accounts", len(list))
		}
		if _, err := e.svc.Callback(ctx, "linkedin", q, e.browser); err != nil {
			t.Errorf("the browser that started, afterwards: %v", err)
		}
	})
	t.Run("start tickets", func(t *testing.T) {
		e := setup(t)
		if _, err := e.svc.StartTicket(ctx, "myspace", "", "o", "u"); !errors.Is(err, connections.ErrUnknownProvider) {
			t.Errorf("StartTicket for an unknown provider: %v", err)
		}
		ticket, err := e.svc.StartTicket(ctx, "linkedin", "", "org-1", "user-1")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.svc.Start(ctx, "linkedin", ticket, "not a key"); code(err) != "server_error" {
			t.Errorf("Start without a valid browser key: %v", err)
		}
		ticket, _ = e.svc.StartTicket(ctx, "linkedin", "", "org-1", "user-1")
		u, _, err := e.svc.Start(ctx, "linkedin", ticket, e.browser)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.svc.Start(ctx, "linkedin", ticket, e.browser); code(err) != "invalid_state" {
			t.Errorf("a ticket used twice: %v", err)
		}
		q, err := linkedinfake.Authorize(u)
		if err != nil {
			t.Fatal(err)
		}
		other, _ := connections.NewBrowserKey()
		if _, err := e.svc.Callback(ctx, "linkedin", q, other); code(err) != "other_browser" {
			t.Errorf("callback in another browser than the start's: %v", err)
		}
		if a, err := e.svc.Callback(ctx, "linkedin", q, e.browser); err != nil || a.OrganizationID != "org-1" {
			t.Errorf("callback in the start's browser = %+v, %v", a, err)
		}
		foreign, _ := e.states.CreateTicket(ctx, oauthstate.State{OrganizationID: "o", UserID: "u", ProviderID: "x"})
		if _, _, err := e.svc.Start(ctx, "linkedin", foreign, e.browser); code(err) != "invalid_state" {
			t.Errorf("another provider's ticket: %v", err)
		}
		old, _ := oauthstate.NewState(time.Now().Add(-2 * time.Minute))
		if _, _, err := e.svc.Start(ctx, "linkedin", old, e.browser); code(err) != "expired_state" {
			t.Errorf("expired ticket: %v", err)
		}
		cb, err := e.svc.CallbackURL("linkedin")
		if err != nil || cb.String() != e.fake.ProviderConfig().RedirectURI {
			t.Errorf("CallbackURL = %v, %v; want %s", cb, err, e.fake.ProviderConfig().RedirectURI)
		}
	})
	t.Run("exchange refused", func(t *testing.T) {
		e := setup(t)
		q := e.authorize(t, "org-1")
		q.Set("code", "not-the-code")
		if _, err := e.svc.Callback(ctx, "linkedin", q, e.browser); code(err) != "exchange_failed" {
			t.Errorf("bad code: %v", err)
		}
	})
}

func TestValidAccessToken(t *testing.T) {
	ctx := context.Background()
	t.Run("fresh token needs no refresh", func(t *testing.T) {
		e := setup(t)
		e.fake.Configure(func(s *linkedinfake.Server) { s.IssueRefreshTokens = true })
		a := e.connect(t, "org-1")
		tok1, _, err := e.svc.ValidAccessToken(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		tok2, _, _ := e.svc.ValidAccessToken(ctx, a.ID)
		if tok1 != tok2 || refreshes(e.fake) != 0 {
			t.Errorf("a fresh token was refreshed (%d refreshes)", refreshes(e.fake))
		}
	})
	t.Run("refreshes within 5 minutes of expiry, once under concurrency", func(t *testing.T) {
		e := setup(t)
		e.fake.Configure(func(s *linkedinfake.Server) { s.IssueRefreshTokens = true })
		a := e.connect(t, "org-1")
		old, _, _ := e.svc.ValidAccessToken(ctx, a.ID)
		e.clock.jumpTo(a.TokenExpiresAt.Add(-4 * time.Minute))

		var wg sync.WaitGroup
		got := make([]string, 10)
		errs := make([]error, 10)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], _, errs[i] = e.svc.ValidAccessToken(ctx, a.ID)
			}()
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v (refreshes %d, errs %v)", i, errs[i], refreshes(e.fake), errs)
			}
			if got[i] == old || got[i] != got[0] {
				t.Fatalf("caller %d got a different or stale token", i)
			}
		}
		if n := refreshes(e.fake); n != 1 {
			t.Errorf("%d refresh calls for 10 concurrent callers, want 1", n)
		}
		// The fake refuses a spent refresh token, so one call succeeding
		// for all ten proves the token was spent once.
		if tok, _, err := e.svc.ValidAccessToken(ctx, a.ID); err != nil || tok != got[0] {
			t.Errorf("after refresh: %v", err)
		}
	})
	t.Run("invalid_grant marks the account expired", func(t *testing.T) {
		e := setup(t)
		e.fake.Configure(func(s *linkedinfake.Server) { s.IssueRefreshTokens = true })
		a := e.connect(t, "org-1")
		e.fake.RevokeAllRefreshTokens()
		e.clock.jumpTo(a.TokenExpiresAt.Add(time.Hour))
		_, _, err := e.svc.ValidAccessToken(ctx, a.ID)
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Code != "invalid_grant" {
			t.Fatalf("err = %v, want an auth error invalid_grant", err)
		}
		stored, _ := e.store.Accounts().GetByID(ctx, a.ID)
		if stored.Status != connections.StatusExpired {
			t.Errorf("status = %s, want expired", stored.Status)
		}
		if _, _, err := e.svc.ValidAccessToken(ctx, a.ID); providers.KindOf(err) != providers.KindAuth {
			t.Errorf("an expired account still gives tokens: %v", err)
		}
	})
	t.Run("expired without refresh token", func(t *testing.T) {
		e := setup(t)
		a := e.connect(t, "org-1")
		e.clock.jumpTo(a.TokenExpiresAt.Add(-2 * time.Minute))
		if _, _, err := e.svc.ValidAccessToken(ctx, a.ID); err != nil {
			t.Errorf("2 minutes before expiry with nothing to refresh with: %v, want the token", err)
		}
		e.clock.jumpTo(a.TokenExpiresAt.Add(time.Second))
		_, _, err := e.svc.ValidAccessToken(ctx, a.ID)
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != providers.KindAuth || pe.Code != "TOKEN_EXPIRED" {
			t.Fatalf("err = %v, want TOKEN_EXPIRED", err)
		}
		if stored, _ := e.store.Accounts().GetByID(ctx, a.ID); stored.Status != connections.StatusExpired {
			t.Errorf("status = %s, want expired", stored.Status)
		}
		if refreshes(e.fake) != 0 {
			t.Error("a refresh was attempted without a refresh token")
		}
	})
}

func TestDisconnect(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a := e.connect(t, "org-1")
	tok, _, _ := e.svc.ValidAccessToken(ctx, a.ID)
	if err := e.svc.Disconnect(ctx, "org-2", a.ID); !errors.Is(err, connections.ErrNotFound) {
		t.Errorf("another organization disconnected the account: %v", err)
	}
	if err := e.svc.Disconnect(ctx, "org-1", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Accounts().GetByID(ctx, a.ID); !errors.Is(err, connections.ErrNotFound) {
		t.Errorf("account still stored: %v", err)
	}
	li, _ := linkedin.New(e.fake.ProviderConfig())
	_, err := li.Publish(ctx, providers.Account{PlatformUserID: a.PlatformUserID, AccessToken: tok}, providers.Payload{Text: "after disconnect"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != "REVOKED_ACCESS_TOKEN" {
		t.Errorf("the token still works at LinkedIn after Disconnect: %v", err)
	}
}

func refreshes(f *linkedinfake.Server) int { return f.Refreshes() }
