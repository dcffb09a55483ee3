package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// decodeJSON reads one JSON object from the body into v. Unknown fields are
// refused by name, a body past the cap is a 413, and any other defect is a
// 400 that says where it is; nothing is half-applied.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &Error{http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the body as application/json."}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return BadRequest("invalid_json", "The body must hold a single JSON object.")
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return BadRequest("invalid_json", "The body must hold a single JSON object.")
		}
		return nil
	}
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return &Error{http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("The body is larger than %d bytes.", tooBig.Limit)}
	case errors.Is(err, io.EOF):
		return BadRequest("invalid_json", "The body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("invalid_json", "The body ends in the middle of a JSON value.")
	case errors.As(err, &syntax):
		return BadRequest("invalid_json", fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset))
	case errors.As(err, &typ):
		return BadRequest("invalid_field", fmt.Sprintf("Field %q must be %s.", typ.Field, typ.Type.String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this case; its text is stable.
		return BadRequest("unknown_field", "Unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field ")+".")
	default:
		return BadRequest("invalid_json", "The body could not be read as JSON.")
	}
}
