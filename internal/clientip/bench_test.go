package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

func BenchmarkResolve(b *testing.B) {
	r := mustResolver(b, Config{TrustedProxies: testTrusted, Headers: []string{"X-Forwarded-For", "Forwarded"}})
	cases := []struct {
		name string
		peer netip.Addr
		h    http.Header
	}{
		{name: "untrusted_no_header", peer: netip.MustParseAddr("198.51.100.9"), h: http.Header{"User-Agent": {"x"}}},
		{name: "untrusted_spoofed_xff", peer: netip.MustParseAddr("198.51.100.9"), h: http.Header{"X-Forwarded-For": {"1.2.3.4"}}},
		{name: "trusted_no_header", peer: netip.MustParseAddr("127.0.0.10"), h: http.Header{}},
		{name: "trusted_xff_one", peer: netip.MustParseAddr("127.0.0.10"), h: http.Header{"X-Forwarded-For": {"203.0.113.5"}}},
		{name: "trusted_xff_port", peer: netip.MustParseAddr("127.0.0.10"), h: http.Header{"X-Forwarded-For": {"203.0.113.5:40001"}}},
		{name: "trusted_xff_chain3", peer: netip.MustParseAddr("127.0.0.10"), h: http.Header{"X-Forwarded-For": {"198.51.100.9, 203.0.113.5, 10.0.0.7"}}},
		{name: "trusted_xff_v6", peer: netip.MustParseAddr("2001:db8:ffff::1"), h: http.Header{"X-Forwarded-For": {"[2001:db8::7]:443"}}},
		{name: "trusted_forwarded", peer: netip.MustParseAddr("127.0.0.10"), h: http.Header{"X-Forwarded-For": {}, "Forwarded": {`for="[2001:db8::1]:443";proto=https, for=10.0.0.3`}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Resolve(c.peer, c.h)
			}
		})
	}
}

func BenchmarkParseAddr(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseAddr("[2001:db8::7]:443")
	}
}
