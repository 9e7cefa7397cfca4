package mitigate

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portcullis/portcullis/internal/incident"
)

// TestOperator: operator decisions go through the same set; a block with
// a TTL expires; an allow replaces a block on the same scope and outranks
// the policy; under-attack mode on/off.
func TestOperator(t *testing.T) {
	tests := []struct {
		name string
		run  func(h *harness) error
		at   time.Duration // time of the probe
		addr string
		want string
	}{
		{name: "block with TTL holds before expiry", at: 10*time.Minute - time.Second, addr: "192.0.2.1", want: "block",
			run: func(h *harness) error {
				_, err := h.c.Operator(t0, "alice", Decision{Site: -1, Scope: ScopeAddress, Prefix: pfx("192.0.2.1"), Action: Block, TTL: 10 * time.Minute})
				return err
			}},
		{name: "block with TTL expires", at: 10 * time.Minute, addr: "192.0.2.1", want: "none",
			run: func(h *harness) error {
				_, err := h.c.Operator(t0, "alice", Decision{Site: -1, Scope: ScopeAddress, Prefix: pfx("192.0.2.1"), Action: Block, TTL: 10 * time.Minute})
				return err
			}},
		{name: "block without TTL stays", at: 24 * time.Hour, addr: "192.0.2.200", want: "block",
			run: func(h *harness) error {
				_, err := h.c.Operator(t0, "alice", Decision{Site: 0, Scope: ScopePrefix, Prefix: pfx("192.0.2.0/24"), Action: Block})
				return err
			}},
		{name: "allow replaces block on the same scope", at: time.Second, addr: "192.0.2.9", want: "allow",
			run: func(h *harness) error {
				if _, err := h.c.Operator(t0, "alice", Decision{Site: 0, Scope: ScopeAddress, Prefix: pfx("192.0.2.9"), Action: Block}); err != nil {
					return err
				}
				_, err := h.c.Operator(t0, "bob", Decision{Site: 0, Scope: ScopeAddress, Prefix: pfx("192.0.2.9"), Action: Allow})
				return err
			}},
		{name: "allow outranks the policy's block", at: 5 * time.Second, addr: "192.0.2.7", want: "allow",
			run: func(h *harness) error {
				_, err := h.c.Operator(t0, "alice", Decision{Site: 0, Scope: ScopeAddress, Prefix: pfx("192.0.2.7"), Action: Allow})
				h.run(0, 5*time.Second, func(time.Duration) SiteInput {
					in := attack(1000, sig("concentrated_flood", 3))
					in.TopAddrs = addrs("192.0.2.7", 600)
					return in
				})
				if d, _ := h.set.Get(ladderID(0, pfx("192.0.2.7"))); d.Action != Block {
					return errors.New("policy did not block: the test proves nothing")
				}
				return err
			}},
		{name: "operator removes a decision", at: time.Second, addr: "192.0.2.1", want: "none",
			run: func(h *harness) error {
				d, err := h.c.Operator(t0, "alice", Decision{Site: 0, Scope: ScopeAddress, Prefix: pfx("192.0.2.1"), Action: Block})
				if err != nil {
					return err
				}
				_, err = h.c.Remove(t0, "alice", d.ID)
				return err
			}},
		{name: "under-attack on", at: time.Hour, addr: "203.0.113.1", want: "challenge",
			run: func(h *harness) error { return h.c.UnderAttack(t0, "alice", 0, true, 0) }},
		{name: "under-attack off", at: time.Second, addr: "203.0.113.1", want: "none",
			run: func(h *harness) error {
				if err := h.c.UnderAttack(t0, "alice", 0, true, 0); err != nil {
					return err
				}
				return h.c.UnderAttack(t0, "alice", 0, false, 0)
			}},
		{name: "under-attack off also stops the policy's mode for the episode", at: 10 * time.Second, addr: "203.0.113.1", want: "none",
			run: func(h *harness) error {
				flood := func(time.Duration) SiteInput { return attack(20000, sig("distributed_flood", 2)) }
				h.run(0, time.Second, flood)
				if h.action("203.0.113.1") != "challenge" {
					return errors.New("policy did not switch under-attack mode on")
				}
				if err := h.c.UnderAttack(t0.Add(time.Second), "alice", 0, false, 0); err != nil {
					return err
				}
				if ev := h.events[len(h.events)-1]; !strings.Contains(ev.Message, "operator:alice") {
					return fmt.Errorf("the removal is not the operator's: %q", ev.Message)
				}
				h.run(time.Second, 10*time.Second, flood)
				return nil
			}},
		{name: "invalid operator decision", at: 0, addr: "192.0.2.1", want: "none",
			run: func(h *harness) error {
				_, err := h.c.Operator(t0, "alice", Decision{Scope: ScopeCountry, Country: "Germany", Action: Block})
				if !errors.Is(err, ErrDecision) {
					return errors.New("want ErrDecision")
				}
				if _, err := h.c.Remove(t0, "alice", "nope"); !errors.Is(err, ErrNotFound) {
					return errors.New("want ErrNotFound")
				}
				return nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			if err := tt.run(h); err != nil {
				t.Fatal(err)
			}
			h.step(t0.Add(tt.at), quiet(incident.StateNormal))
			if got := h.action(tt.addr); got != tt.want {
				t.Fatalf("%s → %s, want %s", tt.addr, got, tt.want)
			}
		})
	}
}

// TestOperatorEvents: operator decisions and their expiry are timeline
// events naming the operator, scope, action and TTL.
func TestOperatorEvents(t *testing.T) {
	h := newHarness(t, Config{})
	d, err := h.c.Operator(t0, "alice", Decision{Site: 0, Scope: ScopePrefix, Prefix: pfx("192.0.2.77/24"), Action: Block, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "operator/0/prefix/192.0.2.0/24" || d.Origin != "operator:alice" {
		t.Fatalf("decision = %+v", d)
	}
	h.step(t0.Add(time.Hour), quiet(incident.StateNormal))
	if len(h.events) != 2 {
		t.Fatalf("events = %+v", h.events)
	}
	for i, want := range []string{"add block prefix 192.0.2.0/24 for 1h0m0s", "expire block prefix 192.0.2.0/24"} {
		ev := h.events[i]
		if ev.Kind != "decision" || !strings.HasPrefix(ev.Message, want) || !strings.Contains(ev.Message, "operator:alice") ||
			ev.Evidence["ttl_seconds"] != 3600 || ev.Evidence["prefix_bits"] != 24 {
			t.Fatalf("event %d = %+v, want %q…", i, ev, want)
		}
	}
}

// TestAutoBanF06: failed challenges from different addresses of one /64
// ban the /64, not one /128; the prefix length is configurable (48–128)
// and reported; unrelated prefixes are unaffected (HANDED F06 step 3–4).
func TestAutoBanF06(t *testing.T) {
	in64 := usersIn("fd00:64::/64", 20)
	tests := []struct {
		name     string
		cfg      SiteConfig
		fails    map[time.Duration][]netip.Addr
		good     []netip.Addr
		wantID   string // "" = no decision
		wantBits int
		probes   map[string]string
	}{
		{name: "20 failures from 20 addresses ban the /64",
			fails:  map[time.Duration][]netip.Addr{0: in64[:10], 30 * time.Second: in64[10:]},
			wantID: "auto_ban/0/fd00:64::/64", wantBits: 64,
			probes: map[string]string{"fd00:64::ffff:1": "block", "fd00:65::1": "none"}},
		{name: "19 failures do not ban", fails: map[time.Duration][]netip.Addr{0: in64[:19]},
			probes: map[string]string{"fd00:64::1": "none"}},
		{name: "failures spread beyond the window do not ban",
			fails:  map[time.Duration][]netip.Addr{0: in64[:10], 61 * time.Second: in64[10:]},
			probes: map[string]string{"fd00:64::1": "none"}},
		{name: "prefix length /56 configured", cfg: SiteConfig{AutoBanIPv6Bits: 56},
			fails:  map[time.Duration][]netip.Addr{0: usersIn("fd00:64:0:ff00::/56", 20)},
			wantID: "auto_ban/0/fd00:64:0:ff00::/56", wantBits: 56,
			probes: map[string]string{"fd00:64:0:ffaa::1": "block", "fd00:64:0:fe00::1": "none"}},
		{name: "prefix length /128 bans the address", cfg: SiteConfig{AutoBanIPv6Bits: 128},
			fails:  map[time.Duration][]netip.Addr{0: repeat(in64[0], 20)},
			wantID: "auto_ban/0/fd00:64::1/128", wantBits: 128,
			probes: map[string]string{"fd00:64::1": "block", "fd00:64::2": "none"}},
		{name: "IPv4 default is the address", fails: map[time.Duration][]netip.Addr{0: repeat(netip.MustParseAddr("192.0.2.9"), 20)},
			wantID: "auto_ban/0/192.0.2.9/32", wantBits: 32,
			probes: map[string]string{"192.0.2.9": "block", "192.0.2.10": "none"}},
		{name: "known-good users behind the /64: challenge", fails: map[time.Duration][]netip.Addr{0: in64},
			good: usersIn("fd00:64::1000/116", 10), wantID: "auto_ban/0/fd00:64::/64", wantBits: 64,
			probes: map[string]string{"fd00:64::ffff:1": "challenge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Site: tt.cfg})
			for at := time.Duration(0); at <= 70*time.Second; at += time.Second {
				in := quiet(incident.StateNormal)
				in.FailedChallenges = tt.fails[at]
				in.Goodness = goodUsers{addrs: tt.good}
				h.step(t0.Add(at), in)
			}
			var ids []string
			for _, d := range h.set.List() {
				ids = append(ids, d.ID)
			}
			if tt.wantID == "" && len(ids) > 0 || tt.wantID != "" && (len(ids) != 1 || ids[0] != tt.wantID) {
				t.Fatalf("decisions = %v, want %q", ids, tt.wantID)
			}
			if tt.wantID != "" {
				ev := h.events[0]
				if ev.Evidence["prefix_bits"] != float64(tt.wantBits) || !strings.Contains(ev.Message, "auto-ban: 20 failed challenges") {
					t.Fatalf("event = %+v", ev)
				}
			}
			for a, want := range tt.probes {
				if got := h.action(a); got != want {
					t.Errorf("%s → %s, want %s", a, got, want)
				}
			}
		})
	}
}

func repeat(a netip.Addr, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = a
	}
	return out
}

// TestShadow: shadow decisions are made and recorded but not enforced by
// Lookup; LookupShadow finds them, and the ShadowLog says what they would
// have blocked and how many of those requests were members. Per-rule
// shadow keeps the milder enforced action.
func TestShadow(t *testing.T) {
	tests := []struct {
		name         string
		cfg          Config
		wantEnforced string
		wantShadow   string
	}{
		{name: "global shadow", cfg: Config{Shadow: true}, wantEnforced: "none", wantShadow: "block"},
		{name: "site shadow", cfg: Config{Sites: []SiteConfig{{Shadow: true}}}, wantEnforced: "none", wantShadow: "block"},
		{name: "block rule in shadow keeps challenge enforced", cfg: Config{Site: SiteConfig{ShadowRules: []string{RuleBlock}}},
			wantEnforced: "challenge", wantShadow: "block"},
		{name: "no shadow", cfg: Config{}, wantEnforced: "block", wantShadow: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			h.run(0, 5*time.Second, func(time.Duration) SiteInput {
				in := attack(1000, sig("concentrated_flood", 3))
				in.TopAddrs = addrs("192.0.2.7", 600)
				return in
			})
			a := netip.MustParseAddr("192.0.2.7")
			if got := h.action("192.0.2.7"); got != tt.wantEnforced {
				t.Fatalf("enforced → %s, want %s", got, tt.wantEnforced)
			}
			sd, ok := h.set.LookupShadow(0, a, 0, "", "/", 0)
			got := "none"
			if ok {
				got = sd.Action.String()
				if !sd.Shadow {
					t.Fatalf("shadow lookup returned %+v", sd)
				}
			}
			if got != tt.wantShadow {
				t.Fatalf("shadow → %s, want %s", got, tt.wantShadow)
			}
			if !ok {
				return
			}
			log := NewShadowLog(0, 0, 0)
			now := t0.Add(5 * time.Second)
			for i := range 10 {
				log.RecordShadowHit(sd, i < 3, now)
			}
			s := log.WouldHaveBlocked(now.Add(-5 * time.Minute))
			if s.Requests != 10 || s.MemberRequests != 3 || s.Blocked != 10 || s.MemberBlocked != 3 ||
				len(s.Decisions) != 1 || s.Decisions[0].Decision.ID != sd.ID {
				t.Fatalf("summary = %+v", s)
			}
		})
	}
}

// TestShadowLog: the summary covers the asked period only, counts members,
// and the log stays bounded.
func TestShadowLog(t *testing.T) {
	block := Decision{ID: "b", Action: Block, Shadow: true}
	challenge := Decision{ID: "c", Action: Challenge, Shadow: true}
	log := NewShadowLog(time.Hour, time.Minute, 2)
	log.RecordShadowHit(block, true, t0)
	log.RecordShadowHit(block, false, t0.Add(10*time.Minute))
	log.RecordShadowHit(challenge, true, t0.Add(10*time.Minute))
	log.RecordShadowHit(block, false, t0.Add(2*time.Hour)) // overwrites nothing it should not
	tests := []struct {
		name                       string
		since                      time.Time
		requests, members, blocked uint64
	}{
		{name: "since the start", since: t0, requests: 4, members: 2, blocked: 3},
		{name: "last 5 minutes of the first period", since: t0.Add(9 * time.Minute), requests: 3, members: 1, blocked: 2},
		{name: "future", since: t0.Add(3 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := log.WouldHaveBlocked(tt.since)
			if s.Requests != tt.requests || s.MemberRequests != tt.members || s.Blocked != tt.blocked {
				t.Fatalf("summary = %+v", s)
			}
		})
	}
	log.RecordShadowHit(Decision{ID: "third", Action: Block}, false, t0.Add(2*time.Hour))
	if _, _, n := log.shadowStats(); n != 2 {
		t.Fatalf("tracked = %d, want 2 (bounded)", n)
	}
	if a := testing.AllocsPerRun(100, func() { log.RecordShadowHit(block, true, t0.Add(2*time.Hour)) }); a != 0 {
		t.Fatalf("RecordShadowHit allocates %v", a)
	}
}

// TestMetrics: the collector's series and names.
func TestMetrics(t *testing.T) {
	h := newHarness(t, Config{})
	log := NewShadowLog(0, 0, 0)
	if _, err := h.c.Operator(t0, "alice", Decision{Site: 0, Scope: ScopeAddress, Prefix: pfx("192.0.2.1"), Action: Block, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	h.step(t0.Add(time.Minute), quiet(incident.StateNormal))
	log.RecordShadowHit(Decision{ID: "x"}, false, t0)
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterMetrics(reg, h.c, log); err != nil {
		t.Fatal(err)
	}
	if err := RegisterMetrics(reg, h.c, log); err == nil {
		t.Fatal("duplicate registration accepted")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "portcullis_mitigate_") {
			t.Errorf("metric %s outside the subsystem", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			got[mf.GetName()+labels(m)] = value(m)
		}
	}
	for k, want := range map[string]float64{
		"portcullis_mitigate_changes_total{kind=add}":                                 1,
		"portcullis_mitigate_changes_total{kind=expire}":                              1,
		"portcullis_mitigate_decisions{action=block,mode=enforced,scope=address}":     0,
		"portcullis_mitigate_ladder_level{site=0}":                                    0,
		"portcullis_mitigate_shadow_hits_total":                                       1,
		"portcullis_mitigate_shadow_decisions_tracked":                                1,
		"portcullis_mitigate_apply_errors_total":                                      0,
		"portcullis_mitigate_decisions{action=challenge,mode=shadow,scope=site}":      0,
		"portcullis_mitigate_decisions{action=rate_limit,mode=enforced,scope=prefix}": 0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
}

func labels(m *dto.Metric) string {
	if len(m.GetLabel()) == 0 {
		return ""
	}
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func value(m *dto.Metric) float64 {
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}
