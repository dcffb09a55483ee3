package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Identity is who calls and for which organization.
type Identity struct {
	UserID string
	// OrgID is the organization of this request, resolved as the spec
	// says: ?organizationId= (a member's), else the token's org, else its
	// only org.
	OrgID string
}

type identityKey struct{}

func identityOf(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey{}).(Identity)
	return id
}

// AuthOptions configure how callers prove who they are.
type AuthOptions struct {
	// JWTSecret verifies HS256 bearer tokens.
	JWTSecret []byte
	// TrustHeaders accepts X-User-Id and X-Organization-Id from a gateway
	// that authenticated the caller already.
	TrustHeaders bool
}

type claims struct {
	Orgs []string `json:"orgs"`
	Org  string   `json:"org,omitempty"`
	jwt.RegisteredClaims
}

// newJWTParser accepts only HS256: a token that names another algorithm
// (none, or RS256 to pass our HMAC key off as a public key) is refused
// outright. exp is required, with 30 s of leeway for clock skew.
func newJWTParser() *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30e9),
	)
}

// authenticate requires a caller and resolves the request's organization.
func (s *server) authenticate(next http.Handler) http.Handler {
	parser := newJWTParser()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var userID string
		var orgs []string
		var active string
		if raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			var c claims
			_, err := parser.ParseWithClaims(strings.TrimSpace(raw), &c, func(*jwt.Token) (any, error) { return s.auth.JWTSecret, nil })
			if err != nil || c.Subject == "" {
				writeError(w, r, s.logger, Unauthorized("The bearer token is invalid or expired."))
				return
			}
			userID, orgs, active = c.Subject, c.Orgs, c.Org
		} else if r.Header.Get("Authorization") != "" {
			writeError(w, r, s.logger, Unauthorized("Use an Authorization: Bearer <JWT> header."))
			return
		} else if s.auth.TrustHeaders && r.Header.Get("X-User-Id") != "" && r.Header.Get("X-Organization-Id") != "" {
			userID = r.Header.Get("X-User-Id")
			active = r.Header.Get("X-Organization-Id")
			orgs = []string{active}
		} else {
			writeError(w, r, s.logger, Unauthorized("Authentication is required."))
			return
		}

		org := ""
		switch q := r.URL.Query().Get("organizationId"); {
		case q != "":
			if !slices.Contains(orgs, q) {
				writeError(w, r, s.logger, Forbidden("You are not a member of organization "+q+"."))
				return
			}
			org = q
		case active != "":
			if !slices.Contains(orgs, active) {
				writeError(w, r, s.logger, Forbidden("The token's active organization is not one of its organizations."))
				return
			}
			org = active
		case len(orgs) == 1:
			org = orgs[0]
		default:
			writeError(w, r, s.logger, BadRequest("organization_required", "Say which organization with ?organizationId=."))
			return
		}
		ctx := context.WithValue(r.Context(), identityKey{}, Identity{UserID: userID, OrgID: org})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
