package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/postflow/postflow/internal/echo"
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
	// API listens on 127.0.0.1 alone; requests whose Host is not a
	// loopback name or address are refused (403 host_not_allowed).
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
// when told to), or anyone when Anonymous, provided the request names a
// loopback host. The UI's origin may call it from the browser; preflights
// are answered before authentication, as browsers send them without
// credentials. Bodies are read by decodeJSON, like every other JSON body,
// and every error answers in the spec's shape.
func (s *server) codecHandler(opts CodecOptions) http.Handler {
	auth := s.operatorOnly(opts.Anonymous, "Decoding payloads")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveCodec(w, r, opts.Codec)
	}))
	h := corsFor(opts.UIOrigin, "POST, OPTIONS", "Authorization, Content-Type, X-Namespace", "")(auth)
	if opts.Anonymous {
		h = s.loopbackOnly("Without credentials, the codec endpoint answers only requests to a loopback host (localhost, 127.0.0.1, [::1]).")(h)
	}
	return h
}

// operatorOnly lets through operators only: a bearer JWT (HS256, the API's
// secret) with a subject and "operator": true; 401 without a valid token,
// 403 with a user's. With anonymous (postflow dev only, behind
// loopbackOnly) everyone passes. what names the action in the refusals.
func (s *server) operatorOnly(anonymous bool, what string) func(http.Handler) http.Handler {
	parser := newJWTParser()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !anonymous {
				raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !ok {
					writeError(w, r, s.logger, Unauthorized(what+" takes an operator's bearer token."))
					return
				}
				var c operatorClaims
				if _, err := parser.ParseWithClaims(strings.TrimSpace(raw), &c, func(*jwt.Token) (any, error) { return s.auth.JWTSecret, nil }); err != nil || c.Subject == "" {
					writeError(w, r, s.logger, Unauthorized("The bearer token is invalid or expired."))
					return
				}
				if !c.Operator {
					writeError(w, r, s.logger, Forbidden(what+" is for operators."))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// loopbackOnly answers only requests whose Host is a loopback name or
// address. Without credentials, listening on 127.0.0.1 is not enough: a
// page whose name an attacker points at 127.0.0.1 (DNS rebinding) is, to
// the browser, its own origin, and could read what the codec decodes; its
// requests carry the attacker's name as Host. msg is the refusal's
// message.
func (s *server) loopbackOnly(msg string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isLoopbackHost(r.Host) {
				writeError(w, r, s.logger, &Error{http.StatusForbidden, "host_not_allowed", msg})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// isLoopbackHost says whether hostport (a Host header, with or without a
// port) is localhost, a name under .localhost (browsers resolve those to
// loopback themselves, RFC 6761), or a loopback address.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// codecPayloads is Temporal's remote codec body: commonpb.Payloads as the
// SDK's codec client (encoding/json) and the Web UI write it, bytes in
// standard base64.
type codecPayloads struct {
	Payloads []codecPayload `json:"payloads"`
}

type codecPayload struct {
	Metadata map[string][]byte `json:"metadata,omitempty"`
	Data     []byte            `json:"data,omitempty"`
}

// serveCodec is Temporal's remote codec protocol: POST /encode and
// /decode under codecPath, {"payloads": [...]} in and out.
func (s *server) serveCodec(w http.ResponseWriter, r *http.Request, codec converter.PayloadCodec) {
	op := strings.TrimPrefix(r.URL.Path, codecPath)
	if op != "/encode" && op != "/decode" {
		writeError(w, r, s.logger, NotFound("not_found", "No route "+echo.Quote(r.Method)+" "+echo.Quote(r.URL.Path)+"."))
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, s.logger, []string{http.MethodPost})
		return
	}
	var in codecPayloads
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	payloads := make([]*commonpb.Payload, len(in.Payloads))
	for i, p := range in.Payloads {
		payloads[i] = &commonpb.Payload{Metadata: p.Metadata, Data: p.Data}
	}
	var err error
	if op == "/encode" {
		if payloads, err = codec.Encode(payloads); err != nil {
			writeError(w, r, s.logger, fmt.Errorf("codec endpoint: encode: %w", err))
			return
		}
	} else if payloads, err = codec.Decode(payloads); err != nil {
		// Sealed under a key this deployment lacks, or altered: the
		// caller's input, not our fault.
		s.logger.WarnContext(r.Context(), "codec endpoint: decode refused", "error", err)
		writeError(w, r, s.logger, BadRequest("undecodable_payload", "A payload could not be decoded: it was sealed under a key this deployment does not have, or altered."))
		return
	}
	out := codecPayloads{Payloads: make([]codecPayload, len(payloads))}
	for i, p := range payloads {
		out.Payloads[i] = codecPayload{Metadata: p.GetMetadata(), Data: p.GetData()}
	}
	writeJSON(w, http.StatusOK, out)
}
