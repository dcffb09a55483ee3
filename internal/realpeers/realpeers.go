// Package realpeers starts real implementations of networks' APIs on
// 127.0.0.1 for provider tests: a Bluesky PDS with its own PLC directory
// (StartPDS) and GoToSocial for the Mastodon API (StartGoToSocial); and
// the Versity S3 Gateway (StartS3) for the S3 media store. A provider
// tested only against a fake written from the docs shares the fake's
// misreadings; these servers are the networks' own code.
//
// scripts/install-peers.sh installs them under $POSTFLOW_PEERS_DIR, by
// default $HOME/.cache/postflow-peers (see Dir). When they are missing or
// stale, a test that asks for one is skipped locally and fails when
// CI=true. Each start gets a free port and a fresh data folder under
// t.TempDir() and is stopped by t.Cleanup, so tests may run in parallel.
//
// A provider test uses them like this:
//
//	pds := realpeers.StartPDS(t)
//	acct := pds.CreateAccount(t, "alice.test")
//	appPassword := pds.AppPassword(t, acct) // what PostFlow stores
//	back := pds.SignIn(t, authorizeURLPostFlowBuilt, acct) // atproto OAuth: redirect_uri?code=…&state=…&iss=…
//
//	gts := realpeers.StartGoToSocial(t)
//	user := gts.CreateAccount(t, "alice")
//	to := gts.SignIn(t, authorizeURLPostFlowBuilt, user) // redirect_uri?code=…&state=…
//	token := gts.Token(t, user)                          // or just a bearer token
//
// Facts about these servers that providers need are recorded next to the
// helpers and checked by this package's tests; in short:
//
// PDS (@atproto/pds 0.5.35):
//   - com.atproto.repo.createRecord under an rkey that already exists:
//     500 {"error":"InternalServerError","message":"Internal Server Error"},
//     not a conflict: treat it as "maybe mine" and read the record back.
//   - com.atproto.repo.getRecord of a missing record: 400
//     {"error":"RecordNotFound","message":"Could not locate record: at://…"}.
//   - With rate limits on (PDSRateLimits; off by default, and then no such
//     header is sent), createRecord answers carry RateLimit-Limit,
//     RateLimit-Remaining, RateLimit-Reset (Unix seconds) and
//     RateLimit-Policy: "3000;w=300", the tightest limit (the global one,
//     per IP, 5 minutes), Remaining 2995 after 5 calls.
//   - app passwords work (com.atproto.server.createAppPassword), and
//     createSession takes one in place of the account password.
//
// GoToSocial v0.18.3: see the comment on GoToSocial. versitygw v1.8.0: see
// the comment on S3.
package realpeers

import (
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The versions scripts/install-peers.sh installs; a stamp file beside each
// install holds the version, and a mismatch counts as not installed.
const (
	nodeVersion = "22.23.3"
	gtsVersion  = "v0.18.3"
)

// The PDS's stamp is a hash of these files, computed as the install script
// does, so an edit to them in the repo asks for a reinstall.
var (
	//go:embed pds/package.json
	pdsPackageJSON []byte
	//go:embed pds/package-lock.json
	pdsPackageLock []byte
	//go:embed pds/run-pds.mjs
	pdsRunScript []byte
)

// InstallCommand is what a developer runs, from the repository's root, to
// install or update the peers.
const InstallCommand = "scripts/install-peers.sh"

// Dir is where scripts/install-peers.sh installs the peers:
// $POSTFLOW_PEERS_DIR, or else $HOME/.cache/postflow-peers.
func Dir() string {
	if d := os.Getenv("POSTFLOW_PEERS_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "postflow-peers")
	}
	return filepath.Join(home, ".cache", "postflow-peers")
}

// unavailable is the one place that decides what a test does when a peer is
// not installed (or is installed at another version): locally it skips, with
// the command that installs it, so `go test ./...` passes on a machine with Go
// only; with CI=true it fails, because CI runs the install script first and a
// skip there would hide the provider tests silently.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("realpeers: "+format+"; run %s", append(args, InstallCommand)...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// requireStamp checks that the part installed under dir carries the wanted
// version in its .stamp file.
func requireStamp(t testing.TB, part, dir, want string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, ".stamp"))
	if err != nil {
		unavailable(t, "%s is not installed in %s", part, dir)
	}
	if v := strings.TrimSpace(string(got)); v != want {
		unavailable(t, "%s in %s is at %q, want %q", part, dir, v, want)
	}
}

func pdsStamp() string {
	h := sha256.New()
	h.Write(pdsPackageJSON)
	h.Write(pdsPackageLock)
	h.Write(pdsRunScript)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// freePort asks the kernel for a free port on 127.0.0.1. The servers take
// a fixed port (the PDS and GoToSocial put it in the URLs they hand out), so
// the port is closed before the server binds it; a start that loses it to
// another process is retried by the callers.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("realpeers: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// randomSecret returns n random bytes in hex, for passwords.
func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux (Go 1.24+ panics rather than return an error)
	return hex.EncodeToString(b)
}
