package app

// Peace-time visitors in the policy's under-attack mode: who counts as one.

import (
	"net/netip"
	"testing"
	"time"
)

func TestMitigationPeaceTimeVisitor(t *testing.T) {
	alert := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	visitor := netip.MustParseAddr("81.2.10.20")
	prefix := netip.MustParsePrefix("81.2.10.0/24")
	tests := []struct {
		name string
		// firstSeen is relative to the alert; nil: never seen.
		firstSeen *time.Duration
		alerted   bool
		site      int
		addr      netip.Addr
		want      bool
	}{
		{name: "browsed a minute before the alert", firstSeen: ptr(-time.Minute), alerted: true, addr: visitor, want: true},
		{name: "first seen just over the margin before", firstSeen: ptr(-peaceMargin - time.Millisecond), alerted: true, addr: visitor, want: true},
		{name: "flood source served just before detection", firstSeen: ptr(-500 * time.Millisecond), alerted: true, addr: visitor, want: false},
		{name: "first seen after the alert", firstSeen: ptr(time.Second), alerted: true, addr: visitor, want: false},
		{name: "never seen", alerted: true, addr: visitor, want: false},
		{name: "another address of the same prefix", firstSeen: ptr(-time.Minute), alerted: true, addr: netip.MustParseAddr("81.2.10.21"), want: false},
		{name: "no alert yet for the site", firstSeen: ptr(time.Hour), addr: visitor, want: true},
		{name: "alert of another site does not count", firstSeen: ptr(-500 * time.Millisecond), alerted: true, site: 1, addr: visitor, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGoodness()
			if tc.firstSeen != nil {
				g.note(visitor, prefix, 0)
				g.prefixes[prefix].addrs[visitor] = alert.Add(*tc.firstSeen)
			}
			if tc.alerted {
				g.alert(0, alert)
			}
			if got := g.peaceTime(tc.site, tc.addr, prefix); got != tc.want {
				t.Errorf("peaceTime = %v, want %v", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
