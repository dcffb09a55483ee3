package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/postflow/postflow/internal/idempotency"
)

// IdempotencyKeyHeader carries a client's key for a request it may retry
// (draft-ietf-httpapi-idempotency-key-header); ReplayedHeader marks an
// answer replayed from the key's first request.
const (
	IdempotencyKeyHeader = "Idempotency-Key"
	ReplayedHeader       = "Idempotent-Replayed"
)

// maxIdempotencyKey is the longest key taken, in bytes: Stripe's 255.
const maxIdempotencyKey = 255

// maxKeptAnswer bounds the answer kept for a key. The routes that take a
// key answer a post, an item or a run: far less, even for a post of
// MAX_BODY_BYTES. An answer past it is sent, not kept (and logged).
const maxKeptAnswer = 4 << 20

// inProgressRetry is the Retry-After of a 409 idempotency_key_in_progress,
// in seconds: the requests that take a key end within a second or so,
// but an upload.
const inProgressRetry = 1

// keptHeaders are the headers of an answer that a replay repeats: what
// says how to read the body and where the resource is. CORS and the like
// are the replay's own.
var keptHeaders = []string{"Content-Type", "Content-Language", "X-Content-Type-Options", "Location", "ETag", "Last-Modified"}

// idemRoute is what the idempotency layer must know of a route's body.
type idemRoute struct {
	// maxBody is the most of a body read to fingerprint it (0: no cap
	// but the router's, MAX_BODY_BYTES); a longer body is not one whose
	// answer was kept.
	maxBody int64
	// readTime, if set, is how long the body may take to arrive
	// (an upload's), instead of the server's read timeout.
	readTime time.Duration
}

// idempotent answers a request that carries an Idempotency-Key once: the
// first request with a key runs, and for 24 hours a retry with the same
// key and the same request (method, URI, caller and body) gets the first
// answer again, with Idempotent-Replayed: true, and runs nothing.
// A key is per organization (idem:<org>:<sha256(key)>, internal/idempotency),
// which keeps the request's fingerprints as keyed digests and its answer
// sealed: a body may hold a password (a Bluesky login).
//
// Answers (draft-ietf-httpapi-idempotency-key-header §2.6-2.7):
//   - 400 invalid_idempotency_key: not 1 to 255 printable ASCII
//     characters, or the header twice;
//   - 422 idempotency_key_reused: the key is another request's;
//   - 409 idempotency_key_in_progress, Retry-After: the key's first
//     request still runs;
//   - 503 idempotency_unavailable: the key could not be checked (Redis).
//
// What is kept, as Stripe does and as the draft says ("the result of the
// previously completed operation, success or an error"): the answer of a
// request that ran, 5xx included, since a request that failed midway may
// have done part of its work and must not run twice. Not kept, so that the
// client may correct the request and send it again under the same key
// (Stripe: "if incoming parameters fail validation ... no idempotent
// result is saved"): a refusal of the request as written (400, 413, 415,
// 422), which the API answers before changing anything, and a request
// whose body did not arrive whole. A panic releases the key too, as a
// crash does one lease later.
func (s *server) idempotent(route idemRoute) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			values := r.Header.Values(IdempotencyKeyHeader)
			if len(values) == 0 {
				next.ServeHTTP(w, r)
				return
			}
			if err := checkIdempotencyKey(values); err != nil {
				writeError(w, r, s.logger, err)
				return
			}
			if s.idem == nil {
				writeError(w, r, s.logger, Unavailable("idempotency_unavailable", "This server keeps no Idempotency-Keys; send the request without one."))
				return
			}
			id := identityOf(r.Context())
			// Known before the body: the method, the URI (path and
			// query: ?again=true is another request) and the caller, so
			// that another member sending the same key gets 422, not the
			// first member's answer.
			target := idempotency.Target(r.Method, r.URL.RequestURI(), id.UserID)
			claim, held, err := s.idem.Begin(r.Context(), id.OrgID, values[0], target)
			if err != nil {
				s.logger.ErrorContext(r.Context(), "idempotency key not checked", "method", r.Method, "path", r.URL.Path, "error", err)
				writeError(w, r, s.logger, Unavailable("idempotency_unavailable", "The Idempotency-Key could not be checked; try again."))
				return
			}
			if held != nil {
				s.answerHeld(w, r, route, held)
				return
			}
			s.runClaimed(w, r, next, route, claim)
		})
	}
}

// checkIdempotencyKey takes one key of 1 to 255 printable ASCII characters
// (space to tilde). The key is opaque: a draft client's quoted sf-string
// is a key with its quotes.
func checkIdempotencyKey(values []string) error {
	if len(values) > 1 {
		return BadRequest("invalid_idempotency_key", "Send one Idempotency-Key header, not "+strconv.Itoa(len(values))+".")
	}
	k := values[0]
	if len(k) == 0 || len(k) > maxIdempotencyKey {
		return BadRequest("invalid_idempotency_key", fmt.Sprintf("The Idempotency-Key must be 1 to %d characters long; it is %d bytes.", maxIdempotencyKey, len(k)))
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return BadRequest("invalid_idempotency_key", fmt.Sprintf("The Idempotency-Key may hold printable ASCII characters only (a UUID is best); byte %d is not one.", i))
		}
	}
	return nil
}

// answerHeld answers a request whose key another request holds.
func (s *server) answerHeld(w http.ResponseWriter, r *http.Request, route idemRoute, held *idempotency.Record) {
	reused := Unprocessable("idempotency_key_reused",
		"This Idempotency-Key was sent within 24 hours with another request (method, path, caller or body); use a new key for a new request.")
	if !held.SameTarget {
		writeError(w, r, s.logger, reused)
		return
	}
	if held.Running {
		w.Header().Set("Retry-After", strconv.Itoa(inProgressRetry))
		writeError(w, r, s.logger, Conflict("idempotency_key_in_progress", "A request with this Idempotency-Key is still running; try again in a moment to get its answer."))
		return
	}
	// The same target: the body decides, read whole (to the route's cap)
	// and hashed as it streams.
	if route.readTime > 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(route.readTime))
	}
	d := newBodyDigest(r.Header.Get("Content-Type"))
	defer d.Close()
	src := io.Reader(r.Body)
	if route.maxBody > 0 {
		src = io.LimitReader(r.Body, route.maxBody+1)
	}
	n, err := io.Copy(d, src)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || (route.maxBody > 0 && n > route.maxBody):
		// The first request was read whole within the same cap: this
		// one is another.
		writeError(w, r, s.logger, reused)
		return
	case err != nil:
		writeError(w, r, s.logger, BadRequest("invalid_body", "The body broke off before its end."))
		return
	}
	if !held.SameBody(d.Sum()) {
		writeError(w, r, s.logger, reused)
		return
	}
	h := w.Header()
	for k, v := range held.Answer.Header {
		h.Set(k, v)
	}
	h.Set(ReplayedHeader, "true")
	w.WriteHeader(held.Answer.Status)
	_, _ = w.Write(held.Answer.Body) // The status is sent; a broken pipe has no one left to tell.
}

// runClaimed runs the request whose key it holds, then keeps its answer
// (or frees the key), then sends the answer: kept first, so that a
// client that got an answer gets the same on a retry.
func (s *server) runClaimed(w http.ResponseWriter, r *http.Request, next http.Handler, route idemRoute, claim *idempotency.Claim) {
	// The answer is kept or the key freed even if the client has gone:
	// that client's retry is what the key is for.
	ctx := context.WithoutCancel(r.Context())
	d := newBodyDigest(r.Header.Get("Content-Type"))
	defer d.Close()
	body := &digestingBody{ReadCloser: r.Body, d: d}
	r.Body = body
	rec := &answerRecorder{w: w, status: http.StatusOK}
	stopRenewing := s.renewWhileRunning(ctx, claim)

	ran := false
	defer func() {
		if !ran { // a panic: the recoverer answers it
			stopRenewing()
			s.freeKey(ctx, r, claim)
		}
	}()
	next.ServeHTTP(rec, r)
	ran = true
	stopRenewing()

	switch {
	case isRefusal(rec.status):
		s.freeKey(ctx, r, claim)
	case rec.overflowed:
		s.logger.ErrorContext(r.Context(), "answer too large to keep for its Idempotency-Key; the key is freed", "method", r.Method, "path", r.URL.Path, "limit", maxKeptAnswer)
		s.freeKey(ctx, r, claim)
	case !body.readToEnd(route.maxBody):
		// Nothing to compare a retry's body with.
		s.freeKey(ctx, r, claim)
	default:
		a := idempotency.Answer{Status: rec.status, Header: map[string]string{}, Body: rec.body.Bytes()}
		for _, k := range keptHeaders {
			if v := w.Header().Get(k); v != "" {
				a.Header[k] = v
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := claim.Complete(cctx, d.Sum(), a)
		cancel()
		if err != nil {
			// Sent unkept: a retry after the lease runs out runs again.
			s.logger.ErrorContext(r.Context(), "answer not kept for its Idempotency-Key", "method", r.Method, "path", r.URL.Path, "status", rec.status, "error", err)
		}
	}
	rec.send()
}

// isRefusal tells the statuses of a request refused as written (nothing
// changed), whose key is freed for a corrected request.
func isRefusal(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// freeKey releases claim; an error leaves the key to its lease.
func (s *server) freeKey(ctx context.Context, r *http.Request, claim *idempotency.Claim) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := claim.Release(ctx); err != nil {
		s.logger.WarnContext(r.Context(), "Idempotency-Key not freed; it frees itself when its lease runs out", "method", r.Method, "path", r.URL.Path, "error", err)
	}
}

// renewWhileRunning renews claim's lease every third of it until stop is
// called, so that a long request (an upload) keeps its key and a crashed
// one loses it one lease later.
func (s *server) renewWhileRunning(ctx context.Context, claim *idempotency.Claim) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	every := s.idem.LeaseTime() / 3
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(ctx, every)
				err := claim.Renew(rctx)
				cancel()
				if err != nil {
					s.logger.WarnContext(ctx, "Idempotency-Key lease not renewed", "error", err)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// digestingBody is a request body whose bytes, as the handler reads them,
// go to a bodyDigest too.
type digestingBody struct {
	io.ReadCloser
	d   *bodyDigest
	n   int64
	err error // the first error but io.EOF
	eof bool
}

func (b *digestingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	_, _ = b.d.Write(p[:n])
	b.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		b.eof = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

// readToEnd reads what the handler left of the body, up to max bytes in
// all (0: no cap of its own), and tells whether the body arrived whole:
// only then is its digest the request's.
func (b *digestingBody) readToEnd(max int64) bool {
	if b.err != nil {
		return false
	}
	if !b.eof {
		var rest io.Reader = b
		if max > 0 {
			rest = io.LimitReader(b, max-b.n+1)
		}
		if _, err := io.Copy(io.Discard, rest); err != nil {
			return false
		}
	}
	return b.err == nil && (max <= 0 || b.n <= max)
}

// answerRecorder holds a handler's answer until it is kept: status and
// body (up to maxKeptAnswer, past which it passes through); the headers
// are the writer's own.
type answerRecorder struct {
	w          http.ResponseWriter
	status     int
	wroteHead  bool
	body       bytes.Buffer
	overflowed bool
}

func (a *answerRecorder) Header() http.Header { return a.w.Header() }

func (a *answerRecorder) WriteHeader(status int) {
	if a.wroteHead {
		return
	}
	a.status, a.wroteHead = status, true
}

func (a *answerRecorder) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	if a.overflowed {
		return a.w.Write(p)
	}
	if a.body.Len()+len(p) > maxKeptAnswer {
		a.overflowed = true
		a.w.WriteHeader(a.status)
		if _, err := a.w.Write(a.body.Bytes()); err != nil {
			return 0, err
		}
		a.body.Reset()
		return a.w.Write(p)
	}
	return a.body.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (an upload
// sets its read deadline).
func (a *answerRecorder) Unwrap() http.ResponseWriter { return a.w }

// send writes the held answer to the client.
func (a *answerRecorder) send() {
	if a.overflowed {
		return
	}
	a.w.WriteHeader(a.status)
	_, _ = a.body.WriteTo(a.w) // The status is sent; a broken pipe has no one left to tell.
}
