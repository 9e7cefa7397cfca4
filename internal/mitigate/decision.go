package mitigate

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/portcullis/portcullis/internal/netset"
	"github.com/portcullis/portcullis/internal/stats"
)

// ErrDecision is wrapped by every error about an invalid decision.
var ErrDecision = errors.New("mitigate: invalid decision")

// Action is what a decision does to matching requests. Actions are ordered
// by severity, Observe (least) to Drop (most); Allow is an exemption that
// outranks every other action (see [DecisionSet.Lookup]).
type Action uint8

// Actions, from least to most severe; then Allow.
const (
	// Observe records matching requests and lets them through.
	Observe Action = iota
	// RateLimit limits the scope as a whole to Decision.RatePerSecond
	// requests per second (one bucket for the scope, keyed by Decision.ID:
	// a /64 shares one budget, which is what stops rotation inside it).
	RateLimit
	// Challenge sends requests without clearance or member standing to the
	// challenge (machine clients get a 429/503 instead).
	Challenge
	// Block answers 403.
	Block
	// Drop closes the connection without an answer, or tarpits it; the
	// enforcer chooses.
	Drop
	// Allow exempts the scope from every other decision (an operator's
	// allow-list entry). It is not on the ladder.
	Allow
	numActions
)

var actionNames = [numActions]string{"observe", "rate_limit", "challenge", "block", "drop", "allow"}

// String returns the lower-case action name used in events and metrics.
func (a Action) String() string { return enumName(actionNames[:], a, "action") }

// ParseAction parses an action name as returned by String; errors wrap
// ErrDecision.
func ParseAction(s string) (Action, error) { return parseEnum[Action](actionNames[:], s, "action") }

// enumName returns names[v], or "kind(v)" out of range.
func enumName[T ~uint8](names []string, v T, kind string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return kind + "(" + strconv.Itoa(int(v)) + ")"
}

// parseEnum returns the value whose name is s.
func parseEnum[T ~uint8](names []string, s, kind string) (T, error) {
	for i, n := range names {
		if n == s {
			return T(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown %s %q", ErrDecision, kind, s)
}

// Scope is the kind of key a decision matches on.
type Scope uint8

// Scopes.
const (
	// ScopeAddress matches one address: Decision.Prefix is a /32 or /128.
	ScopeAddress Scope = iota
	// ScopePrefix matches every address inside Decision.Prefix.
	ScopePrefix
	// ScopeASN matches requests whose origin AS is Decision.ASN.
	ScopeASN
	// ScopeCountry matches requests geolocated to Decision.Country.
	ScopeCountry
	// ScopeFingerprint matches requests whose user agent hashes (see
	// [FingerprintHash]) to that of Decision.Fingerprint.
	ScopeFingerprint
	// ScopeRoute matches request paths equal to or below Decision.Route
	// (as stats.Route: "/search" matches "/search" and "/search/x", a route
	// ending in '/' everything below it).
	ScopeRoute
	// ScopeSite matches every request to the site (under-attack mode).
	ScopeSite
	numScopes
)

var scopeNames = [numScopes]string{"address", "prefix", "asn", "country", "fingerprint", "route", "site"}

// String returns the lower-case scope name used in events and metrics.
func (s Scope) String() string { return enumName(scopeNames[:], s, "scope") }

// ParseScope parses a scope name as returned by String; errors wrap
// ErrDecision.
func ParseScope(s string) (Scope, error) { return parseEnum[Scope](scopeNames[:], s, "scope") }

// Origins of decisions: the policy, or an operator ("operator:<who>").
const (
	OriginPolicy   = "policy"
	OriginOperator = "operator:"
)

// Decision is one mitigation: a scope, an action, how long it lasts and
// why. Exactly one of the value fields (Prefix, ASN, Country, Fingerprint,
// Route) is meaningful, chosen by Scope; ScopeSite uses none.
type Decision struct {
	// ID identifies the decision; adding a decision with an existing ID
	// replaces it. Policy IDs are derived from rule, site and scope value, so
	// an escalation replaces the decision it escalates.
	ID string `json:"id"`
	// Site is the site index the decision applies to, or -1 for all sites.
	Site int `json:"site"`
	// Scope selects the value field.
	Scope Scope `json:"scope"`
	// Prefix is the address (/32 or /128) or prefix of ScopeAddress and
	// ScopePrefix, masked, IPv4 as IPv4 (never IPv4-mapped IPv6).
	Prefix netip.Prefix `json:"prefix,omitzero"`
	// ASN is the origin AS number of ScopeASN (non-zero).
	ASN uint32 `json:"asn,omitempty"`
	// Country is the ISO 3166-1 alpha-2 code of ScopeCountry, upper case.
	Country string `json:"country,omitempty"`
	// Fingerprint is the user agent of ScopeFingerprint (matched by hash).
	Fingerprint string `json:"fingerprint,omitempty"`
	// Route is the path of ScopeRoute, starting with '/'.
	Route string `json:"route,omitempty"`
	// Action is what happens to matching requests; RatePerSecond is the
	// scope's budget for RateLimit (requests per second, > 0).
	Action        Action  `json:"action"`
	RatePerSecond float64 `json:"rate_per_second,omitempty"`
	// Created is when the decision was first made; Expires when it lapses
	// (zero: never); TTL the lifetime it was given (refreshes extend
	// Expires by TTL).
	Created time.Time     `json:"created"`
	Expires time.Time     `json:"expires,omitzero"`
	TTL     time.Duration `json:"ttl"`
	// Reason says why, for the timeline and the operator.
	Reason string `json:"reason"`
	// Rule names the policy rule that made it ("rate_limit", "challenge",
	// "block", "asn", "under_attack", "auto_ban", "flash_crowd") or
	// "operator".
	Rule string `json:"rule,omitempty"`
	// Level is the site's ladder level when the decision was made.
	Level Level `json:"level"`
	// IncidentID is the incident the decision belongs to ("" when none).
	IncidentID string `json:"incident_id,omitempty"`
	// Origin is OriginPolicy or "operator:<who>".
	Origin string `json:"origin"`
	// EstimatedCollateral is the number of known-good users (members,
	// cleared and peace-time visitors) seen behind the scope: the people a
	// mitigation on it would hit.
	EstimatedCollateral int `json:"estimated_collateral"`
	// Shadow marks a decision that is recorded but not enforced:
	// [DecisionSet.Lookup] ignores it, [DecisionSet.LookupShadow] finds it.
	Shadow bool `json:"shadow"`
}

// Key returns the decision's scope and value as text, e.g.
// "prefix 2001:db8::/64", "asn AS64500", "site".
func (d *Decision) Key() string {
	if v := d.value(); v != "" {
		return d.Scope.String() + " " + v
	}
	return d.Scope.String()
}

// value returns the scope value as text ("" for ScopeSite).
func (d *Decision) value() string {
	switch d.Scope {
	case ScopeAddress:
		return d.Prefix.Addr().String()
	case ScopePrefix:
		return d.Prefix.String()
	case ScopeASN:
		return "AS" + strconv.FormatUint(uint64(d.ASN), 10)
	case ScopeCountry:
		return d.Country
	case ScopeFingerprint:
		return strconv.Quote(d.Fingerprint)
	case ScopeRoute:
		return d.Route
	}
	return ""
}

// Expired reports whether the decision has lapsed at now.
func (d *Decision) Expired(now time.Time) bool {
	return !d.Expires.IsZero() && !now.Before(d.Expires)
}

// Normalize returns d with its value in canonical form (prefix masked and
// unmapped, country upper case) and checks it. Errors wrap ErrDecision.
func (d Decision) Normalize() (Decision, error) {
	bad := func(format string, a ...any) (Decision, error) {
		return d, fmt.Errorf("%w: %s: %s", ErrDecision, d.ID, fmt.Sprintf(format, a...))
	}
	if d.ID == "" {
		return bad("empty ID")
	}
	if d.Site < -1 {
		return bad("site %d (want an index or -1)", d.Site)
	}
	if d.Action >= numActions {
		return bad("action %d", d.Action)
	}
	if d.Action == RateLimit && !(d.RatePerSecond > 0) {
		return bad("rate limit needs a positive RatePerSecond, got %v", d.RatePerSecond)
	}
	switch d.Scope {
	case ScopeAddress, ScopePrefix:
		p, ok := netset.NormalizePrefix(d.Prefix)
		if !ok {
			return bad("invalid prefix %v", d.Prefix)
		}
		full := p.Bits() == p.Addr().BitLen()
		if d.Scope == ScopeAddress && !full {
			return bad("address scope needs a /32 or /128, got %v", p)
		}
		if full {
			d.Scope = ScopeAddress
		}
		d.Prefix = p
	case ScopeASN:
		if d.ASN == 0 {
			return bad("ASN 0")
		}
	case ScopeCountry:
		c := strings.ToUpper(d.Country)
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
			return bad("country %q is not an ISO 3166-1 alpha-2 code", d.Country)
		}
		d.Country = c
	case ScopeFingerprint:
		if d.Fingerprint == "" {
			return bad("empty fingerprint")
		}
	case ScopeRoute:
		if !strings.HasPrefix(d.Route, "/") {
			return bad("route %q must start with '/'", d.Route)
		}
	case ScopeSite:
	default:
		return bad("scope %d", d.Scope)
	}
	if d.TTL < 0 {
		return bad("negative TTL %v", d.TTL)
	}
	return d, nil
}

// FingerprintHash returns the hash a ScopeFingerprint decision matches
// on: xxHash64 of the user agent's first stats.LabelBytes bytes (the
// length the accountant keeps, so a user agent taken from a snapshot's
// heavy hitters matches the full header). The request path passes it to
// [DecisionSet.Lookup].
func FingerprintHash(userAgent string) uint64 {
	if len(userAgent) > stats.LabelBytes {
		userAgent = userAgent[:stats.LabelBytes]
	}
	return xxhash.Sum64String(userAgent)
}

// AddressPrefix returns a as a single-address prefix (/32 or /128),
// unmapped; the zero Prefix for an invalid address.
func AddressPrefix(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen())
}

// severity orders decisions for Lookup: higher is more severe. Allow is
// highest; among rate limits a lower rate is more severe.
func (d *Decision) severity() uint64 {
	s := uint64(d.Action) << 40
	if d.Action == RateLimit {
		milli := d.RatePerSecond * 1000
		if milli > float64(1<<40-1) {
			milli = float64(1<<40 - 1)
		}
		s |= 1<<40 - 1 - uint64(milli)
	}
	return s
}

// MarshalText writes the action's name ("block") in JSON and logs.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// MarshalText writes the scope's name ("prefix") in JSON and logs.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalText writes the ladder level's name in JSON and logs.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }
