package api

import (
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"go.temporal.io/sdk/converter"
)

// codecPath is where the Temporal Web UI's codec endpoint points:
// POST {codecPath}/decode and /encode, Temporal's remote codec protocol.
const codecPath = "/temporal-codec"

// CodecOptions serve PostFlow's payload codec to the Temporal Web UI, so
// that operators read runs decoded while Temporal stores them encrypted.
type CodecOptions struct {
	// Codec encodes and decodes payloads; nil serves no codec endpoint.
	Codec converter.PayloadCodec
	// UIOrigin is the Web UI's origin, allowed to call from the browser.
	UIOrigin string
	// Anonymous answers without credentials: for postflow dev only, whose
	// API listens on 127.0.0.1 alone.
	Anonymous bool
}

// operatorClaims: decoding shows any organization's content, so it takes
// an operator's token, not a user's.
type operatorClaims struct {
	Operator bool `json:"operator"`
	jwt.RegisteredClaims
}

// codecHandler serves the codec to operators: a bearer JWT (HS256, the
// API's secret, with "operator": true; the Web UI passes its access token
// when told to), or anyone when Anonymous. The UI's origin may call it
// from the browser; preflights are answered before authentication, as
// browsers send them without credentials.
func (s *server) codecHandler(opts CodecOptions) http.Handler {
	parser := newJWTParser()
	codec := http.StripPrefix(codecPath, converter.NewPayloadCodecHTTPHandler(opts.Codec))
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !opts.Anonymous {
			raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				writeError(w, r, s.logger, Unauthorized("Decoding payloads takes an operator's bearer token."))
				return
			}
			var c operatorClaims
			if _, err := parser.ParseWithClaims(strings.TrimSpace(raw), &c, func(*jwt.Token) (any, error) { return s.auth.JWTSecret, nil }); err != nil || c.Subject == "" {
				writeError(w, r, s.logger, Unauthorized("The bearer token is invalid or expired."))
				return
			}
			if !c.Operator {
				writeError(w, r, s.logger, Forbidden("Decoding payloads is for operators."))
				return
			}
		}
		codec.ServeHTTP(w, r)
	})
	return corsFor(opts.UIOrigin, "POST, OPTIONS", "Authorization, Content-Type, X-Namespace")(auth)
}
