package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
)

// TestTextCheckedForEachTarget: a post's text is checked against each
// target account's network, in that network's unit, and a text too long
// for one target is refused at creation naming it, though it fits the
// others. Bluesky counts graphemes (an emoji with its modifiers is one) and
// bytes; LinkedIn UTF-16 code units.
func TestTextCheckedForEachTarget(t *testing.T) {
	w := testworld.New(t, testworld.Options{Providers: func(*testworld.World) ([]providers.Provider, error) {
		p, err := bluesky.New(bluesky.Config{ResolverURL: "http://127.0.0.1:1", PLCURL: "http://127.0.0.1:1",
			AppURL: "https://bsky.app", Servers: netguard.Policy{AllowLocal: true}})
		return []providers.Provider{p}, err
	}})
	ctx := context.Background()
	add := func(platform, uid, name string) string {
		a, err := w.Store.Accounts().Upsert(ctx, &connections.Account{OrganizationID: "org-a", Platform: platform, PlatformUserID: uid,
			DisplayName: name, Server: "http://127.0.0.1:1", AccessToken: "sealed", Status: connections.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	li, bsky := add("linkedin", "urn:li:person:a", "Ada on LinkedIn"), add("bluesky", "did:plc:ada", "Ada on Bluesky")
	srv := httptest.NewServer(api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend, MaxBodyBytes: 64 << 10,
		Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret)}, Posts: w.PostsService(&fakeRunner{started: map[string]int{}}),
	}))
	t.Cleanup(srv.Close)
	p := &postsAPI{srv: srv}

	family := "👩‍👩‍👧‍👦" // one grapheme, 25 bytes, 11 UTF-16 code units
	for _, tc := range []struct {
		name, text string
		status     int
		mentions   []string // what the refusal names
	}{
		{"fits both", strings.Repeat("a", 300), 201, nil},
		{"301 graphemes: too long for Bluesky alone", strings.Repeat("a", 301), 422, []string{"Ada on Bluesky", bsky, "301 graphemes", "Bluesky takes at most 300 graphemes"}},
		{"121 family emoji: 121 graphemes, but 3,025 bytes", strings.Repeat(family, 121), 422, []string{"Ada on Bluesky", "3025 bytes", "3000 bytes"}},
		// 600 code points, 300 graphemes: a count of code points would refuse it.
		{"300 letters with combining accents fit Bluesky's count", strings.Repeat("e\u0301", 300), 201, nil},
		{"3,001 UTF-16 units: too long for LinkedIn", strings.Repeat("a", 3001), 422, []string{"Ada on LinkedIn", li, "3001 UTF-16 code units", "LinkedIn takes at most 3000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"content": tc.text, "socialAccountIds": []string{li, bsky}})
			status, out := p.call(t, "POST", "/posts", string(body))
			if status != tc.status {
				t.Fatalf("POST /posts = %d %v, want %d", status, out, tc.status)
			}
			if tc.status == 201 {
				return
			}
			msg, _ := out["error"].(map[string]any)["message"].(string)
			if code(out) != "content_too_long" {
				t.Errorf("code %q, want content_too_long", code(out))
			}
			for _, m := range tc.mentions {
				if !strings.Contains(msg, m) {
					t.Errorf("message %q does not say %q", msg, m)
				}
			}
		})
	}
}
