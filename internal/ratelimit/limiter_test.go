package ratelimit

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestF07BrowserBurst: "6000 per minute" with the default burst admits a
// 20-request page load, then 200 r/s for 60 s admits 6000 ± 1% on top of what
// is left of the burst, and every refusal carries Retry-After ≥ 1.
func TestF07BrowserBurst(t *testing.T) {
	tests := []struct {
		name          string
		burst         int
		wantPageLoads bool // all 20 simultaneous requests admitted
	}{
		{name: "default burst", burst: 0, wantPageLoads: true},
		{name: "nginx-style burst 1 refuses the page load", burst: 1, wantPageLoads: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Rate{Count: 6000, Period: time.Minute, Burst: tt.burst}
			l := mustLimiter(t, r, Options{MaxKeys: 64})
			k := addrKey("127.0.0.2")
			// Step 2: 20 requests within 5 ms.
			admitted, left := 0, 0
			for i := range 20 {
				d := l.AllowAt(k, int64(i)*ms/4)
				if d.Allowed {
					admitted++
					left = d.Remaining
				}
			}
			if got := admitted == 20; got != tt.wantPageLoads {
				t.Fatalf("page load: %d/20 admitted", admitted)
			}
			if !tt.wantPageLoads {
				return
			}
			// Step 3: 200 r/s for 60 s.
			admitted = 0
			start := 5 * ms
			for i := range 200 * 60 {
				now := start + int64(i)*5*ms
				d := l.AllowAt(k, now)
				if d.Allowed {
					admitted++
					continue
				}
				if d.RetryAfter <= 0 || d.RetryAfter > r.Interval() || d.RetryAfterSeconds() < 1 {
					t.Fatalf("at %v refused with RetryAfter %v (%d s)", time.Duration(now), d.RetryAfter, d.RetryAfterSeconds())
				}
			}
			if want := 6000 + left; admitted < want-60 || admitted > want+60 {
				t.Fatalf("admitted %d in 60 s, want 6000 ± 1%% + %d burst left", admitted, left)
			}
		})
	}
}

// TestF08ConcurrentExact: 1000 goroutines fire at one key of 70/100 s at the
// same instant; exactly 70 are admitted, and every refusal carries the real
// time until the next token.
func TestF08ConcurrentExact(t *testing.T) {
	r := Rate{Count: 70, Period: 100 * time.Second}
	tests := []struct {
		name    string
		shards  int
		maxKeys int
	}{
		{name: "one shard", shards: 1, maxKeys: 8},
		{name: "default shards", shards: 0, maxKeys: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := mustLimiter(t, r, Options{MaxKeys: tt.maxKeys, Shards: tt.shards})
				k := addrKey("127.0.0.2")
				var allowed atomic.Int64
				retry := make(chan time.Duration, 1000)
				var wg sync.WaitGroup
				for range 1000 {
					wg.Go(func() {
						d := l.Allow(k)
						if d.Allowed {
							allowed.Add(1)
							return
						}
						retry <- d.RetryAfter
					})
				}
				wg.Wait()
				close(retry)
				if got := allowed.Load(); got != 70 {
					t.Fatalf("admitted %d, want exactly 70", got)
				}
				var ra time.Duration
				for d := range retry {
					if d <= 0 || d > 100*time.Second {
						t.Fatalf("RetryAfter %v out of (0, 100s]", d)
					}
					ra = d
				}
				if ra != r.Interval() {
					t.Fatalf("RetryAfter %v, want the interval %v (all fired at one instant)", ra, r.Interval())
				}
				// RetryAfter is the real time until a token: 1 ns early is
				// refused, on time is admitted, and only one.
				advance(ra - 1)
				if d := l.Allow(k); d.Allowed || d.RetryAfter != 1 {
					t.Fatalf("1 ns early: %+v", d)
				}
				advance(1)
				if d := l.Allow(k); !d.Allowed {
					t.Fatalf("on time: %+v", d)
				}
				if d := l.Allow(k); d.Allowed {
					t.Fatalf("second after one token: %+v", d)
				}
			})
		})
	}
}

// advance moves a synctest bubble's fake clock on by d.
func advance(d time.Duration) {
	<-time.After(d)
	synctest.Wait()
}

// TestF08RaceRealClock runs the F08 race outside a bubble, with a shared
// explicit instant, so the race detector sees real interleavings.
func TestF08RaceRealClock(t *testing.T) {
	l := mustLimiter(t, Rate{Count: 70, Period: 100 * time.Second}, Options{MaxKeys: 1024, Shards: 4})
	k := addrKey("127.0.0.2")
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			for range 5 {
				if l.AllowAt(k, 50*ms).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 70 {
		t.Fatalf("admitted %d, want exactly 70", got)
	}
}

// TestF11KeyFlood: 2,000,000 distinct keys in 60 s against a bounded table.
// Len never exceeds the bound, the heap does not grow, an abusive 100 r/s
// client on 10/10 s is refused ≥ 89 % in every second, a compliant 1 r/s
// client is never refused, and one sweep pass after the idle TTL empties it.
func TestF11KeyFlood(t *testing.T) {
	flood := 2_000_000
	if testing.Short() {
		flood = 200_000
	}
	tests := []struct {
		name    string
		maxKeys int
		shards  int
	}{
		{name: "64Ki keys, default shards", maxKeys: 1 << 16},
		{name: "1Ki keys, one shard", maxKeys: 1 << 10, shards: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Rate{Count: 10, Period: 10 * time.Second}
			l := mustLimiter(t, r, Options{MaxKeys: tt.maxKeys, Shards: tt.shards})
			abuser, good := addrKey("127.0.0.2"), addrKey("127.0.0.3")
			heapBefore := heapAlloc()

			step := 60 * sec / int64(flood) // flood spacing
			var abSent, abAdmitted int
			for i := range flood {
				now := int64(i) * step
				newSecond := i == 0 || now/sec != (now-step)/sec
				if newSecond && i > 0 { // judge the second that just ended
					if float64(abSent-abAdmitted)/float64(abSent) < 0.89 {
						t.Fatalf("second %d: abuser refused only %d of %d", now/sec-1, abSent-abAdmitted, abSent)
					}
					if n := l.Len(); n > tt.maxKeys {
						t.Fatalf("Len %d > MaxKeys %d", n, tt.maxKeys)
					}
					abSent, abAdmitted = 0, 0
				}
				l.AllowAt(v6Key(uint64(i)), now)
				if i == 0 || now/(10*ms) != (now-step)/(10*ms) { // 100 r/s
					abSent++
					if l.AllowAt(abuser, now).Allowed {
						abAdmitted++
					}
				}
				if newSecond { // 1 r/s
					if d := l.AllowAt(good, now); !d.Allowed {
						t.Fatalf("compliant client refused at %v: %+v", time.Duration(now), d)
					}
				}
			}
			st := l.Stats()
			if st.Evictions == 0 {
				t.Fatalf("no evictions: the table was never under pressure (%+v)", st)
			}
			if grown := int64(heapAlloc()) - int64(heapBefore); grown > 1<<20 {
				t.Fatalf("heap grew by %d bytes during the flood", grown)
			}
			// Idle TTL (Burst·T = 10 s) later, one sweep pass empties the table.
			end := 60*sec + 10*sec
			l.SweepAt(end, st.Capacity)
			if n := l.Len(); n != 0 {
				t.Fatalf("Len %d after idle TTL and one sweep pass, want 0", n)
			}
		})
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestF06PrefixKey: 10,000 requests from random /128s inside one /64 over
// 60 s are limited together when keyed by the /64, while a neighbouring /64
// is unaffected. Keyed per address, the same traffic walks straight through,
// which is the evasion F06 describes.
func TestF06PrefixKey(t *testing.T) {
	tests := []struct {
		name     string
		key      func(netip.Addr) Key
		min, max int
	}{
		{name: "keyed by /64", key: func(a netip.Addr) Key { return KeyFromPrefix(netip.PrefixFrom(a, 64)) }, min: 100, max: 200},
		{name: "keyed by /48", key: func(a netip.Addr) Key { return KeyFromPrefix(netip.PrefixFrom(a, 48)) }, min: 100, max: 200},
		{name: "keyed by /128 is evaded", key: KeyFromAddr, min: 10_000, max: 10_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustLimiter(t, Rate{Count: 100, Period: time.Minute}, Options{MaxKeys: 1 << 15})
			rng := rand.New(rand.NewPCG(1, 2))
			base := netip.MustParsePrefix("fd00:64::/64").Addr().As16()
			admitted := 0
			for i := range 10_000 {
				b := base
				for j := 8; j < 16; j++ {
					b[j] = byte(rng.Uint32())
				}
				if l.AllowAt(tt.key(netip.AddrFrom16(b)), int64(i)*6*ms).Allowed {
					admitted++
				}
			}
			if admitted < tt.min || admitted > tt.max {
				t.Fatalf("admitted %d, want %d..%d", admitted, tt.min, tt.max)
			}
			if !l.AllowAt(tt.key(netip.MustParseAddr("fd00:65::1")), 60*sec).Allowed {
				t.Fatal("unrelated prefix fd00:65::/64 refused")
			}
		})
	}
}

// TestSetRateKeepsState: a hot reload keeps every key's TAT; the new rate
// applies to the next request.
func TestSetRateKeepsState(t *testing.T) {
	old := Rate{Count: 10, Period: 10 * time.Second}
	tests := []struct {
		name      string
		next      Rate
		wantRetry time.Duration // RetryAfter of the first request after reload, 0 = allowed
	}{
		{name: "same rate: still refused", next: old, wantRetry: time.Second},
		{name: "double rate: debt of 10 s now needs 0.5 s", next: Rate{Count: 20, Period: 10 * time.Second}, wantRetry: 500 * time.Millisecond},
		{name: "smaller burst: debt clamped to an empty bucket", next: Rate{Count: 10, Period: 10 * time.Second, Burst: 2}, wantRetry: time.Second},
		{name: "bigger burst: room now", next: Rate{Count: 10, Period: 10 * time.Second, Burst: 11}, wantRetry: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustLimiter(t, old, Options{MaxKeys: 64})
			k := addrKey("192.0.2.1")
			for range 10 {
				if !l.AllowAt(k, 0).Allowed {
					t.Fatal("burst refused")
				}
			}
			if err := l.SetRate(tt.next); err != nil {
				t.Fatal(err)
			}
			if l.Rate() != tt.next {
				t.Fatalf("Rate() = %v", l.Rate())
			}
			d := l.AllowAt(k, 0)
			if got := time.Duration(0); !d.Allowed {
				got = d.RetryAfter
				if got != tt.wantRetry {
					t.Fatalf("after reload: %+v, want RetryAfter %v", d, tt.wantRetry)
				}
			} else if tt.wantRetry != 0 {
				t.Fatalf("after reload allowed %+v, want RetryAfter %v", d, tt.wantRetry)
			}
			if l.Len() != 1 {
				t.Fatalf("Len %d after reload", l.Len())
			}
		})
	}
	l := mustLimiter(t, old, Options{MaxKeys: 64})
	if err := l.SetRate(Rate{}); !errors.Is(err, ErrInvalidRate) || l.Rate() != old {
		t.Fatalf("SetRate(invalid) = %v, rate now %v", err, l.Rate())
	}
}

// TestRetryAfterIsRealTime: for several rates, once a key is refused, asking
// again RetryAfter−1 ns later is refused and exactly RetryAfter later allowed.
func TestRetryAfterIsRealTime(t *testing.T) {
	tests := []struct {
		name string
		rate Rate
	}{
		{name: "F08 70/100 s", rate: Rate{Count: 70, Period: 100 * time.Second}},
		{name: "F07 6000/min", rate: Rate{Count: 6000, Period: time.Minute}},
		{name: "burst 1", rate: Rate{Count: 3, Period: time.Second, Burst: 1}},
		{name: "sub-second", rate: Rate{Count: 7, Period: 300 * time.Millisecond, Burst: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustLimiter(t, tt.rate, Options{MaxKeys: 64})
			k := addrKey("192.0.2.9")
			now := int64(123456789)
			for l.AllowAt(k, now).Allowed {
				now += int64(tt.rate.Interval()) / 3
			}
			d := l.AllowAt(k, now)
			if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > tt.rate.Interval() {
				t.Fatalf("refusal %+v", d)
			}
			if e := l.AllowAt(k, now+int64(d.RetryAfter)-1); e.Allowed || e.RetryAfter != 1 {
				t.Fatalf("1 ns early: %+v", e)
			}
			if e := l.AllowAt(k, now+int64(d.RetryAfter)); !e.Allowed || e.Remaining != 0 {
				t.Fatalf("on time: %+v", e)
			}
		})
	}
}

func TestNewLimiterOptions(t *testing.T) {
	r := Rate{Count: 1, Period: time.Second}
	tests := []struct {
		name     string
		opts     Options
		wantErr  bool
		capacity int
	}{
		{name: "defaults", opts: Options{}, capacity: DefaultMaxKeys},
		{name: "smallest", opts: Options{MaxKeys: 8}, capacity: 8},
		{name: "rounded down to whole buckets", opts: Options{MaxKeys: 100, Shards: 2}, capacity: 96},
		{name: "too small", opts: Options{MaxKeys: 7}, wantErr: true},
		{name: "negative", opts: Options{MaxKeys: -1}, wantErr: true},
		{name: "absurdly large", opts: Options{MaxKeys: 1<<32 + 8}, wantErr: true},
		{name: "shards not a power of two", opts: Options{MaxKeys: 1024, Shards: 3}, wantErr: true},
		{name: "more shards than buckets", opts: Options{MaxKeys: 64, Shards: 16}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLimiter(r, tt.opts)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("err = %v, want ErrInvalidOptions", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Stats().Capacity; got != tt.capacity {
				t.Fatalf("capacity %d, want %d", got, tt.capacity)
			}
			if got := len(l.shards); got&(got-1) != 0 || got*ways > max(tt.opts.MaxKeys, DefaultMaxKeys*boolInt(tt.opts.MaxKeys == 0)) {
				t.Fatalf("%d shards", got)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSweepIncremental: a sweep call touches a bounded number of buckets per
// shard; repeated calls empty the table of expired keys but keep live ones.
func TestSweepIncremental(t *testing.T) {
	l := mustLimiter(t, Rate{Count: 1, Period: time.Second}, Options{MaxKeys: 1 << 12, Shards: 4})
	for i := range 1000 {
		l.AllowAt(v6Key(uint64(i)), 0)
	}
	live := addrKey("192.0.2.1")
	for range 5 {
		l.AllowAt(live, 2*sec) // TAT 7 s: debt survives the sweep at 2 s
	}
	before := l.Len()
	if before == 0 || before > 1001 {
		t.Fatalf("Len %d", before)
	}
	calls := 0
	for l.Len() > 1 {
		cleared := l.SweepAt(2*sec, 1)
		if cleared > len(l.shards)*ways {
			t.Fatalf("one call cleared %d > one bucket per shard", cleared)
		}
		if calls++; calls > l.Stats().Capacity {
			t.Fatalf("sweep does not converge: Len %d", l.Len())
		}
	}
	if d := l.AllowAt(live, 2*sec); d.Allowed {
		t.Fatalf("live key forgotten by sweep: %+v", d)
	}
	if st := l.Stats(); st.Swept < uint64(before-1) {
		t.Fatalf("Swept %d, want ≥ %d", st.Swept, before-1)
	}
}

// TestEvictionSparesDebtors fills a single bucket with debtors and fresh keys
// and checks the most-indebted key survives a stream of new keys.
func TestEvictionSparesDebtors(t *testing.T) {
	l := mustLimiter(t, Rate{Count: 10, Period: 10 * time.Second}, Options{MaxKeys: 8, Shards: 1})
	abuser := addrKey("127.0.0.2")
	for range 10 {
		l.AllowAt(abuser, 0)
	}
	for i := range 10_000 {
		now := int64(i) * ms
		l.AllowAt(v6Key(uint64(i)), now)
		if d := l.AllowAt(abuser, now); d.Allowed != (now > 0 && now%sec == 0) {
			t.Fatalf("at %v abuser decision %+v", time.Duration(now), d)
		}
	}
	if st := l.Stats(); st.Evictions == 0 || st.Keys > 8 {
		t.Fatalf("stats %+v", st)
	}
}
