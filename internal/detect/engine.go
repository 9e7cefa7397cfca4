package detect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

// Options are the Engine's optional collaborators.
type Options struct {
	// OnEvent, when set, is called (from Step, under the engine's lock: do
	// not call back into the Engine) with every state transition and note
	// of every target, including suspicions that never became incidents.
	OnEvent func(target string, e incident.Event)
	// Geo attributes packet sources for packet-level incidents.
	Geo GeoFunc
	// ASName, when set, returns an autonomous system's registered name
	// ("MTS PJSC" for 8359; "" when unknown), filled into the Name of the
	// incidents' TopASNs entries. It is called under the engine's lock
	// whenever an incident's figures are filled (open, update, close and
	// Status, up to TopNetworks calls each): it must be fast, safe for
	// concurrent use with the caller's other goroutines, and must not call
	// back into the Engine. ASNames.Name fits.
	ASName func(asn uint32) string
	// Clock returns the wall-clock time used for the lag metric (default
	// time.Now). Replay may pass a function returning the event time.
	Clock func() time.Time
}

// Engine runs the detectors on each accounting snapshot and drives one
// state machine per site and per packet destination: normal → suspected →
// attack → recovering → normal, with hysteresis (Config.ConfirmTicks,
// SevereScore, QuietTicks, RecoverAfter). Entering "attack" opens an
// incident in the Sink; every transition is a timeline event with its
// evidence. Step must be called from one goroutine; the getters (Status,
// Lag, ...) are safe from any.
type Engine struct {
	cfg  Config
	sink Sink
	opts Options

	mu      sync.Mutex
	sites   []*target
	siteWin []*siteWindow
	siteDet [][]SiteDetector
	views   []SiteView
	dests   map[netip.Addr]*destTarget
	slow    *slowWatch // low-and-slow reflection figures (slow.go)
	seq     uint64
	lastEnd time.Time
	lag     time.Duration
	metrics engineCounters
}

type destTarget struct {
	*target
	win  *destWindow
	det  []NetDetector
	view DestView
}

type engineCounters struct {
	steps, opened, closed, transitions, sinkErrors atomic.Uint64
}

// NewEngine returns an engine for nSites sites (the accountant's sites, by
// index; cfg.Sites may be shorter, missing entries get defaults named
// "site<i>" unless the accountant's names are passed in cfg.Sites). sink
// must not be nil. cfg is defaulted and validated (errors wrap ErrConfig).
func NewEngine(cfg Config, nSites int, sink Sink, opts Options) (*Engine, error) {
	cfg = cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, fmt.Errorf("%w: nil Sink", ErrConfig)
	}
	if nSites < len(cfg.Sites) {
		nSites = len(cfg.Sites)
	}
	for len(cfg.Sites) < nSites {
		cfg.Sites = append(cfg.Sites, SiteConfig{Name: fmt.Sprintf("site%d", len(cfg.Sites))})
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	e := &Engine{cfg: cfg, sink: sink, opts: opts, dests: map[netip.Addr]*destTarget{}}
	e.slow = newSlowWatch(&e.cfg.Packet, cfg.MaxTargets)
	for i := range cfg.Sites {
		sc := &e.cfg.Sites[i]
		e.sites = append(e.sites, &target{name: sc.Name, site: i, base: NewBaseline(cfg.Baseline), state: incident.StateNormal})
		e.siteWin = append(e.siteWin, newSiteWindow(cfg.Window, cfg.Tick))
		e.siteDet = append(e.siteDet, e.newSiteDetectors(sc))
	}
	e.views = make([]SiteView, len(e.sites))
	return e, nil
}

// newSiteDetectors builds one site's detector set.
func (e *Engine) newSiteDetectors(sc *SiteConfig) []SiteDetector {
	h := &e.cfg.HTTP
	ds := []SiteDetector{
		&HTTPFlood{T: h, Site: sc},
		&DistributedFlood{T: h, Site: sc},
		&ConcentratedFlood{T: h},
		&CacheBusting{T: h},
		&SlowConnections{T: h},
		&H2Abuse{T: h},
		&OriginDistress{T: h},
		&FlashCrowd{T: h, Site: sc},
	}
	for _, r := range sc.AuthRoutes {
		ds = append(ds, NewCredentialStuffing(h, r, e.cfg.Baseline))
	}
	for _, r := range sc.ExpensiveRoutes {
		ds = append(ds, NewExpensiveRoute(h, r, e.cfg.Baseline))
	}
	return ds
}

// Config returns the defaulted configuration in use.
func (e *Engine) Config() Config { return e.cfg }

// Step runs one tick: snap is the accountant's snapshot (its Sites in the
// engine's site order) and now its event time (normally snap.End). Sink
// errors are returned joined and wrapped; the state machines advance
// regardless.
func (e *Engine) Step(ctx context.Context, snap *stats.Snapshot, now time.Time) error {
	e.mu.Lock()
	calls := e.stepLocked(snap, now)
	e.mu.Unlock()
	var errs []error
	for _, c := range calls {
		if err := c(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) stepLocked(snap *stats.Snapshot, now time.Time) []func(context.Context) error {
	e.metrics.steps.Add(1)
	start, end := time.Unix(0, snap.Start), time.Unix(0, snap.End)
	if snap.End <= snap.Start {
		start = end.Add(-e.cfg.Tick)
	}
	span := tickSpan{start.UnixNano(), end.UnixNano()}
	e.lastEnd = end
	e.lag = e.opts.Clock().Sub(end)
	var calls []func(context.Context) error

	for i, t := range e.sites {
		var s *stats.SiteSnapshot
		if i < len(snap.Sites) {
			s = &snap.Sites[i]
		} else {
			s = &stats.SiteSnapshot{Site: i, Name: t.name}
		}
		v := &e.views[i]
		e.siteWin[i].push(s, span, v)
		sigs := make([]Signal, 0, len(e.siteDet[i]))
		for _, d := range e.siteDet[i] {
			sigs = append(sigs, d.Observe(v, t.base, now))
		}
		calls = append(calls, e.stepTarget(t, tickResult{start: start, end: end, signals: sigs},
			func(a *attribution) { a.addSite(s, v) })...)
		if t.state == incident.StateNormal && !t.fired {
			t.base.Learn(&v.Rates, now, e.cfg.Tick)
		}
	}
	calls = append(calls, e.stepDests(snap, span, start, end, now)...)
	return calls
}

// stepDests advances the packet destinations' state machines.
func (e *Engine) stepDests(snap *stats.Snapshot, span tickSpan, start, end, now time.Time) []func(context.Context) error {
	var calls []func(context.Context) error
	seen := make(map[netip.Addr]*stats.DestSnapshot, len(snap.Net.Dests))
	e.slow.observe(&snap.Net, span)
	for i := range snap.Net.Dests {
		d := &snap.Net.Dests[i]
		seen[d.Dst] = d
		if _, ok := e.dests[d.Dst]; ok {
			continue
		}
		if perSecond(float64(d.Packets), end.Sub(start)) < e.cfg.Packet.MinPPS && !e.slow.ripe(d) {
			continue
		}
		if len(e.dests) >= e.cfg.MaxTargets && !e.evictDest() {
			continue
		}
		e.dests[d.Dst] = &destTarget{
			target: &target{name: d.Dst.String(), site: -1, dst: d.Dst, base: NewBaseline(e.cfg.Baseline), state: incident.StateNormal},
			win:    newDestWindow(e.cfg.Window, e.cfg.Tick),
			det:    NewPacketDetectors(&e.cfg.Packet),
		}
	}
	// Deterministic order: by address.
	keys := make([]netip.Addr, 0, len(e.dests))
	for k := range e.dests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, k := range keys {
		dt := e.dests[k]
		d := seen[k]
		if d != nil {
			dt.lastSeen = end
		}
		dt.win.push(k, d, span, &dt.view)
		dt.view.Slow = e.slow.view(k)
		sigs := make([]Signal, 0, len(dt.det))
		for _, det := range dt.det {
			sigs = append(sigs, det.Observe(&dt.view, dt.base, now))
		}
		v := &dt.view
		calls = append(calls, e.stepTarget(dt.target, tickResult{start: start, end: end, signals: sigs},
			func(a *attribution) { a.addDest(d, v, &snap.Net, e.opts.Geo) })...)
		if dt.state == incident.StateNormal && !dt.fired {
			dt.base.Learn(&v.Rates, now, e.cfg.Tick)
		}
		if dt.state == incident.StateNormal && end.Sub(dt.lastSeen) > e.cfg.Window+e.cfg.RecoverAfter && dt.win.silent() {
			delete(e.dests, k)
		}
	}
	return calls
}

// evictDest forgets the normal destination seen longest ago; false if every
// tracked destination is in an episode.
func (e *Engine) evictDest() bool {
	var victim netip.Addr
	var oldest time.Time
	found := false
	for k, d := range e.dests {
		if d.state != incident.StateNormal {
			continue
		}
		if !found || d.lastSeen.Before(oldest) {
			victim, oldest, found = k, d.lastSeen, true
		}
	}
	if found {
		delete(e.dests, victim)
	}
	return found
}

// Finish ends the run (end of a replay, shutdown): every open incident is
// closed with End at its last attack tick, and suspicions are dropped.
func (e *Engine) Finish(ctx context.Context, now time.Time) error {
	e.mu.Lock()
	var calls []func(context.Context) error
	for _, t := range e.allTargets() {
		switch {
		case t.inc != nil:
			calls = append(calls, e.closeIncident(t, now, "end of input"))
		case t.state == incident.StateSuspected:
			e.transition(t, incident.StateNormal, now, "end of input", nil)
			t.attr = nil
		}
	}
	e.mu.Unlock()
	var errs []error
	for _, c := range calls {
		if err := c(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// allTargets returns sites then destinations (by address).
func (e *Engine) allTargets() []*target {
	out := slices.Clone(e.sites)
	keys := make([]netip.Addr, 0, len(e.dests))
	for k := range e.dests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, k := range keys {
		out = append(out, e.dests[k].target)
	}
	return out
}

// Idle reports whether no target is in an episode (all normal), so a replay
// driver may skip empty time.
func (e *Engine) Idle() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.allTargets() {
		if t.state != incident.StateNormal {
			return false
		}
	}
	return true
}

// TargetStatus is one target's live state, for the admin API and metrics.
type TargetStatus struct {
	// Name is the site name or the destination address.
	Name string
	// Site is the site index, -1 for a packet destination (Dst).
	Site int
	Dst  netip.Addr
	// State and Since: the current state and when it was entered.
	State incident.State
	Since time.Time
	// FlashCrowd reports a legitimate surge in progress.
	FlashCrowd bool
	// Scores maps detector name → latest score (≥ 1 fires).
	Scores map[string]float64
	// Signals are the detectors' latest signals (a copy), for the
	// mitigation policy.
	Signals []Signal
	// Baseline reports whether the baseline is warm.
	BaselineWarm bool
	// Incident is a copy of the open incident, nil when none.
	Incident *incident.Incident
}

// Status returns every target's state: sites in order, then destinations
// by address.
func (e *Engine) Status() []TargetStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []TargetStatus
	for _, t := range e.allTargets() {
		st := TargetStatus{Name: t.name, Site: t.site, Dst: t.dst, State: t.state, Since: t.since,
			FlashCrowd: t.flash, Scores: map[string]float64{}, BaselineWarm: t.base.Warm()}
		for _, s := range t.signals {
			st.Scores[s.Detector] = s.Score
		}
		st.Signals = append([]Signal(nil), t.signals...)
		if t.inc != nil {
			c := cloneIncident(t.inc)
			t.attr.fill(c)
			st.Incident = c
		}
		out = append(out, st)
	}
	return out
}

// Lag returns how far behind the wall clock (Options.Clock) the latest
// processed tick ended.
func (e *Engine) Lag() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lag
}

// LastTick returns the end of the latest processed tick.
func (e *Engine) LastTick() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastEnd
}
