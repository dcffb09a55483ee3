package mastodon

import (
	"sync"
	"time"
)

// cache is a small map of what instances said (their limits, their PKCE
// support, the form of their post URLs), each entry good until a time.
// It lives in a Provider; at most max entries are kept, the expired
// dropped first.
type cache[V any] struct {
	mu  sync.Mutex
	max int
	m   map[string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v     V
	until time.Time
}

func newCache[V any](max int) *cache[V] {
	return &cache[V]{max: max, m: map[string]cacheEntry[V]{}}
}

// get returns the entry for key, whether it is still good, and whether
// there is one at all (stale values serve when an instance is down).
func (c *cache[V]) get(key string, now time.Time) (v V, fresh, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e.v, ok && now.Before(e.until), ok
}

// put keeps v for key until until.
func (c *cache[V]) put(key string, v V, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, known := c.m[key]; !known && len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = cacheEntry[V]{v: v, until: until}
}
