package record

import (
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// Totals are a site's counts summed over a span of seconds.
type Totals struct {
	// Seconds is the number of seconds summed.
	Seconds int64
	// Requests by verdict (see Verdict).
	Requests, Passed, Challenged, Throttled, Blocked, Shed uint64
	// OriginRequests were answered or failed by the origin; OriginErrors
	// failed (5xx, timeout, refused).
	OriginRequests, OriginErrors uint64
	// Requests of each cohort and how many were served (passed, no origin
	// error).
	MemberRequests, MemberServed, ClearedRequests, ClearedServed uint64
	// ChallengesShown and ChallengesSolved count challenge pages and
	// solved challenges.
	ChallengesShown, ChallengesSolved uint64
	// Latency histograms: origin answers; served requests of each cohort.
	OriginLatency, MemberLatency, ClearedLatency Hist
	// RouteRequests and RouteBytes are, per sensitive route (Site.Routes
	// order), the successful (2xx) responses and their body bytes.
	RouteRequests, RouteBytes []uint64
}

// add adds slot i's counts (sl holds the second being read).
func (t *Totals) add(sl *slot, i int, rs *routeSet) {
	t.Requests += sl.count(cRequests)
	t.Passed += sl.count(cPassed)
	t.Challenged += sl.count(cChallenged)
	t.Throttled += sl.count(cThrottled)
	t.Blocked += sl.count(cBlocked)
	t.Shed += sl.count(cShed)
	t.OriginRequests += sl.count(cOrigin)
	t.OriginErrors += sl.count(cOriginErr)
	t.MemberRequests += sl.count(cMemberReq)
	t.MemberServed += sl.count(cMemberServed)
	t.ClearedRequests += sl.count(cClearedReq)
	t.ClearedServed += sl.count(cClearedServed)
	t.ChallengesShown += sl.count(cShown)
	t.ChallengesSolved += sl.count(cSolved)
	t.OriginLatency.addLive(&sl.h[hOrigin])
	t.MemberLatency.addLive(&sl.h[hMember])
	t.ClearedLatency.addLive(&sl.h[hCleared])
	n := len(rs.routes)
	for j := 0; j < n; j++ {
		k := (i*n + j) * 2
		t.RouteRequests[j] += rs.ctr[k].Load()
		t.RouteBytes[j] += rs.ctr[k+1].Load()
	}
}

// Merge adds o's counts to t (route lists of different lengths are merged
// up to the shorter).
func (t *Totals) Merge(o *Totals) {
	t.Seconds += o.Seconds
	t.Requests += o.Requests
	t.Passed += o.Passed
	t.Challenged += o.Challenged
	t.Throttled += o.Throttled
	t.Blocked += o.Blocked
	t.Shed += o.Shed
	t.OriginRequests += o.OriginRequests
	t.OriginErrors += o.OriginErrors
	t.MemberRequests += o.MemberRequests
	t.MemberServed += o.MemberServed
	t.ClearedRequests += o.ClearedRequests
	t.ClearedServed += o.ClearedServed
	t.ChallengesShown += o.ChallengesShown
	t.ChallengesSolved += o.ChallengesSolved
	t.OriginLatency.Add(&o.OriginLatency)
	t.MemberLatency.Add(&o.MemberLatency)
	t.ClearedLatency.Add(&o.ClearedLatency)
	for j := range min(len(t.RouteRequests), len(o.RouteRequests)) {
		t.RouteRequests[j] += o.RouteRequests[j]
		t.RouteBytes[j] += o.RouteBytes[j]
	}
}

// span clamps [from, to] (whole seconds, inclusive) to what the ring can
// hold and reports whether seconds were cut from the start.
func (s *Site) span(from, to time.Time) (first, last int64, cut bool) {
	first, last = from.Unix(), to.Unix()
	if oldest := last - int64(len(s.slots)) + 1; first < oldest {
		first, cut = oldest, true
	}
	return max(first, 1), last, cut
}

// Totals sums the seconds in [from, to] (whole seconds, both included) that
// are still in the ring; Seconds counts the span even where nothing was
// recorded.
func (s *Site) Totals(from, to time.Time) Totals {
	rs := s.routes.Load()
	t := Totals{RouteRequests: make([]uint64, len(rs.routes)), RouteBytes: make([]uint64, len(rs.routes))}
	first, last, _ := s.span(from, to)
	for sec := first; sec <= last; sec++ {
		t.Seconds++
		i := int(sec % int64(len(s.slots)))
		if sl := &s.slots[i]; sl.sec.Load() == sec {
			t.add(sl, i, rs)
		}
	}
	return t
}

// Series returns one point per second of [from, to] (whole seconds, both
// included), oldest first; a second with nothing recorded is a zero point.
// When the span is longer than the ring only its latest seconds are
// returned and truncated is true.
func (s *Site) Series(from, to time.Time) (points []incident.SeriesPoint, truncated bool) {
	first, last, cut := s.span(from, to)
	if last < first {
		return nil, cut
	}
	points = make([]incident.SeriesPoint, 0, last-first+1)
	for sec := first; sec <= last; sec++ {
		p := incident.SeriesPoint{Time: time.Unix(sec, 0).UTC()}
		sl := &s.slots[sec%int64(len(s.slots))]
		if sl.sec.Load() == sec {
			p.Requests = sl.count(cRequests)
			p.Passed = sl.count(cPassed)
			p.Challenged = sl.count(cChallenged)
			p.Throttled = sl.count(cThrottled)
			p.Blocked = sl.count(cBlocked)
			p.Shed = sl.count(cShed)
			p.OriginErrors = sl.count(cOriginErr)
			var h Hist
			h.addLive(&sl.h[hOrigin])
			p.OriginLatencyP95 = h.Quantile(0.95)
			if sl.sec.Load() != sec { // reset under us: a second long gone
				p = incident.SeriesPoint{Time: p.Time}
			}
		}
		points = append(points, p)
	}
	return points, cut
}

// Baseline is a site's peace-time record before some moment.
type Baseline struct {
	// Totals are summed over the peace-time seconds only; Seconds counts
	// them (0: no baseline).
	Totals
}

// PerSecond returns n over the baseline's seconds (0 without a baseline).
func (b *Baseline) PerSecond(n uint64) float64 {
	if b.Seconds <= 0 {
		return 0
	}
	return float64(n) / float64(b.Seconds)
}

// ErrorRate returns the share (0..1) of origin requests that failed.
func (b *Baseline) ErrorRate() float64 {
	if b.OriginRequests == 0 {
		return 0
	}
	return float64(b.OriginErrors) / float64(b.OriginRequests)
}

// Baseline sums the peace-time seconds of the window (Options.
// BaselineWindow) before before: seconds recorded while the site was in the
// normal state, and seconds in which nothing was recorded (no traffic),
// from the first second the site recorded. Seconds recorded while the site
// was not normal, or already overwritten, are left out.
func (s *Site) Baseline(before time.Time) Baseline {
	rs := s.routes.Load()
	b := Baseline{Totals{RouteRequests: make([]uint64, len(rs.routes)), RouteBytes: make([]uint64, len(rs.routes))}}
	since := s.since.Load()
	if since == 0 {
		return b
	}
	end := before.Unix() // exclusive
	first := max(end-int64(s.window/time.Second), since, end-int64(len(s.slots))+1)
	for sec := first; sec < end; sec++ {
		i := int(sec % int64(len(s.slots)))
		sl := &s.slots[i]
		switch held := sl.sec.Load(); {
		case held == sec && sl.peace.Load():
			b.Seconds++
			b.add(sl, i, rs)
		case held < sec && held != claiming:
			b.Seconds++ // nothing recorded: a quiet peace-time second
		}
	}
	return b
}
