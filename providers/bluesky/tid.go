package bluesky

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// tidAlphabet is atproto's base32-sortable alphabet: a TID's text sorts
// as its number does.
const tidAlphabet = "234567abcdefghijklmnopqrstuvwxyz"

// maxTIDMicros is the largest timestamp a TID holds: 53 bits of
// microseconds since the Unix epoch (the top bit of the 64 is always 0).
const maxTIDMicros = 1<<53 - 1

// RecordKey is the record key of the post that the publication with
// idempotency key key (the same for every attempt of one post to one
// account) creates: a TID (atproto spec "Timestamp Identifiers": 64 bits,
// top bit 0, 53 bits of microseconds since the Unix epoch, 10 bits of
// clock id, written as 13 characters of base32-sortable). The timestamp is
// created's second; its microseconds and the clock id come from the
// SHA-256 of key, so two publications of posts created in the same second
// get different keys (30 bits apart) and every attempt of one gets the
// same. The PDS takes only a TID as the key of an app.bsky.feed.post,
// and takes past ones (checked on @atproto/pds 0.5.35).
//
// Errors: created before 1970 or past the TID range (a zero time: the
// caller forgot it), or an empty key.
func RecordKey(created time.Time, key string) (string, error) {
	secs := created.Unix()
	if key == "" {
		return "", fmt.Errorf("bluesky: record key: no idempotency key")
	}
	if secs <= 0 || secs > maxTIDMicros/1_000_000-1 {
		return "", fmt.Errorf("bluesky: record key: creation time %s is outside the TID range", created.UTC().Format(time.RFC3339))
	}
	sum := sha256.Sum256([]byte(key))
	h := binary.BigEndian.Uint64(sum[:8])
	micros := uint64(secs)*1_000_000 + (h>>10)%1_000_000
	v := micros<<10 | h&0x3ff
	var out [13]byte
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = tidAlphabet[v&31]
		v >>= 5
	}
	return string(out[:]), nil
}

// ValidTID reports whether s has a TID's syntax: 13 characters of
// base32-sortable, the first one of 2-7 or a-j (the top bit 0).
func ValidTID(s string) bool {
	if len(s) != 13 || !('2' <= s[0] && s[0] <= '7' || 'a' <= s[0] && s[0] <= 'j') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('2' <= s[i] && s[i] <= '7' || 'a' <= s[i] && s[i] <= 'z') {
			return false
		}
	}
	return true
}

// tidTime is the timestamp part of a TID, to the microsecond.
func tidTime(s string) time.Time {
	var v uint64
	for i := 0; i < len(s); i++ {
		v = v<<5 | uint64(strings.IndexByte(tidAlphabet, s[i]))
	}
	return time.UnixMicro(int64(v >> 10)).UTC()
}
