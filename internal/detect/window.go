package detect

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

// tickSpan is one tick's bounds.
type tickSpan struct{ start, end int64 }

// siteWindow keeps a site's last ticks and derives its SiteView.
type siteWindow struct {
	length int64 // window length, ns
	origin int64 // start of the first tick ever seen
	ticks  []*stats.SiteSnapshot
	spans  []tickSpan
	n      int // ticks kept (≤ len(ticks))
	pos    int
	union  *stats.HLL
}

// newSiteWindow returns a window of the given length in ticks of tick.
// Rates are counts over the last length divided by length (or by the time
// since the first tick, early on); ticks a driver skipped count as empty.
func newSiteWindow(length, tick time.Duration) *siteWindow {
	n := int(length / tick)
	return &siteWindow{length: int64(length), ticks: make([]*stats.SiteSnapshot, n), spans: make([]tickSpan, n)}
}

// push adds a tick and fills v from the window.
func (w *siteWindow) push(s *stats.SiteSnapshot, span tickSpan, v *SiteView) {
	w.ticks[w.pos] = s
	w.spans[w.pos] = span
	w.pos = (w.pos + 1) % len(w.ticks)
	w.n = min(w.n+1, len(w.ticks))

	*v = SiteView{Tick: s, Routes: v.Routes}
	clear(v.Routes)
	var bytes, slow, h2, conns, origin, originErr float64
	var lat stats.LatencyHistogram
	addrs := map[netip.Addr]uint64{}
	pfx := map[netip.Prefix]uint64{}
	var hlls []*stats.HLL
	var single uint64
	var routeSrc = map[string]uint64{}
	var queries float64
	for i := 0; i < w.n; i++ {
		t := w.ticks[i]
		sp := w.spans[i]
		if sp.start < span.end-w.length {
			continue // older than the window (ticks were skipped since)
		}
		v.Requests += float64(t.Requests)
		bytes += float64(t.Bytes)
		v.WithReferer += float64(t.WithReferer)
		v.Assets += float64(t.Assets)
		v.Pages += float64(t.Pages)
		for k, n := range t.UserAgentClasses {
			v.UAClasses[k] += float64(n)
		}
		for k, n := range t.Slow {
			slow += float64(n)
			v.Slow[k] += float64(n)
		}
		h2 += float64(t.H2Resets)
		conns += float64(t.ConnNew)
		origin += float64(t.OriginRequests)
		originErr += float64(t.OriginErrors)
		lat.Merge(&t.Latency)
		queries += float64(t.DistinctQueries)
		for _, e := range t.TopAddrs {
			addrs[e.Key] += e.Count
		}
		for _, e := range t.TopPrefixes {
			pfx[e.Key] += e.Count
		}
		if t.SourcesHLL != nil {
			hlls = append(hlls, t.SourcesHLL)
			single = t.Sources
		}
		for _, r := range t.Routes {
			if v.Routes == nil {
				v.Routes = map[string]RouteRates{}
			}
			rr := v.Routes[r.Name]
			rr.Requests += float64(r.Requests)
			rr.AuthFailures += float64(r.AuthFailures)
			if t == s {
				routeSrc[r.Name] = r.Sources
			}
			v.Routes[r.Name] = rr
		}
	}
	if w.origin == 0 {
		w.origin = span.start
	}
	d := time.Duration(min(w.length, span.end-w.origin))
	v.Window = d
	v.TickDuration = time.Duration(span.end - span.start)
	for name, rr := range v.Routes {
		rr.RPS = perSecond(rr.Requests, d)
		rr.AuthFailureRPS = perSecond(rr.AuthFailures, d)
		rr.Sources = routeSrc[name]
		v.Routes[name] = rr
	}
	r := &v.Rates
	r[RPS] = perSecond(v.Requests, d)
	r[BytesPS] = perSecond(bytes, d)
	r[Sources] = float64(unionEstimate(&w.union, hlls, single))
	r[NewConnPS] = perSecond(conns, d)
	r[SlowPS] = perSecond(slow, d)
	r[H2ResetPS] = perSecond(h2, d)
	r[OriginP99] = lat.Quantile(0.99).Seconds()
	if origin > 0 {
		r[OriginErrRatio] = originErr / origin
	}
	r[DistinctQueries] = queries
	v.TopAddrs = mergeTop(addrs)
	v.TopPrefixes = mergeTop(pfx)
}

func mergeTop[K comparable](m map[K]uint64) []stats.Counted[K] {
	out := make([]stats.Counted[K], 0, len(m))
	for k, n := range m {
		out = append(out, stats.Counted[K]{Key: k, Count: n})
	}
	slices.SortFunc(out, func(a, b stats.Counted[K]) int { return cmp.Compare(b.Count, a.Count) })
	return out
}

// destWindow keeps one destination's last ticks.
type destWindow struct {
	length int64
	origin int64
	ticks  []stats.DestSnapshot
	spans  []tickSpan
	n      int
	pos    int
	union  *stats.HLL
	zero   stats.DestSnapshot
}

func newDestWindow(length, tick time.Duration) *destWindow {
	n := int(length / tick)
	return &destWindow{length: int64(length), ticks: make([]stats.DestSnapshot, n), spans: make([]tickSpan, n)}
}

// push adds a tick (d nil: the destination was silent) and fills v.
func (w *destWindow) push(dst netip.Addr, d *stats.DestSnapshot, span tickSpan, v *DestView) {
	if d == nil {
		w.zero = stats.DestSnapshot{Dst: dst}
		d = &w.zero
	}
	w.ticks[w.pos] = *d
	w.spans[w.pos] = span
	w.pos = (w.pos + 1) % len(w.ticks)
	w.n = min(w.n+1, len(w.ticks))

	*v = DestView{Dst: dst, Tick: d}
	var hlls []*stats.HLL
	var single uint64
	s := &v.Sum
	for i := 0; i < w.n; i++ {
		t := &w.ticks[i]
		if w.spans[i].start < span.end-w.length {
			continue
		}
		addTraffic(&s.Traffic, t.Traffic)
		addTraffic(&s.TCP, t.TCP)
		addTraffic(&s.UDP, t.UDP)
		addTraffic(&s.ICMP, t.ICMP)
		addTraffic(&s.Other, t.Other)
		addTraffic(&s.Fragments, t.Fragments)
		addTraffic(&s.UDPOther, t.UDPOther)
		for k := range t.Amplification {
			addTraffic(&s.Amplification[k], t.Amplification[k])
		}
		s.SYN += t.SYN
		s.SYNACK += t.SYNACK
		s.ACK += t.ACK
		s.ACKData += t.ACKData
		s.RST += t.RST
		s.FIN += t.FIN
		s.SentSYN += t.SentSYN
		s.Sources = max(s.Sources, t.Sources)
		s.Flows = max(s.Flows, t.Flows)
		if t.SourcesHLL != nil {
			hlls = append(hlls, t.SourcesHLL)
			single = t.Sources
		}
	}
	v.WindowSources = unionEstimate(&w.union, hlls, single)
	if w.origin == 0 {
		w.origin = span.start
	}
	dur := time.Duration(min(w.length, span.end-w.origin))
	v.Window = dur
	r := &v.Rates
	r[PPS] = perSecond(float64(s.Packets), dur)
	r[BPS] = 8 * perSecond(float64(s.Bytes), dur)
	r[SYNPPS] = perSecond(float64(s.SYN), dur)
	r[ACKPPS] = perSecond(float64(s.ACK), dur)
	r[RSTPPS] = perSecond(float64(s.RST), dur)
	r[SYNACKPPS] = perSecond(float64(s.SYNACK), dur)
	r[UDPPPS] = perSecond(float64(s.UDP.Packets), dur)
	r[ICMPPPS] = perSecond(float64(s.ICMP.Packets), dur)
	r[FragPPS] = perSecond(float64(s.Fragments.Packets), dur)
}

// silent reports whether the whole window is empty.
func (w *destWindow) silent() bool {
	for i := 0; i < w.n; i++ {
		if w.ticks[i].Packets > 0 && w.spans[i].end > w.spans[(w.pos+len(w.spans)-1)%len(w.spans)].end-w.length {
			return false
		}
	}
	return true
}

func addTraffic(dst *stats.Traffic, t stats.Traffic) {
	dst.Packets += t.Packets
	dst.Bytes += t.Bytes
}

// unionEstimate estimates the distinct count of the union of hlls, reusing
// *scratch; single is the estimate of hlls[0] when it is the only one (no
// merge needed).
func unionEstimate(scratch **stats.HLL, hlls []*stats.HLL, single uint64) uint64 {
	switch len(hlls) {
	case 0:
		return 0
	case 1:
		return single
	}
	if *scratch == nil {
		*scratch = hlls[0].Clone()
	} else {
		(*scratch).CopyFrom(hlls[0])
	}
	for _, h := range hlls[1:] {
		_ = (*scratch).Merge(h) // same precision: one accountant
	}
	return (*scratch).Estimate()
}
