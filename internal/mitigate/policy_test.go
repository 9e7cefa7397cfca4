package mitigate

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

// TestLadder: one heavy source floods for 10 s; the ladder climbs rate
// limit → challenge → block every EscalateAfter (2 s) and, once the attack
// has ended, steps down one level per HoldFor (30 s), removing the decision
// at observe.
func TestLadder(t *testing.T) {
	h := newHarness(t, Config{})
	in := func(at time.Duration) SiteInput {
		if at < 10*time.Second {
			a := attack(1000, sig("concentrated_flood", 3))
			a.TopAddrs = addrs("192.0.2.7", 600, "192.0.2.8", 3)
			return a
		}
		if at < 14*time.Second {
			return quiet(incident.StateAttack) // quiet ticks before "recovering"
		}
		return quiet(incident.StateRecovering)
	}
	checks := []struct {
		name string
		at   time.Duration
		want string
	}{
		{name: "first attack tick rate limits the heavy source", at: 0, want: "rate_limit"},
		{name: "light source untouched", at: 0, want: "none"},
		{name: "still rate limit before EscalateAfter", at: 750 * time.Millisecond, want: "rate_limit"},
		{name: "challenge after 1 s", at: time.Second, want: "challenge"},
		{name: "block after 2 s", at: 2 * time.Second, want: "block"},
		{name: "block is the default top level", at: 9750 * time.Millisecond, want: "block"},
		{name: "held after the attack ends", at: 39500 * time.Millisecond, want: "block"},
		{name: "steps down to challenge after HoldFor", at: 39750 * time.Millisecond, want: "challenge"},
		{name: "rate limit after another HoldFor", at: 69750 * time.Millisecond, want: "rate_limit"},
		{name: "removed at observe", at: 99750 * time.Millisecond, want: "none"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			h.advance(c.at, in)
			addr := "192.0.2.7"
			if strings.Contains(c.name, "light") {
				addr = "192.0.2.8"
			}
			if got := h.action(addr); got != c.want {
				t.Fatalf("at %v: %s → %s, want %s", c.at, addr, got, c.want)
			}
		})
	}
	var kinds []string
	for _, ch := range h.log {
		if ch.Kind != ChangeRefresh {
			kinds = append(kinds, ch.Kind.String()+":"+ch.Decision.Action.String())
		}
	}
	want := []string{"add:rate_limit", "escalate:challenge", "escalate:block", "relax:challenge", "relax:rate_limit", "remove:rate_limit"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("changes = %v, want %v", kinds, want)
	}
	if len(h.events) != len(want) || h.events[1].Kind != "decision" ||
		!strings.Contains(h.events[1].Message, "escalate rate_limit → challenge address 192.0.2.7") {
		t.Fatalf("events = %+v", h.events)
	}
	if d := h.log[0].Decision; d.IncidentID != "inc-1" || d.Origin != OriginPolicy || d.Reason == "" {
		t.Fatalf("decision = %+v", d)
	}
}

// TestLadderDistress: with the origin in distress the ladder climbs every
// DistressEscalateAfter (500 ms).
func TestLadderDistress(t *testing.T) {
	h := newHarness(t, Config{})
	h.run(0, 1250*time.Millisecond, func(time.Duration) SiteInput {
		a := attack(1000, sig("concentrated_flood", 3), sig("origin_distress", 2))
		a.TopAddrs = addrs("192.0.2.7", 600)
		return a
	})
	if got := h.action("192.0.2.7"); got != "block" {
		t.Fatalf("after 1 s of distress: %s, want block", got)
	}
}

// TestScopes: collateral-aware scopes — rotation widens (HANDED F06),
// heavy prefixes are decided on what their heavy addresses do not explain.
func TestScopes(t *testing.T) {
	var fiveIn64, fourIn56 []any
	for _, a := range usersIn("2001:db8:a:b::/64", 5) {
		fiveIn64 = append(fiveIn64, a.String(), 40)
	}
	for _, p := range []string{"2001:db8:cc00:1::/64", "2001:db8:cc00:2::/64", "2001:db8:cc00:3::/64", "2001:db8:cc00:4::/64"} {
		fourIn56 = append(fourIn56, p, 150)
	}
	var rotation []any
	for _, a := range usersIn("fd00:64::/64", 20) {
		rotation = append(rotation, a.String(), 3) // each light
	}
	tests := []struct {
		name     string
		top      []stats.Counted[netip.Addr]
		prefixes []stats.Counted[netip.Prefix]
		want     []string          // decision scopes (sorted)
		probes   map[string]string // address → action
	}{
		{
			name:     "F06 rotation inside one /64: light addresses, heavy /64",
			top:      addrs(rotation...),
			prefixes: prefixes("fd00:64::/64", 2000),
			want:     []string{"fd00:64::/64"},
			probes:   map[string]string{"fd00:64::dead:beef": "rate_limit", "fd00:65::1": "none"},
		},
		{
			name:   "five heavy siblings widen to their /64",
			top:    addrs(fiveIn64...),
			want:   []string{"2001:db8:a:b::/64"},
			probes: map[string]string{"2001:db8:a:b::99": "rate_limit", "2001:db8:a:c::1": "none"},
		},
		{
			name:     "four heavy /64s widen to their /56",
			prefixes: prefixes(fourIn56...),
			want:     []string{"2001:db8:cc00::/56"},
			probes:   map[string]string{"2001:db8:cc00:ff::1": "rate_limit", "2001:db8:cc01::1": "none"},
		},
		{
			name: "IPv4 siblings widen to /24, two heavy addresses stay addresses",
			top: addrs("198.51.100.1", 30, "198.51.100.2", 30, "198.51.100.3", 30, "198.51.100.4", 30,
				"203.0.113.1", 30, "203.0.113.2", 30),
			want:   []string{"198.51.100.0/24", "203.0.113.1/32", "203.0.113.2/32"},
			probes: map[string]string{"198.51.100.200": "rate_limit", "203.0.113.2": "rate_limit", "203.0.113.3": "none"},
		},
		{
			name:     "prefix explained by its one heavy address is not decided",
			top:      addrs("192.0.2.7", 500),
			prefixes: prefixes("192.0.2.0/24", 520),
			want:     []string{"192.0.2.7/32"},
			probes:   map[string]string{"192.0.2.8": "none"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			in := attack(2500, sig("concentrated_flood", 2))
			in.TopAddrs, in.TopPrefixes = tt.top, tt.prefixes
			h.step(t0, in)
			var got []string
			for _, d := range h.set.List() {
				got = append(got, d.Prefix.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("scopes = %v, want %v", got, tt.want)
			}
			for a, want := range tt.probes {
				if g := h.action(a); g != want {
					t.Errorf("%s → %s, want %s", a, g, want)
				}
			}
		})
	}
}

// TestCollateral: a carrier-grade NAT prefix with many known-good users
// behind it is challenged at every level, never rate limited or blocked;
// a prefix without known-good users next to it is blocked.
func TestCollateral(t *testing.T) {
	good := goodUsers{addrs: usersIn("100.64.1.0/24", 200)}
	h := newHarness(t, Config{})
	for at := time.Duration(0); at < 10*time.Second; at += tick {
		in := attack(12000, sig("concentrated_flood", 3))
		in.TopPrefixes = prefixes("100.64.1.0/24", 5000, "100.64.2.0/24", 5000)
		in.Goodness = good
		h.step(t0.Add(at), in)
		if got := h.action("100.64.1.77"); got != "challenge" {
			t.Fatalf("at %v: CGNAT prefix → %s, want challenge", at, got)
		}
	}
	if got := h.action("100.64.2.77"); got != "block" {
		t.Fatalf("prefix without known-good users → %s, want block", got)
	}
	d, _ := h.set.Get(ladderID(0, netip.MustParsePrefix("100.64.1.0/24")))
	if d.EstimatedCollateral != 200 || !strings.Contains(d.Reason, "200 known-good users") {
		t.Fatalf("CGNAT decision = %+v", d)
	}
	for _, ev := range h.events {
		if strings.Contains(ev.Message, "100.64.1.0/24") && ev.Evidence["collateral"] != 200 {
			t.Fatalf("event without collateral: %+v", ev)
		}
	}
}

// TestASN: a listed hosting network gets a network-wide decision from the
// first level; an unlisted network sending most of the attack with no
// known-good users is challenged from LevelChallenge; with known-good users
// it is left to per-source decisions.
func TestASN(t *testing.T) {
	tests := []struct {
		name  string
		asn   uint32
		share uint64 // of 1000 requests
		good  int
		at    time.Duration
		want  string
	}{
		{name: "hosting ASN rate limited at level 1", asn: 64500, share: 100, at: 0, want: "rate_limit"},
		{name: "hosting ASN blocked at level 3", asn: 64500, share: 100, at: 4 * time.Second, want: "block"},
		{name: "hosting ASN with known-good users challenged", asn: 64500, share: 100, good: 20, at: 4 * time.Second, want: "challenge"},
		{name: "hosting ASN below HostingMinShare untouched", asn: 64500, share: 10, at: 4 * time.Second, want: "none"},
		{name: "dominant ASN not at level 1", asn: 64501, share: 800, at: 0, want: "none"},
		{name: "dominant ASN challenged at level 2", asn: 64501, share: 800, at: 2 * time.Second, want: "challenge"},
		{name: "dominant ASN never blocked", asn: 64501, share: 800, at: 4 * time.Second, want: "challenge"},
		{name: "dominant ASN with known-good users untouched", asn: 64501, share: 800, good: 1, at: 4 * time.Second, want: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Site: SiteConfig{HostingASNs: []uint32{64500}, DisableUnderAttack: true}})
			h.run(0, tt.at+tick, func(time.Duration) SiteInput {
				in := attack(1000, sig("http_flood", 3))
				in.TopASNs = []stats.Counted[uint32]{{Key: tt.asn, Count: tt.share}}
				in.Goodness = goodUsers{asn: map[uint32]int{tt.asn: tt.good}}
				return in
			})
			got := "none"
			if d, ok := h.set.Lookup(0, netip.MustParseAddr("192.0.2.1"), tt.asn, "", "/", 0); ok {
				got = d.Action.String()
				if d.Scope != ScopeASN || d.ASN != tt.asn {
					t.Fatalf("decision = %+v", d)
				}
			}
			if got != tt.want {
				t.Fatalf("AS%d → %s, want %s", tt.asn, got, tt.want)
			}
		})
	}
}

// TestFlashCrowd: a recognised flash crowd gets observe only, whatever the
// volumetric detectors and the origin say.
func TestFlashCrowd(t *testing.T) {
	tests := []struct {
		name  string
		state incident.State
		flash func(*SiteInput)
	}{
		{name: "benign signal", state: incident.StateSuspected, flash: func(in *SiteInput) {
			in.Signals = append(in.Signals, detect.Signal{Detector: "flash_crowd", Vector: "flash_crowd", Score: 2, Benign: true})
		}},
		{name: "flag from engine status while in attack", state: incident.StateAttack, flash: func(in *SiteInput) { in.FlashCrowd = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.run(0, 20*time.Second, func(time.Duration) SiteInput {
				in := attack(8000, sig("http_flood", 4), sig("distributed_flood", 2), sig("origin_distress", 2))
				in.State = tt.state
				in.OriginDistress = true
				in.TopAddrs = addrs("192.0.2.50", 900) // a busy office behind one address
				tt.flash(&in)
				return in
			})
			if len(h.log) == 0 {
				t.Fatal("no observe decision recorded")
			}
			for _, ch := range h.log {
				if ch.Decision.Action != Observe {
					t.Fatalf("flash crowd got %v %s", ch.Kind, ch.Decision.Action)
				}
			}
			if got := h.action("192.0.2.50"); got != "observe" {
				t.Fatalf("busy source → %s, want observe", got)
			}
			if _, ok := h.set.Get(flashID(0)); !ok {
				t.Fatal("no flash-crowd decision in the record")
			}
		})
	}
}

// TestUnderAttack: a distributed flood (each source light) enters the
// ladder at challenge with under-attack mode on, which stays on through
// the hysteresis and goes off once the ladder is below challenge.
func TestUnderAttack(t *testing.T) {
	h := newHarness(t, Config{})
	in := func(at time.Duration) SiteInput {
		if at < 5*time.Second {
			a := attack(20000, sig("distributed_flood", 2), sig("http_flood", 2))
			a.TopAddrs = addrs("192.0.2.1", 2, "192.0.2.2", 2)
			return a
		}
		return quiet(incident.StateRecovering)
	}
	checks := []struct {
		name string
		at   time.Duration
		want string
	}{
		{name: "on at the first tick", at: 0, want: "challenge"},
		{name: "on through the hold", at: 60 * time.Second, want: "challenge"},
		{name: "off below challenge", at: 65 * time.Second, want: "none"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			h.advance(c.at, in)
			if got := h.action("203.0.113.9"); got != c.want {
				t.Fatalf("at %v: → %s, want %s", c.at, got, c.want)
			}
		})
	}
}

// TestUnderAttackDisabled: the policy leaves under-attack mode alone when
// told to.
func TestUnderAttackDisabled(t *testing.T) {
	h := newHarness(t, Config{Sites: []SiteConfig{{DisableUnderAttack: true}}})
	h.run(0, 3*time.Second, func(time.Duration) SiteInput { return attack(20000, sig("distributed_flood", 2)) })
	if got := h.action("203.0.113.9"); got != "none" {
		t.Fatalf("→ %s, want none", got)
	}
}

// TestObserve: the ladder's bottom rung — a suspected site's heavy sources
// are observed (recorded, not enforced), and the same decision escalates
// when the attack is confirmed; an observe-only site never enforces.
func TestObserve(t *testing.T) {
	heavy := func(state incident.State) SiteInput {
		in := attack(1000, sig("concentrated_flood", 2))
		in.State = state
		in.TopAddrs = addrs("192.0.2.7", 600)
		return in
	}
	tests := []struct {
		name   string
		cfg    Config
		states []incident.State // one per tick
		want   []string         // changes "kind:action", refreshes left out
	}{
		{name: "suspected observes, attack escalates the same decision",
			states: []incident.State{incident.StateSuspected, incident.StateAttack},
			want:   []string{"add:observe", "escalate:rate_limit"}},
		{name: "observe-only site", cfg: Config{Sites: []SiteConfig{{ObserveOnly: true}}},
			states: slices.Repeat([]incident.State{incident.StateAttack}, 40),
			want:   []string{"add:observe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			for i, st := range tt.states {
				h.step(t0.Add(time.Duration(i)*tick), heavy(st))
			}
			var got []string
			for _, ch := range h.log {
				if ch.Kind != ChangeRefresh {
					got = append(got, ch.Kind.String()+":"+ch.Decision.Action.String())
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("changes = %v, want %v", got, tt.want)
			}
			if id := h.log[0].Decision.ID; id != h.log[len(h.log)-1].Decision.ID {
				t.Fatalf("IDs differ: %v", h.log)
			}
		})
	}
}

// TestAuthRouteChallenge: credential stuffing riding along a concentrated
// flood (lab scenario "smoke": the flood's heavy hitters are named, so
// per-source coverage is high and under-attack mode never starts) still
// gets its auth route challenged for requests without clearance or
// standing, from the first tick it fires, and the challenge ends with the
// attack; other paths stay open to sources no decision names.
func TestAuthRouteChallenge(t *testing.T) {
	h := newHarness(t, Config{})
	in := func(at time.Duration) SiteInput {
		if at < 10*time.Second {
			a := attack(2000, sig("http_flood", 3), sig("credential_stuffing:/login", 2))
			a.TopAddrs = addrs("192.0.2.1", 900, "192.0.2.2", 900) // 90% covered by per-source decisions
			return a
		}
		return quiet(incident.StateRecovering)
	}
	lookup := func(path string) string {
		d, ok := h.set.Lookup(0, netip.MustParseAddr("203.0.113.9"), 0, "", path, 0)
		if !ok {
			return "none"
		}
		return d.Action.String() + " " + d.Rule
	}
	checks := []struct {
		name        string
		at          time.Duration
		login, home string
	}{
		{name: "challenged at the first tick", at: 0, login: "challenge auth_route", home: "none"},
		{name: "below the route too", at: 5 * time.Second, login: "challenge auth_route", home: "none"},
		{name: "off once the ladder is below challenge", at: 70 * time.Second, login: "none", home: "none"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			h.advance(c.at, in)
			path := "/login"
			if c.at == 5*time.Second {
				path = "/login/sso"
			}
			if got := lookup(path); got != c.login {
				t.Errorf("%s at %v → %s, want %s", path, c.at, got, c.login)
			}
			if got := lookup("/"); got != c.home {
				t.Errorf("/ at %v → %s, want %s", c.at, got, c.home)
			}
		})
	}
}
