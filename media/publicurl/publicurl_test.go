package publicurl_test

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/media/publicurl"
)

const id = "65a1b2c3d4e5f60718293a4b"

func TestSignAndCheck(t *testing.T) {
	s, err := publicurl.New("https://api.example.com/pf/", bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := publicurl.New("https://api.example.com", bytes.Repeat([]byte("x"), 32))
	now := time.Unix(1_800_000_000, 0)
	link, err := s.Sign(strings.ToUpper(id), now.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	if u.Host != "api.example.com" || u.Path != "/pf/media/"+id+"/public" || u.Query().Get("exp") != "1800000600" {
		t.Fatalf("link = %s", link)
	}
	exp, sig := u.Query().Get("exp"), u.Query().Get("sig")
	flip := []byte(sig)
	flip[0] ^= 1
	tests := []struct {
		name         string
		signer       *publicurl.Signer
		id, exp, sig string
		at           time.Time
		want         error
	}{
		{"good", s, id, exp, sig, now, nil},
		{"good until the last second", s, id, exp, sig, now.Add(10*time.Minute - time.Nanosecond), nil},
		{"expired", s, id, exp, sig, now.Add(10 * time.Minute), publicurl.ErrExpired},
		{"another id", s, "65a1b2c3d4e5f60718293a4c", exp, sig, now, publicurl.ErrBadSignature},
		{"later exp", s, id, "1800009999", sig, now, publicurl.ErrBadSignature},
		{"exp with a leading zero", s, id, "0" + exp, sig, now, publicurl.ErrBadSignature},
		{"flipped sig", s, id, exp, string(flip), now, publicurl.ErrBadSignature},
		{"no sig", s, id, exp, "", now, publicurl.ErrBadSignature},
		{"not hex", s, id, exp, "zz", now, publicurl.ErrBadSignature},
		{"another secret", other, id, exp, sig, now, publicurl.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.signer.Check(tt.id, tt.exp, tt.sig, tt.at); !errors.Is(err, tt.want) {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewAndURLRefuse(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	for _, tt := range []struct {
		name, base string
		key        []byte
	}{
		{"short secret", "https://a.example", key[:31]},
		{"relative base", "/media", key},
		{"ftp base", "ftp://a.example", key},
		{"credentials", "https://u:p@a.example", key},
	} {
		if _, err := publicurl.New(tt.base, tt.key); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	checkOnly, err := publicurl.New("", key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkOnly.URL(id, time.Minute); !errors.Is(err, publicurl.ErrNoBaseURL) {
		t.Errorf("URL without a base: %v", err)
	}
	s, _ := publicurl.New("https://a.example", key)
	if _, err := s.URL("not-an-id", time.Minute); err == nil {
		t.Error("URL of a malformed id accepted")
	}
}
