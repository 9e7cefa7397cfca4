package detect

import (
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

// Vectors the flash-crowd signal may veto: a legitimate surge is volumetric
// by nature and may distress the origin, but it does not concentrate on one
// source, bust caches or hammer an auth route.
var suppressible = map[string]bool{
	"http_flood":        true,
	"distributed_flood": true,
	"origin_distress":   true,
}

// Suppressible reports whether a flash crowd vetoes vector v.
func Suppressible(v string) bool { return suppressible[v] }

// volumeThreshold is the site's request-rate alarm level.
func volumeThreshold(h *HTTPThresholds, site *SiteConfig, b *Baseline) float64 {
	if site != nil && site.StaticRPS > 0 {
		return site.StaticRPS
	}
	return b.Threshold(RPS, h.FloorRPS, h.Multiplier)
}

// HTTPFlood is the volumetric detector: the window request rate against
// max(FloorRPS, Multiplier × baseline) or the site's StaticRPS. Vector
// "http_flood".
type HTTPFlood struct {
	T    *HTTPThresholds
	Site *SiteConfig
}

// Name implements SiteDetector.
func (d *HTTPFlood) Name() string { return "http_flood" }

// Observe implements SiteDetector.
func (d *HTTPFlood) Observe(v *SiteView, b *Baseline, _ time.Time) Signal {
	thr := volumeThreshold(d.T, d.Site, b)
	rps := v.Rate(RPS)
	return Signal{Detector: d.Name(), Vector: "http_flood", Score: score(rps, thr),
		Evidence: map[string]float64{"rps": rps, "threshold_rps": thr}}
}

// DistributedFlood detects a surge of distinct sources each sending little:
// sources in the window above max(SourcesFloor, SourcesMultiplier ×
// baseline), requests per source per second at most MaxPerSourceRPS (over
// the window and over the latest tick, whichever is higher), and
// the request rate at least half the volumetric threshold. Vector
// "distributed_flood".
type DistributedFlood struct {
	T    *HTTPThresholds
	Site *SiteConfig
}

// Name implements SiteDetector.
func (d *DistributedFlood) Name() string { return "distributed_flood" }

// Observe implements SiteDetector.
func (d *DistributedFlood) Observe(v *SiteView, b *Baseline, _ time.Time) Signal {
	src := v.Rate(Sources)
	rps := v.Rate(RPS)
	thrSrc := b.Threshold(Sources, d.T.SourcesFloor, d.T.SourcesMultiplier)
	thrRPS := volumeThreshold(d.T, d.Site, b) / 2
	// Requests per source per second, over the window and over the latest
	// tick; the larger counts. The window figure alone is diluted while a
	// surge fills the window (its sources are all there, its requests not
	// yet); the tick figure alone is floored at one request per tick.
	perSrc := 0.0
	if src > 0 {
		perSrc = rps / src
	}
	if ts := float64(v.Tick.Sources); ts > 0 && v.TickDuration > 0 {
		perSrc = max(perSrc, perSecond(float64(v.Tick.Requests), v.TickDuration)/ts)
	}
	s := min(score(src, thrSrc), score(rps, thrRPS))
	// The surge of sources must be current, not the tail of the window.
	if v.Window > 0 && float64(v.Tick.Sources) < thrSrc*float64(v.TickDuration)/float64(v.Window) {
		s = min(s, 0.5)
	}
	if perSrc > d.T.MaxPerSourceRPS {
		s = 0 // few sources each sending a lot: the concentrated detector's case
	}
	return Signal{Detector: d.Name(), Vector: "distributed_flood", Score: s,
		Evidence: map[string]float64{"sources": src, "threshold_sources": thrSrc, "rps_per_source": perSrc, "rps": rps}}
}

// ConcentratedFlood detects heavy hitters: one address above SourceRPS or
// one aggregate prefix above PrefixRPS that is also at least SourceShare of
// the site's requests in the window. Vector "concentrated_flood".
type ConcentratedFlood struct{ T *HTTPThresholds }

// Name implements SiteDetector.
func (d *ConcentratedFlood) Name() string { return "concentrated_flood" }

// Observe implements SiteDetector.
func (d *ConcentratedFlood) Observe(v *SiteView, _ *Baseline, _ time.Time) Signal {
	sig := Signal{Detector: d.Name(), Vector: "concentrated_flood"}
	if v.Requests == 0 {
		return sig
	}
	ev := map[string]float64{}
	if len(v.TopAddrs) > 0 {
		top := float64(v.TopAddrs[0].Count)
		rate := perSecond(top, v.Window)
		s := min(score(rate, d.T.SourceRPS), score(top/v.Requests, d.T.SourceShare))
		ev["top_source_rps"] = rate
		ev["top_source_share"] = top / v.Requests
		sig.Score = s
	}
	if len(v.TopPrefixes) > 0 {
		top := float64(v.TopPrefixes[0].Count)
		rate := perSecond(top, v.Window)
		s := min(score(rate, d.T.PrefixRPS), score(top/v.Requests, d.T.SourceShare))
		ev["top_prefix_rps"] = rate
		sig.Score = max(sig.Score, s)
	}
	sig.Evidence = ev
	return sig
}

// CacheBusting detects floods of unique query strings on one path, which
// defeat caches and reach the origin: a path above CacheBustRPS (in the
// latest tick) whose query-carrying requests are at least CacheBustUnique
// distinct. Vector "cache_busting".
type CacheBusting struct{ T *HTTPThresholds }

// Name implements SiteDetector.
func (d *CacheBusting) Name() string { return "cache_busting" }

// Observe implements SiteDetector.
func (d *CacheBusting) Observe(v *SiteView, _ *Baseline, _ time.Time) Signal {
	sig := Signal{Detector: d.Name(), Vector: "cache_busting"}
	tick := tickDuration(v)
	for _, p := range v.Tick.TopPaths {
		if p.WithQuery < 8 {
			continue
		}
		rate := perSecond(float64(p.WithQuery), tick)
		unique := min(float64(p.Queries)/float64(p.WithQuery), 1)
		s := min(score(rate, d.T.CacheBustRPS), score(unique, d.T.CacheBustUnique))
		if s > sig.Score {
			sig.Score = s
			sig.Evidence = map[string]float64{"path_rps": rate, "unique_query_ratio": unique}
		}
	}
	return sig
}

// tickDuration returns the latest tick's length from the view.
func tickDuration(v *SiteView) time.Duration {
	if v.TickDuration > 0 {
		return v.TickDuration
	}
	return v.Window
}

// SlowConnections detects slowloris, slow POST and slow read: slow
// connections per second above max(SlowPerSecond, SlowMultiplier ×
// baseline). The vector is the dominant kind ("slowloris", "slow_post",
// "slow_read").
type SlowConnections struct{ T *HTTPThresholds }

// Name implements SiteDetector.
func (d *SlowConnections) Name() string { return "slow_connections" }

// Observe implements SiteDetector.
func (d *SlowConnections) Observe(v *SiteView, b *Baseline, _ time.Time) Signal {
	thr := b.Threshold(SlowPS, d.T.SlowPerSecond, d.T.SlowMultiplier)
	rate := v.Rate(SlowPS)
	kind := stats.Slowloris
	for k := range v.Slow {
		if v.Slow[k] > v.Slow[kind] {
			kind = stats.SlowKind(k)
		}
	}
	return Signal{Detector: d.Name(), Vector: kind.String(), Score: score(rate, thr),
		Evidence: map[string]float64{"slow_per_second": rate, "threshold": thr}}
}

// H2Abuse detects HTTP/2 rapid reset (CVE-2023-44487): client stream resets
// above H2ResetsPerSecond that are also at least H2ResetRatio of requests.
// Vector "http2_rapid_reset".
type H2Abuse struct{ T *HTTPThresholds }

// Name implements SiteDetector.
func (d *H2Abuse) Name() string { return "http2_abuse" }

// Observe implements SiteDetector.
func (d *H2Abuse) Observe(v *SiteView, _ *Baseline, _ time.Time) Signal {
	rate := v.Rate(H2ResetPS)
	ratio := rate / max(v.Rate(RPS), 1)
	s := min(score(rate, d.T.H2ResetsPerSecond), score(ratio, d.T.H2ResetRatio))
	return Signal{Detector: d.Name(), Vector: "http2_rapid_reset", Score: s,
		Evidence: map[string]float64{"resets_per_second": rate, "resets_per_request": ratio}}
}

// OriginDistress is health-based detection: origin p99 latency above
// max(OriginP99Floor, OriginLatencyMultiplier × baseline) or origin error
// ratio above OriginErrorRatio, with at least OriginMinRPS origin traffic
// and a traffic surge (OriginLoadMultiplier × baseline rate, or half the
// volumetric floor before warm-up). Vector "origin_distress".
type OriginDistress struct{ T *HTTPThresholds }

// Name implements SiteDetector.
func (d *OriginDistress) Name() string { return "origin_distress" }

// Observe implements SiteDetector.
func (d *OriginDistress) Observe(v *SiteView, b *Baseline, _ time.Time) Signal {
	rps := v.Rate(RPS)
	p99 := v.Rate(OriginP99)
	errs := v.Rate(OriginErrRatio)
	thrLat := b.Threshold(OriginP99, d.T.OriginP99Floor.Seconds(), d.T.OriginLatencyMultiplier)
	s := max(score(p99, thrLat), score(errs, d.T.OriginErrorRatio))
	load := d.T.FloorRPS / 2
	if b.Warm() {
		load = max(d.T.OriginMinRPS, d.T.OriginLoadMultiplier*b.Mean[RPS])
	}
	if rps < d.T.OriginMinRPS || rps < load {
		s = min(s, 0.5) // distress without a surge: an origin fault, not an attack
	}
	return Signal{Detector: d.Name(), Vector: "origin_distress", Score: s,
		Evidence: map[string]float64{"origin_p99_seconds": p99, "threshold_p99_seconds": thrLat, "origin_error_ratio": errs, "rps": rps}}
}
