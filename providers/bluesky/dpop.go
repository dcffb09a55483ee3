package bluesky

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DPoP (RFC 9449) for atproto OAuth sessions. go-jose/v4 signs the
// proofs and reads and writes the JWKs: it is already in the module graph
// (Temporal's dependencies pin v4.1.4), is the JOSE library most Go OAuth
// code uses, and does what golang-jwt/v5 does not: embed the public JWK in
// a header and marshal a private EC key to a JWK and back, with checks.

// dpopKey is the P-256 key of one DPoP binding: the one PAR and the token
// exchange use, then every call of the session it is bound to.
type dpopKey struct {
	priv *ecdsa.PrivateKey
}

// dpopKeyInfo separates this derivation from any other use of a verifier.
const dpopKeyInfo = "postflow bluesky atproto-oauth dpop key v1"

// keyFromVerifier derives the DPoP key of a connect from a PKCE verifier
// (RFC 7636 §4.1) or another secret of its length, such as dpopKeyFor's
// seed: see p256FromSecret. Why derive it: PAR and the token exchange
// must use the same key (the authorization server binds the request to
// it), and the provider keeps no state of its own between them.
func keyFromVerifier(verifier string) (*dpopKey, error) {
	if len(verifier) < 43 {
		return nil, errors.New("bluesky: a PKCE verifier has at least 43 characters (RFC 7636 §4.1)")
	}
	return p256FromSecret([]byte(verifier), dpopKeyInfo)
}

// p256FromSecret is HKDF-SHA256 (RFC 5869) of secret under label, read as
// a P-256 scalar. A candidate outside [1, n-1] (chance about 2^-32) moves
// to the next counter.
func p256FromSecret(secret []byte, label string) (*dpopKey, error) {
	for i := range 16 {
		scalar, err := hkdf.Key(sha256.New, secret, nil, fmt.Sprintf("%s #%d", label, i), 32)
		if err != nil {
			return nil, fmt.Errorf("bluesky: derive a P-256 key: %w", err)
		}
		if priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar); err == nil {
			return &dpopKey{priv: priv}, nil
		}
	}
	return nil, errors.New("bluesky: derive a P-256 key: no scalar in range")
}

// newDPoPKey is a fresh random key (tests; a connect derives its key).
func newDPoPKey() (*dpopKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("bluesky: DPoP key: %w", err)
	}
	return &dpopKey{priv: priv}, nil
}

// privateJWK is the key as a JWK with its private part (RFC 7517, RFC
// 7518 §6.2: kty EC, crv P-256, x, y, d). It is a secret: stored only
// sealed, as part of a session's tokens.
func (k *dpopKey) privateJWK() (string, error) {
	b, err := json.Marshal(jose.JSONWebKey{Key: k.priv, Algorithm: string(jose.ES256), Use: "sig"})
	if err != nil {
		return "", fmt.Errorf("bluesky: encode DPoP key: %w", err)
	}
	return string(b), nil
}

// parseDPoPKey reads a privateJWK. The error never quotes the JWK.
func parseDPoPKey(s string) (*dpopKey, error) {
	var j jose.JSONWebKey
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return nil, errors.New("bluesky: the stored DPoP key is no JWK")
	}
	priv, ok := j.Key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("bluesky: the stored DPoP key is no private P-256 key")
	}
	return &dpopKey{priv: priv}, nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of the public key,
// base64url: the jkt a DPoP-bound token carries in cnf (RFC 9449 §6).
func (k *dpopKey) thumbprint() string {
	pub := jose.JSONWebKey{Key: &k.priv.PublicKey}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// dpopClaims are a DPoP proof's claims (RFC 9449 §4.2).
type dpopClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce,omitempty"`
	// ATH is base64url(SHA-256(access token)), on calls to a resource
	// server with a DPoP-bound access token (§4.2, §7).
	ATH string `json:"ath,omitempty"`
}

// proof is a DPoP proof JWT (RFC 9449 §4.2): header typ dpop+jwt, alg
// ES256 and the public JWK; claims jti (16 random bytes), htm, htu (the
// URL without query and fragment, §4.3), iat (now, Unix seconds), the
// server's nonce when it gave one, and ath when accessToken is not "".
func (k *dpopKey) proof(method, target, nonce, accessToken string, now time.Time) (string, error) {
	htu, err := dpopHTU(target)
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	c := dpopClaims{
		JTI: base64.RawURLEncoding.EncodeToString(jti), HTM: method, HTU: htu,
		IAT: now.Unix(), Nonce: nonce,
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("bluesky: DPoP proof: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return "", fmt.Errorf("bluesky: DPoP proof: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("bluesky: DPoP proof: %w", err)
	}
	return jws.CompactSerialize()
}

// dpopHTU is target without its query and fragment (RFC 9449 §4.3).
func dpopHTU(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", errors.New("bluesky: DPoP proof for a URL that is not absolute")
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	return u.String(), nil
}

// nonces keeps the last DPoP-Nonce each server (scheme://host) gave
// (RFC 9449 §8, §9): authorization servers and resource servers alike
// answer use_dpop_nonce without one, so a call that sends the last nonce
// seen saves a round trip. It lives in the Provider, not in a global.
type nonces struct {
	mu sync.Mutex
	m  map[string]string
}

// maxNonces bounds the cache: one entry per server, and servers are many
// only if users name many PDSes; past it the cache starts again.
const maxNonces = 1024

func (n *nonces) get(target string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[originOf(target)]
}

func (n *nonces) set(target, nonce string) {
	if nonce == "" || len(nonce) > 512 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil || len(n.m) >= maxNonces {
		n.m = map[string]string{}
	}
	n.m[originOf(target)] = nonce
}

func originOf(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}
