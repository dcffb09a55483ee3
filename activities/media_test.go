package activities_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/activities"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/workflows"
)

// imaging is the sandbox network made to take images with rules a test
// sets: it counts what is uploaded and what each post refers to, and
// fails the calls a test queues. It checks the activity's part (what is
// uploaded, kept, reused, re-encoded); each network's own upload is
// tested against its double and real server in its folder.
type imaging struct {
	providers.Provider
	rules providers.MediaRules

	mu        sync.Mutex
	uploads   []uploaded
	forgotten map[string]bool
	// uploadErrs and publishErrs are returned, first first, before the
	// call goes through.
	uploadErrs, publishErrs []error
	posted                  [][]providers.AttachedImage
}

type uploaded struct {
	img  providers.Image
	data []byte
}

func (p *imaging) Rules() providers.Rules {
	r := p.Provider.Rules()
	r.Media = p.rules
	return r
}

func (p *imaging) MediaLimits(context.Context, providers.Account) (providers.MediaRules, error) {
	return p.rules, nil
}

func (p *imaging) Upload(ctx context.Context, a providers.Account, img providers.Image) (*providers.Upload, error) {
	p.mu.Lock()
	if len(p.uploadErrs) > 0 {
		err := p.uploadErrs[0]
		p.uploadErrs = p.uploadErrs[1:]
		p.mu.Unlock()
		return nil, err
	}
	p.mu.Unlock()
	rc, err := img.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != img.Size {
		return nil, fmt.Errorf("image says %d bytes, streamed %d", img.Size, len(data))
	}
	if p.rules.MaxBytes > 0 && img.Size > p.rules.MaxBytes {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: "sandbox", Code: "TOO_LARGE"}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.uploads = append(p.uploads, uploaded{img, data})
	return &providers.Upload{ID: fmt.Sprintf("upload-%d", len(p.uploads)), UploadedAt: time.Now().UTC()}, nil
}

func (p *imaging) Reusable(_ context.Context, _ providers.Account, u providers.Upload) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.forgotten[u.ID], nil
}

func (p *imaging) Publish(ctx context.Context, a providers.Account, pl providers.Payload) (*providers.Published, error) {
	p.mu.Lock()
	if len(p.publishErrs) > 0 {
		err := p.publishErrs[0]
		p.publishErrs = p.publishErrs[1:]
		p.mu.Unlock()
		return nil, err
	}
	p.posted = append(p.posted, pl.Images)
	p.mu.Unlock()
	// The uploads are this double's, not the sandbox's: the sandbox gets
	// the text.
	pl.Images = nil
	return p.Provider.Publish(ctx, a, pl)
}

// library is a media library in memory: the activity's side of it.
type library struct {
	items  map[string]*media.Item
	data   map[string][]byte
	budget *media.Budget
}

func (l *library) Fit(ctx context.Context, r io.Reader, typ string, maxBytes int64) (*media.Fitted, error) {
	return media.Fit(ctx, r, typ, maxBytes, l.budget)
}

func (l *library) Get(_ context.Context, orgID, id string) (*media.Item, error) {
	it, ok := l.items[id]
	if !ok || it.OrganizationID != orgID {
		return nil, media.ErrNotFound
	}
	return it, nil
}

func (l *library) OpenItem(_ context.Context, it *media.Item) (io.ReadCloser, error) {
	data, ok := l.data[it.ID]
	if !ok {
		return nil, media.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// add stores a JPEG of w×h pixels (noisy when big is true, so that it is
// large) for org and returns its id.
func (l *library) add(t *testing.T, org string, w, h int, noisy bool) string {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	x := uint32(88172645)
	for i := 0; i < w*h; i++ {
		c := color.RGBA{uint8(i % 251), 90, 200, 255}
		if noisy {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			c.R, c.G = uint8(x), uint8(x>>8)
		}
		m.Set(i%w, i/w, c)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%024x", len(l.items)+1)
	l.items[id] = &media.Item{ID: id, OrganizationID: org, Type: media.TypeJPEG, Width: w, Height: h, Size: int64(buf.Len())}
	l.data[id] = buf.Bytes()
	return id
}

// imageWorld is an account on the imaging network, with its library.
type imageWorld struct {
	tw      *testworld.World
	net     *imaging
	lib     *library
	env     *testsuite.TestActivityEnvironment
	account *connections.Account
}

func newImageWorld(t *testing.T, rules providers.MediaRules) *imageWorld {
	t.Helper()
	tw := testworld.New(t, testworld.Options{Sandbox: true})
	account := tw.MustConnectSandbox(t, "org-1", "user-1", "ada")
	sbx, _ := tw.Registry.Get("sandbox")
	net := &imaging{Provider: sbx, rules: rules, forgotten: map[string]bool{}}
	reg, err := providers.NewRegistry(net)
	if err != nil {
		t.Fatal(err)
	}
	budget, err := media.NewBudget(media.DefaultDecodeMemory)
	if err != nil {
		t.Fatal(err)
	}
	lib := &library{items: map[string]*media.Item{}, data: map[string][]byte{}, budget: budget}
	acts := &activities.Activities{Posts: tw.Store.Posts(), Accounts: tw.Store.Accounts(), Tokens: tw.Connections, Providers: reg, Media: lib}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts.Register(env)
	return &imageWorld{tw: tw, net: net, lib: lib, env: env, account: account}
}

func (w *imageWorld) post(t *testing.T, refs []posts.MediaRef, variant *[]posts.MediaRef) *posts.Post {
	t.Helper()
	now := time.Now().UTC()
	p := &posts.Post{OrganizationID: w.account.OrganizationID, Content: "with images " + now.String(), SocialAccountIDs: []string{w.account.ID},
		Media: refs, Status: posts.StatusPublishing, CreatedAt: now, UpdatedAt: now}
	if variant != nil {
		p.Variants = map[string]posts.Variant{w.account.ID: {Media: variant}}
	}
	p, err := w.tw.Store.Posts().Create(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *imageWorld) publish(t *testing.T, p *posts.Post) (*workflows.AccountOutcome, error) {
	t.Helper()
	v, err := w.env.ExecuteActivity(workflows.PublishToAccountActivity, workflows.AccountInput{PostID: p.ID, AccountID: w.account.ID})
	if err != nil {
		return nil, err
	}
	var out workflows.AccountOutcome
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return &out, nil
}

func (w *imageWorld) result(t *testing.T, p *posts.Post) *posts.Result {
	t.Helper()
	r, err := w.tw.Store.Posts().Result(context.Background(), p.ID, w.account.ID)
	if err != nil || r == nil {
		t.Fatalf("result: %+v, %v", r, err)
	}
	return r
}

var sandboxImages = providers.MediaRules{MaxImages: 4, Types: []string{media.TypeJPEG}, MaxBytes: 5 << 20}

// The images go up once each, in order, with their alt texts, are kept
// with the result before the post is made, and a retry after the post was
// refused refers to them again without uploading.
func TestImagesUploadedOnceAndReused(t *testing.T) {
	w := newImageWorld(t, sandboxImages)
	a, b := w.lib.add(t, "org-1", 64, 48, false), w.lib.add(t, "org-1", 30, 60, false)
	p := w.post(t, []posts.MediaRef{{ID: a, AltText: "a cat"}, {ID: b, AltText: "a dog"}}, nil)

	w.net.publishErrs = []error{&providers.Error{Kind: providers.KindRetryable, Provider: "sandbox", Code: "HTTP_503", Status: 503}}
	if _, err := w.publish(t, p); err == nil {
		t.Fatal("the refused post published")
	}
	r := w.result(t, p)
	if r.Status != posts.ResultPending || len(r.Media) != 2 || r.Media[0].MediaID != a || r.Media[1].MediaID != b {
		t.Fatalf("after a refused post: %+v", r)
	}
	out, err := w.publish(t, p)
	if err != nil || out.Status != "published" {
		t.Fatalf("retry: %+v, %v", out, err)
	}
	if n := len(w.net.uploads); n != 2 {
		t.Errorf("%d uploads, want 2: the retry uploaded again", n)
	}
	if len(w.net.posted) != 1 {
		t.Fatalf("posted %d times", len(w.net.posted))
	}
	got := w.net.posted[0]
	want := []providers.AttachedImage{
		{Upload: r.Media[0].Upload, AltText: "a cat", Width: 64, Height: 48},
		{Upload: r.Media[1].Upload, AltText: "a dog", Width: 30, Height: 60},
	}
	if len(got) != 2 || got[0].Upload.ID != want[0].Upload.ID || got[0].AltText != want[0].AltText || got[0].Width != 64 ||
		got[1].Upload.ID != want[1].Upload.ID || got[1].AltText != "a dog" || got[1].Height != 60 {
		t.Errorf("post refers to %+v\nwant %+v", got, want)
	}
	if !bytes.Equal(w.net.uploads[0].data, w.lib.data[a]) || w.net.uploads[0].img.AltText != "a cat" {
		t.Error("the first upload is not the first image's bytes")
	}
}

// An upload the network forgot is uploaded again; the others are reused.
func TestForgottenUploadIsUploadedAgain(t *testing.T) {
	w := newImageWorld(t, sandboxImages)
	a, b := w.lib.add(t, "org-1", 20, 20, false), w.lib.add(t, "org-1", 20, 20, false)
	p := w.post(t, []posts.MediaRef{{ID: a}, {ID: b}}, nil)
	w.net.publishErrs = []error{&providers.Error{Kind: providers.KindRateLimited, Provider: "sandbox", Code: "HTTP_429", Status: 429, RetryAfter: time.Second}}
	if _, err := w.publish(t, p); err == nil {
		t.Fatal("the rate-limited post published")
	}
	w.net.forgotten[w.result(t, p).Media[0].ID] = true
	if out, err := w.publish(t, p); err != nil || out.Status != "published" {
		t.Fatalf("retry: %+v, %v", out, err)
	}
	if n := len(w.net.uploads); n != 3 {
		t.Fatalf("%d uploads, want 3 (two, then the forgotten one again)", n)
	}
	if w.net.uploads[2].img.MediaID != a {
		t.Errorf("uploaded %s again, want %s", w.net.uploads[2].img.MediaID, a)
	}
	if got := w.net.posted[0]; got[0].Upload.ID != "upload-3" || got[1].Upload.ID != "upload-2" {
		t.Errorf("post refers to %s and %s", got[0].Upload.ID, got[1].Upload.ID)
	}
}

// An image over a byte limit the network lets PostFlow fit to is
// re-encoded before it goes up, and the result says so; a retry reuses it
// with the re-encoded dimensions.
func TestImageFittedToTheNetworksLimit(t *testing.T) {
	rules := sandboxImages
	rules.MaxBytes, rules.Downscale = 200_000, true
	w := newImageWorld(t, rules)
	big := w.lib.add(t, "org-1", 900, 600, true)
	if w.lib.items[big].Size <= rules.MaxBytes {
		t.Fatalf("test image is only %d bytes", w.lib.items[big].Size)
	}
	p := w.post(t, []posts.MediaRef{{ID: big, AltText: "noise"}}, nil)
	w.net.publishErrs = []error{&providers.Error{Kind: providers.KindRetryable, Provider: "sandbox", Code: "HTTP_503", Status: 503}}
	if _, err := w.publish(t, p); err == nil {
		t.Fatal("the refused post published")
	}
	if out, err := w.publish(t, p); err != nil || out.Status != "published" {
		t.Fatalf("retry: %+v, %v", out, err)
	}
	if len(w.net.uploads) != 1 {
		t.Fatalf("%d uploads, want 1", len(w.net.uploads))
	}
	up := w.net.uploads[0]
	if int64(len(up.data)) > rules.MaxBytes || up.img.Size != int64(len(up.data)) || media.Sniff(up.data) != media.TypeJPEG {
		t.Errorf("uploaded %d bytes (says %d) of %s, limit %d", len(up.data), up.img.Size, media.Sniff(up.data), rules.MaxBytes)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(up.data))
	if err != nil || cfg.Width >= 900 || cfg.Width != up.img.Width || cfg.Height != up.img.Height {
		t.Errorf("uploaded %dx%d (%v), says %dx%d", cfg.Width, cfg.Height, err, up.img.Width, up.img.Height)
	}
	r := w.result(t, p)
	if len(r.Media) != 1 || !strings.Contains(r.Media[0].Adjusted, "re-encoded") || r.Media[0].Width != cfg.Width {
		t.Errorf("result media %+v", r.Media)
	}
	if got := w.net.posted[0][0]; got.Width != cfg.Width || got.Height != cfg.Height {
		t.Errorf("the retry's post gives %dx%d, the upload is %dx%d", got.Width, got.Height, cfg.Width, cfg.Height)
	}
}

// An upload that fails made no post: the result is pending, not in doubt,
// and the error decides as a refusal of the post would; an image gone from
// the library fails the account; a variant with no images uploads none.
func TestUploadFailures(t *testing.T) {
	t.Run("503 on upload: retried, not in doubt", func(t *testing.T) {
		w := newImageWorld(t, sandboxImages)
		p := w.post(t, []posts.MediaRef{{ID: w.lib.add(t, "org-1", 8, 8, false)}}, nil)
		w.net.uploadErrs = []error{&providers.Error{Kind: providers.KindRetryable, Provider: "sandbox", Code: "HTTP_504", Status: 504}}
		_, err := w.publish(t, p)
		var appErr interface{ Type() string }
		if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrPlatformUnavailable {
			t.Fatalf("error %v, want %s", err, workflows.ErrPlatformUnavailable)
		}
		if r := w.result(t, p); r.Status != posts.ResultPending || r.InDoubt() {
			t.Errorf("result %+v, want pending and not in doubt (no post was sent)", r)
		}
		if len(w.net.posted) != 0 {
			t.Error("posted after a failed upload")
		}
	})
	t.Run("429 on upload: a timed wait", func(t *testing.T) {
		w := newImageWorld(t, sandboxImages)
		p := w.post(t, []posts.MediaRef{{ID: w.lib.add(t, "org-1", 8, 8, false)}}, nil)
		w.net.uploadErrs = []error{&providers.Error{Kind: providers.KindRateLimited, Provider: "sandbox", Code: "HTTP_429", Status: 429, RetryAfter: time.Minute}}
		_, err := w.publish(t, p)
		var appErr interface{ Type() string }
		if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrRateLimited {
			t.Fatalf("error %v, want %s", err, workflows.ErrRateLimited)
		}
	})
	t.Run("image deleted from the library", func(t *testing.T) {
		w := newImageWorld(t, sandboxImages)
		id := w.lib.add(t, "org-1", 8, 8, false)
		p := w.post(t, []posts.MediaRef{{ID: id}}, nil)
		delete(w.lib.items, id)
		out, err := w.publish(t, p)
		if err != nil || out.Status != "failed" || out.ErrorCode != activities.CodeMediaNotFound {
			t.Fatalf("outcome %+v, %v; want failed %s", out, err, activities.CodeMediaNotFound)
		}
	})
	t.Run("another organization's image", func(t *testing.T) {
		w := newImageWorld(t, sandboxImages)
		p := w.post(t, []posts.MediaRef{{ID: w.lib.add(t, "org-2", 8, 8, false)}}, nil)
		if out, err := w.publish(t, p); err != nil || out.ErrorCode != activities.CodeMediaNotFound {
			t.Fatalf("outcome %+v, %v; want failed %s", out, err, activities.CodeMediaNotFound)
		}
	})
	t.Run("a variant with no images", func(t *testing.T) {
		w := newImageWorld(t, sandboxImages)
		p := w.post(t, []posts.MediaRef{{ID: w.lib.add(t, "org-1", 8, 8, false)}}, &[]posts.MediaRef{})
		if out, err := w.publish(t, p); err != nil || out.Status != "published" {
			t.Fatalf("outcome %+v, %v", out, err)
		}
		if len(w.net.uploads) != 0 || len(w.net.posted[0]) != 0 {
			t.Errorf("uploaded %d, posted with %d images; want none", len(w.net.uploads), len(w.net.posted[0]))
		}
	})
}
