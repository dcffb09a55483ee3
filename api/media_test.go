package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/media/gridfs"
	"github.com/postflow/postflow/media/mediatest"
	"github.com/postflow/postflow/media/publicurl"
	"github.com/postflow/postflow/posts"
)

// testMaxBytes is the library's cap in these tests (MEDIA_MAX_BYTES).
const testMaxBytes = 256 << 10

// presigning is the real GridFS store, answering presigned URLs as S3
// does while presign is set.
type presigning struct {
	*gridfs.Store
	mu      sync.Mutex
	presign string
	opens   int // readers of bytes opened
}

func (p *presigning) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p.mu.Lock()
	p.opens++
	p.mu.Unlock()
	return p.Store.Open(ctx, key)
}

// opened is how many readers of bytes the store opened.
func (p *presigning) opened() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opens
}

func (p *presigning) PresignedURL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.presign == "" {
		return p.Store.PresignedURL(ctx, key, ttl)
	}
	return p.presign + key, nil
}

// mediaAPI is the /media routes over the real stack pieces: the media
// collection, GridFS and the posts store's UsesMedia, on a fresh database.
type mediaAPI struct {
	srv     *httptest.Server
	handler http.Handler
	db      *mongostore.Store
	store   *presigning
	links   *publicurl.Signer
	options api.MediaOptions
}

func newMediaAPI(t *testing.T, allowLocal bool) *mediaAPI {
	t.Helper()
	return newMediaAPITimeout(t, allowLocal, 10*time.Second)
}

// newMediaAPITimeout is newMediaAPI whose imports give up after timeout.
func newMediaAPITimeout(t *testing.T, allowLocal bool, timeout time.Duration) *mediaAPI {
	t.Helper()
	m := &mediaAPI{db: mongotest.Store(t)}
	m.store = &presigning{Store: gridfs.New(m.db.DB, gridfs.Options{})}
	lib, err := media.NewLibrary(m.db.Media(), m.store, media.Limits{MaxBytes: testMaxBytes, MaxPixels: 10_000_000}, m.db.Posts().UsesMedia)
	if err != nil {
		t.Fatal(err)
	}
	m.srv = httptest.NewUnstartedServer(nil)
	m.srv.Start()
	t.Cleanup(m.srv.Close)
	if m.links, err = publicurl.New(m.srv.URL, []byte(strings.Repeat("s", 32))); err != nil {
		t.Fatal(err)
	}
	m.options = api.MediaOptions{Library: lib, Links: m.links, Import: netguard.Policy{AllowLocal: allowLocal}, ImportTimeout: timeout}
	m.handler = api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend, MaxBodyBytes: 64 << 10,
		Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret)}, Media: m.options,
	})
	m.srv.Config.Handler = m.handler
	return m
}

// stored counts the files in GridFS.
func (m *mediaAPI) stored(t *testing.T) int64 {
	t.Helper()
	n, err := m.db.DB.Collection(gridfs.DefaultBucket+".files").CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// usePost stores a post of org in status that uses the media item id.
func (m *mediaAPI) usePost(t *testing.T, org, id string, status posts.Status) *posts.Post {
	t.Helper()
	now := time.Now().UTC()
	p, err := m.db.Posts().Create(context.Background(), &posts.Post{OrganizationID: org, Content: "with an image", SocialAccountIDs: []string{"000000000000000000000001"},
		Media: []posts.MediaRef{{ID: id, AltText: "a cat"}}, Status: status, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// call sends a request as a member of org (no org: no credentials) and
// returns the answer with its body read.
func (m *mediaAPI) call(t *testing.T, org, method, path, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, m.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if org != "" {
		req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{org}, ""))
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return send(t, req)
}

// part is one part of a multipart body.
type part struct {
	field, filename string
	data            []byte
}

func multipartBody(t *testing.T, parts ...part) (string, *bytes.Buffer) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disp := fmt.Sprintf(`form-data; name=%q`, p.field)
		if p.filename != "" {
			disp += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		h.Set("Content-Disposition", disp)
		h.Set("Content-Type", "image/jpeg") // the client's word, never trusted
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(p.data)
	}
	_ = mw.Close()
	return mw.FormDataContentType(), &b
}

type itemJSON struct {
	media.Item
	URL string `json:"url"`
}

func (m *mediaAPI) upload(t *testing.T, org string, parts ...part) (int, itemJSON, string) {
	t.Helper()
	ct, body := multipartBody(t, parts...)
	res, raw := m.call(t, org, http.MethodPost, "/media", ct, body)
	var it itemJSON
	_ = json.Unmarshal(raw, &it)
	var e map[string]any
	_ = json.Unmarshal(raw, &e)
	return res.StatusCode, it, code(e)
}

// An upload comes back as stored: the bytes served are the cleaned ones
// (GPS gone, digest and size as the item says), typed from the bytes,
// with a validator for caches.
func TestMediaUploadRoundTrip(t *testing.T) {
	m := newMediaAPI(t, false)
	upload := mediatest.JPEGWithGPS(64, 48)
	status, it, c := m.upload(t, "org-a", part{"file", "beach.png", upload})
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, c)
	}
	if it.Type != "image/jpeg" || it.Width != 64 || it.Height != 48 || it.Filename != "beach.png" || it.URL != "/media/"+it.ID+"/content" || it.CreatedAt.IsZero() {
		t.Errorf("item = %+v", it)
	}

	res, stored := m.call(t, "org-a", http.MethodGet, it.URL, "", nil)
	sum := sha256.Sum256(stored)
	switch {
	case res.StatusCode != http.StatusOK:
		t.Fatalf("content: %d", res.StatusCode)
	case bytes.Contains(stored, []byte(mediatest.GPSMarker)) || mediatest.HasEXIF(stored):
		t.Error("the served bytes carry the location metadata")
	case int64(len(stored)) != it.Size || hex.EncodeToString(sum[:]) != it.SHA256 || len(stored) >= len(upload):
		t.Errorf("served %d bytes (sha %x), item says %d (sha %s), upload was %d", len(stored), sum, it.Size, it.SHA256, len(upload))
	case res.Header.Get("Content-Type") != "image/jpeg" || res.Header.Get("X-Content-Type-Options") != "nosniff" ||
		res.Header.Get("Content-Length") != fmt.Sprint(len(stored)) || res.Header.Get("ETag") != `"`+it.SHA256+`"` ||
		!strings.HasPrefix(res.Header.Get("Cache-Control"), "private"):
		t.Errorf("content headers = %v", res.Header)
	}

	req, _ := http.NewRequest(http.MethodGet, m.srv.URL+it.URL, nil)
	req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{"org-a"}, ""))
	req.Header.Set("If-None-Match", `"other", W/"`+it.SHA256+`"`)
	if res, body := send(t, req); res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match: %d, %d bytes", res.StatusCode, len(body))
	}

	res, raw := m.call(t, "org-a", http.MethodGet, "/media/"+strings.ToUpper(it.ID), "", nil)
	var got itemJSON
	_ = json.Unmarshal(raw, &got)
	if res.StatusCode != http.StatusOK || got.ID != it.ID || got.SHA256 != it.SHA256 {
		t.Errorf("get: %d %s", res.StatusCode, raw)
	}
	res, raw = m.call(t, "org-a", http.MethodGet, "/media", "", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(raw), it.ID) {
		t.Errorf("list: %d %s", res.StatusCode, raw)
	}
}

// Every bad upload is refused with its 4xx and leaves nothing stored.
func TestMediaUploadRefused(t *testing.T) {
	png := mediatest.PNG(8, 8)
	tests := []struct {
		name   string
		parts  []part
		status int
		code   string
		says   string // part of the message
	}{
		{"corrupt", []part{{"file", "a.jpg", mediatest.CorruptJPEG(64, 64)}}, 422, "corrupt_image", "image/jpeg"},
		{"wrong type", []part{{"file", "a.png", []byte("%PDF-1.7\n1 0 obj << >> endobj\n")}}, 415, "unsupported_media_type", "application/pdf"},
		{"renamed executable", []part{{"file", "photo.jpg", mediatest.ELF()}}, 415, "unsupported_media_type", "application/x-elf"},
		{"decompression bomb", []part{{"file", "tiny.png", mediatest.PNGBomb()}}, 422, "too_many_pixels", "50000 x 50000"},
		{"over the cap", []part{{"file", "big.jpg", append(mediatest.JPEG(8, 8), make([]byte, testMaxBytes)...)}}, 413, "too_large", fmt.Sprint(testMaxBytes)},
		{"a second file", []part{{"file", "a.png", png}, {"file", "b.png", png}}, 400, "unknown_part", ""},
		{"a part after the file", []part{{"file", "a.png", png}, {"altText", "", []byte("hi")}}, 400, "unknown_part", ""},
		{"an unknown part first", []part{{"image", "a.png", png}}, 400, "unknown_part", "image"},
		{"no part", nil, 400, "missing_file", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMediaAPI(t, false)
			ct, body := multipartBody(t, tt.parts...)
			res, raw := m.call(t, "org-a", http.MethodPost, "/media", ct, body)
			var e map[string]any
			_ = json.Unmarshal(raw, &e)
			if res.StatusCode != tt.status || code(e) != tt.code || !strings.Contains(string(raw), tt.says) {
				t.Errorf("got %d %s, want %d %s saying %q", res.StatusCode, raw, tt.status, tt.code, tt.says)
			}
			if n := m.stored(t); n != 0 {
				t.Errorf("%d files stored", n)
			}
			if _, raw := m.call(t, "org-a", http.MethodGet, "/media", "", nil); strings.Contains(string(raw), `"id"`) {
				t.Errorf("listed after a refusal: %s", raw)
			}
		})
	}

	m := newMediaAPI(t, false)
	res, raw := m.call(t, "org-a", http.MethodPost, "/media", "image/png", bytes.NewReader(png))
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a raw image body: %d %s", res.StatusCode, raw)
	}
}

// countingReader is an endless body that counts what was read of it.
type countingReader struct {
	mu sync.Mutex
	n  int64
	r  io.Reader
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

// A body past the cap is refused without being read to its end: at once
// when its length is declared, after about the cap when it is chunked.
func TestMediaUploadOverCapStopsReading(t *testing.T) {
	m := newMediaAPI(t, false)
	const total = 50 * testMaxBytes
	for _, declared := range []bool{true, false} {
		head := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n\r\n"
		body := &countingReader{r: io.MultiReader(strings.NewReader(head), bytes.NewReader(mediatest.JPEG(8, 8)), bytes.NewReader(make([]byte, total)))}
		req := httptest.NewRequest(http.MethodPost, "/media", body)
		req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{"org-a"}, ""))
		req.ContentLength = -1
		if declared {
			req.ContentLength = total + int64(len(head))
		}
		rec := httptest.NewRecorder()
		m.handler.ServeHTTP(rec, req)
		var e map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusRequestEntityTooLarge || code(e) != "too_large" {
			t.Errorf("declared=%v: %d %s", declared, rec.Code, rec.Body)
		}
		if declared && body.n != 0 || body.n > 2*testMaxBytes {
			t.Errorf("declared=%v: read %d bytes of %d", declared, body.n, total)
		}
	}
}

// An import fetches with the import policy: a loopback server only with
// AllowLocal, its errors answered as 422s naming them, the same cap.
func TestMediaImport(t *testing.T) {
	png := mediatest.PNG(16, 16)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/img/cat.png":
			w.Header().Set("Content-Type", "text/plain") // the server's word, never trusted
			_, _ = w.Write(png)
		case "/moved":
			http.Redirect(w, r, "/img/cat.png", http.StatusFound)
		case "/big":
			_, _ = w.Write(append(mediatest.JPEG(8, 8), make([]byte, testMaxBytes)...))
		case "/slow":
			select { // until the importer gives up
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(origin.Close)
	tlsOrigin := httptest.NewTLSServer(origin.Config.Handler)
	t.Cleanup(tlsOrigin.Close)

	local, guarded, impatient := newMediaAPI(t, true), newMediaAPI(t, false), newMediaAPITimeout(t, true, 300*time.Millisecond)
	j := func(u string) io.Reader { b, _ := json.Marshal(map[string]string{"url": u}); return bytes.NewReader(b) }
	tests := []struct {
		name   string
		api    *mediaAPI
		url    string
		status int
		code   string
		says   string
	}{
		{"local allowed", local, origin.URL + "/img/cat.png", 201, "", ""},
		{"through a redirect", local, origin.URL + "/moved", 201, "", ""},
		{"not found", local, origin.URL + "/nope?token=secret", 422, "import_failed", "404"},
		{"over the cap", local, origin.URL + "/big", 413, "too_large", ""},
		{"too slow", impatient, origin.URL + "/slow", 422, "import_failed", "in time"},
		{"loopback refused", guarded, strings.Replace(tlsOrigin.URL, "127.0.0.1", "127.0.0.1", 1) + "/img/cat.png", 422, "url_not_allowed", "127.0.0.1"},
		{"localhost refused", guarded, strings.Replace(tlsOrigin.URL, "127.0.0.1", "localhost", 1) + "/img/cat.png", 422, "url_not_allowed", ""},
		{"plain http refused", guarded, origin.URL + "/img/cat.png", 400, "invalid_url", "https"},
		{"not http", local, "file:///etc/passwd", 400, "invalid_url", ""},
		{"credentials", local, "https://u:p@example.com/a.png", 400, "invalid_url", ""},
		{"no url", local, "", 400, "missing_url", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, raw := tt.api.call(t, "org-a", http.MethodPost, "/media", "application/json", j(tt.url))
			var e map[string]any
			_ = json.Unmarshal(raw, &e)
			if res.StatusCode != tt.status || code(e) != tt.code || !strings.Contains(string(raw), tt.says) {
				t.Errorf("got %d %s, want %d %s saying %q", res.StatusCode, raw, tt.status, tt.code, tt.says)
			}
			if strings.Contains(string(raw), "secret") {
				t.Errorf("the answer repeats the URL's query: %s", raw)
			}
			if tt.status == 201 {
				var it itemJSON
				_ = json.Unmarshal(raw, &it)
				if it.Type != "image/png" || it.Width != 16 || it.Filename != "cat.png" {
					t.Errorf("imported %+v", it)
				}
			}
		})
	}
}

// Another organization's media is not found on any route, and is not
// listed.
func TestMediaOtherOrganization(t *testing.T) {
	m := newMediaAPI(t, false)
	status, it, _ := m.upload(t, "org-a", part{"file", "a.png", mediatest.PNG(8, 8)})
	if status != http.StatusCreated {
		t.Fatal(status)
	}
	for _, route := range []struct{ method, path string }{
		{http.MethodGet, "/media/" + it.ID},
		{http.MethodGet, "/media/" + it.ID + "/content"},
		{http.MethodDelete, "/media/" + it.ID},
	} {
		res, raw := m.call(t, "org-b", route.method, route.path, "", nil)
		var e map[string]any
		_ = json.Unmarshal(raw, &e)
		if res.StatusCode != http.StatusNotFound || code(e) != "media_not_found" {
			t.Errorf("org-b %s %s: %d %s", route.method, route.path, res.StatusCode, raw)
		}
	}
	if _, raw := m.call(t, "org-b", http.MethodGet, "/media", "", nil); strings.Contains(string(raw), it.ID) {
		t.Errorf("org-b lists org-a's media: %s", raw)
	}
	if res, _ := m.call(t, "org-a", http.MethodGet, "/media/"+it.ID, "", nil); res.StatusCode != http.StatusOK {
		t.Errorf("org-b's delete removed org-a's media: %d", res.StatusCode)
	}
	if res, _ := m.call(t, "", http.MethodGet, "/media/"+it.ID+"/content", "", nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", res.StatusCode)
	}
	if res, _ := m.call(t, "org-a", http.MethodGet, "/media/nope", "", nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed id: %d", res.StatusCode)
	}
}

// Delete is refused while a post not yet published uses the item (the
// posts store says so), then removes the record and the bytes.
func TestMediaDelete(t *testing.T) {
	m := newMediaAPI(t, false)
	_, it, _ := m.upload(t, "org-a", part{"file", "a.png", mediatest.PNG(8, 8)})
	m.usePost(t, "org-a", it.ID, posts.StatusPublished)
	m.usePost(t, "org-b", it.ID, posts.StatusDraft) // another org's post cannot hold it
	scheduled := m.usePost(t, "org-a", it.ID, posts.StatusScheduled)
	res, raw := m.call(t, "org-a", http.MethodDelete, "/media/"+it.ID, "", nil)
	var e map[string]any
	_ = json.Unmarshal(raw, &e)
	if res.StatusCode != http.StatusConflict || code(e) != "media_in_use" || m.stored(t) != 1 {
		t.Fatalf("delete while used: %d %s, %d files", res.StatusCode, raw, m.stored(t))
	}
	if err := m.db.Posts().Finish(context.Background(), scheduled.ID, posts.StatusPublished, nil, "", ""); err != nil {
		t.Fatal(err)
	}
	if res, raw := m.call(t, "org-a", http.MethodDelete, "/media/"+it.ID, "", nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete once published: %d %s", res.StatusCode, raw)
	}
	if res, _ := m.call(t, "org-a", http.MethodGet, "/media/"+it.ID, "", nil); res.StatusCode != http.StatusNotFound || m.stored(t) != 0 {
		t.Errorf("after delete: %d, %d files", res.StatusCode, m.stored(t))
	}
}

// The public link serves the bytes without credentials while it is good
// and for its id only; a presigning store gets a redirect instead.
func TestMediaPublicLink(t *testing.T) {
	m := newMediaAPI(t, false)
	_, it, _ := m.upload(t, "org-a", part{"file", "a.png", mediatest.PNG(8, 8)})
	_, other, _ := m.upload(t, "org-b", part{"file", "b.png", mediatest.PNG(9, 9)})
	good, err := m.links.URL(it.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := m.links.Sign(it.ID, time.Now().Add(-time.Second))
	otherLink, _ := m.links.URL(other.ID, time.Minute)
	tampered := good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])+1)%16])
	tests := []struct {
		name   string
		link   string
		status int
		code   string
	}{
		{"good", good, 200, ""},
		{"expired", expired, 403, "link_expired"},
		{"tampered", tampered, 403, "link_invalid"},
		{"another id's signature", strings.Replace(otherLink, other.ID, it.ID, 1), 403, "link_invalid"},
		{"no signature", m.srv.URL + "/media/" + it.ID + "/public", 403, "link_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, raw := m.call(t, "", http.MethodGet, strings.TrimPrefix(tt.link, m.srv.URL), "", nil)
			var e map[string]any
			_ = json.Unmarshal(raw, &e)
			if res.StatusCode != tt.status || code(e) != tt.code {
				t.Fatalf("got %d %s", res.StatusCode, raw)
			}
			if tt.status == 200 {
				sum := sha256.Sum256(raw)
				if hex.EncodeToString(sum[:]) != it.SHA256 || res.Header.Get("Content-Type") != "image/png" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("served %d bytes, headers %v", len(raw), res.Header)
				}
			}
		})
	}

	m.store.mu.Lock()
	m.store.presign = "https://bucket.example/"
	m.store.mu.Unlock()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(good)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://bucket.example/"+it.ID {
		t.Errorf("presigning store: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// The JSON answers of the media routes, successes and errors, are what
// the document says they are.
func TestMediaResponsesMatchTheOpenAPI(t *testing.T) {
	s := newSchemas(t)
	m := newMediaAPI(t, false)
	check := func(method, template, path, ct string, body io.Reader) []byte {
		t.Helper()
		res, raw := m.call(t, "org-a", method, path, ct, body)
		if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || res.StatusCode >= 300 {
			s.check(method, template, res.StatusCode, raw)
		} else if res.StatusCode != http.StatusOK {
			t.Errorf("%s %s: %d", method, path, res.StatusCode)
		}
		return raw
	}
	upload := func(p part) []byte {
		ct, body := multipartBody(t, p)
		return check("POST", "/media", "/media", ct, body)
	}
	var it itemJSON
	_ = json.Unmarshal(upload(part{"file", "a.jpg", mediatest.JPEG(8, 8)}), &it)
	upload(part{"file", "a.jpg", mediatest.ELF()})                                                                  // 415
	upload(part{"file", "a.png", mediatest.PNGBomb()})                                                              // 422
	upload(part{"other", "a.png", mediatest.PNG(4, 4)})                                                             // 400
	upload(part{"file", "a.png", make([]byte, 300<<10)})                                                            // 413
	check("POST", "/media", "/media", "application/json", strings.NewReader(`{"url":"https://127.0.0.1:1/a.png"}`)) // 422
	check("GET", "/media", "/media?limit=1", "", nil)
	check("GET", "/media", "/media?before=nope", "", nil)
	check("GET", "/media/{id}", "/media/"+it.ID, "", nil)
	check("GET", "/media/{id}", "/media/000000000000000000000000", "", nil)
	check("GET", "/media/{id}/content", "/media/"+it.ID+"/content", "", nil)
	check("GET", "/media/{id}/public", "/media/"+it.ID+"/public?exp=1&sig=00", "", nil) // 403
	m.usePost(t, "org-a", it.ID, posts.StatusDraft)
	check("DELETE", "/media/{id}", "/media/"+it.ID, "", nil) // 409
}
