// Package devmongo is an embedded MongoDB-protocol server for development
// and tests: FerretDB on SQLite files in a folder.
package devmongo

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Mongo is an embedded MongoDB-protocol server: FerretDB on SQLite files in
// a folder. The MongoDB driver talks to it over the real wire protocol, so
// unique indexes, upserts and duplicate-key errors behave as in production.
type Mongo struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// Start serves the MongoDB protocol on addr (host:port) with its data
// in dir.
func Start(addr, dir string, logger *slog.Logger) (*Mongo, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mongo: data folder: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mongo: data folder: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: addr},
		Handler:  "sqlite",
		// FerretDB wants a file: URI that names a folder, with the slash.
		// Immediate transactions take the write lock at BEGIN: a deferred
		// one that upgrades from read to write under concurrent writers
		// fails at once with SQLITE_BUSY, whatever the busy timeout (seen
		// under make bench as 500s from POST /publish).
		// synchronous=NORMAL is safe with WAL: a crash may lose the last
		// commits, never the database, and commits stop waiting on fsync.
		SQLiteURL: "file:" + abs + "/?_txlock=immediate&_pragma=synchronous(normal)",
		Logger:    slog.New(&minLevel{handler: logger.Handler(), min: slog.LevelWarn, drop: routine}).With("component", "ferretdb"),
	})
	if err != nil {
		return nil, fmt.Errorf("mongo: start FerretDB on %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mongo{uri: f.MongoDBURI(), cancel: cancel, done: make(chan struct{})}
	ix := &idIndexer{dir: abs, dbs: map[string]*sql.DB{}}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = f.Run(ctx) // Run only returns once ctx is done.
	}()
	go func() {
		defer wg.Done()
		ix.run(ctx, 2*time.Second, func(err error) { logger.Warn("indexing _id", "component", "ferretdb", "error", err) })
	}()
	go func() { wg.Wait(); close(m.done) }()
	return m, nil
}

// URI is a mongodb:// URI that reaches the server.
func (m *Mongo) URI() string { return m.uri }

// Stop closes the listener and the SQLite files, waiting until both are done.
func (m *Mongo) Stop() {
	m.cancel()
	<-m.done
}

// routine reports FerretDB's warnings that tell a developer nothing: the
// header of every response it logs (the message record that follows says
// what went wrong), and the refusal of endSessions, which the MongoDB
// driver sends when it disconnects and FerretDB v1 does not implement,
// so that every stop of postflow dev printed a wire dump.
func routine(r slog.Record) bool {
	return strings.HasPrefix(r.Message, "Response header: ") ||
		strings.HasPrefix(r.Message, "Response message:") && strings.Contains(r.Message, "no such command: 'endSessions'")
}

// minLevel drops records below min, and those drop reports, before they
// reach the handler.
// FerretDB derives a logger for every SQL statement it runs (Logger.With,
// with the statement and its arguments), and slog's handlers format such
// attributes when derived, not when a record is written: that was about
// 5% of FerretDB's CPU in a profile of make bench, for records that are
// all below min. minLevel keeps the derivations aside and applies them
// only to a record it writes.
type minLevel struct {
	handler slog.Handler
	min     slog.Level
	drop    func(slog.Record) bool            // nil: none
	derive  []func(slog.Handler) slog.Handler // WithAttrs and WithGroup, in order
}

func (h *minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.handler.Enabled(ctx, l)
}

func (h *minLevel) Handle(ctx context.Context, r slog.Record) error {
	if h.drop != nil && h.drop(r) {
		return nil
	}
	out := h.handler
	for _, d := range h.derive {
		out = d(out)
	}
	return out.Handle(ctx, r)
}

func (h *minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.with(func(x slog.Handler) slog.Handler { return x.WithAttrs(attrs) })
}

func (h *minLevel) WithGroup(name string) slog.Handler {
	return h.with(func(x slog.Handler) slog.Handler { return x.WithGroup(name) })
}

func (h *minLevel) with(d func(slog.Handler) slog.Handler) slog.Handler {
	return &minLevel{handler: h.handler, min: h.min, drop: h.drop, derive: append(slices.Clip(h.derive), d)}
}
