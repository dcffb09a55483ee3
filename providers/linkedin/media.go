package linkedin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/postflow/postflow/providers"
)

// Image rules of LinkedIn's Images API (contracts §1.5, §8).
const (
	// MaxImages is the most images a post takes: 1 as content.media,
	// 2 to 20 as content.multiImage.
	MaxImages = 20
	// MaxPixels: LinkedIn takes images of fewer than 36,152,320 pixels.
	MaxPixels = 36_152_320 - 1
	// AltTextLimit is the longest altText of an image.
	AltTextLimit = 4086
)

// Image statuses of GET /rest/images/{urn} (contracts §1.5).
const (
	statusWaitingUpload    = "WAITING_UPLOAD"
	statusProcessing       = "PROCESSING"
	statusProcessingFailed = "PROCESSING_FAILED"
	statusAvailable        = "AVAILABLE"
)

// mediaRules: JPEG, PNG and GIF under the pixel limit; no byte limit is
// documented. Alt text is counted in UTF-16 code units like the
// commentary, so an alt text PostFlow lets through is never longer than
// LinkedIn's own count, whichever it uses. (GIFs of more than 250 frames
// are refused by LinkedIn too; MediaRules has no frame count, so that
// refusal comes from LinkedIn at publish time.)
func mediaRules() providers.MediaRules {
	return providers.MediaRules{
		MaxImages: MaxImages,
		Types:     []string{"image/jpeg", "image/png", "image/gif"},
		MaxPixels: MaxPixels,
		AltText:   providers.UTF16(AltTextLimit),
	}
}

// MediaLimits are the same for every member and page.
func (p *Provider) MediaLimits(context.Context, providers.Account) (providers.MediaRules, error) {
	return p.Rules().Media, nil
}

// Upload sends img for the post's author a (a member or a page: the
// image's owner must be the post's author) through the Images API
// (contracts §1.5): POST /rest/images?action=initializeUpload, then a PUT
// of the bytes, streamed from img.Open with Content-Length img.Size, to
// the uploadUrl LinkedIn answers. It then waits, polling GET
// /rest/images/{urn} for up to Config.MediaWait, until LinkedIn says the
// image is AVAILABLE, so that the post does not meet
// MEDIA_ASSET_WAITING_UPLOAD; a GET refused with 403 (a token with only
// w_member_social may not read images) ends the wait. The Upload's ID is
// the image URN; LinkedIn states no expiry for an uploaded image.
//
// Errors are *providers.Error classified as Publish's are (429 rate
// limited, 5xx retryable, 401/403 auth, other 4xx invalid content), or
// the error of img.Open wrapped. The upload URL may be signed in its
// query: no error carries it, nor the token.
func (p *Provider) Upload(ctx context.Context, a providers.Account, img providers.Image) (*providers.Upload, error) {
	if !mediaType(img.Type) {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "MEDIA_TYPE",
			Message: fmt.Sprintf("LinkedIn takes JPEG, PNG and GIF images, not %s", img.Type)}
	}
	if px := int64(img.Width) * int64(img.Height); px > MaxPixels {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "MEDIA_TOO_MANY_PIXELS",
			Message: fmt.Sprintf("the image is %d × %d pixels; LinkedIn takes fewer than %d pixels", img.Width, img.Height, MaxPixels+1)}
	}
	var init struct {
		Value struct {
			UploadURL string `json:"uploadUrl"`
			Image     string `json:"image"`
		} `json:"value"`
	}
	req := map[string]any{"initializeUploadRequest": map[string]string{"owner": a.PlatformUserID}}
	if err := p.restJSON(ctx, a.AccessToken, http.MethodPost, "/rest/images?action=initializeUpload", req, &init); err != nil {
		return nil, err
	}
	urn, uploadURL := init.Value.Image, init.Value.UploadURL
	if !strings.HasPrefix(urn, "urn:li:image:") || providers.WebURL(uploadURL) == "" {
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE",
			Message: "LinkedIn's initializeUpload answer has no image URN or upload URL"}
	}
	if err := p.put(ctx, a.AccessToken, uploadURL, img); err != nil {
		return nil, err
	}
	up := &providers.Upload{MediaID: img.MediaID, ID: urn, UploadedAt: p.cfg.Now().UTC()}
	// Just PUT, WAITING_UPLOAD is the bytes on their way to processing.
	status, err := p.awaitImage(ctx, a.AccessToken, urn, statusWaitingUpload, statusProcessing)
	switch {
	case err != nil:
		return nil, err
	case status == statusProcessingFailed:
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "MEDIA_ASSET_PROCESSING_FAILED",
			Message: "LinkedIn could not process the image " + img.MediaID}
	}
	// AVAILABLE, unreadable (403), or still processing after MediaWait:
	// LinkedIn holds the bytes either way, and a post that comes too
	// early is refused as a wait (MEDIA_ASSET_WAITING_UPLOAD).
	return up, nil
}

// Reusable reads the image's status (GET /rest/images/{urn}): AVAILABLE
// is reusable, and so is PROCESSING, after waiting up to Config.MediaWait
// for it to end (uploading again would only start over).
// WAITING_UPLOAD, PROCESSING_FAILED, 404 (forgotten) and 403 (the token
// may not read images, so nothing can be said of it) are not: the caller
// uploads again. Other failures are *providers.Error as for Publish.
func (p *Provider) Reusable(ctx context.Context, a providers.Account, u providers.Upload) (bool, error) {
	if !strings.HasPrefix(u.ID, "urn:li:image:") {
		return false, nil
	}
	// WAITING_UPLOAD here is an upload that never arrived: no wait.
	status, err := p.awaitImage(ctx, a.AccessToken, u.ID, statusProcessing)
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return status == statusAvailable || status == statusProcessing, nil
}

// statusUnreadable stands for GET /rest/images' 403: the token may not
// read images (only w_member_social), so their status is unknown.
const statusUnreadable = "UNREADABLE"

// awaitImage polls the image's status while it is one of pending,
// backing off from Config.MediaPoll to 2 s, for up to Config.MediaWait and
// no longer than ctx, and returns the last status.
func (p *Provider) awaitImage(ctx context.Context, token, urn string, pending ...string) (string, error) {
	wait, cancel := context.WithTimeout(ctx, p.cfg.MediaWait)
	defer cancel()
	delay := p.cfg.MediaPoll
	for {
		status, err := p.imageStatus(ctx, token, urn)
		if err != nil {
			return "", err
		}
		if !slices.Contains(pending, status) {
			return status, nil
		}
		select {
		case <-wait.Done():
			// wait ends with ctx too: only its own bound answers a status.
			if ctx.Err() != nil {
				return "", &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "TIMEOUT",
					Message: "gave up waiting for LinkedIn to process the image", Err: ctx.Err()}
			}
			return status, nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// imageStatus is GET /rest/images/{urn}'s status; statusUnreadable for a
// 403.
func (p *Provider) imageStatus(ctx context.Context, token, urn string) (string, error) {
	var img struct {
		Status string `json:"status"`
	}
	err := p.restGet(ctx, token, "/rest/images/"+url.PathEscape(urn), nil, &img)
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Status == http.StatusForbidden {
		return statusUnreadable, nil
	}
	if err != nil {
		return "", err
	}
	return img.Status, nil
}

// put streams img to LinkedIn's upload URL. LinkedIn's own sample sends
// the bearer token with it (contracts §1.5), so this does too.
func (p *Provider) put(ctx context.Context, token, uploadURL string, img providers.Image) error {
	body, err := img.Open(ctx)
	if err != nil {
		return fmt.Errorf("linkedin: open image %s: %w", img.MediaID, err)
	}
	defer body.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, uploadURL, body)
	if err != nil {
		return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE",
			Message: "LinkedIn's upload URL cannot be called"}
	}
	req.ContentLength = img.Size
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", img.Type)
	res, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		// *url.Error names the URL, whose query may be a signature: keep
		// only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return networkError(err)
	}
	defer res.Body.Close()
	resBody, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 {
		e := p.apiError(res, resBody)
		if pe, ok := e.(*providers.Error); ok {
			pe.Message = redact(pe.Message, token, uploadURL)
		}
		return e
	}
	return nil
}

// redact takes secrets (a token, a signed URL and its query) out of a
// message a server wrote, which may echo the request.
func redact(msg, token, signedURL string) string {
	secrets := []string{token, signedURL}
	if u, err := url.Parse(signedURL); err == nil && u.RawQuery != "" {
		secrets = append(secrets, u.RawQuery)
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// restJSON calls a versioned REST API with a JSON body and decodes its
// 2xx answer into out.
func (p *Provider) restJSON(ctx context.Context, token, method, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("linkedin: encode %s: %w", path, err)
	}
	res, body, err := p.rest(ctx, token, method, p.cfg.APIURL+path, b, jsonBody)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return p.apiError(res, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Status: res.StatusCode,
			Message: "LinkedIn's answer to " + path + " is not the JSON its contract describes"}
	}
	return nil
}

func mediaType(t string) bool {
	switch t {
	case "image/jpeg", "image/png", "image/gif":
		return true
	}
	return false
}

// content is a post's images (contracts §1.5): one as media, 2 to 20 as
// multiImage.
type content struct {
	Media      *postImage  `json:"media,omitempty"`
	MultiImage *multiImage `json:"multiImage,omitempty"`
}

type multiImage struct {
	Images []postImage `json:"images"`
}

type postImage struct {
	ID      string `json:"id"`
	AltText string `json:"altText,omitempty"`
}

// postContent builds a post's content from its images, or refuses them as
// invalid content before LinkedIn sees them: more than MaxImages, an alt
// text over the limit, an upload that is no image URN.
func postContent(images []providers.AttachedImage) (*content, error) {
	if len(images) == 0 {
		return nil, nil
	}
	if len(images) > MaxImages {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "TOO_MANY_IMAGES",
			Message: fmt.Sprintf("the post has %d images; LinkedIn takes at most %d", len(images), MaxImages)}
	}
	alt := mediaRules().AltText
	list := make([]postImage, len(images))
	for i, img := range images {
		if !strings.HasPrefix(img.Upload.ID, "urn:li:image:") {
			return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "MEDIA_NOT_UPLOADED",
				Message: fmt.Sprintf("image %d (%s) was not uploaded to LinkedIn", i+1, img.Upload.MediaID)}
		}
		if n := alt.Count(img.AltText); n > alt.Max {
			return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "ALT_TEXT_TOO_LONG",
				Message: fmt.Sprintf("the alt text of image %d is %d %s; LinkedIn takes at most %d", i+1, n, alt.Unit, alt.Max)}
		}
		list[i] = postImage{ID: img.Upload.ID, AltText: img.AltText}
	}
	if len(list) == 1 {
		return &content{Media: &list[0]}, nil
	}
	return &content{MultiImage: &multiImage{Images: list}}, nil
}
