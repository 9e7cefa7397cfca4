package detect

import (
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

// routeBaseline is a one-metric EWMA kept by route detectors as their own
// state (routes are not in the site Baseline).
type routeBaseline struct{ b *Baseline }

func (r *routeBaseline) threshold(floor, mult float64) float64 {
	return r.b.Threshold(0, floor, mult)
}

func (r *routeBaseline) learn(rate float64, now time.Time, tick time.Duration) {
	var v [maxMetrics]float64
	v[0] = rate
	r.b.Learn(&v, now, tick)
}

// CredentialStuffing watches one auth route: its request rate above
// max(AuthFloorRPS, AuthMultiplier × the route's own baseline) with at
// least AuthFailureRatio of 401/403 answers, or above twice the threshold
// whatever the answers. Vector "credential_stuffing:<route>".
type CredentialStuffing struct {
	T     *HTTPThresholds
	Route Route
	base  routeBaseline
}

// NewCredentialStuffing returns a detector for one auth route.
func NewCredentialStuffing(t *HTTPThresholds, r Route, bc BaselineConfig) *CredentialStuffing {
	return &CredentialStuffing{T: t, Route: r, base: routeBaseline{NewBaseline(bc)}}
}

// Name implements SiteDetector.
func (d *CredentialStuffing) Name() string { return "credential_stuffing:" + d.Route.Name }

// Observe implements SiteDetector. It learns the route's baseline from ticks
// where it does not fire.
func (d *CredentialStuffing) Observe(v *SiteView, _ *Baseline, now time.Time) Signal {
	rr := routeRates(v, authRouteName(d.Route.Name), d.Route.Name)
	thr := d.base.threshold(d.T.AuthFloorRPS, d.T.AuthMultiplier)
	if d.Route.MaxRPS > 0 {
		thr = d.Route.MaxRPS
	}
	fail := 0.0
	if rr.Requests > 0 {
		fail = rr.AuthFailures / rr.Requests
	}
	s := score(rr.RPS, thr)
	if fail < d.T.AuthFailureRatio {
		s /= 2
	}
	if s < 1 {
		d.base.learn(rr.RPS, now, v.TickDuration)
	}
	return Signal{Detector: d.Name(), Vector: "credential_stuffing:" + d.Route.Name, Score: s,
		Evidence: map[string]float64{"route_rps": rr.RPS, "threshold_rps": thr, "failure_ratio": fail, "sources": float64(rr.Sources)}}
}

// ExpensiveRoute watches one costly route: its request rate above the
// route's MaxRPS, or max(ExpensiveFloorRPS, ExpensiveMultiplier × the
// route's own baseline). Vector "expensive_route:<route>".
type ExpensiveRoute struct {
	T     *HTTPThresholds
	Route Route
	base  routeBaseline
}

// NewExpensiveRoute returns a detector for one expensive route.
func NewExpensiveRoute(t *HTTPThresholds, r Route, bc BaselineConfig) *ExpensiveRoute {
	return &ExpensiveRoute{T: t, Route: r, base: routeBaseline{NewBaseline(bc)}}
}

// Name implements SiteDetector.
func (d *ExpensiveRoute) Name() string { return "expensive_route:" + d.Route.Name }

// Observe implements SiteDetector.
func (d *ExpensiveRoute) Observe(v *SiteView, _ *Baseline, now time.Time) Signal {
	rr := routeRates(v, expensiveRouteName(d.Route.Name), d.Route.Name)
	thr := d.base.threshold(d.T.ExpensiveFloorRPS, d.T.ExpensiveMultiplier)
	if d.Route.MaxRPS > 0 {
		thr = d.Route.MaxRPS
	}
	s := score(rr.RPS, thr)
	if s < 1 {
		d.base.learn(rr.RPS, now, v.TickDuration)
	}
	return Signal{Detector: d.Name(), Vector: "expensive_route:" + d.Route.Name, Score: s,
		Evidence: map[string]float64{"route_rps": rr.RPS, "threshold_rps": thr}}
}

// FlashCrowd recognises a legitimate surge. When the request rate or the
// source count is above its alarm level and the traffic looks like people
// with browsers — browser-like user agents, assets fetched alongside pages,
// referrers, many distinct paths, no dominant source — it returns a Benign
// signal (vector "flash_crowd") and the engine ignores the Suppressible
// vectors for that tick.
type FlashCrowd struct {
	T    *HTTPThresholds
	Site *SiteConfig
}

// Name implements SiteDetector.
func (d *FlashCrowd) Name() string { return "flash_crowd" }

// Observe implements SiteDetector.
func (d *FlashCrowd) Observe(v *SiteView, b *Baseline, _ time.Time) Signal {
	sig := Signal{Detector: d.Name(), Vector: "flash_crowd"}
	if v.Requests == 0 {
		return sig
	}
	surge := max(score(v.Rate(RPS), volumeThreshold(d.T, d.Site, b)),
		score(v.Rate(Sources), b.Threshold(Sources, d.T.SourcesFloor, d.T.SourcesMultiplier)))
	browser := v.UAClasses[stats.UABrowser] / v.Requests
	assets := v.Assets / v.Requests
	referer := v.WithReferer / v.Requests
	paths := float64(v.Tick.DistinctPaths)
	topSrc := 0.0
	if len(v.TopAddrs) > 0 {
		topSrc = perSecond(float64(v.TopAddrs[0].Count), v.Window)
	}
	sig.Evidence = map[string]float64{"surge": surge, "browser_share": browser, "asset_share": assets,
		"referer_share": referer, "distinct_paths": paths, "top_source_rps": topSrc}
	legit := browser >= d.T.FlashBrowserShare && assets >= d.T.FlashAssetShare &&
		referer >= d.T.FlashRefererShare && paths >= d.T.FlashMinPaths && topSrc <= d.T.SourceRPS
	if surge >= 1 && legit {
		sig.Score = surge
		sig.Benign = true
	}
	return sig
}

// routeRates returns the window figures of the accountant route backing a
// detector: the name StatsSites gives it, or else the route's own name (for
// callers that build the accountant's routes themselves with the same names).
func routeRates(v *SiteView, name, plain string) RouteRates {
	if rr, ok := v.Routes[name]; ok {
		return rr
	}
	return v.Routes[plain]
}

// authRouteName and expensiveRouteName name the accountant routes that
// back the route detectors (see Config.StatsSites).
func authRouteName(n string) string      { return "auth:" + n }
func expensiveRouteName(n string) string { return "expensive:" + n }

// StatsSites returns the accountant's site list for this configuration:
// one stats.SiteConfig per Sites entry with the auth and expensive routes
// the detectors need (auth routes default to POST).
func (c *Config) StatsSites() []stats.SiteConfig {
	out := make([]stats.SiteConfig, len(c.Sites))
	for i, s := range c.Sites {
		out[i].Name = s.Name
		for _, r := range s.AuthRoutes {
			m := r.Method
			if m == "" {
				m = "POST"
			}
			out[i].Routes = append(out[i].Routes, stats.Route{Name: authRouteName(r.Name), Path: r.Path, Method: m})
		}
		for _, r := range s.ExpensiveRoutes {
			out[i].Routes = append(out[i].Routes, stats.Route{Name: expensiveRouteName(r.Name), Path: r.Path, Method: r.Method})
		}
	}
	return out
}
