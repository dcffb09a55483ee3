package mastodon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/postflow/postflow/providers"
)

// DefaultMaxImages is the images a status takes on an instance that does
// not say (Mastodon's max_media_attachments, contracts §8).
const DefaultMaxImages = 4

// imageTypes are the image types PostFlow stores and an instance takes
// when it does not list its own.
var imageTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// Media processing: the instance is polled after MediaPollStart, the wait
// doubling up to mediaPollMax, for at most MediaProcessingLimit in all
// (within the caller's context).
const (
	MediaPollStart       = 500 * time.Millisecond
	mediaPollMax         = 5 * time.Second
	MediaProcessingLimit = 2 * time.Minute
)

// NotReadyWait is the wait after an instance refuses a status whose media
// are still processing (422 "Cannot attach files that have not finished
// processing. Try again in a moment!", contracts §8.2): a moment.
const NotReadyWait = 5 * time.Second

// mediaConfig is configuration.media_attachments of GET /api/v2/instance
// (contracts §8.2 [M11]).
type mediaConfig struct {
	SupportedMimeTypes []string `json:"supported_mime_types"`
	ImageSizeLimit     int64    `json:"image_size_limit"`
	ImageMatrixLimit   int64    `json:"image_matrix_limit"`
	// DescriptionLimit is Mastodon 4.4+'s; 0 when absent.
	DescriptionLimit int `json:"description_limit"`
}

// rules are the instance's image rules: its image types among PostFlow's
// (all of them when it lists none), its byte and pixel limits, its alt
// text limit in characters when it says one, and maxImages
// (statuses.max_media_attachments, DefaultMaxImages when absent). A
// GoToSocial instance that says no alt text limit has its default one
// (readLimits).
func (c mediaConfig) rules(maxImages int) providers.MediaRules {
	r := providers.MediaRules{MaxImages: maxImages, MaxBytes: c.ImageSizeLimit, MaxPixels: c.ImageMatrixLimit}
	if r.MaxImages <= 0 {
		r.MaxImages = DefaultMaxImages
	}
	for _, t := range c.SupportedMimeTypes {
		if strings.HasPrefix(t, "image/") {
			r.Types = append(r.Types, t)
		}
	}
	if len(c.SupportedMimeTypes) == 0 {
		r.Types = append([]string(nil), imageTypes...)
	}
	if c.DescriptionLimit > 0 {
		r.AltText = providers.Characters(c.DescriptionLimit)
	}
	return r
}

// GoToSocialDescriptionLimit is the alt text limit GoToSocial applies by
// default (media-description-max-chars: v0.18.3 refused 1,600 characters
// with 400 "image description length must be between 0 and 1500
// characters") without saying it in its configuration.
const GoToSocialDescriptionLimit = 1500

// MediaLimits are the image rules of a's instance, read from GET
// /api/v2/instance with its text limits (same cache, same LimitsTimeout;
// see TextLimits). Like TextLimits it never fails: an instance whose
// configuration has never been read gets Mastodon's defaults without
// byte, pixel or alt text limits (4 images of PostFlow's types), and the
// instance decides the rest (its 422 at upload is invalid content).
func (p *Provider) MediaLimits(ctx context.Context, a providers.Account) (providers.MediaRules, error) {
	e := p.instanceLimits(ctx, a.Server)
	if e.max == 0 {
		return mediaConfig{}.rules(0), nil
	}
	return e.media, nil
}

// mediaAttachment is the part of Mastodon's MediaAttachment PostFlow
// reads.
type mediaAttachment struct {
	ID          string  `json:"id"`
	URL         *string `json:"url"`
	Description *string `json:"description"`
}

// Upload sends img to a's instance as POST /api/v2/media (multipart:
// file, streamed from img.Open with a computed Content-Length, and
// description, the alt text; contracts §8.2). 200: ready. 202: processing;
// GET /api/v1/media/:id is polled (206 while processing, 200 when done)
// from MediaPollStart, doubling, for at most MediaProcessingLimit within
// ctx, after which it is KindRetryable MEDIA_PROCESSING. Errors as for
// Publish: 422 (a type or size the instance refuses, a file it cannot
// decode) is KindInvalidContent with the instance's message, 429 waits
// until X-RateLimit-Reset (media have their own limit, 30 per 30 min).
// ExpiresAt stays zero: Reusable asks the instance.
func (p *Provider) Upload(ctx context.Context, a providers.Account, img providers.Image) (*providers.Upload, error) {
	if img.Size <= 0 || img.Open == nil || img.Type == "" {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "NO_IMAGE", Message: "the image has no bytes or type"}
	}
	// The multipart frame around the file is built first, so the request
	// carries its length and the file streams between head and tail.
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	if err := mw.WriteField("description", img.AltText); err != nil {
		return nil, fmt.Errorf("mastodon: upload: %w", err)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, fileName(img)))
	h.Set("Content-Type", img.Type)
	if _, err := mw.CreatePart(h); err != nil {
		return nil, fmt.Errorf("mastodon: upload: %w", err)
	}
	headLen := head.Len()
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("mastodon: upload: %w", err)
	}
	frame := head.Bytes()
	tail := string(frame[headLen:]) // CRLF and the closing boundary
	rc, err := img.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("mastodon: upload: open the image: %w", err)
	}
	defer rc.Close()
	b := &body{Type: mw.FormDataContentType(), Size: int64(headLen) + img.Size + int64(len(tail)),
		Reader: io.MultiReader(bytes.NewReader(frame[:headLen]), io.LimitReader(rc, img.Size), strings.NewReader(tail))}
	var m mediaAttachment
	status, err := p.send(ctx, http.MethodPost, a.Server, "/api/v2/media", a.AccessToken, b, "",
		func(raw []byte) error { return decodeMedia(raw, &m) })
	if err != nil {
		return nil, err
	}
	if status == http.StatusAccepted {
		if err := p.awaitMedia(ctx, a, m.ID); err != nil {
			return nil, err
		}
	}
	return &providers.Upload{MediaID: img.MediaID, ID: m.ID, UploadedAt: p.cfg.Now()}, nil
}

// fileName is the name the file part carries: the instance keeps it, so
// it says no more than PostFlow's id and the type's extension.
func fileName(img providers.Image) string {
	ext := strings.TrimPrefix(img.Type, "image/")
	if ext == "jpeg" {
		ext = "jpg"
	}
	return "postflow-" + img.MediaID + "." + ext
}

func decodeMedia(raw []byte, m *mediaAttachment) error {
	if err := json.Unmarshal(raw, m); err != nil {
		return err
	}
	if m.ID == "" {
		return errors.New("mastodon: a media attachment without an id")
	}
	return nil
}

// awaitMedia polls GET /api/v1/media/:id until the instance has processed
// it (200), waiting longer each time.
func (p *Provider) awaitMedia(ctx context.Context, a providers.Account, id string) error {
	wait := p.cfg.MediaPoll
	deadline := p.cfg.Now().Add(MediaProcessingLimit)
	stillProcessing := func() error {
		return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "MEDIA_PROCESSING",
			Message: "the instance was still processing the image", Err: ctx.Err()}
	}
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return stillProcessing()
		case <-t.C:
		}
		var m mediaAttachment
		status, err := p.send(ctx, http.MethodGet, a.Server, "/api/v1/media/"+url.PathEscape(id), a.AccessToken, nil, "",
			func(raw []byte) error { return decodeMedia(raw, &m) })
		if err != nil {
			// ctx ending during a poll is the same outcome as during a
			// wait: the upload was taken and is still processing.
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return stillProcessing()
			}
			return err
		}
		if status == http.StatusOK {
			return nil
		}
		if !p.cfg.Now().Before(deadline) {
			return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "MEDIA_PROCESSING",
				Message: fmt.Sprintf("the instance was still processing the image after %s", MediaProcessingLimit)}
		}
		wait = min(2*wait, mediaPollMax)
	}
}

// Reusable asks the instance for the upload (GET /api/v1/media/:id): 200
// (or 206, still processing) is an upload a status can still take; 404
// is one the instance no longer holds for a status to take (deleted,
// vacuumed, or, on Mastodon, attached to a status already). GoToSocial
// (v0.18.3) answers 200 for an attached upload too, the same answer, and
// then refuses to attach it again (400 "media already attached to
// status"): there an upload that a published status took must not be
// offered again. Any other answer is an error as for Publish.
func (p *Provider) Reusable(ctx context.Context, a providers.Account, u providers.Upload) (bool, error) {
	if u.ID == "" {
		return false, nil
	}
	_, err := p.send(ctx, http.MethodGet, a.Server, "/api/v1/media/"+url.PathEscape(u.ID), a.AccessToken, nil, "", nil)
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// notReady makes the instance's refusal of a status whose media are still
// processing a short wait, not a failure (contracts §8.2).
func notReady(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Status == http.StatusUnprocessableEntity &&
		strings.Contains(strings.ToLower(pe.Message), "not finished processing") {
		pe.Kind, pe.RetryAfter, pe.Code = providers.KindRateLimited, NotReadyWait, "MEDIA_NOT_READY"
	}
	return err
}
