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
		Logger:    slog.New(minLevel{logger.Handler(), slog.LevelWarn}).With("component", "ferretdb"),
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

// minLevel drops records below min before they reach the handler.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
