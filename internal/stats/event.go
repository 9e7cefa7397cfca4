package stats

import (
	"net/netip"
	"time"
)

// Request is one HTTP request as traffic accounting sees it. It is filled on
// the request path (live) or by a replay reader (recorded traffic) and passed
// by pointer; accounting never retains the pointer or its strings past the
// call, so callers may reuse the value.
type Request struct {
	// Time is the event time in Unix nanoseconds (the record's own timestamp
	// in replay; time.Now at request start live).
	Time int64
	// Site is the index of the site in the configuration (0 for single-site).
	Site int
	// Addr is the resolved client address (already normalised: no zone,
	// IPv4-mapped IPv6 unmapped).
	Addr netip.Addr
	// Prefix is Addr's aggregate prefix (/24 for IPv4, /64 for IPv6 by default).
	Prefix netip.Prefix
	// ASN is the origin autonomous system number of Addr, 0 when unknown.
	ASN uint32
	// Country is the ISO 3166-1 alpha-2 code of Addr, "" when unknown.
	Country string
	// Method is the HTTP method ("GET", "POST", ...).
	Method string
	// Path is the URL path without the query string.
	Path string
	// Query is the raw query string without the leading '?', "" when absent.
	Query string
	// UserAgent is the User-Agent header value, "" when absent.
	UserAgent string
	// Referer reports whether the request carried a Referer header.
	Referer bool
	// Status is the HTTP status sent to the client (0 if none was sent).
	Status int
	// Bytes is the number of response body bytes sent to the client.
	Bytes int64
	// OriginLatency is the time the origin took to answer; 0 when the shield
	// answered itself.
	OriginLatency time.Duration
	// OriginError reports a transport error or 5xx from the origin.
	OriginError bool
	// Verdict is the filter chain's action code (0 = passed to origin); see
	// package filter for the values. Codes ≥ NumVerdicts-1 are counted
	// together in the last slot.
	Verdict uint8
	// SampleRate is the number of requests this record stands for when the
	// input is sampled; 0 and 1 both mean "unsampled" (live requests are
	// never sampled, so the zero value is right for them).
	SampleRate uint32
}

// Packet is one network packet (or one sampled flow record scaled by its
// sampling rate) as traffic accounting sees it. Used by pcap replay and, later,
// by flow collectors.
type Packet struct {
	// Time is the capture time in Unix nanoseconds.
	Time int64
	// Src and Dst are the IP source and destination.
	Src, Dst netip.Addr
	// SrcPort and DstPort are the transport ports (0 for ICMP and fragments
	// without a transport header).
	SrcPort, DstPort uint16
	// Proto is the IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
	Proto uint8
	// TCPFlags holds the TCP flag bits (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08
	// ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80); 0 for non-TCP.
	TCPFlags uint8
	// Length is the IP packet length in bytes.
	Length int
	// Fragment reports an IP fragment (non-first fragment or MF set).
	Fragment bool
	// SampleRate is the number of packets this record stands for (1 for a
	// full capture; the sampling rate for sFlow/NetFlow). Must not be 0: a 0
	// is counted as 1 and reported in Snapshot.ZeroSampleRate so that a
	// decoder that lost the rate is visible instead of silently under-counting.
	SampleRate uint32
}

// SlowKind names a slow-connection attack pattern reported by the listener.
type SlowKind uint8

// Slow-connection kinds.
const (
	// Slowloris: request headers trickled so the header deadline expired.
	Slowloris SlowKind = iota
	// SlowPost: a request body trickled below the minimum rate (R.U.D.Y.).
	SlowPost
	// SlowRead: the client read the response below the minimum rate (small
	// TCP window).
	SlowRead
	// NumSlowKinds is the number of SlowKind values.
	NumSlowKinds
)

// String returns the vector name: "slowloris", "slow_post" or "slow_read".
func (k SlowKind) String() string {
	switch k {
	case Slowloris:
		return "slowloris"
	case SlowPost:
		return "slow_post"
	case SlowRead:
		return "slow_read"
	}
	return "slow_unknown"
}
