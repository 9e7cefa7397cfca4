// Package record keeps, per site, what happened to its traffic second by
// second — requests by verdict, origin errors and latency, the requests of
// the people the shield knows to be legitimate (members, cleared visitors),
// challenges, and the responses of the routes configured as sensitive — and
// turns it into the per-second series, the impact on real people and the
// integrity evidence of an incident (incident.SeriesPoint, Impact,
// Integrity).
//
// The request path calls Site.Record once per request: a few atomic adds
// into the slot of the request's second in a ring of Options.Seconds slots
// (one hour by default), no locks and no allocations. A second's counters
// are kept in four stripes on their own cache lines, picked by the low bits
// of the record time, so that cores adding at once rarely share a line; a
// site's ring takes about 3.2 MB. A slot is claimed for
// a new second by the first writer that sees it hold an older one (a CAS to
// a "being reset" marker, zeroing, then the new second), so the ring needs no
// background goroutine; readers take what is there and tolerate the current
// second still being written.
//
// Baselines are the mean over the peace-time seconds (those recorded while
// the site was in the normal detection state, see Site.Mark) of the window
// before an incident's start (Options.BaselineWindow, 30 minutes by
// default): per-second rates of sensitive-route responses and bytes, the
// origin error rate, and the 95th-percentile latency of each cohort from the
// merged per-second histograms. Sink computes an incident's baseline when it
// first sees the incident and keeps it until the incident closes, so a long
// attack does not push its own pre-attack seconds out of the ring before the
// baseline is taken.
//
// Latencies are counted in fixed buckets (1, 2, 3, 5, 7 × powers of ten from
// 1 ms to 10 s, and an overflow bucket); a percentile is interpolated
// linearly inside its bucket, as Prometheus' histogram_quantile does.
package record
