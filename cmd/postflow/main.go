// Command postflow is PostFlow's single binary. Its subcommands are the
// roles it plays: `dev` runs everything in one process with an embedded
// stack; `api` and `worker` are the production processes, scaled apart;
// `keygen` prints a fresh TOKEN_ENCRYPTION_KEY.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/postflow/postflow/internal/app"
	"github.com/postflow/postflow/internal/config"
)

const usage = `PostFlow publishes posts to social networks, durably, on Temporal.

Usage:
  postflow dev [flags]   run everything in one process: embedded Temporal (+ Web UI),
                         MongoDB-compatible store and Redis, the API and the worker
  postflow api           serve the HTTP API (production)
  postflow worker        run the Temporal worker (production)
  postflow keygen        print a new TOKEN_ENCRYPTION_KEY

Configuration is read from the environment; see README.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code, so that tests
// can drive it.
func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch args[0] {
	case "dev":
		err = runDev(ctx, args[1:], environ, stdout, stderr)
	case "api", "worker":
		err = runRole(ctx, args[0], environ, stdout)
	case "keygen":
		err = keygen(stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "postflow: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		// One line per problem (configuration errors come all at once,
		// joined), each saying which command it stopped.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "postflow %s: %s\n", args[0], line)
		}
		return 1
	}
	return 0
}

func runDev(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postflow dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := app.DevOptions{Environ: environ, Out: stdout}
	fs.StringVar(&opts.DataDir, "data-dir", ".postflow", "folder for the embedded stack's data and the generated dev secrets")
	fs.IntVar(&opts.TemporalPort, "temporal-port", 7233, "Temporal frontend gRPC port")
	fs.IntVar(&opts.UIPort, "ui-port", 8233, "Temporal Web UI port (-1: no UI)")
	fs.IntVar(&opts.MongoPort, "mongo-port", 27017, "embedded MongoDB-compatible server port (unless MONGODB_URI is set)")
	fs.IntVar(&opts.RedisPort, "redis-port", 6379, "embedded Redis-compatible server port (unless REDIS_URL is set)")
	fs.BoolVar(&opts.NoWorker, "no-worker", false, "leave the worker out, to run `postflow worker` as a process of its own")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return app.RunDev(ctx, opts)
}

// runRole runs a production process; its logs go to stdout, where a
// container platform collects them.
func runRole(ctx context.Context, role string, environ []string, stdout io.Writer) error {
	r := config.RoleAPI
	if role == "worker" {
		r = config.RoleWorker
	}
	cfg, err := config.Load(environ, r)
	if err != nil {
		return err
	}
	logger := app.NewLogger(stdout, cfg)
	if r == config.RoleAPI {
		return app.RunAPI(ctx, cfg, logger)
	}
	return app.RunWorker(ctx, cfg, logger)
}

// keygen prints 32 random bytes as base64, the form TOKEN_ENCRYPTION_KEY
// takes.
func keygen(w io.Writer) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, base64.StdEncoding.EncodeToString(key))
	return err
}
