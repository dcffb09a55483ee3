// Package tokencipher encrypts OAuth tokens at rest with AES-256-GCM: the
// TokenService of the design.
//
// A sealed token is "v1." followed by base64url(keyID | nonce | ciphertext
// | tag). The key id (the first 4 bytes of SHA-256 of the key) lets a
// deployment rotate keys: new tokens are sealed with the current key, old
// ones open with whichever key sealed them. The nonce is random per
// encryption. The binding, typically the account's identity and the field
// name, is GCM's additional data: a token copied to another account or
// field does not open there.
//
// The same keys make keyed digests (MAC, CheckMAC) of what must be
// compared later but never read back, such as the fingerprint of a request
// whose body holds a password: an unkeyed hash of a low-entropy secret at
// rest lets whoever reads it guess the secret offline.
package tokencipher

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

const (
	prefix    = "v1."
	macPrefix = "m1."
	keyIDLen  = 4
	keyLen    = 32
	// macInfo is HKDF's info for the MAC keys: a MAC key is derived from
	// each sealing key, never the AES key itself (one key, one use).
	macInfo = "postflow tokencipher mac v1"
)

var (
	// ErrMalformed: the text is not a sealed token of this format.
	ErrMalformed = errors.New("tokencipher: not a sealed token")
	// ErrUnknownKey: sealed with a key this Cipher does not hold.
	ErrUnknownKey = errors.New("tokencipher: sealed with an unknown key")
	// ErrOpen: the wrong key, a tampered token, or the wrong binding.
	ErrOpen = errors.New("tokencipher: cannot open: tampered, or bound to another account")
)

// Cipher seals with its current key and opens with any of its keys.
type Cipher struct {
	current [keyIDLen]byte
	keys    map[[keyIDLen]byte]cipher.AEAD
	// macKeys are the HMAC-SHA256 keys derived from keys, by key id.
	macKeys map[[keyIDLen]byte][]byte
}

// New returns a Cipher that seals with current and also opens tokens sealed
// with any of previous. Each key is 32 bytes.
func New(current []byte, previous ...[]byte) (*Cipher, error) {
	c := &Cipher{keys: map[[keyIDLen]byte]cipher.AEAD{}, macKeys: map[[keyIDLen]byte][]byte{}}
	for i, key := range append([][]byte{current}, previous...) {
		if len(key) != keyLen {
			return nil, fmt.Errorf("tokencipher: key %d is %d bytes, want %d", i, len(key), keyLen)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("tokencipher: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("tokencipher: %w", err)
		}
		id := KeyID(key)
		if i == 0 {
			c.current = id
		}
		c.keys[id] = aead
		if c.macKeys[id], err = hkdf.Key(sha256.New, key, nil, macInfo, sha256.Size); err != nil {
			return nil, fmt.Errorf("tokencipher: derive the MAC key: %w", err)
		}
	}
	return c, nil
}

// KeyID is the id written in front of every token the key seals.
func KeyID(key []byte) [keyIDLen]byte {
	sum := sha256.Sum256(key)
	return [keyIDLen]byte(sum[:keyIDLen])
}

// Seal encrypts plaintext for binding. An empty plaintext seals to "",
// so an absent token stays absent.
func (c *Cipher) Seal(plaintext, binding string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	aead := c.keys[c.current]
	buf := make([]byte, keyIDLen+aead.NonceSize(), keyIDLen+aead.NonceSize()+len(plaintext)+aead.Overhead())
	copy(buf, c.current[:])
	if _, err := rand.Read(buf[keyIDLen:]); err != nil {
		return "", fmt.Errorf("tokencipher: nonce: %w", err)
	}
	buf = aead.Seal(buf, buf[keyIDLen:], []byte(plaintext), []byte(binding))
	return prefix + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Open decrypts a token sealed for binding. It never returns garbage: any
// mismatch is an error.
func (c *Cipher) Open(sealed, binding string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	raw, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", ErrMalformed
	}
	buf, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(buf) < keyIDLen {
		return "", ErrMalformed
	}
	aead, ok := c.keys[[keyIDLen]byte(buf[:keyIDLen])]
	if !ok {
		return "", ErrUnknownKey
	}
	buf = buf[keyIDLen:]
	if len(buf) < aead.NonceSize()+aead.Overhead() {
		return "", ErrMalformed
	}
	plain, err := aead.Open(nil, buf[:aead.NonceSize()], buf[aead.NonceSize():], []byte(binding))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}

// MAC returns a keyed digest of data for binding: "m1." followed by
// base64url(keyID | HMAC-SHA256(k, len(binding) | binding | data)), where
// k is derived from the current key with HKDF-SHA256 (RFC 5869). Without
// the key, the digest tells nothing of data (a password in it cannot be
// guessed against it); the binding, as Seal's, makes the digest of the
// same data differ from one record to another.
func (c *Cipher) MAC(data, binding string) string {
	return macPrefix + base64.RawURLEncoding.EncodeToString(c.mac(c.current, data, binding))
}

// CheckMAC reports whether mac is MAC(data, binding) made with any of the
// cipher's keys (the one whose id it carries, so that digests made before
// a rotation still match), comparing in constant time. A mac of another
// form, or of a key the cipher lacks, is false.
func (c *Cipher) CheckMAC(mac, data, binding string) bool {
	raw, ok := strings.CutPrefix(mac, macPrefix)
	if !ok {
		return false
	}
	buf, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(buf) != keyIDLen+sha256.Size {
		return false
	}
	id := [keyIDLen]byte(buf[:keyIDLen])
	if _, ok := c.macKeys[id]; !ok {
		return false
	}
	return hmac.Equal(buf, c.mac(id, data, binding))
}

// mac is keyID | HMAC-SHA256 of binding, length first so that no two
// (binding, data) pairs hash alike, and data.
func (c *Cipher) mac(id [keyIDLen]byte, data, binding string) []byte {
	h := hmac.New(sha256.New, c.macKeys[id])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(binding)))
	h.Write(n[:])
	h.Write([]byte(binding))
	h.Write([]byte(data))
	return h.Sum(id[:])
}
