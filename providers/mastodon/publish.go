package mastodon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/postflow/postflow/providers"
)

// status is the part of Mastodon's Status entity PostFlow reads
// (contracts §3.2).
type status struct {
	ID        string          `json:"id"`
	URL       *string         `json:"url"`
	URI       string          `json:"uri"`
	CreatedAt time.Time       `json:"created_at"`
	Content   string          `json:"content"`
	Reblog    json.RawMessage `json:"reblog"`
}

// published is the status as PostFlow records it: its url, or its uri
// where the instance gives no url.
func (s *status) published() *providers.Published {
	u := s.URI
	if s.URL != nil && *s.URL != "" {
		u = *s.URL
	}
	return &providers.Published{PlatformPostID: s.ID, URL: u}
}

// Publish posts pl as a public status (POST /api/v1/statuses; GoToSocial
// would make it unlisted without a visibility) with pl.IdempotencyKey as
// its Idempotency-Key, which Mastodon answers with the first status for
// an hour (contracts §3.2). A text over the instance's limit (TextLimits)
// is refused before the instance is called; when the limit has never been
// read, the text is sent and the instance decides (its 422 is invalid
// content). Its images go as media_ids[] (uploaded by Upload, alt text
// as their description); an instance still processing one answers 422
// "Cannot attach files that have not finished processing", which is a
// wait of NotReadyWait (KindRateLimited, MEDIA_NOT_READY), not a failure.
// Errors are *providers.Error, see classify; a call netguard refuses is
// FORBIDDEN_ADDRESS.
func (p *Provider) Publish(ctx context.Context, a providers.Account, pl providers.Payload) (*providers.Published, error) {
	if strings.TrimSpace(pl.Text) == "" {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "TEXT_LENGTH", Message: "the text is empty"}
	}
	limits, _ := p.TextLimits(ctx, a) // never fails: see TextLimits
	if l, n, over := providers.Over(limits, pl.Text); over {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "TEXT_LENGTH",
			Message: fmt.Sprintf("the text is %d %s (links count %d); the instance takes %d", n, l.Unit, l.URLLength, l.Max)}
	}
	form := url.Values{"status": {pl.Text}, "visibility": {"public"}}
	if pl.Language != "" {
		form.Set("language", pl.Language)
	}
	for _, img := range pl.Images {
		form.Add("media_ids[]", img.Upload.ID)
	}
	var st status
	if err := p.call(ctx, http.MethodPost, a.Server, "/api/v1/statuses", a.AccessToken, form, pl.IdempotencyKey,
		func(b []byte) error { return decodeStatus(b, &st) }); err != nil {
		return nil, notReady(err)
	}
	pub := st.published()
	p.learnPostURL(a, pub.PlatformPostID, pub.URL)
	return pub, nil
}

func decodeStatus(b []byte, st *status) error {
	if err := json.Unmarshal(b, st); err != nil {
		return err
	}
	if st.ID == "" {
		return fmt.Errorf("mastodon: a status without an id")
	}
	return nil
}

// Find pages through the account's statuses (GET
// /api/v1/accounts/:id/statuses, 40 a page, newest first) back to since,
// and returns every status created at or after since whose text is
// pl.Text, newest first: its source (GET /api/v1/statuses/:id/source), or
// where the instance has no such endpoint its HTML content as text. This
// settles an attempt in doubt on servers that ignore Idempotency-Key
// (GoToSocial). The text is what it compares: the activity skips statuses
// another post's result holds, but a status with the same text that the
// user posted by hand in that span is taken for PostFlow's.
func (p *Provider) Find(ctx context.Context, a providers.Account, pl providers.Payload, since time.Time) ([]providers.Published, error) {
	var found []providers.Published
	want := strings.TrimSpace(pl.Text)
	maxID := ""
	for range maxFindPages {
		q := url.Values{"limit": {"40"}, "exclude_reblogs": {"true"}}
		if maxID != "" {
			q.Set("max_id", maxID)
		}
		var page []status
		if err := p.call(ctx, http.MethodGet, a.Server, "/api/v1/accounts/"+url.PathEscape(LocalID(a.PlatformUserID))+"/statuses?"+q.Encode(),
			a.AccessToken, nil, "", func(b []byte) error { return json.Unmarshal(b, &page) }); err != nil {
			return nil, err
		}
		for _, st := range page {
			if st.CreatedAt.Before(since) {
				return found, nil // newest first: the rest are older still
			}
			if len(st.Reblog) > 0 && string(st.Reblog) != "null" {
				continue
			}
			text, err := p.statusText(ctx, a, &st)
			if err != nil {
				return nil, err
			}
			if strings.TrimSpace(text) == want {
				pub := st.published()
				p.learnPostURL(a, pub.PlatformPostID, pub.URL)
				found = append(found, *pub)
			}
		}
		if len(page) == 0 {
			return found, nil
		}
		maxID = page[len(page)-1].ID
	}
	return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "FIND_INCOMPLETE",
		Message: fmt.Sprintf("more than %d statuses since the attempt in doubt; not all were read", maxFindPages*40)}
}

// maxFindPages bounds a read back: Mastodon lets an account post 300
// statuses in 3 hours (contracts §3.3), so 1,000 cover any doubt a
// retry meets.
const maxFindPages = 25

// statusText is the text st was posted with.
func (p *Provider) statusText(ctx context.Context, a providers.Account, st *status) (string, error) {
	var src struct {
		Text string `json:"text"`
	}
	err := p.call(ctx, http.MethodGet, a.Server, "/api/v1/statuses/"+url.PathEscape(st.ID)+"/source", a.AccessToken, nil, "",
		func(b []byte) error { return json.Unmarshal(b, &src) })
	if pe := (*providers.Error)(nil); errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		return htmlText(st.Content), nil // an instance before Mastodon 3.5
	}
	return src.Text, err
}

var (
	htmlBreak = regexp.MustCompile(`(?i)<br\s*/?>|</p>\s*<p[^>]*>`)
	htmlTag   = regexp.MustCompile(`<[^>]*>`)
)

// htmlText is the text of a status's HTML content as Mastodon renders
// it: paragraphs and line breaks as newlines, tags dropped, entities
// decoded. Mentions render as @user, so a text with @user@domain does not
// compare equal: /source is what Find reads first.
func htmlText(s string) string {
	s = htmlBreak.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(strings.ToLower(m), "<br") {
			return "\n"
		}
		return "\n\n"
	})
	return html.UnescapeString(htmlTag.ReplaceAllString(s, ""))
}

// Delete deletes the account's status id (DELETE /api/v1/statuses/:id,
// Mastodon's statuses API; the contract has no delete). Mastodon answers
// 200 with the status; 404 is a status the instance no longer holds,
// which is success, and also another account's
// (Mastodon looks the status up among the caller's own), which stays as
// it is. GoToSocial (v0.18.3, TestConformanceGoToSocial) differs: another
// account's status is 403 Forbidden (a refusal, KindInvalidContent, as
// classify makes any 4xx but 401 and 429), and a status it has just
// deleted may still answer 200 with the status (its delete finishes in
// the background), which is success all the same. Errors as Publish's
// (classify).
func (p *Provider) Delete(ctx context.Context, a providers.Account, id string) error {
	if id == "" || strings.ContainsAny(id, "/?#") {
		return &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "BAD_POST_ID", Message: "not a status id"}
	}
	err := p.call(ctx, http.MethodDelete, a.Server, "/api/v1/statuses/"+url.PathEscape(id), a.AccessToken, nil, "", nil)
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		return nil
	}
	return err
}
