package ratelimit

import (
	"math"
	"time"
)

// clockStep is the size of a backward jump in a shard's time that is treated
// as a clock step rather than as ordinary jitter. Jitter (goroutines reading
// the clock in one order and taking the shard lock in another; replayed log
// lines out of order within their one-second resolution) is clamped: the
// request is judged at the shard's latest time. A larger regression that
// persists for two consecutive requests is a step: the shard rebases, so its
// time continues from where it was instead of standing still (which would be
// a lockout until the clock caught up, sethvargo/go-limiter#41).
const clockStep = int64(time.Second)

// monotonicClock returns the default Options.Clock: nanoseconds since the
// limiter was built, read through time.Since, which subtracts Go's monotonic
// clock readings and so is immune to wall-clock steps, NTP slews and time-zone
// changes (package time, "Monotonic Clocks").
func monotonicClock() func() int64 {
	start := time.Now()
	return func() int64 { return int64(time.Since(start)) }
}

// clockGuard turns raw clock readings into a shard's effective time, which
// never runs backwards and never jumps forward by more than the raw clock did
// since the last step it absorbed. It is guarded by the shard mutex.
//
// Invariants: offset ≥ 0; every value returned is ≥ every value returned
// before; between steps, effective time advances exactly as fast as the raw
// clock, so GCRA spacing and RetryAfter stay in real time.
type clockGuard struct {
	hw      int64 // latest effective time handed out; MinInt64 before the first reading
	offset  int64 // added to raw readings to undo backward steps
	lagging bool  // the previous reading was a regression larger than clockStep
	steps   uint64
}

func newClockGuard() clockGuard { return clockGuard{hw: math.MinInt64} }

func (g *clockGuard) now(raw int64) int64 {
	eff := raw + g.offset
	if eff >= g.hw {
		// A forward jump that accounts for a pending offset is the raw clock
		// coming back after an earlier backward step: absorb it so the step
		// pair does not hand every key a free bucket. A smaller forward move
		// (ordinary progress or idle time) is trusted.
		if g.offset > 0 && g.hw != math.MinInt64 {
			if j := eff - g.hw; j >= g.offset-clockStep {
				a := min(g.offset, j)
				g.offset -= a
				eff -= a
				g.steps++
			}
		}
		g.hw = eff
		g.lagging = false
		return eff
	}
	if g.hw-eff > clockStep {
		if g.lagging {
			// Second large regression in a row: the raw clock stepped back.
			g.offset += g.hw - eff
			g.lagging = false
			g.steps++
		} else {
			g.lagging = true
		}
	} else {
		g.lagging = false
	}
	return g.hw
}
