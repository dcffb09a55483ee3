package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/providers"
)

// picsNetwork is a network that takes images by declared rules (as
// LinkedIn, Bluesky and Mastodon will once their engineers declare
// theirs); the rest of providers.Provider is never called here.
type picsNetwork struct{ providers.Provider }

type picsOAuth struct{ providers.OAuth }

var picsRules = providers.MediaRules{MaxImages: 4, Types: []string{"image/jpeg", "image/png"}, MaxBytes: 5_000_000,
	MaxPixels: 36_000_000, AltText: providers.Characters(1500)}

func (picsNetwork) ID() string                 { return "pics" }
func (picsNetwork) Name() string               { return "Pics" }
func (picsNetwork) Rules() providers.Rules     { return providers.Rules{Media: picsRules} }
func (picsNetwork) Connect() providers.Connect { return providers.Connect{OAuth: picsOAuth{}} }
func (picsNetwork) TextLimits(context.Context, providers.Account) ([]providers.TextLimit, error) {
	return nil, nil
}
func (picsNetwork) MediaLimits(context.Context, providers.Account) (providers.MediaRules, error) {
	return picsRules, nil
}

// mediaPostsAPI is the posts API over a world with LinkedIn and Pics, an account of org-a on each, and images in
// org-a's library (and one in org-b's).
type mediaPostsAPI struct {
	*postsAPI
	linkedin, pics string
	images         map[string]string // name -> id
}

func newMediaPostsAPI(t *testing.T) *mediaPostsAPI {
	t.Helper()
	w := testworld.New(t, testworld.Options{Providers: func(*testworld.World) ([]providers.Provider, error) {
		return []providers.Provider{picsNetwork{}}, nil
	}})
	ctx := context.Background()
	add := func(platform string) string {
		a, err := w.Store.Accounts().Upsert(ctx, &connections.Account{OrganizationID: "org-a", Platform: platform, PlatformUserID: "u-" + platform,
			DisplayName: "Ada on " + platform, AccessToken: "sealed", Status: connections.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	m := &mediaPostsAPI{linkedin: add("linkedin"), pics: add("pics"), images: map[string]string{}}
	items := w.Store.Media()
	for _, im := range []struct {
		name, org, typ string
		size           int64
		width, height  int
	}{
		{"cat", "org-a", "image/jpeg", 800_000, 1200, 800},
		{"dog", "org-a", "image/png", 600_000, 1200, 800},
		{"gif", "org-a", "image/gif", 100_000, 1200, 800},
		{"theirs", "org-b", "image/jpeg", 100_000, 1200, 800},
		// 40 megapixels: more than LinkedIn takes.
		{"huge", "org-a", "image/png", 9_000_000, 8000, 5000},
	} {
		it, err := items.Create(ctx, &media.Item{ID: items.NewID(), OrganizationID: im.org, Type: im.typ, Width: im.width, Height: im.height,
			Size: im.size, SHA256: strings.Repeat("0", 64), CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		m.images[im.name] = it.ID
	}
	srv := httptest.NewServer(api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend, MaxBodyBytes: 64 << 10,
		Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret)}, Posts: w.PostsService(&fakeRunner{started: map[string]int{}}),
	}))
	t.Cleanup(srv.Close)
	m.postsAPI = &postsAPI{srv: srv}
	return m
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// A post's images and each variant's go in as media lists, are stored in
// their canonical ids, and come back on GET, in lists and after edits: a
// variant's absent media inherits the post's, [] sends none; an edit
// without media leaves them, media [] removes them.
func TestPostMediaRoundTrip(t *testing.T) {
	m := newMediaPostsAPI(t)
	s := newSchemas(t)
	cat, dog := m.images["cat"], m.images["dog"]
	call := func(method, template, path string, body any) map[string]any {
		t.Helper()
		b := ""
		if body != nil {
			b = mustJSON(body)
		}
		status, raw := m.raw(t, method, path, b)
		s.check(method, template, status, raw)
		if status >= 300 {
			t.Fatalf("%s %s = %d %s", method, path, status, raw)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	// mediaOf is the list of (id, altText) of a post's media, or of its
	// variant for account; "absent" when there is none.
	mediaOf := func(post map[string]any, account string) string {
		holder := post
		if account != "" {
			holder, _ = post["variants"].(map[string]any)[account].(map[string]any)
		}
		list, ok := holder["media"].([]any)
		if !ok {
			return "absent"
		}
		var out []string
		for _, r := range list {
			r := r.(map[string]any)
			out = append(out, fmt.Sprintf("%v=%v", r["id"], r["altText"]))
		}
		return "[" + strings.Join(out, " ") + "]"
	}

	created := call("POST", "/posts", "/posts", map[string]any{
		"content": "two pets", "socialAccountIds": []string{m.linkedin, m.pics},
		"media": []map[string]string{{"id": strings.ToUpper(cat), "altText": "a cat on a mat"}, {"id": dog}},
		// LinkedIn takes no images yet: its variant sends none.
		"variants": map[string]any{m.linkedin: map[string]any{"content": "two pets, in words", "media": []any{}}},
	})
	id := created["id"].(string)
	wantPost := fmt.Sprintf("[%s=a cat on a mat %s=<nil>]", cat, dog)
	for _, got := range []map[string]any{created, call("GET", "/posts/{id}", "/posts/"+id, nil)} {
		if mediaOf(got, "") != wantPost || mediaOf(got, m.linkedin) != "[]" {
			t.Errorf("post media %s, LinkedIn's %s; want %s and []", mediaOf(got, ""), mediaOf(got, m.linkedin), wantPost)
		}
	}
	page := call("GET", "/posts", "/posts", nil)
	if listed := page["posts"].([]any)[0].(map[string]any); mediaOf(listed, "") != wantPost {
		t.Errorf("listed media %s, want %s", mediaOf(listed, ""), wantPost)
	}

	// Pics gets the dog alone; the post's media stay as they were.
	edited := call("PATCH", "/posts/{id}", "/posts/"+id, map[string]any{"variants": map[string]any{
		m.linkedin: map[string]any{"content": "two pets, in words", "media": []any{}},
		m.pics:     map[string]any{"content": "a dog", "media": []map[string]string{{"id": dog, "altText": "a dog"}}},
	}})
	if mediaOf(edited, "") != wantPost || mediaOf(edited, m.pics) != fmt.Sprintf("[%s=a dog]", dog) || mediaOf(edited, m.linkedin) != "[]" {
		t.Errorf("after editing the variants: %v", edited)
	}
	// A variant without media inherits again.
	edited = call("PATCH", "/posts/{id}", "/posts/"+id, map[string]any{"variants": map[string]any{
		m.linkedin: map[string]any{"content": "two pets, in words", "media": []any{}},
		m.pics:     map[string]any{"content": "a dog"},
	}})
	if mediaOf(edited, m.pics) != "absent" {
		t.Errorf("a variant without media: %s, want it absent (inherits)", mediaOf(edited, m.pics))
	}
	edited = call("PATCH", "/posts/{id}", "/posts/"+id, map[string]any{"media": []any{}})
	if got := call("GET", "/posts/{id}", "/posts/"+id, nil); mediaOf(got, "") != "absent" || mediaOf(edited, "") != "absent" {
		t.Errorf("media [] left %s", mediaOf(got, ""))
	}
}

// What a post's media lists may not hold is refused, with the answer the
// document gives: malformed lists 400; images the organization does not
// have, or that a target's network cannot take, 422 naming the image, the
// account and the rule.
func TestPostMediaRefusals(t *testing.T) {
	m := newMediaPostsAPI(t)
	s := newSchemas(t)
	cat, dog, gif, huge := m.images["cat"], m.images["dog"], m.images["gif"], m.images["huge"]
	ref := func(id string) map[string]any { return map[string]any{"id": id} }
	many := []any{}
	for i := range 21 {
		many = append(many, ref(fmt.Sprintf("%024x", i+1)))
	}
	for _, tc := range []struct {
		name     string
		accounts []string
		media    any
		variants map[string]any
		status   int
		code     string
		details  map[string]any // expected members of error.details
	}{
		{name: "not an id", accounts: []string{m.pics}, media: []any{ref("cat.jpg")}, status: 400, code: "invalid_id"},
		{name: "one image twice", accounts: []string{m.pics}, media: []any{ref(cat), ref(strings.ToUpper(cat))}, status: 400, code: "duplicate_media"},
		{name: "21 images", accounts: []string{m.pics}, media: many, status: 400, code: "too_many_media"},
		{name: "alt text over 5,000 bytes", accounts: []string{m.pics}, media: []any{map[string]any{"id": cat, "altText": strings.Repeat("€", 1667)}}, status: 400, code: "invalid_alt_text"},
		{name: "alt text with an escape sequence", accounts: []string{m.pics}, media: []any{map[string]any{"id": cat, "altText": "\x1b[2J"}}, status: 400, code: "invalid_alt_text"},
		{name: "alt text that is no string", accounts: []string{m.pics}, media: []any{map[string]any{"id": cat, "altText": 3}}, status: 400, code: "invalid_field"},
		{name: "an unknown field on an image", accounts: []string{m.pics}, media: []any{map[string]any{"id": cat, "alt": "x"}}, status: 400, code: "unknown_field"},
		{name: "media that is no list", accounts: []string{m.pics}, media: cat, status: 400, code: "invalid_field"},
		{name: "another organization's image", accounts: []string{m.pics}, media: []any{ref(cat), ref(m.images["theirs"])}, status: 422, code: "media_not_found",
			details: map[string]any{"mediaId": m.images["theirs"], "field": "media[1]"}},
		{name: "an image over a network's pixel limit", accounts: []string{m.linkedin}, media: []any{ref(cat), ref(huge)}, status: 422, code: "media_rejected",
			details: map[string]any{"mediaId": huge, "field": "media[1]", "index": 1.0, "accountId": m.linkedin, "platform": "linkedin", "rule": "maxPixels", "limit": 36152319.0, "value": 40000000.0}},
		{name: "a type the network does not take, in a variant", accounts: []string{m.linkedin, m.pics}, media: []any{},
			variants: map[string]any{m.pics: map[string]any{"content": "x", "media": []any{ref(dog), ref(gif)}}}, status: 422, code: "media_rejected",
			details: map[string]any{"mediaId": gif, "field": "variants." + m.pics + ".media[1]", "index": 1.0, "accountId": m.pics, "platform": "pics", "rule": "types",
				"limit": []any{"image/jpeg", "image/png"}, "value": "image/gif"}},
		{name: "alt text longer than the network takes", accounts: []string{m.pics}, media: []any{map[string]any{"id": cat, "altText": strings.Repeat("a", 1501)}}, status: 422, code: "media_rejected",
			details: map[string]any{"rule": "altText", "limit": 1500.0, "value": 1501.0, "unit": "characters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"content": "hi", "socialAccountIds": tc.accounts, "media": tc.media}
			if tc.variants != nil {
				body["variants"] = tc.variants
			}
			status, raw := m.raw(t, "POST", "/posts", mustJSON(body))
			s.check("POST", "/posts", status, raw)
			var out struct {
				Error struct {
					Code    string         `json:"code"`
					Message string         `json:"message"`
					Details map[string]any `json:"details"`
				} `json:"error"`
			}
			_ = json.Unmarshal(raw, &out)
			if status != tc.status || out.Error.Code != tc.code {
				t.Fatalf("POST /posts = %d %s, want %d %s", status, raw, tc.status, tc.code)
			}
			for k, want := range tc.details {
				if got := out.Error.Details[k]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("details.%s = %v, want %v", k, got, want)
				}
				if s, ok := want.(string); ok && k != "rule" && k != "platform" && !strings.Contains(out.Error.Message, s) {
					t.Errorf("message %q does not say %s %q", out.Error.Message, k, s)
				}
			}
			if tc.details == nil && out.Error.Details != nil {
				t.Errorf("details %v on a %s", out.Error.Details, tc.code)
			}
		})
	}
	// An edit is checked too, and a refused one changes nothing.
	status, raw := m.raw(t, "POST", "/posts", mustJSON(map[string]any{"content": "hi", "socialAccountIds": []string{m.linkedin}}))
	var post map[string]any
	_ = json.Unmarshal(raw, &post)
	id, _ := post["id"].(string)
	if status != 201 {
		t.Fatalf("POST /posts = %d %s", status, raw)
	}
	status, raw = m.raw(t, "PATCH", "/posts/"+id, mustJSON(map[string]any{"content": "now with a cat", "media": []any{ref(huge)}}))
	s.check("PATCH", "/posts/{id}", status, raw)
	if status != 422 || !strings.Contains(string(raw), `"media_rejected"`) {
		t.Errorf("PATCH with an image for LinkedIn = %d %s, want 422 media_rejected", status, raw)
	}
	if _, got := m.call(t, "GET", "/posts/"+id, ""); got["content"] != "hi" || got["media"] != nil {
		t.Errorf("after a refused edit: %v", got)
	}
}

// GET /providers shows each network's media rules in the shape the
// document gives, with every field set.
func TestMediaRulesMatchTheOpenAPI(t *testing.T) {
	s := newSchemas(t)
	sch, err := s.c.Compile("openapi.json#/components/schemas/Provider/properties/rules/properties/media")
	if err != nil {
		t.Fatal(err)
	}
	rules := picsRules
	rules.Downscale = true
	rules.AltText.URLLength = 23
	for _, r := range []providers.MediaRules{{}, rules} {
		var v any
		if err := json.Unmarshal([]byte(mustJSON(r)), &v); err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s does not match the document: %v", mustJSON(r), err)
		}
	}
}
