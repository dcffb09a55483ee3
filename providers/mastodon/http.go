package mastodon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
)

// DefaultRateLimitWait is the wait after a 429 that says no reset time:
// Mastodon's shortest rate-limit window, 5 minutes (contracts §3.3).
const DefaultRateLimitWait = 5 * time.Minute

// baseURL reads the stored base URL of an account's instance. It was read
// with netguard.Policy.ServerURL at connect; plain http is taken again
// only where the policy allows local servers, and every address is
// checked at the dial.
func (p *Provider) baseURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(p.cfg.Servers.AllowLocal && u.Scheme == "http")) {
		return "", forbidden(fmt.Errorf("%w: the account's instance %q is not an https server address", netguard.ErrForbidden, server))
	}
	return u.Scheme + "://" + u.Host, nil
}

// forbidden is a call netguard refused: the instance is at an address
// PostFlow does not call for users (loopback, private, link-local), or its
// name now resolves to one. It is permanent, and neither the token nor a
// retry can change it, so it is KindInvalidContent (the publication fails
// with FORBIDDEN_ADDRESS and a message that says why), not KindAuth (the
// account's tokens are not at fault) nor KindRetryable.
func forbidden(err error) *providers.Error {
	return &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "FORBIDDEN_ADDRESS",
		Message: "the instance is at an address PostFlow does not connect to (loopback, private or link-local)", Err: err}
}

// call makes one API call on the instance at server: form (if not nil)
// as the body, the bearer token unless "", an Idempotency-Key unless "".
// A 2xx answer's body goes to decode (if not nil); any other answer, and
// a failure to reach the instance, is a *providers.Error (see classify).
func (p *Provider) call(ctx context.Context, method, server, path, token string, form url.Values, idemKey string, decode func([]byte) error) error {
	var b *body
	if form != nil {
		enc := form.Encode()
		b = &body{Type: "application/x-www-form-urlencoded", Size: int64(len(enc)), Reader: strings.NewReader(enc)}
	}
	_, err := p.send(ctx, method, server, path, token, b, idemKey, decode)
	return err
}

// body is a request's body: Size bytes of Type read from Reader.
type body struct {
	Type   string
	Size   int64
	Reader io.Reader
}

// send is call with any body (nil for none); it returns the status of a
// 2xx answer (a 202 or 206 says the instance is still processing media).
func (p *Provider) send(ctx context.Context, method, server, path, token string, b *body, idemKey string, decode func([]byte) error) (int, error) {
	base, err := p.baseURL(server)
	if err != nil {
		return 0, err
	}
	var r io.Reader
	if b != nil {
		r = b.Reader
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		return 0, fmt.Errorf("mastodon: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if b != nil {
		req.Header.Set("Content-Type", b.Type)
		req.ContentLength = b.Size
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	res, err := p.client.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrForbidden) {
			return 0, forbidden(err)
		}
		return 0, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "NETWORK", Message: "the instance did not answer", Err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return 0, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "NETWORK", Status: res.StatusCode,
			Message: "the instance's answer was cut off", Err: err}
	}
	if res.StatusCode/100 == 2 {
		// 206 (media still processing) has no body to decode.
		if decode != nil && res.StatusCode != http.StatusPartialContent {
			if err := decode(raw); err != nil {
				// A success that could not be read may have been applied:
				// no Status, so Refused says false.
				return 0, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE",
					Message: fmt.Sprintf("the instance's answer to %s %s could not be read", method, path), Err: err}
			}
		}
		return res.StatusCode, nil
	}
	return 0, classify(res, raw, p.cfg.Now())
}

// classify turns a failed answer into a *providers.Error (contracts §3):
// 401 the token is refused (the account must reconnect); 429 a wait until
// X-RateLimit-Reset; 5xx retryable; any other 4xx (Mastodon's 422, and the
// 400 GoToSocial gives a text over its limit) refuses the content. The
// message is the instance's {"error"}, which holds no token.
func classify(res *http.Response, raw []byte, now time.Time) *providers.Error {
	var eb struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &eb)
	e := &providers.Error{Provider: ID, Status: res.StatusCode, Code: "HTTP_" + strconv.Itoa(res.StatusCode), Message: providers.CleanMessage(eb.Error)}
	switch {
	case res.StatusCode == http.StatusUnauthorized:
		e.Kind = providers.KindAuth
	case res.StatusCode == http.StatusTooManyRequests:
		e.Kind, e.RetryAfter = providers.KindRateLimited, RateLimitWait(res.Header, now)
	case res.StatusCode >= 500:
		e.Kind = providers.KindRetryable
	default:
		e.Kind = providers.KindInvalidContent
	}
	if e.Message == "" {
		e.Message = "the instance answered " + res.Status
	}
	return e
}

// RateLimitWait is how long to wait after a 429 with header h: until
// X-RateLimit-Reset, an ISO 8601 time (Mastodon, contracts §3.3; also
// GoToSocial v0.18.3) or Unix seconds (other GoToSocial builds), at least a
// second; DefaultRateLimitWait when it is missing or unreadable. Mastodon
// sends no Retry-After, but one is honoured when it is the only word.
func RateLimitWait(h http.Header, now time.Time) time.Duration {
	reset := strings.TrimSpace(h.Get("X-RateLimit-Reset"))
	var at time.Time
	if t, err := time.Parse(time.RFC3339Nano, reset); err == nil {
		at = t
	} else if secs, err := strconv.ParseFloat(reset, 64); err == nil && secs > 0 {
		at = time.Unix(0, int64(secs*float64(time.Second)))
	} else if secs, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && secs >= 0 {
		return max(time.Duration(secs)*time.Second, time.Second)
	} else {
		return DefaultRateLimitWait
	}
	return max(at.Sub(now), time.Second)
}
