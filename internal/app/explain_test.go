package app

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/portcullis/portcullis/internal/filter"
)

// TestExplainRing: a refusal is found by its id with every field an
// operator sees, formatted on demand; ids overwritten by newer refusals
// and unknown ids are not found.
func TestExplainRing(t *testing.T) {
	var x explainRing
	req := func(id string) *filter.Request {
		return &filter.Request{ID: id, Site: 1, Addr: netip.MustParseAddr("2001:db8::7"), Prefix: netip.MustParsePrefix("2001:db8::/64"),
			Country: "RU", ASN: 64496, Method: "POST", Path: "/login", Member: true}
	}
	v := filter.Verdict{Action: filter.Block, Rule: "deny", Reason: "listed", Cause: "operator"}
	x.add(req("first"), v)
	for i := range 10 {
		x.add(req(fmt.Sprintf("mid-%d", i)), v)
	}
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{name: "oldest still in the ring", id: "first", ok: true},
		{name: "newest", id: "mid-9", ok: true},
		{name: "unknown id", id: "nope", ok: false},
		{name: "empty id never matches an empty slot", id: "", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := x.get(tc.id)
			if ok != tc.ok {
				t.Fatalf("get(%q) ok = %v, want %v", tc.id, ok, tc.ok)
			}
			if !ok {
				return
			}
			want := Explanation{ID: tc.id, Time: e.Time, Site: 1, Client: "2001:db8::7", Prefix: "2001:db8::/64", Country: "RU", ASN: 64496,
				Method: "POST", Path: "/login", Action: filter.Block.String(), Rule: "deny", Reason: "listed", Cause: "operator", Member: true}
			if e != want {
				t.Errorf("got %+v\nwant %+v", e, want)
			}
			if e.Time.IsZero() || e.Time.Location().String() != "UTC" {
				t.Errorf("time %v, want a UTC time", e.Time)
			}
		})
	}
	// A full lap of newer refusals overwrites "first".
	for i := range len(x.slots) {
		x.add(req(fmt.Sprintf("lap-%d", i)), v)
	}
	if _, ok := x.get("first"); ok {
		t.Error("an overwritten refusal was still found")
	}
}

// BenchmarkExplainRingAdd is the explain ring's cost on every refusal.
func BenchmarkExplainRingAdd(b *testing.B) {
	var x explainRing
	r := &filter.Request{ID: "0123abcd-1f", Addr: netip.MustParseAddr("198.51.100.7"), Prefix: netip.MustParsePrefix("198.51.100.0/24"), Method: "GET", Path: "/"}
	v := filter.Verdict{Action: filter.Block, Rule: "deny"}
	b.ReportAllocs()
	for b.Loop() {
		x.add(r, v)
	}
}
