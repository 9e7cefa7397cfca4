package report

import (
	"fmt"
	"slices"
	"time"
)

// originErrorRate returns the share (0..1) of the requests forwarded to the
// origin that it failed during the incident, its share before it, and
// whether the record holds those figures (integrity evidence with at least
// one forwarded request).
func originErrorRate(fx *facts) (during, before float64, ok bool) {
	ig := fx.Integrity
	if ig == nil || ig.OriginRequests == 0 {
		return 0, 0, false
	}
	return float64(ig.OriginErrors) / float64(ig.OriginRequests), ig.BaselineErrorRate, true
}

// originLatency returns the median and the largest of the series'
// per-second origin 95th-percentile response times, over the seconds that
// have one; ok is false when no second has.
func originLatency(fx *facts) (typical, worst time.Duration, ok bool) {
	var l []time.Duration
	for _, p := range fx.Series {
		if p.OriginLatencyP95 > 0 {
			l = append(l, p.OriginLatencyP95)
		}
	}
	if len(l) == 0 {
		return 0, 0, false
	}
	slices.Sort(l)
	return l[len(l)/2], l[len(l)-1], true
}

// serviceLines says how the site's own server (the origin) fared during
// the incident — the "impact on services" half of the CSIRT's question —
// from the record's origin error counts and per-second origin latency.
// Empty when the record holds neither (e.g. a packet-level incident).
func serviceLines(fx *facts) []string {
	var out []string
	if during, before, ok := originErrorRate(fx); ok {
		ig := fx.Integrity
		out = append(out, fmt.Sprintf("The site's own server (the origin) failed %s of the %s requests passed to it (%s); before the attack it failed %s.",
			fmtInt(ig.OriginErrors), fmtInt(ig.OriginRequests), pct(during), pct(before)))
	}
	if typical, worst, ok := originLatency(fx); ok {
		out = append(out, fmt.Sprintf("The origin's response time (95th percentile, second by second) was %s in a typical second of the incident and %s in the slowest.",
			latency(typical), latency(worst)))
	}
	return out
}

// originSummary is the plain-language sentence on the site's availability
// for the report's opening when the effect on people was not recorded:
// what the origin's error rate shows. Empty without the figures.
func originSummary(fx *facts) string {
	during, before, ok := originErrorRate(fx)
	switch {
	case !ok:
		return ""
	case fx.Integrity.OriginErrors == 0:
		return "The site's own server answered every request that reached it without error."
	}
	return fmt.Sprintf("The site's own server failed %s of the requests that reached it during the attack (%s before it).", pct(during), pct(before))
}
