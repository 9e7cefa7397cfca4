package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

// FuzzResolve feeds arbitrary peers and forwarding headers through a
// Resolver honouring all three headers: it must never panic, Result.Addr and
// Result.Prefix are always valid and normalised, an untrusted peer always
// resolves to itself (F03), and any non-peer answer came from a header.
func FuzzResolve(f *testing.F) {
	seeds := []struct{ peer, xff, fwd, realIP string }{
		{"127.0.0.10", "198.51.100.9, 203.0.113.5", "", ""},
		{"127.0.0.2", "203.0.113.5, 127.0.0.1", "for=203.0.113.5", "203.0.113.5"},
		{"10.0.0.1", "203.0.113.7:40001", "", ""},
		{"10.0.0.1", "[2001:db8::7]:443", "", ""},
		{"fe80::1%lo", "", "", ""},
		{"::ffff:10.0.0.1", "junk, 10.0.0.2", "", ""},
		{"10.0.0.1", "", `for="[2001:db8::1]:443";proto=https, for=_hidden`, ""},
		{"10.0.0.1", "", `for="oops, for=198.51.100.7`, ""},
		{"10.0.0.1", "", `for=198.51.100.7;ext="a,\"b\\"`, ""},
		{"10.0.0.1", "", "", "unknown"},
		{"", "", "", ""},
		{"2001:db8:ffff::1", ", ,,", `,;,"`, " "},
	}
	for _, s := range seeds {
		f.Add(s.peer, s.xff, s.fwd, s.realIP)
	}
	r, err := New(Config{TrustedProxies: testTrusted, Headers: []string{"Forwarded", "X-Forwarded-For", "X-Real-IP"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peerS, xff, fwd, realIP string) {
		peer, _ := netip.ParseAddr(peerS)
		h := http.Header{}
		if xff != "" {
			h["X-Forwarded-For"] = []string{xff, xff}
		}
		if fwd != "" {
			h["Forwarded"] = []string{fwd}
		}
		if realIP != "" {
			h["X-Real-Ip"] = []string{realIP}
		}
		res := r.Resolve(peer, h)
		a := res.Addr
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("Addr %v invalid or not normalised", a)
		}
		if !res.Prefix.IsValid() || !res.Prefix.Contains(a) || res.Prefix != r.PrefixOf(a) {
			t.Fatalf("Prefix %v wrong for %v", res.Prefix, a)
		}
		np := Normalize(peer)
		if !np.IsValid() {
			if !res.Malformed || res.PeerTrusted {
				t.Fatalf("invalid peer gave %+v", res)
			}
			return
		}
		if res.PeerTrusted != r.Trusted(np) {
			t.Fatalf("PeerTrusted = %v for %v", res.PeerTrusted, np)
		}
		if !res.PeerTrusted && (a != np || res.Source != Peer || res.Malformed) {
			t.Fatalf("untrusted peer %v resolved to %+v", np, res)
		}
		if res.Source == Peer && a != np {
			t.Fatalf("source peer but addr %v != peer %v", a, np)
		}
	})
}
