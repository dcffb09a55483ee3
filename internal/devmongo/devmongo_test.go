package devmongo

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/internal/lockedbuf"
)

// The _id lookups FerretDB sends to SQLite must use an index: without
// one, every read, update and delete by _id scans the collection.
func TestLookupsByIDUseAnIndex(t *testing.T) {
	dir := t.TempDir()
	_, c := serve(t, dir, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	coll := c.Database("pf").Collection("docs")
	docs := make([]any, 200)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("doc-%d", i)}, {Key: "n", Value: i}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "pf.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = 'docs'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	// FerretDB's own statement (internal/backends/sqlite, Query and
	// UpdateAll): the plan must search an index, not scan the table.
	plan := func() string {
		var id, parent, unused int
		var detail string
		// A real read first: EXPLAIN alone does not notice a newer schema.
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		q := fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table)
		if err := db.QueryRowContext(ctx, q, `"doc-199"`).Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		return detail
	}
	for !strings.Contains(plan(), "USING INDEX") {
		if ctx.Err() != nil {
			t.Fatalf("after 30 s the plan is still %q", plan())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// And the server still answers by _id, for the newest document too.
	var got struct{ N int }
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "doc-199"}}).Decode(&got); err != nil || got.N != 199 {
		t.Fatalf("FindOne doc-199 = %+v, %v", got, err)
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "doc-7"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -7}}}}); err != nil {
		t.Fatal(err)
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "doc-7"}}).Decode(&got); err != nil || got.N != -7 {
		t.Fatalf("after update, doc-7 = %+v, %v", got, err)
	}
	// Mongo clients see only the indexes they made.
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil || len(specs) != 1 || specs[0].Name != "_id_" {
		t.Fatalf("listIndexes = %v, %v; want only _id_", specs, err)
	}
}

// A client that connects, works and disconnects leaves no warning in the
// log: the driver's endSessions, which FerretDB refuses, is routine. A
// command FerretDB refuses for another reason is still reported.
func TestRoutineResponsesStayOutOfTheLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out lockedbuf.Buffer
	m, c := serve(t, t.TempDir(), &out)
	if _, err := c.Database("pf").Collection("docs").InsertOne(ctx, bson.D{{Key: "n", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	// The disconnect's endSessions is answered before Stop returns.
	m.Stop()
	if got := out.String(); got != "" {
		t.Errorf("a client's routine work logged:\n%s", got)
	}

	var refused lockedbuf.Buffer
	_, c = serve(t, t.TempDir(), &refused)
	if err := c.Database("pf").RunCommand(ctx, bson.D{{Key: "noSuchCommand", Value: 1}}).Err(); err == nil {
		t.Fatal("noSuchCommand succeeded")
	}
	got := refused.String()
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "noSuchCommand") || strings.Contains(got, "Response header") {
		t.Errorf("a refused command logged %q; want its response message alone", got)
	}
}

// serve starts FerretDB on dir, logging to log, and a client of it; both
// stop when the test ends, if not before.
func serve(t *testing.T, dir string, log io.Writer) (*Mongo, *mongo.Client) {
	t.Helper()
	m, err := Start("127.0.0.1:0", dir, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	c, err := mongo.Connect(options.Client().ApplyURI(m.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return m, c
}

// FerretDB's logger writes only records at or above its level, with the
// attributes and groups it was derived with, in order, and derives no
// handler for the records it drops.
func TestMinLevelKeepsDerivedAttributes(t *testing.T) {
	var out strings.Builder
	derived := &countDerived{Handler: slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})}
	base := slog.New(&minLevel{handler: derived, min: slog.LevelWarn})
	l := base.With("component", "ferretdb").WithGroup("sql").With("query", "SELECT 1")
	tests := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug, ""},
		{slog.LevelInfo, ""},
		{slog.LevelWarn, `level=WARN msg=slow component=ferretdb sql.query="SELECT 1" sql.ms=12`},
		{slog.LevelError, `level=ERROR msg=slow component=ferretdb sql.query="SELECT 1" sql.ms=12`},
	}
	for _, tt := range tests {
		out.Reset()
		l.Log(context.Background(), tt.level, "slow", "ms", 12)
		if tt.want == "" && derived.n != 0 {
			t.Errorf("%s: the handler was derived %d times for a record below the level", tt.level, derived.n)
		}
		got := strings.TrimSpace(out.String())
		if _, rest, ok := strings.Cut(got, " "); ok {
			got = rest // without the time
		}
		if got != tt.want {
			t.Errorf("%s: wrote %q, want %q", tt.level, got, tt.want)
		}
	}
}

// countDerived counts the loggers derived from it: what minLevel is there
// to spare for records it drops.
type countDerived struct {
	slog.Handler
	n int
}

func (c *countDerived) WithAttrs(attrs []slog.Attr) slog.Handler {
	c.n++
	return c.Handler.WithAttrs(attrs)
}

func (c *countDerived) WithGroup(name string) slog.Handler {
	c.n++
	return c.Handler.WithGroup(name)
}
