package attack

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"

	"github.com/pires/go-proxyproto"
)

// userAgents are browser user agents the Go and wrk drivers rotate through,
// as floods from botnets usually claim to be browsers.
var userAgents = [...]string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
}

// validSources returns sources without invalid addresses, unmapped and
// without zones.
func validSources(sources []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(sources))
	for _, a := range sources {
		if a.IsValid() {
			out = append(out, a.Unmap().WithZone(""))
		}
	}
	return out
}

// sourceStrings renders sources for X-Forwarded-For.
func sourceStrings(sources []netip.Addr) []string {
	out := make([]string, len(sources))
	for i, a := range sources {
		out[i] = a.String()
	}
	return out
}

// writeProxyHeader writes a PROXY protocol v1 header (HAProxy's
// proxy-protocol.txt §2.1) to w claiming src:port as the source of conn, to
// conn's remote address.
func writeProxyHeader(w io.Writer, conn net.Conn, src netip.Addr, port int) error {
	dst, ok := conn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("attack: PROXY header: remote %v is not TCP", conn.RemoteAddr())
	}
	srcAddr := &net.TCPAddr{IP: src.Unmap().AsSlice(), Port: port}
	h := proxyproto.HeaderProxyFromAddrs(1, srcAddr, dst)
	if _, err := h.WriteTo(w); err != nil {
		return fmt.Errorf("attack: PROXY header: %w", err)
	}
	return nil
}

// bustQuery returns path with a random cache-busting query parameter.
func bustQuery(path string, rng *rand.Rand) string {
	sep := "?"
	for i := 0; i < len(path); i++ {
		if path[i] == '?' {
			sep = "&"
			break
		}
	}
	return path + sep + "cb=" + strconv.FormatUint(rng.Uint64(), 36)
}

// loginBody is a made-up credential-stuffing form body (RFC 1866 §8.2.1
// urlencoded).
func loginBody(rng *rand.Rand) string {
	return "username=user" + strconv.Itoa(rng.IntN(1_000_000)) + "%40example.org&password=" +
		strconv.FormatUint(rng.Uint64(), 36)
}
