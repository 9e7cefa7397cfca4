package proxy

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// AdaptiveConfig tunes an AdaptiveLimit. Zero fields take the defaults
// named on each field.
type AdaptiveConfig struct {
	// Min and Max bound the limit (requests in flight to one origin);
	// Min ≥ 1, Max ≥ Min. Min == Max fixes the limit.
	Min, Max int
	// Tolerance is how much the current RTT may exceed the long-term RTT
	// before the limit shrinks (Gradient2's rttTolerance; default 1.5).
	Tolerance float64
	// Smoothing weighs a latency-driven decrease against the current
	// limit (Gradient2's smoothing; default 0.2).
	Smoothing float64
	// LongWindow is the number of windows the long-term RTT averages over
	// (Gradient2's longWindow; default 600).
	LongWindow int
	// DropThreshold is the share of a window's responses that must be
	// overload signals (429/503/504, timeouts), and at least two of them,
	// before the limit backs off (default 0.01): a single broken route
	// answering 503 now and then must not pin the limit to its floor.
	DropThreshold float64
	// ProbeWindows is how many windows without an overload signal pass
	// before the limit is raised by one above the level of the last
	// backoff (default 20); ForgetWindows is how many such windows make
	// the limit forget that level and grow freely again (default 100).
	ProbeWindows, ForgetWindows int
	// MinWindow, MaxWindow and WindowSamples shape the sample windows: a
	// window closes after MinWindow once it holds WindowSamples samples,
	// or after MaxWindow with any (defaults 100ms, 1s, 10).
	MinWindow, MaxWindow time.Duration
	WindowSamples        int
}

func (c *AdaptiveConfig) defaults() {
	if c.Min < 1 {
		c.Min = 1
	}
	if c.Max < c.Min {
		c.Max = c.Min
	}
	if c.Tolerance <= 0 {
		c.Tolerance = 1.5
	}
	if c.Smoothing <= 0 || c.Smoothing > 1 {
		c.Smoothing = 0.2
	}
	if c.LongWindow <= 0 {
		c.LongWindow = 600
	}
	if c.DropThreshold <= 0 {
		c.DropThreshold = 0.01
	}
	if c.ProbeWindows <= 0 {
		c.ProbeWindows = 20
	}
	if c.ForgetWindows <= 0 {
		c.ForgetWindows = 100
	}
	if c.MinWindow <= 0 {
		c.MinWindow = 100 * time.Millisecond
	}
	if c.MaxWindow < c.MinWindow {
		c.MaxWindow = max(time.Second, c.MinWindow)
	}
	if c.WindowSamples <= 0 {
		c.WindowSamples = 10
	}
}

// AdaptiveLimit is a per-origin concurrency limit that follows the
// origin's latency and overload answers. Samples (time to response
// headers, in-flight count, and whether the answer was an overload signal)
// are aggregated in windows; when a window closes:
//
//   - if more than DropThreshold of its answers were overload signals (an
//     application server answering 503 or 429, a gateway 504, a timeout),
//     the limit backs off multiplicatively by the success share, at most
//     ×0.5 per window (AIMD's multiplicative decrease, Chiu & Jain 1989,
//     as in Netflix concurrency-limits' AIMDLimit), and at least to below
//     the lowest in-flight count at which the origin refused: an
//     origin with 4 workers that answers 503 to a 5th request brings a
//     limit of 512 to 4 in one window. That level is remembered (like
//     TCP's slow-start threshold, RFC 5681): the limit grows back to it
//     freely but probes above it by one only every ProbeWindows clean
//     windows (a single refusal ends a probe), until ForgetWindows clean
//     windows forget it. A window in
//     which half the answers are overload signals closes at once;
//   - otherwise the Gradient2 rule of Netflix concurrency-limits
//     (Gradient2Limit.java): the window's average RTT is compared with a
//     long-term exponential average (the no-load estimate, decayed faster
//     when latency falls back), gradient = clamp(tolerance × long/short,
//     0.5, 1), and newLimit = limit × gradient + √limit (the queue
//     allowance). Decreases are smoothed (limit×(1−s) + new×s); increases
//     apply at once so capacity re-opens within seconds after an attack,
//     which departs from Gradient2 (it smooths both ways). A window whose
//     peak in-flight count stayed under half the limit does not grow it
//     (Gradient2's "app limited" rule).
//
// The limit stays within [Min, Max]. Safe for concurrent use; Limit is a
// single atomic load.
type AdaptiveLimit struct {
	cfg   AdaptiveConfig
	limit atomic.Int64

	mu      sync.Mutex
	est     float64 // the limit as a real number
	longRTT float64 // nanoseconds
	windows int     // windows seen (long-RTT warm-up)
	ceiling float64 // the level of the last backoff (0 = none)
	clean   int     // windows since the last backoff
	start   time.Time
	n       int
	drops   int
	minDrop int // lowest in-flight count of a refused request
	sumRTT  time.Duration
	peak    int
}

// NewAdaptiveLimit returns a limit starting at cfg.Max.
func NewAdaptiveLimit(cfg AdaptiveConfig) *AdaptiveLimit {
	cfg.defaults()
	l := &AdaptiveLimit{cfg: cfg, est: float64(cfg.Max)}
	l.limit.Store(int64(cfg.Max))
	return l
}

// Limit is the current limit (requests in flight).
func (l *AdaptiveLimit) Limit() int { return int(l.limit.Load()) }

// Fixed reports whether the limit cannot move (Min == Max).
func (l *AdaptiveLimit) Fixed() bool { return l.cfg.Min == l.cfg.Max }

// Sample records one origin exchange that ended (response headers or an
// error) at now: rtt from request start to that point, inflight requests
// at the origin when it started, and drop when the answer was an overload
// signal. It returns the new limit and whether a window closed and the
// limit changed.
func (l *AdaptiveLimit) Sample(now time.Time, rtt time.Duration, inflight int, drop bool) (int, bool) {
	if l.Fixed() {
		return l.cfg.Max, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() {
		l.start = now
	}
	l.n++
	l.sumRTT += rtt
	if drop {
		l.drops++
		if l.minDrop == 0 || inflight < l.minDrop {
			l.minDrop = inflight
		}
	}
	l.peak = max(l.peak, inflight)
	age := now.Sub(l.start)
	full := l.n >= l.cfg.WindowSamples
	if !(full && (age >= l.cfg.MinWindow || 2*l.drops >= l.n)) && age < l.cfg.MaxWindow {
		return int(l.limit.Load()), false
	}
	old := l.limit.Load()
	l.update()
	l.start, l.n, l.drops, l.minDrop, l.sumRTT, l.peak = now, 0, 0, 0, 0, 0
	cur := l.limit.Load()
	return int(cur), cur != old
}

// update closes the current window (l.mu held).
func (l *AdaptiveLimit) update() {
	short := float64(l.sumRTT) / float64(l.n)
	if short < 1 {
		short = 1
	}
	// Long-term RTT: exponential average over LongWindow windows, a plain
	// mean during warm-up (Gradient2's ExpAvgMeasurement).
	l.windows++
	if l.windows <= 10 || l.longRTT == 0 {
		l.longRTT += (short - l.longRTT) / float64(min(l.windows, 10))
	} else {
		l.longRTT += (short - l.longRTT) * 2 / float64(l.cfg.LongWindow+1)
	}
	if l.longRTT/short > 2 {
		l.longRTT *= 0.95 // latency is back to normal after a long overload
	}
	est := l.est
	dropShare := float64(l.drops) / float64(l.n)
	// Beyond the last backoff level a single refusal ends the probe.
	overloaded := (l.drops >= 2 && dropShare > l.cfg.DropThreshold) || (l.drops > 0 && l.ceiling > 0 && est > l.ceiling)
	if overloaded {
		l.clean = 0
	} else {
		l.clean++
		if l.clean >= l.cfg.ForgetWindows {
			l.ceiling = 0
		}
	}
	switch {
	case overloaded:
		est *= max(0.5, 1-dropShare)
		if l.minDrop > 1 {
			est = min(est, float64(l.minDrop-1))
		}
		l.ceiling = max(est, float64(l.cfg.Min))
	case float64(l.peak) < est/2:
		// App limited: no evidence about capacity above what is used.
	default:
		gradient := max(0.5, min(1, l.cfg.Tolerance*l.longRTT/short))
		next := est*gradient + math.Sqrt(est)
		switch {
		case next < est:
			next = est*(1-l.cfg.Smoothing) + next*l.cfg.Smoothing
		case l.ceiling > 0 && est < l.ceiling:
			next = min(next, l.ceiling)
		case l.ceiling > 0:
			next = est
			if l.clean%l.cfg.ProbeWindows == 0 {
				next = est + 1
			}
		}
		est = next
	}
	est = max(float64(l.cfg.Min), min(float64(l.cfg.Max), est))
	l.est = est
	l.limit.Store(int64(est))
}
