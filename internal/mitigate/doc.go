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
// The package imports no net/http: it is wired to the request path by
// package app, which calls Lookup and enforces the returned action.
package mitigate
