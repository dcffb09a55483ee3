package devstack_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/postflow/postflow/internal/config"
	"github.com/postflow/postflow/internal/devstack"
	"github.com/postflow/postflow/internal/temporalconn"
	"github.com/postflow/postflow/workflows"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestStackRestartKeepsData starts the whole embedded stack, uses each
// server through its real client, stops it, starts it again on the same
// folder and checks that nothing was lost.
func TestStackRestartKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := devstack.Options{
		DataDir:          t.TempDir(),
		TemporalPort:     freePort(t),
		UIPort:           freePort(t),
		MongoPort:        freePort(t),
		RedisPort:        freePort(t),
		Namespace:        "default",
		SearchAttributes: workflows.SearchAttributes(),
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}

	stack, err := devstack.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	// MongoDB protocol: a unique index really refuses a duplicate.
	mc := mongoClient(t, stack.MongoURI)
	coll := mc.Database("postflow").Collection("things")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatalf("create index: %v", err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "k", Value: "kept"}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "k", Value: "kept"}}); !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("second insert: err = %v, want a duplicate-key error", err)
	}

	// Redis protocol: a TTL expires on the wall clock, with no one calling
	// anything but the client.
	rc := redisClient(t, stack.RedisURL)
	if err := rc.Set(ctx, "oauth:state:x", "v", 300*time.Millisecond).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if v, err := rc.Get(ctx, "oauth:state:x").Result(); err != nil || v != "v" {
		t.Fatalf("GET before expiry = %q, %v", v, err)
	}
	time.Sleep(700 * time.Millisecond)
	if err := rc.Get(ctx, "oauth:state:x").Err(); err != redis.Nil {
		t.Fatalf("GET after expiry: err = %v, want redis.Nil", err)
	}

	// Temporal: the namespace has PostFlow's search attributes, and a
	// workflow started now must still be there after the restart.
	tc := temporalClient(t, stack.Temporal.Address())
	assertSearchAttributes(ctx, t, tc)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "survives-restart", TaskQueue: "nobody-polls"}, "SomeWorkflow")
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	waitHTTP(ctx, t, stack.Temporal.UIURL()+"/")

	tc.Close()
	_ = mc.Disconnect(ctx)
	_ = rc.Close()
	stack.Stop()

	stack, err = devstack.Start(opts)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer stack.Stop()

	mc = mongoClient(t, stack.MongoURI)
	defer mc.Disconnect(ctx)
	if n, err := mc.Database("postflow").Collection("things").CountDocuments(ctx, bson.D{{Key: "k", Value: "kept"}}); err != nil || n != 1 {
		t.Errorf("after restart: %d documents, %v; want 1", n, err)
	}
	tc = temporalClient(t, stack.Temporal.Address())
	defer tc.Close()
	desc, err := tc.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatalf("after restart: describe workflow: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("after restart: workflow status = %v, want running", st)
	}
	assertSearchAttributes(ctx, t, tc)

	// The worker's registration adds what a namespace lacks, once.
	want := map[string]enumspb.IndexedValueType{"PostflowTestExtra": enumspb.INDEXED_VALUE_TYPE_KEYWORD}
	for k, v := range workflows.SearchAttributes() {
		want[k] = v
	}
	added, err := temporalconn.EnsureSearchAttributes(ctx, tc, "default", want)
	if err != nil || len(added) != 1 || added[0] != "PostflowTestExtra" {
		t.Errorf("EnsureSearchAttributes = %v, %v; want [PostflowTestExtra]", added, err)
	}
	if added, err := temporalconn.EnsureSearchAttributes(ctx, tc, "default", want); err != nil || len(added) != 0 {
		t.Errorf("second EnsureSearchAttributes = %v, %v; want nothing added", added, err)
	}
	clash := map[string]enumspb.IndexedValueType{"PostflowTestExtra": enumspb.INDEXED_VALUE_TYPE_INT}
	if _, err := temporalconn.EnsureSearchAttributes(ctx, tc, "default", clash); err == nil {
		t.Error("EnsureSearchAttributes accepted a type clash")
	}
}

func assertSearchAttributes(ctx context.Context, t *testing.T, tc client.Client) {
	t.Helper()
	res, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatalf("list search attributes: %v", err)
	}
	for name, typ := range workflows.SearchAttributes() {
		if got := res.GetCustomAttributes()[name]; got != typ {
			t.Errorf("search attribute %s = %v, want %v", name, got, typ)
		}
	}
}

func mongoClient(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return redis.NewClient(opts)
}

func temporalClient(t *testing.T, addr string) client.Client {
	t.Helper()
	c, err := temporalconn.Dial(config.Temporal{Address: addr, Namespace: "default"}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitHTTP polls url until it answers 200: the UI starts in the background.
func waitHTTP(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never answered 200 (last error %v)", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A taken port is an error naming it and its flag, not Temporal ending
// the process from inside its listener.
func TestTakenPortIsAnError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = devstack.StartTemporal(devstack.TemporalOptions{Port: port, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("--temporal-port) port %d is taken", port)) {
		t.Fatalf("err = %v, want the taken frontend port named", err)
	}
}
