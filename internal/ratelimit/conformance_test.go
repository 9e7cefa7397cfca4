package ratelimit

import (
	"math/rand/v2"
	"testing"
	"time"
)

// allower is the decision surface every keyed GCRA backend offers; a future
// shared-store backend's test is one call to runGCRAConformance.
type allower interface {
	AllowAt(k Key, now int64) Decision
}

// vsa is the reference: the virtual scheduling algorithm of ITU-T I.371
// Annex A / ATM Forum TM 4.0 §4.4.2, written as in the standard, with an
// unbounded map and no clamping. Increment T, limit τ = (Burst−1)·T.
type vsa struct {
	t, tau, burst int64
	tat           map[Key]int64
}

func newVSA(r Rate) *vsa {
	t := int64(r.Interval())
	b := int64(r.EffectiveBurst())
	return &vsa{t: t, tau: (b - 1) * t, burst: b, tat: map[Key]int64{}}
}

// arrive returns conforming, the earliest conforming time if not, and the
// cells that would still conform at ta if it did.
func (m *vsa) arrive(k Key, ta int64) (ok bool, earliest int64, remaining int) {
	tat, seen := m.tat[k]
	if !seen || tat < ta {
		tat = ta // first cell, or the source was idle
	}
	if ta < tat-m.tau {
		return false, tat - m.tau, 0 // non-conforming; TAT unchanged
	}
	m.tat[k] = tat + m.t
	return true, 0, int((ta + m.burst*m.t - (tat + m.t)) / m.t)
}

// runGCRAConformance drives a backend and the reference with the same
// arrivals (several keys, monotone time, gaps from 0 to 3T, bursts) and
// requires identical decisions, RetryAfter and Remaining.
func runGCRAConformance(t *testing.T, newAllower func(t *testing.T, r Rate) allower) {
	rates := []struct {
		name string
		rate Rate
	}{
		{name: "F07 6000/min default burst", rate: Rate{Count: 6000, Period: time.Minute}},
		{name: "F08 70/100 s", rate: Rate{Count: 70, Period: 100 * time.Second}},
		{name: "burst 1", rate: Rate{Count: 5, Period: time.Second, Burst: 1}},
		{name: "burst 3 non-integer interval", rate: Rate{Count: 3, Period: time.Second, Burst: 3}},
		{name: "sub-second period", rate: Rate{Count: 2, Period: 10 * time.Millisecond}},
	}
	for _, rc := range rates {
		t.Run(rc.name, func(t *testing.T) {
			a := newAllower(t, rc.rate)
			m := newVSA(rc.rate)
			rng := rand.New(rand.NewPCG(uint64(rc.rate.Count), uint64(rc.rate.Period)))
			keys := []Key{addrKey("192.0.2.1"), addrKey("2001:db8::1"), KeyFromPrefix(netipPrefix("2001:db8::/64")), addrKey("198.51.100.7")}
			now := int64(1e9)
			for i := range 20_000 {
				switch rng.IntN(4) {
				case 0: // same instant: a burst
				default:
					now += rng.Int64N(3 * m.t)
				}
				k := keys[rng.IntN(len(keys))]
				ok, earliest, rem := m.arrive(k, now)
				d := a.AllowAt(k, now)
				if d.Allowed != ok {
					t.Fatalf("arrival %d key %v at %d: allowed %v, reference %v", i, k, now, d.Allowed, ok)
				}
				if !ok && d.RetryAfter != time.Duration(earliest-now) {
					t.Fatalf("arrival %d: RetryAfter %v, reference %v", i, d.RetryAfter, time.Duration(earliest-now))
				}
				if ok && d.Remaining != rem {
					t.Fatalf("arrival %d: Remaining %d, reference %d", i, d.Remaining, rem)
				}
			}
		})
	}
}

func TestLimiterConformance(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{name: "one shard", opts: Options{MaxKeys: 64, Shards: 1}},
		{name: "default shards", opts: Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runGCRAConformance(t, func(t *testing.T, r Rate) allower { return mustLimiter(t, r, tt.opts) })
		})
	}
}

// FuzzLimiterMatchesVSA: for any rate and monotone arrival sequence over a
// few keys that fit the table, the limiter decides exactly as the reference.
func FuzzLimiterMatchesVSA(f *testing.F) {
	f.Add(uint16(70), uint32(100_000), uint8(0), []byte{0, 0, 0, 0, 1, 200, 2, 3})
	f.Add(uint16(6000), uint32(60_000), uint8(1), []byte{0, 0, 1, 0, 0, 255, 3, 17})
	f.Add(uint16(1), uint32(1), uint8(5), []byte{7, 7, 7, 7})
	f.Fuzz(func(t *testing.T, count uint16, periodMs uint32, burst uint8, ops []byte) {
		r := Rate{Count: int(count), Period: time.Duration(periodMs) * time.Millisecond, Burst: int(burst)}
		if _, err := r.Validate(); err != nil {
			return
		}
		l := mustLimiter(t, r, Options{MaxKeys: 64, Shards: 1})
		m := newVSA(r)
		keys := []Key{addrKey("192.0.2.1"), addrKey("192.0.2.2"), addrKey("2001:db8::1"), KeyFromPrefix(netipPrefix("192.0.2.0/24"))}
		now := int64(0)
		for i := 0; i+1 < len(ops); i += 2 {
			k := keys[ops[i]%4]
			now += int64(ops[i+1]) * m.t / 32
			ok, earliest, rem := m.arrive(k, now)
			d := l.AllowAt(k, now)
			if d.Allowed != ok || (!ok && d.RetryAfter != time.Duration(earliest-now)) || (ok && d.Remaining != rem) {
				t.Fatalf("op %d at %d: got %+v, reference ok=%v earliest=%d remaining=%d", i/2, now, d, ok, earliest, rem)
			}
		}
	})
}
