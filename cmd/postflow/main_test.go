package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/lockedbuf"
)

// bin is the postflow binary that TestMain builds, as a user would.
var bin string

// recordHistories rewrites the stored workflow histories that the replay
// test of workflows/ reads, from the runs of TestDevRunsAndStopsOnSIGINT.
// Run on purpose only, after a workflow change gated by GetVersion, and
// first move the released build's histories into a folder of their own
// (workflows/testdata/histories/v0.1.0, ...): runs it started must still
// replay.
//
//	go test ./cmd/postflow -run TestDevRuns -args -record-histories
var recordHistories = flag.Bool("record-histories", false, "record the publish runs' histories into workflows/testdata/histories")

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "postflow-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "postflow")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// devProcess is a started `postflow dev` on free ports.
type devProcess struct {
	cmd                                                 *exec.Cmd
	out                                                 *lockedbuf.Buffer
	apiPort, uiPort, temporalPort, mongoPort, redisPort int
}

// startDev starts `postflow dev` with its own data folder and ports; the
// process is killed when the test ends, if it still runs.
func startDev(t *testing.T) *devProcess { return startDevWith(t, nil) }

// startDevWith starts `postflow dev` with more environment and arguments.
func startDevWith(t *testing.T, env []string, extra ...string) *devProcess {
	t.Helper()
	return startDevOn(t, freePort(t), env, extra...)
}

// startDevOn starts `postflow dev` with its API on apiPort, for tests that
// must know the API's address before it starts (a network's callback).
func startDevOn(t *testing.T, apiPort int, env []string, extra ...string) *devProcess {
	t.Helper()
	d := &devProcess{out: &lockedbuf.Buffer{}, apiPort: apiPort, uiPort: freePort(t), temporalPort: freePort(t), mongoPort: freePort(t), redisPort: freePort(t)}
	d.cmd = exec.Command(bin, append([]string{"dev",
		"--data-dir", t.TempDir(),
		"--temporal-port", fmt.Sprint(d.temporalPort),
		"--ui-port", fmt.Sprint(d.uiPort),
		"--mongo-port", fmt.Sprint(d.mongoPort),
		"--redis-port", fmt.Sprint(d.redisPort),
	}, extra...)...)
	// The test key of the stored histories, so that those recorded from
	// this process replay (workflows/replay_test.go).
	d.cmd.Env = append(append(cleanEnv(), fmt.Sprintf("PORT=%d", d.apiPort), "TEMPORAL_PAYLOAD_KEY="+testPayloadKey(t)), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.cmd.Process.Kill() })
	return d
}

// restart starts a stopped d again: the same folder, ports and settings.
func (d *devProcess) restart(t *testing.T) {
	t.Helper()
	d.out = &lockedbuf.Buffer{}
	cmd := exec.Command(d.cmd.Path, d.cmd.Args[1:]...)
	cmd.Env = d.cmd.Env
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.cmd = cmd
	t.Cleanup(func() { _ = cmd.Process.Kill() })
}

// testTokenKey seals tokens in the tests' dev processes, so that a worker
// started apart can open them.
const testTokenKey = "0f0e0d0c0b0a09080706050403020100000102030405060708090a0b0c0d0e0f"

// workerEnv is the environment of a `postflow worker` joining d's stack.
func (d *devProcess) workerEnv(t *testing.T) []string {
	return append(cleanEnv(),
		fmt.Sprintf("TEMPORAL_ADDRESS=127.0.0.1:%d", d.temporalPort),
		fmt.Sprintf("MONGODB_URI=mongodb://127.0.0.1:%d/postflow", d.mongoPort),
		fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d", d.redisPort),
		"TOKEN_ENCRYPTION_KEY="+testTokenKey,
		"TEMPORAL_PAYLOAD_KEY="+testPayloadKey(t),
		"SANDBOX_ENABLED=true",
		fmt.Sprintf("SANDBOX_URL=http://127.0.0.1:%d/sandbox", d.apiPort),
		// As postflow dev tells a worker of its own (app's workerEnv): the
		// API accepts loopback servers (webhook receivers, instances), so
		// the worker must call them.
		"ALLOW_LOCAL_SERVERS=true",
	)
}

// interrupt presses Ctrl-C and fails the test unless the process exits 0
// within 30 s.
func (d *devProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("postflow dev exited with %v after SIGINT:\n%s", err, d.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("postflow dev did not stop within 30 s of SIGINT:\n%s", d.out.String())
	}
}

// TestDevRunsAndStopsOnSIGINT runs `postflow dev` as a user would, waits for
// /readyz and the Web UI, then presses Ctrl-C and expects a clean exit.
func TestDevRunsAndStopsOnSIGINT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := startDev(t)
	out, apiPort, uiPort, temporalPort := d.out, d.apiPort, d.uiPort, d.temporalPort

	started := time.Now()
	waitStatus(ctx, t, fmt.Sprintf("http://127.0.0.1:%d/readyz", apiPort), out)
	waitStatus(ctx, t, fmt.Sprintf("http://127.0.0.1:%d/", uiPort), out)
	waitOutput(ctx, t, out, "PostFlow dev is running.")
	t.Logf("ready, Web UI up and worker polling in %v", time.Since(started).Round(time.Millisecond))

	log := out.String()
	for _, want := range []string{
		fmt.Sprintf("API            http://127.0.0.1:%d", apiPort),
		fmt.Sprintf("Temporal UI    http://127.0.0.1:%d", uiPort),
		"Filled development defaults: TOKEN_ENCRYPTION_KEY",
		"AUTH_TRUST_HEADERS=true",
	} {
		if strings.Count(log, want) != 1 {
			t.Errorf("startup output should say %q once:\n%s", want, log)
		}
	}

	publishThroughTemporal(t, fmt.Sprintf("http://127.0.0.1:%d", apiPort), fmt.Sprintf("http://127.0.0.1:%d", uiPort), fmt.Sprintf("127.0.0.1:%d", temporalPort))

	beforeStop := len(out.String())
	d.interrupt(t)
	for _, want := range []string{"api stopped", "worker stopped", "dev stack stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("shutdown should log %q", want)
		}
	}
	if stopLog := out.String()[beforeStop:]; strings.Contains(stopLog, "level=ERROR") {
		t.Errorf("a clean stop logged errors:\n%s", stopLog)
	}
}

// connectSandboxAccount connects the sandbox account of name the way a
// person does in a browser: connect → the sandbox's authorize page →
// Authorize → PostFlow's callback → the frontend. Dev trusts identity
// headers. It returns the account's id.
func connectSandboxAccount(t *testing.T, apiURL, name string) string {
	t.Helper()
	// A browser's cookies: the callback completes only with the one the
	// connect set.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	identity := http.Header{"X-User-Id": {"dev-user"}, "X-Organization-Id": {"dev-org"}}
	get := func(u string, h http.Header) *http.Response {
		req, _ := http.NewRequest("GET", u, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		res, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := get(apiURL+"/connections/connect/sandbox", identity)
	res.Body.Close()
	authorize := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(authorize, apiURL+"/sandbox/authorize?") {
		t.Fatalf("connect: %d to %q", res.StatusCode, authorize)
	}
	page := get(authorize, nil)
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(html), "Authorize") {
		t.Fatalf("authorize page: %d", page.StatusCode)
	}
	u, _ := url.Parse(authorize)
	form := u.Query()
	form.Set("name", name)
	form.Set("action", "allow")
	res, err = noFollow.PostForm(apiURL+"/sandbox/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	callback := res.Header.Get("Location")
	res = get(callback, nil)
	res.Body.Close()
	if loc := res.Header.Get("Location"); loc != "http://localhost:3000/connections?connected=1" {
		t.Fatalf("callback landed on %q", loc)
	}
	res = get(apiURL+"/connections", identity)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(body), "sba_") || strings.Contains(string(body), "Token") {
		t.Errorf("GET /connections shows a token: %s", body)
	}
	var list struct {
		Connections []struct{ ID, PlatformUserID string }
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET /connections = %s", body)
	}
	want := "sbx-" + strings.ReplaceAll(strings.ToLower(name), " ", "-")
	for _, c := range list.Connections {
		if c.PlatformUserID == want {
			return c.ID
		}
	}
	t.Fatalf("GET /connections has no %s: %s", want, body)
	return ""
}

// TestDevStopsCleanlyWhileStarting presses Ctrl-C while the stack starts:
// a developer who changes their mind gets a clean exit too. The first log
// line says the process handles signals; the delays land the SIGINT in
// different phases of the start.
func TestDevStopsCleanlyWhileStarting(t *testing.T) {
	for _, delay := range []time.Duration{0, 300 * time.Millisecond, 800 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			d := startDev(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			waitOutput(ctx, t, d.out, "level=")
			time.Sleep(delay)
			d.interrupt(t)
		})
	}
}

// TestConfigErrorsAreOneLineEach: every configuration problem of one run
// is reported, one line each naming the command and the variable, and
// nothing starts.
func TestConfigErrorsAreOneLineEach(t *testing.T) {
	prod := []string{"NODE_ENV=production", "TOKEN_ENCRYPTION_KEY=dG9vLXNob3J0", "TEMPORAL_PAYLOAD_KEY=" + strings.Repeat("ab", 32), "MONGODB_URI=mongodb://db/x", "REDIS_URL=redis://r:6379", "FRONTEND_URL=https://app.example.com", "JWT_SECRET=0123456789abcdef0123456789abcdef", "MEDIA_URL_SECRET=" + strings.Repeat("cd", 32)}
	tests := []struct {
		name      string
		args      []string
		env       []string
		wantCode  int
		wantLines []string // the start of each line of stderr
	}{
		{
			name:      "bad key in production",
			args:      []string{"api"},
			env:       prod,
			wantCode:  1,
			wantLines: []string{"postflow api: config: TOKEN_ENCRYPTION_KEY: must be 32 bytes encoded as base64 or hex, got 9 bytes"},
		},
		{
			name:     "two bad values in production",
			args:     []string{"api"},
			env:      append(prod, "PORT=eighty", "SANDBOX_ENABLED=true"),
			wantCode: 1,
			wantLines: []string{
				"postflow api: config: PORT: must be a whole number",
				"postflow api: config: TOKEN_ENCRYPTION_KEY: must be 32 bytes",
				"postflow api: config: SANDBOX_ENABLED: must not be true with NODE_ENV=production",
			},
		},
		{
			name:      "bad key in dev",
			args:      []string{"dev", "--data-dir", "unused"},
			env:       []string{"TOKEN_ENCRYPTION_KEY=abc"},
			wantCode:  1,
			wantLines: []string{"postflow dev: config: TOKEN_ENCRYPTION_KEY: must be 32 bytes"},
		},
		{
			name:     "bad values in dev, defaults filled",
			args:     []string{"dev", "--data-dir", "unused"},
			env:      []string{"TOKEN_ENCRYPTION_KEY=abc", "FRONTEND_URL=localhost:3000", "SHUTDOWN_TIMEOUT=soon"},
			wantCode: 1,
			wantLines: []string{
				"postflow dev: config: SHUTDOWN_TIMEOUT: must be a duration",
				"postflow dev: config: TOKEN_ENCRYPTION_KEY: must be 32 bytes",
				"postflow dev: config: FRONTEND_URL: must be an absolute URL",
			},
		},
		{
			name:     "missing variables",
			args:     []string{"worker"},
			env:      []string{"NODE_ENV=production"},
			wantCode: 1,
			wantLines: []string{
				"postflow worker: config: MONGODB_URI: is required but not set",
				"postflow worker: config: TOKEN_ENCRYPTION_KEY: is required but not set",
				"postflow worker: config: TEMPORAL_PAYLOAD_KEY: is required but not set",
			},
		},
		{
			name:     "missing variables and a relative frontend URL",
			args:     []string{"api"},
			env:      []string{"FRONTEND_URL=localhost:3000"},
			wantCode: 1,
			wantLines: []string{
				"postflow api: config: MONGODB_URI: is required",
				"postflow api: config: REDIS_URL: is required",
				"postflow api: config: TOKEN_ENCRYPTION_KEY: is required",
				"postflow api: config: TEMPORAL_PAYLOAD_KEY: is required",
				"postflow api: config: JWT_SECRET: is required",
				"postflow api: config: MEDIA_URL_SECRET: is required",
				"postflow api: config: FRONTEND_URL: must be an absolute URL",
			},
		},
		{"unknown command", []string{"serve"}, nil, 2, []string{`postflow: unknown command "serve"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(cleanEnv(), tt.env...)
			cmd.Dir = t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if tt.wantCode == 1 && len(lines) != len(tt.wantLines) {
				t.Errorf("want %d lines on stderr, got:\n%s", len(tt.wantLines), stderr.String())
			}
			for i, want := range tt.wantLines {
				if i >= len(lines) || !strings.HasPrefix(lines[i], want) {
					t.Errorf("stderr line %d should start %q; stderr:\n%s", i+1, want, stderr.String())
				}
			}
			if tt.wantCode == 1 && stdout.Len() > 0 {
				t.Errorf("nothing should start; stdout:\n%s", stdout.String())
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	out, err := exec.Command(bin, "keygen").Output()
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(out)))
	if err != nil || len(key) != 32 {
		t.Fatalf("keygen printed %q: %d bytes, %v", out, len(key), err)
	}
	again, _ := exec.Command(bin, "keygen").Output()
	if bytes.Equal(out, again) {
		t.Error("two keygen runs printed the same key")
	}
}

// cleanEnv keeps what the go command and the OS need, and none of the
// developer's PostFlow settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PATH", "HOME", "TMPDIR", "GOCACHE", "GOPATH", "GOMODCACHE":
			env = append(env, kv)
		}
	}
	return env
}

func waitStatus(ctx context.Context, t *testing.T, url string, out *lockedbuf.Buffer) {
	t.Helper()
	var last string
	for {
		res, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never answered 200 (last: %s); output:\n%s", url, last, out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitOutput waits until the output holds want.
func waitOutput(ctx context.Context, t *testing.T, out *lockedbuf.Buffer, want string) {
	t.Helper()
	for !strings.Contains(out.String(), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("output never said %q:\n%s", want, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
