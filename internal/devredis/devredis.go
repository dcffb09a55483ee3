// Package devredis is an embedded Redis-protocol server for development and
// tests on machines without Redis: miniredis, with key TTLs that expire on
// the wall clock.
package devredis

import (
	"fmt"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Redis is an embedded Redis-protocol server for development. PostFlow keeps
// only short-lived state in Redis (OAuth states, 600 s; Idempotency-Keys,
// 24 h), so an in-memory server is enough; its contents do not survive a
// restart, which in development costs at most a retry that runs again.
type Redis struct {
	srv  *miniredis.Miniredis
	stop chan struct{}
	wg   sync.WaitGroup
}

// ttlTick is how often key TTLs are brought up to date with the clock.
const ttlTick = 100 * time.Millisecond

// Start serves the Redis protocol on addr (host:port).
func Start(addr string) (*Redis, error) {
	srv := miniredis.NewMiniRedis()
	if err := srv.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("redis: start on %s: %w", addr, err)
	}
	r := &Redis{srv: srv, stop: make(chan struct{})}
	r.wg.Add(1)
	go r.expire()
	return r, nil
}

// expire advances miniredis's TTLs with the wall clock. miniredis is made
// for unit tests and only counts TTLs down when told to; without this an
// OAuth state would never expire in dev.
func (r *Redis) expire() {
	defer r.wg.Done()
	t := time.NewTicker(ttlTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.srv.SetTime(now)
			r.srv.FastForward(now.Sub(last))
			last = now
		}
	}
}

// URL is a redis:// URL that reaches the server.
func (r *Redis) URL() string { return "redis://" + r.srv.Addr() }

// Stop closes the server.
func (r *Redis) Stop() {
	close(r.stop)
	r.wg.Wait()
	r.srv.Close()
}
