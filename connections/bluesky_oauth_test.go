package connections_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
)

// TestBlueskyOAuthThroughConnections connects a Bluesky account through
// atproto OAuth on the real PDS with connections as it is, unchanged:
// ConnectURL (state, PKCE verifier) → the PDS's sign-in and consent →
// Callback (Exchange) → stored sealed; then a refresh from what
// connections keeps (refresh token and credential), a publish with the
// token it hands out, and Disconnect, which ends the session.
func TestBlueskyOAuthThroughConnections(t *testing.T) {
	pds := realpeers.StartPDS(t)
	const redirect = "http://127.0.0.1:9/connections/callback/bluesky"
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	var p *bluesky.Provider
	w := testworld.New(t, testworld.Options{Providers: func(*testworld.World) ([]providers.Provider, error) {
		var err error
		p, err = bluesky.New(bluesky.Config{
			ResolverURL: pds.URL, PLCURL: pds.PLCURL, AppURL: "https://bsky.app",
			Servers: netguard.Policy{AllowLocal: true}, Connect: bluesky.ConnectOAuth, RedirectURI: redirect, OAuthSecret: secret,
		})
		return []providers.Provider{p}, err
	}})
	ctx := context.Background()
	acct := pds.CreateAccount(t, "viaconnections.test")
	browser, err := connections.NewBrowserKey()
	if err != nil {
		t.Fatal(err)
	}

	authURL, _, err := w.Connections.ConnectURL(ctx, bluesky.ID, acct.Handle, "org-1", "user-1", browser)
	if err != nil {
		t.Fatalf("ConnectURL: %v", err)
	}
	back := pds.SignIn(t, authURL, acct)
	if !strings.HasPrefix(back.String(), redirect+"?") {
		t.Fatalf("the PDS sent the browser to %s", back.Redacted())
	}
	a, err := w.Connections.Callback(ctx, bluesky.ID, back.Query(), browser)
	if err != nil {
		t.Fatalf("Callback: %v", err)
	}
	if a.PlatformUserID != acct.DID || a.Handle != acct.Handle || a.Server != pds.PublicURL || a.Status != connections.StatusActive {
		t.Fatalf("account = %+v", a)
	}

	tok, _, err := w.Connections.ValidAccessToken(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var raw bson.M
	if err := w.Store.DB.Collection("socialAccounts").FindOne(ctx, bson.D{}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	doc, _ := bson.MarshalExtJSON(raw, false, false)
	if strings.Contains(string(doc), tok) || strings.Contains(string(doc), "atoauth1.") || strings.Contains(string(doc), `"d"`) {
		t.Fatalf("the stored document holds the session or its key in the clear: %.400s", doc)
	}

	// A refresh from what connections keeps: the refresh token and the
	// credential (the DPoP key and issuer).
	fresh, _, err := w.Connections.RenewAccessToken(ctx, a.ID, tok)
	if err != nil || fresh == tok {
		t.Fatalf("RenewAccessToken: new %v, %v", fresh != tok, err)
	}
	pub, err := p.Publish(ctx, a.Provider(fresh), providers.Payload{Text: "through connections", IdempotencyKey: "conn-1", Created: time.Now()})
	if err != nil || !strings.HasPrefix(pub.PlatformPostID, "at://"+acct.DID+"/") {
		t.Fatalf("Publish: %+v, %v", pub, err)
	}

	if err := w.Connections.Disconnect(ctx, "org-1", a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = p.Publish(ctx, a.Provider(fresh), providers.Payload{Text: "after disconnect", IdempotencyKey: "conn-2", Created: time.Now()})
	if k := providers.KindOf(err); k != providers.KindSessionExpired {
		t.Fatalf("Publish after Disconnect: %v (kind %v), want the session gone", err, k)
	}
}
