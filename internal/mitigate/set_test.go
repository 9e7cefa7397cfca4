package mitigate

import (
	"errors"
	"go/parser"
	"go/token"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC)

func pfx(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	return AddressPrefix(netip.MustParseAddr(s))
}

func TestDecisionSetLookup(t *testing.T) {
	set := NewDecisionSet(0)
	err := set.Add(
		Decision{ID: "rl-wide", Site: -1, Scope: ScopePrefix, Prefix: pfx("198.51.100.0/24"), Action: RateLimit, RatePerSecond: 50},
		Decision{ID: "rl-narrow", Site: -1, Scope: ScopePrefix, Prefix: pfx("198.51.100.0/28"), Action: RateLimit, RatePerSecond: 5},
		Decision{ID: "block-addr", Site: 0, Scope: ScopeAddress, Prefix: pfx("198.51.100.7"), Action: Block},
		Decision{ID: "challenge-64", Site: 1, Scope: ScopePrefix, Prefix: pfx("2001:db8:1:2::/64"), Action: Challenge},
		Decision{ID: "block-48", Site: 1, Scope: ScopePrefix, Prefix: pfx("2001:db8:1::/48"), Action: Block},
		Decision{ID: "observe-asn", Site: -1, Scope: ScopeASN, ASN: 64500, Action: Observe},
		Decision{ID: "drop-asn", Site: 2, Scope: ScopeASN, ASN: 64501, Action: Drop},
		Decision{ID: "country", Site: 0, Scope: ScopeCountry, Country: "zz", Action: Challenge},
		Decision{ID: "route", Site: 0, Scope: ScopeRoute, Route: "/search", Action: RateLimit, RatePerSecond: 1},
		Decision{ID: "ua", Site: 0, Scope: ScopeFingerprint, Fingerprint: "evilbot/1.0", Action: Block},
		Decision{ID: "uam", Site: 3, Scope: ScopeSite, Action: Challenge},
		Decision{ID: "allow", Site: 0, Scope: ScopeAddress, Prefix: pfx("198.51.100.9"), Action: Allow},
		Decision{ID: "shadow-block", Site: 0, Scope: ScopePrefix, Prefix: pfx("203.0.113.0/24"), Action: Block, Shadow: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		site    int
		addr    string
		asn     uint32
		country string
		path    string
		ua      string
		wantID  string // "" = no match
	}{
		{name: "narrower lower rate wins over wider rate limit", site: 0, addr: "198.51.100.3", wantID: "rl-narrow"},
		{name: "wider rate limit alone", site: 0, addr: "198.51.100.200", wantID: "rl-wide"},
		{name: "address block beats covering rate limits", site: 0, addr: "198.51.100.7", wantID: "block-addr"},
		{name: "site-specific block not on another site", site: 1, addr: "198.51.100.7", wantID: "rl-narrow"},
		{name: "IPv4-mapped matches IPv4", site: 0, addr: "::ffff:198.51.100.7", wantID: "block-addr"},
		{name: "wider block beats narrower challenge", site: 1, addr: "2001:db8:1:2::5", wantID: "block-48"},
		{name: "miss", site: 0, addr: "192.0.2.1", path: "/"},
		{name: "asn observe is a match", site: 0, addr: "192.0.2.1", asn: 64500, wantID: "observe-asn"},
		{name: "drop asn beats address on its site", site: 2, addr: "198.51.100.3", asn: 64501, wantID: "drop-asn"},
		{name: "country", site: 0, addr: "192.0.2.1", country: "ZZ", wantID: "country"},
		{name: "route below path", site: 0, addr: "192.0.2.1", path: "/search/advanced", wantID: "route"},
		{name: "route not a prefix of another word", site: 0, addr: "192.0.2.1", path: "/searching"},
		{name: "fingerprint", site: 0, addr: "192.0.2.1", ua: "evilbot/1.0", wantID: "ua"},
		{name: "site scope matches everything on its site", site: 3, addr: "192.0.2.1", wantID: "uam"},
		{name: "allow beats block on same request", site: 0, addr: "198.51.100.9", ua: "evilbot/1.0", wantID: "allow"},
		{name: "shadow not enforced", site: 0, addr: "203.0.113.5"},
		{name: "site beyond any index uses global", site: 99, addr: "198.51.100.3", wantID: "rl-narrow"},
		{name: "negative site uses global", site: -1, addr: "198.51.100.7", wantID: "rl-narrow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			d, ok := set.Lookup(tt.site, a, tt.asn, tt.country, tt.path, FingerprintHash(tt.ua))
			if got := map[bool]string{true: d.ID}[ok]; got != tt.wantID {
				t.Fatalf("Lookup = %q, %v; want %q", d.ID, ok, tt.wantID)
			}
		})
	}
	if d, ok := set.LookupShadow(0, netip.MustParseAddr("203.0.113.5"), 0, "", "/", 0); !ok || d.ID != "shadow-block" {
		t.Fatalf("LookupShadow = %q, %v", d.ID, ok)
	}
	if !set.HasShadow() {
		t.Fatal("HasShadow = false")
	}
}

func TestDecisionSetWrites(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		add     []Decision
		wantErr error
		wantLen int
	}{
		{name: "address scope must be a host", add: []Decision{{ID: "a", Scope: ScopeAddress, Prefix: pfx("192.0.2.0/24")}}, wantErr: ErrDecision},
		{name: "prefix of full length becomes address", add: []Decision{{ID: "a", Scope: ScopePrefix, Prefix: pfx("192.0.2.1/32")}}, wantLen: 1},
		{name: "rate limit needs a rate", add: []Decision{{ID: "a", Scope: ScopeSite, Action: RateLimit}}, wantErr: ErrDecision},
		{name: "empty id", add: []Decision{{Scope: ScopeSite}}, wantErr: ErrDecision},
		{name: "bad country", add: []Decision{{ID: "a", Scope: ScopeCountry, Country: "ZZZ"}}, wantErr: ErrDecision},
		{name: "route without slash", add: []Decision{{ID: "a", Scope: ScopeRoute, Route: "x"}}, wantErr: ErrDecision},
		{name: "asn zero", add: []Decision{{ID: "a", Scope: ScopeASN}}, wantErr: ErrDecision},
		{name: "full set refuses new ids, keeps valid ones", max: 1,
			add: []Decision{{ID: "a", Scope: ScopeSite}, {ID: "b", Scope: ScopeSite}}, wantErr: ErrFull, wantLen: 1},
		{name: "replace by id", add: []Decision{{ID: "a", Scope: ScopeSite}, {ID: "a", Scope: ScopeSite, Action: Block}}, wantLen: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewDecisionSet(tt.max)
			err := s.Add(tt.add...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Add error = %v, want %v", err, tt.wantErr)
			}
			if s.Len() != tt.wantLen {
				t.Fatalf("Len = %d, want %d", s.Len(), tt.wantLen)
			}
		})
	}

	s := NewDecisionSet(0)
	if err := s.Add(
		Decision{ID: "short", Scope: ScopeSite, Action: Block, Expires: t0.Add(time.Minute)},
		Decision{ID: "long", Scope: ScopeSite, Action: Challenge, Expires: t0.Add(time.Hour)},
		Decision{ID: "forever", Scope: ScopeSite, Action: Observe},
	); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Lookup(0, netip.Addr{}, 0, "", "/", 0); d.ID != "short" {
		t.Fatalf("before expiry Lookup = %q", d.ID)
	}
	if gone := s.Expire(t0.Add(time.Minute)); len(gone) != 1 || gone[0].ID != "short" {
		t.Fatalf("Expire = %v", gone)
	}
	if d, _ := s.Lookup(0, netip.Addr{}, 0, "", "/", 0); d.ID != "long" {
		t.Fatalf("after expiry Lookup = %q", d.ID)
	}
	if got := s.Remove("long", "nonexistent"); len(got) != 1 {
		t.Fatalf("Remove = %v", got)
	}
	if l := s.List(); len(l) != 1 || l[0].ID != "forever" {
		t.Fatalf("List = %v", l)
	}
	if c := s.Counts(); c[Observe][ScopeSite][0] != 1 {
		t.Fatalf("Counts = %v", c[Observe])
	}
}

// TestDecisionSetConcurrent reads while writing (run with -race).
func TestDecisionSetConcurrent(t *testing.T) {
	s := NewDecisionSet(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			_ = s.Add(Decision{ID: strconv.Itoa(i), Scope: ScopeAddress, Prefix: AddressPrefix(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})), Action: Block})
		}
	}()
	for {
		select {
		case <-done:
			if _, ok := s.Lookup(0, netip.MustParseAddr("192.0.2.199"), 0, "", "/", 0); !ok {
				t.Fatal("last write not visible")
			}
			return
		default:
			s.Lookup(0, netip.MustParseAddr("192.0.2.10"), 0, "", "/", 0)
		}
	}
}

func TestLookupAllocs(t *testing.T) {
	s := benchSet(1000)
	a := netip.MustParseAddr("10.0.1.2")
	if n := testing.AllocsPerRun(100, func() {
		s.Lookup(0, a, 64500, "DE", "/search/x", 12345)
	}); n != 0 {
		t.Fatalf("Lookup allocates %v per call", n)
	}
}

// TestNoNetHTTP keeps the layering rule: mitigate imports no net/http.
func TestNoNetHTTP(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if imp.Path.Value == `"net/http"` {
				t.Errorf("%s imports net/http", f)
			}
		}
	}
}
