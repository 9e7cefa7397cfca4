package mitigate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// ErrConfig is wrapped by every configuration validation error.
var ErrConfig = errors.New("mitigate: invalid config")

// Level is a rung of a site's escalation ladder.
type Level int

// Ladder levels. Each level's action applies to the site's heavy sources
// (see Level.Action); LevelChallenge may also switch under-attack mode on.
const (
	LevelObserve Level = iota
	LevelRateLimit
	LevelChallenge
	LevelBlock
	LevelDrop
)

// Action returns the action the level applies to heavy sources.
func (l Level) Action() Action {
	switch {
	case l <= LevelObserve:
		return Observe
	case l == LevelRateLimit:
		return RateLimit
	case l == LevelChallenge:
		return Challenge
	case l == LevelBlock:
		return Block
	}
	return Drop
}

// String returns the level's action name.
func (l Level) String() string { return l.Action().String() }

// Policy rule names, as in Decision.Rule and SiteConfig.ShadowRules.
const (
	RuleObserve     = "observe"      // heavy sources watched while suspected
	RuleRateLimit   = "rate_limit"   // ladder level 1 on heavy sources
	RuleChallenge   = "challenge"    // ladder level 2
	RuleBlock       = "block"        // ladder level 3
	RuleDrop        = "drop"         // ladder level 4
	RuleASN         = "asn"          // a hosting or dominant network
	RuleUnderAttack = "under_attack" // site-wide challenge
	RuleAuthRoute   = "auth_route"   // challenge on a route under credential stuffing
	RuleAutoBan     = "auto_ban"     // repeated failed challenges
	RuleFlashCrowd  = "flash_crowd"  // a legitimate surge: observe only
	RuleOperator    = "operator"     // made by an operator
)

// Blanket reports whether rule is one of the policy's blanket challenges:
// site-wide under-attack mode (RuleUnderAttack) and an auth route under
// credential stuffing (RuleAuthRoute). They challenge every request in
// their scope without a clearance or member standing rather than named
// sources; the request path spares peace-time visitors from them, and the
// policy removes them when the ladder steps below UnderAttackLevel.
func Blanket(rule string) bool { return rule == RuleUnderAttack || rule == RuleAuthRoute }

var policyRules = []string{RuleObserve, RuleRateLimit, RuleChallenge, RuleBlock, RuleDrop,
	RuleASN, RuleUnderAttack, RuleAuthRoute, RuleAutoBan, RuleFlashCrowd}

// Config configures the Policy. The zero value plus Default is a working
// configuration; YAML is mapped onto it by package config.
type Config struct {
	// Shadow puts every policy decision of every site in shadow mode
	// (decided and recorded, not enforced).
	Shadow bool
	// Site holds the settings for sites not listed in Sites (defaults).
	Site SiteConfig
	// Sites holds per-site settings by site index; a zero field takes the
	// value from Site, then the built-in default.
	Sites []SiteConfig
}

// SiteConfig tunes the policy for one site. Zero fields take defaults.
type SiteConfig struct {
	// ObserveOnly stops the ladder at observe (no enforcement at all).
	ObserveOnly bool
	// Shadow puts all of this site's policy decisions in shadow mode;
	// ShadowRules only those of the named rules (Rule* constants).
	Shadow      bool
	ShadowRules []string

	// MaxLevel is the highest ladder level (default LevelBlock; LevelDrop
	// allows dropping).
	MaxLevel Level
	// EscalateAfter is how long the site stays on a level while an attack
	// persists before climbing to the next (default 1 s);
	// DistressEscalateAfter the same while the origin is in distress
	// (default 500 ms).
	EscalateAfter, DistressEscalateAfter time.Duration
	// HoldFor is the hysteresis: once the attack signal clears, each level
	// is held this long before the site steps down one (default 30 s).
	HoldFor time.Duration

	// A source address is heavy when it sends at least SourceRPS requests/s
	// (default 20), or at least SourceShare of the site's requests (default
	// 0.1) at MinRPS or more (default 5). A prefix from the heavy-hitter
	// list is heavy on the same terms with PrefixRPS (default 100), counting
	// only requests not already explained by heavy addresses inside it.
	SourceRPS, PrefixRPS, SourceShare, MinRPS float64
	// FloodRPS is the site request rate below which the share rule and
	// the coverage rule do not apply (default 50, the detection floor): a
	// source that is "most of the site" at a few requests a second is a
	// visitor, not a flood.
	FloodRPS float64
	// RateLimitPerSecond is the budget of a RateLimit decision, shared by
	// the whole scope (default 5 requests/s).
	RateLimitPerSecond float64

	// TTLs per action (defaults: observe 1 min, rate limit 2 min, challenge,
	// block and drop 10 min, under-attack mode 5 min, auto-ban 10 min).
	// Decisions are refreshed while their source stays heavy and the attack
	// continues, and lapse when it ends.
	ObserveTTL, RateLimitTTL, ChallengeTTL, BlockTTL, DropTTL, UnderAttackTTL, AutoBanTTL time.Duration

	// RotationMin is how many distinct misbehaving members (addresses, or
	// narrower prefixes) of a wider prefix make the policy widen to it
	// (default 4). WidenIPv4 and WidenIPv6 are the prefix lengths to widen
	// through, longest first (defaults [24] and [64 56 48]).
	RotationMin int
	WidenIPv4   []int
	WidenIPv6   []int

	// HostingASNs are networks of hosting and cloud providers: a heavy
	// share (at least HostingMinShare, default 0.02) of an attack from one
	// of them gets an ASN-wide decision. Any other network sending at least
	// ASNShare (default 0.5) of an attack with no known-good users behind it
	// is challenged network-wide (never blocked: the goodness data may be
	// cold).
	HostingASNs     []uint32
	HostingMinShare float64
	ASNShare        float64

	// MaxBlockCollateral: a scope with at least this many known-good users
	// behind it (default 5) is never rate limited, blocked or dropped; it is
	// challenged instead, which those users pass.
	MaxBlockCollateral int

	// DisableUnderAttack keeps the policy from switching under-attack mode
	// on (operators still can). Otherwise it switches on at UnderAttackLevel
	// (default LevelChallenge) during a distributed flood, or when the
	// site's per-source decisions explain less than UnderAttackCoverage of
	// its requests (default 0.5).
	DisableUnderAttack  bool
	UnderAttackLevel    Level
	UnderAttackCoverage float64

	// Auto-ban (HANDED F06): AutoBanFailures failed challenges (default 20)
	// within AutoBanWindow (default 60 s) from addresses in one aggregate
	// prefix block that prefix: AutoBanIPv6Bits long for IPv6 (default 64,
	// 48–128) and AutoBanIPv4Bits for IPv4 (default 32, 16–32).
	DisableAutoBan                   bool
	AutoBanFailures                  int
	AutoBanWindow                    time.Duration
	AutoBanIPv6Bits, AutoBanIPv4Bits int

	// MaxDecisions bounds the policy's decisions for the site (default
	// 10,000) and MaxNewPerStep the decisions it adds in one tick (default
	// 1,000); the heaviest sources come first.
	MaxDecisions, MaxNewPerStep int
	// MaxTracked bounds the auto-ban failure counters (default 65,536).
	MaxTracked int
}

// Default returns a copy of c with zero fields defaulted and every site
// filled from c.Site and then from the built-in defaults.
func (c Config) Default() Config {
	c.Site = c.Site.withDefaults(builtinSite())
	sites := make([]SiteConfig, len(c.Sites))
	for i, s := range c.Sites {
		sites[i] = s.withDefaults(c.Site)
	}
	c.Sites = sites
	return c
}

// site returns site i's defaulted settings.
func (c *Config) site(i int) *SiteConfig {
	if i >= 0 && i < len(c.Sites) {
		return &c.Sites[i]
	}
	return &c.Site
}

func builtinSite() SiteConfig {
	return SiteConfig{
		MaxLevel:      LevelBlock,
		EscalateAfter: time.Second, DistressEscalateAfter: 500 * time.Millisecond,
		HoldFor:   30 * time.Second,
		SourceRPS: 20, PrefixRPS: 100, SourceShare: 0.1, MinRPS: 5, FloodRPS: 50,
		RateLimitPerSecond: 5,
		ObserveTTL:         time.Minute, RateLimitTTL: 2 * time.Minute, ChallengeTTL: 10 * time.Minute,
		BlockTTL: 10 * time.Minute, DropTTL: 10 * time.Minute, UnderAttackTTL: 5 * time.Minute,
		AutoBanTTL:  10 * time.Minute,
		RotationMin: 4, WidenIPv4: []int{24}, WidenIPv6: []int{64, 56, 48},
		HostingMinShare: 0.02, ASNShare: 0.5,
		MaxBlockCollateral: 5,
		UnderAttackLevel:   LevelChallenge, UnderAttackCoverage: 0.5,
		AutoBanFailures: 20, AutoBanWindow: time.Minute, AutoBanIPv6Bits: 64, AutoBanIPv4Bits: 32,
		MaxDecisions: 10_000, MaxNewPerStep: 1_000, MaxTracked: 65_536,
	}
}

// withDefaults fills s's zero fields from d.
func (s SiteConfig) withDefaults(d SiteConfig) SiteConfig {
	s.ObserveOnly = s.ObserveOnly || d.ObserveOnly
	s.Shadow = s.Shadow || d.Shadow
	s.DisableUnderAttack = s.DisableUnderAttack || d.DisableUnderAttack
	s.DisableAutoBan = s.DisableAutoBan || d.DisableAutoBan
	defSlice(&s.ShadowRules, d.ShadowRules)
	def(&s.MaxLevel, d.MaxLevel)
	def(&s.EscalateAfter, d.EscalateAfter)
	def(&s.DistressEscalateAfter, d.DistressEscalateAfter)
	def(&s.HoldFor, d.HoldFor)
	def(&s.SourceRPS, d.SourceRPS)
	def(&s.PrefixRPS, d.PrefixRPS)
	def(&s.SourceShare, d.SourceShare)
	def(&s.MinRPS, d.MinRPS)
	def(&s.FloodRPS, d.FloodRPS)
	def(&s.RateLimitPerSecond, d.RateLimitPerSecond)
	def(&s.ObserveTTL, d.ObserveTTL)
	def(&s.RateLimitTTL, d.RateLimitTTL)
	def(&s.ChallengeTTL, d.ChallengeTTL)
	def(&s.BlockTTL, d.BlockTTL)
	def(&s.DropTTL, d.DropTTL)
	def(&s.UnderAttackTTL, d.UnderAttackTTL)
	def(&s.AutoBanTTL, d.AutoBanTTL)
	def(&s.AutoBanWindow, d.AutoBanWindow)
	def(&s.RotationMin, d.RotationMin)
	defSlice(&s.WidenIPv4, d.WidenIPv4)
	defSlice(&s.WidenIPv6, d.WidenIPv6)
	defSlice(&s.HostingASNs, d.HostingASNs)
	def(&s.HostingMinShare, d.HostingMinShare)
	def(&s.ASNShare, d.ASNShare)
	def(&s.MaxBlockCollateral, d.MaxBlockCollateral)
	def(&s.UnderAttackLevel, d.UnderAttackLevel)
	def(&s.UnderAttackCoverage, d.UnderAttackCoverage)
	def(&s.AutoBanFailures, d.AutoBanFailures)
	def(&s.AutoBanIPv6Bits, d.AutoBanIPv6Bits)
	def(&s.AutoBanIPv4Bits, d.AutoBanIPv4Bits)
	def(&s.MaxDecisions, d.MaxDecisions)
	def(&s.MaxNewPerStep, d.MaxNewPerStep)
	def(&s.MaxTracked, d.MaxTracked)
	return s
}

// def sets *p to d when *p is the zero value.
func def[T comparable](p *T, d T) {
	var zero T
	if *p == zero {
		*p = d
	}
}

// defSlice sets *p to a copy of d when *p is nil (an empty, non-nil slice
// stays empty: "widen nowhere").
func defSlice[T any](p *[]T, d []T) {
	if *p == nil {
		*p = slices.Clone(d)
	}
}

// Validate checks a defaulted configuration; errors wrap ErrConfig and name
// the site and field.
func (c *Config) Validate() error {
	errs := []error{c.Site.validate("Site")}
	for i := range c.Sites {
		errs = append(errs, c.Sites[i].validate("Sites["+strconv.Itoa(i)+"]"))
	}
	return errors.Join(errs...)
}

func (s *SiteConfig) validate(where string) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s.%s: %s", ErrConfig, where, field, fmt.Sprintf(format, a...)))
	}
	for _, r := range s.ShadowRules {
		if !slices.Contains(policyRules, r) {
			bad("ShadowRules", "unknown rule %q (want one of %v)", r, policyRules)
		}
	}
	if s.MaxLevel < LevelRateLimit || s.MaxLevel > LevelDrop {
		bad("MaxLevel", "%d must be in [%d, %d]", s.MaxLevel, LevelRateLimit, LevelDrop)
	}
	if s.UnderAttackLevel < LevelRateLimit || s.UnderAttackLevel > LevelDrop {
		bad("UnderAttackLevel", "%d must be in [%d, %d]", s.UnderAttackLevel, LevelRateLimit, LevelDrop)
	}
	for name, d := range map[string]time.Duration{"EscalateAfter": s.EscalateAfter, "DistressEscalateAfter": s.DistressEscalateAfter,
		"HoldFor": s.HoldFor, "ObserveTTL": s.ObserveTTL, "RateLimitTTL": s.RateLimitTTL, "ChallengeTTL": s.ChallengeTTL,
		"BlockTTL": s.BlockTTL, "DropTTL": s.DropTTL, "UnderAttackTTL": s.UnderAttackTTL, "AutoBanTTL": s.AutoBanTTL,
		"AutoBanWindow": s.AutoBanWindow} {
		if d <= 0 {
			bad(name, "%v must be positive", d)
		}
	}
	for name, v := range map[string]float64{"SourceRPS": s.SourceRPS, "PrefixRPS": s.PrefixRPS, "MinRPS": s.MinRPS,
		"RateLimitPerSecond": s.RateLimitPerSecond} {
		if !(v > 0) {
			bad(name, "%v must be positive", v)
		}
	}
	for name, v := range map[string]float64{"SourceShare": s.SourceShare, "HostingMinShare": s.HostingMinShare,
		"ASNShare": s.ASNShare, "UnderAttackCoverage": s.UnderAttackCoverage} {
		if !(v > 0 && v <= 1) {
			bad(name, "%v must be in (0, 1]", v)
		}
	}
	for name, v := range map[string]int{"MaxBlockCollateral": s.MaxBlockCollateral,
		"AutoBanFailures": s.AutoBanFailures, "MaxDecisions": s.MaxDecisions, "MaxNewPerStep": s.MaxNewPerStep,
		"MaxTracked": s.MaxTracked} {
		if v < 1 {
			bad(name, "%d must be ≥ 1", v)
		}
	}
	if s.RotationMin < 2 {
		bad("RotationMin", "%d must be ≥ 2 (one address is not a rotation)", s.RotationMin)
	}
	checkWiden := func(field string, bits []int, lo, hi int) {
		for i, b := range bits {
			if b < lo || b > hi {
				bad(field, "prefix length %d must be in [%d, %d]", b, lo, hi)
			}
			if i > 0 && b >= bits[i-1] {
				bad(field, "prefix lengths %v must be strictly decreasing", bits)
				return
			}
		}
	}
	checkWiden("WidenIPv4", s.WidenIPv4, 8, 31)
	checkWiden("WidenIPv6", s.WidenIPv6, 16, 127)
	if s.AutoBanIPv6Bits < 48 || s.AutoBanIPv6Bits > 128 {
		bad("AutoBanIPv6Bits", "%d must be in [48, 128]", s.AutoBanIPv6Bits)
	}
	if s.AutoBanIPv4Bits < 16 || s.AutoBanIPv4Bits > 32 {
		bad("AutoBanIPv4Bits", "%d must be in [16, 32]", s.AutoBanIPv4Bits)
	}
	return errors.Join(errs...)
}

// shadowed reports whether decisions of rule are in shadow mode for the
// site (global Shadow included).
func (s *SiteConfig) shadowed(global bool, rule string) bool {
	return global || s.Shadow || slices.Contains(s.ShadowRules, rule)
}

// ttl returns the TTL for an action.
func (s *SiteConfig) ttl(a Action) time.Duration {
	switch a {
	case RateLimit:
		return s.RateLimitTTL
	case Challenge:
		return s.ChallengeTTL
	case Block:
		return s.BlockTTL
	case Drop:
		return s.DropTTL
	}
	return s.ObserveTTL
}
