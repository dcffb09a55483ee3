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
	return &workerProcess{cmd: cmd, lines: bufio.NewScanner(out)}, nil
}

// heap asks the worker for its live heap after a GC.
func (w *workerProcess) heap() (uint64, error) {
	if err := w.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return 0, err
	}
	if !w.lines.Scan() {
		return 0, fmt.Errorf("worker: no heap figure: %v", w.lines.Err())
	}
	v, ok := strings.CutPrefix(w.lines.Text(), "heap ")
	if !ok {
		return 0, fmt.Errorf("worker said %q", w.lines.Text())
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
