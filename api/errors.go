package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// Error is an answer other than 2xx: a snake_case code the frontend can
// switch on and a sentence a person can read. Its status is decided here
// and nowhere else.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf-style constructors for the statuses of the spec.
func BadRequest(code, msg string) *Error { return &Error{http.StatusBadRequest, code, msg} }
func Unauthorized(msg string) *Error     { return &Error{http.StatusUnauthorized, "unauthorized", msg} }
func Forbidden(msg string) *Error        { return &Error{http.StatusForbidden, "forbidden", msg} }
func NotFound(code, msg string) *Error   { return &Error{http.StatusNotFound, code, msg} }
func Conflict(code, msg string) *Error   { return &Error{http.StatusConflict, code, msg} }
func Unprocessable(code, msg string) *Error {
	return &Error{http.StatusUnprocessableEntity, code, msg}
}
func Unavailable(code, msg string) *Error { return &Error{http.StatusServiceUnavailable, code, msg} }

// DetailedError is an Error with details: what its message says, field by
// field, for a client to act on (the image and rule a post's 422
// media_rejected names). A type of its own, so that Error's literals stay
// as they are.
type DetailedError struct {
	Err *Error
	// Details is marshalled as the error's "details"; JSON.
	Details any
}

func (e *DetailedError) Error() string { return e.Err.Error() }
func (e *DetailedError) Unwrap() error { return e.Err }

// errorMember is the "error" member of an answer.
type errorMember struct {
	*Error
	Details any `json:"details,omitempty"`
}

// writeError answers with err in the spec's shape. Errors that are not an
// *Error are internal: the client gets a generic 500 and the log gets the
// detail, never the other way round.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		e = &Error{http.StatusInternalServerError, "internal", "Something went wrong on our side; it has been logged."}
	}
	body := errorMember{Error: e}
	if d := (*DetailedError)(nil); errors.As(err, &d) && d.Err == e {
		body.Details = d.Details
	}
	writeJSON(w, e.Status, map[string]errorMember{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // The status is sent; a broken pipe has no one left to tell.
}
