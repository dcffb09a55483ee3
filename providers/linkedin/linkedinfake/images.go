package linkedinfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Image is an image of the Images API as the fake holds it.
type Image struct {
	URN   string
	Owner string
	// Status is WAITING_UPLOAD, PROCESSING, PROCESSING_FAILED or AVAILABLE.
	Status string
	// Bytes and ContentType are those of the last upload.
	Bytes       []byte
	ContentType string
	// Uploads counts the PUTs the image got: a retry that uploads nothing
	// twice leaves it at 1.
	Uploads int
	// Authorized: the last PUT carried a bearer token.
	Authorized bool
}

// imageState is an Image and what its status still has to go through.
type imageState struct {
	Image
	processing int       // reads of the status left that answer PROCESSING
	fails      bool      // ends PROCESSING_FAILED
	urlExpires time.Time // the upload URL's end
	signature  string    // the upload URL's ut=, as a signed URL has
}

// Images returns the images initialized so far, oldest first.
func (s *Server) Images() []Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Image
	for _, im := range s.images {
		c := im.Image
		c.Bytes = append([]byte(nil), im.Bytes...)
		out = append(out, c)
	}
	// URNs are issued in time order (a counter), so order by them.
	slices.SortFunc(out, func(a, b Image) int { return imageSeq(a.URN) - imageSeq(b.URN) })
	return out
}

// Image returns the image with urn, if the fake holds it.
func (s *Server) Image(urn string) (Image, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im, ok := s.images[urn]
	if !ok {
		return Image{}, false
	}
	c := im.Image
	c.Bytes = append([]byte(nil), im.Bytes...)
	return c, true
}

// ForgetImage drops the image with urn, as LinkedIn drops one no post
// refers to: its status reads 404 and a post refers to it in vain.
func (s *Server) ForgetImage(urn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.images, urn)
}

// UploadsBy counts the PUTs received for the images owner holds.
func (s *Server) UploadsBy(owner string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, im := range s.images {
		if im.Owner == owner {
			n += im.Uploads
		}
	}
	return n
}

// imageSeq reads the counter in a URN the fake issued.
func imageSeq(urn string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(urn, "urn:li:image:D4D10AQ"))
	return n
}

// scripted pops the next scripted answer of script and writes it, and
// reports whether it did (false: "ok" or none, go on). Callers hold s.mu.
func scripted(w http.ResponseWriter, script *[]string) bool {
	if len(*script) == 0 {
		return false
	}
	answer := (*script)[0]
	*script = (*script)[1:]
	switch answer {
	case "ok":
		return false
	case "429":
		restError(w, 429, map[string]any{"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS", "message": "Resource level throttle APPLICATION_AND_MEMBER DAY limit for calls to this resource is reached."})
	case "401":
		restError(w, 401, map[string]any{"status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN", "message": "The token used in the request has expired"})
	default:
		status, err := strconv.Atoi(answer)
		if err != nil {
			panic("linkedinfake: unknown answer " + answer)
		}
		restError(w, status, map[string]any{"status": status, "message": http.StatusText(status)})
	}
	return true
}

// initializeUpload is POST /rest/images?action=initializeUpload (contracts
// §1.5): the owner must be the token's member (w_member_social) or a page
// the member may post as, as for a post's author.
func (s *Server) initializeUpload(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.gateway(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("action") != "initializeUpload" {
		restError(w, 400, map[string]any{"status": 400, "message": "action must be initializeUpload"})
		return
	}
	if scripted(w, &s.UploadAnswers) {
		return
	}
	var body struct {
		Request struct {
			Owner string `json:"owner"`
		} `json:"initializeUploadRequest"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil || body.Request.Owner == "" {
		restError(w, 422, map[string]any{"status": 422, "message": "ERROR :: /initializeUploadRequest/owner :: field is required but not found and has no default value"})
		return
	}
	if !s.mayPostAs(t, body.Request.Owner) {
		accessDenied(w, "images.ACTION-initializeUpload."+r.Header.Get("LinkedIn-Version")+"01")
		return
	}
	seq := len(s.uploadURLs) + 1
	urn := fmt.Sprintf("urn:li:image:D4D10AQ%d", seq)
	id := random(24)
	expires := s.now().Add(time.Hour)
	s.uploadURLs[id] = urn
	s.images[urn] = &imageState{Image: Image{URN: urn, Owner: body.Request.Owner, Status: "WAITING_UPLOAD"},
		urlExpires: expires, signature: random(32)}
	uploadURL := fmt.Sprintf("%s/dms-uploads/%s?ca=vector_feedshare&cn=uploads&sync=0&v=beta&ut=%s", s.URL, id, s.images[urn].signature)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"value": map[string]any{
		"uploadUrlExpiresAt": expires.UnixMilli(), "uploadUrl": uploadURL, "image": urn}})
}

// upload is the PUT to an upload URL: the bytes of the image, with or
// without a bearer token (contracts §1.5 leaves unconfirmed which LinkedIn
// wants), answered 201. A second PUT replaces the bytes and is counted.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	if scripted(w, &s.PutAnswers) {
		return
	}
	urn, ok := s.uploadURLs[r.PathValue("id")]
	im := s.images[urn]
	if !ok || im == nil || r.URL.Query().Get("ut") != im.signature || !s.now().Before(im.urlExpires) {
		restError(w, 403, map[string]any{"status": 403, "message": "The upload URL is invalid or has expired"})
		return
	}
	if err != nil || r.ContentLength >= 0 && int64(len(data)) != r.ContentLength || len(data) == 0 {
		restError(w, 400, map[string]any{"status": 400, "message": "The upload was cut short"})
		return
	}
	im.Authorized = false
	if h := r.Header.Get("Authorization"); h != "" {
		if _, ok := s.bearer(w, r); !ok {
			return
		}
		im.Authorized = true
	}
	im.Bytes, im.ContentType = data, r.Header.Get("Content-Type")
	im.Uploads++
	im.Status, im.processing, im.fails = "PROCESSING", s.ProcessingGETs, s.ProcessingFails
	s.settle(im)
	w.Header().Set("ETag", "/ambry-video/"+random(16))
	w.WriteHeader(http.StatusCreated)
}

// settle ends an image's processing once no read of it is left to answer
// PROCESSING. Callers hold s.mu.
func (s *Server) settle(im *imageState) {
	if im.Status != "PROCESSING" || im.processing > 0 {
		return
	}
	im.Status = "AVAILABLE"
	if im.fails {
		im.Status = "PROCESSING_FAILED"
	}
}

// image is GET /rest/images/{urn}: the image's status for its owner (or a
// member who may post as it), 404 for one the fake does not hold.
func (s *Server) image(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.gateway(w, r)
	if !ok {
		return
	}
	if s.ForbidImageReads {
		accessDenied(w, "images.GET."+r.Header.Get("LinkedIn-Version")+"01")
		return
	}
	im, ok := s.images[r.PathValue("urn")]
	if !ok {
		restError(w, 404, map[string]any{"status": 404, "serviceErrorCode": 0, "code": "NOT_FOUND", "message": "Not Found"})
		return
	}
	if !s.mayPostAs(t, im.Owner) {
		accessDenied(w, "images.GET."+r.Header.Get("LinkedIn-Version")+"01")
		return
	}
	answer := map[string]any{"id": im.URN, "owner": im.Owner, "status": im.Status}
	if im.Status == "PROCESSING" {
		im.processing--
		s.settle(im)
	}
	if im.Status == "AVAILABLE" {
		answer["downloadUrl"] = s.URL + "/dms/image/" + strings.TrimPrefix(im.URN, "urn:li:image:")
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// postContent is a post's content: one image (media) or 2 to 20
// (multiImage).
type postContent struct {
	Media      *PostImage `json:"media"`
	MultiImage *struct {
		Images []PostImage `json:"images"`
	} `json:"multiImage"`
}

// UnmarshalJSON reads {id, altText} into a PostImage.
func (p *PostImage) UnmarshalJSON(b []byte) error {
	var v struct {
		ID      string `json:"id"`
		AltText string `json:"altText"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	p.URN, p.AltText = v.ID, v.AltText
	return nil
}

// postImages checks the images a post refers to and returns them, or
// answers the refusal: an unknown image or another owner's, one not
// uploaded or still processing (MEDIA_ASSET_WAITING_UPLOAD), one that
// failed (MEDIA_ASSET_PROCESSING_FAILED), more than 20, a multiImage of
// fewer than 2, an alt text over 4,086 characters. Callers hold s.mu.
func (s *Server) postImages(w http.ResponseWriter, author string, c *postContent) ([]PostImage, bool) {
	if c == nil {
		return nil, true
	}
	var images []PostImage
	switch {
	case c.Media != nil && c.MultiImage != nil:
		restError(w, 400, map[string]any{"status": 400, "message": "content must hold one of media and multiImage"})
		return nil, false
	case c.Media != nil:
		images = []PostImage{*c.Media}
	case c.MultiImage != nil:
		images = c.MultiImage.Images
		if len(images) < 2 || len(images) > 20 {
			inputError(w, "FIELD_ARRAY_SIZE_INVALID", fmt.Sprintf("multiImage takes 2 to 20 images, not %d", len(images)))
			return nil, false
		}
	default:
		return nil, true
	}
	for _, pi := range images {
		im, ok := s.images[pi.URN]
		switch {
		case !ok || im.Owner != author:
			inputError(w, "INVALID_URN", "The image "+pi.URN+" does not exist or is not the author's")
			return nil, false
		case im.Status == "WAITING_UPLOAD" || im.Status == "PROCESSING":
			inputError(w, "MEDIA_ASSET_WAITING_UPLOAD", "The media asset "+pi.URN+" is waiting for its upload")
			return nil, false
		case im.Status == "PROCESSING_FAILED":
			inputError(w, "MEDIA_ASSET_PROCESSING_FAILED", "The media asset "+pi.URN+" could not be processed")
			return nil, false
		case len(utf16.Encode([]rune(pi.AltText))) > 4086:
			inputError(w, "FIELD_LENGTH_TOO_LONG", "altText is longer than 4086 characters")
			return nil, false
		}
	}
	return images, true
}

// inputError is a Posts API 400 whose inputErrors name code.
func inputError(w http.ResponseWriter, code, message string) {
	restError(w, 400, map[string]any{
		"errorDetailType": "com.linkedin.common.error.BadRequest",
		"message":         "com.linkedin.content.common.exception.BadRequestResponseException: " + message,
		"errorDetails":    map[string]any{"inputErrors": []map[string]any{{"description": message, "input": map[string]any{}, "code": code}}},
		"status":          400,
	})
}
