package tokencipher_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/postflow/postflow/internal/tokencipher"
)

func key(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustNew(t testing.TB, current []byte, previous ...[]byte) *tokencipher.Cipher {
	t.Helper()
	c, err := tokencipher.New(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const binding = "org1/linkedin/urn:li:person:abc#accessToken"

func TestRoundTrip(t *testing.T) {
	c := mustNew(t, key(t))
	for _, plain := range []string{"AQV-token", strings.Repeat("x", 2000), "ünïcødé ✓", "a"} {
		sealed, err := c.Seal(plain, binding)
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) > 4 && strings.Contains(sealed, plain) {
			t.Errorf("sealed text %q contains the plaintext", sealed)
		}
		got, err := c.Open(sealed, binding)
		if err != nil || got != plain {
			t.Errorf("Open = %q, %v; want %q", got, err, plain)
		}
	}
}

func TestNonceIsFreshEachTime(t *testing.T) {
	c := mustNew(t, key(t))
	a, _ := c.Seal("same token", binding)
	b, _ := c.Seal("same token", binding)
	if a == b {
		t.Error("two seals of one token are identical: the nonce is reused")
	}
}

func TestEmptyStaysEmpty(t *testing.T) {
	c := mustNew(t, key(t))
	if s, err := c.Seal("", binding); s != "" || err != nil {
		t.Errorf("Seal(\"\") = %q, %v", s, err)
	}
	if s, err := c.Open("", binding); s != "" || err != nil {
		t.Errorf("Open(\"\") = %q, %v", s, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	k := key(t)
	c := mustNew(t, k)
	sealed, err := c.Seal("secret-access-token", binding)
	if err != nil {
		t.Fatal(err)
	}
	// flip changes one bit of the sealed bytes, i counting from the end.
	flip := func(s string, i int) string {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, "v1."))
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)-i] ^= 0x01
		return "v1." + base64.RawURLEncoding.EncodeToString(raw)
	}
	tests := []struct {
		name    string
		cipher  *tokencipher.Cipher
		sealed  string
		binding string
		want    error
	}{
		{"wrong key", mustNew(t, key(t)), sealed, binding, tokencipher.ErrUnknownKey},
		{"other account", c, sealed, "org2/linkedin/urn:li:person:abc#accessToken", tokencipher.ErrOpen},
		{"other field", c, sealed, "org1/linkedin/urn:li:person:abc#refreshToken", tokencipher.ErrOpen},
		{"tampered body", c, flip(sealed, 20), binding, tokencipher.ErrOpen},
		{"tampered tag", c, flip(sealed, 1), binding, tokencipher.ErrOpen},
		{"truncated", c, sealed[:12], binding, tokencipher.ErrMalformed},
		{"no prefix", c, strings.TrimPrefix(sealed, "v1."), binding, tokencipher.ErrMalformed},
		{"plaintext stored by mistake", c, "AQV-plain-token", binding, tokencipher.ErrMalformed},
		{"not base64", c, "v1.!!!!", binding, tokencipher.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cipher.Open(tt.sealed, tt.binding)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open = %q, %v; want %v", got, err, tt.want)
			}
			if got != "" {
				t.Errorf("Open returned %q with an error", got)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := key(t), key(t)
	before := mustNew(t, oldKey)
	sealedOld, _ := before.Seal("token sealed before rotation", binding)

	after := mustNew(t, newKey, oldKey)
	if got, err := after.Open(sealedOld, binding); err != nil || got != "token sealed before rotation" {
		t.Fatalf("old token after rotation: %q, %v", got, err)
	}
	sealedNew, _ := after.Seal("token sealed after rotation", binding)
	// The new key wrote it: the old configuration cannot read it.
	if _, err := before.Open(sealedNew, binding); !errors.Is(err, tokencipher.ErrUnknownKey) {
		t.Errorf("old cipher opened a token of the new key: %v", err)
	}
	// Once the old key is dropped, its tokens no longer open.
	if _, err := mustNew(t, newKey).Open(sealedOld, binding); !errors.Is(err, tokencipher.ErrUnknownKey) {
		t.Errorf("retired key: %v", err)
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	if _, err := tokencipher.New(make([]byte, 16)); err == nil {
		t.Error("accepted a 16-byte key")
	}
	if _, err := tokencipher.New(key(t), make([]byte, 31)); err == nil {
		t.Error("accepted a 31-byte previous key")
	}
}

func FuzzOpen(f *testing.F) {
	k := bytes.Repeat([]byte{7}, 32)
	c, err := tokencipher.New(k)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := c.Seal("fuzz-token", binding)
	f.Add(good, binding)
	f.Add(good[:len(good)-1], binding)
	f.Add("v1.", "")
	f.Add("v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", binding)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, sealed, b string) {
		got, err := c.Open(sealed, b)
		if err != nil && got != "" {
			t.Fatalf("Open returned %q with error %v", got, err)
		}
		if err == nil && sealed != "" && (sealed != good || b != binding) {
			// Only the one real token may open, and only with its binding.
			if got != "fuzz-token" || b != binding {
				t.Fatalf("Open(%q, %q) = %q: forged", sealed, b, got)
			}
		}
	})
}

// A MAC matches its data and binding under the key that made it, or a
// cipher that keeps that key as a previous one, and nothing else; it
// holds no unkeyed hash of the data.
func TestMAC(t *testing.T) {
	k, other := key(t), key(t)
	c := mustNew(t, k)
	const data = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	mac := c.MAC(data, binding)
	if !strings.HasPrefix(mac, "m1.") || strings.Contains(mac, data[7:]) {
		t.Fatalf("MAC = %q, want m1. and no trace of the data", mac)
	}
	if c.MAC(data, binding) != mac {
		t.Error("MAC is not deterministic")
	}
	flip := []byte(mac)
	flip[len(flip)-1] ^= 1
	tests := []struct {
		name   string
		cipher *tokencipher.Cipher
		mac    string
		data   string
		bind   string
		want   bool
	}{
		{"same data, binding and key", c, mac, data, binding, true},
		{"after a rotation, by the previous key", mustNew(t, other, k), mac, data, binding, true},
		{"other data", c, mac, data + "0", binding, false},
		{"other binding", c, mac, data, binding + "x", false},
		{"other binding of the same length", c, mac, data, binding[:len(binding)-1] + "X", false},
		{"binding and data cut elsewhere", c, mac, data[1:], binding + data[:1], false},
		{"a cipher without its key", mustNew(t, other), mac, data, binding, false},
		{"tampered", c, string(flip), data, binding, false},
		{"truncated", c, mac[:len(mac)-2], data, binding, false},
		{"a plain digest", c, data, data, binding, false},
		{"a sealed token", c, "v1." + mac[3:], data, binding, false},
		{"empty", c, "", data, binding, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cipher.CheckMAC(tt.mac, tt.data, tt.bind); got != tt.want {
				t.Errorf("CheckMAC = %v, want %v", got, tt.want)
			}
		})
	}
	// The digest itself, past the key id, is the key's: not a hash
	// anyone may compute.
	tag := func(m string) string { return m[3+6:] } // past "m1." and the id (whose base64 runs into the 6th character)
	if tag(mustNew(t, other).MAC(data, binding)) == tag(mac) {
		t.Error("two keys made the same digest")
	}
}
