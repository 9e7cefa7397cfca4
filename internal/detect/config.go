package detect

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrConfig is wrapped by every configuration validation error.
var ErrConfig = errors.New("detect: invalid config")

// Config tunes the detection engine. The zero value plus Default is a
// working configuration; YAML is mapped onto it by package config.
type Config struct {
	// Tick is the accounting interval (default 250 ms, at most 250 ms so
	// that two confirming ticks fit in the 1 s detection budget).
	Tick time.Duration
	// Window is the sliding window over which rates are computed (default
	// 1 s; a whole number of ticks). It smooths Poisson noise at low rates and
	// logs with one-second timestamps.
	Window time.Duration
	// ConfirmTicks is the number of firing ticks (counted while suspected)
	// that confirm an attack (default 2: suspected after the first, attack
	// after the second, so flood start → detected ≤ 2 ticks + partial tick).
	ConfirmTicks int
	// SevereScore is the detector score at or above which a single tick
	// confirms an attack (default 4: four times the threshold; short
	// bursts such as a 23 ms amplification spike are still caught).
	SevereScore float64
	// ReleaseScore is the score below which an attack vector no longer
	// keeps its incident in "attack" (default 0.5; hysteresis against
	// flapping around the threshold).
	ReleaseScore float64
	// QuietTicks is the number of consecutive ticks without a firing
	// detector after which an attack is "recovering" and a suspicion drops
	// back to normal (default 4).
	QuietTicks int
	// RecoverAfter is how long a recovering site must stay quiet before the
	// incident closes (default 10 s). A renewed signal while recovering
	// returns to attack in the same incident.
	RecoverAfter time.Duration
	// UpdateEvery bounds how often an open incident is written to the Sink
	// between state changes (default 5 s).
	UpdateEvery time.Duration
	// TopN is the number of entries kept in an incident's country, path and
	// user-agent lists (default 10).
	TopN int
	// TopNetworks is the number of entries kept in an incident's source
	// prefix and ASN lists (default 100): enough that every network
	// carrying at least 1% of the traffic (report's default evidence
	// threshold) is listed. Each list is a space-saving summary of
	// 4 × TopNetworks counters (about 64 bytes each) per target in an
	// episode.
	TopNetworks int
	// MaxTargets bounds the packet destinations with their own state machine
	// (default 64); the quietest idle one is forgotten to admit a new one.
	MaxTargets int
	// Baseline configures the per-site and per-destination EWMA baselines.
	Baseline BaselineConfig
	// HTTP holds the request-level thresholds, Packet the packet-level ones.
	HTTP   HTTPThresholds
	Packet PacketThresholds
	// Sites holds per-site settings, by the same index as stats.Config.Sites.
	Sites []SiteConfig
}

// BaselineConfig configures the exponentially weighted moving averages.
type BaselineConfig struct {
	// HalfLife is the EWMA half-life (default 10 min).
	HalfLife time.Duration
	// WarmUp is how much quiet traffic must be learned before the baseline
	// is trusted (default 2 min); until then only floors and static
	// thresholds apply.
	WarmUp time.Duration
}

// SiteConfig holds per-site detection settings.
type SiteConfig struct {
	// Name is the site's name (as in stats.SiteConfig).
	Name string
	// AuthRoutes are login / sign-up endpoints watched for credential
	// stuffing; they must also be listed, with the same Name, in the
	// accountant's stats.SiteConfig.Routes (see StatsRoutes).
	AuthRoutes []Route
	// ExpensiveRoutes are costly endpoints (search, PDF export) watched for
	// targeted floods.
	ExpensiveRoutes []Route
	// StaticRPS, when > 0, is a FastNetMon-style absolute request-rate
	// threshold for this site, replacing the baseline-derived one.
	StaticRPS float64
}

// Route is a watched endpoint.
type Route struct {
	// Name identifies the route ("login"); the vector is named after it.
	Name string
	// Path and Method select requests as in stats.Route.
	Path   string
	Method string
	// MaxRPS, when > 0, is an absolute rate (requests/s) above which the
	// route is flooded whatever its baseline.
	MaxRPS float64
}

// HTTPThresholds are the request-level detector thresholds. A rate
// threshold is max(Floor, Multiplier × baseline) once the baseline is warm,
// and Floor before; floors keep a 0.1 rps site from alarming at 2 rps while
// multipliers let a 5,000 rps site alarm at 25,000.
type HTTPThresholds struct {
	// FloorRPS and Multiplier: volumetric flood (default 50 rps, ×5).
	FloorRPS   float64
	Multiplier float64
	// SourcesFloor and SourcesMultiplier: distributed flood when distinct
	// sources per window exceed max(floor, mult × baseline) (default 200,
	// ×5) while each source stays below MaxPerSourceRPS (default 5) and the
	// request rate is at least half the volumetric threshold.
	SourcesFloor      float64
	SourcesMultiplier float64
	MaxPerSourceRPS   float64
	// SourceRPS: a single address above this rate (default 50 rps) that is
	// also at least SourceShare (default 0.2) of the site's traffic is a
	// concentrated flood; PrefixRPS (default 200) the same for a prefix.
	SourceRPS   float64
	SourceShare float64
	PrefixRPS   float64
	// CacheBustRPS: a path above this rate (default 20 rps) whose requests
	// carry distinct query strings in at least CacheBustUnique of cases
	// (default 0.8) is being cache-busted.
	CacheBustRPS    float64
	CacheBustUnique float64
	// SlowPerSecond: slow connections per second above max(this, ×SlowMultiplier
	// baseline) (default 5/s, ×5).
	SlowPerSecond  float64
	SlowMultiplier float64
	// H2ResetsPerSecond: client stream resets per second (default 100) that
	// are also at least H2ResetRatio (default 0.5) of requests.
	H2ResetsPerSecond float64
	H2ResetRatio      float64
	// Origin distress: p99 latency above max(OriginP99Floor, ×OriginLatencyMultiplier
	// baseline) (default 2 s, ×4) or origin error ratio above OriginErrorRatio
	// (default 0.2), with at least OriginMinRPS origin requests/s (default 5)
	// and traffic at least OriginLoadMultiplier × baseline (default 1.5) —
	// distress without a surge is an origin problem, not an attack.
	OriginP99Floor          time.Duration
	OriginLatencyMultiplier float64
	OriginErrorRatio        float64
	OriginMinRPS            float64
	OriginLoadMultiplier    float64
	// Credential stuffing: POST rate on an auth route above max(AuthFloorRPS,
	// ×AuthMultiplier baseline) (default 5 rps, ×5) with at least
	// AuthFailureRatio (default 0.5) of 401/403 answers, or above twice the
	// threshold whatever the answers.
	AuthFloorRPS     float64
	AuthMultiplier   float64
	AuthFailureRatio float64
	// Expensive routes: rate above max(ExpensiveFloorRPS, ×ExpensiveMultiplier
	// baseline) (default 20 rps, ×4), or the route's MaxRPS.
	ExpensiveFloorRPS   float64
	ExpensiveMultiplier float64
	// Flash crowd: a surge is legitimate when at least FlashBrowserShare of
	// requests come from browser-like user agents (default 0.7), assets are
	// at least FlashAssetShare of requests (default 0.2), at least
	// FlashRefererShare carry a Referer (default 0.3), the requests spread
	// over at least FlashMinPaths distinct paths (default 5) and no source
	// exceeds SourceRPS.
	FlashBrowserShare float64
	FlashAssetShare   float64
	FlashRefererShare float64
	FlashMinPaths     float64
}

// PacketThresholds are the per-destination packet-level thresholds, in
// packets per second after sampling is scaled (FastNetMon-style host
// thresholds, with the baseline multiplier applied once warm).
type PacketThresholds struct {
	// Multiplier scales the warm baseline (default 5).
	Multiplier float64
	// SYNPPS (default 1000) with SYNShare (default 0.5) of inbound TCP.
	SYNPPS   float64
	SYNShare float64
	// ACKPPS: payload-less ACKs (default 5000) from at least MinFlows
	// flows (default 10): a single download's ACK stream is one flow (F28).
	ACKPPS   float64
	MinFlows float64
	// RSTPPS (default 1000) net of RSTs answering the destination's own SYNs.
	RSTPPS float64
	// SYNACKPPS (default 1000) net of the destination's own SYNs, from at
	// least MinSources sources (default 10): SYN-ACK reflection.
	SYNACKPPS  float64
	MinSources float64
	// UDPPPS (default 5000) UDP not from a reflector port.
	UDPPPS float64
	// AmplificationPPS (default 1000) or AmplificationBPS (default 50
	// Mbit/s, in bits/s) from one reflector port, with at least
	// MinSources sources.
	AmplificationPPS float64
	AmplificationBPS float64
	// ICMPPPS (default 2000) and FragmentPPS (default 2000).
	ICMPPPS     float64
	FragmentPPS float64
	// MinPPS is the rate below which a destination gets no state machine
	// (default 100).
	MinPPS float64
	// FlagShare is the least share of the destination's inbound TCP packets
	// an ACK, RST or SYN-ACK flood must make up (default 0.25): the RSTs that
	// accompany a SYN-ACK reflection are part of it, not a second vector.
	FlagShare float64
	// Low-and-slow SYN-ACK reflection (SlowReflection), at any rate: over
	// SlowWindow (default 60 s, from Window to 1 h, kept in six buckets) a
	// destination that sent no SYN received at least SlowSYNACKs SYN-ACKs
	// (default 20) making at least SlowShare of its inbound TCP (default
	// 0.5), from at least SlowSources distinct sources of inbound packets
	// (default 10). The incident is held open while SYN-ACKs keep arriving
	// at least every SlowIdle (default 10 s, at most SlowWindow).
	SlowWindow  time.Duration
	SlowSYNACKs float64
	SlowShare   float64
	SlowSources float64
	SlowIdle    time.Duration
}

// maxTopNetworks bounds Config.TopNetworks (the summaries hold four times
// as many counters per target).
const maxTopNetworks = 10000

// StatsTopN returns how many heavy hitters per list the accountant's
// snapshots should report (stats.Config.TopN) for this configuration's
// attribution: max(TopN, TopNetworks) after defaults. With fewer, networks
// ranked below the snapshot's cut in a tick go uncounted in that tick, and
// a list of 100 networks is filled from per-tick lists of 20.
func (c Config) StatsTopN() int {
	d := c.Default()
	return max(d.TopN, d.TopNetworks)
}

// Default returns a copy of c with zero fields set to their defaults.
func (c Config) Default() Config {
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	num := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	integer := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	dur(&c.Tick, 250*time.Millisecond)
	dur(&c.Window, time.Second)
	integer(&c.ConfirmTicks, 2)
	num(&c.SevereScore, 4)
	num(&c.ReleaseScore, 0.5)
	integer(&c.QuietTicks, 4)
	dur(&c.RecoverAfter, 10*time.Second)
	dur(&c.UpdateEvery, 5*time.Second)
	integer(&c.TopN, 10)
	integer(&c.TopNetworks, 100)
	integer(&c.MaxTargets, 64)
	dur(&c.Baseline.HalfLife, 10*time.Minute)
	dur(&c.Baseline.WarmUp, 2*time.Minute)

	h := &c.HTTP
	num(&h.FloorRPS, 50)
	num(&h.Multiplier, 5)
	num(&h.SourcesFloor, 200)
	num(&h.SourcesMultiplier, 5)
	num(&h.MaxPerSourceRPS, 5)
	num(&h.SourceRPS, 50)
	num(&h.SourceShare, 0.2)
	num(&h.PrefixRPS, 200)
	num(&h.CacheBustRPS, 20)
	num(&h.CacheBustUnique, 0.8)
	num(&h.SlowPerSecond, 5)
	num(&h.SlowMultiplier, 5)
	num(&h.H2ResetsPerSecond, 100)
	num(&h.H2ResetRatio, 0.5)
	dur(&h.OriginP99Floor, 2*time.Second)
	num(&h.OriginLatencyMultiplier, 4)
	num(&h.OriginErrorRatio, 0.2)
	num(&h.OriginMinRPS, 5)
	num(&h.OriginLoadMultiplier, 1.5)
	num(&h.AuthFloorRPS, 5)
	num(&h.AuthMultiplier, 5)
	num(&h.AuthFailureRatio, 0.5)
	num(&h.ExpensiveFloorRPS, 20)
	num(&h.ExpensiveMultiplier, 4)
	num(&h.FlashBrowserShare, 0.7)
	num(&h.FlashAssetShare, 0.2)
	num(&h.FlashRefererShare, 0.3)
	num(&h.FlashMinPaths, 5)

	p := &c.Packet
	num(&p.Multiplier, 5)
	num(&p.SYNPPS, 1000)
	num(&p.SYNShare, 0.5)
	num(&p.ACKPPS, 5000)
	num(&p.MinFlows, 10)
	num(&p.RSTPPS, 1000)
	num(&p.SYNACKPPS, 1000)
	num(&p.MinSources, 10)
	num(&p.UDPPPS, 5000)
	num(&p.AmplificationPPS, 1000)
	num(&p.AmplificationBPS, 50e6)
	num(&p.ICMPPPS, 2000)
	num(&p.FragmentPPS, 2000)
	num(&p.MinPPS, 100)
	num(&p.FlagShare, 0.25)
	dur(&p.SlowWindow, time.Minute)
	num(&p.SlowSYNACKs, 20)
	num(&p.SlowShare, 0.5)
	num(&p.SlowSources, 10)
	dur(&p.SlowIdle, 10*time.Second)
	return c
}

// Validate checks a defaulted configuration; errors wrap ErrConfig and name
// the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, a...)))
	}
	if c.Tick <= 0 || c.Tick > 250*time.Millisecond {
		bad("Tick", "%v must be in (0, 250ms]", c.Tick)
	}
	if c.Tick > 0 && (c.Window < c.Tick || c.Window%c.Tick != 0 || c.Window/c.Tick > 240) {
		bad("Window", "%v must be a whole number (1..240) of ticks of %v", c.Window, c.Tick)
	}
	if c.ConfirmTicks < 1 {
		bad("ConfirmTicks", "%d must be ≥ 1", c.ConfirmTicks)
	}
	if c.SevereScore < 1 {
		bad("SevereScore", "%v must be ≥ 1", c.SevereScore)
	}
	if c.ReleaseScore <= 0 || c.ReleaseScore > 1 {
		bad("ReleaseScore", "%v must be in (0, 1]", c.ReleaseScore)
	}
	if c.QuietTicks < 1 {
		bad("QuietTicks", "%d must be ≥ 1", c.QuietTicks)
	}
	if c.RecoverAfter < 0 || c.UpdateEvery < 0 {
		bad("RecoverAfter/UpdateEvery", "must not be negative")
	}
	if c.TopN < 1 || c.MaxTargets < 1 {
		bad("TopN/MaxTargets", "must be ≥ 1")
	}
	if c.TopNetworks < 1 || c.TopNetworks > maxTopNetworks {
		bad("TopNetworks", "%d must be in [1, %d]", c.TopNetworks, maxTopNetworks)
	}
	if c.Baseline.HalfLife <= 0 || c.Baseline.WarmUp < 0 {
		bad("Baseline", "HalfLife must be positive and WarmUp not negative")
	}
	positive := func(prefix string, vals map[string]float64) {
		for k, v := range vals {
			if !(v > 0) {
				bad(prefix+"."+k, "%v must be positive", v)
			}
		}
	}
	h := &c.HTTP
	positive("HTTP", map[string]float64{
		"FloorRPS": h.FloorRPS, "Multiplier": h.Multiplier, "SourcesFloor": h.SourcesFloor,
		"SourcesMultiplier": h.SourcesMultiplier, "MaxPerSourceRPS": h.MaxPerSourceRPS,
		"SourceRPS": h.SourceRPS, "SourceShare": h.SourceShare, "PrefixRPS": h.PrefixRPS,
		"CacheBustRPS": h.CacheBustRPS, "CacheBustUnique": h.CacheBustUnique,
		"SlowPerSecond": h.SlowPerSecond, "SlowMultiplier": h.SlowMultiplier,
		"H2ResetsPerSecond": h.H2ResetsPerSecond, "H2ResetRatio": h.H2ResetRatio,
		"OriginP99Floor": float64(h.OriginP99Floor), "OriginLatencyMultiplier": h.OriginLatencyMultiplier,
		"OriginErrorRatio": h.OriginErrorRatio, "OriginMinRPS": h.OriginMinRPS,
		"OriginLoadMultiplier": h.OriginLoadMultiplier, "AuthFloorRPS": h.AuthFloorRPS,
		"AuthMultiplier": h.AuthMultiplier, "AuthFailureRatio": h.AuthFailureRatio,
		"ExpensiveFloorRPS": h.ExpensiveFloorRPS, "ExpensiveMultiplier": h.ExpensiveMultiplier,
		"FlashBrowserShare": h.FlashBrowserShare, "FlashAssetShare": h.FlashAssetShare,
		"FlashRefererShare": h.FlashRefererShare, "FlashMinPaths": h.FlashMinPaths,
	})
	p := &c.Packet
	positive("Packet", map[string]float64{
		"Multiplier": p.Multiplier, "SYNPPS": p.SYNPPS, "SYNShare": p.SYNShare, "ACKPPS": p.ACKPPS,
		"MinFlows": p.MinFlows, "RSTPPS": p.RSTPPS, "SYNACKPPS": p.SYNACKPPS, "MinSources": p.MinSources,
		"UDPPPS": p.UDPPPS, "AmplificationPPS": p.AmplificationPPS, "AmplificationBPS": p.AmplificationBPS,
		"ICMPPPS": p.ICMPPPS, "FragmentPPS": p.FragmentPPS, "MinPPS": p.MinPPS, "FlagShare": p.FlagShare,
		"SlowSYNACKs": p.SlowSYNACKs, "SlowShare": p.SlowShare, "SlowSources": p.SlowSources,
	})
	if p.SlowWindow < c.Window || p.SlowWindow > time.Hour {
		bad("Packet.SlowWindow", "%v must be in [Window %v, 1h]", p.SlowWindow, c.Window)
	}
	if p.SlowIdle <= 0 || p.SlowIdle > p.SlowWindow {
		bad("Packet.SlowIdle", "%v must be in (0, SlowWindow]", p.SlowIdle)
	}
	if p.SlowShare > 1 {
		bad("Packet.SlowShare", "%v must be at most 1", p.SlowShare)
	}
	for i, s := range c.Sites {
		for j, r := range append(append([]Route(nil), s.AuthRoutes...), s.ExpensiveRoutes...) {
			field := fmt.Sprintf("Sites[%d] route %d", i, j)
			if r.Name == "" {
				bad(field, "Name is required")
			}
			if !strings.HasPrefix(r.Path, "/") {
				bad(field, "Path %q must start with '/'", r.Path)
			}
			if r.MaxRPS < 0 {
				bad(field, "MaxRPS %v must not be negative", r.MaxRPS)
			}
		}
	}
	return errors.Join(errs...)
}
