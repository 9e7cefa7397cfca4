package stats

import (
	"net/netip"
	"time"

	"github.com/cespare/xxhash/v2"
)

// LabelBytes is the length to which paths and user agents are truncated in
// records and heavy-hitter labels.
const LabelBytes = 128

// Request record flags.
const (
	recReferer = 1 << iota
	recOriginErr
	recQuery
)

// reqRecord is the compact, pointer-light copy of a Request that travels
// through the ring. Strings are copied (truncated to LabelBytes) because the
// caller may reuse their memory after ObserveRequest returns.
type reqRecord struct {
	time      int64
	addr      netip.Addr
	prefix    netip.Prefix
	bytes     int64
	latency   int64
	queryHash uint64
	asn       uint32
	weight    uint32
	site      uint16
	status    uint16
	country   [2]byte
	verdict   uint8
	flags     uint8
	method    uint8
	pathLen   uint8
	uaLen     uint8
	path      [LabelBytes]byte
	ua        [LabelBytes]byte
}

// Methods in the order of SiteSnapshot.Methods' source counters.
var methodNames = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

const methodOther = uint8(len(methodNames) - 1)

func methodCode(m string) uint8 {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "PATCH":
		return 5
	case "OPTIONS":
		return 6
	case "CONNECT":
		return 7
	case "TRACE":
		return 8
	}
	return methodOther
}

// labels stores one truncated label per TopK slot, in one fixed slab.
type labels struct {
	buf  []byte
	lens []uint8
}

func newLabels(n int) labels {
	return labels{buf: make([]byte, n*LabelBytes), lens: make([]uint8, n)}
}

func (l *labels) set(slot int32, b []byte) {
	n := copy(l.buf[int(slot)*LabelBytes:(int(slot)+1)*LabelBytes], b)
	l.lens[slot] = uint8(n)
}

func (l *labels) get(slot int32) string {
	o := int(slot) * LabelBytes
	return string(l.buf[o : o+int(l.lens[slot])])
}

// routeAcc accumulates one configured route.
type routeAcc struct {
	route        Route
	method       uint8 // methodCode(route.Method), or 255 for any
	requests     uint64
	status       [6]uint64
	authFailures uint64
	sources      *HLL
}

// siteAcc is one site's drain-side accumulator for the current tick. Only
// the drain lock holder touches it.
type siteAcc struct {
	name        string
	status      [6]uint64
	verdicts    [NumVerdicts]uint64
	originReq   uint64
	originErr   uint64
	lat         LatencyHistogram
	referer     uint64
	assets      uint64
	pages       uint64
	ua          [NumUAClasses]uint64
	methods     [len(methodNames)]uint64
	countries   [26*26 + 1]uint64 // last slot: unknown
	sources     *HLL
	paths       *HLL
	queries     *HLL
	addrs       *TopK[addrKey]
	prefixes    *TopK[addrKey]
	asns        *TopK[uint32]
	pathTop     *TopK[uint64]
	pathLabels  labels
	pathQueries []*HLL
	pathWithQ   []uint64
	uaTop       *TopK[uint64]
	uaLabels    labels
	uaClass     []UAClass
	routes      []routeAcc
	scratch     []byte
	records     int // records drained this tick
}

func newSiteAcc(c *Config, sc *SiteConfig) *siteAcc {
	s := &siteAcc{
		name:       sc.Name,
		sources:    NewHLL(c.SourcePrecision),
		paths:      NewHLL(10),
		queries:    NewHLL(12),
		addrs:      NewTopK[addrKey](c.TopK),
		prefixes:   NewTopK[addrKey](c.TopK),
		asns:       NewTopK[uint32](c.TopK),
		pathTop:    NewTopK[uint64](c.TopPaths),
		pathLabels: newLabels(c.TopPaths),
		pathWithQ:  make([]uint64, c.TopPaths),
		uaTop:      NewTopK[uint64](c.TopK),
		uaLabels:   newLabels(c.TopK),
		uaClass:    make([]UAClass, c.TopK),
		scratch:    make([]byte, 0, 2*LabelBytes),
	}
	s.pathQueries = make([]*HLL, c.TopPaths)
	for i := range s.pathQueries {
		s.pathQueries[i] = NewHLL(c.QueryPrecision)
	}
	for _, r := range sc.Routes {
		m := uint8(255)
		if r.Method != "" {
			m = methodCode(r.Method)
		}
		s.routes = append(s.routes, routeAcc{route: r, method: m, sources: NewHLL(10)})
	}
	return s
}

// HashAddr returns a well-mixed 64-bit hash of an address (for HLL.AddHash).
// An IPv4 address and its IPv4-mapped IPv6 form hash alike.
func HashAddr(a netip.Addr) uint64 {
	hi, lo := halves(a)
	return hash128(hi, lo)
}

// DefaultPrefix returns the aggregate prefix of a: /24 for IPv4, /64 for
// IPv6; the zero Prefix for an invalid address.
func DefaultPrefix(a netip.Addr) netip.Prefix {
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// add folds one request record into the accumulator.
func (s *siteAcc) add(r *reqRecord) {
	s.records++
	w := uint64(r.weight)
	st := int(r.status / 100)
	if st > 5 {
		st = 0
	}
	s.status[st] += w
	v := int(r.verdict)
	if v >= NumVerdicts {
		v = NumVerdicts - 1
	}
	s.verdicts[v] += w
	if r.latency > 0 || r.flags&recOriginErr != 0 {
		s.originReq += w
		if r.flags&recOriginErr != 0 {
			s.originErr += w
		}
		if r.latency > 0 {
			s.lat.Add(durationOf(r.latency), w)
		}
	}
	if r.flags&recReferer != 0 {
		s.referer += w
	}
	path := r.path[:r.pathLen]
	if IsAssetPath(path) {
		s.assets += w
	} else {
		s.pages += w
	}
	ua := r.ua[:r.uaLen]
	s.methods[r.method] += w
	s.countries[countryIndex(r.country)] += w

	var ah uint64
	if r.addr.IsValid() {
		hi, lo := halves(r.addr)
		ah = hash128(hi, lo)
		s.sources.AddHash(ah)
		s.addrs.Add(addrKey{hi: hi, lo: lo, bits: -1}, w)
		if r.prefix.IsValid() {
			s.prefixes.Add(keyOfPrefix(r.prefix), w)
		} else {
			s.prefixes.Add(keyOfDefaultPrefix(hi, lo), w)
		}
	}
	s.asns.Add(r.asn, w)

	s.scratch = AppendNormalizedPath(s.scratch[:0], path, LabelBytes)
	ph := xxhash.Sum64(s.scratch)
	s.paths.AddHash(ph)
	slot, fresh := s.pathTop.Add(ph, w)
	if fresh {
		s.pathLabels.set(slot, s.scratch)
		s.pathQueries[slot].Reset()
		s.pathWithQ[slot] = 0
	}
	if r.flags&recQuery != 0 {
		s.pathWithQ[slot] += w
		s.pathQueries[slot].AddHash(r.queryHash)
		s.queries.AddHash(mix64(r.queryHash ^ ph))
	}

	// User agents are classified once per monitored agent: the class is
	// kept with its slot.
	uh := xxhash.Sum64(ua)
	uslot, fresh := s.uaTop.Add(uh, w)
	if fresh {
		s.uaLabels.set(uslot, ua)
		s.uaClass[uslot] = ClassifyUserAgent(ua)
	}
	s.ua[s.uaClass[uslot]] += w

	for i := range s.routes {
		ra := &s.routes[i]
		if ra.method != 255 && ra.method != r.method {
			continue
		}
		if !matchPathPrefix(ra.route.Path, path) {
			continue
		}
		ra.requests += w
		ra.status[st] += w
		if r.status == 401 || r.status == 403 {
			ra.authFailures += w
		}
		if r.addr.IsValid() {
			ra.sources.AddHash(ah)
		}
	}
}

func countryIndex(c [2]byte) int {
	a, b := c[0]|0x20, c[1]|0x20 // lower-case
	if a < 'a' || a > 'z' || b < 'a' || b > 'z' {
		return 26 * 26
	}
	return int(a-'a')*26 + int(b-'a')
}

func countryName(i int) string {
	if i == 26*26 {
		return "unknown"
	}
	return string([]byte{'A' + byte(i/26), 'A' + byte(i%26)})
}

// snapshot fills out's sketch-side fields and resets the accumulator.
func (s *siteAcc) snapshot(out *SiteSnapshot, topN int) {
	out.Name = s.name
	for i := range s.routes {
		out.Routes = append(out.Routes, RouteSnapshot{Name: s.routes[i].route.Name})
	}
	if s.records == 0 {
		return // nothing drained this tick: all sketch fields stay zero
	}
	out.Routes = out.Routes[:0]
	out.Status = s.status
	out.Verdicts = s.verdicts
	out.OriginRequests, out.OriginErrors = s.originReq, s.originErr
	out.Latency = s.lat
	out.LatencyP50 = s.lat.Quantile(0.50)
	out.LatencyP99 = s.lat.Quantile(0.99)
	out.WithReferer, out.Assets, out.Pages = s.referer, s.assets, s.pages
	out.UserAgentClasses = s.ua
	out.Sources = s.sources.Estimate()
	out.SourcesHLL = s.sources.Clone()
	out.DistinctPaths = s.paths.Estimate()
	out.DistinctQueries = s.queries.Estimate()
	for i, n := range s.methods {
		if n > 0 {
			out.Methods = append(out.Methods, Counted[string]{Key: methodNames[i], Count: n})
		}
	}
	sortCounted(out.Methods)
	for i, n := range s.countries {
		if n > 0 {
			out.TopCountries = append(out.TopCountries, Counted[string]{Key: countryName(i), Count: n})
		}
	}
	sortCounted(out.TopCountries)
	if len(out.TopCountries) > topN {
		out.TopCountries = out.TopCountries[:topN]
	}
	out.TopAddrs = topAddrs(s.addrs, topN)
	out.TopPrefixes = topPrefixes(s.prefixes, topN)
	out.TopASNs = s.asns.Top(nil, topN)
	for _, e := range s.pathTop.Top(nil, topN) {
		out.TopPaths = append(out.TopPaths, PathCount{
			Path: s.pathLabels.get(e.slot), Count: e.Count, Err: e.Err,
			WithQuery: s.pathWithQ[e.slot], Queries: s.pathQueries[e.slot].Estimate(),
		})
	}
	for _, e := range s.uaTop.Top(nil, topN) {
		out.TopUserAgents = append(out.TopUserAgents, Counted[string]{Key: s.uaLabels.get(e.slot), Count: e.Count, Err: e.Err})
	}
	for i := range s.routes {
		ra := &s.routes[i]
		out.Routes = append(out.Routes, RouteSnapshot{
			Name: ra.route.Name, Requests: ra.requests, Status: ra.status,
			AuthFailures: ra.authFailures, Sources: ra.sources.Estimate(),
		})
	}
	s.reset()
}

func (s *siteAcc) reset() {
	s.records = 0
	s.status = [6]uint64{}
	s.verdicts = [NumVerdicts]uint64{}
	s.originReq, s.originErr = 0, 0
	s.lat = LatencyHistogram{}
	s.referer, s.assets, s.pages = 0, 0, 0
	s.ua = [NumUAClasses]uint64{}
	s.methods = [len(methodNames)]uint64{}
	s.countries = [26*26 + 1]uint64{}
	s.sources.Reset()
	s.paths.Reset()
	s.queries.Reset()
	s.addrs.Reset()
	s.prefixes.Reset()
	s.asns.Reset()
	s.pathTop.Reset()
	s.uaTop.Reset()
	for i := range s.routes {
		ra := &s.routes[i]
		ra.requests, ra.status, ra.authFailures = 0, [6]uint64{}, 0
		ra.sources.Reset()
	}
}

func durationOf(ns int64) time.Duration { return time.Duration(ns) }
