package detect

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

// GeoFunc attributes an address to a country (ISO 3166-1 alpha-2, "" when
// unknown) and an origin AS number (0 when unknown). Used for packet-level
// incidents, whose records carry no attribution.
type GeoFunc func(netip.Addr) (country string, asn uint32)

// attribution accumulates an incident's figures from the ticks since the
// first suspicious one. Memory is bounded by the space-saving summaries
// (Metwally, Agrawal and El Abbadi 2005), each of 4× the entries reported:
// 4 × TopNetworks counters for prefixes and ASNs, 4 × TopN for the rest.
type attribution struct {
	topN, topNetworks int
	asName            func(uint32) string

	requests, packets uint64
	peakRPS, peakPPS  float64
	peakBPS           float64
	sources           *stats.HLL
	countries         *stats.TopK[string]
	asns              *stats.TopK[string]
	prefixes          *stats.TopK[string]
	paths             *stats.TopK[string]
	uas               *stats.TopK[string]
}

func newAttribution(c *Config, asName func(uint32) string) *attribution {
	k, kn := 4*c.TopN, 4*c.TopNetworks
	return &attribution{
		topN: c.TopN, topNetworks: c.TopNetworks, asName: asName,
		countries: stats.NewTopK[string](k),
		asns:      stats.NewTopK[string](kn),
		prefixes:  stats.NewTopK[string](kn),
		paths:     stats.NewTopK[string](k),
		uas:       stats.NewTopK[string](k),
	}
}

func (a *attribution) addHLL(h *stats.HLL) {
	if h == nil {
		return
	}
	if a.sources == nil {
		a.sources = h.Clone()
		return
	}
	if a.sources.Merge(h) != nil {
		a.sources = h.Clone() // precision changed: restart rather than mix
	}
}

// addSite folds one site tick (and its window view) in.
func (a *attribution) addSite(t *stats.SiteSnapshot, v *SiteView) {
	a.requests += t.Requests
	a.peakRPS = max(a.peakRPS, v.Rate(RPS))
	a.peakBPS = max(a.peakBPS, 8*v.Rate(BytesPS))
	a.addHLL(t.SourcesHLL)
	for _, e := range t.TopCountries {
		a.countries.Add(e.Key, e.Count)
	}
	for _, e := range t.TopASNs {
		a.asns.Add(incident.ASNKey(e.Key), sure(e.Count, e.Err))
	}
	for _, e := range t.TopPrefixes {
		a.prefixes.Add(e.Key.String(), sure(e.Count, e.Err))
	}
	for _, e := range t.TopPaths {
		a.paths.Add(e.Path, e.Count)
	}
	for _, e := range t.TopUserAgents {
		a.uas.Add(e.Key, e.Count)
	}
}

// addDest folds one destination tick in. Source attribution comes from the
// packet-level heavy hitters of the whole tick (net), which the
// destination under attack dominates.
func (a *attribution) addDest(d *stats.DestSnapshot, v *DestView, net *stats.NetSnapshot, geo GeoFunc) {
	if d != nil {
		a.packets += d.Packets
		a.addHLL(d.SourcesHLL)
	}
	a.peakPPS = max(a.peakPPS, v.Rate(PPS))
	a.peakBPS = max(a.peakBPS, v.Rate(BPS))
	if d == nil || net == nil {
		return
	}
	// Per tick, only the counts space-saving guarantees (Count − Err) are
	// added: summing each tick's over-estimates made a prefix that sent one
	// packet show 93 in an incident. The destination's own packets (its
	// replies, when a capture has both directions) are not attack sources.
	for _, e := range net.TopSourcePrefixes {
		if e.Key.Contains(d.Dst) {
			continue
		}
		if n := sure(e.Count, e.Err); n > 0 {
			a.prefixes.Add(e.Key.String(), n)
		}
	}
	if geo != nil {
		for _, e := range net.TopSources {
			n := sure(e.Count, e.Err)
			if e.Key == d.Dst || n == 0 {
				continue
			}
			cc, asn := geo(e.Key)
			if cc == "" {
				cc = "unknown"
			}
			a.countries.Add(cc, n)
			a.asns.Add(incident.ASNKey(asn), n)
		}
	}
}

// sure returns the count a space-saving entry is guaranteed to have.
func sure(count, err uint64) uint64 {
	if err >= count {
		return 0
	}
	return count - err
}

func topCounts(t *stats.TopK[string], n int) []incident.Count {
	out := []incident.Count{}
	for _, e := range t.Top(nil, n) {
		out = append(out, incident.Count{Key: e.Key, Count: e.Count})
	}
	return out
}

// fill copies the figures into in, naming the ASNs with asName when set.
func (a *attribution) fill(in *incident.Incident) {
	in.Requests, in.Packets = a.requests, a.packets
	in.PeakRPS, in.PeakPPS, in.PeakBPS = a.peakRPS, a.peakPPS, a.peakBPS
	if a.sources != nil {
		in.Sources = a.sources.Estimate()
	}
	in.TopCountries = topCounts(a.countries, a.topN)
	in.TopASNs = topCounts(a.asns, a.topNetworks)
	if a.asName != nil {
		for i := range in.TopASNs {
			if n, ok := incident.ParseASNKey(in.TopASNs[i].Key); ok {
				in.TopASNs[i].Name = a.asName(n)
			}
		}
	}
	in.TopPrefixes = topCounts(a.prefixes, a.topNetworks)
	in.TopPaths = topCounts(a.paths, a.topN)
	in.TopUserAgents = topCounts(a.uas, a.topN)
}

// incidentID returns a unique, start-time-sortable id.
func incidentID(start time.Time, target string, seq uint64) string {
	h := uint32(seq*0x9e3779b1) ^ uint32(len(target))
	for i := 0; i < len(target); i++ {
		h = h*16777619 ^ uint32(target[i])
	}
	safe := make([]byte, 0, len(target))
	for i := 0; i < len(target) && len(safe) < 40; i++ {
		c := target[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.':
			safe = append(safe, c)
		default:
			safe = append(safe, '_')
		}
	}
	return fmt.Sprintf("%s-%s-%04x", start.UTC().Format("20060102T150405Z"), safe, h&0xffff)
}
