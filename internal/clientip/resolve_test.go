package clientip

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

var testTrusted = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.10/32"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
}

func mustResolver(t testing.TB, cfg Config) *Resolver {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// hdr builds a header from name/value pairs, one line per pair, as a client
// sending repeated header lines would.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []error
	}{
		{name: "zero value", cfg: Config{}},
		{name: "full", cfg: Config{TrustedProxies: testTrusted, Headers: []string{"forwarded", "x-real-ip", "X-Forwarded-For"}, IPv4PrefixBits: 32, IPv6PrefixBits: 48}},
		{name: "F06 v6 bits 128", cfg: Config{IPv6PrefixBits: 128}},
		{name: "F06 v6 bits 47", cfg: Config{IPv6PrefixBits: 47}, wantErr: []error{ErrPrefixBits}},
		{name: "F06 v6 bits 129", cfg: Config{IPv6PrefixBits: 129}, wantErr: []error{ErrPrefixBits}},
		{name: "v4 bits 33", cfg: Config{IPv4PrefixBits: 33}, wantErr: []error{ErrPrefixBits}},
		{name: "v4 bits 7", cfg: Config{IPv4PrefixBits: 7}, wantErr: []error{ErrPrefixBits}},
		{name: "trust everyone v4", cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, wantErr: []error{ErrTrustedProxy}},
		{name: "trust everyone v6", cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::/0")}}, wantErr: []error{ErrTrustedProxy}},
		{name: "trust everyone mapped", cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::ffff:0.0.0.0/96")}}, wantErr: []error{ErrTrustedProxy}},
		{name: "invalid prefix", cfg: Config{TrustedProxies: []netip.Prefix{{}}}, wantErr: []error{ErrTrustedProxy}},
		{name: "unknown header", cfg: Config{Headers: []string{"CF-Connecting-IP"}}, wantErr: []error{ErrHeader}},
		{name: "duplicate header", cfg: Config{Headers: []string{"X-Forwarded-For", "x-forwarded-for"}}, wantErr: []error{ErrHeader}},
		{name: "all problems reported", cfg: Config{IPv4PrefixBits: 40, IPv6PrefixBits: 8, Headers: []string{"Via"}}, wantErr: []error{ErrPrefixBits, ErrHeader}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("Validate() = %v, want %v", err, want)
				}
			}
			if err != nil && !strings.HasPrefix(err.Error(), "clientip: ") {
				t.Errorf("error %q lacks component prefix", err)
			}
			if r, err := New(tt.cfg); err == nil || r != nil {
				t.Errorf("New accepted an invalid config")
			}
		})
	}
}

func TestResolve(t *testing.T) {
	all := []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"}
	tests := []struct {
		name          string
		headers       []string // Config.Headers
		peer          string
		h             http.Header
		want          string
		wantSource    Source
		wantTrusted   bool
		wantMalformed bool
	}{
		// F03: an untrusted peer's forwarding headers never count.
		{
			name: "F03 untrusted peer spoofs every header", headers: all, peer: "127.0.0.2",
			h:    hdr("X-Forwarded-For", "203.0.113.5, 127.0.0.1", "X-Real-IP", "203.0.113.5", "Forwarded", "for=203.0.113.5"),
			want: "127.0.0.2", wantSource: Peer,
		},
		{
			name: "F03 trusted hop: rightmost untrusted wins", peer: "127.0.0.10",
			h:    hdr("X-Forwarded-For", "198.51.100.9, 203.0.113.5"),
			want: "203.0.113.5", wantSource: XForwardedFor, wantTrusted: true,
		},
		{
			name: "F03 allowlisted address on the left is ignored", peer: "127.0.0.10",
			h:    hdr("X-Forwarded-For", "203.0.113.5, 198.51.100.9"),
			want: "198.51.100.9", wantSource: XForwardedFor, wantTrusted: true,
		},
		{
			name: "trusted entries skipped", peer: "127.0.0.10",
			h:    hdr("X-Forwarded-For", "203.0.113.5, 198.51.100.9, 10.1.1.1, 10.2.2.2"),
			want: "198.51.100.9", wantSource: XForwardedFor, wantTrusted: true,
		},
		{
			name: "every entry trusted: leftmost", peer: "127.0.0.10",
			h:    hdr("X-Forwarded-For", "10.0.0.1, 10.0.0.2"),
			want: "10.0.0.1", wantSource: XForwardedFor, wantTrusted: true,
		},
		{
			name: "multiple header lines walked from the last", peer: "127.0.0.10",
			h:    hdr("X-Forwarded-For", "192.0.2.1", "X-Forwarded-For", "198.51.100.9, 10.0.0.7"),
			want: "198.51.100.9", wantSource: XForwardedFor, wantTrusted: true,
		},
		{
			name: "walk continues into earlier line", peer: "127.0.0.10",
			h:    hdr("X-Forwarded-For", "192.0.2.1", "X-Forwarded-For", "10.0.0.7"),
			want: "192.0.2.1", wantSource: XForwardedFor, wantTrusted: true,
		},
		{name: "trusted peer no header", peer: "127.0.0.10", h: hdr(), want: "127.0.0.10", wantSource: Peer, wantTrusted: true},
		{name: "trusted peer empty xff", peer: "127.0.0.10", h: hdr("X-Forwarded-For", " , ,"), want: "127.0.0.10", wantSource: Peer, wantTrusted: true},
		{name: "untrusted peer no header", peer: "192.0.2.44", h: nil, want: "192.0.2.44", wantSource: Peer},
		// F01: ports, brackets and zones are normalised away.
		{name: "F01 xff with port", peer: "127.0.0.10", h: hdr("X-Forwarded-For", "203.0.113.7:40001"), want: "203.0.113.7", wantSource: XForwardedFor, wantTrusted: true},
		{name: "F01 xff bracketed v6 port", peer: "127.0.0.10", h: hdr("X-Forwarded-For", "[2001:db8::7]:443"), want: "2001:db8::7", wantSource: XForwardedFor, wantTrusted: true},
		{name: "F01 zoned peer", peer: "fe80::1%lo", h: hdr("X-Forwarded-For", "192.0.2.1"), want: "fe80::1", wantSource: Peer},
		{name: "mapped peer is trusted v4", peer: "::ffff:127.0.0.10", h: hdr("X-Forwarded-For", "192.0.2.1"), want: "192.0.2.1", wantSource: XForwardedFor, wantTrusted: true},
		{name: "mapped xff entry", peer: "127.0.0.10", h: hdr("X-Forwarded-For", "::ffff:192.0.2.1"), want: "192.0.2.1", wantSource: XForwardedFor, wantTrusted: true},
		{
			name: "F01 unparseable falls back to peer", peer: "127.0.0.10", h: hdr("X-Forwarded-For", "not-an-ip"),
			want: "127.0.0.10", wantSource: Peer, wantTrusted: true, wantMalformed: true,
		},
		{
			name: "unparseable beyond trusted hop falls back to that hop", peer: "127.0.0.10", h: hdr("X-Forwarded-For", "junk, 10.9.9.9"),
			want: "10.9.9.9", wantSource: XForwardedFor, wantTrusted: true, wantMalformed: true,
		},
		{
			name: "client junk left of real client is never reached", peer: "127.0.0.10", h: hdr("X-Forwarded-For", "junk, 198.51.100.9"),
			want: "198.51.100.9", wantSource: XForwardedFor, wantTrusted: true,
		},
		{name: "xff unknown stops at peer", peer: "127.0.0.10", h: hdr("X-Forwarded-For", "unknown"), want: "127.0.0.10", wantSource: Peer, wantTrusted: true},
		{name: "xff ignored when not configured", headers: []string{"Forwarded"}, peer: "127.0.0.10", h: hdr("X-Forwarded-For", "192.0.2.1"), want: "127.0.0.10", wantSource: Peer, wantTrusted: true},
		// RFC 7239 Forwarded.
		{
			name: "forwarded quoted v6 with port", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for="[2001:db8::1]:443";proto=https`),
			want: "2001:db8::1", wantSource: Forwarded, wantTrusted: true,
		},
		{
			name: "forwarded rfc example chain", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for=192.0.2.43, for="[2001:db8:cafe::17]", for=10.0.0.3;by=203.0.113.43`),
			want: "2001:db8:cafe::17", wantSource: Forwarded, wantTrusted: true,
		},
		{
			name: "forwarded case-insensitive name and v4 port", headers: []string{"forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `proto=http;For="192.0.2.60:8080"`),
			want: "192.0.2.60", wantSource: Forwarded, wantTrusted: true,
		},
		{
			name: "forwarded obfuscated stops at last trusted hop", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for=198.51.100.1, for=_hidden, for=10.0.0.3`),
			want: "10.0.0.3", wantSource: Forwarded, wantTrusted: true,
		},
		{
			name: "forwarded unknown stops at peer", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for=unknown`),
			want: "127.0.0.10", wantSource: Peer, wantTrusted: true,
		},
		{
			name: "forwarded obfuscated port is fine", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for="198.51.100.1:_p1"`),
			want: "198.51.100.1", wantSource: Forwarded, wantTrusted: true,
		},
		{
			name: "forwarded element without for", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for=198.51.100.1, by=10.0.0.1;proto=https`),
			want: "127.0.0.10", wantSource: Peer, wantTrusted: true,
		},
		{
			name: "forwarded client garbage left of proxy element", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for="oops, for=198.51.100.7`),
			want: "198.51.100.7", wantSource: Forwarded, wantTrusted: true,
		},
		{
			name: "forwarded comma and escapes inside quotes", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for=198.51.100.7;ext="a,\"b\\"`),
			want: "198.51.100.7", wantSource: Forwarded, wantTrusted: true,
		},
		{
			name: "forwarded escaped for value", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for="198.51.100\.7"`),
			want: "198.51.100.7", wantSource: Forwarded, wantTrusted: true,
		},
		{
			name: "forwarded malformed pair", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for 198.51.100.7`),
			want: "127.0.0.10", wantSource: Peer, wantTrusted: true, wantMalformed: true,
		},
		{
			name: "forwarded bad node", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for="[2001:db8::1"`),
			want: "127.0.0.10", wantSource: Peer, wantTrusted: true, wantMalformed: true,
		},
		{
			name: "forwarded unbalanced quote at the right", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for=198.51.100.7, for=10.0.0.1"`),
			want: "127.0.0.10", wantSource: Peer, wantTrusted: true, wantMalformed: true,
		},
		{
			name: "forwarded unquoted bare v6 tolerated", headers: []string{"Forwarded"}, peer: "127.0.0.10",
			h:    hdr("Forwarded", `for=2001:db8::9`),
			want: "2001:db8::9", wantSource: Forwarded, wantTrusted: true,
		},
		// Header preference order.
		{
			name: "first configured header present decides", headers: []string{"Forwarded", "X-Forwarded-For"}, peer: "127.0.0.10",
			h:    hdr("X-Forwarded-For", "192.0.2.1", "Forwarded", "for=198.51.100.2"),
			want: "198.51.100.2", wantSource: Forwarded, wantTrusted: true,
		},
		{
			name: "next header when first absent", headers: []string{"Forwarded", "X-Forwarded-For"}, peer: "127.0.0.10",
			h:    hdr("X-Forwarded-For", "192.0.2.1"),
			want: "192.0.2.1", wantSource: XForwardedFor, wantTrusted: true,
		},
		{
			name: "malformed first header does not fall through", headers: []string{"Forwarded", "X-Forwarded-For"}, peer: "127.0.0.10",
			h:    hdr("X-Forwarded-For", "192.0.2.1", "Forwarded", "for=bogus"),
			want: "127.0.0.10", wantSource: Peer, wantTrusted: true, wantMalformed: true,
		},
		// X-Real-IP.
		{name: "x-real-ip", headers: []string{"X-Real-IP"}, peer: "127.0.0.10", h: hdr("X-Real-Ip", " 198.51.100.3:5555 "), want: "198.51.100.3", wantSource: XRealIP, wantTrusted: true},
		{name: "x-real-ip last line", headers: []string{"X-Real-IP"}, peer: "127.0.0.10", h: hdr("X-Real-Ip", "192.0.2.1", "X-Real-Ip", "198.51.100.3"), want: "198.51.100.3", wantSource: XRealIP, wantTrusted: true},
		{name: "x-real-ip list is malformed", headers: []string{"X-Real-IP"}, peer: "127.0.0.10", h: hdr("X-Real-Ip", "192.0.2.1, 198.51.100.3"), want: "127.0.0.10", wantSource: Peer, wantTrusted: true, wantMalformed: true},
		{name: "x-real-ip from untrusted", headers: []string{"X-Real-IP"}, peer: "192.0.2.99", h: hdr("X-Real-Ip", "198.51.100.3"), want: "192.0.2.99", wantSource: Peer},
		// Invalid peer: never an invalid key.
		{name: "F01 invalid peer", peer: "", h: hdr("X-Forwarded-For", "192.0.2.1"), want: "::", wantSource: Peer, wantMalformed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustResolver(t, Config{TrustedProxies: testTrusted, Headers: tt.headers})
			var peer netip.Addr
			if tt.peer != "" {
				peer = netip.MustParseAddr(tt.peer)
			}
			got := r.Resolve(peer, tt.h)
			want := netip.MustParseAddr(tt.want)
			if got.Addr != want || got.Source != tt.wantSource || got.PeerTrusted != tt.wantTrusted || got.Malformed != tt.wantMalformed {
				t.Errorf("Resolve(%s, %v) = %+v; want addr %s source %v trusted %v malformed %v",
					tt.peer, tt.h, got, want, tt.wantSource, tt.wantTrusted, tt.wantMalformed)
			}
			if got.Prefix != r.PrefixOf(want) || !got.Prefix.Contains(got.Addr) {
				t.Errorf("Prefix = %v, want %v", got.Prefix, r.PrefixOf(want))
			}
		})
	}
}

// TestF01KeysStablePerClient: 20 requests through the trusted hop with a
// fresh port each give one key per client, and plain requests from two peers
// give two distinct, non-empty keys.
func TestF01KeysStablePerClient(t *testing.T) {
	r := mustResolver(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.10/32")}})
	hop := netip.MustParseAddr("127.0.0.10")
	tests := []struct {
		name   string
		peer   netip.Addr
		format string // XFF value with %d for a fresh port; "" for no header
		want   netip.Addr
	}{
		{name: "plain requests from 127.0.0.2", peer: netip.MustParseAddr("127.0.0.2"), want: netip.MustParseAddr("127.0.0.2")},
		{name: "v4 with fresh ports", peer: hop, format: "203.0.113.7:%d", want: netip.MustParseAddr("203.0.113.7")},
		{name: "v6 bracketed with fresh ports", peer: hop, format: "[2001:db8::7]:%d", want: netip.MustParseAddr("2001:db8::7")},
	}
	keys := map[netip.Addr]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 20 {
				h := http.Header{}
				if tt.format != "" {
					h.Set("X-Forwarded-For", fmt.Sprintf(tt.format, 40001+i))
				}
				res := r.Resolve(tt.peer, h)
				if res.Addr != tt.want || !res.Prefix.IsValid() {
					t.Fatalf("request %d: key %v (prefix %v), want %v", i, res.Addr, res.Prefix, tt.want)
				}
			}
			keys[tt.want] = true
		})
	}
	other := r.Resolve(netip.MustParseAddr("127.0.0.3"), nil)
	if keys[other.Addr] || other.Addr != netip.MustParseAddr("127.0.0.3") {
		t.Errorf("127.0.0.3 shares a key: %v", other.Addr)
	}
}

// TestF03RandomSpoofedXFFOneKey: 200 requests from an untrusted peer, each
// with a different random X-Forwarded-For, all resolve to the peer.
func TestF03RandomSpoofedXFFOneKey(t *testing.T) {
	r := mustResolver(t, Config{TrustedProxies: testTrusted, Headers: []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"}})
	peer := netip.MustParseAddr("127.0.0.2")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		spoof := netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		h := hdr("X-Forwarded-For", spoof.String(), "Forwarded", "for="+spoof.String(), "X-Real-IP", spoof.String())
		if res := r.Resolve(peer, h); res.Addr != peer || res.Source != Peer || res.PeerTrusted {
			t.Fatalf("request %d with spoof %v resolved to %+v", i, spoof, res)
		}
	}
}

// TestF06PrefixKeys: addresses rotating inside one /64 share Result.Prefix;
// the length is configurable within 48..128.
func TestF06PrefixKeys(t *testing.T) {
	tests := []struct {
		name      string
		v6bits    int
		a, b      string
		wantSame  bool
		wantFirst string
	}{
		{name: "default /64 same", a: "fd00:64::1", b: "fd00:64::dead:beef:1:2", wantSame: true, wantFirst: "fd00:64::/64"},
		{name: "default /64 neighbour differs", a: "fd00:64::1", b: "fd00:65::1", wantFirst: "fd00:64::/64"},
		{name: "/48 merges /64s", v6bits: 48, a: "fd00:64::1", b: "fd00:64:0:ffff::1", wantSame: true, wantFirst: "fd00:64::/48"},
		{name: "/128 splits", v6bits: 128, a: "fd00:64::1", b: "fd00:64::2", wantFirst: "fd00:64::1/128"},
		{name: "/56", v6bits: 56, a: "fd00:64:0:1::1", b: "fd00:64:0:ff::1", wantSame: true, wantFirst: "fd00:64::/56"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustResolver(t, Config{IPv6PrefixBits: tt.v6bits})
			ra := r.Resolve(netip.MustParseAddr(tt.a), nil)
			rb := r.Resolve(netip.MustParseAddr(tt.b), nil)
			if (ra.Prefix == rb.Prefix) != tt.wantSame {
				t.Errorf("prefixes %v and %v: same = %v, want %v", ra.Prefix, rb.Prefix, ra.Prefix == rb.Prefix, tt.wantSame)
			}
			if ra.Prefix.String() != tt.wantFirst {
				t.Errorf("prefix of %s = %v, want %s", tt.a, ra.Prefix, tt.wantFirst)
			}
			if ra.Addr == rb.Addr {
				t.Error("per-address keys merged")
			}
		})
	}
	// Random rotation across the whole /64 keeps one prefix key.
	r := mustResolver(t, Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	want := netip.MustParsePrefix("fd00:64::/64")
	for range 1000 {
		var b [16]byte
		copy(b[:], want.Addr().AsSlice()[:8])
		for i := 8; i < 16; i++ {
			b[i] = byte(rng.IntN(256))
		}
		if got := r.Resolve(netip.AddrFrom16(b), nil).Prefix; got != want {
			t.Fatalf("prefix = %v, want %v", got, want)
		}
	}
}

func TestResultLogValue(t *testing.T) {
	r := mustResolver(t, Config{TrustedProxies: testTrusted})
	res := r.Resolve(netip.MustParseAddr("10.0.0.1"), hdr("X-Forwarded-For", "198.51.100.9"))
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "client", res)
	for _, want := range []string{"client.addr=198.51.100.9", "client.prefix=198.51.100.0/24", "client.source=X-Forwarded-For", "client.peer_trusted=true", "client.malformed=false"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("log %q lacks %q", b.String(), want)
		}
	}
}

func TestTrusted(t *testing.T) {
	r := mustResolver(t, Config{TrustedProxies: testTrusted})
	tests := []struct {
		name string
		addr string
		want bool
	}{
		{name: "exact", addr: "127.0.0.10", want: true},
		{name: "neighbour", addr: "127.0.0.11"},
		{name: "mapped", addr: "::ffff:10.1.2.3", want: true},
		{name: "v6 zone", addr: "2001:db8:ffff::1%eth0", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Trusted(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("Trusted(%s) = %v", tt.addr, got)
			}
		})
	}
}
