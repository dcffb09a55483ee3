// Package blueskyfake is a Bluesky PDS (with a PLC directory) that runs in
// a test: the XRPC methods PostFlow calls, per contracts/platforms.md §4
// and what the reference PDS (@atproto/pds 0.5.35) answers, with switches
// for the answers a real PDS gives on a bad day. Images per §8.5: uploadBlob
// answers a CID from a hash of the body; createRecord checks an
// app.bsky.embed.images (4 images, MaxBlobBytes each, image types, alt)
// and refers its blobs for good; blobs no record refers to are forgotten
// after BlobLife.
package blueskyfake

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rivo/uniseg"

	"github.com/postflow/postflow/providers/bluesky"
)

// Account is an account of the fake PDS.
type Account struct {
	DID, Handle, Email string
	Password           string // the account's own
	DisplayName        string // its profile record's; "" for no profile record
}

// Record is a post the PDS holds.
type Record struct {
	URI, RKey string
	Value     map[string]any
}

// Text is the record's text.
func (r Record) Text() string { s, _ := r.Value["text"].(string); return s }

type session struct {
	did     string
	scope   string
	expires time.Time
	appPass string // the app password it was made with, "" for the own one
}

// Server is the fake. Its exported fields are switches; set them through
// Configure, which holds the lock the handlers read them under.
type Server struct {
	*httptest.Server

	// AccessLife and RefreshLife are the lives of the tokens it issues
	// (the reference PDS: 2 h and 90 days).
	AccessLife, RefreshLife time.Duration
	// Answers scripts the next createRecord calls of an account (by DID),
	// one entry a call: "429" (RateLimit-Reset in RateLimitWait), "503",
	// "500", "504" (nothing made), "401" (AuthMissing), "expired" (400
	// ExpiredToken), "lost" (the record made, the connection dropped, and
	// the next getRecord's too: an outage), "dropped" (the record made,
	// that answer alone dropped), "ok".
	Answers map[string][]string
	// RateLimitWait is how far RateLimit-Reset is from now on a 429; 0
	// sends none.
	RateLimitWait time.Duration
	// AlsoKnownAs replaces the alsoKnownAs of a DID's document (by DID).
	AlsoKnownAs map[string][]string
	// UploadAnswers scripts the next uploadBlob calls of an account (by
	// DID) as Answers does createRecord's: "429", "503", "500", "401",
	// "expired", "ok" (nothing is stored but on "ok").
	UploadAnswers map[string][]string
	// DeleteAnswers scripts the next deleteRecord calls of an account (by
	// DID) as Answers does createRecord's: "429", "503", "500", "401",
	// "expired", "ok" (nothing is deleted but on "ok").
	DeleteAnswers map[string][]string
	// BlobLife is how long a blob no record refers to is kept (the
	// reference PDS deletes such blobs after minutes: contracts §8.3); a
	// record that refers to it later is refused as the PDS refuses an
	// unknown blob.
	BlobLife time.Duration

	mu       sync.Mutex
	now      func() time.Time
	accounts map[string]*Account // by DID
	appPass  map[string]map[string]bool
	access   map[string]session
	refresh  map[string]session
	records  map[string][]Record // by DID, in creation order
	dropGet  map[string]bool
	calls    []string
	blobs    map[string]*storedBlob // by DID + " " + CID
	uploads  map[string]int         // uploadBlob calls by DID
}

// storedBlob is an uploaded blob; referenced once a record refers to it
// (then kept for good).
type storedBlob struct {
	mimeType   string
	size       int64
	uploaded   time.Time
	referenced bool
	bytes      []byte
}

// MaxBlobBytes is the most bytes a blob an image embed refers to may
// have, checked at createRecord (contracts §8.3, §8.5).
const MaxBlobBytes = 1_000_000

// New starts a fake PDS; its PLC directory is at PLCURL.
func New() *Server {
	s := &Server{
		AccessLife: 2 * time.Hour, RefreshLife: 90 * 24 * time.Hour,
		Answers: map[string][]string{}, RateLimitWait: 30 * time.Second,
		now: time.Now, accounts: map[string]*Account{}, appPass: map[string]map[string]bool{},
		access: map[string]session{}, refresh: map[string]session{}, records: map[string][]Record{},
		dropGet: map[string]bool{}, UploadAnswers: map[string][]string{}, DeleteAnswers: map[string][]string{}, BlobLife: 5 * time.Minute,
		blobs: map[string]*storedBlob{}, uploads: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /xrpc/com.atproto.server.createSession", s.createSession)
	mux.HandleFunc("POST /xrpc/com.atproto.server.refreshSession", s.refreshSession)
	mux.HandleFunc("POST /xrpc/com.atproto.server.deleteSession", s.deleteSession)
	mux.HandleFunc("GET /xrpc/com.atproto.identity.resolveHandle", s.resolveHandle)
	mux.HandleFunc("POST /xrpc/com.atproto.repo.createRecord", s.createRecord)
	mux.HandleFunc("POST /xrpc/com.atproto.repo.uploadBlob", s.uploadBlob)
	mux.HandleFunc("POST /xrpc/com.atproto.repo.deleteRecord", s.deleteRecord)
	mux.HandleFunc("GET /xrpc/com.atproto.repo.getRecord", s.getRecord)
	mux.HandleFunc("GET /xrpc/com.atproto.repo.listRecords", s.listRecords)
	mux.HandleFunc("GET /plc/{did}", s.plc)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls = append(s.calls, r.URL.Path)
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	return s
}

// PLCURL is the fake's PLC directory.
func (s *Server) PLCURL() string { return s.URL + "/plc" }

// Configure runs set with the switches locked; set must only assign fields.
func (s *Server) Configure(set func(s *Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set(s)
}

// SetNow replaces the fake's clock.
func (s *Server) SetNow(now func() time.Time) { s.Configure(func(s *Server) { s.now = now }) }

// CreateAccount makes an account with handle (and a random DID and
// password) and returns it.
func (s *Server) CreateAccount(handle, displayName string) Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	label, _, _ := strings.Cut(handle, ".")
	a := &Account{DID: "did:plc:" + random(12), Handle: handle, Email: label + "@example.com", Password: random(8), DisplayName: displayName}
	s.accounts[a.DID] = a
	s.appPass[a.DID] = map[string]bool{}
	return *a
}

// AddAccount adds a as it is, its DID and handle included: a fake
// acting as an impostor PDS for another server's account.
func (s *Server) AddAccount(a Account) Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[a.DID] = &a
	s.appPass[a.DID] = map[string]bool{}
	return a
}

// AppPassword makes an app password for the account: xxxx-xxxx-xxxx-xxxx.
func (s *Server) AppPassword(did string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := random(8)
	pw := b[0:4] + "-" + b[4:8] + "-" + b[8:12] + "-" + b[12:16]
	s.appPass[did][pw] = true
	return pw
}

// RevokeAppPassword revokes it, and every session made with it, as the
// reference PDS does: its refresh tokens are refused ("Token has been
// revoked"), its access tokens keep working until they expire.
func (s *Server) RevokeAppPassword(did, pw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.appPass[did], pw)
	for k, v := range s.refresh {
		if v.appPass == pw {
			delete(s.refresh, k)
		}
	}
}

// ExpireSessions makes every access token of the account expired.
func (s *Server) ExpireSessions(did string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.access {
		if v.did == did {
			v.expires = s.now().Add(-time.Second)
			s.access[k] = v
		}
	}
}

// Session makes a session for the account with one of its app passwords,
// as createSession would: an access and a refresh token.
func (s *Server) Session(did string) (access, refresh string) {
	pw := s.AppPassword(did)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issue(did, "com.atproto.appPass", pw)
}

// Records are the posts the account's repo holds.
func (s *Server) Records(did string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.records[did]...)
}

// Sessions counts the account's sessions whose refresh token is live.
func (s *Server) Sessions(did string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.refresh {
		if v.did == did {
			n++
		}
	}
	return n
}

// Count is how many calls of nsid were made so far.
func (s *Server) Count(nsid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c == "/xrpc/"+nsid {
			n++
		}
	}
	return n
}

// Calls are the paths called so far, in order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *Server) issue(did, scope, appPass string) (access, refresh string) {
	now := s.now()
	access = jwtLike(scope, did, now.Add(s.AccessLife))
	refresh = jwtLike("com.atproto.refresh", did, now.Add(s.RefreshLife))
	s.access[access] = session{did: did, scope: scope, expires: now.Add(s.AccessLife), appPass: appPass}
	s.refresh[refresh] = session{did: did, scope: scope, expires: now.Add(s.RefreshLife), appPass: appPass}
	return access, refresh
}

// jwtLike is a token shaped as the PDS's (HS256 JWT: header, claims,
// signature), with the claims the provider reads; the signature is random.
func jwtLike(scope, did string, exp time.Time) string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"typ":"at+jwt","alg":"HS256"}`))
	c, _ := json.Marshal(map[string]any{"scope": scope, "sub": did, "exp": exp.Unix(), "jti": random(8)})
	return h + "." + enc.EncodeToString(c) + "." + enc.EncodeToString([]byte(random(16)))
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func xrpcError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": message})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) byIdentifier(id string) *Account {
	for _, a := range s.accounts {
		if strings.EqualFold(a.DID, id) || strings.EqualFold(a.Handle, id) || strings.EqualFold(a.Email, id) {
			return a
		}
	}
	return nil
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	var in struct{ Identifier, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		xrpcError(w, 400, "InvalidRequest", "Input must be JSON")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.byIdentifier(in.Identifier)
	scope, appPass := "", ""
	switch {
	case a == nil:
	case in.Password == a.Password:
		scope = "com.atproto.access"
	case s.appPass[a.DID][in.Password]:
		scope, appPass = "com.atproto.appPass", in.Password
	}
	if scope == "" {
		xrpcError(w, 401, "AuthenticationRequired", "Invalid identifier or password")
		return
	}
	access, refresh := s.issue(a.DID, scope, appPass)
	writeJSON(w, map[string]any{"accessJwt": access, "refreshJwt": refresh, "handle": a.Handle, "did": a.DID, "active": true})
}

// bearer is the request's token: "" when none.
func bearer(r *http.Request) string {
	t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return t
}

// bodyRefused answers 400 to a request with a body on a procedure that
// takes no input (refreshSession, deleteSession), as the reference PDS
// does, even to {}.
func bodyRefused(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		return false
	}
	xrpcError(w, 400, "InvalidRequest", "A request body was provided when none was expected")
	return true
}

func (s *Server) refreshSession(w http.ResponseWriter, r *http.Request) {
	if bodyRefused(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := bearer(r)
	if tok == "" {
		xrpcError(w, 401, "AuthMissing", "Authentication Required")
		return
	}
	sess, ok := s.refresh[tok]
	switch {
	case !ok && strings.Count(tok, ".") == 2:
		xrpcError(w, 400, "ExpiredToken", "Token has been revoked")
		return
	case !ok:
		xrpcError(w, 400, "InvalidToken", "Token could not be verified")
		return
	case !s.now().Before(sess.expires):
		xrpcError(w, 400, "ExpiredToken", "Token has expired")
		return
	}
	delete(s.refresh, tok) // rotates (the reference PDS keeps a grace period; not modelled)
	access, refresh := s.issue(sess.did, sess.scope, sess.appPass)
	writeJSON(w, map[string]any{"accessJwt": access, "refreshJwt": refresh, "handle": s.accounts[sess.did].Handle, "did": sess.did})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	if bodyRefused(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refresh[bearer(r)]; !ok {
		xrpcError(w, 400, "InvalidToken", "Token could not be verified")
		return
	}
	delete(s.refresh, bearer(r))
	w.WriteHeader(http.StatusOK)
}

func (s *Server) resolveHandle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := r.URL.Query().Get("handle")
	for _, a := range s.accounts {
		if strings.EqualFold(a.Handle, h) {
			writeJSON(w, map[string]string{"did": a.DID})
			return
		}
	}
	xrpcError(w, 400, "HandleNotFound", "Unable to resolve handle")
}

func (s *Server) plc(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[r.PathValue("did")]
	if !ok {
		http.Error(w, `{"message":"DID not registered"}`, http.StatusNotFound)
		return
	}
	aka := []string{"at://" + a.Handle}
	if v, ok := s.AlsoKnownAs[a.DID]; ok {
		aka = v
	}
	writeJSON(w, map[string]any{
		"id": a.DID, "alsoKnownAs": aka,
		"service": []map[string]string{{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": s.URL}},
	})
}

// authorize checks the access token as the reference PDS does: none is
// 401 AuthMissing, an unknown one 400 InvalidToken, a past one 400
// ExpiredToken.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (session, bool) {
	tok := bearer(r)
	if tok == "" {
		xrpcError(w, 401, "AuthMissing", "Authentication Required")
		return session{}, false
	}
	sess, ok := s.access[tok]
	if !ok {
		xrpcError(w, 400, "InvalidToken", "Token could not be verified")
		return session{}, false
	}
	if !s.now().Before(sess.expires) {
		xrpcError(w, 400, "ExpiredToken", "Token has expired")
		return session{}, false
	}
	return sess, true
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Repo, Collection, RKey string
		Record                 map[string]any
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		xrpcError(w, 400, "InvalidRequest", "Input must be JSON")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.authorize(w, r)
	if !ok {
		return
	}
	answer := "ok"
	if q := s.Answers[sess.did]; len(q) > 0 {
		answer, s.Answers[sess.did] = q[0], q[1:]
	}
	if answer == "504" {
		w.WriteHeader(http.StatusGatewayTimeout)
		return
	}
	if s.scripted(w, answer) {
		return
	}
	if in.Repo != sess.did {
		xrpcError(w, 403, "InvalidRequest", "Unauthorized repo")
		return
	}
	if in.Collection != bluesky.PostCollection || in.Record["$type"] != bluesky.PostCollection {
		xrpcError(w, 400, "InvalidRequest", "Invalid collection")
		return
	}
	if in.RKey == "" {
		in.RKey = nextTID(s.now())
	}
	if !bluesky.ValidTID(in.RKey) {
		xrpcError(w, 400, "InvalidRequest", fmt.Sprintf("Invalid record key for app.bsky.feed.post: Invalid TID string (got %q) at $", in.RKey))
		return
	}
	text, _ := in.Record["text"].(string)
	if n := uniseg.GraphemeClusterCount(text); n > bluesky.MaxGraphemes {
		xrpcError(w, 400, "InvalidRequest", fmt.Sprintf("Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes (got %d)", n))
		return
	}
	if len(text) > bluesky.MaxBytes {
		xrpcError(w, 400, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/text must not be longer than 3000 characters")
		return
	}
	for _, rec := range s.records[sess.did] {
		if rec.RKey == in.RKey {
			// What the reference PDS answers a key that exists.
			xrpcError(w, 500, "InternalServerError", "Internal Server Error")
			return
		}
	}
	refs, ok := s.checkEmbed(w, sess.did, in.Record["embed"])
	if !ok {
		return
	}
	for _, b := range refs {
		b.referenced = true
	}
	uri := "at://" + sess.did + "/" + bluesky.PostCollection + "/" + in.RKey
	s.records[sess.did] = append(s.records[sess.did], Record{URI: uri, RKey: in.RKey, Value: in.Record})
	switch answer {
	case "lost":
		s.dropGet[sess.did] = true
		drop(w)
		return
	case "dropped":
		drop(w)
		return
	}
	writeJSON(w, map[string]any{"uri": uri, "cid": "bafyrei" + random(16), "validationStatus": "valid"})
}

// deleteRecord deletes a record of the caller's repo. As the reference
// PDS, it answers 200 with {"commit"} when it deleted one and 200 with {}
// when the repo holds no such record; another repo is 401
// AuthenticationRequired, as the reference PDS answers it (see the
// provider's Delete).
func (s *Server) deleteRecord(w http.ResponseWriter, r *http.Request) {
	var in struct{ Repo, Collection, RKey string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		xrpcError(w, 400, "InvalidRequest", "Input must be JSON")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.authorize(w, r)
	if !ok {
		return
	}
	answer := "ok"
	if q := s.DeleteAnswers[sess.did]; len(q) > 0 {
		answer, s.DeleteAnswers[sess.did] = q[0], q[1:]
	}
	if s.scripted(w, answer) {
		return
	}
	if in.Repo != sess.did {
		xrpcError(w, 401, "AuthenticationRequired", "Authentication Required")
		return
	}
	for i, rec := range s.records[sess.did] {
		if in.Collection == bluesky.PostCollection && rec.RKey == in.RKey {
			s.records[sess.did] = slices.Delete(s.records[sess.did], i, i+1)
			writeJSON(w, map[string]any{"commit": map[string]any{"cid": "bafyrei" + random(16), "rev": nextTID(s.now())}})
			return
		}
	}
	writeJSON(w, map[string]any{})
}

// scripted answers a scripted failure and reports true, or false for "ok".
func (s *Server) scripted(w http.ResponseWriter, answer string) bool {
	switch answer {
	case "429":
		if s.RateLimitWait > 0 {
			w.Header().Set("RateLimit-Reset", strconv.FormatInt(s.now().Add(s.RateLimitWait).Unix(), 10))
		}
		w.Header().Set("RateLimit-Limit", "3000")
		w.Header().Set("RateLimit-Remaining", "0")
		xrpcError(w, 429, "RateLimitExceeded", "Rate Limit Exceeded")
	case "503":
		xrpcError(w, 503, "ServiceUnavailable", "Service Unavailable")
	case "500":
		xrpcError(w, 500, "InternalServerError", "Internal Server Error")
	case "401":
		xrpcError(w, 401, "AuthMissing", "Authentication Required")
	case "expired":
		xrpcError(w, 400, "ExpiredToken", "Token has expired")
	default:
		return false
	}
	return true
}

// uploadBlob stores the body as a blob of the caller's repo, its CID a
// hash of the bytes (the same bytes, the same ref), as the reference PDS
// answers: {"blob": {"$type": "blob", "ref": {"$link"}, "mimeType",
// "size"}}, its mimeType sniffed from the bytes. Like it, it decodes
// nothing and caps nothing here: the image limits are checked when a
// record refers to the blob.
func (s *Server) uploadBlob(w http.ResponseWriter, r *http.Request) {
	// Kept whole (tests read it back), up to a bound past the limit.
	var body bytes.Buffer
	n, err := io.Copy(&body, io.LimitReader(r.Body, 8<<20))
	h := sha256.Sum256(body.Bytes())
	head := body.Bytes()[:min(512, body.Len())]
	if err != nil {
		xrpcError(w, 400, "InvalidRequest", "could not read the body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if q := s.UploadAnswers[sess.did]; len(q) > 0 {
		var answer string
		answer, s.UploadAnswers[sess.did] = q[0], q[1:]
		if s.scripted(w, answer) {
			return
		}
	}
	if r.ContentLength != n {
		xrpcError(w, 400, "InvalidRequest", "the body is not as long as its Content-Length")
		return
	}
	// The reference PDS sniffs the type from the bytes and ignores the
	// Content-Type (a PNG sent as image/jpeg is image/png).
	mime, _, _ := strings.Cut(http.DetectContentType(head), ";")
	cid := "bafkrei" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:]))
	key := sess.did + " " + cid
	s.uploads[sess.did]++
	if b, ok := s.blobs[key]; !ok || (!b.referenced && !s.now().Before(b.uploaded.Add(s.BlobLife))) {
		s.blobs[key] = &storedBlob{mimeType: mime, size: n, uploaded: s.now(), bytes: body.Bytes()}
	}
	writeJSON(w, map[string]any{"blob": map[string]any{"$type": "blob", "ref": map[string]string{"$link": cid}, "mimeType": mime, "size": n}})
}

// Uploads counts the account's uploadBlob calls that stored or found a
// blob.
func (s *Server) Uploads(did string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uploads[did]
}

// Blob is the bytes of the account's blob cid; nil when the fake does not
// hold it (never uploaded, or forgotten).
func (s *Server) Blob(did, cid string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.blobs[did+" "+cid]
	if b == nil || (!b.referenced && !s.now().Before(b.uploaded.Add(s.BlobLife))) {
		return nil
	}
	return b.bytes
}

// ForgetBlob deletes the account's blob cid, as the PDS does with a blob
// no record referred to in time.
func (s *Server) ForgetBlob(did, cid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blobs, did+" "+cid)
}

// Blobs counts the account's blobs the fake still holds.
func (s *Server) Blobs(did string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, b := range s.blobs {
		if strings.HasPrefix(k, did+" ") && (b.referenced || s.now().Before(b.uploaded.Add(s.BlobLife))) {
			n++
		}
	}
	return n
}

// checkEmbed checks a record's app.bsky.embed.images against the blobs
// of did, answering the refusal itself: at most 4 images, each with alt
// (required, "" allowed), a blob the repo holds (not forgotten) of an
// image type and at most MaxBlobBytes, and aspectRatio, if any, of integers ≥ 1. It returns the
// blobs referred to. Another embed, or none, passes unchecked.
func (s *Server) checkEmbed(w http.ResponseWriter, did string, v any) ([]*storedBlob, bool) {
	e, _ := v.(map[string]any)
	if e == nil || e["$type"] != "app.bsky.embed.images" {
		return nil, true
	}
	imgs, _ := e["images"].([]any)
	if len(imgs) > 4 {
		xrpcError(w, 400, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/embed/images must not have more than 4 elements")
		return nil, false
	}
	var out []*storedBlob
	for i, it := range imgs {
		img, _ := it.(map[string]any)
		if _, ok := img["alt"].(string); !ok {
			xrpcError(w, 400, "InvalidRequest", fmt.Sprintf("Invalid app.bsky.feed.post record: Record/embed/images/%d must have the property \"alt\"", i))
			return nil, false
		}
		if ar, ok := img["aspectRatio"].(map[string]any); ok {
			wd, _ := ar["width"].(float64)
			ht, _ := ar["height"].(float64)
			if wd < 1 || ht < 1 || wd != float64(int(wd)) || ht != float64(int(ht)) {
				xrpcError(w, 400, "InvalidRequest", fmt.Sprintf("Invalid app.bsky.feed.post record: Record/embed/images/%d/aspectRatio must be integers of at least 1", i))
				return nil, false
			}
		}
		bl, _ := img["image"].(map[string]any)
		ref, _ := bl["ref"].(map[string]any)
		cid, _ := ref["$link"].(string)
		b := s.blobs[did+" "+cid]
		// The reference PDS's answers, with the contract's 1,000,000
		// bytes for its lexicon's 2,000,000.
		if b == nil || (!b.referenced && !s.now().Before(b.uploaded.Add(s.BlobLife))) {
			xrpcError(w, 400, "BlobNotFound", "Could not find blob: "+cid)
			return nil, false
		}
		if !strings.HasPrefix(b.mimeType, "image/") {
			xrpcError(w, 400, "InvalidRequest", fmt.Sprintf("Invalid app.bsky.feed.post record: Expected \"image/*\" (got %q) at $.record.embed.images[%d].image.mimeType", b.mimeType, i))
			return nil, false
		}
		if b.size > MaxBlobBytes {
			xrpcError(w, 400, "InvalidRequest", fmt.Sprintf("Invalid app.bsky.feed.post record: blob too big (maximum %d, got %d) at $.record.embed.images[%d].image", MaxBlobBytes, b.size, i))
			return nil, false
		}
		out = append(out, b)
	}
	return out, true
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	did := q.Get("repo")
	if s.dropGet[did] {
		delete(s.dropGet, did)
		drop(w)
		return
	}
	if q.Get("collection") == "app.bsky.actor.profile" && q.Get("rkey") == "self" {
		if a, ok := s.accounts[did]; ok && a.DisplayName != "" {
			writeJSON(w, map[string]any{"uri": "at://" + did + "/app.bsky.actor.profile/self",
				"value": map[string]any{"$type": "app.bsky.actor.profile", "displayName": a.DisplayName}})
			return
		}
	}
	for _, rec := range s.records[did] {
		if q.Get("collection") == bluesky.PostCollection && rec.RKey == q.Get("rkey") {
			writeJSON(w, map[string]any{"uri": rec.URI, "cid": "bafyrei", "value": rec.Value})
			return
		}
	}
	xrpcError(w, 400, "RecordNotFound", "Could not locate record: at://"+did+"/"+q.Get("collection")+"/"+q.Get("rkey"))
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	var out []map[string]any
	if q.Get("collection") == bluesky.PostCollection {
		for _, rec := range s.records[q.Get("repo")] {
			out = append(out, map[string]any{"uri": rec.URI, "cid": "bafyrei", "value": rec.Value})
		}
	}
	writeJSON(w, map[string]any{"records": out})
}

// nextTID is a TID for now, as a client without a key of its own makes.
func nextTID(now time.Time) string {
	const alphabet = "234567abcdefghijklmnopqrstuvwxyz"
	v := uint64(now.UnixMicro())<<10 | uint64(now.Nanosecond()%1024)
	var out [13]byte
	for i := 12; i >= 0; i-- {
		out[i] = alphabet[v&31]
		v >>= 5
	}
	return string(out[:])
}
