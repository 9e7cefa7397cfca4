package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Concurrency caps how many things (open connections, WebSockets, in-flight
// requests) each key may hold at once (HANDED F21). A key's slot is taken by
// Acquire and given back by Release; the count is exact, so closing one of two
// sockets lets the next Acquire succeed immediately.
//
// Memory is bounded: a key is stored only while its count is above zero (the
// entry is deleted when it reaches zero), and at most Options.MaxKeys keys
// are held. When a shard is full, Acquire for a new key fails: every held key
// stands for at least one open connection, and forgetting one would let its
// holder exceed the cap. It is safe for concurrent use.
type Concurrency struct {
	max     atomic.Int64
	shards  []paddedConcShard
	shift   uint
	seed    maphash.Seed
	perCap  int // keys per shard
	invalid atomic.Uint64
}

type concShard struct {
	mu                                  sync.Mutex
	held                                map[Key]int32
	inUse                               int // sum of held
	acquired, refused, full, unbalanced uint64
}

type paddedConcShard struct {
	concShard
	_ [128 - unsafe.Sizeof(concShard{})%128]byte
}

// ConcurrencyStats is a snapshot of a Concurrency's counters.
type ConcurrencyStats struct {
	Keys     int    // keys with at least one slot held
	Capacity int    // bound on Keys
	InUse    int    // slots held over all keys
	Acquired uint64 // successful Acquire calls
	Refused  uint64 // Acquire calls refused because the key was at its cap
	// Full counts Acquire calls refused because the key's shard held its
	// share of MaxKeys other keys.
	Full uint64
	// Unbalanced counts Release calls for a key holding no slot (a caller
	// bug; ignored so counts never go negative).
	Unbalanced  uint64
	InvalidKeys uint64 // Acquire calls with the zero Key, all refused
}

// NewConcurrency builds a per-key concurrency limiter allowing max (> 0)
// simultaneous holders per key. opts.MaxKeys and opts.Shards are as for
// NewLimiter; Clock is unused. Errors wrap ErrInvalidOptions.
func NewConcurrency(max int, opts Options) (*Concurrency, error) {
	if max <= 0 || max > 1<<30 {
		return nil, fmt.Errorf("%w: concurrency max %d must be in 1..2^30", ErrInvalidOptions, max)
	}
	shards, nb, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	c := &Concurrency{
		shards: make([]paddedConcShard, shards),
		shift:  uint(64 - bits.TrailingZeros(uint(shards))),
		seed:   maphash.MakeSeed(),
		perCap: nb * ways,
	}
	c.max.Store(int64(max))
	for i := range c.shards {
		c.shards[i].held = make(map[Key]int32)
	}
	return c, nil
}

// SetMax changes the per-key cap (hot reload). Holders above a lowered cap
// are not disturbed; new Acquires fail until the count drops below it. The
// error wraps ErrInvalidOptions and leaves the old cap in force.
func (c *Concurrency) SetMax(max int) error {
	if max <= 0 || max > 1<<30 {
		return fmt.Errorf("%w: concurrency max %d must be in 1..2^30", ErrInvalidOptions, max)
	}
	c.max.Store(int64(max))
	return nil
}

func (c *Concurrency) shard(k Key) *concShard {
	return &c.shards[maphash.Comparable(c.seed, k)>>c.shift].concShard
}

// Acquire takes one slot for k and reports whether it got one. A true result
// must be paired with exactly one Release(k). It fails when k already holds
// max slots, when k's shard is full of other keys, or for the zero Key.
func (c *Concurrency) Acquire(k Key) bool {
	if !k.IsValid() {
		c.invalid.Add(1)
		return false
	}
	limit := int32(c.max.Load())
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.held[k]
	switch {
	case n >= limit:
		s.refused++
		return false
	case !ok && len(s.held) >= c.perCap:
		s.full++
		return false
	}
	s.held[k] = n + 1
	s.inUse++
	s.acquired++
	return true
}

// Release gives back one slot of k; when k's count reaches zero its entry is
// deleted. Releasing a key that holds nothing is ignored and counted in
// ConcurrencyStats.Unbalanced.
func (c *Concurrency) Release(k Key) {
	if !k.IsValid() {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := s.held[k]; {
	case n <= 0:
		s.unbalanced++
	case n == 1:
		delete(s.held, k)
		s.inUse--
	default:
		s.held[k] = n - 1
		s.inUse--
	}
}

// InUse returns the number of slots k holds.
func (c *Concurrency) InUse(k Key) int {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.held[k])
}

// Len returns the number of keys holding at least one slot.
func (c *Concurrency) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i].concShard
		s.mu.Lock()
		n += len(s.held)
		s.mu.Unlock()
	}
	return n
}

// Stats returns a snapshot of the counters, locking one shard at a time.
func (c *Concurrency) Stats() ConcurrencyStats {
	st := ConcurrencyStats{Capacity: c.perCap * len(c.shards), InvalidKeys: c.invalid.Load()}
	for i := range c.shards {
		s := &c.shards[i].concShard
		s.mu.Lock()
		st.Keys += len(s.held)
		st.InUse += s.inUse
		st.Acquired += s.acquired
		st.Refused += s.refused
		st.Full += s.full
		st.Unbalanced += s.unbalanced
		s.mu.Unlock()
	}
	return st
}
