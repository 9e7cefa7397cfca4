package detect

import (
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

// Signal is one detector's verdict on one tick.
type Signal struct {
	// Detector is the detector's Name.
	Detector string
	// Vector names the attack class when the signal fires ("http_flood",
	// "syn_flood", "udp_amplification:snmp", "credential_stuffing:login").
	Vector string
	// Score is the observed value over its threshold: ≥ 1 fires, ≥
	// Config.SevereScore confirms an attack in one tick; 0 when idle.
	Score float64
	// Benign marks a surge recognised as legitimate (flash crowd): the
	// engine then ignores the volumetric vectors (see Suppressible).
	Benign bool
	// Sustain reports that the attack pattern is still present below the
	// alarm level (e.g. a trickle of spoofed SYNs after the burst): an open
	// incident with this vector does not count the tick as quiet. The engine
	// also treats Score ≥ Config.ReleaseScore as sustaining (hysteresis:
	// enter at 1, leave below ReleaseScore).
	Sustain bool
	// Hold reports that a sparse attack is still in progress between its
	// packets (SlowReflection): the tick does not count as quiet, so a
	// suspicion or an open incident with this vector stays, but unlike
	// Sustain it does not move the incident's end (the last firing or
	// sustaining tick).
	Hold bool
	// Evidence holds the figures behind the score (rates, thresholds).
	Evidence map[string]float64
}

// Fires reports whether the signal indicates an attack.
func (s Signal) Fires() bool { return s.Score >= 1 && !s.Benign }

// SiteDetector inspects a site's tick. Implementations are pure functions of
// the view, the baseline and their own state, with time passed in; each
// instance serves one site.
type SiteDetector interface {
	Name() string
	Observe(v *SiteView, b *Baseline, now time.Time) Signal
}

// NetDetector inspects one destination's packet tick, like SiteDetector.
type NetDetector interface {
	Name() string
	Observe(v *DestView, b *Baseline, now time.Time) Signal
}

// SiteView is what a SiteDetector sees: the latest tick and rates over the
// sliding window.
type SiteView struct {
	// Tick is the latest tick (top-k lists, sketches).
	Tick *stats.SiteSnapshot
	// Window is the time the window covers (≤ Config.Window early on) and
	// TickDuration the latest tick's length.
	Window, TickDuration time.Duration
	// Rates holds the site metrics (RPS, Sources, ...) over the window.
	Rates [maxMetrics]float64
	// Sums over the window, in requests.
	Requests, WithReferer, Assets, Pages float64
	UAClasses                            [stats.NumUAClasses]float64
	// Slow sums slow connections by stats.SlowKind.
	Slow [stats.NumSlowKinds]float64
	// TopAddrs and TopPrefixes merge the window's heavy hitters (requests).
	TopAddrs    []stats.Counted[netip.Addr]
	TopPrefixes []stats.Counted[netip.Prefix]
	// Routes are the configured routes' window figures, by route name.
	Routes map[string]RouteRates
}

// RouteRates are one route's rates over the window.
type RouteRates struct {
	RPS            float64 // requests/s
	AuthFailureRPS float64 // 401/403 answers/s
	Sources        uint64  // distinct sources in the latest tick
	Requests       float64 // requests in the window
	AuthFailures   float64
}

// Rate returns the window rate of metric m.
func (v *SiteView) Rate(m Metric) float64 { return v.Rates[m] }

// DestView is what a NetDetector sees for one destination.
type DestView struct {
	// Dst is the destination address.
	Dst netip.Addr
	// Tick is the latest tick's counters for Dst (zero when Dst was silent).
	Tick *stats.DestSnapshot
	// Window is the time the window covers.
	Window time.Duration
	// Rates holds the destination metrics (PPS, SYNPPS, ...) over the window.
	Rates [maxMetrics]float64
	// Sum is the window's counters summed (HLL fields unset); Sources and
	// Flows are the latest tick's estimates, WindowSources the window union.
	Sum           stats.DestSnapshot
	WindowSources uint64
	// Slow holds the destination's figures over the low-and-slow window
	// (PacketThresholds.SlowWindow); zero when it is not watched.
	Slow SlowView
}

// Rate returns the window rate of metric m.
func (v *DestView) Rate(m Metric) float64 { return v.Rates[m] }

// perSecond converts a count over d into a rate.
func perSecond(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}

// score returns value/threshold, 0 when the threshold is not positive.
func score(value, threshold float64) float64 {
	if threshold <= 0 {
		return 0
	}
	return value / threshold
}
