package mitigate

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"

	"github.com/portcullis/portcullis/internal/stats"
)

// ErrFull is returned by [DecisionSet.Apply] when the set would hold more
// than its maximum number of decisions.
var ErrFull = errors.New("mitigate: decision set full")

// DefaultMaxDecisions bounds a DecisionSet when NewDecisionSet is given 0.
const DefaultMaxDecisions = 100_000

// DecisionSet holds the active decisions and answers the request path's
// question "which decision applies to this request?". Reads are lock-free
// (an atomic pointer to an immutable index); writes (Apply, Add, Remove,
// Expire) are serialised, copy the decisions and rebuild the index, so they
// cost O(n log n) for n decisions and belong on the control path (a batch
// per tick, not per request). Safe for concurrent use.
type DecisionSet struct {
	mu  sync.Mutex // serialises writers
	max int
	cur atomic.Pointer[setSnapshot]
}

// setSnapshot is one immutable generation of the set.
type setSnapshot struct {
	all      map[string]*Decision // values are immutable once stored
	enforced *index
	shadow   *index
	counts   [numActions][numScopes][2]int // [action][scope][shadow]
}

// NewDecisionSet returns an empty set holding at most maxDecisions
// decisions (DefaultMaxDecisions when ≤ 0).
func NewDecisionSet(maxDecisions int) *DecisionSet {
	if maxDecisions <= 0 {
		maxDecisions = DefaultMaxDecisions
	}
	s := &DecisionSet{max: maxDecisions}
	s.cur.Store(build(map[string]*Decision{}))
	return s
}

// Lookup returns the most severe enforced (not Shadow) decision matching a
// request to site from addr (any form; IPv4-mapped IPv6 is matched as IPv4)
// whose origin AS is asn (0: unknown), country its ISO code ("" unknown),
// path its path and uaHash the [FingerprintHash] of its user agent. A
// decision matches when its Site is site or -1 and its scope value matches.
// Severity: Allow > Drop > Block > Challenge > RateLimit (lower rate first)
// > Observe; ties go to the smaller ID. Decisions past Expires still match
// until the next Expire call (the controller expires every tick).
// Lookup does not allocate.
func (s *DecisionSet) Lookup(site int, addr netip.Addr, asn uint32, country, path string, uaHash uint64) (Decision, bool) {
	ix := s.cur.Load().enforced
	if i := ix.lookup(site, addr, asn, country, path, uaHash); i != none {
		return *ix.decs[i], true
	}
	return Decision{}, false
}

// LookupShadow is Lookup over the shadow decisions only. The request path
// calls it (when [DecisionSet.HasShadow]) and records a hit in the
// ShadowLog when the shadow decision is more severe than the enforced one.
func (s *DecisionSet) LookupShadow(site int, addr netip.Addr, asn uint32, country, path string, uaHash uint64) (Decision, bool) {
	ix := s.cur.Load().shadow
	if i := ix.lookup(site, addr, asn, country, path, uaHash); i != none {
		return *ix.decs[i], true
	}
	return Decision{}, false
}

// HasShadow reports whether any shadow decision is active.
func (s *DecisionSet) HasShadow() bool { return len(s.cur.Load().shadow.decs) > 0 }

// Len returns the number of decisions (enforced and shadow).
func (s *DecisionSet) Len() int { return len(s.cur.Load().all) }

// Get returns the decision with this ID.
func (s *DecisionSet) Get(id string) (Decision, bool) {
	if d, ok := s.cur.Load().all[id]; ok {
		return *d, true
	}
	return Decision{}, false
}

// List returns every decision, sorted by site, then severity (most severe
// first), then ID.
func (s *DecisionSet) List() []Decision {
	snap := s.cur.Load()
	ptrs := slices.AppendSeq(make([]*Decision, 0, len(snap.all)), maps.Values(snap.all))
	slices.SortFunc(ptrs, func(a, b *Decision) int {
		if c := cmp.Compare(a.Site, b.Site); c != 0 {
			return c
		}
		return compareSeverity(a, b)
	})
	out := make([]Decision, len(ptrs))
	for i, d := range ptrs {
		out[i] = *d
	}
	return out
}

// Counts returns the number of decisions by action, scope and shadow
// (index 1 for shadow), for metrics.
func (s *DecisionSet) Counts() [numActions][numScopes][2]int { return s.cur.Load().counts }

// Add inserts or replaces (by ID) decisions; see Apply.
func (s *DecisionSet) Add(ds ...Decision) error { return s.Apply(ds, nil) }

// Remove deletes decisions by ID and returns those it removed.
func (s *DecisionSet) Remove(ids ...string) []Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed []Decision
	for _, id := range ids {
		if d, ok := s.cur.Load().all[id]; ok {
			removed = append(removed, *d)
		}
	}
	s.dropLocked(removed)
	return removed
}

// dropLocked stores a generation without the given decisions (none: no
// new generation).
func (s *DecisionSet) dropLocked(ds []Decision) {
	if len(ds) == 0 {
		return
	}
	all := maps.Clone(s.cur.Load().all)
	for _, d := range ds {
		delete(all, d.ID)
	}
	s.cur.Store(build(all))
}

// Apply removes the decisions named by remove, then inserts or replaces
// upsert (each normalised by Decision.Normalize), as one new generation.
// Invalid decisions are skipped and reported (wrapping ErrDecision); when
// the set would exceed its bound, new IDs beyond it are skipped and ErrFull
// reported, while replacements still apply. The errors are joined.
func (s *DecisionSet) Apply(upsert []Decision, remove []string) error {
	ops := make([]Change, 0, len(remove)+len(upsert))
	for _, id := range remove {
		ops = append(ops, Change{Kind: ChangeRemove, Decision: Decision{ID: id}})
	}
	for _, d := range upsert {
		ops = append(ops, Change{Kind: ChangeAdd, Decision: d})
	}
	_, err := s.apply(ops)
	return err
}

// apply performs changes in order (removals and expiries delete, every
// other kind inserts or replaces) as one generation, and returns the IDs of
// the upserts it refused.
func (s *DecisionSet) apply(ops []Change) (skipped []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := maps.Clone(s.cur.Load().all)
	var errs []error
	full := 0
	for _, op := range ops {
		if op.Kind == ChangeRemove || op.Kind == ChangeExpire {
			delete(all, op.Decision.ID)
			continue
		}
		n, e := op.Decision.Normalize()
		if e != nil {
			errs = append(errs, e)
			skipped = append(skipped, n.ID)
			continue
		}
		if _, exists := all[n.ID]; !exists && len(all) >= s.max {
			full++
			skipped = append(skipped, n.ID)
			continue
		}
		all[n.ID] = &n
	}
	if full > 0 {
		errs = append(errs, fmt.Errorf("%w: %d decisions not added (limit %d)", ErrFull, full, s.max))
	}
	s.cur.Store(build(all))
	return skipped, errors.Join(errs...)
}

// Expire removes the decisions whose Expires is not after now and returns
// them, sorted by ID.
func (s *DecisionSet) Expire(now time.Time) []Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []Decision
	for _, d := range s.cur.Load().all {
		if d.Expired(now) {
			gone = append(gone, *d)
		}
	}
	s.dropLocked(gone)
	slices.SortFunc(gone, func(a, b Decision) int { return cmp.Compare(a.ID, b.ID) })
	return gone
}

// compareSeverity orders most severe first, then by ID.
func compareSeverity(a, b *Decision) int {
	if c := cmp.Compare(b.severity(), a.severity()); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func build(all map[string]*Decision) *setSnapshot {
	snap := &setSnapshot{all: all}
	var enf, sh []*Decision
	for _, d := range all {
		snap.counts[d.Action][d.Scope][b2i(d.Shadow)]++
		if d.Shadow {
			sh = append(sh, d)
		} else {
			enf = append(enf, d)
		}
	}
	snap.enforced = buildIndex(enf)
	snap.shadow = buildIndex(sh)
	return snap
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// none is the "no decision" index; every real index is smaller, so the
// most severe match is the minimum index.
const none = int32(math.MaxInt32)

// index is an immutable lookup structure over decisions sorted most severe
// first: a smaller position means a more severe decision.
type index struct {
	decs   []*Decision
	global *table   // decisions with Site -1
	sites  []*table // per site: that site's decisions plus the global ones; nil → global
}

// table holds one site's matchers; each value is a position in index.decs.
type table struct {
	// pfx maps address and prefix scopes to the most severe decision on the
	// prefix or any prefix covering it, so one longest-prefix match finds
	// the most severe prefix decision for an address.
	pfx     *bart.Fast[int32]
	asn     map[uint32]int32
	country map[string]int32
	fp      map[uint64]int32
	routes  []routeEntry
	site    int32
}

type routeEntry struct {
	r stats.Route
	i int32
}

func buildIndex(decs []*Decision) *index {
	slices.SortFunc(decs, compareSeverity)
	ix := &index{decs: decs}
	var global []int32
	bySite := map[int][]int32{}
	maxSite := -1
	for i := range decs {
		if s := decs[i].Site; s < 0 {
			global = append(global, int32(i))
		} else {
			bySite[s] = append(bySite[s], int32(i))
			maxSite = max(maxSite, s)
		}
	}
	ix.global = buildTable(decs, global)
	if maxSite >= 0 {
		ix.sites = make([]*table, maxSite+1)
		for s, own := range bySite {
			merged := append(slices.Clone(global), own...)
			slices.Sort(merged)
			ix.sites[s] = buildTable(decs, merged)
		}
	}
	return ix
}

// buildTable indexes decs[members] (members ascending: most severe first).
func buildTable(decs []*Decision, members []int32) *table {
	t := &table{site: none}
	better := func(m map[uint32]int32, k uint32, i int32) {
		if j, ok := m[k]; !ok || i < j {
			m[k] = i
		}
	}
	var prefixes []int32
	for _, i := range members {
		d := decs[i]
		switch d.Scope {
		case ScopeAddress, ScopePrefix:
			prefixes = append(prefixes, i)
		case ScopeASN:
			if t.asn == nil {
				t.asn = map[uint32]int32{}
			}
			better(t.asn, d.ASN, i)
		case ScopeCountry:
			if t.country == nil {
				t.country = map[string]int32{}
			}
			if j, ok := t.country[d.Country]; !ok || i < j {
				t.country[d.Country] = i
			}
		case ScopeFingerprint:
			if t.fp == nil {
				t.fp = map[uint64]int32{}
			}
			h := FingerprintHash(d.Fingerprint)
			if j, ok := t.fp[h]; !ok || i < j {
				t.fp[h] = i
			}
		case ScopeRoute:
			t.routes = append(t.routes, routeEntry{r: stats.Route{Path: d.Route}, i: i})
		case ScopeSite:
			t.site = min(t.site, i)
		}
	}
	if len(prefixes) > 0 {
		// Shorter prefixes first, so each prefix inherits the most severe
		// decision of its covering prefixes, already final.
		slices.SortStableFunc(prefixes, func(a, b int32) int {
			return cmp.Compare(decs[a].Prefix.Bits(), decs[b].Prefix.Bits())
		})
		t.pfx = new(bart.Fast[int32])
		for _, i := range prefixes {
			p := decs[i].Prefix
			v := i
			if j, ok := t.pfx.LookupPrefix(p); ok && j < v {
				v = j
			}
			t.pfx.Insert(p, v)
		}
	}
	return t
}

// lookup returns the position of the most severe matching decision, or
// none.
func (ix *index) lookup(site int, addr netip.Addr, asn uint32, country, path string, uaHash uint64) int32 {
	t := ix.global
	if uint(site) < uint(len(ix.sites)) && ix.sites[site] != nil {
		t = ix.sites[site]
	}
	best := t.site
	if t.pfx != nil && addr.IsValid() {
		if i, ok := t.pfx.Lookup(addr.Unmap()); ok && i < best {
			best = i
		}
	}
	if t.asn != nil && asn != 0 {
		if i, ok := t.asn[asn]; ok && i < best {
			best = i
		}
	}
	if t.country != nil && country != "" {
		if i, ok := t.country[country]; ok && i < best {
			best = i
		}
	}
	if t.fp != nil {
		if i, ok := t.fp[uaHash]; ok && i < best {
			best = i
		}
	}
	for k := range t.routes {
		if e := &t.routes[k]; e.i < best && e.r.Match("", path) {
			best = e.i
		}
	}
	return best
}

// HasFingerprint reports whether any decision (enforced or shadow) is
// scoped to a user-agent fingerprint, so that callers hash the user agent
// only when a lookup can use it.
func (s *DecisionSet) HasFingerprint() bool {
	c := &s.cur.Load().counts
	for a := range c {
		if c[a][ScopeFingerprint][0]+c[a][ScopeFingerprint][1] > 0 {
			return true
		}
	}
	return false
}
