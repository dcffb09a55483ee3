package sandboxplatform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/internal/mongotest"
)

func pngBytes(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 6, 4))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 6, 4))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload posts data as typ to POST /api/media and returns the status and
// the id answered.
func (s *sandbox) upload(token, typ string, data []byte) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/api/media", bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", typ)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ ID string }
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out.ID
}

// post creates a post with images, with an Idempotency-Key unless key is
// "", and answers the status and error code, or the post's id.
func (s *sandbox) post(token, text, key string, media []postImageRequest) (status int, code, id string) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"text": text, "media": media})
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/api/posts", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Error, ID string }
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out.Error, out.ID
}

func TestUploadRefusals(t *testing.T) {
	s := newSandbox(t, Options{MaxImageBytes: 4 << 10})
	_, token := s.connect("Ada")
	big := make([]byte, 5<<10)
	copy(big, pngBytes(t, 1))
	for _, tc := range []struct {
		name string
		typ  string
		data []byte
		want int
	}{
		{"a PNG", "image/png", pngBytes(t, 1), http.StatusCreated},
		{"a JPEG, its type with parameters", "image/jpeg; charset=binary", jpegBytes(t), http.StatusCreated},
		{"a PNG called a JPEG", "image/jpeg", pngBytes(t, 1), http.StatusUnsupportedMediaType},
		{"an executable called a PNG", "image/png", append([]byte("MZ\x90\x00"), make([]byte, 60)...), http.StatusUnsupportedMediaType},
		{"a PDF", "application/pdf", []byte("%PDF-1.7\n"), http.StatusUnsupportedMediaType},
		{"over the cap", "image/png", big, http.StatusRequestEntityTooLarge},
		{"empty", "image/png", nil, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, id := s.upload(token, tc.typ, tc.data)
			if status != tc.want || (status == http.StatusCreated) != (id != "") {
				t.Errorf("upload: %d %q, want %d", status, id, tc.want)
			}
		})
	}
	if status, _ := s.upload("not-a-token", "image/png", pngBytes(t, 1)); status != http.StatusUnauthorized {
		t.Errorf("upload without a valid token: %d", status)
	}
}

// A post takes up to 4 of its user's own images, with alt text of up to
// 1,500 graphemes (an emoji family is one).
func TestPostImagesChecked(t *testing.T) {
	s := newSandbox(t, Options{})
	_, ada := s.connect("Ada")
	_, grace := s.connect("Grace")
	var mine []string
	for i := range 5 {
		status, id := s.upload(ada, "image/png", pngBytes(t, uint8(i)))
		if status != http.StatusCreated {
			t.Fatalf("upload %d: %d", i, status)
		}
		mine = append(mine, id)
	}
	_, theirs := s.upload(grace, "image/png", pngBytes(t, 9))
	images := func(ids ...string) []postImageRequest {
		var out []postImageRequest
		for _, id := range ids {
			out = append(out, postImageRequest{ID: id, AltText: "alt"})
		}
		return out
	}
	for i, tc := range []struct {
		name   string
		media  []postImageRequest
		status int
		code   string
	}{
		{"four images", images(mine[:4]...), http.StatusCreated, ""},
		{"five images", images(mine...), http.StatusUnprocessableEntity, "too_many_media"},
		{"another user's image", images(mine[0], theirs), http.StatusUnprocessableEntity, "unknown_media"},
		{"an image never uploaded", images("sbm_nothing"), http.StatusUnprocessableEntity, "unknown_media"},
		{"four alt texts of 1,500 graphemes", func() []postImageRequest {
			out := images(mine[:4]...)
			for i := range out {
				out[i].AltText = strings.Repeat("👩‍👩‍👧", AltTextLimit)
			}
			return out
		}(), http.StatusCreated, ""},
		{"1,501 graphemes of alt text", []postImageRequest{{ID: mine[0], AltText: strings.Repeat("a", AltTextLimit+1)}}, http.StatusUnprocessableEntity, "alt_text_too_long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code, _ := s.post(ada, fmt.Sprint("post ", i), "", tc.media)
			if status != tc.status || code != tc.code {
				t.Errorf("post: %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
}

// The feed, as JSON and as the page a browser gets, shows each post's
// images where the platform serves them, with their alt text escaped, and
// the platform serves them as their own type only.
func TestFeedShowsImages(t *testing.T) {
	p := New(mongotest.Store(t).DB, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// Mounted as PostFlow mounts it.
	s := serve(t, p)
	mounted := httptest.NewServer(http.StripPrefix("/sandbox", p))
	t.Cleanup(mounted.Close)
	user, token := s.connect("Ada")
	data := pngBytes(t, 7)
	_, id := s.upload(token, "image/png", data)
	alt := `a "quoted" <b>bold</b> cat`
	if status, code, _ := s.post(token, "with a picture", "", []postImageRequest{{ID: id, AltText: alt}}); status != http.StatusCreated {
		t.Fatalf("post: %d %s", status, code)
	}

	feed, err := ReadFeed(t.Context(), mounted.URL+"/sandbox", user)
	if err != nil || len(feed) != 1 || len(feed[0].Media) != 1 {
		t.Fatalf("feed: %+v, %v", feed, err)
	}
	img := feed[0].Media[0]
	if img.ID != id || img.AltText != alt || img.ContentType != "image/png" || img.URL != "/sandbox/media/"+id {
		t.Errorf("image in the feed: %+v", img)
	}

	res, err := http.Get(mounted.URL + img.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, data) || res.Header.Get("Content-Type") != "image/png" ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET %s: %d %v, %d bytes", img.URL, res.StatusCode, res.Header, len(got))
	}

	req, _ := http.NewRequest(http.MethodGet, mounted.URL+"/sandbox/feed", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	want := `<img src="/sandbox/media/` + id + `" alt="a &#34;quoted&#34; &lt;b&gt;bold&lt;/b&gt; cat"`
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), want) ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "img-src 'self'") {
		t.Errorf("feed page (%s, CSP %q) does not show %s:\n%s", res.Header.Get("Content-Type"), res.Header.Get("Content-Security-Policy"), want, page)
	}

	// Deleted: the user's API and the media host forget it.
	del, _ := http.NewRequest(http.MethodDelete, s.srv.URL+"/api/media/"+id, nil)
	del.Header.Set("Authorization", "Bearer "+token)
	if res, err := http.DefaultClient.Do(del); err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", res, err)
	}
	if res, err := http.Get(s.srv.URL + "/media/" + id); err != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("a deleted image served: %v %v", res, err)
	}
}

// GET /api/media/{id} answers for the user's own images only.
func TestImageInfoIsTheUsers(t *testing.T) {
	s := newSandbox(t, Options{})
	_, ada := s.connect("Ada")
	_, grace := s.connect("Grace")
	_, id := s.upload(ada, "image/png", pngBytes(t, 3))
	for _, tc := range []struct {
		token string
		want  int
	}{{ada, http.StatusOK}, {grace, http.StatusNotFound}} {
		req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/api/media/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("GET /api/media/{id}: %d, want %d", res.StatusCode, tc.want)
		}
	}
}

// UploadSequence scripts uploads one by one, and takes only its modes.
func TestUploadSequence(t *testing.T) {
	s := newSandbox(t, Options{})
	user, token := s.connect("Ada")
	if status, body := s.behave(user, `{"uploadSequence":["lost_answer"]}`); status != http.StatusBadRequest {
		t.Errorf("an upload mode that is none: %d %s", status, body)
	}
	if status, body := s.behave(user, `{"uploadSequence":["rate_limited","unavailable","ok","expired_token"]}`); status != http.StatusOK {
		t.Fatalf("behaviour: %d %s", status, body)
	}
	var got []int
	for range 5 {
		status, _ := s.upload(token, "image/png", pngBytes(t, 1))
		got = append(got, status)
	}
	want := []int{429, 503, 201, 401, 201}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("uploads answered %v, want %v", got, want)
	}
}

// The Idempotency-Key comes before the images: a repeat answers the first
// post even once its image is gone, and a create refused for its images
// leaves the key free.
func TestIdempotencyKeyBeforeImages(t *testing.T) {
	s := newSandbox(t, Options{})
	_, token := s.connect("Ada")
	_, id := s.upload(token, "image/png", pngBytes(t, 5))
	images := []postImageRequest{{ID: id, AltText: "a square"}}

	if status, code, _ := s.post(token, "refused first", "key-1", []postImageRequest{{ID: "sbm_nothing"}}); status != http.StatusUnprocessableEntity {
		t.Fatalf("a post of an unknown image: %d %s", status, code)
	}
	status, _, first := s.post(token, "refused first", "key-1", images)
	if status != http.StatusCreated || first == "" {
		t.Fatalf("the same key after a refusal: %d %q; want a new post", status, first)
	}
	del, _ := http.NewRequest(http.MethodDelete, s.srv.URL+"/api/media/"+id, nil)
	del.Header.Set("Authorization", "Bearer "+token)
	if res, err := http.DefaultClient.Do(del); err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", res, err)
	}
	if status, code, again := s.post(token, "refused first", "key-1", images); status != http.StatusOK || again != first {
		t.Errorf("a repeat after its image was deleted: %d %s %q; want 200 and %q", status, code, again, first)
	}
}

// DiscardImageBytes keeps an upload's size and digest, not its bytes: the
// upload is checked and answered as always, the image is not served, and
// other users' uploads are kept whole.
func TestDiscardImageBytes(t *testing.T) {
	s := newSandbox(t, Options{})
	bench, benchToken := s.connect("Bench")
	_, adaToken := s.connect("Ada")
	if status, body := s.behave(bench, `{"discardImageBytes":true}`); status != http.StatusOK {
		t.Fatalf("behaviour: %d %s", status, body)
	}
	data := pngBytes(t, 9)
	for _, tc := range []struct {
		token  string
		served int
	}{{benchToken, http.StatusNotFound}, {adaToken, http.StatusOK}} {
		status, id := s.upload(tc.token, "image/png", data)
		if status != http.StatusCreated {
			t.Fatalf("upload: %d", status)
		}
		var img Image
		if err := s.p.images().FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&img); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if img.Size != int64(len(data)) || img.SHA256 != hex.EncodeToString(sum[:]) || (tc.served == http.StatusNotFound) != (img.Data == nil) {
			t.Errorf("kept %d bytes of %d, size %d, sha256 %s", len(img.Data), len(data), img.Size, img.SHA256)
		}
		res, err := http.Get(s.srv.URL + "/media/" + id)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.served {
			t.Errorf("GET /media/{id} = %d, want %d", res.StatusCode, tc.served)
		}
	}
}
