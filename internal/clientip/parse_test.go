package clientip

import (
	"net"
	"net/netip"
	"testing"
)

// TestParseAddr covers the forms of F01 (ports, brackets, zones) and junk.
func TestParseAddr(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means rejected
	}{
		{name: "v4", in: "192.0.2.1", want: "192.0.2.1"},
		{name: "F01 v4 with port", in: "203.0.113.7:40001", want: "203.0.113.7"},
		{name: "v4 port zero", in: "203.0.113.7:0", want: "203.0.113.7"},
		{name: "v4 max port", in: "203.0.113.7:65535", want: "203.0.113.7"},
		{name: "F01 bracketed v6 with port", in: "[2001:db8::7]:443", want: "2001:db8::7"},
		{name: "bracketed v6 no port", in: "[2001:db8::7]", want: "2001:db8::7"},
		{name: "bare v6", in: "2001:db8::7", want: "2001:db8::7"},
		{name: "F01 zone dropped", in: "fe80::1%lo", want: "fe80::1"},
		{name: "zone in brackets with port", in: "[fe80::1%eth0]:8080", want: "fe80::1"},
		{name: "mapped v4 unmapped", in: "::ffff:1.2.3.4", want: "1.2.3.4"},
		{name: "mapped v4 bracketed with port", in: "[::ffff:1.2.3.4]:80", want: "1.2.3.4"},
		{name: "spaces and tabs trimmed", in: " \t198.51.100.9 ", want: "198.51.100.9"},
		{name: "bracketed v4 tolerated", in: "[192.0.2.1]:80", want: "192.0.2.1"},
		{name: "empty", in: ""},
		{name: "only spaces", in: "   "},
		{name: "hostname", in: "example.com"},
		{name: "hostname with port", in: "example.com:80"},
		{name: "port too large", in: "192.0.2.1:65536"},
		{name: "port not numeric", in: "192.0.2.1:http"},
		{name: "port empty", in: "192.0.2.1:"},
		{name: "port six digits", in: "192.0.2.1:000080"},
		{name: "leading zero octet", in: "010.0.0.1"},
		{name: "unclosed bracket", in: "[2001:db8::7:443"},
		{name: "junk after bracket", in: "[2001:db8::7]x443"},
		{name: "empty brackets", in: "[]:80"},
		{name: "two addresses", in: "192.0.2.1, 192.0.2.2"},
		{name: "unknown", in: "unknown"},
		{name: "quoted", in: `"192.0.2.1"`},
		{name: "cidr", in: "192.0.2.0/24"},
		{name: "v4 with zone", in: "192.0.2.1%eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseAddr(tt.in)
			if tt.want == "" {
				if ok {
					t.Fatalf("ParseAddr(%q) = %v, want rejection", tt.in, got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("ParseAddr(%q) = %v, %v; want %s", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   netip.Addr
		want netip.Addr
	}{
		{name: "v4 unchanged", in: netip.MustParseAddr("192.0.2.1"), want: netip.MustParseAddr("192.0.2.1")},
		{name: "mapped", in: netip.MustParseAddr("::ffff:192.0.2.1"), want: netip.MustParseAddr("192.0.2.1")},
		{name: "zone", in: netip.MustParseAddr("fe80::1%lo"), want: netip.MustParseAddr("fe80::1")},
		{name: "mapped with zone", in: netip.MustParseAddr("::ffff:192.0.2.1%eth0"), want: netip.MustParseAddr("192.0.2.1")},
		{name: "invalid stays invalid", in: netip.Addr{}, want: netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Normalize(tt.in); got != tt.want {
				t.Errorf("Normalize(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestPrefixOf covers F06: the IPv6 key is the /64 (or configured length), so
// rotating inside one /64 keeps one key, while a neighbouring /64 differs.
func TestPrefixOf(t *testing.T) {
	tests := []struct {
		name           string
		addr           string
		v4bits, v6bits int
		want           string
	}{
		{name: "F06 default v6 /64", addr: "fd00:64::1234:5678:9abc:def0", v4bits: 24, v6bits: 64, want: "fd00:64::/64"},
		{name: "F06 other /64", addr: "fd00:65::1", v4bits: 24, v6bits: 64, want: "fd00:65::/64"},
		{name: "F06 /48", addr: "2001:db8:aaaa:bbbb::1", v4bits: 24, v6bits: 48, want: "2001:db8:aaaa::/48"},
		{name: "F06 /56", addr: "2001:db8:aaaa:bbbb::1", v4bits: 24, v6bits: 56, want: "2001:db8:aaaa:bb00::/56"},
		{name: "F06 /128", addr: "2001:db8::1", v4bits: 24, v6bits: 128, want: "2001:db8::1/128"},
		{name: "v4 /24", addr: "198.51.100.77", v4bits: 24, v6bits: 64, want: "198.51.100.0/24"},
		{name: "v4 /32", addr: "198.51.100.77", v4bits: 32, v6bits: 64, want: "198.51.100.77/32"},
		{name: "mapped uses v4 bits", addr: "::ffff:198.51.100.77", v4bits: 24, v6bits: 64, want: "198.51.100.0/24"},
		{name: "zone dropped", addr: "fe80::1:2:3:4%lo", v4bits: 24, v6bits: 64, want: "fe80::/64"},
		{name: "bits clamped high", addr: "192.0.2.1", v4bits: 99, v6bits: 200, want: "192.0.2.1/32"},
		{name: "bits clamped low", addr: "2001:db8::1", v4bits: -1, v6bits: -5, want: "::/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PrefixOf(netip.MustParseAddr(tt.addr), tt.v4bits, tt.v6bits)
			if got.String() != tt.want {
				t.Errorf("PrefixOf(%s, %d, %d) = %s, want %s", tt.addr, tt.v4bits, tt.v6bits, got, tt.want)
			}
		})
	}
	if p := PrefixOf(netip.Addr{}, 24, 64); p.IsValid() {
		t.Errorf("PrefixOf(invalid) = %v, want zero", p)
	}
}

func TestPeerAddr(t *testing.T) {
	tests := []struct {
		name   string
		in     net.Addr
		want   string
		wantOK bool
	}{
		{name: "tcp v4", in: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80}, want: "192.0.2.1", wantOK: true},
		{name: "tcp v4 in 16 bytes", in: &net.TCPAddr{IP: net.ParseIP("192.0.2.1").To16(), Port: 1}, want: "192.0.2.1", wantOK: true},
		{name: "tcp v6 zone", in: &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "lo"}, want: "fe80::1", wantOK: true},
		{name: "udp", in: &net.UDPAddr{IP: net.ParseIP("2001:db8::1")}, want: "2001:db8::1", wantOK: true},
		{name: "ip", in: &net.IPAddr{IP: net.ParseIP("2001:db8::2")}, want: "2001:db8::2", wantOK: true},
		{name: "unix", in: &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}},
		{name: "nil", in: nil},
		{name: "typed nil tcp", in: (*net.TCPAddr)(nil)},
		{name: "tcp without ip", in: &net.TCPAddr{Port: 80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PeerAddr(tt.in)
			if ok != tt.wantOK || (ok && got != netip.MustParseAddr(tt.want)) {
				t.Errorf("PeerAddr(%v) = %v, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1", "203.0.113.7:40001", "[2001:db8::7]:443", "2001:db8::7", "fe80::1%lo",
		"::ffff:1.2.3.4", " 1.2.3.4 ", "[", "]", "[::1]:", ":80", "1.2.3.4:99999", "%", "[%]:1",
		"::ffff:1.2.3.4%x", "unknown", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := ParseAddr(s)
		if !ok {
			if a.IsValid() {
				t.Fatalf("rejected %q but returned %v", s, a)
			}
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ParseAddr(%q) = %v: not normalised", s, a)
		}
		if b, ok := ParseAddr(a.String()); !ok || b != a {
			t.Fatalf("round trip of %q: %v -> %v, %v", s, a, b, ok)
		}
		if p := PrefixOf(a, 24, 64); !p.IsValid() || !p.Contains(a) {
			t.Fatalf("PrefixOf(%v) = %v", a, p)
		}
	})
}
