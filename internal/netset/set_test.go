package netset

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func mustPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestSetContainsLookup(t *testing.T) {
	set := New(mustPrefixes(t,
		"192.0.2.0/24",
		"192.0.2.128/25",
		"198.51.100.7/32",
		"2001:db8::/32",
		"2001:db8:1::/48",
		"::ffff:203.0.113.0/120", // IPv4-mapped: stored as 203.0.113.0/24
	)...)
	tests := []struct {
		name   string
		addr   string
		want   bool
		wantPf string
	}{
		{name: "inside v4 /24", addr: "192.0.2.1", want: true, wantPf: "192.0.2.0/24"},
		{name: "longest match wins", addr: "192.0.2.200", want: true, wantPf: "192.0.2.128/25"},
		{name: "host entry", addr: "198.51.100.7", want: true, wantPf: "198.51.100.7/32"},
		{name: "next to host entry", addr: "198.51.100.8", want: false},
		{name: "mapped address matches v4 entry", addr: "::ffff:192.0.2.1", want: true, wantPf: "192.0.2.0/24"},
		{name: "mapped entry matches v4 address", addr: "203.0.113.9", want: true, wantPf: "203.0.113.0/24"},
		{name: "v6 inside /32", addr: "2001:db8:2::1", want: true, wantPf: "2001:db8::/32"},
		{name: "v6 longest", addr: "2001:db8:1::1", want: true, wantPf: "2001:db8:1::/48"},
		{name: "v6 with zone", addr: "2001:db8:1::1%eth0", want: true, wantPf: "2001:db8:1::/48"},
		{name: "v6 outside", addr: "2001:db9::1", want: false},
		{name: "v4 outside", addr: "10.0.0.1", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if got := set.Contains(a); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", a, got, tt.want)
			}
			p, ok := set.Lookup(a)
			if ok != tt.want {
				t.Fatalf("Lookup(%s) ok = %v, want %v", a, ok, tt.want)
			}
			if ok && p.String() != tt.wantPf {
				t.Errorf("Lookup(%s) = %s, want %s", a, p, tt.wantPf)
			}
		})
	}
}

func TestSetEmptyAndInvalid(t *testing.T) {
	tests := []struct {
		name string
		set  *Set
	}{
		{name: "nil set", set: nil},
		{name: "zero set", set: &Set{}},
		{name: "New without prefixes", set: New()},
		{name: "only invalid prefixes", set: New(netip.Prefix{}, netip.MustParsePrefix("::ffff:0:0/64"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set.Contains(netip.MustParseAddr("192.0.2.1")) {
				t.Error("empty set contains 192.0.2.1")
			}
			if _, ok := tt.set.Lookup(netip.MustParseAddr("2001:db8::1")); ok {
				t.Error("empty set Lookup found a prefix")
			}
			if tt.set.Len() != 0 || len(tt.set.Prefixes()) != 0 {
				t.Errorf("Len = %d, Prefixes = %v, want empty", tt.set.Len(), tt.set.Prefixes())
			}
		})
	}
	if New(netip.MustParsePrefix("0.0.0.0/0")).Contains(netip.Addr{}) {
		t.Error("invalid address contained in 0.0.0.0/0")
	}
}

func TestSetLenPrefixesDedupMask(t *testing.T) {
	set := New(mustPrefixes(t, "2001:db8::1/32", "192.0.2.7/24", "192.0.2.0/24", "10.0.0.0/8", "::ffff:10.0.0.0/104")...)
	want := mustPrefixes(t, "10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32")
	if got := set.Prefixes(); !slices.Equal(got, want) {
		t.Errorf("Prefixes() = %v, want %v", got, want)
	}
	if set.Len() != 3 {
		t.Errorf("Len() = %d, want 3", set.Len())
	}
	if !set.Equal(New(want...)) || set.Equal(New(want[:2]...)) {
		t.Error("Equal gives the wrong answer")
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "v4 address is /32", in: "1.2.3.4", want: "1.2.3.4/32"},
		{name: "v4 cidr", in: "1.2.3.0/24", want: "1.2.3.0/24"},
		{name: "host bits masked", in: "1.2.3.4/24", want: "1.2.3.0/24"},
		{name: "spaces trimmed", in: " \t10.0.0.0/8 ", want: "10.0.0.0/8"},
		{name: "v6 address is /128", in: "2001:db8::1", want: "2001:db8::1/128"},
		{name: "v6 cidr masked", in: "2001:db8::1/32", want: "2001:db8::/32"},
		{name: "v6 zone dropped", in: "fe80::1%eth0", want: "fe80::1/128"},
		{name: "mapped address to v4", in: "::ffff:1.2.3.4", want: "1.2.3.4/32"},
		{name: "mapped prefix to v4", in: "::ffff:1.2.3.0/120", want: "1.2.3.0/24"},
		{name: "mapped prefix too short", in: "::ffff:0:0/95", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "junk", in: "example.com", wantErr: true},
		{name: "bits too large", in: "1.2.3.4/33", wantErr: true},
		{name: "leading zero octet", in: "01.2.3.4", wantErr: true},
		{name: "port is not a prefix", in: "1.2.3.4:80", wantErr: true},
		{name: "zone with prefix", in: "fe80::1%eth0/64", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrefix(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidPrefix) {
					t.Fatalf("ParsePrefix(%q) = %v, %v; want ErrInvalidPrefix", tt.in, got, err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("ParsePrefix(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func BenchmarkSetContains(b *testing.B) {
	var ps []netip.Prefix
	for i := range 10000 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 8), byte(i), 0, 0}), 16))
	}
	set := New(ps...)
	a := netip.MustParseAddr("10.20.30.40")
	b.ReportAllocs()
	for b.Loop() {
		set.Contains(a)
	}
}
