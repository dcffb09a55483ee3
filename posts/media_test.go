package posts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// network is a provider that declares the media rules a test gives it (or
// fails to read them: limitsErr) and takes any text.
type network struct {
	providers.Provider
	id        string
	rules     providers.MediaRules
	limitsErr error
}

type oauthStub struct{ providers.OAuth }

func (n network) ID() string                 { return n.id }
func (n network) Name() string               { return "Net " + n.id }
func (n network) Rules() providers.Rules     { return providers.Rules{Media: n.rules} }
func (n network) Connect() providers.Connect { return providers.Connect{OAuth: oauthStub{}} }
func (n network) TextLimits(context.Context, providers.Account) ([]providers.TextLimit, error) {
	return nil, nil
}
func (n network) MediaLimits(context.Context, providers.Account) (providers.MediaRules, error) {
	return n.rules, n.limitsErr
}

// mediaWorld is a posts.Service over the real stores (posts, accounts,
// the media library's records) and networks of declared rules, with one
// account of org-a on each and images in the library.
type mediaWorld struct {
	svc      *posts.Service
	accounts map[string]string // network id -> account id
	images   map[string]string // name -> media id
}

var rules = map[string]providers.MediaRules{
	// Most rules, as LinkedIn or Mastodon declare them.
	"pics": {MaxImages: 4, Types: []string{"image/jpeg", "image/png"}, MaxBytes: 5_000_000, MaxPixels: 36_000_000,
		AltText: providers.Characters(1500)},
	// Bluesky's kind: over MaxBytes is re-encoded, not refused.
	"shrinks": {MaxImages: 4, Types: []string{"image/jpeg", "image/png"}, MaxBytes: 1_000_000, Downscale: true,
		AltText: providers.Graphemes(2000)},
	// A network that takes no images (the zero value).
	"textonly": {},
	// A server whose limits are unknown but for the count.
	"vague": {MaxImages: 4},
}

func newMediaWorld(t *testing.T) *mediaWorld {
	t.Helper()
	ctx := context.Background()
	store := mongotest.Store(t)
	var provs []providers.Provider
	for id, r := range rules {
		provs = append(provs, network{id: id, rules: r})
	}
	// Its limits cannot be read now: the network decides.
	provs = append(provs, network{id: "down", limitsErr: errors.New("instance unreachable")})
	reg, err := providers.NewRegistry(provs...)
	if err != nil {
		t.Fatal(err)
	}
	w := &mediaWorld{
		svc:      posts.NewService(store.Posts(), store.Accounts(), reg, nil, store.Media().Usable()),
		accounts: map[string]string{},
		images:   map[string]string{},
	}
	for _, p := range provs {
		a, err := store.Accounts().Upsert(ctx, &connections.Account{OrganizationID: "org-a", Platform: p.ID(), PlatformUserID: "u-" + p.ID(),
			DisplayName: "Ada on " + p.ID(), AccessToken: "sealed", Status: connections.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		w.accounts[p.ID()] = a.ID
	}
	items := store.Media()
	for _, im := range []struct {
		name, org, typ string
		w, h           int
		size           int64
	}{
		{"jpeg", "org-a", "image/jpeg", 2000, 1000, 800_000},
		{"jpeg2", "org-a", "image/jpeg", 1000, 1000, 300_000},
		{"jpeg3", "org-a", "image/jpeg", 1000, 1000, 300_000},
		{"jpeg4", "org-a", "image/jpeg", 1000, 1000, 300_000},
		{"png", "org-a", "image/png", 1000, 800, 600_000},
		{"webp", "org-a", "image/webp", 1000, 800, 200_000},
		{"big", "org-a", "image/jpeg", 4000, 3000, 6_000_000},
		{"huge", "org-a", "image/png", 8000, 6000, 4_000_000},
		{"foreign", "org-b", "image/jpeg", 100, 100, 10_000},
	} {
		it, err := items.Create(ctx, &media.Item{ID: items.NewID(), OrganizationID: im.org, Type: im.typ, Width: im.w, Height: im.h,
			Size: im.size, SHA256: strings.Repeat("0", 64), CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		w.images[im.name] = it.ID
	}
	return w
}

// refs names images of the world, with alt text after a '=' ("jpeg=a
// cat").
func (w *mediaWorld) refs(names ...string) *[]posts.MediaRef {
	out := []posts.MediaRef{}
	for _, n := range names {
		name, alt, _ := strings.Cut(n, "=")
		id, ok := w.images[name]
		if !ok {
			id = name // an id of no image
		}
		out = append(out, posts.MediaRef{ID: id, AltText: alt})
	}
	return &out
}

// input is a post to the accounts on nets, with the post's images and
// variants' (by network id).
func (w *mediaWorld) input(nets []string, media *[]posts.MediaRef, variants map[string]*[]posts.MediaRef) posts.Input {
	content := "hello"
	in := posts.Input{Content: &content, Media: media}
	var accs []string
	for _, n := range nets {
		accs = append(accs, w.accounts[n])
	}
	in.SocialAccountIDs = &accs
	if variants != nil {
		vs := map[string]posts.Variant{}
		for n, m := range variants {
			vs[w.accounts[n]] = posts.Variant{Content: "hi " + n, Media: m}
		}
		in.Variants = &vs
	}
	return in
}

// Each target account's images are checked against its network's rules
// at creation: the first image that breaks one is a 422 media_rejected
// naming it, its place, the account, the rule, the limit and its value.
func TestMediaCheckedForEachTarget(t *testing.T) {
	w := newMediaWorld(t)
	ctx := context.Background()
	alt := func(n int) string { return "=" + strings.Repeat("é", n) }
	type rejection struct {
		net, image, field string
		index             int
		rule              string
		limit, value      any
	}
	for _, tc := range []struct {
		name     string
		nets     []string
		media    []string
		variants map[string][]string // nil entry: inherit
		want     *rejection
	}{
		{name: "fits", nets: []string{"pics", "shrinks"}, media: []string{"jpeg=a cat", "png"}},
		{name: "four is the most", nets: []string{"pics"}, media: []string{"jpeg", "jpeg2", "jpeg3", "jpeg4"}},
		{name: "a fifth image", nets: []string{"shrinks", "pics"}, media: []string{"jpeg", "jpeg2", "jpeg3", "jpeg4", "png"},
			want: &rejection{"shrinks", "png", "media[4]", 4, "maxImages", 4, 5}},
		{name: "a type the network does not take", nets: []string{"pics"}, media: []string{"jpeg", "webp"},
			want: &rejection{"pics", "webp", "media[1]", 1, "types", []any{"image/jpeg", "image/png"}, "image/webp"}},
		{name: "over the byte limit", nets: []string{"pics"}, media: []string{"big"},
			want: &rejection{"pics", "big", "media[0]", 0, "maxBytes", 5_000_000, 6_000_000}},
		{name: "over the byte limit of a network that downscales", nets: []string{"shrinks"}, media: []string{"big"}},
		{name: "over the pixel limit", nets: []string{"pics"}, media: []string{"jpeg", "huge"},
			want: &rejection{"pics", "huge", "media[1]", 1, "maxPixels", 36_000_000, 48_000_000}},
		{name: "1,500 characters of alt text", nets: []string{"pics"}, media: []string{"jpeg" + alt(1500)}},
		{name: "1,501 characters of alt text", nets: []string{"shrinks", "pics"}, media: []string{"jpeg", "png" + alt(1501)},
			want: &rejection{"pics", "png", "media[1]", 1, "altText", 1500, 1501}},
		{name: "a network that takes no images", nets: []string{"pics", "textonly"}, media: []string{"jpeg"},
			want: &rejection{"textonly", "jpeg", "media[0]", 0, "maxImages", 0, 1}},
		{name: "a variant with none for it", nets: []string{"pics", "textonly"}, media: []string{"jpeg"},
			variants: map[string][]string{"textonly": {}}},
		{name: "a variant's own images", nets: []string{"pics", "shrinks"}, media: []string{"jpeg"},
			variants: map[string][]string{"shrinks": {"png", "webp"}},
			want:     &rejection{"shrinks", "webp", "variants.{shrinks}.media[1]", 1, "types", []any{"image/jpeg", "image/png"}, "image/webp"}},
		{name: "a variant that inherits", nets: []string{"pics", "shrinks"}, media: []string{"webp"},
			variants: map[string][]string{"shrinks": nil},
			want:     &rejection{"pics", "webp", "media[0]", 0, "types", []any{"image/jpeg", "image/png"}, "image/webp"}},
		{name: "limits unknown now: the network decides", nets: []string{"down"}, media: []string{"webp", "big", "huge", "jpeg", "png" + alt(2400)}},
		{name: "only the count known", nets: []string{"vague"}, media: []string{"webp", "big", "huge", "png" + alt(2400)}},
		{name: "only the count known, and over it", nets: []string{"vague"}, media: []string{"webp", "big", "huge", "jpeg", "png"},
			want: &rejection{"vague", "png", "media[4]", 4, "maxImages", 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var variants map[string]*[]posts.MediaRef
			if tc.variants != nil {
				variants = map[string]*[]posts.MediaRef{}
				for n, names := range tc.variants {
					if names == nil {
						variants[n] = nil
						continue
					}
					variants[n] = w.refs(names...)
				}
			}
			p, err := w.svc.Create(ctx, "org-a", w.input(tc.nets, w.refs(tc.media...), variants))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Create: %v, want created", err)
				}
				if got := len(p.MediaFor(w.accounts[tc.nets[0]])); tc.variants == nil && got != len(tc.media) {
					t.Errorf("created with %d images for %s, want %d", got, tc.nets[0], len(tc.media))
				}
				return
			}
			var inv *posts.InvalidError
			if !errors.As(err, &inv) || inv.Code != "media_rejected" || inv.Kind != posts.Unacceptable {
				t.Fatalf("Create: %v, want media_rejected", err)
			}
			d, ok := inv.Details.(posts.MediaRejection)
			if !ok {
				t.Fatalf("details %#v, want a MediaRejection", inv.Details)
			}
			want := tc.want
			acc := w.accounts[want.net]
			field := strings.ReplaceAll(want.field, "{"+want.net+"}", acc)
			if d.MediaID != w.images[want.image] || d.Field != field || d.Index != want.index || d.AccountID != acc ||
				d.Platform != want.net || d.Rule != want.rule ||
				fmt.Sprint(d.Limit) != fmt.Sprint(want.limit) || fmt.Sprint(d.Value) != fmt.Sprint(want.value) {
				t.Errorf("details %+v, want %+v (image %s, account %s)", d, *want, w.images[want.image], acc)
			}
			for _, says := range []string{w.images[want.image], field, acc, "Ada on " + want.net, "Net " + want.net,
				fmt.Sprint(want.value), fmt.Sprintf("Image %d ", want.index+1)} {
				if !strings.Contains(inv.Message, strings.Trim(says, "[]")) {
					t.Errorf("message %q does not say %q", inv.Message, says)
				}
			}
		})
	}
}

// Media ids and alt text are refused as malformed (400) before any
// network's rules are read; ids are kept in their one spelling.
func TestMediaInputIsWellFormed(t *testing.T) {
	w := newMediaWorld(t)
	ctx := context.Background()
	jpeg := w.images["jpeg"]
	ref := func(id, alt string) posts.MediaRef { return posts.MediaRef{ID: id, AltText: alt} }
	many := []posts.MediaRef{}
	for range posts.MaxMedia + 1 {
		many = append(many, ref(fmt.Sprintf("%024x", len(many)+1), ""))
	}
	for _, tc := range []struct {
		name     string
		media    []posts.MediaRef
		variant  *[]posts.MediaRef // for "pics"
		wantCode string
		wantKind posts.InvalidKind
	}{
		{"an id in capitals is the same image", []posts.MediaRef{ref(strings.ToUpper(jpeg), "")}, nil, "", 0},
		{"no id", []posts.MediaRef{ref("", "")}, nil, "invalid_id", posts.Malformed},
		{"not an id", []posts.MediaRef{ref("cat.jpg", "")}, nil, "invalid_id", posts.Malformed},
		{"a variant's id", nil, &[]posts.MediaRef{ref(jpeg[:20], "")}, "invalid_id", posts.Malformed},
		{"one image twice, spelled two ways", []posts.MediaRef{ref(jpeg, "a"), ref(strings.ToUpper(jpeg), "b")}, nil, "duplicate_media", posts.Malformed},
		{"twice in a variant", nil, &[]posts.MediaRef{ref(jpeg, ""), ref(jpeg, "")}, "duplicate_media", posts.Malformed},
		{"the post's and a variant's may share", []posts.MediaRef{ref(jpeg, "")}, &[]posts.MediaRef{ref(jpeg, "")}, "", 0},
		{"21 images", many, nil, "too_many_media", posts.Malformed},
		{"5,000 bytes of alt text", []posts.MediaRef{ref(jpeg, strings.Repeat("a", 5000))}, &[]posts.MediaRef{}, "", 0},
		{"5,001 bytes of alt text", []posts.MediaRef{ref(jpeg, strings.Repeat("a", 4999)+"é")}, nil, "invalid_alt_text", posts.Malformed},
		{"a control character in alt text", []posts.MediaRef{ref(jpeg, "a\x1b[31mcat")}, nil, "invalid_alt_text", posts.Malformed},
		{"a noncharacter in alt text", []posts.MediaRef{ref(jpeg, "a cat\uFFFE")}, nil, "invalid_alt_text", posts.Malformed},
		{"alt text with nothing visible", []posts.MediaRef{ref(jpeg, " \u200b ")}, nil, "invalid_alt_text", posts.Malformed},
		{"alt text with line breaks", []posts.MediaRef{ref(jpeg, "a cat\r\non a mat")}, nil, "", 0},
		{"an id of no image", []posts.MediaRef{ref("0123456789abcdef01234567", "")}, nil, "media_not_found", posts.Unacceptable},
		{"another organization's image", nil, &[]posts.MediaRef{ref(w.images["foreign"], "")}, "media_not_found", posts.Unacceptable},
		// Every list is checked, even the post's that its one account
		// does not get: a variant removed later falls back to it.
		{"an unknown image no account gets", []posts.MediaRef{ref("0123456789abcdef01234567", "")}, &[]posts.MediaRef{}, "media_not_found", posts.Unacceptable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var variants map[string]*[]posts.MediaRef
			if tc.variant != nil {
				variants = map[string]*[]posts.MediaRef{"pics": tc.variant}
			}
			media := tc.media
			p, err := w.svc.Create(ctx, "org-a", w.input([]string{"pics"}, &media, variants))
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("Create: %v, want created", err)
				}
				for _, r := range p.Media {
					if r.ID != strings.ToLower(r.ID) {
						t.Errorf("stored id %q, want its canonical spelling", r.ID)
					}
				}
				return
			}
			var inv *posts.InvalidError
			if !errors.As(err, &inv) || inv.Code != tc.wantCode || inv.Kind != tc.wantKind {
				t.Fatalf("Create: %v, want %s", err, tc.wantCode)
			}
			if tc.wantCode == "media_not_found" {
				if d, ok := inv.Details.(posts.MediaNotFound); !ok || !strings.Contains(inv.Message, d.MediaID) || !strings.HasPrefix(inv.Message, d.Field) {
					t.Errorf("details %#v, message %q: want the image and where it is named", inv.Details, inv.Message)
				}
			}
		})
	}
}

// An edit is checked as a creation is: adding an image a network cannot
// take is refused and leaves the post as it was; media [] removes them
// and a variant's media [] sends none.
func TestMediaCheckedOnEdit(t *testing.T) {
	w := newMediaWorld(t)
	ctx := context.Background()
	p, err := w.svc.Create(ctx, "org-a", w.input([]string{"pics", "textonly"}, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(in posts.Input) (*posts.Post, error) {
		in.Content, in.SocialAccountIDs = nil, nil
		return w.svc.Update(ctx, "org-a", p.ID, in)
	}
	var inv *posts.InvalidError
	if _, err := edit(w.input(nil, w.refs("jpeg=a cat"), nil)); !errors.As(err, &inv) || inv.Code != "media_rejected" {
		t.Fatalf("an image to a network that takes none: %v, want media_rejected", err)
	}
	got, _, err := w.svc.Get(ctx, "org-a", p.ID)
	if err != nil || len(got.Media) != 0 {
		t.Fatalf("after a refused edit: %+v, %v; want no images", got, err)
	}
	in := w.input(nil, w.refs("jpeg=a cat"), map[string]*[]posts.MediaRef{"textonly": w.refs()})
	if got, err = edit(in); err != nil {
		t.Fatalf("images for pics, none for textonly: %v", err)
	}
	if m := got.MediaFor(w.accounts["pics"]); len(m) != 1 || m[0].AltText != "a cat" {
		t.Errorf("pics gets %+v, want the cat", m)
	}
	if m := got.MediaFor(w.accounts["textonly"]); m == nil || len(m) != 0 {
		t.Errorf("textonly gets %#v, want none ([])", m)
	}
	if got, err = edit(posts.Input{Media: w.refs()}); err != nil || len(got.MediaFor(w.accounts["pics"])) != 0 {
		t.Errorf("media [] removes the post's images: %+v, %v", got, err)
	}
}
