package clientip

import (
	"net"
	"net/netip"
	"strings"
)

// ParseAddr parses one address as found in RemoteAddr, X-Forwarded-For or
// X-Real-IP and normalises it (see [Normalize]). Accepted forms, with
// surrounding spaces and tabs trimmed: "192.0.2.1", "192.0.2.1:5",
// "2001:db8::7", "[2001:db8::7]", "[2001:db8::7]:443", "fe80::1%lo" (zone
// dropped), "::ffff:192.0.2.1" (becomes 192.0.2.1). Ports must be 0..65535
// in decimal. Anything else (names, empty strings, "1.2.3.4:x", IPv4 with
// leading zeros) reports false. A bare IPv6 address cannot carry a port:
// "2001:db8::1:443" is the address 2001:db8::1:443.
func ParseAddr(s string) (netip.Addr, bool) {
	s = trimOWS(s)
	if s == "" {
		return netip.Addr{}, false
	}
	host := s
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return netip.Addr{}, false
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		// Exactly one colon: IPv4 with a port.
		if !validPort(s[i+1:]) {
			return netip.Addr{}, false
		}
		host = s[:i]
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return Normalize(a), true
}

// Normalize returns a with any IPv6 zone dropped and an IPv4-mapped IPv6
// address (::ffff:a.b.c.d) turned into the IPv4 address, so that one client
// has one form. An invalid address stays invalid.
func Normalize(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// PrefixOf returns the network of a: a (normalised) masked to v4bits if it is
// IPv4, else to v6bits. Bit counts are clamped to 0..32 and 0..128. It
// returns the zero Prefix only for an invalid a.
func PrefixOf(a netip.Addr, v4bits, v6bits int) netip.Prefix {
	a = Normalize(a)
	if !a.IsValid() {
		return netip.Prefix{}
	}
	bits := v6bits
	if a.Is4() {
		bits = v4bits
	}
	bits = max(0, min(bits, a.BitLen()))
	p, _ := a.Prefix(bits)
	return p
}

// PeerAddr returns the normalised IP address of a connection endpoint
// (*net.TCPAddr, *net.UDPAddr, *net.IPAddr, or any net.Addr whose String is
// accepted by [ParseAddr]). It reports false for non-IP addresses such as
// Unix sockets.
func PeerAddr(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case nil:
		return netip.Addr{}, false
	case *net.TCPAddr:
		if a == nil {
			return netip.Addr{}, false
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		return Normalize(ip), ok
	case *net.UDPAddr:
		if a == nil {
			return netip.Addr{}, false
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		return Normalize(ip), ok
	case *net.IPAddr:
		if a == nil {
			return netip.Addr{}, false
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		return Normalize(ip), ok
	case *net.UnixAddr:
		return netip.Addr{}, false
	default:
		return ParseAddr(a.String())
	}
}

// validPort reports whether s is a decimal port 0..65535 (1 to 5 digits).
func validPort(s string) bool {
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// trimOWS trims HTTP optional whitespace (spaces and tabs) from both ends.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
