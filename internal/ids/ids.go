// Package ids reads the ids PostFlow hands out for posts and accounts:
// MongoDB ObjectIDs, written as 24 lower-case hex digits. Ids are compared
// and used as text (map keys, result keys, workflow ids), so every id
// that comes in is brought to that one spelling first.
package ids

import (
	"encoding/hex"
	"errors"
)

// ErrInvalid: the text is not an id.
var ErrInvalid = errors.New("ids: not an id (24 hex digits)")

// Parse returns s in its canonical spelling (lower-case hex), or
// ErrInvalid when s is not 24 hex digits. "65A1..." and "65a1..." are the
// same id.
func Parse(s string) (string, error) {
	if len(s) != 24 {
		return "", ErrInvalid
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", ErrInvalid
	}
	return hex.EncodeToString(b), nil
}
