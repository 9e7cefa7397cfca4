package stats

import (
	"net/netip"
	"time"
)

// NumVerdicts is the number of verdict slots in SiteSnapshot.Verdicts.
const NumVerdicts = 8

// NumUAClasses is the number of UAClass values.
const NumUAClasses = int(numUAClasses)

// Snapshot is one tick of accounting: everything observed since the previous
// Snapshot call. It is immutable once returned and safe to share between
// goroutines; its sketches (HLL fields) must not be modified (Clone them).
// Counts are requests or packets already multiplied by their sampling rate.
type Snapshot struct {
	// Start and End bound the tick in Unix nanoseconds (event time): the
	// previous snapshot's End (or the Begin time) and the now passed to
	// Snapshot.
	Start, End int64
	// Sites holds one entry per configured site, in configuration order.
	Sites []SiteSnapshot
	// Net is the packet-level view (pcap, flows).
	Net NetSnapshot
	// Dropped counts records that reached the exact counters but not the
	// sketches this tick because the ring was full while another goroutine
	// was draining (heavy-hitter and distinct counts are then a sample).
	Dropped uint64
	// ZeroSampleRate counts packet records that arrived with SampleRate 0
	// (counted as 1). Non-zero means a decoder lost the sampling rate.
	ZeroSampleRate uint64
	// BadSite counts requests with a Site index outside the configuration
	// (ignored).
	BadSite uint64
}

// Duration returns End-Start, at least 1 ns.
func (s *Snapshot) Duration() time.Duration {
	if d := time.Duration(s.End - s.Start); d > 0 {
		return d
	}
	return 1
}

// SiteSnapshot is one site's accounting for one tick.
type SiteSnapshot struct {
	// Site is the index in the configuration and Name its name.
	Site int
	Name string
	// Requests and Bytes (response body bytes) are exact, even when records
	// were dropped from the sketches.
	Requests, Bytes uint64
	// Status counts responses by class: [0] no status, [1] 1xx … [5] 5xx.
	Status [6]uint64
	// Verdicts counts requests by filter-chain verdict code (0 = passed).
	Verdicts [NumVerdicts]uint64
	// OriginRequests counts requests that went to the origin (latency > 0
	// or an origin error) and OriginErrors those that failed there.
	OriginRequests, OriginErrors uint64
	// Latency is the origin latency histogram; LatencyP50 and LatencyP99 its
	// quantiles (0 without origin requests).
	Latency                LatencyHistogram
	LatencyP50, LatencyP99 time.Duration
	// ConnOpen is the number of open connections at the end of the tick;
	// ConnNew, ConnRefused connections accepted and refused in the tick.
	ConnOpen             int64
	ConnNew, ConnRefused uint64
	// Slow counts slow connections by kind in the tick.
	Slow [NumSlowKinds]uint64
	// H2Resets counts HTTP/2 streams reset by the client in the tick.
	H2Resets uint64
	// WithReferer counts requests carrying a Referer; Assets and Pages split
	// requests by IsAssetPath.
	WithReferer, Assets, Pages uint64
	// UserAgentClasses counts requests by UAClass.
	UserAgentClasses [NumUAClasses]uint64
	// Sources is the estimated number of distinct client addresses
	// (HyperLogLog) and SourcesHLL the sketch itself, for unions over ticks.
	Sources    uint64
	SourcesHLL *HLL
	// DistinctPaths and DistinctQueries estimate distinct normalised paths
	// and distinct (path, query string) pairs.
	DistinctPaths, DistinctQueries uint64
	// Methods counts requests by method, heaviest first.
	Methods []Counted[string]
	// Heavy hitters, heaviest first, at most Config.TopN each (space-saving).
	TopAddrs      []Counted[netip.Addr]
	TopPrefixes   []Counted[netip.Prefix]
	TopASNs       []Counted[uint32]
	TopCountries  []Counted[string] // ISO 3166-1 alpha-2, "unknown"
	TopPaths      []PathCount
	TopUserAgents []Counted[string] // truncated to LabelBytes; "" = none
	// Routes holds one entry per configured route, in configuration order.
	Routes []RouteSnapshot
}

// PathCount is one heavy-hitter normalised path with its cache-busting
// evidence.
type PathCount struct {
	Path       string
	Count, Err uint64
	// WithQuery counts requests to the path carrying a query string, and
	// Queries estimates their distinct query strings (HyperLogLog): Queries
	// close to WithQuery means nearly every request had a fresh query, the
	// signature of cache busting.
	WithQuery, Queries uint64
}

// RouteSnapshot is one configured route's accounting for one tick.
type RouteSnapshot struct {
	Name     string
	Requests uint64
	// Status counts responses by class as in SiteSnapshot.Status.
	Status [6]uint64
	// AuthFailures counts 401 and 403 responses.
	AuthFailures uint64
	// Sources estimates the route's distinct client addresses.
	Sources uint64
}

// Traffic is a packet and byte count (scaled by sampling).
type Traffic struct {
	Packets, Bytes uint64
}

func (t *Traffic) add(w, bytes uint64) {
	t.Packets += w
	t.Bytes += bytes
}

// NetSnapshot is the packet-level accounting of one tick.
type NetSnapshot struct {
	// Total is exact (counted before the ring).
	Total Traffic
	// By protocol and fragments (sketch side).
	TCP, UDP, ICMP, Other, Fragments Traffic
	// TCP packets by flag class (see DestSnapshot).
	SYN, SYNACK, ACK, ACKData, RST, FIN uint64
	// Sources estimates distinct packet source addresses; SourcesHLL is the
	// sketch.
	Sources    uint64
	SourcesHLL *HLL
	// TopSources and TopSourcePrefixes (/24, /64) are packet heavy hitters.
	TopSources        []Counted[netip.Addr]
	TopSourcePrefixes []Counted[netip.Prefix]
	// Dests lists per-destination counters, heaviest (packets) first, for
	// at most Config.MaxDestinations destinations; the first destinations
	// seen in the tick get a slot, later ones count in OtherDestinations.
	Dests             []DestSnapshot
	OtherDestinations Traffic
	// SYNSenders lists the addresses that sent SYNs (without ACK) in the tick
	// but received no packet, so have no Dests entry, with their SYN counts:
	// most SYNs first, at most Config.MaxDestinations. A consumer summing
	// DestSnapshot.SentSYN over several ticks adds these to know whether a
	// destination opened connections at all (a SYN and its SYN-ACK may fall
	// in different ticks). Best effort: during a spoofed SYN flood the
	// bounded table is full of spoofed sources and further senders are lost.
	SYNSenders []Counted[netip.Addr]
}

// DestSnapshot is one destination address's packet accounting for a tick.
//
// TCP flag classes: SYN = SYN without ACK; SYNACK = SYN+ACK; RST = RST set;
// ACK = ACK (optionally PSH) without SYN/RST/FIN and no payload (IP length
// ≤ SmallPacketBytes); ACKData = the same with payload; FIN = FIN without
// SYN/RST.
type DestSnapshot struct {
	Dst netip.Addr
	Traffic
	TCP, UDP, ICMP, Other, Fragments    Traffic
	SYN, SYNACK, ACK, ACKData, RST, FIN uint64
	// SentSYN counts SYNs this address itself sent in the tick, so RSTs and
	// SYN-ACKs answering them (backscatter of its own connections or flood)
	// are not mistaken for an attack on it. SYNs sent before the address
	// received its first packet of the tick count too (best effort, see
	// NetSnapshot.SYNSenders).
	SentSYN uint64
	// Amplification counts UDP from well-known reflector source ports,
	// indexed like AmplificationVectors; UDPOther the rest of UDP.
	Amplification [NumAmplificationVectors]Traffic
	UDPOther      Traffic
	// Sources estimates distinct source addresses; Flows distinct
	// (source, source port, destination port, protocol) tuples.
	Sources    uint64
	SourcesHLL *HLL
	Flows      uint64
}

// SmallPacketBytes is the IP length at or below which a TCP ACK counts as
// carrying no payload (IPv4/IPv6 header + TCP header with options).
const SmallPacketBytes = 80

// AmplificationVector is a UDP reflection/amplification vector recognised by
// the reflector's source port.
type AmplificationVector struct {
	// Name is the vector's short name, used in "udp_amplification:<name>".
	Name string
	// Ports are the reflector source ports.
	Ports []uint16
}

// NumAmplificationVectors is len(AmplificationVectors()).
const NumAmplificationVectors = 20

// AmplificationVectors returns the recognised reflector services and their
// UDP source ports (REFERENCE.md; US-CERT TA14-017A and later advisories).
// The index of a vector is its index in DestSnapshot.Amplification.
func AmplificationVectors() [NumAmplificationVectors]AmplificationVector {
	return [...]AmplificationVector{
		{"dns", []uint16{53}},
		{"ntp", []uint16{123}},
		{"snmp", []uint16{161}},
		{"ssdp", []uint16{1900}},
		{"cldap", []uint16{389}},
		{"memcached", []uint16{11211}},
		{"chargen", []uint16{19}},
		{"qotd", []uint16{17}},
		{"portmap", []uint16{111}},
		{"netbios", []uint16{137}},
		{"mssql", []uint16{1434}},
		{"rip", []uint16{520}},
		{"isakmp", []uint16{500, 4500}},
		{"ws_discovery", []uint16{3702}},
		{"arms", []uint16{3283}},
		{"bacnet", []uint16{47808}},
		{"tftp", []uint16{69}},
		{"openvpn", []uint16{1194}},
		{"coap", []uint16{5683}},
		{"sip", []uint16{5060}},
	}
}

// amplificationIndex returns the AmplificationVectors index of a UDP source
// port, or -1.
func amplificationIndex(port uint16) int {
	switch port {
	case 53:
		return 0
	case 123:
		return 1
	case 161:
		return 2
	case 1900:
		return 3
	case 389:
		return 4
	case 11211:
		return 5
	case 19:
		return 6
	case 17:
		return 7
	case 111:
		return 8
	case 137:
		return 9
	case 1434:
		return 10
	case 520:
		return 11
	case 500, 4500:
		return 12
	case 3702:
		return 13
	case 3283:
		return 14
	case 47808:
		return 15
	case 69:
		return 16
	case 1194:
		return 17
	case 5683:
		return 18
	case 5060:
		return 19
	}
	return -1
}
