package api

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/postflow/postflow/internal/echo"
)

// decodeJSON reads one JSON object from the body into v; every JSON body
// the API takes goes through it. The media type must be application/json
// (charset=utf-8 allowed, anything else 415). The top-level value must be
// an object: null, a list or a scalar is refused, not taken as {}. Field
// names match v's json names exactly: another spelling, "CONTENT" for
// "content", is an unknown field, refused by name (encoding/json alone
// would take it). A key given twice in one object is refused rather than
// letting the last one win. Text must be what it claims: bytes that are
// not UTF-8 and \u escapes of half a surrogate pair are refused, where
// encoding/json would quietly put U+FFFD in their place. A value of the
// wrong kind is named by its full path ("variants.<id>.content") and the
// kind it must be, in words. A body past the cap is a 413, and any other
// defect is a 400 that says where it is; nothing is half-applied.
func decodeJSON(r *http.Request, v any) error {
	if err := checkMediaType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return jsonError(err)
	}
	if at := invalidUTF8(body); at >= 0 {
		return BadRequest("invalid_json", fmt.Sprintf("The body is not valid UTF-8 (at byte %d).", at))
	}
	// encoding/json (v1) matches names without regard to case, keeps the
	// last of repeated keys and replaces lone surrogates, and v2 is behind
	// GOEXPERIMENT in Go 1.26: a pass over the tokens checks the names and
	// the kinds of values against v's type first. Numbers are read as
	// written (UseNumber), so that one out of float64's range is judged
	// against its field rather than failing the pass.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := checkMembers(dec, reflect.TypeOf(v), "", 0, map[reflect.Type]map[string]reflect.Type{}); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadRequest("invalid_json", "The body must hold a single JSON object.")
	}
	if at := loneSurrogate(body); at >= 0 {
		return BadRequest("invalid_json", fmt.Sprintf("The body holds a lone surrogate escape (%s) at byte %d: a UTF-16 surrogate escape must be a high one (\\uD800-\\uDBFF) followed by a low one (\\uDC00-\\uDFFF).", body[at:at+6], at))
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
		return BadRequest("invalid_field", fmt.Sprintf("Field %s must be %s.", echo.Quote(typ.Field), describe(typ.Type)))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this case; its text is stable.
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return BadRequest("unknown_field", "Unknown field "+echo.Quote(name)+".")
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

// checkMembers reads the next JSON value from dec (which has UseNumber
// set) and checks, at every depth, that no object repeats a key, that the
// keys of an object decoded into a struct are exactly the struct's json
// names, and that each value's kind fits the type it decodes into (a
// number within its range). t is that type (nil: anything, only repeats
// are checked); path names the value in errors ("variants.<id>.content",
// the map's key kept, which the decoder's own type errors drop). At depth
// 0 the value must be an object. fields holds jsonFields of the struct
// types met so far, so that a list of many objects of one type (a codec
// batch's payloads) reflects on that type once per body, not per object.
func checkMembers(dec *json.Decoder, t reflect.Type, path string, depth int, fields map[reflect.Type]map[string]reflect.Type) error {
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
	if depth == 0 && tok != json.Delim('{') {
		return BadRequest("invalid_json", fmt.Sprintf("The body must be a JSON object, not %s.", kindOf(tok)))
	}
	if err := checkKind(tok, t, path); err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		var names map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				if names = fields[t]; names == nil {
					names = jsonFields(t)
					fields[t] = names
				}
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
				return BadRequest("duplicate_key", fmt.Sprintf("Field %s is given twice.", echo.Quote(name)))
			}
			seen[key] = true
			ft := elem
			if names != nil {
				var ok bool
				if ft, ok = names[key]; !ok {
					return BadRequest("unknown_field", fmt.Sprintf("Unknown field %s.", echo.Quote(name)))
				}
			}
			if err := checkMembers(dec, ft, name, depth+1, fields); err != nil {
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
			if err := checkMembers(dec, elem, path+"["+strconv.Itoa(i)+"]", depth+1, fields); err != nil {
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
		name, opts, _ := strings.Cut(tag, ",")
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
		if slices.Contains(strings.Split(opts, ","), "string") {
			out[name] = nil // A number or bool written as a string: the decoder judges it.
		}
	}
	return out
}

// checkKind refuses a value (tok, its first token) whose kind does not fit
// t, the type it decodes into, as encoding/json would, but naming the
// field by path and the kind in words; a number must also fit t's range.
// null fits anything (the decoder leaves the value as it is), and a nil t
// or an interface takes any kind.
func checkKind(tok json.Token, t reflect.Type, path string) error {
	if t == nil || tok == nil {
		return nil
	}
	k := t.Kind()
	switch v := tok.(type) {
	case json.Delim:
		if k == reflect.Interface || v == '{' && (k == reflect.Struct || k == reflect.Map) ||
			v == '[' && (k == reflect.Slice || k == reflect.Array) {
			return nil
		}
	case string:
		if k == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			// encoding/json reads []byte as standard base64 (line breaks
			// skipped), and its error names neither field nor base64.
			if _, err := base64.StdEncoding.DecodeString(v); err != nil {
				return BadRequest("invalid_field", fmt.Sprintf("Field %s must be a base64 string (standard alphabet, padded).", echo.Quote(path)))
			}
			return nil
		}
		if k == reflect.Interface || k == reflect.String {
			return nil
		}
	case bool:
		if k == reflect.Interface || k == reflect.Bool {
			return nil
		}
	case json.Number:
		var err error
		switch {
		case k >= reflect.Int && k <= reflect.Int64:
			_, err = strconv.ParseInt(v.String(), 10, t.Bits())
		case k >= reflect.Uint && k <= reflect.Uintptr:
			_, err = strconv.ParseUint(v.String(), 10, t.Bits())
		case k == reflect.Float32 || k == reflect.Float64:
			_, err = strconv.ParseFloat(v.String(), t.Bits())
		case k == reflect.Interface:
			_, err = v.Float64() // what encoding/json puts in an any
		default:
			return BadRequest("invalid_field", fmt.Sprintf("Field %s must be %s, not a number.", echo.Quote(path), describe(t)))
		}
		if errors.Is(err, strconv.ErrSyntax) {
			if _, ferr := v.Float64(); errors.Is(ferr, strconv.ErrRange) {
				err = ferr // 1e999 for a whole number: out of range before it is a fraction
			}
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, strconv.ErrRange):
			return BadRequest("invalid_field", fmt.Sprintf("Field %s holds a number out of range for it (%s).", echo.Quote(path), rangeOf(t)))
		default: // 1.5 or 1e3 for a whole number
			return BadRequest("invalid_field", fmt.Sprintf("Field %s must be a whole number, written without a fraction or an exponent.", echo.Quote(path)))
		}
	}
	return BadRequest("invalid_field", fmt.Sprintf("Field %s must be %s, not %s.", echo.Quote(path), describe(t), kindOf(tok)))
}

// kindOf names the kind of JSON value tok begins.
func kindOf(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		if v == '[' {
			return "a list"
		}
		return "an object"
	case string:
		return "a string"
	case bool:
		return "true or false"
	case json.Number:
		return "a number"
	}
	return "a JSON value"
}

// rangeOf says what range a numeric type (or an interface, which takes a
// float64) holds, for messages.
func rangeOf(t reflect.Type) string {
	switch k := t.Kind(); {
	case k >= reflect.Int && k <= reflect.Int64:
		return fmt.Sprintf("a whole number from %d to %d", int64(-1)<<(t.Bits()-1), int64(1)<<(t.Bits()-1)-1)
	case k >= reflect.Uint && k <= reflect.Uintptr:
		return fmt.Sprintf("a whole number from 0 to %d", ^uint64(0)>>(64-t.Bits()))
	case k == reflect.Float32:
		return fmt.Sprintf("a number of magnitude at most %g", math.MaxFloat32)
	}
	return fmt.Sprintf("a number of magnitude at most %g", math.MaxFloat64)
}

// describe names in words what JSON a value of Go type t must be: "a
// string", "a list of strings", "an object", "a number", "true or false";
// never a Go type name.
func describe(t reflect.Type) string {
	one, _ := kindWords(t)
	return one
}

// kindWords is describe's phrase for one value of t, and for many.
func kindWords(t reflect.Type) (one, many string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case reflect.PointerTo(t).Implements(unmarshalerType):
		return "a JSON value", "JSON values"
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		return "a string", "strings" // time.Time and the like
	}
	switch k := t.Kind(); {
	case k == reflect.String:
		return "a string", "strings"
	case k == reflect.Bool:
		return "true or false", "true or false values"
	case k >= reflect.Int && k <= reflect.Uintptr:
		return "a whole number", "whole numbers"
	case k == reflect.Float32 || k == reflect.Float64:
		return "a number", "numbers"
	case (k == reflect.Slice) && t.Elem().Kind() == reflect.Uint8:
		return "a base64 string", "base64 strings"
	case k == reflect.Slice || k == reflect.Array:
		_, of := kindWords(t.Elem())
		return "a list of " + of, "lists of " + of
	case k == reflect.Map || k == reflect.Struct:
		return "an object", "objects"
	}
	return "a JSON value", "JSON values"
}

// invalidUTF8 returns the offset of the first byte of b that does not
// begin a valid UTF-8 sequence, or -1.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// loneSurrogate returns the offset of the first \u escape in a string of
// body that names half of a UTF-16 surrogate pair without the other half
// (a high \uD800-\uDBFF not followed by a low \uDC00-\uDFFF escape, or a
// low one alone), or -1. encoding/json decodes such an escape as U+FFFD
// and its tokens carry no raw bytes, so the body itself is scanned. body
// must be valid JSON: outside strings it then holds no '"' nor '\\', and
// inside them every '\\' begins an escape.
func loneSurrogate(body []byte) int {
	escape := func(i int) (rune, bool) {
		if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	inString := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\':
			r, ok := escape(i)
			if !ok {
				i++ // \n, \", \\ and the like
				continue
			}
			if r >= 0xD800 && r <= 0xDBFF {
				if low, ok := escape(i + 6); ok && low >= 0xDC00 && low <= 0xDFFF {
					i += 11
					continue
				}
				return i
			}
			if r >= 0xDC00 && r <= 0xDFFF {
				return i
			}
			i += 5
		}
	}
	return -1
}
