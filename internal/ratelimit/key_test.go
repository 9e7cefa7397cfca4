package ratelimit

import (
	"net/netip"
	"testing"
)

func TestKeyEquality(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	tests := []struct {
		name  string
		x, y  Key
		equal bool
	}{
		{name: "IPv4-mapped IPv6 is the IPv4 client", x: KeyFromAddr(a("192.0.2.1")), y: KeyFromAddr(a("::ffff:192.0.2.1")), equal: true},
		{name: "zone dropped", x: KeyFromAddr(a("fe80::1%eth0")), y: KeyFromAddr(a("fe80::1%eth1")), equal: true},
		{name: "F06 prefix masks host bits", x: KeyFromPrefix(p("2001:db8:0:1::1/64")), y: KeyFromPrefix(p("2001:db8:0:1:ffff::/64")), equal: true},
		{name: "mapped prefix is the IPv4 prefix", x: KeyFromPrefix(p("::ffff:192.0.2.0/120")), y: KeyFromPrefix(p("192.0.2.0/24")), equal: true},
		{name: "addr and /32 are distinct keyspaces", x: KeyFromAddr(a("192.0.2.1")), y: KeyFromPrefix(p("192.0.2.1/32"))},
		{name: "addr and /128 are distinct keyspaces", x: KeyFromAddr(a("2001:db8::1")), y: KeyFromPrefix(p("2001:db8::1/128"))},
		{name: "IPv4 and IPv4-compatible IPv6 differ", x: KeyFromAddr(a("192.0.2.1")), y: KeyFromAddr(a("::c000:201"))},
		{name: "0.0.0.0 and :: differ", x: KeyFromAddr(a("0.0.0.0")), y: KeyFromAddr(a("::"))},
		{name: "0.0.0.0/0 and ::/0 differ", x: KeyFromPrefix(p("0.0.0.0/0")), y: KeyFromPrefix(p("::/0"))},
		{name: "prefix lengths differ", x: KeyFromPrefix(p("10.0.0.0/8")), y: KeyFromPrefix(p("10.0.0.0/16"))},
		{name: "neighbouring /64s differ", x: KeyFromPrefix(p("fd00:64::/64")), y: KeyFromPrefix(p("fd00:65::/64"))},
		{name: "F01 ports never reach a key: same address same key", x: KeyFromAddr(netip.MustParseAddrPort("203.0.113.7:40001").Addr()), y: KeyFromAddr(netip.MustParseAddrPort("203.0.113.7:40002").Addr()), equal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.x.IsValid() || !tt.y.IsValid() {
				t.Fatalf("invalid key: %v %v", tt.x, tt.y)
			}
			if got := tt.x == tt.y; got != tt.equal {
				t.Fatalf("%v == %v: %v, want %v", tt.x, tt.y, got, tt.equal)
			}
		})
	}
}

func TestKeyInvalid(t *testing.T) {
	tests := []struct {
		name string
		k    Key
	}{
		{name: "zero Key", k: Key{}},
		{name: "invalid Addr", k: KeyFromAddr(netip.Addr{})},
		{name: "invalid Prefix", k: KeyFromPrefix(netip.Prefix{})},
		{name: "prefix longer than address", k: KeyFromPrefix(netip.PrefixFrom(netip.MustParseAddr("192.0.2.1"), 33))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.k.IsValid() || tt.k != (Key{}) || tt.k.String() != "invalid" || tt.k.Prefix().IsValid() {
				t.Fatalf("%#v should be the invalid zero Key", tt.k)
			}
			// F01: an invalid key never shares a bucket; it is refused and counted.
			l := mustLimiter(t, Rate{Count: 5, Period: 10e9}, Options{MaxKeys: 8})
			if d := l.AllowAt(tt.k, 0); d.Allowed || d.RetryAfter <= 0 {
				t.Fatalf("AllowAt(invalid) = %+v, want refused with RetryAfter > 0", d)
			}
			if st := l.Stats(); st.InvalidKeys != 1 || st.Keys != 0 {
				t.Fatalf("stats %+v, want 1 invalid key and no keys", st)
			}
			c, _ := NewConcurrency(2, Options{MaxKeys: 8})
			if c.Acquire(tt.k) {
				t.Fatal("Acquire(invalid) succeeded")
			}
		})
	}
}

func TestKeyPrefixAndString(t *testing.T) {
	tests := []struct {
		name       string
		k          Key
		wantPrefix string
		wantString string
	}{
		{name: "v4 addr", k: KeyFromAddr(netip.MustParseAddr("192.0.2.1")), wantPrefix: "192.0.2.1/32", wantString: "addr 192.0.2.1"},
		{name: "v6 addr", k: KeyFromAddr(netip.MustParseAddr("2001:db8::1")), wantPrefix: "2001:db8::1/128", wantString: "addr 2001:db8::1"},
		{name: "v4 prefix masked", k: KeyFromPrefix(netip.MustParsePrefix("198.51.100.77/24")), wantPrefix: "198.51.100.0/24", wantString: "prefix 198.51.100.0/24"},
		{name: "v6 prefix masked", k: KeyFromPrefix(netip.MustParsePrefix("fd00:64::abcd/64")), wantPrefix: "fd00:64::/64", wantString: "prefix fd00:64::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.k.Prefix().String(); got != tt.wantPrefix {
				t.Errorf("Prefix() = %s, want %s", got, tt.wantPrefix)
			}
			if got := tt.k.String(); got != tt.wantString {
				t.Errorf("String() = %s, want %s", got, tt.wantString)
			}
			if tt.k.IsPrefix() != (tt.wantString[0] == 'p') {
				t.Errorf("IsPrefix() = %v", tt.k.IsPrefix())
			}
		})
	}
}

// FuzzKey checks that keys are injective on (unmapped address) and on
// (masked prefix), and that Prefix() round-trips.
func FuzzKey(f *testing.F) {
	f.Add([]byte{192, 0, 2, 1}, []byte{192, 0, 2, 2}, uint8(24))
	f.Add([]byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, uint8(64))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1}, []byte{192, 0, 2, 1}, uint8(100))
	f.Fuzz(func(t *testing.T, x, y []byte, bits uint8) {
		ax, okx := netip.AddrFromSlice(x)
		ay, oky := netip.AddrFromSlice(y)
		if !okx || !oky {
			return
		}
		kx, ky := KeyFromAddr(ax), KeyFromAddr(ay)
		if !kx.IsValid() || !ky.IsValid() {
			t.Fatalf("valid addresses gave invalid keys: %v %v", ax, ay)
		}
		if (kx == ky) != (ax.Unmap() == ay.Unmap()) {
			t.Fatalf("KeyFromAddr(%v)==KeyFromAddr(%v) is %v", ax, ay, kx == ky)
		}
		if got := kx.Prefix(); got.Addr() != ax.Unmap() || got.Bits() != ax.Unmap().BitLen() {
			t.Fatalf("Prefix() of %v = %v", ax, got)
		}
		px, py := netip.PrefixFrom(ax, int(bits)), netip.PrefixFrom(ay, int(bits))
		if !px.IsValid() || !py.IsValid() {
			return
		}
		norm := func(p netip.Prefix) netip.Prefix {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
			}
			return p.Masked()
		}
		kpx, kpy := KeyFromPrefix(px), KeyFromPrefix(py)
		if (kpx == kpy) != (norm(px) == norm(py)) {
			t.Fatalf("KeyFromPrefix(%v)==KeyFromPrefix(%v) is %v", px, py, kpx == kpy)
		}
		if kpx == kx || !kpx.IsPrefix() || kx.IsPrefix() {
			t.Fatalf("prefix key %v collides with addr key %v", kpx, kx)
		}
		if got := kpx.Prefix(); got != norm(px) {
			t.Fatalf("Prefix() of %v = %v, want %v", px, got, norm(px))
		}
	})
}
