package bluesky

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/postflow/postflow/providers"
)

// login connects with an identifier and an app password. It is its own
// type, behind providers.PasswordLogin, so that an atproto OAuth connect
// (PAR, PKCE, DPoP) can take its place in Provider.Connect alone.
type login struct{ p *Provider }

// Server: optional. Without one, the PDS is found from the identifier.
func (l *login) Server() providers.ServerChoice { return providers.ServerOptional }

// session is createSession's and refreshSession's answer.
type session struct {
	AccessJwt  string `json:"accessJwt"`
	RefreshJwt string `json:"refreshJwt"`
	Handle     string `json:"handle"`
	DID        string `json:"did"`
}

// App password sessions carry scope com.atproto.appPass (or
// appPassPrivileged) in the access JWT; the account's own password gives
// com.atproto.access (checked on @atproto/pds 0.5.35).
const scopeFullAccess = "com.atproto.access"

// sessionLife is an access token's life when its JWT says none: the
// reference PDS's 120 minutes (contracts §4.1).
const sessionLife = 2 * time.Hour

// Login makes a session for identifier (a handle, a DID, or with a server
// an email) with password on server, or without one on the PDS named by
// the identifier's DID document (handle → DID by resolveHandle on the
// configured resolver; did:plc through the PLC directory, did:web from
// https://{host}/.well-known/did.json), and reads the profile.
//
// The password must be an app password: a session made with the account's
// own password (scope com.atproto.access) is refused (KindAuth, code
// NOT_AN_APP_PASSWORD) and deleted, since PostFlow keeps the password to
// make sessions with, and the account's own one can change its email,
// password or delete it. A refused identifier or password is KindAuth; a
// server that is no public https one, ErrBadServer.
//
// Whatever the path, the account is the DID's document's: with a server
// named, a handle or DID must name that server as its PDS before the
// password is sent (else KindAuth WRONG_PDS), and the DID the session is
// for (an email names none beforehand) must have a document whose
// #atproto_pds is the server that answered (WRONG_PDS): a server cannot
// claim another's account. The handle kept is the document's alias that
// resolves back to the DID (verifiedHandle), never the server's word.
//
// A server that cannot be reached at connect: see connectErr.
func (l *login) Login(ctx context.Context, server, identifier, password string) (*providers.Connection, error) {
	c, err := l.login(ctx, server, identifier, password)
	if err != nil {
		return nil, l.p.connectErr(err)
	}
	return c, nil
}

func (l *login) login(ctx context.Context, server, identifier, password string) (*providers.Connection, error) {
	p := l.p
	identifier = strings.TrimPrefix(strings.TrimSpace(identifier), "@")
	if identifier == "" || password == "" {
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "MISSING_CREDENTIALS", Message: "a handle (or DID) and an app password are needed"}
	}
	var base, wantDID string
	if server != "" {
		u, err := p.cfg.Servers.ServerURL(server)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", providers.ErrBadServer, err)
		}
		if err := p.checkServer(ctx, u.Hostname()); err != nil {
			return nil, errBadServer(err)
		}
		base = u.String()
		// The configured resolver (bsky.social, Bluesky's entryway) is
		// PostFlow's own choice, not the user's, and answers for the
		// accounts of every PDS behind it: named, it is trusted as it is
		// when no server is named.
		entryway := sameServer(base, p.cfg.ResolverURL)
		if !strings.Contains(identifier, "@") && !entryway {
			// A handle or a DID names its PDS: the password goes to no
			// other server.
			did, pds, err := p.findPDS(ctx, identifier)
			if err != nil {
				return nil, err
			}
			if !sameServer(pds, base) {
				return nil, errWrongPDS(did, pds)
			}
			wantDID = did
		}
	} else {
		var err error
		if wantDID, base, err = p.findPDS(ctx, identifier); err != nil {
			return nil, err
		}
	}
	s, err := p.createSession(ctx, base, identifier, password)
	if err != nil {
		return nil, errBadServer(err)
	}
	if wantDID != "" && s.DID != wantDID {
		// The PDS of the DID document answered for someone else.
		p.endSession(ctx, base, s)
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "WRONG_ACCOUNT", Message: "the server made a session for another account than " + wantDID}
	}
	// Whatever the path, the server that answered must be the PDS of the
	// DID it answered for: else any server could claim any account (an
	// email names no DID to check beforehand).
	doc, err := p.didDocument(ctx, s.DID)
	if err != nil {
		p.endSession(ctx, base, s)
		return nil, err
	}
	if pds := doc.pds(s.DID); !sameServer(pds, base) && !sameServer(base, p.cfg.ResolverURL) {
		p.endSession(ctx, base, s)
		return nil, errWrongPDS(s.DID, pds)
	}
	if scope, _ := claims(s.AccessJwt)["scope"].(string); scope == scopeFullAccess {
		p.endSession(ctx, base, s)
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NOT_AN_APP_PASSWORD",
			Message: "this is the account's own password; create an app password in Bluesky's settings (Privacy and security, App passwords) and use it"}
	}
	// The handle is the DID document's, if it resolves back to the DID;
	// never the one the server answered.
	s.Handle = p.verifiedHandle(ctx, s.DID, doc)
	tokens := p.tokens(s, password)
	return &providers.Connection{Tokens: tokens, Profile: providers.Profile{
		PlatformUserID: s.DID,
		Handle:         s.Handle,
		DisplayName:    p.displayName(ctx, base, s),
		Server:         base,
	}}, nil
}

// endSession deletes a session Login will not keep (best effort).
func (p *Provider) endSession(ctx context.Context, base string, s *session) {
	_ = p.xrpc(ctx, p.cfg.ServerClient, base, "com.atproto.server.deleteSession", s.RefreshJwt, nil, noInput, nil)
}

// errWrongPDS: the server named, or the one that answered, is not the PDS
// of did's DID document (which is pds).
func errWrongPDS(did, pds string) error {
	msg := "the server named is not the PDS of " + did
	if pds != "" {
		msg += " (" + pds + "); name that server, or leave the server empty and use the handle"
	}
	return &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "WRONG_PDS", Message: msg}
}

// sameServer: a and b are the same server's URL (scheme, host and port,
// the default port or not, host case and a trailing dot or slash aside).
func sameServer(a, b string) bool {
	na, oka := normalServer(a)
	nb, okb := normalServer(b)
	return oka && okb && na == nb
}

func normalServer(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		default:
			return "", false
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port), true
}

// createSession makes a session. Every refusal but a rate limit or an
// outage is KindAuth: the identifier or the password will not do.
func (p *Provider) createSession(ctx context.Context, base, identifier, password string) (*session, error) {
	var s session
	in := map[string]string{"identifier": identifier, "password": password}
	err := p.xrpc(ctx, p.cfg.ServerClient, base, "com.atproto.server.createSession", "", nil, in, &s)
	if pe := (*providers.Error)(nil); errors.As(err, &pe) && pe.Status >= 400 && pe.Status < 500 && pe.Kind != providers.KindRateLimited {
		pe.Kind = providers.KindAuth
	}
	if err != nil {
		return nil, err
	}
	if s.AccessJwt == "" || s.RefreshJwt == "" || !strings.HasPrefix(s.DID, "did:") {
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Message: "createSession answered no session"}
	}
	return &s, nil
}

// Refresh renews the session: refreshSession with the refresh JWT, or,
// when that is refused (expired, revoked, or none stored), a new session
// from the app password (stored.Credential) with the account's DID. A
// refused app password is KindAuth: the account must reconnect. The
// credential is kept in the result.
//
// An atproto OAuth session is refreshed at its issuer instead
// (refreshOAuth).
func (p *Provider) Refresh(ctx context.Context, a providers.Account, stored providers.Tokens) (*providers.Tokens, error) {
	if sess, key, ok := decodeSession(stored.Credential); ok {
		return p.refreshOAuth(ctx, sess, key, stored)
	}
	base, err := p.pds(a)
	if err != nil {
		return nil, err
	}
	if stored.RefreshToken != "" {
		var s session
		err := p.xrpc(ctx, p.cfg.ServerClient, base, "com.atproto.server.refreshSession", stored.RefreshToken, nil, noInput, &s)
		if err == nil && s.AccessJwt != "" && s.RefreshJwt != "" {
			t := p.tokens(&s, stored.Credential)
			return &t, nil
		}
		if k := providers.KindOf(err); err != nil && k != providers.KindSessionExpired && k != providers.KindAuth && k != providers.KindInvalidContent {
			return nil, err // an outage or a rate limit: try again later
		}
	}
	if stored.Credential == "" {
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "SESSION_ENDED", Message: "the Bluesky session ended and no app password is stored; reconnect the account"}
	}
	s, err := p.createSession(ctx, base, a.PlatformUserID, stored.Credential)
	if err != nil {
		return nil, err
	}
	t := p.tokens(s, stored.Credential)
	return &t, nil
}

// tokens are a session's, with their expiry from the JWTs' exp claims.
func (p *Provider) tokens(s *session, credential string) providers.Tokens {
	t := providers.Tokens{AccessToken: s.AccessJwt, RefreshToken: s.RefreshJwt, Credential: credential}
	t.ExpiresAt = p.cfg.Now().Add(sessionLife).UTC()
	if exp, err := expiry(s.AccessJwt); err == nil {
		t.ExpiresAt = exp
	}
	if exp, err := expiry(s.RefreshJwt); err == nil {
		t.RefreshExpiresAt = exp
	}
	return t
}

// claims are a JWT's claims, read without checking the signature: the PDS
// signs for itself, and PostFlow only reads when to refresh and the
// scope. Empty when token is no JWT.
func claims(token string) jwt.MapClaims {
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, c); err != nil {
		return jwt.MapClaims{}
	}
	return c
}

func expiry(token string) (time.Time, error) {
	exp, err := claims(token).GetExpirationTime()
	if err != nil || exp == nil {
		return time.Time{}, errors.New("no exp")
	}
	return exp.UTC(), nil
}

// displayName is the profile record's displayName, else the handle. The
// record is read from the repo (com.atproto.repo.getRecord of
// app.bsky.actor.profile/self): a PDS without an AppView has no
// app.bsky.actor.getProfile. A failure here fails nothing.
func (p *Provider) displayName(ctx context.Context, base string, s *session) string {
	var out struct {
		Value struct {
			DisplayName string `json:"displayName"`
		} `json:"value"`
	}
	q := url.Values{"repo": {s.DID}, "collection": {"app.bsky.actor.profile"}, "rkey": {"self"}}
	if err := p.xrpc(ctx, p.cfg.ServerClient, base, "com.atproto.repo.getRecord", "", q, nil, &out); err == nil {
		if n := strings.TrimSpace(out.Value.DisplayName); n != "" {
			return n
		}
	}
	if s.Handle != "" {
		return s.Handle
	}
	return s.DID
}
