package realpeers

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/lockedbuf"
)

// proc is a peer server running as a child process, its stdout and stderr
// kept together for failure messages.
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    *lockedbuf.Buffer
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's answer, set before exited closes
}

// startProc starts cmd with its output captured. It does not wait for
// readiness; the caller polls and calls stop.
func startProc(name string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, cmd: cmd, out: &lockedbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// portTaken tells whether the process exited because its port was taken
// between freePort and its bind, which is worth another try on a new port.
func (p *proc) portTaken() bool {
	out := p.out.String()
	return !p.running() && (strings.Contains(out, "EADDRINUSE") || strings.Contains(out, "address already in use"))
}

// stop sends SIGTERM, which both servers handle by shutting down cleanly,
// and kills the process if it has not exited after 10 s.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Logf("realpeers: %s did not stop within 10 s of SIGTERM; killed", p.name)
	}
	var exitErr *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exitErr) {
		t.Logf("realpeers: %s: %v", p.name, p.err)
	}
}

// fileExists is true for an existing regular file or folder.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
