package mitigate

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/portcullis/portcullis/internal/netset"
	"github.com/portcullis/portcullis/internal/stats"
)

// unit is a source scope the policy acts on: an address or a prefix, the
// requests it sent in the input's period, and how many misbehaving members
// (addresses or narrower prefixes) were widened into it.
type unit struct {
	p        netip.Prefix
	requests uint64
	members  int
}

// heavy reports whether count requests are a heavy hitter's: at least
// absRPS, or at least SourceShare of the site at MinRPS or more — the share
// rule only while the site itself receives at least FloodRPS: once the
// flood has stopped (or its sources are blocked), a visitor browsing at a
// few requests a second is most of what is left, and must not become the
// next target (found by a new user's test: a bystander at 12 req/s was
// blocked as "100% of the site" right after the flood ended).
func heavy(in *SiteInput, cfg *SiteConfig, count uint64, absRPS float64) bool {
	r := in.rate(count)
	if r >= absRPS {
		return true
	}
	return in.share(count) >= cfg.SourceShare && r >= cfg.MinRPS && in.rate(in.Requests) >= cfg.FloodRPS
}

// heavyScopes returns the site's heavy sources as collateral-aware scopes,
// heaviest first:
//
//  1. addresses from TopAddrs that are heavy (SourceRPS), on their
//     guaranteed counts (see guaranteed);
//  2. prefixes from TopPrefixes heavy (PrefixRPS) on the requests the heavy
//     addresses inside them do not explain — rotation inside a /64 shows
//     here, each address light, the prefix heavy (HANDED F06);
//  3. widening, longest prefix length first (IPv6 /64 → /56 → /48, IPv4
//     /24): a prefix holding at least RotationMin distinct heavy members
//     (addresses, or narrower prefixes) replaces them;
//  4. a scope inside another scope is folded into it.
//
// The action each scope gets (and the cap for scopes with known-good users
// behind them) is decided by the caller.
func heavyScopes(in *SiteInput, cfg *SiteConfig) []unit {
	var units []unit
	for _, a := range in.TopAddrs {
		if p, n := AddressPrefix(a.Key), guaranteed(a); p.IsValid() && heavy(in, cfg, n, cfg.SourceRPS) {
			units = append(units, unit{p: p, requests: n, members: 1})
		}
	}
	nAddr := len(units)
	for _, tp := range in.TopPrefixes {
		p, ok := netset.NormalizePrefix(tp.Key)
		if !ok {
			continue
		}
		residual := guaranteed(tp)
		for _, u := range units[:nAddr] {
			if p.Contains(u.p.Addr()) {
				residual -= min(residual, u.requests)
			}
		}
		if heavy(in, cfg, residual, cfg.PrefixRPS) {
			units = append(units, unit{p: p, requests: residual, members: 1})
		}
	}
	units = widen(units, cfg.WidenIPv4, true, cfg.RotationMin)
	units = widen(units, cfg.WidenIPv6, false, cfg.RotationMin)
	return fold(units)
}

// guaranteed returns the requests a heavy-hitter entry is sure of: its
// count less its error. A space-saving summary (Metwally et al. 2005) that
// admits a new key evicts the smallest counter and hands its count to the
// newcomer as error, so in a flood from many sources an address that sent
// two requests can be reported with the evicted counter's dozens; acting
// on Count alone would block such bystanders. Count − Err is a lower bound
// on the true count.
func guaranteed[K comparable](c stats.Counted[K]) uint64 {
	if c.Err >= c.Count {
		return 0
	}
	return c.Count - c.Err
}

// widen replaces, for each prefix length in bits (longest first), every
// group of at least k distinct units of one family lying inside the same
// prefix of that length (and narrower than it) by that prefix.
func widen(units []unit, bits []int, v4 bool, k int) []unit {
	for _, b := range bits {
		groups := map[netip.Prefix][]int{}
		for i, u := range units {
			if u.p.Addr().Is4() != v4 || u.p.Bits() <= b {
				continue
			}
			g := netip.PrefixFrom(u.p.Addr(), b).Masked()
			groups[g] = append(groups[g], i)
		}
		drop := map[int]bool{}
		var wider []unit
		for g, members := range groups {
			if len(members) < k {
				continue
			}
			w := unit{p: g}
			for _, i := range members {
				w.requests += units[i].requests
				w.members += max(units[i].members, 1)
				drop[i] = true
			}
			wider = append(wider, w)
		}
		if len(wider) == 0 {
			continue
		}
		kept := wider
		for i, u := range units {
			if !drop[i] {
				kept = append(kept, u)
			}
		}
		units = kept
	}
	return units
}

// fold merges every unit lying inside another into it and sorts by
// requests, heaviest first (ties by prefix, for determinism).
func fold(units []unit) []unit {
	slices.SortFunc(units, func(a, b unit) int {
		if c := cmp.Compare(a.p.Bits(), b.p.Bits()); c != 0 {
			return c
		}
		return a.p.Addr().Compare(b.p.Addr())
	})
	var out []unit
outer:
	for _, u := range units {
		for j := range out {
			if out[j].p.Bits() <= u.p.Bits() && out[j].p.Contains(u.p.Addr()) {
				out[j].requests += u.requests
				out[j].members += u.members
				continue outer
			}
		}
		out = append(out, u)
	}
	slices.SortStableFunc(out, func(a, b unit) int { return cmp.Compare(b.requests, a.requests) })
	return out
}

// effective returns the action a scope gets at level l: the level's action,
// except that a scope with at least MaxBlockCollateral known-good users
// behind it is challenged instead of rate limited, blocked or dropped (the
// users behind it pass a challenge; they would not pass a block, and a
// shared rate-limit bucket would starve them).
func effective(cfg *SiteConfig, l Level, collateral int) Action {
	a := min(l, cfg.MaxLevel).Action()
	if a != Observe && collateral >= cfg.MaxBlockCollateral {
		return Challenge
	}
	return a
}

// effectiveFor is effective for a scope p: a single address that is itself
// a known-good user (a member, a cleared or peace-time visitor) is
// challenged, never rate limited or blocked — the user passes a challenge.
func effectiveFor(cfg *SiteConfig, l Level, p netip.Prefix, collateral int) Action {
	if p.Bits() == p.Addr().BitLen() && collateral >= 1 {
		return effective(cfg, l, max(collateral, cfg.MaxBlockCollateral))
	}
	return effective(cfg, l, collateral)
}

// fallbackAction returns the most severe action below a that a scope with
// this collateral may get and whose ladder rule is not shadowed, and false
// when there is none above Observe.
func fallbackAction(cfg *SiteConfig, global bool, a Action, collateral int) (Action, bool) {
	for b := a - 1; b > Observe; b-- {
		if collateral >= cfg.MaxBlockCollateral && b != Challenge {
			continue
		}
		if !cfg.shadowed(global, ruleFor(b)) {
			return b, true
		}
	}
	return Observe, false
}

// ruleFor returns the ladder rule of an action.
func ruleFor(a Action) string {
	switch a {
	case RateLimit:
		return RuleRateLimit
	case Challenge:
		return RuleChallenge
	case Block:
		return RuleBlock
	case Drop:
		return RuleDrop
	}
	return RuleObserve
}
