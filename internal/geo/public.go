package geo

import "net/netip"

// nonPublic6 lists special-purpose IPv6 ranges (RFC 6890 and the IANA
// special-purpose registry) that Public rejects beyond netip's predicates.
var nonPublic6 = [...]netip.Prefix{
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64, RFC 8215
	netip.MustParsePrefix("100::/64"),       // discard-only, RFC 6666
	netip.MustParsePrefix("2001:db8::/32"),  // documentation, RFC 3849
	netip.MustParsePrefix("3fff::/20"),      // documentation, RFC 9637
}

// Public reports whether addr (an IPv4-mapped form is unmapped first) is a
// globally routable unicast address that attribution data can describe.
// Private (RFC 1918, RFC 4193), loopback, link-local, multicast, unspecified,
// "this network" (RFC 791), shared CGNAT space (RFC 6598), IETF protocol
// assignments (RFC 6890), documentation (RFC 5737, RFC 3849, RFC 9637),
// benchmarking (RFC 2544) and reserved (240.0.0.0/4) addresses are not:
// Lookup answers unknown for them whatever the data files say (the 2026
// ip-location-db country file maps 172.16.0.0/12, 192.168.0.0/16 and the
// TEST-NETs to "AU").
func Public(addr netip.Addr) bool {
	addr = addr.Unmap()
	if addr.Is4() {
		k := v4key(addr)
		switch k >> 24 {
		case 0, 10, 127: // this network, RFC 1918, loopback
			return false
		case 100:
			return k>>22 != 100<<2|1 // 100.64.0.0/10
		case 169:
			return k>>16 != 169<<8|254 // link-local 169.254.0.0/16
		case 172:
			return k>>20 != 172<<4|1 // 172.16.0.0/12
		case 192:
			switch k >> 8 {
			case 192<<16 | 0<<8 | 0, 192<<16 | 0<<8 | 2: // 192.0.0.0/24, 192.0.2.0/24
				return false
			}
			return k>>16 != 192<<8|168 // 192.168.0.0/16
		case 198:
			return k>>17 != 198<<7|18>>1 && k>>8 != 198<<16|51<<8|100 // 198.18.0.0/15, 198.51.100.0/24
		case 203:
			return k>>8 != 203<<16|0<<8|113 // 203.0.113.0/24
		}
		return k>>28 < 0xe // multicast 224/4, reserved 240/4, broadcast
	}
	if !addr.IsGlobalUnicast() || addr.IsPrivate() {
		return false
	}
	for _, p := range nonPublic6 {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}
