package proxy

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

// TestCacheBounds checks the store's bounds: entries and bytes stay within
// the configuration, the least recently used go first, and a flood of
// uncacheable URLs (markers) never evicts a stored page.
func TestCacheBounds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	page := func(key string, size int) *entry {
		return &entry{key: key, status: 200, body: make([]byte, size), fetched: now, fresh: now.Add(time.Minute),
			staleUntil: now.Add(time.Hour), size: int64(size)}
	}
	tests := []struct {
		name string
		cfg  CacheConfig
		run  func(t *testing.T, c *Cache)
	}{
		{
			name: "entry bound",
			cfg:  CacheConfig{MaxEntries: 64, MaxBytes: 1 << 20, MaxObjectBytes: 1 << 10},
			run: func(t *testing.T, c *Cache) {
				for i := range 1000 {
					c.put(page("k"+strconv.Itoa(i), 10))
				}
				if n, _ := c.Len(); n > 64 {
					t.Errorf("%d entries, bound 64", n)
				}
			},
		},
		{
			name: "byte bound",
			cfg:  CacheConfig{MaxEntries: 10000, MaxBytes: 64 << 10, MaxObjectBytes: 1 << 10},
			run: func(t *testing.T, c *Cache) {
				for i := range 1000 {
					c.put(page("k"+strconv.Itoa(i), 1000))
				}
				if _, b := c.Len(); b > 64<<10 {
					t.Errorf("%d bytes, bound %d", b, 64<<10)
				}
			},
		},
		{
			name: "least recently used goes first",
			cfg:  CacheConfig{MaxEntries: cacheShards * 2, MaxBytes: 1 << 20, MaxObjectBytes: 1 << 10},
			run: func(t *testing.T, c *Cache) {
				c.put(page("hot", 10))
				for i := range 200 {
					if c.get([]byte("hot"), now.Add(time.Duration(i)*bumpEvery)) == nil {
						t.Fatalf("hot entry evicted after %d inserts", i)
					}
					c.put(page("cold"+strconv.Itoa(i), 10))
				}
			},
		},
		{
			name: "uncacheable markers never evict pages",
			cfg:  CacheConfig{MaxEntries: cacheShards, MaxBytes: 1 << 20, MaxObjectBytes: 1 << 10},
			run: func(t *testing.T, c *Cache) {
				c.put(page("home", 10))
				for i := range 10000 {
					c.markPass("/?rnd="+strconv.Itoa(i), now)
				}
				if c.get([]byte("home"), now) == nil {
					t.Fatal("markers evicted a stored page")
				}
				markers := 0
				for i := range c.shards {
					markers += len(c.shards[i].pass)
				}
				if markers > cacheShards {
					t.Errorf("%d markers, bound %d", markers, cacheShards)
				}
			},
		},
		{
			name: "entries past their stale window are dropped",
			cfg:  CacheConfig{MaxEntries: 10, MaxBytes: 1 << 20, MaxObjectBytes: 1 << 10},
			run: func(t *testing.T, c *Cache) {
				c.put(page("old", 10))
				if c.get([]byte("old"), now.Add(2*time.Hour)) != nil {
					t.Fatal("served past the stale window")
				}
				if n, b := c.Len(); n != 0 || b != 0 {
					t.Errorf("Len %d/%d after expiry", n, b)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCache(tt.cfg, func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			tt.run(t, c)
		})
	}
}

func TestNewCacheErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  CacheConfig
	}{
		{name: "no entries", cfg: CacheConfig{MaxBytes: 1 << 20, MaxObjectBytes: 1}},
		{name: "no object size", cfg: CacheConfig{MaxEntries: 1, MaxBytes: 1 << 20}},
		{name: "object larger than the cache", cfg: CacheConfig{MaxEntries: 1, MaxBytes: 10, MaxObjectBytes: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewCache(tt.cfg, nil); !errors.Is(err, ErrCacheConfig) {
				t.Errorf("err %v, want ErrCacheConfig", err)
			}
		})
	}
}
