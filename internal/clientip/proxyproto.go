package clientip

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// DefaultProxyHeaderTimeout is the PROXY header read timeout [ProxyListener]
// uses when given a non-positive one.
const DefaultProxyHeaderTimeout = 5 * time.Second

// ProxyListener wraps ln so that connections from trusted peers may start with
// a PROXY protocol header (HAProxy PROXY protocol v1 text or v2 binary,
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt), implemented
// by github.com/pires/go-proxyproto.
//
// Policy, decided per connection on the TCP peer address (normalised):
//   - trusted(peer) is true: a header is used if present (USE); the
//     connection's RemoteAddr then reports the header's source address.
//     Without a header, or with a LOCAL / UNKNOWN header (health checks),
//     RemoteAddr is the peer. A header whose source is not an IP address
//     (AF_UNIX) fails the connection.
//   - otherwise (including non-IP peers and a nil trusted): a header is
//     refused (REJECT): the first Read fails with
//     proxyproto.ErrSuperfluousProxyHeader, so the HTTP server closes the
//     connection, and RemoteAddr stays the peer. Connections without a
//     header are unaffected.
//
// headerTimeout bounds how long header detection waits for the first bytes
// of a connection; zero or negative means DefaultProxyHeaderTimeout. The
// detection never disables itself: an unbounded wait would let idle
// connections pin goroutines.
func ProxyListener(ln net.Listener, trusted func(netip.Addr) bool, headerTimeout time.Duration) net.Listener {
	if headerTimeout <= 0 {
		headerTimeout = DefaultProxyHeaderTimeout
	}
	return &proxyproto.Listener{
		Listener: ln,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if a, ok := PeerAddr(o.Upstream); ok && trusted != nil && trusted(a) {
				return proxyproto.USE, nil
			}
			return proxyproto.REJECT, nil
		},
		ValidateHeader:    validateProxyHeader,
		ReadHeaderTimeout: headerTimeout,
	}
}

// validateProxyHeader refuses PROXY headers whose source is not an IP
// address, so RemoteAddr is always an IP endpoint.
func validateProxyHeader(h *proxyproto.Header) error {
	if h.Command.IsLocal() || h.TransportProtocol.IsUnspec() {
		return nil
	}
	if _, ok := PeerAddr(h.SourceAddr); !ok {
		return fmt.Errorf("clientip: PROXY header source %v is not an IP address", h.SourceAddr)
	}
	return nil
}
