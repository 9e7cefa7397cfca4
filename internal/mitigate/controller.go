package mitigate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// ErrNotFound is returned when an operator removes a decision that does not
// exist.
var ErrNotFound = errors.New("mitigate: no such decision")

// ControllerOptions are the Controller's optional collaborators.
type ControllerOptions struct {
	// OnEvent, when set, receives one timeline event (Kind "decision") per
	// applied change except refreshes, with the decision's site (-1: all
	// sites) and incident id ("" for operator decisions made outside an
	// incident). It is called with the controller's lock held: it must not
	// call back into the Controller.
	OnEvent func(site int, incidentID string, ev incident.Event)
}

// Controller applies the policy's changes to the DecisionSet, expires
// decisions, takes operator decisions, and reports every change as an
// incident timeline event. Its methods are safe for concurrent use (the
// tick loop calls Step; the admin API the operator verbs).
type Controller struct {
	mu     sync.Mutex
	set    *DecisionSet
	policy *Policy
	opts   ControllerOptions

	changes [numChangeKinds]atomic.Uint64
	errs    atomic.Uint64
}

// NewController returns a controller over set driven by policy; neither may
// be nil.
func NewController(set *DecisionSet, policy *Policy, opts ControllerOptions) (*Controller, error) {
	if set == nil || policy == nil {
		return nil, fmt.Errorf("%w: controller needs a DecisionSet and a Policy", ErrConfig)
	}
	return &Controller{set: set, policy: policy, opts: opts}, nil
}

// Set returns the decision set the controller maintains.
func (c *Controller) Set() *DecisionSet { return c.set }

// Status returns the policy's per-site ladder state.
func (c *Controller) Status() []SiteStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.policy.Status()
}

// Step runs one tick: it expires lapsed decisions, runs the policy on the
// sites' inputs and applies its changes. It returns the expiries and the
// applied changes; the error reports decisions the set refused (invalid, or
// the set full), which the policy then forgets.
func (c *Controller) Step(now time.Time, inputs []SiteInput) ([]Change, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Change
	for _, d := range c.set.Expire(now) {
		ch := Change{Kind: ChangeExpire, Decision: d, From: d.Action}
		c.record(now, ch)
		out = append(out, ch)
	}
	applied, err := c.applyLocked(now, c.policy.Step(now, inputs))
	return append(out, applied...), err
}

// Apply applies changes (from Policy.Step, or built by the caller) to the
// set as one generation and records them; see Step for the error.
func (c *Controller) Apply(now time.Time, changes []Change) ([]Change, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applyLocked(now, changes)
}

func (c *Controller) applyLocked(now time.Time, changes []Change) ([]Change, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	skipped, err := c.set.apply(changes)
	if err != nil {
		c.errs.Add(1)
		c.policy.Forget(skipped...)
		err = fmt.Errorf("mitigate: apply %d changes: %w", len(changes), err)
	}
	refused := make(map[string]bool, len(skipped))
	for _, id := range skipped {
		refused[id] = true
	}
	out := changes[:0:0]
	for _, ch := range changes {
		if ch.Kind != ChangeRemove && ch.Kind != ChangeExpire && refused[ch.Decision.ID] {
			continue
		}
		if n, ok := c.set.Get(ch.Decision.ID); ok {
			ch.Decision = n // normalised form
		}
		c.record(now, ch)
		out = append(out, ch)
	}
	return out, err
}

// record counts a change and reports it as a timeline event.
func (c *Controller) record(now time.Time, ch Change) {
	c.changes[ch.Kind].Add(1)
	if ch.Kind == ChangeRefresh || c.opts.OnEvent == nil {
		return
	}
	c.opts.OnEvent(ch.Decision.Site, ch.Decision.IncidentID, Event(now, ch))
}

// Event renders a change as an incident timeline event: Kind "decision",
// a message naming the change, action, scope, TTL, reason, estimated
// collateral and origin, and evidence figures ttl_seconds, collateral,
// level, shadow (1 when shadow), prefix_bits (address and prefix scopes),
// rate_per_second (rate limits) and asn (network scopes).
func Event(now time.Time, ch Change) incident.Event {
	d := &ch.Decision
	var b strings.Builder
	b.WriteString(ch.Kind.String())
	switch ch.Kind {
	case ChangeEscalate, ChangeRelax:
		b.WriteString(" " + ch.From.String() + " →")
	}
	b.WriteString(" " + d.Action.String())
	if d.Action == RateLimit {
		b.WriteString(" " + strconv.FormatFloat(d.RatePerSecond, 'g', -1, 64) + "/s")
	}
	b.WriteString(" " + d.Key())
	if d.Site < 0 {
		b.WriteString(" on all sites")
	}
	switch {
	case ch.Kind == ChangeRemove || ch.Kind == ChangeExpire:
	case d.Expires.IsZero():
		b.WriteString(" until removed")
	default:
		b.WriteString(" for " + d.Expires.Sub(now).Round(time.Second).String())
	}
	if d.Reason != "" {
		b.WriteString(": " + d.Reason)
	}
	fmt.Fprintf(&b, " (collateral: %d known-good users; %s", d.EstimatedCollateral, d.Origin)
	if d.Shadow {
		b.WriteString("; shadow, not enforced")
	}
	b.WriteString(")")
	ev := map[string]float64{
		"ttl_seconds": d.TTL.Seconds(),
		"collateral":  float64(d.EstimatedCollateral),
		"level":       float64(d.Level),
	}
	if d.Shadow {
		ev["shadow"] = 1
	}
	switch d.Scope {
	case ScopeAddress, ScopePrefix:
		ev["prefix_bits"] = float64(d.Prefix.Bits())
	case ScopeASN:
		ev["asn"] = float64(d.ASN)
	}
	if d.Action == RateLimit {
		ev["rate_per_second"] = d.RatePerSecond
	}
	return incident.Event{Time: now.UTC(), Kind: "decision", Message: b.String(), Evidence: ev}
}

// OperatorID returns the ID of an operator decision on d's site and scope
// value, so a second operator decision on the same scope replaces the first
// (an allow replaces a block).
// The value is taken as given: pass a normalised decision.
func OperatorID(d Decision) string {
	id := "operator/" + strconv.Itoa(d.Site) + "/" + d.Scope.String()
	if v := d.value(); v != "" {
		id += "/" + v
	}
	return id
}

// Operator adds or replaces an operator decision (block, allow, challenge,
// rate limit, …) made by who at now: d's scope, value, action and TTL are
// used (TTL 0: until removed); ID defaults to OperatorID, Origin becomes
// "operator:<who>", Rule "operator". It returns the stored decision; errors
// wrap ErrDecision or ErrFull.
func (c *Controller) Operator(now time.Time, who string, d Decision) (Decision, error) {
	autoID := d.ID == ""
	if autoID {
		d.ID = "operator"
	}
	d.Origin, d.Rule, d.Created = OriginOperator+who, RuleOperator, now
	d.Expires = time.Time{}
	if d.TTL > 0 {
		d.Expires = now.Add(d.TTL)
	}
	if d.Reason == "" {
		d.Reason = "operator decision by " + who
	}
	n, err := d.Normalize()
	if err != nil {
		return Decision{}, err
	}
	if autoID {
		n.ID = OperatorID(n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kind := ChangeAdd
	from := Observe
	if old, ok := c.set.Get(n.ID); ok {
		from = old.Action
		kind = ChangeEscalate
		if n.severity() < old.severity() {
			kind = ChangeRelax
		}
	}
	applied, err := c.applyLocked(now, []Change{{Kind: kind, Decision: n, From: from}})
	if err != nil || len(applied) == 0 {
		return Decision{}, err
	}
	return applied[0].Decision, nil
}

// Remove removes a decision by ID on an operator's behalf (policy decisions
// included: the policy forgets them, and may decide again if the source
// stays heavy — use an Allow decision to exempt a scope). Errors wrap
// ErrNotFound.
func (c *Controller) Remove(now time.Time, who, id string) (Decision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.set.Get(id)
	if !ok {
		return Decision{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	c.policy.Forget(id)
	d.Reason = "removed by operator " + who
	if _, err := c.applyLocked(now, []Change{{Kind: ChangeRemove, Decision: d, From: d.Action}}); err != nil {
		return Decision{}, err
	}
	return d, nil
}

// UnderAttack switches a site's under-attack mode (a site-wide challenge)
// on or off on an operator's behalf. On adds an operator decision that
// lasts ttl (0: until turned off) whatever the policy does; off removes it
// and the policy's own under-attack decision, and keeps the policy from
// switching the mode on again until the site's ladder is back at observe.
func (c *Controller) UnderAttack(now time.Time, who string, site int, on bool, ttl time.Duration) error {
	d := Decision{Site: site, Scope: ScopeSite, Action: Challenge, TTL: ttl, Level: LevelChallenge,
		Reason: "under-attack mode switched on by operator " + who}
	if on {
		_, err := c.Operator(now, who, d)
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var changes []Change
	ids := append([]string{OperatorID(d)}, c.policy.SuppressUnderAttack(site)...)
	for _, id := range ids {
		if old, ok := c.set.Get(id); ok {
			old.Reason = "under-attack mode switched off by operator " + who
			old.Origin = OriginOperator + who // the removal is the operator's act
			changes = append(changes, Change{Kind: ChangeRemove, Decision: old, From: old.Action})
		}
	}
	_, err := c.applyLocked(now, changes)
	return err
}
