package webhooks_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/lockedbuf"
	"github.com/postflow/postflow/webhooks"
)

// readmeReceiver is the receiver example of the README's "Building on
// PostFlow", the code block that starts with "// receiver.cjs".
func readmeReceiver(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```js\n// receiver.cjs")
	code, _, closed := strings.Cut(rest, "\n```")
	if !ok || !closed {
		t.Fatal("README.md has no ```js block starting with // receiver.cjs")
	}
	return "// receiver.cjs" + code + "\n"
}

// reportPort, preloaded into the receiver, writes the port its server
// listens on to stderr; the README's code runs unchanged.
const reportPort = `const http = require("node:http");
const createServer = http.createServer;
http.createServer = (...args) => createServer(...args).once("listening", function () {
  process.stderr.write("listening on " + this.address().port + "\n");
});
`

var listeningOn = regexp.MustCompile(`listening on (\d+)\n`)

// The README's receiver, run as written with the Standard Webhooks
// JavaScript library, accepts what PostFlow's deliverer sends, handles a
// repeated delivery once, and refuses a forged one.
func TestReadmeReceiver(t *testing.T) {
	node, dir := jsVerifier(t)
	ctx := context.Background()
	w := newWorld(t)
	// The endpoint's secret is the receiver's, so the endpoint comes
	// first, at a placeholder URL until the receiver tells its port.
	placeholder := "http://127.0.0.1:1/postflow"
	e, secret, err := w.svc.Create(ctx, "org-1", webhooks.Input{URL: &placeholder})
	if err != nil {
		t.Fatal(err)
	}

	tmp := t.TempDir()
	script := filepath.Join(tmp, "receiver.cjs")
	if err := os.WriteFile(script, []byte(readmeReceiver(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	preload := filepath.Join(tmp, "report-port.cjs")
	if err := os.WriteFile(preload, []byte(reportPort), 0o600); err != nil {
		t.Fatal(err)
	}
	// PORT=0: the receiver binds a port the kernel picks, so no other
	// process can take it between a pick and the bind; the preload tells it.
	cmd := exec.Command(node, "--require", preload, script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"), "WEBHOOK_SECRET="+secret, "PORT=0")
	var stdout, stderr lockedbuf.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var port string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := listeningOn.FindStringSubmatch(stderr.String()); m != nil {
			port = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver did not listen: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	url := fmt.Sprintf("http://127.0.0.1:%s/postflow", port)
	if _, err := w.svc.Update(ctx, "org-1", e.ID, webhooks.Input{URL: &url}); err != nil {
		t.Fatal(err)
	}

	w.now = time.Now() // the receiver checks the timestamp against its clock
	ev, err := webhooks.NewEvent("org-1", webhooks.PostPublished, w.now,
		map[string]any{"post": map[string]string{"id": "6b0ce8e3fe7323571c56241a", "status": "published", "content": "Grüße 👋"}}, "p", "r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.SaveEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		out, err := w.d.Attempt(ctx, webhooks.AttemptInput{EventID: ev.ID, EndpointID: e.ID, Attempt: attempt})
		if err != nil || !out.Delivered || out.StatusCode != http.StatusNoContent {
			t.Fatalf("attempt %d = %+v, %v; receiver: %s", attempt, out, err, stderr.String())
		}
	}
	forged, _ := webhooks.Sign([]string{newSecret(t)}, ev.ID, time.Now(), ev.Body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(ev.Body))
	req.Header = forged
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a forged delivery: %d, want 400", resp.StatusCode)
	}
	if got, want := stdout.String(), "post.published 6b0ce8e3fe7323571c56241a published\n"; got != want {
		t.Errorf("the receiver printed %q, want %q (once); stderr: %s", got, want, stderr.String())
	}
}
