package bluesky

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postflow/postflow/providers"
)

// maxAnswer bounds what is read of an answer.
const maxAnswer = 1 << 20

// defaultRateWait is the wait after a 429 without a usable RateLimit-Reset.
const defaultRateWait = time.Minute

// noInput is the in of a procedure that takes no input (refreshSession,
// deleteSession): a POST with no body. The reference PDS refuses any body
// there, {} too (400 InvalidRequest "A request body was provided when
// none was expected").
var noInput any = noBody{}

type noBody struct{}

// xrpc calls the XRPC method nsid on base: a query (GET, params in the
// URL) when in is nil, else a procedure (POST, in as JSON; no body at all
// when in is noInput). auth, if not
// "", authorizes the call: this is the one place a request is authorized.
// An app-password session's JWT goes as "Bearer"; an atproto OAuth
// session token (oauthTokens) as "DPoP" with a DPoP proof by the
// session's key carrying ath and the PDS's last nonce, retried once when
// the PDS answers 401 use_dpop_nonce (RFC 9449 §7, §9). A 200 is decoded
// into out (if not nil); any other answer is an *providers.Error
// classified by classify.
func (p *Provider) xrpc(ctx context.Context, c *http.Client, base, nsid, auth string, params url.Values, in, out any) error {
	var body *xrpcBody
	if _, none := in.(noBody); in != nil && !none {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("bluesky: %s: encode: %w", nsid, err)
		}
		body = &xrpcBody{Type: "application/json", Size: int64(len(b)),
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	return p.call(ctx, c, base, nsid, auth, params, in != nil, body, out)
}

// xrpcBody is a procedure's input: JSON, or the raw bytes of a blob
// (uploadBlob), streamed from Open with a known Size. Open may be called
// twice: a DPoP nonce refusal is answered by sending it all again.
type xrpcBody struct {
	Type string
	Size int64
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// call is xrpc with the input given as a body: a procedure (POST) when
// procedure is true, body nil for none.
func (p *Provider) call(ctx context.Context, c *http.Client, base, nsid, auth string, params url.Values, procedure bool, body *xrpcBody, out any) error {
	u := base + "/xrpc/" + nsid
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	method := http.MethodGet
	if procedure {
		method = http.MethodPost
	}
	sess, key, dpop := decodeSession(auth)
	if dpop && sess.Token == "" {
		return &providers.Error{Kind: providers.KindSessionExpired, Provider: ID, Code: "NO_ACCESS_TOKEN", Message: nsid + ": the session holds no access token"}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return fmt.Errorf("bluesky: %s: %w", nsid, err)
		}
		if body != nil {
			rc, err := body.Open(ctx)
			if err != nil {
				return fmt.Errorf("bluesky: %s: open the input: %w", nsid, err)
			}
			req.Body, req.ContentLength = rc, body.Size
			req.Header.Set("Content-Type", body.Type)
		}
		switch {
		case dpop:
			proof, err := key.proof(method, u, p.nonces.get(u), sess.Token, p.cfg.Now())
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "DPoP "+sess.Token)
			req.Header.Set("DPoP", proof)
		case auth != "":
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		res, err := c.Do(req)
		if err != nil {
			return networkError(nsid, err)
		}
		b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
		res.Body.Close()
		if dpop {
			p.nonces.set(u, res.Header.Get("DPoP-Nonce"))
			if attempt == 0 && res.StatusCode == http.StatusUnauthorized && res.Header.Get("DPoP-Nonce") != "" &&
				strings.Contains(res.Header.Get("WWW-Authenticate"), "use_dpop_nonce") {
				continue // refused before it was applied: safe to repeat
			}
		}
		if err != nil {
			// The answer was cut: for a procedure, it may have been applied.
			return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "NETWORK", Status: res.StatusCode,
				Message: nsid + ": the answer was cut off", Err: err}
		}
		if res.StatusCode != http.StatusOK {
			return p.classify(res, b)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			// A 200 that cannot be read: applied, its result unknown.
			return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Status: res.StatusCode,
				Message: nsid + ": the answer is not the JSON the lexicon describes"}
		}
		return nil
	}
}

// errorBody is XRPC's error answer (atproto spec "HTTP API (XRPC)").
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// classify turns an XRPC error answer into an *providers.Error, by the
// rows of contracts/platforms.md §4 and what the reference PDS answers:
//   - 429: KindRateLimited, waiting until RateLimit-Reset (Unix seconds),
//     at least 1 s; a minute when the header is missing.
//   - 5xx: KindRetryable with the status, so Refused() is true for 503
//     alone (a repeated record key answers 500: maybe ours).
//   - 400 ExpiredToken, 400 InvalidToken: KindSessionExpired. The PDS
//     answers an access token past its time, revoked or garbled so
//     (a refresh token refused says it too: callers of refreshSession
//     read it as "make a new session"). A DPoP-bound token it refuses
//     with 401 and WWW-Authenticate: DPoP error="invalid_token" (RFC
//     6750 §3.1, RFC 9449 §7.1): KindSessionExpired too, so the session
//     is refreshed; a revoked one's refresh then fails KindAuth.
//   - 401 (AuthMissing, AuthenticationRequired), 403, and 400
//     AccountTakedown / AccountDeactivated / AuthFactorTokenRequired:
//     KindAuth. The PDS answers 401 only when no usable credential came,
//     which a new session cannot mend.
//   - any other 4xx (InvalidRequest: too long, a bad record):
//     KindInvalidContent.
//
// The message is the body's error and message, cleaned; never the body.
func (p *Provider) classify(res *http.Response, body []byte) *providers.Error {
	var eb errorBody
	_ = json.Unmarshal(body, &eb) // not JSON: the status decides
	code := eb.Error
	if code == "" {
		code = "HTTP_" + strconv.Itoa(res.StatusCode)
	}
	e := &providers.Error{Provider: ID, Status: res.StatusCode, Code: code, Message: providers.CleanMessage(eb.Message)}
	if e.Message == "" {
		e.Message = "Bluesky answered " + res.Status
	}
	switch s := res.StatusCode; {
	case s == http.StatusTooManyRequests:
		e.Kind, e.RetryAfter = providers.KindRateLimited, p.rateWait(res.Header)
	case s >= 500:
		e.Kind = providers.KindRetryable
	case s == http.StatusBadRequest && (code == "ExpiredToken" || code == "InvalidToken"),
		s == http.StatusUnauthorized && strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`):
		e.Kind = providers.KindSessionExpired
	case s == http.StatusUnauthorized, s == http.StatusForbidden,
		code == "AccountTakedown", code == "AccountDeactivated", code == "AuthFactorTokenRequired":
		e.Kind = providers.KindAuth
	default:
		e.Kind = providers.KindInvalidContent
	}
	return e
}

// rateWait reads RateLimit-Reset (Unix seconds: atproto xrpc-server,
// contracts §4.4) as the time left, at least a second.
func (p *Provider) rateWait(h http.Header) time.Duration {
	reset, err := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64)
	if err != nil || reset <= 0 {
		return defaultRateWait
	}
	return max(time.Unix(reset, 0).Sub(p.cfg.Now()), time.Second)
}

func networkError(nsid string, err error) error {
	code := "NETWORK"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		code = "TIMEOUT"
	}
	return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: code, Message: nsid + ": Bluesky did not answer", Err: err}
}
