// Package publicurl makes and checks the links at which PostFlow serves a
// media item without credentials, for networks that fetch an image
// themselves (Threads, Facebook) rather than take an upload:
//
//	{PUBLIC_BASE_URL}/media/{id}/public?exp={unix seconds}&sig={hex HMAC-SHA256}
//
// sig is HMAC-SHA256, under MEDIA_URL_SECRET, of the id (24 lower-case hex
// digits) and exp; a link is good until exp, and only for that id. The
// route answers the bytes, or a 302 to the store's own presigned URL when
// the store makes one (S3). A provider that needs such a link calls
// Signer.URL with the item's id and how long the network may take to
// fetch it.
package publicurl

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postflow/postflow/internal/ids"
)

// MinSecretBytes is the shortest secret accepted: HMAC-SHA256's block of
// entropy.
const MinSecretBytes = 32

// Errors of Check; both mean 403 to whoever holds the link.
var (
	ErrExpired      = errors.New("publicurl: link expired")
	ErrBadSignature = errors.New("publicurl: bad signature")
)

// ErrNoBaseURL: the signer was made without PUBLIC_BASE_URL, so it checks
// links but cannot make them.
var ErrNoBaseURL = errors.New("publicurl: PUBLIC_BASE_URL is not set")

// Signer makes and checks public media links under one secret.
type Signer struct {
	base string // without a trailing slash; "" when only checking
	key  []byte
}

// New returns a signer. baseURL is where PostFlow's API is reachable from
// the Internet (PUBLIC_BASE_URL: an absolute http(s) URL, a path prefix
// allowed), or "" for a signer that only checks; secret is
// MEDIA_URL_SECRET, at least MinSecretBytes long. Errors never repeat the
// secret.
func New(baseURL string, secret []byte) (*Signer, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("publicurl: the secret must be at least %d bytes, got %d", MinSecretBytes, len(secret))
	}
	if baseURL != "" {
		u, err := url.Parse(baseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("publicurl: base URL %q must be an absolute http(s) URL without query or credentials", baseURL)
		}
	}
	return &Signer{base: strings.TrimRight(baseURL, "/"), key: append([]byte(nil), secret...)}, nil
}

// URL returns the public link of media item id, good for ttl from now.
// Errors: ErrNoBaseURL, or an id that is not 24 hex digits.
func (s *Signer) URL(id string, ttl time.Duration) (string, error) {
	return s.Sign(id, time.Now().Add(ttl))
}

// Sign returns the public link of media item id, good until expires
// (rounded up to the second).
func (s *Signer) Sign(id string, expires time.Time) (string, error) {
	if s.base == "" {
		return "", ErrNoBaseURL
	}
	canonical, err := ids.Parse(id)
	if err != nil {
		return "", fmt.Errorf("publicurl: media id %q: %w", id, err)
	}
	id = canonical
	exp := expires.Unix()
	if expires.After(time.Unix(exp, 0)) {
		exp++
	}
	e := strconv.FormatInt(exp, 10)
	q := url.Values{"exp": {e}, "sig": {s.sig(id, e)}}
	return s.base + "/media/" + id + "/public?" + q.Encode(), nil
}

// Check says whether exp and sig, as a link carries them, let its holder
// fetch media item id (canonical, as ids.Parse gives it) at now: nil, or
// ErrBadSignature (also for an exp that is not canonical decimal), or
// ErrExpired once now reaches exp. The signature is checked first, in
// constant time.
func (s *Signer) Check(id, exp, sig string, now time.Time) error {
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != exp {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return ErrBadSignature
	}
	want, _ := hex.DecodeString(s.sig(id, exp))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	if !now.Before(time.Unix(n, 0)) {
		return ErrExpired
	}
	return nil
}

// sig is the hex HMAC-SHA256 of a domain tag, id and exp, NUL-separated so
// that no (id, exp) pair reads as another.
func (s *Signer) sig(id, exp string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("postflow media public v1\x00" + id + "\x00" + exp))
	return hex.EncodeToString(m.Sum(nil))
}
