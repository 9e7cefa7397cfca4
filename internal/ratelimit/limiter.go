package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// DefaultMaxKeys is Options.MaxKeys when left 0: 262,144 keys, 8 MiB of table.
const DefaultMaxKeys = 1 << 18

// BytesPerKey is the table memory per key slot: a 24-byte Key and an 8-byte
// TAT. The whole table (MaxKeys × BytesPerKey) is allocated by NewLimiter and
// never grows. For comparison nginx's limit_req keeps 128 bytes per key on
// 64-bit platforms.
const BytesPerKey = int(unsafe.Sizeof(entry{}))

// ways is the associativity of a bucket: the number of slots a key may occupy
// and the sample size eviction chooses from. 8 × 32 bytes = four cache lines.
const ways = 8

// maxKeysLimit bounds Options.MaxKeys (128 GiB of table) so bucket indexes
// fit the 32-bit multiply-shift reduction.
const maxKeysLimit = 1 << 32

// maxDefaultShards caps the default shard count.
const maxDefaultShards = 256

// Options configures a Limiter or a Concurrency. The zero value is usable.
type Options struct {
	// MaxKeys bounds the number of keys held, and so memory: MaxKeys ×
	// BytesPerKey for a Limiter. 0 selects DefaultMaxKeys; otherwise it must be
	// in 8 (one bucket) .. 2^32. The usable capacity is MaxKeys rounded down to
	// a multiple of 8 × Shards.
	MaxKeys int
	// Shards is the number of independently locked table shards: a power of
	// two with Shards × 8 ≤ MaxKeys. 0 selects a default of 4 × GOMAXPROCS
	// rounded up to a power of two, at most 256, reduced to fit MaxKeys.
	Shards int
	// Clock returns monotonic nanoseconds relative to any fixed origin; Allow
	// reads it once per call. nil selects time.Since(a start instant), which
	// uses Go's monotonic clock and never the wall clock (HANDED F10). Only
	// Limiter uses it.
	Clock func() int64
}

// resolve fills defaults and checks o, returning shards and buckets per shard.
func (o *Options) resolve() (shards, bucketsPerShard int, err error) {
	if o.MaxKeys == 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.MaxKeys < ways || o.MaxKeys > maxKeysLimit {
		return 0, 0, fmt.Errorf("%w: max keys %d must be in %d..%d", ErrInvalidOptions, o.MaxKeys, ways, maxKeysLimit)
	}
	shards = o.Shards
	switch {
	case shards == 0:
		shards = 1 << bits.Len(uint(4*runtime.GOMAXPROCS(0)-1))
		shards = min(shards, maxDefaultShards)
		for shards > 1 && shards*ways > o.MaxKeys {
			shards /= 2
		}
	case shards < 0 || shards&(shards-1) != 0:
		return 0, 0, fmt.Errorf("%w: shards %d must be a power of two", ErrInvalidOptions, shards)
	case shards*ways > o.MaxKeys:
		return 0, 0, fmt.Errorf("%w: %d shards need max keys ≥ %d, have %d", ErrInvalidOptions, shards, shards*ways, o.MaxKeys)
	}
	if o.Clock == nil {
		o.Clock = monotonicClock()
	}
	return shards, o.MaxKeys / ways / shards, nil
}

// Decision is the outcome of one Allow call.
type Decision struct {
	// Allowed reports whether the request conforms and was counted.
	Allowed bool
	// RetryAfter is, when refused, the exact time until this key's next
	// request would be allowed: > 0 and at most one emission interval
	// (Rate.Interval). 0 when allowed. HTTP callers should use
	// RetryAfterSeconds for the header.
	RetryAfter time.Duration
	// Remaining is how many more requests the key could make at this instant.
	Remaining int
}

// RetryAfterSeconds returns RetryAfter rounded up to whole seconds for an
// HTTP Retry-After header (RFC 9110 §10.2.3): at least 1 when refused, so a
// refusal of a sub-second interval never tells the client "retry after 0"
// (mholt/caddy-ratelimit#22); 0 when allowed.
func (d Decision) RetryAfterSeconds() int {
	if d.Allowed {
		return 0
	}
	return max(1, int((d.RetryAfter+time.Second-1)/time.Second))
}

// Stats is a snapshot of a Limiter's counters since construction.
type Stats struct {
	Keys     int // slots in use, as Len
	Capacity int // usable slots: the bound on Keys
	Allowed  uint64
	Refused  uint64
	// Evictions counts live entries (TAT after now) overwritten because their
	// bucket was full: the least-indebted entry of the 8 went. Reuse of
	// expired slots is free and not counted here.
	Evictions uint64
	// Swept counts expired entries cleared by Sweep or the miss-path sweep.
	Swept uint64
	// InvalidKeys counts calls with the zero Key, all refused.
	InvalidKeys uint64
	// ClockSteps counts backward clock steps rebased and forward returns
	// absorbed by the shards' clock guards.
	ClockSteps uint64
}

type entry struct {
	key Key   // zero Key: empty slot
	tat int64 // theoretical arrival time, effective shard nanoseconds
}

type bucket [ways]entry

type shard struct {
	mu                                 sync.Mutex
	clock                              clockGuard
	buckets                            []bucket
	n                                  int // slots with a non-zero key
	cursor                             int // next bucket for the incremental sweep
	allowed, refused, evictions, swept uint64
}

// paddedShard keeps shards on separate cache lines (128 bytes covers the
// adjacent-line prefetcher) so shard locks do not false-share.
type paddedShard struct {
	shard
	_ [128 - unsafe.Sizeof(shard{})%128]byte
}

// Limiter is a keyed GCRA rate limiter with bounded memory (see the package
// doc and DESIGN.md). It is safe for concurrent use; a decision takes one
// shard mutex and never allocates.
type Limiter struct {
	p        atomic.Pointer[params]
	shards   []paddedShard
	shift    uint   // shard index = hash >> shift
	nb       uint64 // buckets per shard
	seed     maphash.Seed
	clock    func() int64
	capacity int
	invalid  atomic.Uint64
}

// NewLimiter builds a limiter enforcing rate on every key, allocating its
// whole table (see BytesPerKey). Errors wrap ErrInvalidRate or
// ErrInvalidOptions. Validate's warnings are not returned here; config
// loading should surface them.
func NewLimiter(rate Rate, opts Options) (*Limiter, error) {
	p, err := newParams(rate)
	if err != nil {
		return nil, err
	}
	shards, nb, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	l := &Limiter{
		shards:   make([]paddedShard, shards),
		shift:    uint(64 - bits.TrailingZeros(uint(shards))),
		nb:       uint64(nb),
		seed:     maphash.MakeSeed(),
		clock:    opts.Clock,
		capacity: shards * nb * ways,
	}
	l.p.Store(p)
	for i := range l.shards {
		l.shards[i].clock = newClockGuard()
		l.shards[i].buckets = make([]bucket, nb)
	}
	return l, nil
}

// SetRate replaces the rate for all keys (hot reload). Existing keys keep
// their TAT, so a client's debt survives the reload and the new interval and
// burst apply from the next request on; a key whose debt exceeds a smaller new
// burst is treated as having an empty bucket, never as locked out for longer.
// The error wraps ErrInvalidRate and leaves the old rate in force.
func (l *Limiter) SetRate(r Rate) error {
	p, err := newParams(r)
	if err != nil {
		return err
	}
	l.p.Store(p)
	return nil
}

// Rate returns the rate in force, as given to NewLimiter or SetRate.
func (l *Limiter) Rate() Rate { return l.p.Load().rate }

// Allow decides one request for k at the limiter's clock. See AllowAt.
func (l *Limiter) Allow(k Key) Decision { return l.AllowAt(k, l.clock()) }

// AllowAt decides one request for k at time now (nanoseconds on the same
// monotonic scale as Options.Clock; replay passes event time) and, if it is
// allowed, counts it. It is the GCRA virtual scheduling algorithm: with TAT
// the key's theoretical arrival time (now for an unknown key), the request is
// refused when max(TAT, now) + T − now > Burst·T, otherwise TAT becomes
// max(TAT, now) + T. A refused request does not move TAT, so hammering does
// not extend a ban. The zero Key is always refused (and counted in
// Stats.InvalidKeys). A now older than the shard's latest time is clamped to
// it (see DESIGN.md).
func (l *Limiter) AllowAt(k Key, now int64) Decision {
	p := l.p.Load()
	if !k.IsValid() {
		l.invalid.Add(1)
		return Decision{RetryAfter: time.Duration(p.interval)}
	}
	h := maphash.Comparable(l.seed, k)
	s := &l.shards[h>>l.shift].shard
	b := &s.buckets[(uint64(uint32(h))*l.nb)>>32]

	s.mu.Lock()
	now = s.clock.now(now)
	slot := -1
	for i := range b {
		if b[i].key == k {
			slot = i
			break
		}
	}
	tat := now
	if slot >= 0 && b[slot].tat > now {
		tat = min(b[slot].tat, now+p.window) // debt above a lowered burst: empty bucket
	}
	next := tat + p.interval
	if next-now > p.window {
		s.refused++
		s.mu.Unlock()
		return Decision{RetryAfter: time.Duration(next - p.window - now)}
	}
	if slot >= 0 {
		b[slot].tat = next
	} else {
		s.insert(b, k, next, now)
	}
	s.allowed++
	s.mu.Unlock()
	return Decision{Allowed: true, Remaining: int((now + p.window - next) / p.interval)}
}

// insert puts a new key into b: an empty slot, else an expired one (TAT ≤ now,
// equivalent to absent), else the live entry with the smallest TAT. Then it
// sweeps one bucket at the shard cursor. Caller holds s.mu.
func (s *shard) insert(b *bucket, k Key, tat, now int64) {
	victim, free := 0, -1
	for i := range b {
		if b[i].key == (Key{}) {
			free = i
			break
		}
		if b[i].tat < b[victim].tat {
			victim = i
		}
	}
	switch {
	case free >= 0:
		victim = free
		s.n++
	case b[victim].tat > now:
		s.evictions++
	}
	b[victim] = entry{key: k, tat: tat}
	s.sweep(1, now)
}

// sweep clears expired entries in the next n buckets from the cursor and
// returns how many it cleared. Caller holds s.mu.
func (s *shard) sweep(n int, now int64) int {
	cleared := 0
	for range min(n, len(s.buckets)) {
		b := &s.buckets[s.cursor]
		for i := range b {
			if b[i].key != (Key{}) && b[i].tat <= now {
				b[i] = entry{}
				cleared++
			}
		}
		if s.cursor++; s.cursor == len(s.buckets) {
			s.cursor = 0
		}
	}
	s.n -= cleared
	s.swept += uint64(cleared)
	return cleared
}

// Sweep clears expired entries (TAT not after now, which behave exactly like
// absent keys) from the next buckets of every shard, at the limiter's clock.
// See SweepAt.
func (l *Limiter) Sweep(buckets int) int { return l.SweepAt(l.clock(), buckets) }

// SweepAt clears expired entries from the next `buckets` buckets (8 slots
// each) of every shard, locking one shard at a time, and returns the number
// cleared. Sweeping only lowers Len: expired slots are reused by inserts
// anyway. Call it from a control-loop tick with a small budget; a full pass
// takes Stats().Capacity/(8 × shards × buckets) calls, and no call holds a
// lock for more than `buckets` buckets, so it never stalls requests (HANDED
// F11). now is on the AllowAt scale.
func (l *Limiter) SweepAt(now int64, buckets int) int {
	total := 0
	for i := range l.shards {
		s := &l.shards[i].shard
		s.mu.Lock()
		total += s.sweep(buckets, s.clock.now(now))
		s.mu.Unlock()
	}
	return total
}

// Len returns the number of keys held (slots in use, including expired
// entries not yet swept or reused); never more than Stats().Capacity.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i].shard
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// Stats returns a snapshot of the counters, locking one shard at a time.
func (l *Limiter) Stats() Stats {
	st := Stats{Capacity: l.capacity, InvalidKeys: l.invalid.Load()}
	for i := range l.shards {
		s := &l.shards[i].shard
		s.mu.Lock()
		st.Keys += s.n
		st.Allowed += s.allowed
		st.Refused += s.refused
		st.Evictions += s.evictions
		st.Swept += s.swept
		st.ClockSteps += s.clock.steps
		s.mu.Unlock()
	}
	return st
}
