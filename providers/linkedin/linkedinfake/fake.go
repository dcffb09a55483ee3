// Package linkedinfake is a LinkedIn that runs in a test: an HTTP server
// that follows LinkedIn's wire contract to the letter (OAuth authorize and
// token endpoints, /v2/userinfo, the versioned /rest/posts, and the
// organizations a member administers: /rest/organizationAcls and
// /rest/organizations/{id}), the Images API (initializeUpload, the upload
// URL, the image's status) and posts that refer to images, with switches
// for the answers a real LinkedIn gives on a bad day.
package linkedinfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postflow/postflow/providers/linkedin"
)

// Post is a post LinkedIn accepted.
type Post struct {
	URN        string
	Author     string
	Commentary string // as received: escaped little text
	Visibility string
	CreatedAt  time.Time
	// Images are the images the post refers to, in order.
	Images []PostImage
}

// PostImage is an image as a post refers to it.
type PostImage struct {
	URN     string
	AltText string
}

// Rendered is the commentary as LinkedIn shows it: unescaped, and cut at
// the first reserved character left unescaped, as LinkedIn silently does.
// unescape undoes little text's backslash escapes.
func unescape(commentary string) string {
	var b strings.Builder
	for i := 0; i < len(commentary); i++ {
		if commentary[i] == '\\' && i+1 < len(commentary) {
			i++
		}
		b.WriteByte(commentary[i])
	}
	return b.String()
}

func (p Post) Rendered() string {
	var b strings.Builder
	for i := 0; i < len(p.Commentary); i++ {
		c := p.Commentary[i]
		if c == '\\' && i+1 < len(p.Commentary) {
			i++
			b.WriteByte(p.Commentary[i])
			continue
		}
		if strings.IndexByte(`|{}@[]()<>#*_~\`, c) >= 0 {
			break
		}
		b.WriteByte(c)
	}
	return b.String()
}

// ACL is one role of a member on an organization (a row of
// organizationAcls, contracts §1.7).
type ACL struct {
	// Sub is the member's id (the person URN is urn:li:person:{Sub}).
	Sub string
	// OrganizationID is the organization's numeric id.
	OrganizationID string
	// Role is ADMINISTRATOR, CONTENT_ADMINISTRATOR, ANALYST, ...
	Role string
	// State is APPROVED, REQUESTED, REJECTED or REVOKED; "" is APPROVED.
	State string
}

// Organization is a company page.
type Organization struct {
	LocalizedName string
	VanityName    string
}

// postingRoles may post as an organization (contracts §1.7, [L5]).
var postingRoles = map[string]bool{"ADMINISTRATOR": true, "CONTENT_ADMINISTRATOR": true, "DIRECT_SPONSORED_CONTENT_POSTER": true}

// MemberScopes are the scopes a token gets from IssueAccessToken with none
// named: PostFlow's member scopes.
var MemberScopes = []string{"openid", "profile", "email", "w_member_social"}

// Server is the fake. Its exported fields are switches; set them through
// Configure, which holds the lock the handlers read them under.
type Server struct {
	*httptest.Server

	ClientID     string
	ClientSecret string
	RedirectURI  string
	// Versions are the LinkedIn-Version values in support.
	Versions map[string]bool
	// IssueRefreshTokens: the app is approved for programmatic refresh.
	IssueRefreshTokens bool
	// AcceptPKCE: the app is a native client with PKCE enabled. LinkedIn
	// web apps refuse a code_verifier; that is the default here.
	AcceptPKCE bool
	// DenyConsent: the member refuses the permissions on the consent page.
	DenyConsent bool
	// PostStatus makes the next PostFailures calls to /rest/posts answer
	// this status (429 with the DAY-limit message, 500, 503, 504).
	PostStatus   int
	PostFailures int
	// CreateThenFail: the post is created, then the answer is a 504, as
	// LinkedIn documents can happen.
	CreateThenFail bool
	// Answers scripts the next calls to /rest/posts, one entry a call,
	// before PostStatus: "429", "401", "500", "503" or "504" refuse the
	// call as PostStatus would (401: the token has expired), "lost"
	// creates the post and answers 504, "ok" answers as usual.
	Answers []string
	// DuplicateWindow is how long an identical commentary from one author
	// is refused as a duplicate.
	DuplicateWindow time.Duration
	// Profile is the member who authorizes.
	Sub, Name, Picture string
	// ACLs are the members' roles on organizations; Organizations the
	// pages by id.
	ACLs          []ACL
	Organizations map[string]Organization
	// ACLOrganizationKey is the key organizationAcls names the
	// organization with: "organization" (the default),
	// "organizationTarget" or "organizationalTarget" (contracts §1.7
	// leaves unconfirmed which the current version uses).
	ACLOrganizationKey string
	// ProcessingGETs is how many reads of an uploaded image's status
	// answer PROCESSING before it is AVAILABLE (default 1).
	ProcessingGETs int
	// ProcessingFails: images uploaded from now on end PROCESSING_FAILED.
	ProcessingFails bool
	// ForbidImageReads: GET /rest/images answers 403 ACCESS_DENIED, as
	// for a token with only w_member_social (contracts §1.5).
	ForbidImageReads bool
	// UploadAnswers scripts the next initializeUpload calls and
	// PutAnswers the next PUTs to an upload URL, one entry a call: "429",
	// "401", "500", "503" refuse it, "ok" answers as usual.
	UploadAnswers []string
	PutAnswers    []string
	// DeleteAnswers scripts the next DELETE /rest/posts calls, one entry a
	// call: "429", "401", "500", "503" refuse it, "ok" answers as usual.
	DeleteAnswers []string

	mu        sync.Mutex
	refreshes int
	codes     map[string]codeGrant
	access    map[string]accessToken
	refresh   map[string]bool // refresh token → still valid
	// refreshScope is the scope a refresh token's grant had: the tokens
	// it makes have the same.
	refreshScope map[string]string
	posts        []Post
	images       map[string]*imageState // by URN
	uploadURLs   map[string]string      // upload path id → image URN
	requests     []*http.Request
	now          func() time.Time
}

type codeGrant struct {
	redirectURI string
	scope       string
	issued      time.Time
}

type accessToken struct {
	sub     string
	expires time.Time
	revoked bool
	// scopes are the scopes granted, as the token response lists them.
	scopes map[string]bool
}

func scopeSet(scope string) map[string]bool {
	m := map[string]bool{}
	for _, sc := range strings.FieldsFunc(scope, func(r rune) bool { return r == ',' || r == ' ' }) {
		m[sc] = true
	}
	return m
}

// New starts a fake LinkedIn with one app and one member.
func New() *Server {
	s := &Server{
		ClientID:        "pf-client-id",
		ClientSecret:    "pf-client-secret",
		RedirectURI:     "http://127.0.0.1/connections/callback/linkedin",
		Versions:        map[string]bool{"202610": true, "202611": true},
		DuplicateWindow: 10 * time.Minute,
		Sub:             "kfW51gr4Ja",
		Name:            "Ada Lovelace",
		Picture:         "https://media.licdn.com/dms/image/ada.jpg",
		codes:           map[string]codeGrant{},
		access:          map[string]accessToken{},
		refresh:         map[string]bool{},
		refreshScope:    map[string]string{},
		Organizations:   map[string]Organization{},
		ProcessingGETs:  1,
		images:          map[string]*imageState{},
		uploadURLs:      map[string]string{},
		now:             time.Now,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/v2/authorization", s.authorize)
	mux.HandleFunc("POST /oauth/v2/accessToken", s.token)
	mux.HandleFunc("POST /oauth/v2/revoke", s.revoke)
	mux.HandleFunc("GET /v2/userinfo", s.userinfo)
	mux.HandleFunc("POST /rest/posts", s.createPost)
	mux.HandleFunc("DELETE /rest/posts/{urn}", s.deletePost)
	mux.HandleFunc("GET /rest/organizationAcls", s.organizationACLs)
	mux.HandleFunc("GET /rest/organizations/{id}", s.organization)
	mux.HandleFunc("POST /rest/images", s.initializeUpload)
	mux.HandleFunc("GET /rest/images/{urn}", s.image)
	mux.HandleFunc("PUT /dms-uploads/{id}", s.upload)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Clone(r.Context()))
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	return s
}

// Configure runs set with the switches locked; set must only assign fields.
func (s *Server) Configure(set func(s *Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set(s)
}

// ProviderConfig configures a LinkedIn provider for this fake: its app,
// its endpoints and a version it supports, and a short pause between
// reads of an image's status (the fake processes in reads, not time).
func (s *Server) ProviderConfig() linkedin.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return linkedin.Config{
		ClientID: s.ClientID, ClientSecret: s.ClientSecret, RedirectURI: s.RedirectURI,
		AuthURL: s.AuthURL(), TokenURL: s.TokenURL(), APIURL: s.APIURL(), Version: "202610",
		MediaPoll: 10 * time.Millisecond,
	}
}

// Authorize opens authURL as a member's browser would and returns the
// query LinkedIn sends the browser back with (code and state, or error).
func Authorize(authURL string) (url.Values, error) {
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(authURL)
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("authorize: status %d", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		return nil, err
	}
	return loc.Query(), nil
}

// AuthURL, TokenURL and APIURL are the endpoints to configure the provider with.
func (s *Server) AuthURL() string  { return s.URL + "/oauth/v2/authorization" }
func (s *Server) TokenURL() string { return s.URL + "/oauth/v2/accessToken" }
func (s *Server) APIURL() string   { return s.URL }

// Posts returns the posts created so far.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// Refreshes counts the refresh_token grants received so far.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// Requests returns the requests received so far. Their bodies have been
// read by the fake.
func (s *Server) Requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.requests...)
}

// ExpireAccessToken makes token expired; RevokeAccessToken revokes it;
// RevokeRefreshToken makes a refresh token answer invalid_grant.
func (s *Server) ExpireAccessToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.access[token]; ok {
		t.expires = s.now().Add(-time.Second)
		s.access[token] = t
	}
}

func (s *Server) RevokeAccessToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.access[token]; ok {
		t.revoked = true
		s.access[token] = t
	}
}

func (s *Server) RevokeRefreshToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh[token] = false
}

// RevokeAllRefreshTokens makes every refresh token answer invalid_grant, as
// when the member removes the app.
func (s *Server) RevokeAllRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.refresh {
		s.refresh[t] = false
	}
}

// IssueAccessToken mints a valid access token for the member, as if an
// authorization granting scopes (MemberScopes if none) had just completed.
func (s *Server) IssueAccessToken(scopes ...string) string {
	return s.IssueAccessTokenFor("", scopes...)
}

// IssueAccessTokenFor mints one for the member sub ("": the Sub switch),
// another member than the one who authorizes.
func (s *Server) IssueAccessTokenFor(sub string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(scopes) == 0 {
		scopes = MemberScopes
	}
	if sub == "" {
		sub = s.Sub
	}
	tok := "AQV" + random(60)
	s.access[tok] = accessToken{sub: sub, expires: s.now().Add(60 * 24 * time.Hour), scopes: scopeSet(strings.Join(scopes, ","))}
	return tok
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case q.Get("response_type") != "code":
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	case q.Get("client_id") != s.ClientID:
		http.Error(w, "Client_id doesn't match", http.StatusUnauthorized)
		return
	case q.Get("redirect_uri") != s.RedirectURI:
		http.Error(w, "Redirect_uri doesn't match", http.StatusUnauthorized)
		return
	case q.Get("scope") == "":
		http.Error(w, "Invalid scope", http.StatusUnauthorized)
		return
	}
	back, _ := url.Parse(s.RedirectURI)
	v := url.Values{}
	if q.Get("state") != "" {
		v.Set("state", q.Get("state"))
	}
	if s.DenyConsent {
		v.Set("error", "user_cancelled_authorize")
		v.Set("error_description", "The user cancelled the authorization")
	} else {
		code := random(40)
		s.codes[code] = codeGrant{redirectURI: q.Get("redirect_uri"), scope: q.Get("scope"), issued: s.now()}
		v.Set("code", code)
	}
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		tokenError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	f := r.PostForm
	for _, name := range []string{"grant_type", "client_id", "client_secret"} {
		if f.Get(name) == "" {
			tokenError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("A required parameter %q is missing", name))
			return
		}
	}
	if f.Get("client_id") != s.ClientID || f.Get("client_secret") != s.ClientSecret {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f.Get("grant_type") {
	case "authorization_code":
		for _, name := range []string{"code", "redirect_uri"} {
			if f.Get(name) == "" {
				tokenError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("A required parameter %q is missing", name))
				return
			}
		}
		if f.Get("code_verifier") != "" && !s.AcceptPKCE {
			tokenError(w, http.StatusBadRequest, "invalid_request", "Unable to retrieve access token: appid/redirect uri/code verifier does not match authorization code. Or authorization code expired. Or external member binding exists")
			return
		}
		grant, ok := s.codes[f.Get("code")]
		delete(s.codes, f.Get("code")) // single use
		if !ok {
			tokenError(w, http.StatusUnauthorized, "invalid_request", "Unable to retrieve access token: authorization code not found")
			return
		}
		if grant.redirectURI != f.Get("redirect_uri") || s.now().Sub(grant.issued) > 30*time.Minute {
			tokenError(w, http.StatusBadRequest, "invalid_request", "Unable to retrieve access token: appid/redirect uri/code verifier does not match authorization code. Or authorization code expired. Or external member binding exists")
			return
		}
		s.issue(w, strings.Join(strings.Fields(grant.scope), ","), 365*24*3600)
	case "refresh_token":
		s.refreshes++
		valid, ok := s.refresh[f.Get("refresh_token")]
		if !ok || !valid {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
			return
		}
		// Refresh tokens keep their first TTL and scopes; this one is spent.
		s.refresh[f.Get("refresh_token")] = false
		s.issue(w, s.refreshScope[f.Get("refresh_token")], 300*24*3600)
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type not supported")
	}
}

// issue writes a token response as LinkedIn does: 60-day access tokens,
// comma-separated scope, an id_token for openid, and a refresh token only
// for apps approved for one. Callers hold s.mu.
func (s *Server) issue(w http.ResponseWriter, scope string, refreshTTL int) {
	tok := "AQV" + random(300)
	s.access[tok] = accessToken{sub: s.Sub, expires: s.now().Add(5184000 * time.Second), scopes: scopeSet(scope)}
	body := map[string]any{
		"access_token": tok,
		"expires_in":   5184000,
		"scope":        scope,
		"token_type":   "Bearer",
	}
	if strings.Contains(scope, "openid") {
		body["id_token"] = "eyJ" + random(40) + "." + random(80) + "." + random(40)
	}
	if s.IssueRefreshTokens {
		rt := "AQW" + random(300)
		s.refresh[rt] = true
		s.refreshScope[rt] = scope
		body["refresh_token"] = rt
		body["refresh_token_expires_in"] = refreshTTL
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	if r.PostForm.Get("client_id") != s.ClientID || r.PostForm.Get("client_secret") != s.ClientSecret {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := r.PostForm.Get("token")
	if t, ok := s.access[tok]; ok {
		t.revoked = true
		s.access[tok] = t
	}
	if _, ok := s.refresh[tok]; ok {
		s.refresh[tok] = false
	}
	w.WriteHeader(http.StatusOK)
}

func restError(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// bearer checks the Authorization header as LinkedIn does; callers hold s.mu.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) (accessToken, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		restError(w, 401, map[string]any{"message": "Empty oauth2_access_token", "serviceErrorCode": 401, "status": 401})
		return accessToken{}, false
	}
	t, ok := s.access[tok]
	switch {
	case !ok:
		restError(w, 401, map[string]any{"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token"})
		return t, false
	case t.revoked:
		restError(w, 401, map[string]any{"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN", "message": "The token used in the request has been revoked by the user"})
		return t, false
	case !s.now().Before(t.expires):
		restError(w, 401, map[string]any{"status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN", "message": "The token used in the request has expired"})
		return t, false
	}
	return t, true
}

func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.bearer(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	given, family, _ := strings.Cut(s.Name, " ")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sub": t.sub, "name": s.Name, "given_name": given, "family_name": family,
		"picture": s.Picture, "email": "member@example.com", "email_verified": true,
		"locale": map[string]string{"country": "US", "language": "en"},
	})
}

// gateway checks the headers every /rest call needs, as LinkedIn's gateway
// does before routing, and the bearer token; callers hold s.mu.
func (s *Server) gateway(w http.ResponseWriter, r *http.Request) (accessToken, bool) {
	v := r.Header.Get("LinkedIn-Version")
	if v == "" {
		w.Header().Set("X-Restli-Gateway-Error", "true")
		restError(w, 400, map[string]any{"status": 400, "code": "VERSION_MISSING", "message": "A version must be present. Please specify a version by adding the LinkedIn-Version header."})
		return accessToken{}, false
	}
	if !s.Versions[v] {
		restError(w, 426, map[string]any{"status": 426, "code": "NONEXISTENT_VERSION", "message": fmt.Sprintf("Requested version %s01 is not active", v)})
		return accessToken{}, false
	}
	if r.Header.Get("X-Restli-Protocol-Version") != "2.0.0" {
		restError(w, 400, map[string]any{"status": 400, "message": "X-Restli-Protocol-Version 2.0.0 is required"})
		return accessToken{}, false
	}
	return s.bearer(w, r)
}

// accessDenied is LinkedIn's 403 for a missing scope or page role.
func accessDenied(w http.ResponseWriter, resource string) {
	restError(w, 403, map[string]any{"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "Not enough permissions to access: " + resource})
}

// mayPostAs reports whether the member of t may post as author (contracts
// §1.8): themselves with w_member_social, or an organization on which they
// hold an approved posting role, with w_organization_social. Callers hold
// s.mu.
func (s *Server) mayPostAs(t accessToken, author string) bool {
	if author == "urn:li:person:"+t.sub {
		return t.scopes["w_member_social"]
	}
	id, ok := strings.CutPrefix(author, "urn:li:organization:")
	if !ok || !t.scopes["w_organization_social"] {
		return false
	}
	for _, acl := range s.ACLs {
		if acl.Sub == t.sub && acl.OrganizationID == id && postingRoles[acl.Role] && (acl.State == "" || acl.State == "APPROVED") {
			return true
		}
	}
	return false
}

// organizationACLs is GET /rest/organizationAcls?q=roleAssignee: the
// token's member's roles, filtered by role and state when asked, paged
// by start and count (10 by default). Without rw_organization_admin or
// r_organization_admin: 403 ACCESS_DENIED.
func (s *Server) organizationACLs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.gateway(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("q") != "roleAssignee" {
		restError(w, 400, map[string]any{"status": 400, "message": "q must be roleAssignee"})
		return
	}
	if !t.scopes["rw_organization_admin"] && !t.scopes["r_organization_admin"] {
		accessDenied(w, "organizationAcls.FINDER-roleAssignee."+r.Header.Get("LinkedIn-Version")+"01")
		return
	}
	key := s.ACLOrganizationKey
	if key == "" {
		key = "organization"
	}
	var all []map[string]any
	for _, acl := range s.ACLs {
		state := acl.State
		if state == "" {
			state = "APPROVED"
		}
		if acl.Sub != t.sub || q.Get("role") != "" && q.Get("role") != acl.Role || q.Get("state") != "" && q.Get("state") != state {
			continue
		}
		all = append(all, map[string]any{key: "urn:li:organization:" + acl.OrganizationID, "role": acl.Role,
			"roleAssignee": "urn:li:person:" + acl.Sub, "state": state})
	}
	start, _ := strconv.Atoi(q.Get("start"))
	count, err := strconv.Atoi(q.Get("count"))
	if err != nil || count <= 0 {
		count = 10
	}
	start = min(max(start, 0), len(all))
	end := min(start+count, len(all))
	elements := all[start:end]
	if elements == nil {
		elements = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"elements": elements,
		"paging": map[string]any{"count": count, "start": start, "total": len(all), "links": []any{}}})
}

// organization is GET /rest/organizations/{id}.
func (s *Server) organization(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.gateway(w, r); !ok {
		return
	}
	id := r.PathValue("id")
	org, ok := s.Organizations[id]
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil {
		restError(w, 404, map[string]any{"status": 404, "serviceErrorCode": 0, "code": "NOT_FOUND", "message": "Not Found"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": n, "localizedName": org.LocalizedName, "vanityName": org.VanityName})
}

func (s *Server) createPost(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The gateway checks the version before anything else.
	t, ok := s.gateway(w, r)
	if !ok {
		return
	}
	lost := false
	if len(s.Answers) > 0 {
		answer := s.Answers[0]
		s.Answers = s.Answers[1:]
		switch answer {
		case "ok":
		case "lost":
			lost = true
		case "401":
			restError(w, 401, map[string]any{"status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN", "message": "The token used in the request has expired"})
			return
		default:
			status, err := strconv.Atoi(answer)
			if err != nil {
				panic("linkedinfake: unknown answer " + answer)
			}
			s.PostStatus, s.PostFailures = status, 1
		}
	}
	if s.PostFailures > 0 {
		s.PostFailures--
		switch s.PostStatus {
		case 429:
			restError(w, 429, map[string]any{"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS", "message": "Resource level throttle APPLICATION_AND_MEMBER DAY limit for calls to this resource is reached."})
		default:
			restError(w, s.PostStatus, map[string]any{"status": s.PostStatus, "message": http.StatusText(s.PostStatus)})
		}
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body struct {
		Author         string          `json:"author"`
		Commentary     *string         `json:"commentary"`
		Visibility     string          `json:"visibility"`
		Distribution   json.RawMessage `json:"distribution"`
		LifecycleState string          `json:"lifecycleState"`
		Content        *postContent    `json:"content"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		restError(w, 400, map[string]any{"status": 400, "message": "Invalid JSON"})
		return
	}
	missing := func(field string) {
		restError(w, 422, map[string]any{"status": 422, "message": "ERROR :: /" + field + " :: field is required but not found and has no default value"})
	}
	switch {
	case body.Author == "":
		missing("author")
		return
	case body.Commentary == nil:
		missing("commentary")
		return
	case body.Visibility == "":
		missing("visibility")
		return
	case len(body.Distribution) == 0:
		missing("distribution")
		return
	case body.LifecycleState == "":
		missing("lifecycleState")
		return
	case strings.TrimSpace(*body.Commentary) == "":
		restError(w, 400, map[string]any{"status": 400, "code": "INVALID_VALUE_BLANK_FIELD", "message": "commentary must not be blank"})
		return
	}
	if !s.mayPostAs(t, body.Author) {
		accessDenied(w, "posts.CREATE.NO_VERSION")
		return
	}
	// 3,000 characters of the text a reader sees: the commentary with its
	// little-text escapes undone (the issue's reading of contracts §1.4,
	// which LinkedIn does not document either way).
	if n := len([]rune(unescape(*body.Commentary))); n > 3000 {
		restError(w, 400, map[string]any{
			"errorDetailType": "com.linkedin.common.error.BadRequest",
			"message":         fmt.Sprintf("com.linkedin.content.common.exception.BadRequestResponseException: ShareCommentary text length (%d characters) exceeded the maximum allowed (3000 characters)", n),
			"errorDetails":    map[string]any{"inputErrors": []map[string]any{{"description": "Size of array cannot be higher than the maxLength", "input": map[string]any{}, "code": "FIELD_LENGTH_TOO_LONG", "maxLength": 3000}}},
			"status":          400,
		})
		return
	}
	images, ok := s.postImages(w, body.Author, body.Content)
	if !ok {
		return
	}
	now := s.now()
	for _, p := range s.posts {
		if p.Author == body.Author && p.Commentary == *body.Commentary && now.Sub(p.CreatedAt) < s.DuplicateWindow {
			restError(w, 422, map[string]any{
				"errorDetailType": "com.linkedin.common.error.BadRequest",
				"message":         "com.linkedin.content.common.exception.BadRequestResponseException: Content is a duplicate of " + p.URN,
				"errorDetails":    map[string]any{"inputErrors": []map[string]any{{"description": "Duplicate post is detected", "input": map[string]any{}, "code": "DUPLICATE_POST"}}},
				"status":          422,
			})
			return
		}
	}
	urn := "urn:li:share:" + digits(19)
	s.posts = append(s.posts, Post{URN: urn, Author: body.Author, Commentary: *body.Commentary, Visibility: body.Visibility, CreatedAt: now, Images: images})
	if s.CreateThenFail || lost {
		s.CreateThenFail = false
		restError(w, 504, map[string]any{"status": 504, "message": "Gateway Timeout"})
		return
	}
	w.Header().Set("X-Restli-Id", urn)
	w.WriteHeader(http.StatusCreated)
}

// deletePost is DELETE /rest/posts/{urn}: 204 when deleted, 404 when no
// such post, 403 ACCESS_DENIED for a post the member may not post as.
func (s *Server) deletePost(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.gateway(w, r)
	if !ok {
		return
	}
	if len(s.DeleteAnswers) > 0 {
		answer := s.DeleteAnswers[0]
		s.DeleteAnswers = s.DeleteAnswers[1:]
		switch answer {
		case "ok":
		case "401":
			restError(w, 401, map[string]any{"status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN", "message": "The token used in the request has expired"})
			return
		case "429":
			restError(w, 429, map[string]any{"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS", "message": "Resource level throttle APPLICATION_AND_MEMBER DAY limit for calls to this resource is reached."})
			return
		default:
			status, err := strconv.Atoi(answer)
			if err != nil {
				panic("linkedinfake: unknown delete answer " + answer)
			}
			restError(w, status, map[string]any{"status": status, "message": http.StatusText(status)})
			return
		}
	}
	// The mux hands the path value decoded; the provider sends it encoded.
	urn := r.PathValue("urn")
	for i, p := range s.posts {
		if p.URN != urn {
			continue
		}
		if !s.mayPostAs(t, p.Author) {
			accessDenied(w, "posts.DELETE.NO_VERSION")
			return
		}
		s.posts = append(s.posts[:i], s.posts[i+1:]...)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	restError(w, 404, map[string]any{"status": 404, "code": "NOT_FOUND", "message": "Not Found: " + urn})
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func digits(n int) string {
	var b strings.Builder
	b.WriteByte('7')
	for b.Len() < n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteByte(byte('0' + d.Int64()))
	}
	return b.String()
}
