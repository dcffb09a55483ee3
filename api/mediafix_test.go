package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postflow/postflow/media/mediatest"
)

// HEAD is answered wherever GET is, with GET's headers and no body; a 405
// says in Allow what the target takes (RFC 9110 §15.5.6).
func TestMediaHeadAndAllow(t *testing.T) {
	m := newMediaAPI(t, false)
	_, it, _ := m.upload(t, "org-a", part{"file", "a.png", mediatest.PNG(8, 8)})
	link, err := m.links.URL(it.ID, 60e9)
	if err != nil {
		t.Fatal(err)
	}
	public := strings.TrimPrefix(link, m.srv.URL)
	for _, tt := range []struct {
		name, org, method, path string
		status                  int
		allow                   string // the Allow a 405 carries
	}{
		{"HEAD content", "org-a", http.MethodHead, "/media/" + it.ID + "/content", 200, ""},
		{"HEAD public", "", http.MethodHead, public, 200, ""},
		{"HEAD item", "org-a", http.MethodHead, "/media/" + it.ID, 200, ""},
		{"HEAD list", "org-a", http.MethodHead, "/media", 200, ""},
		{"HEAD healthz", "", http.MethodHead, "/healthz", 200, ""},
		{"PUT content", "org-a", http.MethodPut, "/media/" + it.ID + "/content", 405, "GET, HEAD"},
		{"POST public", "", http.MethodPost, public, 405, "GET, HEAD"},
		{"PATCH item", "org-a", http.MethodPatch, "/media/" + it.ID, 405, "GET, HEAD, DELETE"},
		{"PUT list", "org-a", http.MethodPut, "/media", 405, "GET, HEAD, POST"},
		{"DELETE healthz", "", http.MethodDelete, "/healthz", 405, "GET, HEAD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opened := m.store.opened()
			res, raw := m.call(t, tt.org, tt.method, tt.path, "", nil)
			if n := m.store.opened() - opened; n != 0 {
				t.Errorf("opened the bytes %d times; nothing here reads them", n)
			}
			if res.StatusCode != tt.status || res.Header.Get("Allow") != tt.allow {
				t.Fatalf("%d, Allow %q, %s; want %d, Allow %q", res.StatusCode, res.Header.Get("Allow"), raw, tt.status, tt.allow)
			}
			if tt.method == http.MethodHead && len(raw) != 0 {
				t.Errorf("HEAD sent %d bytes of body", len(raw))
			}
			if tt.method == http.MethodHead && strings.Contains(tt.path, "content") && res.Header.Get("ETag") != `"`+it.SHA256+`"` {
				t.Errorf("HEAD without GET's ETag: %v", res.Header)
			}
		})
	}
}

// The public link honours If-None-Match as /content does.
func TestMediaPublicNotModified(t *testing.T) {
	m := newMediaAPI(t, false)
	_, it, _ := m.upload(t, "org-a", part{"file", "a.png", mediatest.PNG(8, 8)})
	link, _ := m.links.URL(it.ID, 60e9)
	for _, tt := range []struct {
		inm    string
		status int
	}{
		{`"` + it.SHA256 + `"`, 304},
		{`W/"` + it.SHA256 + `"`, 304},
		{`"other", "` + it.SHA256 + `"`, 304},
		{`"other"`, 200},
		{"", 200},
	} {
		req, _ := http.NewRequest(http.MethodGet, link, nil)
		if tt.inm != "" {
			req.Header.Set("If-None-Match", tt.inm)
		}
		opened := m.store.opened()
		res, raw := send(t, req)
		if res.StatusCode != tt.status || res.Header.Get("ETag") == "" || (tt.status == 304 && len(raw) != 0) {
			t.Errorf("If-None-Match %s: %d, ETag %q, %d bytes; want %d", tt.inm, res.StatusCode, res.Header.Get("ETag"), len(raw), tt.status)
		}
		// A 304 reads no bytes; a 200 opens them once.
		if n, want := m.store.opened()-opened, map[int]int{304: 0, 200: 1}[tt.status]; n != want {
			t.Errorf("If-None-Match %s: opened the bytes %d times, want %d", tt.inm, n, want)
		}
	}
}

// What a request names (a part, a field) is echoed bounded, not whole.
func TestMediaErrorsEchoBounded(t *testing.T) {
	m := newMediaAPI(t, false)
	long := strings.Repeat("n", 100<<10)
	ct, body := multipartBody(t, part{long, "a.png", []byte("x")})
	res, raw := m.call(t, "org-a", http.MethodPost, "/media", ct, body)
	if res.StatusCode != 400 || len(raw) > 1024 || !strings.Contains(string(raw), "nnnn") {
		t.Errorf("a long part name: %d, %d bytes", res.StatusCode, len(raw))
	}
	key := strings.Repeat("k", 10<<10)
	for _, js := range []string{`{"` + key + `": 1}`, `{"url": "a", "url` + key + `": 1}`, `{"url": 1}`} {
		res, raw := m.call(t, "org-a", http.MethodPost, "/media", "application/json", strings.NewReader(js))
		if res.StatusCode != 400 || len(raw) > 1024 {
			t.Errorf("%.40s: %d, %d bytes: %.200s", js, res.StatusCode, len(raw), raw)
		}
	}
	res, raw = m.call(t, "org-a", http.MethodGet, "/"+strings.Repeat("p", 20<<10), "", nil)
	if res.StatusCode != 404 || len(raw) > 1024 {
		t.Errorf("a long path: %d, %d bytes", res.StatusCode, len(raw))
	}
}

// An import's refusal says why and names the host it was at, after
// redirects.
func TestMediaImportSaysWhereItFailed(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(other.Close)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/to-other":
			http.Redirect(w, r, other.URL+"/img.png", http.StatusFound)
		}
	}))
	t.Cleanup(origin.Close)
	local := newMediaAPI(t, true)
	otherHost := strings.TrimPrefix(other.URL, "http://")
	originHost := strings.TrimPrefix(origin.URL, "http://")
	for _, tt := range []struct {
		path, code, says, not string
	}{
		{"/to-file", "url_not_allowed", "file", "not a public address"},
		{"/to-other", "import_failed", otherHost + `\" answered 403`, originHost},
	} {
		b, _ := json.Marshal(map[string]string{"url": origin.URL + tt.path})
		res, raw := local.call(t, "org-a", http.MethodPost, "/media", "application/json", bytes.NewReader(b))
		var e map[string]any
		_ = json.Unmarshal(raw, &e)
		if res.StatusCode != 422 || code(e) != tt.code || !strings.Contains(string(raw), tt.says) || strings.Contains(string(raw), tt.not) {
			t.Errorf("%s: %d %s; want %s saying %q, not %q", tt.path, res.StatusCode, raw, tt.code, tt.says, tt.not)
		}
	}
}

// A body over the upload's cap is refused alike whether it declares its
// length or is chunked, and the answer says the body is over, not the
// file, when the file is within MEDIA_MAX_BYTES.
func TestMediaUploadBodyCapAlike(t *testing.T) {
	m := newMediaAPI(t, false)
	ct, body := multipartBody(t, part{"file", "a.png", mediatest.PNG(8, 8)})
	full := append(body.Bytes(), make([]byte, testMaxBytes+(100<<10))...) // past the closing boundary
	for _, declared := range []bool{true, false} {
		req := httptest.NewRequest(http.MethodPost, "/media", io.MultiReader(bytes.NewReader(full)))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{"org-a"}, ""))
		req.ContentLength = -1
		if declared {
			req.ContentLength = int64(len(full))
		}
		rec := httptest.NewRecorder()
		m.handler.ServeHTTP(rec, req)
		var e map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusRequestEntityTooLarge || code(e) != "too_large" || !strings.Contains(rec.Body.String(), "request body is larger") {
			t.Errorf("declared=%v: %d %s", declared, rec.Code, rec.Body)
		}
		if n := m.stored(t); n != 0 {
			t.Errorf("declared=%v: %d files stored", declared, n)
		}
	}
}
