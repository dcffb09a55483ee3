package mongostore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/providers"
)

// A registration on a server: stored once (the first of racing Adds wins
// and every caller gets it), its secret sealed, deleted only while it has
// the client id the caller saw refused.
func TestServerApps(t *testing.T) {
	ctx := context.Background()
	s := mongotest.Store(t)
	cipher, err := tokencipher.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	apps := s.ServerApps(cipher)
	const server = "https://example.social"
	if _, err := apps.Get(ctx, "mastodon", server); !errors.Is(err, providers.ErrNoApp) {
		t.Fatalf("get before any: %v; want ErrNoApp", err)
	}

	var wg sync.WaitGroup
	got := make([]*providers.ServerApp, 8)
	for i := range got {
		wg.Go(func() {
			app, err := apps.Add(ctx, providers.ServerApp{Network: "mastodon", Server: server, ClientID: fmt.Sprint("client-", i),
				ClientSecret: fmt.Sprint("secret-", i), RedirectURI: "https://postflow.example/cb", Scopes: "read", CreatedAt: time.Now()})
			if err != nil {
				t.Error(err)
			}
			got[i] = app
		})
	}
	wg.Wait()
	stored, err := apps.Get(ctx, "mastodon", server)
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range got {
		if app == nil || app.ClientID != stored.ClientID || app.ClientSecret != stored.ClientSecret {
			t.Errorf("an Add returned %+v, the store holds %+v", app, stored)
		}
	}
	if !strings.HasSuffix(stored.ClientSecret, strings.TrimPrefix(stored.ClientID, "client-")) {
		t.Errorf("secret %q does not belong to client %q", stored.ClientSecret, stored.ClientID)
	}
	var raw bson.M
	if err := s.DB.Collection("serverApps").FindOne(ctx, bson.D{{Key: "_id", Value: "mastodon|" + server}}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if sealed, _ := raw["clientSecret"].(string); sealed == "" || strings.Contains(sealed, "secret-") {
		t.Errorf("the secret is stored as %q, want it sealed", sealed)
	}

	// Another network's registration on the same server is its own.
	if _, err := apps.Get(ctx, "other", server); !errors.Is(err, providers.ErrNoApp) {
		t.Errorf("another network: %v; want ErrNoApp", err)
	}
	// A Delete for a client id no longer stored keeps the newer one.
	if err := apps.Delete(ctx, "mastodon", server, "client-old"); err != nil {
		t.Fatal(err)
	}
	if _, err := apps.Get(ctx, "mastodon", server); err != nil {
		t.Errorf("after deleting another client id: %v", err)
	}
	if err := apps.Delete(ctx, "mastodon", server, stored.ClientID); err != nil {
		t.Fatal(err)
	}
	if _, err := apps.Get(ctx, "mastodon", server); !errors.Is(err, providers.ErrNoApp) {
		t.Errorf("after delete: %v; want ErrNoApp", err)
	}
}
