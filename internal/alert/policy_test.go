package alert

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// step is one input to the policy at an explicit time (seconds after t0).
type step struct {
	at    float64
	op    string // open, update, close, decision
	in    *incident.Incident
	ev    incident.Event // decision
	id    string         // decision's incident id
	want  string         // "" (no alert), "opened", "escalation", "closed"
	drops []string
	// changes the alert must carry (substrings, in order).
	changes []string
}

func withID(in *incident.Incident, id string) *incident.Incident {
	c := *in
	c.ID = id
	return &c
}

func withVectors(in *incident.Incident, vs ...string) *incident.Incident {
	c := *in
	c.Vectors = append(append([]string(nil), in.Vectors...), vs...)
	return &c
}

func withEvents(in *incident.Incident, evs ...incident.Event) *incident.Incident {
	c := *in
	c.Timeline = append(append([]incident.Event(nil), in.Timeline...), evs...)
	return &c
}

// TestPolicy checks dedupe and rate limits on explicit times: one opened
// and one closed alert per incident; escalations at most one per interval
// per incident (counted from the previous alert), coalesced into the next
// alert, capped per sliding hour over all incidents.
func TestPolicy(t *testing.T) {
	a := fixture()
	b, c := withID(a, "B"), withID(a, "C")
	resumed := incident.Event{Kind: "state", From: incident.StateRecovering, To: incident.StateAttack, Message: "attack resumed: syn_flood"}
	tests := []struct {
		name     string
		interval time.Duration
		perHour  int
		steps    []step
	}{
		{"opened and closed once each", time.Minute, 20, []step{
			{at: 0, op: "open", in: a, want: "opened"},
			{at: 1, op: "open", in: a, drops: []string{DropDuplicate}},
			{at: 2, op: "update", in: a},
			{at: 90, op: "close", in: closed(a), want: "closed"},
			{at: 91, op: "close", in: closed(a), drops: []string{DropDuplicate}},
			{at: 92, op: "update", in: a},
		}},
		{"escalations coalesced within the interval", time.Minute, 20, []step{
			{at: 0, op: "open", in: a, want: "opened"},
			{at: 10, op: "update", in: withVectors(a, "v2"), drops: []string{DropCoalesced}},
			{at: 20, op: "update", in: withVectors(a, "v2")},
			{at: 59, op: "update", in: withVectors(a, "v2", "v3"), drops: []string{DropCoalesced}},
			{at: 60, op: "update", in: withVectors(a, "v2", "v3"), want: "escalation", changes: []string{"new vector: v2", "new vector: v3"}},
			{at: 65, op: "update", in: withVectors(a, "v2", "v3", "v4"), drops: []string{DropCoalesced}},
			{at: 125, op: "update", in: withVectors(a, "v2", "v3", "v4", "v5"), want: "escalation", changes: []string{"new vector: v4", "new vector: v5"}},
			{at: 130, op: "close", in: closed(withVectors(a, "v2", "v3", "v4", "v5", "v6")), want: "closed", changes: []string{"new vector: v6"}},
		}},
		{"held-back escalation folded into the closed alert", time.Minute, 20, []step{
			{at: 0, op: "open", in: a, want: "opened"},
			{at: 5, op: "update", in: withVectors(a, "v2"), drops: []string{DropCoalesced}},
			{at: 30, op: "close", in: closed(withVectors(a, "v2")), want: "closed", changes: []string{"new vector: v2"}},
		}},
		{"hourly cap across incidents", 0, 2, []step{
			{at: 0, op: "open", in: a, want: "opened"},
			{at: 0, op: "open", in: b, want: "opened"},
			{at: 0, op: "open", in: c, want: "opened"},
			{at: 10, op: "update", in: withVectors(a, "v2"), want: "escalation"},
			{at: 20, op: "update", in: withVectors(b, "v2"), want: "escalation"},
			{at: 30, op: "update", in: withVectors(c, "v2"), drops: []string{DropHourlyCap}},
			{at: 40, op: "update", in: withVectors(c, "v2")},
			{at: 3600, op: "update", in: withVectors(c, "v2")},
			{at: 3610, op: "update", in: withVectors(c, "v2"), want: "escalation", changes: []string{"new vector: v2"}},
		}},
		{"decisions: restricting add and escalate alert, allow, relax and remove do not", 0, 20, []step{
			{at: 0, op: "open", in: a, want: "opened"},
			{at: 1, op: "decision", id: a.ID, ev: incident.Event{Kind: "decision", Message: "add block prefix 203.0.113.0/24 for 10m0s: flood"}, want: "escalation", changes: []string{"decision: add block prefix 203.0.113.0/24"}},
			{at: 2, op: "decision", id: a.ID, ev: incident.Event{Kind: "decision", Message: "relax block → challenge prefix 203.0.113.0/24"}},
			{at: 3, op: "decision", id: a.ID, ev: incident.Event{Kind: "decision", Message: "escalate challenge → block address 198.51.100.23 for 1m0s"}, want: "escalation", changes: []string{"block address [address]"}},
			{at: 4, op: "decision", id: "unknown", ev: incident.Event{Kind: "decision", Message: "add block address 203.0.113.9"}},
			{at: 5, op: "decision", id: a.ID, ev: incident.Event{Kind: "decision", Message: "add allow address 198.51.100.23 until removed: member"}},
			{at: 6, op: "decision", id: a.ID, ev: incident.Event{Kind: "decision", Message: "remove block prefix 203.0.113.0/24"}},
			{at: 7, op: "decision", id: a.ID, ev: incident.Event{Kind: "note", Message: "add block prefix 203.0.113.0/24"}},
			{at: 8, op: "decision", id: a.ID, ev: incident.Event{Kind: "decision", Message: "add rate_limit 5/s asn AS64500 for 5m0s"}, want: "escalation", changes: []string{"rate_limit 5/s asn AS64500"}},
		}},
		{"attack resumed from the timeline", 0, 20, []step{
			{at: 0, op: "open", in: a, want: "opened"},
			{at: 5, op: "update", in: withEvents(a, incident.Event{Kind: "state", From: incident.StateAttack, To: incident.StateRecovering, Message: "attack traffic subsided"})},
			{at: 9, op: "update", in: withEvents(a, incident.Event{Kind: "state", From: incident.StateAttack, To: incident.StateRecovering, Message: "attack traffic subsided"}, resumed), want: "escalation", changes: []string{"attack resumed: syn_flood"}},
		}},
		{"update of an incident never opened announces it", time.Minute, 20, []step{
			{at: 0, op: "update", in: a, want: "opened"},
			{at: 1, op: "open", in: a, drops: []string{DropDuplicate}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(tt.interval, tt.perHour, &privacy{cfg: Config{}.Default().Privacy, key: []byte("0123456789abcdef")})
			for i, s := range tt.steps {
				now := t0.Add(time.Duration(s.at * float64(time.Second)))
				var al *Alert
				var drops []string
				switch s.op {
				case "open":
					al, drops = p.open(s.in, now)
				case "update":
					al, drops = p.update(s.in, now)
				case "close":
					al, drops = p.close(s.in, now)
				case "decision":
					al, drops = p.decision(s.id, s.ev, now)
				}
				where := fmt.Sprintf("step %d (%s at %vs)", i, s.op, s.at)
				got := ""
				if al != nil {
					got = string(al.Kind)
					if !al.At.Equal(now) {
						t.Errorf("%s: alert at %v, want %v", where, al.At, now)
					}
				}
				if got != s.want {
					t.Errorf("%s: alert %q, want %q", where, got, s.want)
				}
				if !slices.Equal(drops, s.drops) {
					t.Errorf("%s: drops %q, want %q", where, drops, s.drops)
				}
				if al != nil && len(s.changes) > 0 {
					joined := strings.Join(al.Changes, "\n")
					for _, w := range s.changes {
						if !strings.Contains(joined, w) {
							t.Errorf("%s: changes %q lack %q", where, al.Changes, w)
						}
					}
				}
				if al != nil {
					assertNoVisitor(t, where, strings.Join(al.Changes, "\n"))
				}
			}
		})
	}
}

// TestPolicyForgets checks that closed incidents are forgotten after an
// hour (memory stays bounded over a long run of incidents).
func TestPolicyForgets(t *testing.T) {
	tests := []struct {
		name      string
		incidents int
		gap       time.Duration
		wantKept  int
	}{
		{"all within the hour kept", 10, time.Minute, 10},
		{"old ones forgotten", 100, 10 * time.Minute, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(time.Minute, 20, &privacy{cfg: Config{}.Default().Privacy})
			now := t0
			for i := range tt.incidents {
				in := withID(fixture(), fmt.Sprint(i))
				p.open(in, now)
				p.close(closed(in), now)
				now = now.Add(tt.gap)
			}
			if len(p.incs) != tt.wantKept {
				t.Errorf("remembered %d incidents, want %d", len(p.incs), tt.wantKept)
			}
		})
	}
}
