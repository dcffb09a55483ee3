package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// decodeJSON reads one JSON object from the body into v; every JSON body
// the API takes goes through it. The media type must be application/json
// (charset=utf-8 allowed, anything else 415). Field names match v's json
// names exactly: another spelling, "CONTENT" for "content", is an unknown
// field, refused by name (encoding/json alone would take it). A key given
// twice in one object is refused rather than letting the last one win. A
// body past the cap is a 413, and any other defect is a 400 that says
// where it is; nothing is half-applied.
func decodeJSON(r *http.Request, v any) error {
	if err := checkMediaType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return jsonError(err)
	}
	// encoding/json (v1) matches names without regard to case and keeps
	// the last of repeated keys, and v2 is behind GOEXPERIMENT in Go 1.26:
	// a pass over the tokens checks the names against v's type first.
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := checkMembers(dec, reflect.TypeOf(v), "", 0); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadRequest("invalid_json", "The body must hold a single JSON object.")
	}
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	return nil
}

// checkMediaType accepts application/json, with no parameter but
// charset=utf-8: a body in another charset would be read wrong, and a
// type that merely starts with application/json (application/jsonp) is
// another type.
func checkMediaType(ct string) error {
	refuse := &Error{http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the body as Content-Type: application/json (charset=utf-8, if any)."}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return refuse
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return refuse
		}
	}
	return nil
}

// jsonError turns what reading or decoding the body failed on into the
// spec's answer.
func jsonError(err error) error {
	var e *Error
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &tooBig):
		return &Error{http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("The body is larger than %d bytes.", tooBig.Limit)}
	case errors.Is(err, io.EOF):
		return BadRequest("invalid_json", "The body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("invalid_json", "The body ends in the middle of a JSON value.")
	case errors.As(err, &syntax):
		return BadRequest("invalid_json", fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset))
	case errors.As(err, &typ) && typ.Field == "":
		return BadRequest("invalid_json", "The body must be a JSON object.")
	case errors.As(err, &typ):
		return BadRequest("invalid_field", fmt.Sprintf("Field %q must be %s.", typ.Field, typ.Type.String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this case; its text is stable.
		return BadRequest("unknown_field", "Unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field ")+".")
	default:
		return BadRequest("invalid_json", "The body could not be read as JSON.")
	}
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// maxDepth bounds how deep a body may nest (PostFlow's bodies nest 4
// levels): checkMembers recurses once per level, and a body of a million
// '[' would otherwise take a stack to match.
const maxDepth = 32

// checkMembers reads the next JSON value from dec and checks, at every
// depth, that no object repeats a key and that the keys of an object
// decoded into a struct are exactly the struct's json names. t is the Go
// type the value decodes into (nil: anything, only repeats are checked);
// path names the value in errors ("variants.<id>.content"). Values whose
// shape does not fit t are left for the decoder to refuse with its type
// error.
func checkMembers(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) && path != "" {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)) {
		t = nil // It reads its own JSON: only repeated keys are checked.
	}
	if d, ok := tok.(json.Delim); ok && depth >= maxDepth && (d == '{' || d == '[') {
		return BadRequest("invalid_json", fmt.Sprintf("The body nests deeper than %d levels.", maxDepth))
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = jsonFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := inner(dec)
			if err != nil {
				return err
			}
			key, _ := tok.(string) // Token refuses a key that is not a string.
			name := key
			if path != "" {
				name = path + "." + key
			}
			if seen[key] {
				return BadRequest("duplicate_key", fmt.Sprintf("Field %q is given twice.", name))
			}
			seen[key] = true
			ft := elem
			if fields != nil {
				var ok bool
				if ft, ok = fields[key]; !ok {
					return BadRequest("unknown_field", fmt.Sprintf("Unknown field %q.", name))
				}
			}
			if err := checkMembers(dec, ft, name, depth+1); err != nil {
				return err
			}
		}
		_, err := inner(dec) // '}'
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkMembers(dec, elem, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
		_, err := inner(dec) // ']'
		return err
	}
	return nil
}

// inner reads a token inside a value: the body ending there is cut short,
// not empty.
func inner(dec *json.Decoder) (json.Token, error) {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return tok, err
}

// jsonFields maps the json names of t's fields, as encoding/json reads
// them (tag name, else the Go name; "-" skipped; embedded structs
// without a tag flattened), to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
