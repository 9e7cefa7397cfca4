package mitigate

import (
	"net/netip"
	"strconv"
	"testing"
)

// benchSet returns a set of n decisions like those of a large attack: 60%
// IPv4 addresses in 10.0.0.0/8, 25% IPv6 /64s, 10% IPv4 /24s, the rest
// ASNs, plus a country, a route and a fingerprint decision.
func benchSet(n int) *DecisionSet {
	s := NewDecisionSet(0)
	ds := make([]Decision, 0, n+3)
	for i := range n {
		d := Decision{ID: "d" + strconv.Itoa(i), Site: i % 3, Action: Action(1 + i%3), RatePerSecond: 5}
		switch {
		case i%20 < 12:
			d.Scope, d.Prefix = ScopeAddress, AddressPrefix(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		case i%20 < 17:
			d.Scope, d.Prefix = ScopePrefix, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i)}), 64)
		case i%20 < 19:
			d.Scope, d.Prefix = ScopePrefix, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i >> 8), byte(i), 0}), 24)
		default:
			d.Scope, d.ASN = ScopeASN, uint32(64512+i)
		}
		ds = append(ds, d)
	}
	ds = append(ds,
		Decision{ID: "c", Site: -1, Scope: ScopeCountry, Country: "ZZ", Action: Challenge},
		Decision{ID: "r", Site: -1, Scope: ScopeRoute, Route: "/admin", Action: Block},
		Decision{ID: "f", Site: -1, Scope: ScopeFingerprint, Fingerprint: "bot", Action: Block},
	)
	if err := s.Add(ds...); err != nil {
		panic(err)
	}
	return s
}

// BenchmarkLookup measures DecisionSet.Lookup over 10,000 decisions: a hit
// on an address decision, a hit on an IPv6 /64, and a miss (the common case
// for legitimate traffic).
func BenchmarkLookup(b *testing.B) {
	s := benchSet(10_000)
	cases := []struct {
		name    string
		addr    netip.Addr
		wantHit bool
	}{
		{"hit_v4_address", netip.AddrFrom4([4]byte{10, 0, 0, 3}), true},
		{"hit_v6_prefix", netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 9}), true},
		{"miss_v4", netip.MustParseAddr("192.0.2.77"), false},
		{"miss_v6", netip.MustParseAddr("2a00:1450:4001:80b::200e"), false},
	}
	ua := FingerprintHash("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if _, ok := s.Lookup(0, c.addr, 3320, "DE", "/donate", ua); ok != c.wantHit {
				b.Fatalf("hit = %v, want %v", ok, c.wantHit)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Lookup(0, c.addr, 3320, "DE", "/donate", ua)
			}
		})
	}
}

// BenchmarkApply measures one control-path write (rebuild) at 10,000
// decisions.
func BenchmarkApply(b *testing.B) {
	s := benchSet(10_000)
	d := Decision{ID: "x", Scope: ScopeAddress, Prefix: pfx("192.0.2.1"), Action: Block}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Add(d)
	}
}
