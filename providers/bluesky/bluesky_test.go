package bluesky_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/providers/bluesky/blueskyfake"
)

func payload(text string) providers.Payload {
	return providers.Payload{Text: text, IdempotencyKey: "postflow-p-a-" + text, Created: time.Now().Add(-time.Hour)}
}

func wantKind(t *testing.T, err error, kind providers.Kind, code string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != kind || (code != "" && pe.Code != code) {
		t.Fatalf("error %v; want kind %s, code %q", err, kind, code)
	}
	return pe
}

func TestLogin(t *testing.T) {
	ctx := context.Background()
	p, fake := setup(t)
	alice := fake.CreateAccount("alice.test", "Alice A.")
	bob := fake.CreateAccount("bob.test", "")
	aliceApp, bobApp := fake.AppPassword(alice.DID), fake.AppPassword(bob.DID)
	login := p.Connect().Password

	for _, tc := range []struct {
		name, server, identifier, password string
		wantDID, wantName                  string
	}{
		{"handle, PDS found from the DID document", "", "alice.test", aliceApp, alice.DID, "Alice A."},
		{"@handle in upper case", "", "@Alice.Test", aliceApp, alice.DID, "Alice A."},
		{"DID", "", alice.DID, aliceApp, alice.DID, "Alice A."},
		{"email with the server named", fake.URL, bob.Email, bobApp, bob.DID, "bob.test"},
		{"no profile record: the handle", "", "bob.test", bobApp, bob.DID, "bob.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := login.Login(ctx, tc.server, tc.identifier, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			pr := conn.Profile
			if pr.PlatformUserID != tc.wantDID || pr.DisplayName != tc.wantName || pr.Server != fake.URL || pr.Handle == "" {
				t.Errorf("profile %+v; want DID %s, name %q, server %s", pr, tc.wantDID, tc.wantName, fake.URL)
			}
			tk := conn.Tokens
			if tk.AccessToken == "" || tk.RefreshToken == "" || tk.Credential != tc.password {
				t.Errorf("tokens: access %t, refresh %t, credential kept %t", tk.AccessToken != "", tk.RefreshToken != "", tk.Credential == tc.password)
			}
			// From the JWTs' exp claims: the fake's 2 h and 90 days.
			if d := time.Until(tk.ExpiresAt); d < 119*time.Minute || d > 2*time.Hour {
				t.Errorf("access expires in %s, want 2 h", d)
			}
			if d := time.Until(tk.RefreshExpiresAt); d < 89*24*time.Hour || d > 90*24*time.Hour {
				t.Errorf("refresh expires in %s, want 90 days", d)
			}
		})
	}

	for _, tc := range []struct {
		name, server, identifier, password, code string
	}{
		{"wrong password", "", "alice.test", "wrong-pass-word-0000", "AuthenticationRequired"},
		{"another account's app password", "", "alice.test", bobApp, "AuthenticationRequired"},
		{"the account's own password", "", "alice.test", alice.Password, "NOT_AN_APP_PASSWORD"},
		{"unknown handle", "", "nobody.test", aliceApp, "HANDLE_NOT_FOUND"},
		{"unknown DID", "", "did:plc:nobody", aliceApp, "DID_NOT_FOUND"},
		{"email without a server", "", alice.Email, aliceApp, "SERVER_NEEDED"},
		{"no password", "", "alice.test", "", "MISSING_CREDENTIALS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := login.Login(ctx, tc.server, tc.identifier, tc.password)
			pe := wantKind(t, err, providers.KindAuth, tc.code)
			if conn != nil || strings.Contains(pe.Error(), tc.password) && tc.password != "" {
				t.Errorf("connection %v; error %q must not hold the password", conn, pe)
			}
			if pe.Message == "" {
				t.Error("the refusal has no message to show")
			}
		})
	}
	t.Run("the own password's session is deleted", func(t *testing.T) {
		before := fake.Sessions(alice.DID)
		if _, err := login.Login(ctx, "", "alice.test", alice.Password); err == nil {
			t.Fatal("the own password was taken")
		}
		if n := fake.Sessions(alice.DID) - before; n != 0 {
			t.Errorf("%d sessions made with the own password are left", n)
		}
	})
}

func TestLoginRefusesLocalServersOutsideDevelopment(t *testing.T) {
	fake := blueskyfake.New()
	t.Cleanup(fake.Close)
	acct := fake.CreateAccount("alice.test", "")
	pw := fake.AppPassword(acct.DID)
	p, err := bluesky.New(bluesky.Config{ResolverURL: fake.URL, PLCURL: fake.PLCURL(), AppURL: "https://bsky.app"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, server, identifier string }{
		{"named server on loopback", fake.URL, "alice.test"},
		{"DID document names a PDS on loopback", "", "alice.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Connect().Password.Login(context.Background(), tc.server, tc.identifier, pw)
			if !errors.Is(err, providers.ErrBadServer) {
				t.Fatalf("Login: %v; want ErrBadServer", err)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	ctx := context.Background()
	p, fake := setup(t)
	acct := fake.CreateAccount("alice.test", "")
	pw := fake.AppPassword(acct.DID)
	conn, err := p.Connect().Password.Login(ctx, "", "alice.test", pw)
	if err != nil {
		t.Fatal(err)
	}
	a := providers.Account{PlatformUserID: acct.DID, Handle: acct.Handle, Server: conn.Profile.Server}

	t.Run("refreshSession rotates the session", func(t *testing.T) {
		creates := fake.Count("com.atproto.server.createSession")
		got, err := p.Refresh(ctx, a, conn.Tokens)
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken == conn.Tokens.AccessToken || got.RefreshToken == conn.Tokens.RefreshToken || got.Credential != pw {
			t.Fatalf("refresh gave the same tokens or lost the app password")
		}
		if n := fake.Count("com.atproto.server.createSession") - creates; n != 0 {
			t.Fatalf("refresh made %d new sessions from the app password; refreshSession must do", n)
		}
		if _, err := p.Refresh(ctx, a, conn.Tokens); err != nil {
			// The old refresh token is spent; the app password makes a new session.
			t.Fatalf("refresh with a spent refresh token: %v", err)
		}
		a.AccessToken = got.AccessToken
		if _, err := p.Publish(ctx, a, payload("after refresh")); err != nil {
			t.Fatalf("publish with the refreshed token: %v", err)
		}
	})
	t.Run("no refresh token: a new session from the app password", func(t *testing.T) {
		got, err := p.Refresh(ctx, a, providers.Tokens{Credential: pw})
		if err != nil || got.AccessToken == "" || got.Credential != pw {
			t.Fatalf("Refresh: %v, %v", got, err)
		}
	})
	t.Run("session and app password revoked: KindAuth", func(t *testing.T) {
		fresh, err := p.Refresh(ctx, a, providers.Tokens{Credential: pw})
		if err != nil {
			t.Fatal(err)
		}
		fake.RevokeAppPassword(acct.DID, pw)
		_, err = p.Refresh(ctx, a, *fresh)
		wantKind(t, err, providers.KindAuth, "AuthenticationRequired")
	})
	t.Run("refresh refused and no app password: KindAuth", func(t *testing.T) {
		_, err := p.Refresh(ctx, a, providers.Tokens{RefreshToken: "garbage"})
		wantKind(t, err, providers.KindAuth, "SESSION_ENDED")
	})
}

// TestPublishAnswers: every answer of createRecord, classified.
func TestPublishAnswers(t *testing.T) {
	ctx := context.Background()
	p, fake := setup(t)
	fake.Configure(func(s *blueskyfake.Server) { s.RateLimitWait = 90 * time.Second })
	for i, tc := range []struct {
		answers   []string
		kind      providers.Kind // 0: published
		code      string
		refused   bool
		records   int
		minWait   time.Duration
		noWaitHdr bool
	}{
		{answers: nil, records: 1},
		{answers: []string{"429"}, kind: providers.KindRateLimited, code: "RateLimitExceeded", refused: true, minWait: 80 * time.Second},
		{answers: []string{"429"}, kind: providers.KindRateLimited, code: "RateLimitExceeded", refused: true, minWait: time.Minute, noWaitHdr: true},
		{answers: []string{"503"}, kind: providers.KindRetryable, code: "ServiceUnavailable", refused: true},
		{answers: []string{"500"}, kind: providers.KindRetryable, code: "InternalServerError"},
		{answers: []string{"504"}, kind: providers.KindRetryable, code: "HTTP_504"},
		{answers: []string{"401"}, kind: providers.KindAuth, code: "AuthMissing", refused: true},
		{answers: []string{"expired"}, kind: providers.KindSessionExpired, code: "ExpiredToken", refused: true},
		// The record made, the answer and the read back lost: in doubt.
		{answers: []string{"lost"}, kind: providers.KindRetryable, code: "NETWORK", records: 1},
		// The record made, its answer lost: the read back finds it.
		{answers: []string{"dropped"}, records: 1},
	} {
		t.Run(strings.Join(append([]string{"answer"}, tc.answers...), " "), func(t *testing.T) {
			a := fakeAccount(fake, "answer"+string(rune('a'+i))+".test")
			fake.Configure(func(s *blueskyfake.Server) {
				s.Answers[a.PlatformUserID] = tc.answers
				if tc.noWaitHdr {
					s.RateLimitWait = 0
				}
			})
			defer fake.Configure(func(s *blueskyfake.Server) { s.RateLimitWait = 90 * time.Second })
			pub, err := p.Publish(ctx, a, payload("answers"))
			if tc.kind == 0 {
				if err != nil || pub.PlatformPostID != fake.Records(a.PlatformUserID)[0].URI {
					t.Fatalf("Publish: %+v, %v; want the record", pub, err)
				}
			} else {
				pe := wantKind(t, err, tc.kind, tc.code)
				if pe.Refused() != tc.refused {
					t.Errorf("Refused() = %v, want %v", pe.Refused(), tc.refused)
				}
				if pe.RetryAfter < tc.minWait || tc.minWait > 0 && pe.RetryAfter > tc.minWait+15*time.Second {
					t.Errorf("RetryAfter %s, want about %s", pe.RetryAfter, tc.minWait)
				}
			}
			if got := len(fake.Records(a.PlatformUserID)); got != tc.records {
				t.Errorf("the PDS holds %d records, want %d", got, tc.records)
			}
		})
	}
}

func TestPublishRecord(t *testing.T) {
	ctx := context.Background()
	p, fake := setup(t)
	bob := fake.CreateAccount("bob.test", "")
	a := fakeAccount(fake, "alice.test")
	pl := payload("🎉 hi @bob.test and @nobody.test #launch https://example.com/x")
	pl.Language = "en"
	before := time.Now().Add(-time.Second)
	pub, err := p.Publish(ctx, a, pl)
	if err != nil {
		t.Fatal(err)
	}
	recs := fake.Records(a.PlatformUserID)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	rkey, _ := bluesky.RecordKey(pl.Created, pl.IdempotencyKey)
	if r.RKey != rkey || pub.PlatformPostID != r.URI || pub.URL != "https://bsky.app/profile/"+a.PlatformUserID+"/post/"+rkey {
		t.Errorf("published %+v under %s; want key %s", pub, r.URI, rkey)
	}
	if langs, _ := r.Value["langs"].([]any); len(langs) != 1 || langs[0] != "en" {
		t.Errorf("langs %v", r.Value["langs"])
	}
	// createdAt is the publish time, not the post's creation an hour ago.
	if ts, err := time.Parse(time.RFC3339, r.Value["createdAt"].(string)); err != nil || ts.Before(before) {
		t.Errorf("createdAt %v (%v), want now", r.Value["createdAt"], err)
	}
	var got []string
	for _, f := range r.Value["facets"].([]any) {
		idx := f.(map[string]any)["index"].(map[string]any)
		feat := f.(map[string]any)["features"].([]any)[0].(map[string]any)
		got = append(got, pl.Text[int(idx["byteStart"].(float64)):int(idx["byteEnd"].(float64))]+"="+feat["$type"].(string)+":"+firstOf(feat, "did", "tag", "uri"))
	}
	want := []string{
		"@bob.test=app.bsky.richtext.facet#mention:" + bob.DID,
		"#launch=app.bsky.richtext.facet#tag:launch",
		"https://example.com/x=app.bsky.richtext.facet#link:https://example.com/x",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("facets\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The same publication again: the PDS answers 500 (the key exists);
	// the read back answers with the first post.
	again, err := p.Publish(ctx, a, pl)
	if err != nil || again.PlatformPostID != pub.PlatformPostID || len(fake.Records(a.PlatformUserID)) != 1 {
		t.Fatalf("repeat: %+v, %v, %d records; want the first post alone", again, err, len(fake.Records(a.PlatformUserID)))
	}
	if found, err := p.Find(ctx, a, pl, time.Time{}); err != nil || len(found) != 1 || found[0].PlatformPostID != pub.PlatformPostID {
		t.Errorf("Find: %+v, %v", found, err)
	}
	if p.PostURL(a, "https://not-an-at-uri") != "" {
		t.Errorf("PostURL of a foreign id")
	}
}

func firstOf(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok {
			return s
		}
	}
	return ""
}

func TestPublishRefusesLocally(t *testing.T) {
	p, fake := setup(t)
	for i, tc := range []struct {
		name string
		pl   providers.Payload
		code string
	}{
		{"blank", payload("  \n"), "EMPTY_TEXT"},
		{"301 graphemes", payload(strings.Repeat("é", 301)), "TEXT_TOO_LONG"},
		{"3,600 bytes in 200 graphemes", payload(strings.Repeat("👩‍👩‍👧", 200)), "TEXT_TOO_LONG"},
		{"no creation time", providers.Payload{Text: "x", IdempotencyKey: "k"}, "NO_RECORD_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := fakeAccount(fake, "local"+string(rune('a'+i))+".test")
			_, err := p.Publish(context.Background(), a, tc.pl)
			wantKind(t, err, providers.KindInvalidContent, tc.code)
			if n := len(fake.Records(a.PlatformUserID)); n != 0 {
				t.Errorf("%d records made", n)
			}
		})
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	for _, cfg := range []bluesky.Config{
		{ResolverURL: "", PLCURL: "https://plc.directory", AppURL: "https://bsky.app"},
		{ResolverURL: "https://bsky.social", PLCURL: "plc.directory", AppURL: "https://bsky.app"},
		{ResolverURL: "https://bsky.social", PLCURL: "https://plc.directory", AppURL: "ftp://bsky.app"},
	} {
		if _, err := bluesky.New(cfg); err == nil {
			t.Errorf("New(%+v) took it", cfg)
		}
	}
}

// TestRevokeEndsTheSession: Revoke ends the session its refresh JWT holds
// (deleteSession), so that refresh JWT no longer refreshes.
func TestRevokeEndsTheSession(t *testing.T) {
	ctx := context.Background()
	p, fake := setup(t)
	alice := fake.CreateAccount("alice.test", "")
	conn, err := p.Connect().Password.Login(ctx, "", "alice.test", fake.AppPassword(alice.DID))
	if err != nil {
		t.Fatal(err)
	}
	a := providers.Account{PlatformUserID: alice.DID, Server: conn.Profile.Server, AccessToken: conn.Tokens.AccessToken}
	if !p.Rules().Revoke {
		t.Fatal("Rules().Revoke is false")
	}
	if err := p.Revoke(ctx, a, providers.Tokens{AccessToken: conn.Tokens.AccessToken, RefreshToken: conn.Tokens.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	// Without the app password to fall back on, a refresh must fail.
	_, err = p.Refresh(ctx, a, providers.Tokens{RefreshToken: conn.Tokens.RefreshToken})
	if err == nil {
		t.Fatal("the revoked session still refreshes")
	}
	if err := p.Revoke(ctx, a, providers.Tokens{AccessToken: conn.Tokens.AccessToken}); err != nil {
		t.Errorf("Revoke without a refresh JWT: %v, want nothing done", err)
	}
}

func TestNewConnectConfig(t *testing.T) {
	base := bluesky.Config{ResolverURL: "https://bsky.social", PLCURL: "https://plc.directory", AppURL: "https://bsky.app"}
	secret := []byte(strings.Repeat("k", 32))
	tests := []struct {
		name   string
		change func(c *bluesky.Config)
		method string // "": refused
	}{
		{"default: app password", func(*bluesky.Config) {}, "password"},
		{"app-password", func(c *bluesky.Config) { c.Connect = bluesky.ConnectAppPassword }, "password"},
		{"oauth, loopback client", func(c *bluesky.Config) {
			c.Connect, c.RedirectURI, c.OAuthSecret = bluesky.ConnectOAuth, "http://127.0.0.1:8080/connections/callback/bluesky", secret
		}, "oauth"},
		{"oauth, client metadata URL", func(c *bluesky.Config) {
			c.Connect, c.RedirectURI, c.OAuthSecret = bluesky.ConnectOAuth, "https://api.example/connections/callback/bluesky", secret
			c.OAuthClientID = "https://api.example/oauth/bluesky/client-metadata.json"
		}, "oauth"},
		{"oauth, public redirect without a client id", func(c *bluesky.Config) {
			c.Connect, c.RedirectURI, c.OAuthSecret = bluesky.ConnectOAuth, "https://api.example/cb", secret
		}, ""},
		{"oauth, http client id", func(c *bluesky.Config) {
			c.Connect, c.RedirectURI, c.OAuthSecret = bluesky.ConnectOAuth, "https://api.example/cb", secret
			c.OAuthClientID = "http://api.example/client-metadata.json"
		}, ""},
		{"oauth, confidential", func(c *bluesky.Config) {
			c.Connect, c.RedirectURI, c.OAuthSecret = bluesky.ConnectOAuth, "https://api.example/connections/callback/bluesky", secret
			c.OAuthClientID, c.OAuthClientKey = "https://api.example/oauth/bluesky/client-metadata.json", secret
		}, "oauth"},
		{"oauth, confidential loopback client", func(c *bluesky.Config) {
			c.Connect, c.RedirectURI, c.OAuthSecret, c.OAuthClientKey = bluesky.ConnectOAuth, "http://127.0.0.1:8080/cb", secret, secret
		}, ""},
		{"oauth, short client key", func(c *bluesky.Config) {
			c.Connect, c.RedirectURI, c.OAuthSecret = bluesky.ConnectOAuth, "https://api.example/connections/callback/bluesky", secret
			c.OAuthClientID, c.OAuthClientKey = "https://api.example/oauth/bluesky/client-metadata.json", []byte("short")
		}, ""},
		{"oauth without a secret", func(c *bluesky.Config) {
			c.Connect, c.RedirectURI = bluesky.ConnectOAuth, "http://127.0.0.1:8080/cb"
		}, ""},
		{"oauth, a scope without atproto", func(c *bluesky.Config) {
			c.Connect, c.RedirectURI, c.OAuthSecret, c.OAuthScope = bluesky.ConnectOAuth, "http://127.0.0.1:8080/cb", secret, "transition:generic"
		}, ""},
		{"unknown", func(c *bluesky.Config) { c.Connect = "magic" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			p, err := bluesky.New(cfg)
			if tt.method == "" {
				if err == nil {
					t.Fatal("New took it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Connect().Method(); got != tt.method {
				t.Fatalf("Connect().Method() = %q, want %q", got, tt.method)
			}
		})
	}
}

// TestLoginRefusesAnImpostorPDS: a server named at connect that is not
// the PDS of the account's DID document cannot connect that account,
// whatever it answers createSession; the handle kept is the document's,
// resolving back to the DID, never the server's word.
func TestLoginRefusesAnImpostorPDS(t *testing.T) {
	ctx := context.Background()
	p, fake := setup(t)
	alice := fake.CreateAccount("alice.test", "Alice A.")
	bob := fake.CreateAccount("bob.test", "")
	aliceApp := fake.AppPassword(alice.DID)
	login := p.Connect().Password

	// The impostor answers createSession for alice's DID and handle, with
	// a password of the attacker's.
	impostor := blueskyfake.New()
	t.Cleanup(impostor.Close)
	fakeAlice := impostor.AddAccount(blueskyfake.Account{DID: alice.DID, Handle: alice.Handle, Email: "mallory@example.com", Password: "mallory-own"})
	stolen := impostor.AppPassword(fakeAlice.DID)

	for _, tc := range []struct{ name, server, identifier, password, code string }{
		{"email on the impostor", impostor.URL, "mallory@example.com", stolen, "WRONG_PDS"},
		{"the victim's handle on the impostor", impostor.URL, alice.Handle, stolen, "WRONG_PDS"},
		{"the victim's DID on the impostor", impostor.URL, alice.DID, stolen, "WRONG_PDS"},
		{"the victim's handle, her password, on the impostor", impostor.URL, alice.Handle, aliceApp, "WRONG_PDS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := login.Login(ctx, tc.server, tc.identifier, tc.password)
			pe := wantKind(t, err, providers.KindAuth, tc.code)
			if conn != nil || pe.Message == "" || strings.Contains(pe.Error(), tc.password) {
				t.Errorf("connection %v; error %q (a message, no password)", conn, pe)
			}
		})
	}
	if n := impostor.Count("com.atproto.server.createSession"); n != 1 {
		t.Errorf("the impostor got %d createSession calls, want 1 (the email's: a handle or DID names its PDS first)", n)
	}

	t.Run("the right server named still works", func(t *testing.T) {
		for _, server := range []string{fake.URL, strings.ToUpper(fake.URL) + "/"} {
			conn, err := login.Login(ctx, server, alice.Email, aliceApp)
			if err != nil {
				t.Fatalf("%s: %v", server, err)
			}
			if conn.Profile.PlatformUserID != alice.DID || conn.Profile.Handle != alice.Handle {
				t.Errorf("profile %+v", conn.Profile)
			}
		}
	})
	t.Run("a handle the document does not claim is not kept", func(t *testing.T) {
		fake.Configure(func(s *blueskyfake.Server) {
			s.AlsoKnownAs = map[string][]string{alice.DID: {"at://" + bob.Handle}}
		})
		defer fake.Configure(func(s *blueskyfake.Server) { s.AlsoKnownAs = nil })
		conn, err := login.Login(ctx, "", alice.Handle, aliceApp)
		if err != nil {
			t.Fatal(err)
		}
		if h := conn.Profile.Handle; h != "" {
			t.Errorf("handle %q; alice's document claims bob.test, which is bob's: no verified handle", h)
		}
	})
}

// TestTheConfiguredEntrywayMayBeNamed: the resolver PostFlow is configured
// with (bsky.social, whose accounts' documents name their own PDS hosts)
// is PostFlow's choice, not the user's: named as the server, as users of
// bsky.social do to sign in by email, it may answer for an account whose
// PDS is elsewhere.
func TestTheConfiguredEntrywayMayBeNamed(t *testing.T) {
	ctx := context.Background()
	fake := blueskyfake.New()
	t.Cleanup(fake.Close)
	alice := fake.CreateAccount("alice.test", "")
	entry := blueskyfake.New()
	t.Cleanup(entry.Close)
	viaEntry := entry.AddAccount(blueskyfake.Account{DID: alice.DID, Handle: alice.Handle, Email: alice.Email, Password: "own"})
	pw := entry.AppPassword(viaEntry.DID)
	p, err := bluesky.New(bluesky.Config{ResolverURL: entry.URL, PLCURL: fake.PLCURL(), AppURL: "https://bsky.app",
		Servers: netguard.Policy{AllowLocal: true}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := p.Connect().Password.Login(ctx, entry.URL, alice.Email, pw)
	if err != nil || conn.Profile.PlatformUserID != alice.DID || conn.Profile.Server != entry.URL {
		t.Fatalf("login by email at the configured entryway: %+v, %v", conn, err)
	}
}

// TestOAuthUnknownDIDIsNoServer: a DID that has no document, or is none
// Bluesky uses, is the user's mistake (400 invalid_server), not an
// outage (it was a 502 "try again").
func TestOAuthUnknownDIDIsNoServer(t *testing.T) {
	fake := blueskyfake.New()
	t.Cleanup(fake.Close)
	p, err := bluesky.New(bluesky.Config{ResolverURL: fake.URL, PLCURL: fake.PLCURL(), AppURL: "https://bsky.app",
		Servers: netguard.Policy{AllowLocal: true}, Connect: bluesky.ConnectOAuth,
		RedirectURI: "http://127.0.0.1:9/connections/callback/bluesky", OAuthSecret: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	for _, did := range []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:example:123", "did:web:127.0.0.1%3A1"} {
		if err := p.Connect().OAuth.CheckServer(context.Background(), did); !errors.Is(err, providers.ErrBadServer) {
			t.Errorf("CheckServer(%s) = %v, want ErrBadServer", did, err)
		}
	}
}
