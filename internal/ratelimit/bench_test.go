package ratelimit

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAllow: one hot key (the cache-hit path).
func BenchmarkAllow(b *testing.B) {
	r := Rate{Count: 1_000_000, Period: time.Second}
	b.Run("clock", func(b *testing.B) {
		l := mustLimiter(b, r, Options{})
		k := addrKey("192.0.2.1")
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(k)
		}
	})
	b.Run("explicit_now", func(b *testing.B) {
		l := mustLimiter(b, r, Options{})
		k := addrKey("192.0.2.1")
		b.ReportAllocs()
		now := int64(0)
		for b.Loop() {
			now += 100
			l.AllowAt(k, now)
		}
	})
}

// BenchmarkAllowDistinct: every call is a new key, 10,000 new keys per
// (simulated) second on a 64Ki-key table at 10/10 s: the insert, expiry
// reuse, eviction and miss-path sweep path.
func BenchmarkAllowDistinct(b *testing.B) {
	keys := make([]Key, 1<<20)
	for i := range keys {
		keys[i] = v6Key(uint64(i))
	}
	l := mustLimiter(b, Rate{Count: 10, Period: 10 * time.Second}, Options{MaxKeys: 1 << 16})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.AllowAt(keys[i&(len(keys)-1)], int64(i)*100*int64(time.Microsecond))
		i++
	}
	st := l.Stats()
	b.ReportMetric(float64(st.Evictions)/float64(i), "evictions/op")
}

// BenchmarkAllowParallel: all cores, default shards, real clock, each
// goroutine cycling over its own 1024 keys.
func BenchmarkAllowParallel(b *testing.B) {
	l := mustLimiter(b, Rate{Count: 1000, Period: time.Second}, Options{})
	var base atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		off := base.Add(1) << 32
		i := uint64(0)
		for pb.Next() {
			l.Allow(v6Key(off | i&1023))
			i++
		}
	})
}

// BenchmarkBytesPerKey inserts 1,000,000 distinct keys into a limiter sized
// for them and reports heap bytes per key held (table included).
func BenchmarkBytesPerKey(b *testing.B) {
	const n = 1_000_000
	var perKey, held float64
	for b.Loop() {
		before := heapAlloc()
		l := mustLimiter(b, Rate{Count: 10, Period: 10 * time.Second}, Options{MaxKeys: n})
		for i := range n {
			l.AllowAt(v6Key(uint64(i)), 0)
		}
		after := heapAlloc()
		held = float64(l.Len())
		perKey = float64(after-before) / held
		runtime.KeepAlive(l)
	}
	b.ReportMetric(perKey, "bytes/key")
	b.ReportMetric(held, "keys")
}

// BenchmarkConcurrency: one Acquire/Release pair on a hot key.
func BenchmarkConcurrency(b *testing.B) {
	c, err := NewConcurrency(8, Options{})
	if err != nil {
		b.Fatal(err)
	}
	k := addrKey("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		if c.Acquire(k) {
			c.Release(k)
		}
	}
}
