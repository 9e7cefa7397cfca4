package detect

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// target is one protected thing with its own state machine: a site (by
// index) or a packet destination.
type target struct {
	name  string
	site  int // -1 for destinations
	dst   netip.Addr
	base  *Baseline
	state incident.State
	since time.Time

	firing   int       // firing ticks since the suspicion began
	quiet    int       // consecutive ticks without a firing detector
	lastFire time.Time // end of the latest firing tick
	suspect  time.Time // start of the first firing tick of this episode
	pending  []incident.Event
	attr     *attribution
	inc      *incident.Incident
	written  time.Time // last Sink write
	dirty    bool
	signals  []Signal
	flash    bool
	fired    bool // the latest tick had a firing (not vetoed) vector
	lastSeen time.Time
}

// tickResult is what the engine hands the state machine for one tick.
type tickResult struct {
	start, end time.Time
	signals    []Signal
}

// firingVectors returns the vectors of the signals that fire this tick
// (flash-crowd vetoes applied), strongest first, and the highest score.
func firingVectors(sigs []Signal) (vectors []string, top float64, flash bool) {
	for _, s := range sigs {
		if s.Benign && s.Score >= 1 {
			flash = true
		}
	}
	var firing []Signal
	for _, s := range sigs {
		if !s.Fires() || (flash && Suppressible(s.Vector)) {
			continue
		}
		firing = append(firing, s)
		top = max(top, s.Score)
	}
	slices.SortStableFunc(firing, func(a, b Signal) int { return cmp.Compare(b.Score, a.Score) })
	for _, s := range firing {
		if !slices.Contains(vectors, s.Vector) {
			vectors = append(vectors, s.Vector)
		}
	}
	return vectors, top, flash
}

// sustained reports whether a signal keeps an open incident in attack: one
// of its vectors is still at least ReleaseScore, or its detector reports
// the attack pattern (Sustain).
func (e *Engine) sustained(t *target, sigs []Signal) bool {
	if t.inc == nil {
		return false
	}
	for _, s := range sigs {
		if s.Benign || !slices.Contains(t.inc.Vectors, s.Vector) {
			continue
		}
		if s.Sustain || s.Score >= e.cfg.ReleaseScore {
			return true
		}
	}
	return false
}

// held reports whether a signal holds the target's episode open between
// the packets of a sparse attack (Signal.Hold): any vector while suspected,
// one of the incident's vectors once open.
func held(t *target, sigs []Signal) bool {
	for _, s := range sigs {
		if s.Hold && !s.Benign && (t.inc == nil || slices.Contains(t.inc.Vectors, s.Vector)) {
			return true
		}
	}
	return false
}

func evidence(sigs []Signal) map[string]float64 {
	ev := map[string]float64{}
	for _, s := range sigs {
		if s.Score <= 0 {
			continue
		}
		ev[s.Detector] = s.Score
		if s.Fires() || s.Benign {
			for k, v := range s.Evidence {
				ev[s.Detector+"."+k] = v
			}
		}
	}
	return ev
}

// step advances the state machine by one tick. It returns the sink calls to
// make (in order) as closures, so the engine makes them outside its lock.
func (e *Engine) stepTarget(t *target, r tickResult, feed func(*attribution)) []func(context.Context) error {
	vectors, top, flash := firingVectors(r.signals)
	t.signals = r.signals
	if flash && !t.flash {
		e.note(t, r.end, "flash crowd: legitimate surge recognised, volumetric vectors not treated as an attack", r.signals)
	}
	t.flash = flash
	fires := len(vectors) > 0
	t.fired = fires
	var calls []func(context.Context) error

	switch {
	case fires || e.sustained(t, r.signals):
		t.quiet = 0
		t.lastFire = r.end
	case held(t, r.signals):
		t.quiet = 0
	default:
		t.quiet++
	}

	switch t.state {
	case incident.StateNormal:
		if !fires {
			return nil
		}
		t.suspect = r.start
		t.firing = 1
		t.attr = newAttribution(&e.cfg, e.opts.ASName)
		feed(t.attr)
		e.transition(t, incident.StateSuspected, r.end, "anomaly: "+strings.Join(vectors, ", "), r.signals)
		if top >= e.cfg.SevereScore || e.cfg.ConfirmTicks <= 1 {
			calls = append(calls, e.openIncident(t, r, vectors))
		}
	case incident.StateSuspected:
		feed(t.attr)
		if fires {
			t.firing++
			if t.firing >= e.cfg.ConfirmTicks || top >= e.cfg.SevereScore {
				calls = append(calls, e.openIncident(t, r, vectors))
			}
		} else if t.quiet >= e.cfg.QuietTicks {
			e.transition(t, incident.StateNormal, r.end, "suspicion not confirmed", r.signals)
			t.attr = nil
		}
	case incident.StateAttack:
		feed(t.attr)
		e.addVectors(t, r.end, vectors, r.signals)
		if t.quiet >= e.cfg.QuietTicks {
			e.transition(t, incident.StateRecovering, r.end, "attack traffic subsided", r.signals)
			calls = append(calls, e.write(t, r.end, true))
		} else if c := e.write(t, r.end, false); c != nil {
			calls = append(calls, c)
		}
	case incident.StateRecovering:
		feed(t.attr)
		if fires {
			e.addVectors(t, r.end, vectors, r.signals)
			e.transition(t, incident.StateAttack, r.end, "attack resumed: "+strings.Join(vectors, ", "), r.signals)
			calls = append(calls, e.write(t, r.end, true))
		} else if r.end.Sub(t.lastFire) >= e.cfg.RecoverAfter {
			calls = append(calls, e.closeIncident(t, r.end, "quiet for "+e.cfg.RecoverAfter.String()))
		}
	}
	return calls
}

// transition records a state change as an event (in the incident timeline,
// or pending until an incident opens) and reports it to OnEvent.
func (e *Engine) transition(t *target, to incident.State, at time.Time, msg string, sigs []Signal) {
	ev := incident.Event{Time: at.UTC(), Kind: "state", From: t.state, To: to, Message: msg, Evidence: evidence(sigs)}
	t.state = to
	t.since = at
	e.record(t, ev)
	e.metrics.transitions.Add(1)
}

func (e *Engine) note(t *target, at time.Time, msg string, sigs []Signal) {
	e.record(t, incident.Event{Time: at.UTC(), Kind: "note", Message: msg, Evidence: evidence(sigs)})
}

func (e *Engine) record(t *target, ev incident.Event) {
	switch {
	case t.inc != nil:
		t.inc.Timeline = append(t.inc.Timeline, ev)
		t.dirty = true
	case t.state == incident.StateSuspected || ev.To == incident.StateSuspected:
		t.pending = append(t.pending, ev)
	case ev.Kind == "state":
		t.pending = nil // suspicion dropped: its events go to OnEvent only
	}
	if e.opts.OnEvent != nil {
		e.opts.OnEvent(t.name, ev)
	}
}

func (e *Engine) addVectors(t *target, at time.Time, vectors []string, sigs []Signal) {
	for _, v := range vectors {
		if slices.Contains(t.inc.Vectors, v) {
			continue
		}
		t.inc.Vectors = append(t.inc.Vectors, v)
		ev := evidence(sigs)
		e.record(t, incident.Event{Time: at.UTC(), Kind: "vector", Message: "new vector: " + v, Evidence: ev})
	}
}

func (e *Engine) openIncident(t *target, r tickResult, vectors []string) func(context.Context) error {
	e.seq++
	in := &incident.Incident{
		ID:       incidentID(t.suspect, t.name, e.seq),
		Site:     t.name,
		Start:    t.suspect.UTC(),
		Detected: r.end.UTC(),
		Vectors:  slices.Clone(vectors),
		Timeline: t.pending,
	}
	t.pending = nil
	t.inc = in
	e.transition(t, incident.StateAttack, r.end, "attack confirmed: "+strings.Join(vectors, ", "), r.signals)
	t.attr.fill(in)
	t.written = r.end
	t.dirty = false
	e.metrics.opened.Add(1)
	c := cloneIncident(in)
	return func(ctx context.Context) error { return e.sinkErr("open", c.ID, e.sink.Open(ctx, c)) }
}

// write returns an Update call when forced, or when the incident changed and
// UpdateEvery has passed; nil otherwise.
func (e *Engine) write(t *target, now time.Time, force bool) func(context.Context) error {
	if t.inc == nil || (!force && (now.Sub(t.written) < e.cfg.UpdateEvery)) {
		return nil
	}
	t.attr.fill(t.inc)
	t.written = now
	t.dirty = false
	c := cloneIncident(t.inc)
	return func(ctx context.Context) error { return e.sinkErr("update", c.ID, e.sink.Update(ctx, c)) }
}

func (e *Engine) closeIncident(t *target, now time.Time, msg string) func(context.Context) error {
	in := t.inc
	e.transition(t, incident.StateNormal, now, msg, nil)
	t.attr.fill(in)
	in.End = t.lastFire.UTC()
	t.inc, t.attr, t.pending, t.firing = nil, nil, nil, 0
	e.metrics.closed.Add(1)
	c := cloneIncident(in)
	return func(ctx context.Context) error { return e.sinkErr("close", c.ID, e.sink.Close(ctx, c)) }
}

func (e *Engine) sinkErr(op, id string, err error) error {
	if err == nil {
		return nil
	}
	e.metrics.sinkErrors.Add(1)
	return fmt.Errorf("detect: sink %s incident %s: %w", op, id, err)
}
