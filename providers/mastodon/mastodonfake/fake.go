// Package mastodonfake is a Mastodon instance that runs in a test: an HTTP
// server that follows Mastodon's wire contract (contracts/platforms.md §3):
// app registration, OAuth with PKCE as Mastodon 4.3+ checks it, revocation,
// verify_credentials, /api/v2/instance, statuses with an Idempotency-Key
// kept an hour, an account's statuses and a status's source, media uploads
// per §8.2 and §8.5 (202 and 206 while processing, a status refused while
// its media are), with switches for the answers a real instance gives on
// a bad day.
package mastodonfake

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Status is a status the instance holds.
type Status struct {
	ID         string
	AccountID  string
	Text       string
	Visibility string
	Language   string
	CreatedAt  time.Time
	// MediaIDs are the media attached, in order.
	MediaIDs []string
}

// Media is an uploaded media attachment.
type Media struct {
	ID, AccountID string
	// Type is the MIME type sniffed from the file; Size its bytes.
	Type string
	Size int64
	// Description is the alt text as the instance keeps it.
	Description string
	// ContentLength is the upload request's (-1: sent chunked).
	ContentLength int64
	// StatusID is the status it is attached to; "" while unattached.
	StatusID string
	// Bytes are the file as received.
	Bytes []byte
	// pending is the polls left that answer 206.
	pending int
}

// Server is the fake. Its exported fields are switches; set them through
// Configure, which holds the lock the handlers read them under.
type Server struct {
	*httptest.Server

	// PKCE: the instance is Mastodon 4.3+, with RFC 8414 metadata listing
	// S256, and checks code_verifier as Doorkeeper does. Off: the
	// metadata is 404 (before 4.3) and PKCE parameters are ignored.
	PKCE bool
	// MaxCharacters and URLLength are what /api/v2/instance says (500
	// and 23 by default); OmitLimits leaves them out of its answer.
	MaxCharacters, URLLength int
	OmitLimits               bool
	// SourceURL is the source_url /api/v2/instance gives ("" leaves it
	// out); one naming gotosocial makes the instance pass for GoToSocial.
	SourceURL string
	// InstanceDown makes /api/v2/instance answer 503; InstanceHangs
	// makes it never answer (until the caller gives up).
	InstanceDown, InstanceHangs bool
	// HostileLinks makes the instance name javascript: links as its
	// statuses' url and its accounts' avatar, as a hostile server may.
	HostileLinks bool
	// NoSource makes GET /api/v1/statuses/:id/source 404, as before
	// Mastodon 3.5.
	NoSource bool
	// ResetAsEpoch sends X-RateLimit-Reset as Unix seconds (some
	// GoToSocial builds) instead of ISO 8601 (Mastodon).
	ResetAsEpoch bool
	// RateLimitReset is the wait a 429 announces (30 s by default).
	RateLimitReset time.Duration
	// Answers scripts the next POST /api/v1/statuses of an account, one
	// entry a call: "429", "401", "422", "500", "503", "504" refuse it
	// (nothing made), "lost" makes the status and answers 504, "ok"
	// answers as usual.
	Answers map[string][]string
	// AccountDomain, if set, is the host the instance names in its
	// accounts' url, as an instance with another WebFinger domain, or
	// one claiming to be another, does (by default its own).
	AccountDomain string
	// Now is the instance's clock (Idempotency-Key expiry, created_at).
	Now func() time.Time

	// Media switches (contracts §8.2, §8.5). MediaTypes, ImageSizeLimit,
	// ImageMatrixLimit and DescriptionLimit are configuration.
	// media_attachments of /api/v2/instance (Mastodon 4.4's defaults; 0
	// or nil leaves one out) and MaxMediaAttachments statuses.
	// max_media_attachments; they are enforced too.
	MediaTypes                       []string
	ImageSizeLimit, ImageMatrixLimit int64
	DescriptionLimit                 int
	MaxMediaAttachments              int
	// AsyncType is a MIME type POST /api/v2/media answers 202 for (still
	// processing); GET /api/v1/media/:id then answers 206 ProcessingPolls
	// times before 200.
	AsyncType       string
	ProcessingPolls int
	// MediaAnswers scripts the next POST /api/v2/media of an account as
	// Answers does statuses: "429", "401", "422", "500", "503", "ok".
	MediaAnswers map[string][]string
	// DeleteAnswers scripts the next DELETE /api/v1/statuses/:id of an
	// account as Answers does statuses: "429", "401", "500", "503", "ok".
	DeleteAnswers map[string][]string

	mu       sync.Mutex
	apps     map[string]*app // by client id
	codes    map[string]*grant
	tokens   map[string]string // access token -> account id
	accounts map[string]*account
	statuses []*Status // in creation order
	idem     map[string]idemEntry
	nextID   int64
	calls    map[string]int
	media    map[string]*Media
}

type app struct {
	clientID, secret, redirectURI, scopes string
}

type grant struct {
	clientID, redirectURI, challenge, accountID string
}

type account struct {
	id, username, displayName string
}

type idemEntry struct {
	statusID string
	at       time.Time
}

// New starts a fake instance with one account, "alice" (id "1").
func New() *Server {
	s := &Server{
		PKCE: true, MaxCharacters: 500, URLLength: 23, RateLimitReset: 30 * time.Second,
		Answers: map[string][]string{}, Now: time.Now,
		apps: map[string]*app{}, codes: map[string]*grant{}, tokens: map[string]string{},
		accounts: map[string]*account{}, idem: map[string]idemEntry{}, nextID: 110000000000000000, calls: map[string]int{},
		MediaTypes:     []string{"image/jpeg", "image/png", "image/gif", "image/heic", "image/webp", "image/avif", "video/mp4", "audio/mpeg"},
		ImageSizeLimit: 16 << 20, ImageMatrixLimit: 33_177_600, DescriptionLimit: 1500, MaxMediaAttachments: 4,
		MediaAnswers: map[string][]string{}, DeleteAnswers: map[string][]string{}, media: map[string]*Media{},
	}
	s.AddAccount("alice")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/apps", s.registerApp)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	mux.HandleFunc("GET /oauth/authorize", s.authorize)
	mux.HandleFunc("POST /oauth/token", s.token)
	mux.HandleFunc("POST /oauth/revoke", s.revoke)
	mux.HandleFunc("GET /api/v1/accounts/verify_credentials", s.verifyCredentials)
	mux.HandleFunc("GET /api/v2/instance", s.instance)
	mux.HandleFunc("POST /api/v1/statuses", s.createStatus)
	mux.HandleFunc("GET /api/v1/accounts/{id}/statuses", s.accountStatuses)
	mux.HandleFunc("GET /api/v1/statuses/{id}/source", s.source)
	mux.HandleFunc("DELETE /api/v1/statuses/{id}", s.deleteStatus)
	mux.HandleFunc("POST /api/v2/media", s.uploadMedia)
	mux.HandleFunc("GET /api/v1/media/{id}", s.getMedia)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.Method+" "+r.URL.Path]++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	return s
}

// Configure changes switches under the handlers' lock.
func (s *Server) Configure(f func(*Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// AddAccount adds a local account and returns its id.
func (s *Server) AddAccount(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := strconv.Itoa(len(s.accounts) + 1)
	s.accounts[id] = &account{id: id, username: username, displayName: strings.ToUpper(username[:1]) + username[1:]}
	return id
}

// IssueToken gives a token for the account with id, as a finished OAuth
// flow would.
func (s *Server) IssueToken(accountID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := random()
	s.tokens[tok] = accountID
	return tok
}

// Calls counts the requests to "METHOD /path" so far.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

// ForgetApps drops every registered app, as Mastodon before 4.3 vacuums
// apps left unused: their client ids are then invalid_client.
func (s *Server) ForgetApps() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.apps)
}

// Statuses returns the account's statuses, oldest first.
func (s *Server) Statuses(accountID string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, st := range s.statuses {
		if st.AccountID == accountID {
			out = append(out, *st)
		}
	}
	return out
}

// Authorize plays the browser at the authorize URL authURL, signed in as
// the account username, pressing Allow: it returns the query the instance
// redirects to the client's redirect URI with (code and state, or error).
func Authorize(authURL, username string) (url.Values, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("fake_user", username)
	u.RawQuery = q.Encode()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(u.String())
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	loc, err := res.Location()
	if err != nil {
		return nil, fmt.Errorf("mastodonfake: authorize answered %s, not a redirect", res.Status)
	}
	return loc.Query(), nil
}

func (s *Server) registerApp(w http.ResponseWriter, r *http.Request) {
	name, redirect := r.PostFormValue("client_name"), r.PostFormValue("redirect_uris")
	if u, err := url.Parse(redirect); name == "" || err != nil || !u.IsAbs() {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Validation failed: Redirect URI must be an absolute URI."})
		return
	}
	scopes := r.PostFormValue("scopes")
	if scopes == "" {
		scopes = "read"
	}
	a := &app{clientID: random(), secret: random(), redirectURI: redirect, scopes: scopes}
	s.mu.Lock()
	s.apps[a.clientID] = a
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"id": a.clientID[:8], "name": name, "website": r.PostFormValue("website"),
		"scopes": strings.Fields(scopes), "redirect_uri": redirect, "redirect_uris": []string{redirect},
		"client_id": a.clientID, "client_secret": a.secret, "client_secret_expires_at": 0})
}

func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	pkce := s.PKCE
	s.mu.Unlock()
	if !pkce {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not Found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": s.URL + "/", "authorization_endpoint": s.URL + "/oauth/authorize", "token_endpoint": s.URL + "/oauth/token",
		"revocation_endpoint": s.URL + "/oauth/revoke", "app_registration_endpoint": s.URL + "/api/v1/apps",
		"code_challenge_methods_supported": []string{"S256"}, "grant_types_supported": []string{"authorization_code", "client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[q.Get("client_id")]
	if a == nil || q.Get("redirect_uri") != a.redirectURI || q.Get("response_type") != "code" {
		// Mastodon shows an error page: it never redirects to an
		// unverified redirect URI.
		http.Error(w, "The client identifier provided is invalid", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(a.redirectURI)
	bq := url.Values{"state": {q.Get("state")}}
	for _, sc := range strings.Fields(q.Get("scope")) {
		if !slices.Contains(strings.Fields(a.scopes), sc) {
			bq.Set("error", "invalid_scope")
			back.RawQuery = bq.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
			return
		}
	}
	var acct *account
	for _, ac := range s.accounts {
		if ac.username == q.Get("fake_user") {
			acct = ac
		}
	}
	if acct == nil {
		http.Error(w, "no such user", http.StatusForbidden)
		return
	}
	g := &grant{clientID: a.clientID, redirectURI: a.redirectURI, accountID: acct.id}
	if s.PKCE && q.Get("code_challenge") != "" {
		if q.Get("code_challenge_method") != "S256" {
			bq.Set("error", "invalid_request")
			back.RawQuery = bq.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
			return
		}
		g.challenge = q.Get("code_challenge")
	}
	code := random()
	s.codes[code] = g
	bq.Set("code", code)
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token is Doorkeeper's authorization-code grant: with PKCE, a verifier
// must match the challenge, and one sent for a code asked without a
// challenge is refused too.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil || subtle.ConstantTimeCompare([]byte(a.secret), []byte(secret)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client",
			"error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."})
		return
	}
	invalid := func() {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant",
			"error_description": "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."})
	}
	if r.PostFormValue("grant_type") == "client_credentials" {
		// An app token: it acts for no account.
		tok := random()
		s.tokens[tok] = ""
		writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "scope": r.PostFormValue("scope"), "created_at": s.Now().Unix()})
		return
	}
	if r.PostFormValue("grant_type") != "authorization_code" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	code := r.PostFormValue("code")
	g := s.codes[code]
	delete(s.codes, code)
	if g == nil || g.clientID != id || g.redirectURI != r.PostFormValue("redirect_uri") {
		invalid()
		return
	}
	if verifier := r.PostFormValue("code_verifier"); s.PKCE {
		sum := sha256.Sum256([]byte(verifier))
		switch {
		case verifier == "" && g.challenge != "",
			verifier != "" && g.challenge == "",
			verifier != "" && base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			invalid()
			return
		}
	}
	tok := random()
	s.tokens[tok] = g.accountID
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "scope": a.scopes, "created_at": s.Now().Unix()})
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[r.PostFormValue("client_id")]
	if a == nil || a.secret != r.PostFormValue("client_secret") {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "unauthorized_client", "error_description": "You are not authorized to revoke this token"})
		return
	}
	delete(s.tokens, r.PostFormValue("token"))
	writeJSON(w, http.StatusOK, map[string]any{})
}

// caller is the account of the request's bearer token, or nil after
// answering 401. Called with s.mu held.
func (s *Server) caller(w http.ResponseWriter, r *http.Request) *account {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if id, known := s.tokens[tok]; ok && known && s.accounts[id] != nil {
		return s.accounts[id]
	}
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "The access token is invalid"})
	return nil
}

func (s *Server) accountJSON(a *account) map[string]any {
	u := s.URL + "/@" + a.username
	if s.AccountDomain != "" {
		u = "https://" + s.AccountDomain + "/@" + a.username
	}
	avatar := s.URL + "/avatars/" + a.id + ".png"
	if s.HostileLinks {
		avatar = "javascript:alert('avatar')"
	}
	return map[string]any{"id": a.id, "username": a.username, "acct": a.username, "display_name": a.displayName,
		"url": u, "avatar": avatar}
}

func (s *Server) verifyCredentials(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.caller(w, r); a != nil {
		writeJSON(w, http.StatusOK, s.accountJSON(a))
	}
}

func (s *Server) instance(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	hangs := s.InstanceHangs
	s.mu.Unlock()
	if hangs {
		<-r.Context().Done()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.InstanceDown {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "Service Unavailable"})
		return
	}
	statuses := map[string]any{}
	media := map[string]any{}
	if !s.OmitLimits {
		statuses = map[string]any{"max_characters": s.MaxCharacters, "characters_reserved_per_url": s.URLLength}
		if s.MaxMediaAttachments > 0 {
			statuses["max_media_attachments"] = s.MaxMediaAttachments
		}
		for k, v := range map[string]int64{"image_size_limit": s.ImageSizeLimit, "image_matrix_limit": s.ImageMatrixLimit,
			"description_limit": int64(s.DescriptionLimit)} {
			if v > 0 {
				media[k] = v
			}
		}
		if s.MediaTypes != nil {
			media["supported_mime_types"] = s.MediaTypes
		}
	}
	inst := map[string]any{"domain": strings.TrimPrefix(s.URL, "http://"), "version": "4.4.0",
		"configuration": map[string]any{"statuses": statuses, "media_attachments": media}}
	if s.SourceURL != "" {
		inst["source_url"] = s.SourceURL
	}
	writeJSON(w, http.StatusOK, inst)
}

// fakeURL stands for a link in the instance's count of a status.
var fakeURL = regexp.MustCompile(`https?://[^\s]+`)

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.caller(w, r)
	if a == nil {
		return
	}
	answer := "ok"
	if script := s.Answers[a.id]; len(script) > 0 {
		answer, s.Answers[a.id] = script[0], script[1:]
	}
	if s.refuse(w, answer) {
		return
	}
	key := a.id + "|" + r.Header.Get("Idempotency-Key")
	if e, ok := s.idem[key]; ok && r.Header.Get("Idempotency-Key") != "" && s.Now().Sub(e.at) < time.Hour {
		// Mastodon answers a repeated key with the first status.
		for _, st := range s.statuses {
			if st.ID == e.statusID {
				s.writeStatus(w, st)
				return
			}
		}
	}
	text := r.PostFormValue("status")
	n := utf8.RuneCountInString(fakeURL.ReplaceAllString(text, strings.Repeat("x", s.URLLength)))
	if strings.TrimSpace(text) == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Validation failed: Text can't be blank"})
		return
	}
	if n > s.MaxCharacters {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": fmt.Sprintf("Validation failed: Text character limit of %d exceeded", s.MaxCharacters)})
		return
	}
	// As Mastodon's PostStatusService: too many is refused, ids that are
	// not the caller's unattached media are dropped without a word, and
	// one still processing refuses the status.
	ids := r.PostForm["media_ids[]"]
	if max := s.MaxMediaAttachments; max > 0 && len(ids) > max {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": fmt.Sprintf("Cannot attach more than %d files", max)})
		return
	}
	var attach []*Media
	for _, id := range ids {
		m := s.media[id]
		if m != nil && m.AccountID == a.id && m.StatusID == "" && !slices.Contains(attach, m) {
			attach = append(attach, m)
			continue
		}
		if s.goToSocial() {
			// GoToSocial v0.18.3 refuses instead of dropping.
			msg := "media not found: " + id
			if m != nil && m.StatusID != "" {
				msg = "media already attached to status: " + id
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad Request: " + msg})
			return
		}
	}
	for _, m := range attach {
		if m.pending > 0 {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Cannot attach files that have not finished processing. Try again in a moment!"})
			return
		}
	}
	visibility := r.PostFormValue("visibility")
	if visibility == "" {
		visibility = "public"
	}
	s.nextID++
	st := &Status{ID: strconv.FormatInt(s.nextID, 10), AccountID: a.id, Text: text, Visibility: visibility,
		Language: r.PostFormValue("language"), CreatedAt: s.Now().UTC()}
	for _, m := range attach {
		m.StatusID = st.ID
		st.MediaIDs = append(st.MediaIDs, m.ID)
	}
	s.statuses = append(s.statuses, st)
	if r.Header.Get("Idempotency-Key") != "" {
		s.idem[key] = idemEntry{statusID: st.ID, at: s.Now()}
	}
	if answer == "lost" {
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": "Gateway Timeout"})
		return
	}
	s.writeStatus(w, st)
}

func (s *Server) statusJSON(st *Status) map[string]any {
	a := s.accounts[st.AccountID]
	content := "<p>" + strings.ReplaceAll(html.EscapeString(st.Text), "\n", "<br />") + "</p>"
	link := s.URL + "/@" + a.username + "/" + st.ID
	if s.HostileLinks {
		link = "javascript:alert(document.domain)"
	}
	attachments := []map[string]any{}
	for _, id := range st.MediaIDs {
		attachments = append(attachments, s.mediaJSON(s.media[id]))
	}
	return map[string]any{"id": st.ID, "uri": s.URL + "/users/" + a.username + "/statuses/" + st.ID,
		"url": link, "created_at": st.CreatedAt.Format("2006-01-02T15:04:05.000Z"),
		"content": content, "visibility": st.Visibility, "language": st.Language, "reblog": nil, "account": s.accountJSON(a),
		"media_attachments": attachments}
}

// Media returns the account's media, in upload order.
func (s *Server) Media(accountID string) []Media {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Media
	for _, m := range s.media {
		if m.AccountID == accountID {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b Media) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ForgetMedia deletes an upload, as Mastodon's vacuum does with media
// left unattached for a day.
func (s *Server) ForgetMedia(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.media, id)
}

// goToSocial: SourceURL names GoToSocial, whose media answers differ
// (v0.18.3): GET /api/v1/media/:id answers attached ones too, and a
// status naming an unknown or attached media is refused with 400.
func (s *Server) goToSocial() bool {
	return strings.Contains(strings.ToLower(s.SourceURL), "gotosocial")
}

func (s *Server) mediaJSON(m *Media) map[string]any {
	var u any = s.URL + "/system/media/" + m.ID + "/original"
	if m.pending > 0 {
		u = nil
	}
	return map[string]any{"id": m.ID, "type": "image", "url": u, "preview_url": s.URL + "/system/media/" + m.ID + "/small",
		"description": m.Description}
}

// uploadMedia is POST /api/v2/media: the multipart file (its type sniffed
// from its bytes, as Mastodon does) and description, checked against the
// instance's configuration; 200 with the attachment, or 202 with url null
// for AsyncType. Refusals are Mastodon's 422 {"error": "Validation
// failed: ..."}.
func (s *Server) uploadMedia(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a := s.caller(w, r)
	var answer string
	if a != nil {
		if q := s.MediaAnswers[a.id]; len(q) > 0 {
			answer, s.MediaAnswers[a.id] = q[0], q[1:]
		}
	}
	s.mu.Unlock()
	if a == nil {
		return
	}
	switch answer {
	case "429":
		s.mu.Lock()
		reset := s.Now().Add(s.RateLimitReset).UTC()
		s.mu.Unlock()
		w.Header().Set("X-RateLimit-Reset", reset.Format("2006-01-02T15:04:05.000000Z07:00"))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too many requests"})
		return
	case "401":
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "The access token is invalid"})
		return
	case "422":
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Validation failed: File could not be processed"})
		return
	case "500", "503":
		code, _ := strconv.Atoi(answer)
		writeJSON(w, code, map[string]string{"error": http.StatusText(code)})
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Validation failed: File can't be blank"})
		return
	}
	m := &Media{AccountID: a.id, ContentLength: r.ContentLength}
	var head []byte
	seenFile := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad multipart body"})
			return
		}
		switch part.FormName() {
		case "description":
			b, _ := io.ReadAll(io.LimitReader(part, 1<<20))
			m.Description = string(b)
		case "file":
			seenFile = true
			b, err := io.ReadAll(io.LimitReader(part, 64<<20))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad multipart body"})
				return
			}
			m.Bytes, m.Size, head = b, int64(len(b)), b[:min(512, len(b))]
		}
	}
	m.Type, _, _ = strings.Cut(http.DetectContentType(head), ";")
	s.mu.Lock()
	defer s.mu.Unlock()
	invalid := func(msg string) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Validation failed: " + msg})
	}
	switch {
	case !seenFile:
		invalid("File can't be blank")
		return
	case !slices.Contains(s.MediaTypes, m.Type):
		invalid("File content type is invalid, File is invalid")
		return
	case s.ImageSizeLimit > 0 && m.Size > s.ImageSizeLimit:
		invalid(fmt.Sprintf("File file size must be less than %d MB", s.ImageSizeLimit>>20))
		return
	case s.DescriptionLimit > 0 && utf8.RuneCountInString(m.Description) > s.DescriptionLimit:
		invalid(fmt.Sprintf("Description is too long (maximum is %d characters)", s.DescriptionLimit))
		return
	}
	s.nextID++
	m.ID = strconv.FormatInt(s.nextID, 10)
	status := http.StatusOK
	if s.AsyncType != "" && m.Type == s.AsyncType {
		m.pending, status = s.ProcessingPolls+1, http.StatusAccepted
	}
	s.media[m.ID] = m
	writeJSON(w, status, s.mediaJSON(m))
}

// getMedia is GET /api/v1/media/:id: as Mastodon, only the caller's
// unattached media (404 "Record not found" otherwise), 206 with no body
// while processing, then 200.
func (s *Server) getMedia(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.caller(w, r)
	if a == nil {
		return
	}
	m := s.media[r.PathValue("id")]
	if m == nil || m.AccountID != a.id || (m.StatusID != "" && !s.goToSocial()) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Record not found"})
		return
	}
	if m.pending > 1 {
		m.pending--
		w.WriteHeader(http.StatusPartialContent)
		return
	}
	m.pending = 0
	writeJSON(w, http.StatusOK, s.mediaJSON(m))
}

func (s *Server) writeStatus(w http.ResponseWriter, st *Status) {
	writeJSON(w, http.StatusOK, s.statusJSON(st))
}

func (s *Server) accountStatuses(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.caller(w, r) == nil {
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 || limit > 40 {
		limit = 20
	}
	maxID, _ := strconv.ParseInt(r.URL.Query().Get("max_id"), 10, 64)
	out := []map[string]any{}
	for i := len(s.statuses) - 1; i >= 0 && len(out) < limit; i-- {
		st := s.statuses[i]
		id, _ := strconv.ParseInt(st.ID, 10, 64)
		if st.AccountID == r.PathValue("id") && (maxID == 0 || id < maxID) {
			out = append(out, s.statusJSON(st))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) source(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.caller(w, r)
	if a == nil {
		return
	}
	for _, st := range s.statuses {
		if st.ID == r.PathValue("id") && st.AccountID == a.id && !s.NoSource {
			writeJSON(w, http.StatusOK, map[string]string{"id": st.ID, "text": st.Text, "spoiler_text": ""})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "Record not found"})
}

// refuse answers a scripted refusal ("429", "401", "422", "500", "503",
// "504") and reports true; false for any other answer. Callers hold s.mu.
func (s *Server) refuse(w http.ResponseWriter, answer string) bool {
	switch answer {
	case "429":
		reset := s.Now().Add(s.RateLimitReset).UTC()
		w.Header().Set("X-RateLimit-Limit", "300")
		w.Header().Set("X-RateLimit-Remaining", "0")
		if s.ResetAsEpoch {
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		} else {
			w.Header().Set("X-RateLimit-Reset", reset.Format("2006-01-02T15:04:05.000000Z07:00"))
		}
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too many requests"})
	case "401":
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "The access token is invalid"})
	case "422":
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Validation failed: Text can't be blank"})
	case "500", "503", "504":
		code, _ := strconv.Atoi(answer)
		writeJSON(w, code, map[string]string{"error": http.StatusText(code)})
	default:
		return false
	}
	return true
}

// deleteStatus is DELETE /api/v1/statuses/:id as Mastodon answers it: 200
// with the status (its text as "text", for a redraft), 404 "Record not
// found" for a status that is gone or another account's. GoToSocial
// (v0.18.3, seen in TestConformanceGoToSocial) answers another account's
// status 403 {"error":"Forbidden"} and an unknown one 404 "Not Found".
func (s *Server) deleteStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.caller(w, r)
	if a == nil {
		return
	}
	if script := s.DeleteAnswers[a.id]; len(script) > 0 {
		answer := script[0]
		s.DeleteAnswers[a.id] = script[1:]
		if s.refuse(w, answer) {
			return
		}
	}
	for i, st := range s.statuses {
		if st.ID == r.PathValue("id") && st.AccountID != a.id && s.goToSocial() {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "Forbidden"})
			return
		}
		if st.ID == r.PathValue("id") && st.AccountID == a.id {
			s.statuses = slices.Delete(s.statuses, i, i+1)
			writeJSON(w, http.StatusOK, map[string]any{"id": st.ID, "text": st.Text, "created_at": st.CreatedAt})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "Record not found"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
