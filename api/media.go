package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/postflow/postflow/internal/echo"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/media/publicurl"
)

// MediaOptions serve the media library under /media.
type MediaOptions struct {
	// Library, if not nil, serves /media.
	Library *media.Library
	// Links checks the signed links of GET /media/{id}/public
	// (MEDIA_URL_SECRET); without it that route answers 404.
	Links *publicurl.Signer
	// Import is whom POST /media {"url"} may fetch from: outside
	// development no loopback, private or link-local address, checked
	// after DNS and at every redirect (netguard), and https only.
	Import netguard.Policy
	// ImportTimeout bounds one import, whole (MEDIA_IMPORT_TIMEOUT).
	ImportTimeout time.Duration
}

// multipartOverhead is what a multipart body may carry beyond the file:
// boundaries and part headers. A body past MEDIA_MAX_BYTES plus this is a
// 413 before its file is read to the end.
const multipartOverhead = 64 << 10

// uploadReadTime is how long an upload's body may take to arrive: 20 MiB
// at about 1 Mbit/s.
const uploadReadTime = 3 * time.Minute

// importBodyLimit caps the JSON of an import ({"url": ...}).
const importBodyLimit = 16 << 10

// maxPublicCache bounds how long a cache may keep an image served at its
// public link: not much past a delete.
const maxPublicCache = 5 * time.Minute

type mediaServer struct {
	lib     *media.Library
	links   *publicurl.Signer
	policy  netguard.Policy
	fetcher *http.Client
	now     func() time.Time
}

func newMediaServer(opts MediaOptions) *mediaServer {
	timeout := opts.ImportTimeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	return &mediaServer{lib: opts.Library, links: opts.Links, policy: opts.Import, fetcher: opts.Import.Client(timeout), now: time.Now}
}

// mediaItem is an item as the API shows it: with the URL of its bytes.
type mediaItem struct {
	*media.Item
	// URL is GET /media/{id}/content, relative to the API.
	URL string `json:"url"`
}

func showItem(it *media.Item) mediaItem {
	return mediaItem{Item: it, URL: "/media/" + it.ID + "/content"}
}

// mediaError maps the media domain's errors to the spec's answers: the one
// place their statuses are chosen (media/doc.go gives the intent).
func mediaError(err error, limits media.Limits) error {
	var (
		tooLarge *media.TooLargeError
		typ      *media.UnsupportedTypeError
		pixels   *media.TooManyPixelsError
		corrupt  *media.CorruptError
		body     *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooLarge):
		return tooLargeError(tooLarge.MaxBytes)
	case errors.As(err, &body):
		return bodyTooLarge(body.Limit)
	case errors.As(err, &typ):
		return &Error{http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("The file is %s, not an image PostFlow takes (JPEG, PNG, GIF or still WebP); the type is read from the bytes, not from the file's name.", typ.Sniffed)}
	case errors.As(err, &pixels):
		msg := fmt.Sprintf("The image claims %d x %d pixels; at most %d pixels (width x height) are taken.", pixels.Width, pixels.Height, pixels.MaxPixels)
		switch {
		case pixels.BudgetBytes > 0:
			msg = fmt.Sprintf("The image claims %d x %d pixels, which would take about %d MiB to decode; this server decodes at most %d MiB at once (MEDIA_DECODE_MEMORY), about %d pixels of this kind.",
				pixels.Width, pixels.Height, pixels.DecodeBytes>>20, pixels.BudgetBytes>>20, pixels.MaxPixels)
		case pixels.Frames > 0:
			msg = fmt.Sprintf("The %d x %d GIF's %d frames cover %d pixels in all; at most %d are taken.", pixels.Width, pixels.Height, pixels.Frames, pixels.FramePixels, pixels.MaxPixels)
		}
		return Unprocessable("too_many_pixels", msg)
	case errors.As(err, &corrupt):
		return Unprocessable("corrupt_image", fmt.Sprintf("The file starts like %s but does not decode: it is damaged or cut short.", corrupt.Type))
	case errors.Is(err, media.ErrNotFound):
		return NotFound("media_not_found", "No such media.")
	case errors.Is(err, media.ErrInUse):
		return Conflict("media_in_use", "A post that is not yet published uses this media; remove it from the post first.")
	case errors.Is(err, media.ErrBeingDeleted):
		return Conflict("media_being_deleted", "Another delete of this media is under way; try again in a moment.")
	}
	return err
}

func tooLargeError(max int64) *Error {
	return &Error{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("The file is larger than %d bytes (MEDIA_MAX_BYTES).", max)}
}

// bodyTooLarge is an upload whose request body, not necessarily its file,
// is over limit: MEDIA_MAX_BYTES plus the multipart overhead.
func bodyTooLarge(limit int64) *Error {
	return &Error{http.StatusRequestEntityTooLarge, "too_large",
		fmt.Sprintf("The request body is larger than %d bytes (MEDIA_MAX_BYTES plus %d bytes of multipart framing).", limit, multipartOverhead)}
}

// uploadOrImport is POST /media: a multipart upload (one part named
// file) or a JSON import ({"url": "https://..."}).
func (s *server) uploadOrImport(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var (
		it  *media.Item
		err error
	)
	switch mt {
	case "multipart/form-data":
		it, err = s.upload(w, r)
	case "application/json":
		it, err = s.importURL(w, r)
	default:
		err = &Error{http.StatusUnsupportedMediaType, "unsupported_media_type",
			`Send the image as multipart/form-data with one part named file, or application/json {"url": "https://..."} to import one.`}
	}
	if err != nil {
		writeError(w, r, s.logger, mediaError(err, s.media.lib.Limits()))
		return
	}
	writeJSON(w, http.StatusCreated, showItem(it))
}

// upload streams the part named file into the library: never parsed into
// memory or onto disk first (no ParseMultipartForm), and the body is
// capped at MEDIA_MAX_BYTES plus the multipart overhead.
func (s *server) upload(w http.ResponseWriter, r *http.Request) (*media.Item, error) {
	limit := s.media.lib.Limits().MaxBytes + multipartOverhead
	if r.ContentLength > limit {
		return nil, bodyTooLarge(limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	// The server's read timeout suits JSON bodies, not MEDIA_MAX_BYTES
	// on a slow uplink: an upload gets uploadReadTime. Where the writer
	// cannot say (a test recorder), the server's timeout stays.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(uploadReadTime))
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, BadRequest("invalid_multipart", "The body is not multipart/form-data with a boundary.")
	}
	part, err := mr.NextPart()
	if err != nil {
		return nil, multipartError(err, "The body holds no part named file.")
	}
	if part.FormName() != "file" {
		return nil, BadRequest("unknown_part", fmt.Sprintf("The body may hold one part, named file; it holds %s.", echo.Quote(part.FormName())))
	}
	body := &readRecorder{r: part}
	it, err := s.media.lib.Add(r.Context(), identityOf(r.Context()).OrgID, part.FileName(), body)
	if err != nil {
		if body.err != nil && !errors.Is(err, media.ErrTooLarge) {
			// The body broke off or was malformed: the request's fault,
			// not the image's.
			return nil, multipartError(body.err, "")
		}
		return nil, err
	}
	// The file was the first part; anything after it is refused, and what
	// was stored goes with it. The rest of the body (the epilogue) is read
	// to its end under the same cap, so a chunked body past it is refused
	// as one that declared its length is.
	var refused error
	if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
		refused = BadRequest("unknown_part", "The body may hold one part, named file, and nothing after it.")
		if err != nil {
			refused = multipartError(err, "")
		}
	} else if _, err := io.Copy(io.Discard, r.Body); err != nil {
		refused = multipartError(err, "")
	}
	if refused != nil {
		if derr := s.media.lib.Delete(context.WithoutCancel(r.Context()), it.OrganizationID, it.ID); derr != nil {
			s.logger.WarnContext(r.Context(), "could not remove a refused upload", "media_id", it.ID, "error", derr)
		}
		return nil, refused
	}
	return it, nil
}

// multipartError maps a failure to read the multipart body: a body past
// its cap is 413, anything else a 400 (missing says what, for io.EOF).
func multipartError(err error, missing string) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return bodyTooLarge(tooBig.Limit)
	case errors.Is(err, io.EOF) && missing != "":
		return BadRequest("missing_file", missing)
	}
	return BadRequest("invalid_multipart", "The multipart body is malformed or cut short.")
}

// importURL fetches the image a JSON body names, with the import policy,
// the timeout and the byte cap, and adds it to the library.
func (s *server) importURL(w http.ResponseWriter, r *http.Request) (*media.Item, error) {
	r.Body = http.MaxBytesReader(w, r.Body, importBodyLimit)
	var in struct {
		URL string `json:"url"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(in.URL))
	switch {
	case in.URL == "":
		return nil, BadRequest("missing_url", `Name the image to import: {"url": "https://..."}.`)
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, BadRequest("invalid_url", "url must be an absolute https URL.")
	case u.Scheme == "http" && !s.media.policy.AllowLocal:
		return nil, BadRequest("invalid_url", "url must use https.")
	case u.User != nil:
		return nil, BadRequest("invalid_url", "url must not carry credentials.")
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.media.fetcher.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, BadRequest("invalid_url", "url is not a URL PostFlow can fetch.")
	}
	req.Header.Set("Accept", "image/jpeg, image/png, image/gif, image/webp")
	res, err := s.media.fetcher.Do(req)
	if err != nil {
		return nil, importError(ctx, u, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		// After a redirect, the host that answered is not the one named.
		return nil, Unprocessable("import_failed", fmt.Sprintf("%s answered %d %s.", echo.Quote(res.Request.URL.Host), res.StatusCode, http.StatusText(res.StatusCode)))
	}
	max := s.media.lib.Limits().MaxBytes
	if res.ContentLength > max {
		return nil, tooLargeError(max)
	}
	body := &readRecorder{r: res.Body}
	it, err := s.media.lib.Add(r.Context(), identityOf(r.Context()).OrgID, importName(res.Request.URL), body)
	if err != nil && body.err != nil && !errors.Is(err, media.ErrTooLarge) {
		// The fetch broke off mid-body: the server's or the clock's
		// fault, not the image's.
		return nil, importError(ctx, u, body.err)
	}
	return it, err
}

// importError says why a fetch failed and which host it was at (after a
// redirect, not the one named), without the URL's path or query (which
// may hold a token of the image's host).
func importError(ctx context.Context, u *url.URL, err error) error {
	host := echo.Quote(u.Host)
	var ue *url.Error
	if errors.As(err, &ue) {
		if at, perr := url.Parse(ue.URL); perr == nil && at.Host != "" {
			host = echo.Quote(at.Host)
		}
	}
	var (
		scheme *netguard.SchemeError
		addr   *netguard.AddressError
	)
	switch {
	case errors.As(err, &scheme):
		return Unprocessable("url_not_allowed", fmt.Sprintf("The image's URL redirects to a %s: URL; PostFlow follows redirects to https only.", echo.Quote(scheme.Scheme)))
	case errors.As(err, &addr):
		return Unprocessable("url_not_allowed", fmt.Sprintf("%s is at %s, not a public address; PostFlow does not fetch from loopback, private, link-local or other special-purpose addresses.", host, addr.Addr))
	case errors.Is(err, netguard.ErrForbidden):
		return Unprocessable("url_not_allowed", fmt.Sprintf("%s is not an address PostFlow fetches from.", host))
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		return Unprocessable("import_failed", fmt.Sprintf("%s did not send the image in time.", host))
	}
	return Unprocessable("import_failed", fmt.Sprintf("Could not fetch the image from %s.", host))
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// importName is the last element of an imported URL's path (after any
// redirect), for people.
func importName(u *url.URL) string {
	name := path.Base(u.Path)
	if name == "." || name == "/" {
		return ""
	}
	return name
}

// readRecorder keeps the first error a reader returned other than io.EOF.
type readRecorder struct {
	r   io.Reader
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF && rr.err == nil {
		rr.err = err
	}
	return n, err
}

func (s *server) listMedia(w http.ResponseWriter, r *http.Request) {
	limit, before, err := pageQuery(r.URL.Query(), "a media")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	list, err := s.media.lib.List(r.Context(), identityOf(r.Context()).OrgID, limit, before)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	items := make([]mediaItem, 0, len(list))
	for i := range list {
		items = append(items, showItem(&list[i]))
	}
	writeJSON(w, http.StatusOK, page("media", items, len(list), limit, func() string { return list[len(list)-1].ID }))
}

func (s *server) getMedia(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	it, err := s.media.lib.Get(r.Context(), identityOf(r.Context()).OrgID, id)
	if err != nil {
		writeError(w, r, s.logger, mediaError(err, s.media.lib.Limits()))
		return
	}
	writeJSON(w, http.StatusOK, showItem(it))
}

// mediaContent is GET /media/{id}/content: the bytes, streamed from the
// store, validated by their digest (ETag, If-None-Match).
func (s *server) mediaContent(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	org := identityOf(r.Context()).OrgID
	it, err := s.media.lib.Get(r.Context(), org, id)
	if err != nil {
		writeError(w, r, s.logger, mediaError(err, s.media.lib.Limits()))
		return
	}
	h := w.Header()
	h.Set("ETag", etag(it))
	h.Set("Cache-Control", "private, max-age=0, must-revalidate")
	if etagMatches(r.Header.Get("If-None-Match"), etag(it)) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.serveBytes(w, r, it)
}

// serveBytes writes an item's bytes with its own type, never sniffed by
// the browser, and a sandbox so that no file can run as a page.
// It opens the bytes for a GET only: a HEAD's headers come from the
// record, as does a 304, which the callers answer before.
func (s *server) serveBytes(w http.ResponseWriter, r *http.Request, it *media.Item) {
	h := w.Header()
	var rc io.ReadCloser
	if r.Method != http.MethodHead {
		var err error
		if rc, err = s.media.lib.OpenItem(r.Context(), it); err != nil {
			h.Del("ETag")
			h.Del("Cache-Control")
			writeError(w, r, s.logger, mediaError(err, s.media.lib.Limits()))
			return
		}
		defer rc.Close()
	}
	h.Set("Content-Type", it.Type)
	h.Set("Content-Length", strconv.FormatInt(it.Size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.WriteHeader(http.StatusOK)
	if rc == nil {
		return // HEAD: the headers say it all; the store is not read
	}
	if _, err := io.Copy(w, rc); err != nil {
		// The status is sent; the client sees a short body.
		s.logger.WarnContext(r.Context(), "media: serving bytes broke off", "media_id", it.ID, "error", err)
	}
}

func etag(it *media.Item) string { return `"` + it.SHA256 + `"` }

// etagMatches applies If-None-Match (RFC 9110 §13.1.2): a weak comparison
// with any of the listed tags, or "*".
func etagMatches(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

func (s *server) deleteMedia(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	if err := s.media.lib.Delete(r.Context(), identityOf(r.Context()).OrgID, id); err != nil {
		writeError(w, r, s.logger, mediaError(err, s.media.lib.Limits()))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// publicMedia is GET /media/{id}/public?exp=&sig=: no credentials, the
// signature is the right (media/publicurl). The store's own presigned URL
// when it has one (302), else the bytes.
func (s *server) publicMedia(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	q := r.URL.Query()
	now := s.media.now()
	switch err := s.media.links.Check(id, q.Get("exp"), q.Get("sig"), now); {
	case errors.Is(err, publicurl.ErrExpired):
		writeError(w, r, s.logger, &Error{http.StatusForbidden, "link_expired", "This media link has expired; ask for a new one."})
		return
	case err != nil:
		writeError(w, r, s.logger, &Error{http.StatusForbidden, "link_invalid", "This media link is not valid."})
		return
	}
	exp, _ := strconv.ParseInt(q.Get("exp"), 10, 64) // Check read it
	left := time.Unix(exp, 0).Sub(now)
	it, redirect, err := s.media.lib.Public(r.Context(), id, max(left, time.Second))
	if err != nil {
		writeError(w, r, s.logger, mediaError(err, s.media.lib.Limits()))
		return
	}
	if redirect != "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, redirect, http.StatusFound)
		return
	}
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(min(left, maxPublicCache).Seconds())))
	w.Header().Set("ETag", etag(it))
	if etagMatches(r.Header.Get("If-None-Match"), etag(it)) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.serveBytes(w, r, it)
}
