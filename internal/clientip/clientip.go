// Package clientip decides who the client of a request is.
//
// The client is the TCP peer unless the peer is one of the configured trusted
// proxies; only then are forwarding headers (X-Forwarded-For, RFC 7239
// Forwarded, X-Real-IP — whichever are configured, in order) consulted, walking
// from the right and skipping further trusted proxies. A PROXY protocol
// (HAProxy v1/v2) header is honoured only from trusted peers too; see
// [ProxyListener]. Addresses are normalised (IPv4-mapped IPv6 unmapped, zones
// dropped, ports stripped) and every client gets two comparable keys: its
// address and its network prefix (/24 for IPv4 and /64 for IPv6 by default),
// so that a client rotating addresses inside one IPv6 /64 stays one client.
//
// This package is security-critical: see DESIGN.md for its invariants.
package clientip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/textproto"

	"github.com/portcullis/portcullis/internal/netset"
)

// Defaults and limits of [Config].
const (
	// DefaultIPv4PrefixBits is the IPv4 key prefix length when unset.
	DefaultIPv4PrefixBits = 24
	// DefaultIPv6PrefixBits is the IPv6 key prefix length when unset: one
	// customer LAN.
	DefaultIPv6PrefixBits = 64
	// MinIPv4PrefixBits is the shortest IPv4 key prefix accepted.
	MinIPv4PrefixBits = 8
	// MinIPv6PrefixBits is the shortest IPv6 key prefix accepted.
	MinIPv6PrefixBits = 48
)

// Header names accepted in Config.Headers (matched case-insensitively).
const (
	// HeaderXForwardedFor is the de-facto X-Forwarded-For list header.
	HeaderXForwardedFor = "X-Forwarded-For"
	// HeaderForwarded is the RFC 7239 Forwarded header.
	HeaderForwarded = "Forwarded"
	// HeaderXRealIP is X-Real-IP in Go's canonical header form.
	HeaderXRealIP = "X-Real-Ip"
)

// Sentinel errors wrapped by [Config.Validate] and [New].
var (
	// ErrTrustedProxy: a TrustedProxies entry is invalid, or is a /0 that
	// would trust every peer on the Internet.
	ErrTrustedProxy = errors.New("invalid trusted proxy prefix")
	// ErrPrefixBits: IPv4PrefixBits outside 8..32 or IPv6PrefixBits outside
	// 48..128.
	ErrPrefixBits = errors.New("prefix length out of range")
	// ErrHeader: a Headers entry is not one of the supported names, or is
	// listed twice.
	ErrHeader = errors.New("unsupported forwarding header")
)

// Config says whom to trust and how to key clients. The zero value trusts no
// proxy: every client is its TCP peer.
type Config struct {
	// TrustedProxies are the networks of proxies (load balancers, CDNs,
	// ingress) whose forwarding headers and PROXY protocol headers are
	// believed. IPv4-mapped IPv6 prefixes are taken as IPv4; /0 is refused.
	TrustedProxies []netip.Prefix
	// Headers lists the forwarding headers to honour from trusted proxies,
	// in order of preference: any of "X-Forwarded-For", "Forwarded" (RFC
	// 7239) and "X-Real-IP". The first one present in a request decides.
	// Empty means ["X-Forwarded-For"].
	Headers []string
	// IPv4PrefixBits is the IPv4 prefix length of Result.Prefix, 8..32;
	// 0 means 24.
	IPv4PrefixBits int
	// IPv6PrefixBits is the IPv6 prefix length of Result.Prefix, 48..128;
	// 0 means 64.
	IPv6PrefixBits int
}

// Validate reports every problem in c, joined, each wrapping ErrTrustedProxy,
// ErrPrefixBits or ErrHeader and prefixed "clientip:". It does not modify c.
func (c Config) Validate() error {
	var errs []error
	for i, p := range c.TrustedProxies {
		np, ok := netset.NormalizePrefix(p)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("clientip: trusted_proxies[%d] %v: %w", i, p, ErrTrustedProxy))
		case np.Bits() == 0:
			errs = append(errs, fmt.Errorf("clientip: trusted_proxies[%d] %v: %w: trusting every address lets any client forge its identity", i, p, ErrTrustedProxy))
		}
	}
	if b := c.IPv4PrefixBits; b != 0 && (b < MinIPv4PrefixBits || b > 32) {
		errs = append(errs, fmt.Errorf("clientip: ipv4_prefix_bits %d: %w (want %d..32)", b, ErrPrefixBits, MinIPv4PrefixBits))
	}
	if b := c.IPv6PrefixBits; b != 0 && (b < MinIPv6PrefixBits || b > 128) {
		errs = append(errs, fmt.Errorf("clientip: ipv6_prefix_bits %d: %w (want %d..128)", b, ErrPrefixBits, MinIPv6PrefixBits))
	}
	seen := map[string]bool{}
	for i, h := range c.Headers {
		k := textproto.CanonicalMIMEHeaderKey(h)
		switch {
		case k != HeaderXForwardedFor && k != HeaderForwarded && k != HeaderXRealIP:
			errs = append(errs, fmt.Errorf("clientip: headers[%d] %q: %w (want X-Forwarded-For, Forwarded or X-Real-IP)", i, h, ErrHeader))
		case seen[k]:
			errs = append(errs, fmt.Errorf("clientip: headers[%d] %q: %w: listed twice", i, h, ErrHeader))
		}
		seen[k] = true
	}
	return errors.Join(errs...)
}

// Source says where Result.Addr came from.
type Source uint8

// Sources of a client address.
const (
	// Peer: the TCP peer (after any PROXY protocol header from a trusted
	// peer), because the peer is untrusted, sent no usable forwarding
	// header, or the header's chain ended in an unknown hop.
	Peer Source = iota
	// XForwardedFor: an X-Forwarded-For entry.
	XForwardedFor
	// Forwarded: an RFC 7239 Forwarded "for=" node.
	Forwarded
	// XRealIP: the X-Real-IP header.
	XRealIP
)

// String returns the header name, or "peer".
func (s Source) String() string {
	switch s {
	case XForwardedFor:
		return "X-Forwarded-For"
	case Forwarded:
		return "Forwarded"
	case XRealIP:
		return "X-Real-IP"
	default:
		return "peer"
	}
}

// Result is the resolved identity of one request's client.
type Result struct {
	// Addr is the normalised client address (no zone, never IPv4-mapped).
	// It is always valid.
	Addr netip.Addr
	// Prefix is Addr masked to the configured IPv4/IPv6 prefix length: the
	// key for per-network limits and bans. It is always valid.
	Prefix netip.Prefix
	// Source says where Addr came from.
	Source Source
	// PeerTrusted reports whether the TCP peer is a trusted proxy.
	PeerTrusted bool
	// Malformed reports that a trusted peer sent a forwarding value that
	// could not be parsed, so Addr fell back to the nearest trusted hop
	// (the peer when there is none). Callers should log or count it.
	Malformed bool
}

// LogValue implements slog.LogValuer.
func (r Result) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", r.Addr.String()),
		slog.String("prefix", r.Prefix.String()),
		slog.String("source", r.Source.String()),
		slog.Bool("peer_trusted", r.PeerTrusted),
		slog.Bool("malformed", r.Malformed),
	)
}

// headerKind is a supported forwarding header.
type headerKind uint8

const (
	kindXFF headerKind = iota
	kindForwarded
	kindXRealIP
)

// Resolver resolves client identities for one Config. It is immutable and
// safe for concurrent use.
type Resolver struct {
	trusted *netset.Set
	headers []headerKind
	v4bits  int
	v6bits  int
}

// New validates cfg (see [Config.Validate]) and returns a Resolver for it.
func New(cfg Config) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Resolver{
		trusted: netset.New(cfg.TrustedProxies...),
		v4bits:  cfg.IPv4PrefixBits,
		v6bits:  cfg.IPv6PrefixBits,
	}
	if r.v4bits == 0 {
		r.v4bits = DefaultIPv4PrefixBits
	}
	if r.v6bits == 0 {
		r.v6bits = DefaultIPv6PrefixBits
	}
	if len(cfg.Headers) == 0 {
		r.headers = []headerKind{kindXFF}
	}
	for _, h := range cfg.Headers {
		switch textproto.CanonicalMIMEHeaderKey(h) {
		case HeaderXForwardedFor:
			r.headers = append(r.headers, kindXFF)
		case HeaderForwarded:
			r.headers = append(r.headers, kindForwarded)
		case HeaderXRealIP:
			r.headers = append(r.headers, kindXRealIP)
		}
	}
	return r, nil
}

// Trusted reports whether a (normalised first) is inside a trusted proxy
// prefix. It can be passed to [ProxyListener].
func (r *Resolver) Trusted(a netip.Addr) bool {
	return r.trusted.Contains(Normalize(a))
}

// PrefixOf returns a's network prefix with the configured lengths; see the
// package-level [PrefixOf].
func (r *Resolver) PrefixOf(a netip.Addr) netip.Prefix {
	return PrefixOf(a, r.v4bits, r.v6bits)
}

// Resolve returns the client of a request that arrived from peer (the TCP
// peer, or the PROXY protocol source from a trusted peer) carrying headers h.
//
// If peer is not a trusted proxy, the client is peer and h is not looked at.
// Otherwise the configured headers are tried in order and the first one
// present decides:
//
//   - X-Forwarded-For (all lines, comma lists) and Forwarded "for=" (RFC
//     7239 §5.2) are walked from the right, skipping entries that are
//     themselves trusted proxies; the first untrusted entry is the client.
//     If every entry is trusted, the leftmost is the client. An "unknown" or
//     obfuscated ("_x", RFC 7239 §6.3) node, or a Forwarded element without
//     "for=", ends the walk: the client is the nearest trusted hop to its
//     right (the peer if none). An unparseable entry does the same and sets
//     Malformed.
//   - X-Real-IP (last line) is the client as is; unparseable sets Malformed
//     and keeps peer.
//
// An invalid peer (a caller bug) yields the unspecified address "::" with
// Malformed set, so that Result.Addr is never invalid. Resolve does not
// allocate, except on the Malformed path and for Forwarded values with
// quoted-pair escapes.
func (r *Resolver) Resolve(peer netip.Addr, h http.Header) Result {
	peer = Normalize(peer)
	if !peer.IsValid() {
		a := netip.IPv6Unspecified()
		return Result{Addr: a, Prefix: r.PrefixOf(a), Source: Peer, Malformed: true}
	}
	res := Result{Addr: peer, Source: Peer}
	if r.trusted.Contains(peer) {
		res.PeerTrusted = true
		for _, k := range r.headers {
			var done bool
			switch k {
			case kindXFF:
				done = r.walkChain(&res, XForwardedFor, h[HeaderXForwardedFor], lastXFFEntry, xffNode)
			case kindForwarded:
				done = r.walkChain(&res, Forwarded, h[HeaderForwarded], lastElement, forwardedNode)
			case kindXRealIP:
				done = realIP(&res, h[HeaderXRealIP])
			}
			if done {
				break
			}
		}
	}
	res.Prefix = r.PrefixOf(res.Addr)
	return res
}
