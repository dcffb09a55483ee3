// Package mongotest gives tests a real MongoDB-protocol server: the one
// named by POSTFLOW_TEST_MONGODB_URI, or else an embedded FerretDB started
// once per test binary by Main. Each test gets a database of its own.
package mongotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/postflow/postflow/internal/devmongo"
	"github.com/postflow/postflow/internal/mongostore"
)

// EnvVar names the MongoDB that integration tests use when it is set.
const EnvVar = "POSTFLOW_TEST_MONGODB_URI"

var uri string

// Main runs the tests of a package with a MongoDB-protocol server. Call it
// from TestMain.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	uri = os.Getenv(EnvVar)
	if uri == "" {
		dir, err := os.MkdirTemp("", "postflow-mongotest")
		if err != nil {
			fmt.Fprintln(os.Stderr, "mongotest:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		srv, err := devmongo.Start("127.0.0.1:0", dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "mongotest:", err)
			return 1
		}
		defer srv.Stop()
		uri = srv.URI()
	}
	return m.Run()
}

// Store returns a store on a fresh database, dropped when t ends.
func Store(t testing.TB) *mongostore.Store {
	t.Helper()
	if uri == "" {
		t.Fatal("mongotest: call mongotest.Main from TestMain")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s, err := mongostore.Connect(uri)
	if err != nil {
		t.Fatal(err)
	}
	s.DB = s.Client.Database("t_" + hex.EncodeToString(b))
	t.Cleanup(func() {
		ctx := context.Background()
		_ = s.DB.Drop(ctx)
		_ = s.Close(ctx)
	})
	return s
}

// URI is the server's connection string, for a test that needs a client of
// its own (say, with a command monitor). Valid after Main has started.
func URI() string { return uri }
