package sandboxplatform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rivo/uniseg"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/media"
)

// Image rules of the sandbox: what POST /api/media and a post take.
const (
	// MaxImages is the most images one post refers to.
	MaxImages = 4
	// ImageBytesLimit is the default Options.MaxImageBytes.
	ImageBytesLimit = 10 << 20
	// AltTextLimit is the longest alt text, in graphemes.
	AltTextLimit = 1500
)

// ImageTypes are the types POST /api/media takes; the bytes must be of
// the type the request's Content-Type names.
var ImageTypes = []string{media.TypeJPEG, media.TypePNG, media.TypeGIF, media.TypeWebP}

// Image is an image a user uploaded. Its bytes live in the document: the
// sandbox caps an image well under MongoDB's 16 MB document limit.
type Image struct {
	ID          string `bson:"_id" json:"id"`
	UserID      string `bson:"userId" json:"userId"`
	ContentType string `bson:"contentType" json:"contentType"`
	Size        int64  `bson:"size" json:"size"`
	// SHA256 is the bytes' digest, hex.
	SHA256 string `bson:"sha256" json:"sha256"`
	// Data is the bytes; none when the user's behaviour discards them
	// (Behaviour.DiscardImageBytes).
	Data      []byte    `bson:"data,omitempty" json:"-"`
	CreatedAt time.Time `bson:"createdAt" json:"createdAt"`
}

// PostImage is an image as a post refers to it. URL, in the feed, is the
// path the platform serves its bytes at (GET {base}/media/{id}).
type PostImage struct {
	ID          string `bson:"id" json:"id"`
	AltText     string `bson:"altText" json:"altText"`
	ContentType string `bson:"contentType" json:"contentType"`
	URL         string `bson:"-" json:"url"`
}

func (p *Platform) images() *mongo.Collection { return p.db.Collection("sandboxMedia") }

// uploadModes are the values of Behaviour.UploadSequence.
var uploadModes = []string{"ok", "rate_limited", "unavailable", "timeout", "expired_token", "rejected"}

// uploadMode pops the next mode of u's UploadSequence ("ok" if none).
func (p *Platform) uploadMode(ctx context.Context, u *user) (string, error) {
	seq := u.Behaviour.UploadSequence
	if len(seq) == 0 {
		return "ok", nil
	}
	_, err := p.users().UpdateOne(ctx, bson.D{{Key: "_id", Value: u.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "behaviour.uploadSequence", Value: seq[1:]}}}})
	p.cachedUsers.drop(u.ID)
	return seq[0], err
}

// createImage is POST /api/media: the raw bytes of one image, its type in
// Content-Type (which the bytes must match), at most
// Options.MaxImageBytes. 201 {"id", "contentType", "size"}; 413 too large,
// 415 another type, 400 empty.
func (p *Platform) createImage(w http.ResponseWriter, r *http.Request) {
	u := p.bearer(w, r)
	if u == nil {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	mode, err := p.uploadMode(ctx, u)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if answerFault(w, mode, u.Behaviour.RetryAfterSeconds, "images", "media_rejected") {
		return
	}
	typ, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	typ = strings.TrimSpace(strings.ToLower(typ))
	if !slices.Contains(ImageTypes, typ) {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "unsupported_media_type",
			"message": "Content-Type must be one of " + strings.Join(ImageTypes, ", ")})
		return
	}
	limit := p.opts.MaxImageBytes
	if r.ContentLength > limit {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "too_large", "message": fmt.Sprintf("Images are at most %d bytes.", limit)})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		// The limit met may be a server's in front of the sandbox's own
		// (PostFlow's MAX_BODY_BYTES): name the one that applied.
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "too_large", "message": fmt.Sprintf("Images are at most %d bytes.", tooLarge.Limit)})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "The upload was cut short."})
		return
	case len(data) == 0:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "The body must be the image's bytes."})
		return
	}
	if got := media.Sniff(data); got != typ {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "unsupported_media_type",
			"message": fmt.Sprintf("The bytes are %s, not the %s the Content-Type names.", got, typ)})
		return
	}
	sum := sha256.Sum256(data)
	img := Image{ID: random("sbm_"), UserID: u.ID, ContentType: typ, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Data: data, CreatedAt: p.now().UTC()}
	if u.Behaviour.DiscardImageBytes {
		img.Data = nil
	}
	if _, err := p.images().InsertOne(ctx, img); err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": img.ID, "contentType": img.ContentType, "size": img.Size})
}

// userImage reads the image id of user userID, nil when it holds none.
func (p *Platform) userImage(ctx context.Context, userID, id string, withData bool) (*Image, error) {
	opts := options.FindOne()
	if !withData {
		opts.SetProjection(bson.D{{Key: "data", Value: 0}})
	}
	var img Image
	err := p.images().FindOne(ctx, bson.D{{Key: "_id", Value: id}}, opts).Decode(&img)
	if errors.Is(err, mongo.ErrNoDocuments) || err == nil && userID != "" && img.UserID != userID {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &img, nil
}

// imageInfo is GET /api/media/{id}: the user's image's metadata, 404 when
// the sandbox holds no such image of theirs (never made, or deleted).
func (p *Platform) imageInfo(w http.ResponseWriter, r *http.Request) {
	u := p.bearer(w, r)
	if u == nil {
		return
	}
	img, err := p.userImage(r.Context(), u.ID, r.PathValue("id"), false)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if img == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "No such image of yours."})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": img.ID, "contentType": img.ContentType, "size": img.Size})
}

// deleteImage is DELETE /api/media/{id}: the user deletes an image of
// theirs; 204, or 404 when there is none. Posts that refer to it show it
// no more.
func (p *Platform) deleteImage(w http.ResponseWriter, r *http.Request) {
	u := p.bearer(w, r)
	if u == nil {
		return
	}
	res, err := p.images().DeleteOne(r.Context(), bson.D{{Key: "_id", Value: r.PathValue("id")}, {Key: "userId", Value: u.ID}})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if res.DeletedCount == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "No such image of yours."})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveImage is GET /media/{id}: an image's bytes, public as a real
// network's media host is (ids are random). The Content-Type is the
// sniffed one it was taken with, and nosniff and a sandboxing CSP keep a
// browser from reading the bytes as anything else.
func (p *Platform) serveImage(w http.ResponseWriter, r *http.Request) {
	img, err := p.userImage(r.Context(), "", r.PathValue("id"), true)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if img == nil || img.Data == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", img.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "public, max-age=86400, immutable")
	http.ServeContent(w, r, "", img.CreatedAt, bytes.NewReader(img.Data))
}

// userImages is GET /users/{id}/media: the images a user uploaded, oldest
// first, without their bytes; for tests and people trying the sandbox,
// like the feed.
func (p *Platform) userImages(w http.ResponseWriter, r *http.Request) {
	cur, err := p.images().Find(r.Context(), bson.D{{Key: "userId", Value: r.PathValue("id")}},
		options.Find().SetProjection(bson.D{{Key: "data", Value: 0}}).SetSort(bson.D{{Key: "createdAt", Value: 1}}))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	imgs := []Image{}
	if err := cur.All(r.Context(), &imgs); err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"media": imgs})
}

// postImageRequest is an image as POST /api/posts names it.
type postImageRequest struct {
	ID      string `json:"id"`
	AltText string `json:"altText"`
}

// postImages checks the images a post refers to: at most MaxImages, each
// an image of the user's, alt text at most AltTextLimit graphemes. It
// answers the refusal (422) and returns false, or the images.
func (p *Platform) postImages(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, reqs []postImageRequest) ([]PostImage, bool) {
	if len(reqs) > MaxImages {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "too_many_media", "message": fmt.Sprintf("A post takes at most %d images.", MaxImages)})
		return nil, false
	}
	out := make([]PostImage, 0, len(reqs))
	for i, req := range reqs {
		if n := uniseg.GraphemeClusterCount(req.AltText); n > AltTextLimit {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "alt_text_too_long",
				"message": fmt.Sprintf("The alt text of image %d is %d characters; at most %d.", i+1, n, AltTextLimit)})
			return nil, false
		}
		img, err := p.userImage(ctx, userID, req.ID, false)
		if err != nil {
			p.fail(w, r, err)
			return nil, false
		}
		if img == nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "unknown_media",
				"message": fmt.Sprintf("Image %d is no image of yours.", i+1)})
			return nil, false
		}
		out = append(out, PostImage{ID: img.ID, AltText: req.AltText, ContentType: img.ContentType})
	}
	return out, true
}

// mountedAt is the path the platform is served under (the part of the
// request's path that http.StripPrefix took off), so the feed can name
// its image URLs as absolute paths.
func mountedAt(r *http.Request) string {
	path, _, _ := strings.Cut(r.RequestURI, "?")
	base, ok := strings.CutSuffix(path, r.URL.Path)
	if !ok {
		return "" // An escaped path: served at the root, as far as it can tell.
	}
	return base
}

// withImageURLs sets the URL of each post's images.
func withImageURLs(posts []Post, base string) {
	for i := range posts {
		for j := range posts[i].Media {
			posts[i].Media[j].URL = base + "/media/" + posts[i].Media[j].ID
		}
	}
}

var feedTmpl = template.Must(template.New("feed").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sandbox feed</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}article{border-bottom:1px solid #ddd;padding:1rem 0}
.meta{color:#666;font-size:.85rem}.text{white-space:pre-wrap}.images{display:flex;flex-wrap:wrap;gap:.5rem}
.images img{max-width:18rem;max-height:18rem;border-radius:4px}</style></head>
<body><h1>Sandbox feed</h1>
{{range .}}<article id="{{.ID}}"><div class="meta">{{.UserID}} · {{.CreatedAt.Format "2006-01-02 15:04:05 MST"}}</div>
<p class="text">{{.Text}}</p>
{{if .Media}}<div class="images">{{range .Media}}<img src="{{.URL}}" alt="{{.AltText}}" title="{{.AltText}}" loading="lazy">{{end}}</div>{{end}}
</article>{{else}}<p>No posts yet.</p>{{end}}
</body></html>`))

// wantsHTML: the request is a browser's (Accept names text/html), which
// gets the feed as a page; any other caller gets JSON.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// writeFeedHTML answers the feed as a page. Its policy lets it show the
// platform's own images and nothing else run or load.
func writeFeedHTML(w http.ResponseWriter, posts []Post) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
	_ = feedTmpl.Execute(w, posts)
}
