// Package redistest gives tests a Redis client: the real Redis named by
// POSTFLOW_TEST_REDIS_URL (CI starts one), or else the embedded dev server,
// so that `make test` also passes on a machine with Go only.
package redistest

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/postflow/postflow/internal/devredis"
)

// EnvVar names the Redis that integration tests use when it is set.
const EnvVar = "POSTFLOW_TEST_REDIS_URL"

// Client returns a client that is closed when t ends, and whether it talks
// to a real Redis.
func Client(t testing.TB) (c *redis.Client, real bool) {
	t.Helper()
	url := os.Getenv(EnvVar)
	if url == "" {
		srv, err := devredis.Start("127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		t.Cleanup(srv.Stop)
		url = srv.URL()
		t.Logf("redistest: %s is not set; using the embedded Redis-protocol server", EnvVar)
	} else {
		real = true
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("redistest: %s: %v", EnvVar, err)
	}
	c = redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: ping %s: %v", url, err)
	}
	return c, real
}
