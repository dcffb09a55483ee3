package providers

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind is what a caller must decide on when a platform call fails.
type Kind int

const (
	// KindRetryable: a 5xx or a network failure; the same call may succeed
	// later, with backoff.
	KindRetryable Kind = iota + 1
	// KindRateLimited: wait RetryAfter, then call again. Not a failure.
	KindRateLimited
	// KindAuth: the token is expired, revoked or refused (invalid_grant).
	// Retrying cannot help; the account needs reconnecting.
	KindAuth
	// KindInvalidContent: the platform refuses this post as it is.
	KindInvalidContent
	// KindDuplicate: the platform already has this post. ExistingPostID
	// holds its id where the platform says it, which after a lost answer
	// means the earlier attempt went through.
	KindDuplicate
	// KindSessionExpired: the network refused the access token before its
	// time, but the account can make a new one (Provider.Refresh): a
	// Bluesky session that ended early (400 ExpiredToken). Nothing was
	// made; PostFlow refreshes and calls again.
	KindSessionExpired
)

func (k Kind) String() string {
	switch k {
	case KindRetryable:
		return "retryable"
	case KindRateLimited:
		return "rate_limited"
	case KindAuth:
		return "auth"
	case KindInvalidContent:
		return "invalid_content"
	case KindDuplicate:
		return "duplicate"
	case KindSessionExpired:
		return "session_expired"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Error is a failed platform call, classified. Message is safe to store and
// show: providers build it from the platform's error text, never from a
// token or a raw response that could echo one.
type Error struct {
	Kind     Kind
	Provider string
	// Code is the platform's own code (EXPIRED_ACCESS_TOKEN, invalid_grant,
	// DUPLICATE_POST, HTTP_503), for PublishResult.errorCode.
	Code    string
	Message string
	// Status is the HTTP status, 0 for network errors.
	Status int
	// RetryAfter is how long to wait, for KindRateLimited.
	RetryAfter time.Duration
	// ExistingPostID is the platform's id of the post that made this one a
	// duplicate, for KindDuplicate, when the platform says it.
	ExistingPostID string
	// Err is the underlying error (a network error, say), if any.
	Err error
}

func (e *Error) Error() string {
	s := e.Provider + ": " + e.Kind.String()
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Kind == KindRateLimited {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Refused reports that the platform answered that it did not act on the
// request: a rate limit, a refusal of the token or the content, a
// duplicate, any other 4xx, or 503 Service Unavailable. Any other failure
// (no answer, a dropped connection, a 500, 502 or 504, a success that could
// not be read) may have been applied: LinkedIn, for one, answers 504 for
// posts it created. A retry after such an answer must reconcile first.
func (e *Error) Refused() bool {
	switch e.Kind {
	case KindRateLimited, KindAuth, KindInvalidContent, KindDuplicate, KindSessionExpired:
		return true
	}
	return e.Status == http.StatusServiceUnavailable || (e.Status >= 400 && e.Status < 500)
}

// KindOf returns the Kind of err, or 0 when err is no *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
