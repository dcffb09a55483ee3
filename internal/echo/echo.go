// Package echo quotes what an error message repeats of a request (a
// field's name, a part's name, a map key, a query value): enough to
// recognize it, never a megabyte of it back to the client and into the
// logs.
package echo

import (
	"strconv"
	"unicode/utf8"
)

// MaxBytes bounds, in bytes, what Quote keeps of its input.
const MaxBytes = 64

// Quote quotes s in Go syntax (control characters show escaped), cut at
// MaxBytes on a rune boundary and then marked with "...".
func Quote(s string) string {
	if len(s) <= MaxBytes {
		return strconv.Quote(s)
	}
	cut := MaxBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
