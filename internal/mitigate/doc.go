// Package mitigate turns detection into decisions and serves them to the
// request path.
//
// The pieces, in the order data flows through them:
//
//   - [Policy] is the mitigation policy: a pure function of the detection
//     outputs ([SiteInput], one per site per tick) and its own state, with
//     time passed in. It walks each site up an escalation ladder (observe →
//     rate-limit heavy hitters → challenge heavy prefixes and, for floods that
//     per-source decisions cannot catch, under-attack mode → block the worst
//     sources) while an attack persists or the origin is in distress, and back
//     down with hysteresis when it ends. It picks collateral-aware scopes:
//     addresses widen to their /24 (IPv4) or /64 → /56 → /48 (IPv6) when
//     siblings misbehave (rotation, HANDED F06), sources widen to an ASN for
//     hosting networks, and a scope with many known-good users behind it
//     (carrier-grade NAT, a campaign office) is challenged, never blocked.
//   - [Change] is what the policy hands the [Controller], which applies it to
//     the [DecisionSet], expires decisions, and reports every change as an
//     incident timeline event (Kind "decision").
//   - [DecisionSet] is the copy-on-write index the request path reads:
//     [DecisionSet.Lookup] returns the most severe decision matching a
//     request in well under a microsecond without allocating.
//   - [ShadowLog] answers "what would the shadow decisions have blocked in
//     the last N minutes, and how many of those requests were members".
//
// Wiring (package app): every tick, build one [SiteInput] per site (every
// site, every tick: a site left out does not advance its ladder) from the
// engine's state and signals and the window's heavy hitters
// ([SiteInputFromSnapshot]), add the addresses that failed a challenge and
// the goodness oracle, and call [Controller.Step]. On the request path,
// [DecisionSet.Lookup] with the client's address, ASN, country, path and
// [FingerprintHash] of its user agent; enforce the action (Observe and
// Allow pass; RateLimit keys one bucket by Decision.ID, so a whole /64
// shares it). When [DecisionSet.HasShadow], also [DecisionSet.LookupShadow]
// and [ShadowLog.RecordShadowHit] a shadow match more severe than the
// enforced one.
//
// Things that look wrong but are not:
//   - Lookup may return a decision up to one tick past its Expires: expiry
//     is swept by Controller.Step, keeping the clock off the request path.
//   - An unlisted network sending most of an attack is challenged, never
//     blocked, even with no known-good users: the goodness data may be
//     cold, and a challenge is recoverable for the people behind it.
//   - A scope with known-good users is challenged even at the rate-limit
//     level: a shared bucket would starve them; a challenge they pass once.
//
// The package imports no net/http.
package mitigate
