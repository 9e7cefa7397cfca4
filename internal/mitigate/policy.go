package mitigate

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// ChangeKind says what a Change does to a decision.
type ChangeKind uint8

// Change kinds.
const (
	// ChangeAdd adds a new decision.
	ChangeAdd ChangeKind = iota
	// ChangeEscalate replaces a decision by a more severe one (same ID).
	ChangeEscalate
	// ChangeRelax replaces a decision by a milder one (same ID).
	ChangeRelax
	// ChangeRefresh extends a decision's Expires (TTL refresh).
	ChangeRefresh
	// ChangeRemove removes a decision before it expires.
	ChangeRemove
	// ChangeExpire reports a decision that reached Expires (controller).
	ChangeExpire
	numChangeKinds
)

var changeNames = [numChangeKinds]string{"add", "escalate", "relax", "refresh", "remove", "expire"}

// String returns the lower-case kind name used in events and metrics.
func (k ChangeKind) String() string { return enumName(changeNames[:], k, "change") }

// Change is one step of the policy: a decision to add, replace, refresh or
// remove. Decision is the new state (for removals and expiries, the
// decision removed); From is the action it replaces (escalate, relax).
type Change struct {
	Kind     ChangeKind
	Decision Decision
	From     Action
}

// SiteStatus is one site's ladder state, for the admin API.
type SiteStatus struct {
	Site int
	// Level is the current ladder level and Since when it was entered.
	Level Level
	Since time.Time
	// UnderAttack reports the policy's own under-attack mode (operator
	// decisions are in the DecisionSet).
	UnderAttack bool
	// Decisions is the number of policy decisions in force for the site.
	Decisions int
}

// Policy is the mitigation policy: Step maps the detection outputs of one
// tick to decision changes. It is a pure function of its inputs and its own
// state, with time passed in (no clock, no goroutines), so tests replay
// recorded inputs on explicit timestamps. Not safe for concurrent use (the
// Controller serialises calls).
type Policy struct {
	cfg   Config
	sites map[int]*siteState
}

// siteState is the policy's memory of one site.
type siteState struct {
	level      Level
	since      time.Time // when level was entered
	lastPress  time.Time // latest tick with the attack pressing
	suppressUA bool      // an operator turned under-attack mode off this episode
	own        map[string]Decision
	fails      map[netip.Prefix]*failWindow
	lastSweep  time.Time
}

// NewPolicy returns a policy with cfg defaulted and validated (errors wrap
// ErrConfig).
func NewPolicy(cfg Config) (*Policy, error) {
	cfg = cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Policy{cfg: cfg, sites: map[int]*siteState{}}, nil
}

// Config returns the defaulted configuration in use.
func (p *Policy) Config() Config { return p.cfg }

func (p *Policy) state(site int) *siteState {
	st := p.sites[site]
	if st == nil {
		st = &siteState{own: map[string]Decision{}, fails: map[netip.Prefix]*failWindow{}}
		p.sites[site] = st
	}
	return st
}

// Status returns every site's ladder state, by site index.
func (p *Policy) Status() []SiteStatus {
	var out []SiteStatus
	for _, site := range slices.Sorted(maps.Keys(p.sites)) {
		st := p.sites[site]
		_, ua := st.own[underAttackID(site)]
		out = append(out, SiteStatus{Site: site, Level: st.level, Since: st.since, UnderAttack: ua, Decisions: len(st.own)})
	}
	return out
}

// Forget drops decisions from the policy's memory (the controller could not
// store them, or an operator removed them); the policy may decide them
// again on a later tick.
func (p *Policy) Forget(ids ...string) {
	for _, st := range p.sites {
		for _, id := range ids {
			delete(st.own, id)
		}
	}
}

// SuppressUnderAttack keeps the policy from switching under-attack mode on
// for the site until its ladder is back at observe (an operator turned the
// mode off), and returns the policy's own under-attack decision IDs to
// remove.
func (p *Policy) SuppressUnderAttack(site int) []string {
	st := p.state(site)
	st.suppressUA = true
	var ids []string
	for _, id := range []string{underAttackID(site), underAttackID(site) + shadowSuffix} {
		if _, ok := st.own[id]; ok {
			delete(st.own, id)
			ids = append(ids, id)
		}
	}
	return ids
}

// Step runs the policy for one tick at now over the sites' inputs and
// returns the changes to apply, in a deterministic order.
//
// Per site: the ladder climbs one level every EscalateAfter
// (DistressEscalateAfter while the origin is in distress) while the site is
// under attack or its origin in distress, entering at rate-limit (or at
// challenge for a distributed flood, which per-source limits cannot see,
// and for an origin already in distress); it steps down one level per HoldFor once the signal has cleared for
// HoldFor. Heavy sources get the level's action on collateral-aware scopes
// (see heavyScopes and effective); decisions are refreshed while their
// source stays heavy and the attack continues, relaxed as the ladder steps
// down and removed when it reaches observe. A flash crowd gets observe
// only. Failed challenges feed the auto-ban regardless of the ladder.
func (p *Policy) Step(now time.Time, inputs []SiteInput) []Change {
	var out []Change
	for i := range inputs {
		in := &inputs[i]
		if in.Site < 0 {
			continue
		}
		out = append(out, p.stepSite(now, in)...)
	}
	return out
}

// emitter collects one site's changes and keeps the policy's memory in
// step with them.
type emitter struct {
	p     *Policy
	st    *siteState
	cfg   *SiteConfig
	in    *SiteInput
	now   time.Time
	out   []Change
	added int
}

const shadowSuffix = "~shadow"

func ladderID(site int, p netip.Prefix) string {
	return "ladder/" + strconv.Itoa(site) + "/" + p.String()
}
func asnID(site int, asn uint32) string {
	return "asn/" + strconv.Itoa(site) + "/AS" + strconv.FormatUint(uint64(asn), 10)
}
func underAttackID(site int) string { return "under_attack/" + strconv.Itoa(site) }
func flashID(site int) string       { return "flash_crowd/" + strconv.Itoa(site) }
func autoBanID(site int, p netip.Prefix) string {
	return "auto_ban/" + strconv.Itoa(site) + "/" + p.String()
}

func (p *Policy) stepSite(now time.Time, in *SiteInput) []Change {
	cfg := p.cfg.site(in.Site)
	st := p.state(in.Site)
	e := &emitter{p: p, st: st, cfg: cfg, in: in, now: now}
	for id, d := range st.own {
		if d.Expired(now) {
			delete(st.own, id) // the controller's Expire reports it
		}
	}
	r := read(in)
	// The attack presses while detection is in attack with a vector firing
	// this tick (the engine's quiet ticks before "recovering" do not
	// count), or while the origin is in distress during an episode. A
	// flash crowd vetoes the volumetric vectors, so it never presses alone.
	pressing := !cfg.ObserveOnly &&
		((in.State == incident.StateAttack && len(r.vectors) > 0) || (r.distress && in.State != incident.StateNormal))

	prev := st.level
	if pressing {
		st.lastPress = now
		// A distributed flood (per-source limits cannot see it) and an
		// origin already in distress (a per-source budget cannot relieve
		// it: 200 sources at RateLimitPerSecond still send 1,000 req/s)
		// enter at challenge, which is what switches under-attack mode on
		// for the flood's sources the heavy-hitter list has not named yet.
		entry := LevelRateLimit
		if r.distributed || r.distress {
			entry = LevelChallenge
		}
		entry = min(entry, cfg.MaxLevel)
		every := cfg.EscalateAfter
		if r.distress {
			every = cfg.DistressEscalateAfter
		}
		switch {
		case st.level < entry:
			st.level, st.since = entry, now
		case st.level < cfg.MaxLevel && now.Sub(st.since) >= every:
			st.level, st.since = st.level+1, now
		}
	} else if st.level > LevelObserve && now.Sub(st.lastPress) >= cfg.HoldFor && now.Sub(st.since) >= cfg.HoldFor {
		st.level, st.since = st.level-1, now
	}
	if st.level == LevelObserve {
		st.suppressUA = false
	}

	if st.level < prev {
		e.relax()
	}
	switch {
	case pressing:
		covered := e.sources(st.level, reasonPrefix(r))
		covered += e.asns(st.level)
		e.underAttack(r, covered)
		e.authRoutes(r)
	case st.level == LevelObserve && (in.State == incident.StateSuspected || in.State == incident.StateAttack):
		e.sources(LevelObserve, "watching while "+string(in.State))
	}
	if r.flash && !pressing {
		e.flash()
	}
	e.autoBan()
	return e.out
}

func reasonPrefix(r reading) string {
	s := strings.Join(r.vectors, ", ")
	if r.distress && !strings.Contains(s, "origin_distress") {
		s += " with origin in distress"
	}
	return s
}

// sources decides on the heavy sources at level l and returns the requests
// they account for.
func (e *emitter) sources(l Level, why string) uint64 {
	var covered uint64
	for _, u := range heavyScopes(e.in, e.cfg) {
		covered += u.requests
		collateral := e.in.knownGood(u.p)
		a := effectiveFor(e.cfg, l, u.p, collateral)
		reason := fmt.Sprintf("%s: %s sent %.0f req/s (%.0f%% of the site)", why, scopeText(u), e.in.rate(u.requests), 100*e.in.share(u.requests))
		if a != min(l, e.cfg.MaxLevel).Action() {
			reason += fmt.Sprintf("; challenged, not %s: %d known-good users behind it", l.Action(), collateral)
		}
		d := Decision{ID: ladderID(e.in.Site, u.p), Scope: ScopePrefix, Prefix: u.p, Action: a, Rule: ruleFor(a),
			Reason: reason, EstimatedCollateral: collateral}
		if u.p.Bits() == u.p.Addr().BitLen() {
			d.Scope = ScopeAddress
		}
		e.want(d, l, true)
	}
	return covered
}

func scopeText(u unit) string {
	if u.p.Bits() == u.p.Addr().BitLen() {
		return u.p.Addr().String()
	}
	if u.members > 1 {
		return fmt.Sprintf("%s (%d misbehaving members)", u.p, u.members)
	}
	return u.p.String()
}

// asns decides on origin networks: a listed hosting network with at least
// HostingMinShare of the site's requests gets the level's action; any other
// network with at least ASNShare and no known-good users is challenged from
// LevelChallenge up. It returns the requests the decided networks sent.
func (e *emitter) asns(l Level) (covered uint64) {
	for _, a := range e.in.TopASNs {
		if a.Key == 0 {
			continue
		}
		share := e.in.share(a.Count)
		collateral := e.in.knownGoodASN(a.Key)
		var act Action
		var reason string
		switch {
		case slices.Contains(e.cfg.HostingASNs, a.Key) && share >= e.cfg.HostingMinShare:
			act = effective(e.cfg, l, collateral)
			reason = fmt.Sprintf("hosting network AS%d sent %.0f%% of the site's requests", a.Key, 100*share)
		case share >= e.cfg.ASNShare && collateral == 0 && l >= LevelChallenge:
			act = Challenge
			reason = fmt.Sprintf("network AS%d sent %.0f%% of the site's requests and has no known-good users", a.Key, 100*share)
		default:
			continue
		}
		covered += a.Count
		e.want(Decision{ID: asnID(e.in.Site, a.Key), Scope: ScopeASN, ASN: a.Key, Action: act, Rule: RuleASN,
			Reason: reason, EstimatedCollateral: collateral}, l, false)
	}
	return covered
}

// underAttack switches the site-wide challenge on at UnderAttackLevel for a
// distributed flood or when per-source decisions explain too little of the
// traffic, and keeps it (refreshed) while the attack presses.
func (e *emitter) underAttack(r reading, covered uint64) {
	id := underAttackID(e.in.Site)
	_, on := e.st.own[id]
	_, onShadow := e.st.own[id+shadowSuffix]
	if e.cfg.DisableUnderAttack || e.st.suppressUA || e.st.level < e.cfg.UnderAttackLevel {
		return
	}
	coverage := 1.0
	if e.in.Requests > 0 {
		coverage = float64(covered) / float64(e.in.Requests)
	}
	// Low coverage means a flood the per-source decisions miss — but only
	// while there is a flood: after a blocked source stops, the remaining
	// (legitimate) traffic is "uncovered" too, and must not switch the site
	// into under-attack mode.
	flooding := e.in.rate(e.in.Requests) >= e.cfg.FloodRPS
	if !on && !onShadow && !r.distributed && (coverage >= e.cfg.UnderAttackCoverage || !flooding) {
		return
	}
	reason := fmt.Sprintf("under-attack mode: %s; per-source decisions cover %.0f%% of requests",
		strings.Join(r.vectors, ", "), 100*coverage)
	collateral := e.in.knownGood(netip.PrefixFrom(netip.IPv4Unspecified(), 0)) + e.in.knownGood(netip.PrefixFrom(netip.IPv6Unspecified(), 0))
	e.want(Decision{ID: id, Scope: ScopeSite, Action: Challenge, Rule: RuleUnderAttack, Reason: reason,
		EstimatedCollateral: collateral, TTL: e.cfg.UnderAttackTTL}, e.st.level, false)
}

// authRouteID is the ID of the challenge on a site's auth route.
func authRouteID(site int, route string) string {
	return "auth_route/" + strconv.Itoa(site) + route
}

// authRoutes challenges every request to an auth route under credential
// stuffing (vector "credential_stuffing:<path>") that holds neither a
// clearance nor member standing, whatever the other vectors' per-source
// decisions cover: stuffing comes from many sources at a few attempts each,
// below any per-source limit, and often rides along a volumetric flood
// whose heavy hitters the ladder has already named (so the site-wide
// under-attack mode, judged by coverage, would never start for it). The
// decision lasts while the vector fires and for UnderAttackTTL after, and
// is removed with under-attack mode when the ladder steps below
// UnderAttackLevel. Peace-time visitors are spared like under-attack
// mode spares them (the request path decides).
func (e *emitter) authRoutes(r reading) {
	if e.cfg.DisableUnderAttack {
		return
	}
	for _, v := range r.vectors {
		route, ok := strings.CutPrefix(v, "credential_stuffing:")
		if !ok || !strings.HasPrefix(route, "/") {
			continue
		}
		e.want(Decision{ID: authRouteID(e.in.Site, route), Scope: ScopeRoute, Route: route, Action: Challenge,
			Rule: RuleAuthRoute, Reason: "credential stuffing on " + route + ": sign-ins need a clearance or member standing",
			TTL: e.cfg.UnderAttackTTL}, e.st.level, false)
	}
}

// flash records a recognised flash crowd as a site-wide Observe decision.
func (e *emitter) flash() {
	e.want(Decision{ID: flashID(e.in.Site), Scope: ScopeSite, Action: Observe, Rule: RuleFlashCrowd,
		Reason: "flash crowd: legitimate surge recognised, observe only"}, LevelObserve, false)
}

// relax brings the ladder and network decisions down to the current level:
// milder actions as the ladder steps down, removal at observe; under-attack
// mode ends below UnderAttackLevel.
func (e *emitter) relax() {
	l := e.st.level
	for _, id := range slices.Sorted(maps.Keys(e.st.own)) {
		d, ok := e.st.own[id]
		if !ok || strings.HasSuffix(id, shadowSuffix) && e.st.own[strings.TrimSuffix(id, shadowSuffix)].ID != "" {
			continue // handled with its enforced twin
		}
		base := strings.TrimSuffix(id, shadowSuffix)
		var want Action
		switch {
		case Blanket(d.Rule):
			if l < e.cfg.UnderAttackLevel {
				e.drop(base)
			}
			continue
		case d.Rule == RuleASN:
			if l == LevelObserve || (l < LevelChallenge && !slices.Contains(e.cfg.HostingASNs, d.ASN)) {
				e.drop(base)
				continue
			}
			want = effective(e.cfg, l, d.EstimatedCollateral)
		case strings.HasPrefix(id, "ladder/"):
			if l == LevelObserve {
				e.drop(base)
				continue
			}
			// As on the way up: a known-good single address stays
			// challenged, never steps down to a rate limit.
			want = effectiveFor(e.cfg, l, d.Prefix, d.EstimatedCollateral)
		default:
			continue
		}
		cur := e.maxAction(base)
		if want >= cur {
			continue
		}
		nd := d
		nd.ID, nd.Shadow, nd.Action = base, false, want
		if nd.Rule != RuleASN {
			nd.Rule = ruleFor(want)
		}
		nd.Reason = fmt.Sprintf("attack signal clear for %s: stepped down to %s", e.now.Sub(e.st.lastPress).Round(time.Second), want)
		e.want(nd, l, nd.Rule != RuleASN)
	}
}

// maxAction returns the most severe action of base and its shadow twin.
func (e *emitter) maxAction(base string) Action {
	a := Observe
	for _, id := range []string{base, base + shadowSuffix} {
		if d, ok := e.st.own[id]; ok {
			a = max(a, d.Action)
		}
	}
	return a
}

// drop removes base and its shadow twin.
func (e *emitter) drop(base string) {
	for _, id := range []string{base, base + shadowSuffix} {
		if d, ok := e.st.own[id]; ok {
			delete(e.st.own, id)
			e.out = append(e.out, Change{Kind: ChangeRemove, Decision: d, From: d.Action})
		}
	}
}

// want puts d (ID, scope, action, rule, reason, collateral set) in force:
// enforced when its rule is not shadowed; otherwise as a shadow decision
// (ID + "~shadow") plus, for ladder decisions, the most severe enforced
// action whose rule is not shadowed. Existing decisions are replaced when
// the action changes and refreshed when less than half their TTL is left.
func (e *emitter) want(d Decision, l Level, ladder bool) {
	d.Site, d.Level, d.Origin, d.IncidentID = e.in.Site, l, OriginPolicy, e.in.IncidentID
	if d.Action == RateLimit {
		d.RatePerSecond = e.cfg.RateLimitPerSecond
	}
	if d.TTL == 0 {
		d.TTL = e.cfg.ttl(d.Action)
	}
	base := d.ID
	if !e.cfg.shadowed(e.p.cfg.Shadow, d.Rule) {
		e.put(d)
		e.remove(base + shadowSuffix)
		return
	}
	sd := d
	sd.ID, sd.Shadow = base+shadowSuffix, true
	e.put(sd)
	if fb, ok := fallbackAction(e.cfg, e.p.cfg.Shadow, d.Action, d.EstimatedCollateral); ladder && ok {
		d.Action, d.Rule, d.TTL = fb, ruleFor(fb), e.cfg.ttl(fb)
		d.RatePerSecond = 0
		if fb == RateLimit {
			d.RatePerSecond = e.cfg.RateLimitPerSecond
		}
		e.put(d)
		return
	}
	e.remove(base)
}

func (e *emitter) remove(id string) {
	if d, ok := e.st.own[id]; ok {
		delete(e.st.own, id)
		e.out = append(e.out, Change{Kind: ChangeRemove, Decision: d, From: d.Action})
	}
}

// put adds, replaces or refreshes one decision.
func (e *emitter) put(d Decision) {
	old, ok := e.st.own[d.ID]
	if !ok {
		if len(e.st.own) >= e.cfg.MaxDecisions || e.added >= e.cfg.MaxNewPerStep {
			return
		}
		e.added++
		d.Created, d.Expires = e.now, e.now.Add(d.TTL)
		e.st.own[d.ID] = d
		e.out = append(e.out, Change{Kind: ChangeAdd, Decision: d})
		return
	}
	d.Created = old.Created
	if old.Action != d.Action || old.RatePerSecond != d.RatePerSecond {
		d.Expires = e.now.Add(d.TTL)
		kind := ChangeEscalate
		if d.severity() < old.severity() {
			kind = ChangeRelax
		}
		e.st.own[d.ID] = d
		e.out = append(e.out, Change{Kind: kind, Decision: d, From: old.Action})
		return
	}
	if old.Expires.Sub(e.now) >= d.TTL/2 {
		return
	}
	d.Expires = e.now.Add(d.TTL)
	e.st.own[d.ID] = d
	e.out = append(e.out, Change{Kind: ChangeRefresh, Decision: d, From: old.Action})
}
