package alert

import (
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// policy decides which sink calls become alerts: one opened and one closed
// alert per incident; escalations (new vectors, new or stronger decisions,
// an attack resuming) at most one per interval per incident, counted from
// the incident's previous alert, and at most perHour over all incidents in
// any sliding hour. Held-back changes are kept and go out with the
// incident's next alert (the next escalation once allowed — the engine
// writes open incidents every few seconds — or the closed alert). It is a
// pure function of its inputs and the times passed in; not safe for
// concurrent use.
type policy struct {
	interval time.Duration
	perHour  int
	priv     *privacy
	incs     map[string]*incState
	escSent  []time.Time // escalations sent in the last hour, oldest first
}

// incState is what the policy remembers of one incident.
type incState struct {
	opened, closed bool
	closedAt       time.Time
	lastAlert      time.Time
	vectors        []string
	seen           int      // timeline events already looked at
	pending        []string // changes not alerted yet
	latest         *incident.Incident
}

// keepClosed is how long a closed incident is remembered (so a repeated
// Close is recognised as a duplicate).
const keepClosed = time.Hour

func newPolicy(interval time.Duration, perHour int, priv *privacy) *policy {
	return &policy{interval: interval, perHour: perHour, priv: priv, incs: map[string]*incState{}}
}

func (p *policy) state(id string) *incState {
	st := p.incs[id]
	if st == nil {
		st = &incState{}
		p.incs[id] = st
	}
	return st
}

// open handles Sink.Open: an opened alert, or a duplicate.
func (p *policy) open(in *incident.Incident, now time.Time) (*Alert, []string) {
	st := p.state(in.ID)
	if st.opened {
		return nil, []string{DropDuplicate}
	}
	return p.opened(st, in, now), nil
}

func (p *policy) opened(st *incState, in *incident.Incident, now time.Time) *Alert {
	st.opened = true
	st.vectors = slices.Clone(in.Vectors)
	st.seen = len(in.Timeline)
	st.latest = in
	st.lastAlert = now
	return p.alert(KindOpened, in, nil, now)
}

// update handles Sink.Update: an incident first seen here is announced as
// opened; otherwise its changes are collected and an escalation sent if
// allowed.
func (p *policy) update(in *incident.Incident, now time.Time) (*Alert, []string) {
	st := p.state(in.ID)
	if st.closed {
		return nil, nil
	}
	if !st.opened {
		return p.opened(st, in, now), nil
	}
	st.latest = in
	return p.escalate(st, p.changes(st, in), now)
}

// decision handles a mitigation timeline event of an open incident: an
// added or escalated rate_limit, challenge, block or drop decision is an
// escalation (isEscalation); allow-listing, relaxations, removals and
// expiries are not alerted.
func (p *policy) decision(id string, ev incident.Event, now time.Time) (*Alert, []string) {
	st := p.incs[id]
	if st == nil || !st.opened || st.closed || !isEscalation(ev) {
		return nil, nil
	}
	return p.escalate(st, []string{p.text(st.latest, "decision: "+ev.Message)}, now)
}

// isEscalation reads a decision event in mitigate.Event's wording: "add
// <action> <scope> …" or "escalate <from> → <action> <scope> …"; it is an
// escalation when the new action restricts traffic.
func isEscalation(ev incident.Event) bool {
	if ev.Kind != "decision" {
		return false
	}
	w := strings.Fields(ev.Message)
	var action string
	switch {
	case len(w) >= 2 && w[0] == "add":
		action = w[1]
	case len(w) >= 4 && w[0] == "escalate" && w[2] == "→":
		action = w[3]
	}
	switch action {
	case "rate_limit", "challenge", "block", "drop":
		return true
	}
	return false
}

// close handles Sink.Close: the closed alert carries the changes not yet
// alerted.
func (p *policy) close(in *incident.Incident, now time.Time) (*Alert, []string) {
	st := p.state(in.ID)
	if st.closed {
		return nil, []string{DropDuplicate}
	}
	if st.opened {
		p.addPending(st, p.changes(st, in))
	}
	st.opened, st.closed, st.closedAt = true, true, now
	a := p.alert(KindClosed, in, st.pending, now)
	st.pending, st.latest = nil, nil
	p.forget(now)
	return a, nil
}

// forget drops incidents closed more than keepClosed ago.
func (p *policy) forget(now time.Time) {
	for id, st := range p.incs {
		if st.closed && now.Sub(st.closedAt) > keepClosed {
			delete(p.incs, id)
		}
	}
}

// changes returns what in adds to what st has seen: new vectors, new
// "attack resumed" transitions and escalating decisions in the timeline.
func (p *policy) changes(st *incState, in *incident.Incident) []string {
	var out []string
	for _, v := range in.Vectors {
		if !slices.Contains(st.vectors, v) {
			st.vectors = append(st.vectors, v)
			out = append(out, "new vector: "+v)
		}
	}
	if st.seen > len(in.Timeline) {
		st.seen = len(in.Timeline) // a shorter copy: start again from its end
	}
	for _, ev := range in.Timeline[st.seen:] {
		switch {
		case ev.Kind == "state" && ev.From == incident.StateRecovering && ev.To == incident.StateAttack:
			out = append(out, p.text(in, ev.Message))
		case isEscalation(ev):
			out = append(out, p.text(in, "decision: "+ev.Message))
		}
	}
	st.seen = len(in.Timeline)
	return out
}

// text scrubs a free-text change of addresses outside in's attacking
// prefixes.
func (p *policy) text(in *incident.Incident, msg string) string {
	if in == nil {
		return p.priv.scrub(msg, nil, "")
	}
	_, allowed := p.priv.summarise(in, time.Time{})
	return p.priv.scrub(msg, allowed, in.Site)
}

func (p *policy) addPending(st *incState, changes []string) int {
	n := 0
	for _, c := range changes {
		if !slices.Contains(st.pending, c) {
			st.pending = append(st.pending, c)
			n++
		}
	}
	return n
}

// escalate adds changes to the incident's pending list and sends them as an
// escalation when the interval and the hourly cap allow; held-back new
// changes are counted once per call (coalesced or hourly_cap).
func (p *policy) escalate(st *incState, changes []string, now time.Time) (*Alert, []string) {
	fresh := p.addPending(st, changes)
	if len(st.pending) == 0 {
		return nil, nil
	}
	if now.Sub(st.lastAlert) < p.interval {
		if fresh > 0 {
			return nil, []string{DropCoalesced}
		}
		return nil, nil
	}
	cut := now.Add(-time.Hour)
	i := 0
	for i < len(p.escSent) && !p.escSent[i].After(cut) {
		i++
	}
	p.escSent = p.escSent[i:]
	if len(p.escSent) >= p.perHour {
		if fresh > 0 {
			return nil, []string{DropHourlyCap}
		}
		return nil, nil
	}
	p.escSent = append(p.escSent, now)
	st.lastAlert = now
	a := p.alert(KindEscalation, st.latest, st.pending, now)
	st.pending = nil
	return a, nil
}

func (p *policy) alert(k Kind, in *incident.Incident, changes []string, now time.Time) *Alert {
	s, _ := p.priv.summarise(in, now)
	return &Alert{Kind: k, At: now.UTC(), Changes: slices.Clone(changes), Incident: s}
}
