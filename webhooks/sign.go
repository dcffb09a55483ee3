package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Standard Webhooks headers (https://www.standardwebhooks.com, "Signature
// scheme"): the event id, the send time in Unix seconds, and one or more
// space-separated "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// secretBytes is a secret's length: the spec asks for 24 to 64 bytes.
const secretBytes = 32

// NewSecret returns a fresh signing secret, "whsec_" and 32 random bytes
// in base64, as the spec's libraries read it.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhooks: new secret: %w", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b), nil
}

// Sign returns the headers of a message id sent at `at` with body, signed
// with each of secrets ("whsec_..."): during a rotation both the new and
// the old secret sign, so a receiver verifying with either accepts it.
// The signing is the specification's reference Go library's.
func Sign(secrets []string, id string, at time.Time, body []byte) (http.Header, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			// The library's error would not repeat the secret, but a
			// secret is never worth the risk: say which rule failed.
			return nil, fmt.Errorf("webhooks: a signing secret is not base64")
		}
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return nil, fmt.Errorf("webhooks: sign: %w", err)
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("webhooks: no signing secret")
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return h, nil
}
