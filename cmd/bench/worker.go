package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/postflow/postflow/internal/app"
	"github.com/postflow/postflow/internal/config"
)

// The PostFlow worker runs in a process of its own (this binary, with
// -worker-child), so that its memory is measured apart from the embedded
// Temporal server, FerretDB and the API, whose caches grow with N by
// design.

// runWorkerChild is the child: a `postflow worker` that, on SIGUSR1,
// collects garbage and prints its live heap.
func runWorkerChild() error {
	cfg, err := config.Load(os.Environ(), config.RoleWorker)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	// Until now a SIGUSR1 was ignored (the runtime catches it and does
	// nothing): the parent waits for this line before it asks.
	fmt.Println("ready")
	if path := os.Getenv(workerProfileEnv); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	go func() {
		for range usr1 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Printf("heap %d\n", m.HeapAlloc)
		}
	}()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	return app.RunWorker(ctx, cfg, logger)
}

// workerProfileEnv names the file the child writes its CPU profile to.
const workerProfileEnv = "POSTFLOW_BENCH_WORKER_CPUPROFILE"

// workerProcess is the parent's handle on the child.
type workerProcess struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

func startWorker(env []string, stderr io.Writer) (*workerProcess, error) {
	cmd := exec.Command(os.Args[0], "-worker-child")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &workerProcess{cmd: cmd, lines: bufio.NewScanner(out)}
	if line, err := w.nextLine(2 * time.Minute); err != nil || line != "ready" {
		w.stop()
		return nil, fmt.Errorf("worker did not start (%q, %v)", line, err)
	}
	return w, nil
}

// nextLine is the worker's next line of output. A bench that would wait
// forever is worse than one that stops: past d it gives up (the scan goes
// on in the background, so the worker is not to be asked again).
func (w *workerProcess) nextLine(d time.Duration) (string, error) {
	line := make(chan string, 1)
	go func() {
		if w.lines.Scan() {
			line <- w.lines.Text()
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			return "", fmt.Errorf("worker: no more output (%v); see dev.log", w.lines.Err())
		}
		return l, nil
	case <-time.After(d):
		return "", fmt.Errorf("worker: no output within %s; see dev.log", d)
	}
}

// heap asks the worker for its live heap after a GC.
func (w *workerProcess) heap() (uint64, error) {
	if err := w.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return 0, err
	}
	text, err := w.nextLine(time.Minute)
	if err != nil {
		return 0, err
	}
	v, ok := strings.CutPrefix(text, "heap ")
	if !ok {
		return 0, fmt.Errorf("worker said %q", text)
	}
	return strconv.ParseUint(v, 10, 64)
}

func (w *workerProcess) stop() {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
	}
}

// kill ends the worker at once with SIGKILL, as a crash would: no
// activity it runs gets to finish or report.
func (w *workerProcess) kill() error {
	if err := w.cmd.Process.Kill(); err != nil {
		return err
	}
	_ = w.cmd.Wait() // "signal: killed"
	return nil
}

// cpuWithParent is the CPU time (user and system) the worker and this
// process have used so far, from /proc; zero where there is none. With it
// a round's cost per run shows apart from how busy the machine was.
func (w *workerProcess) cpuWithParent() time.Duration {
	self, err1 := procCPU(os.Getpid())
	child, err2 := procCPU(w.cmd.Process.Pid)
	if err1 != nil || err2 != nil {
		return 0
	}
	return self + child
}

// procCPU reads utime and stime of /proc/<pid>/stat, in clock ticks of
// 10 ms (USER_HZ is 100 on every Linux that Go runs on).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
