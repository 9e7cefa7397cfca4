// Package challenge is Portcullis' interstitial challenge: a hashcash-style
// proof of work (Back 2002, "Hashcash — a denial of service counter-measure")
// computed by the visitor's browser in a Web Worker, a slower no-JavaScript
// path (a signed, timed form), signed **clearance** cookies for visitors who
// passed, and signed **member standing** cookies for people the origin has
// logged in.
//
// Pieces:
//
//   - [Keyring]: HMAC-SHA-256 (RFC 2104) signing keys from crypto/rand that
//     rotate (default every 24 h); retired keys keep verifying for a
//     configurable time; optionally persisted to a 0600 file so a restart
//     does not log everyone out.
//   - Tokens: compact, versioned, base64url (RFC 4648 §5, no padding) binary
//     records with a key id, an expiry and an HMAC-SHA-256 tag truncated to
//     128 bits (RFC 2104 §5), compared in constant time. Challenge and
//     clearance tokens are bound to the client's aggregate prefix (/24, /64)
//     and a hash of its User-Agent; standing tokens to nothing but their
//     signature and expiry.
//   - [Service]: issues challenges, serves the challenge endpoints under
//     [PathPrefix] (scripts and the verify endpoint), writes the interstitial
//     and the other challenge-stage responses ([Service.Write]), verifies
//     clearance ([Service.Verify]) and standing ([Service.VerifyStanding],
//     [Service.IssueStanding]).
//   - [Filter]: the filter.Filter for filter.StageChallenge. When the
//     caller's predicate says "challenge", requests with standing or
//     clearance pass; HTML document requests get the interstitial; feeds,
//     APIs, assets, health checks and verified crawlers never get HTML.
//   - [State]: the bounded, process-wide memory of redeemed challenges
//     (single use) and of clients that refuse cookies; share one across
//     configuration reloads.
//
// Nothing here keeps per-challenge state before a challenge is redeemed:
// issuing is stateless (the challenge is a signed token in the page), so a
// flood of challenged requests costs one HMAC each and no memory.
//
// DESIGN.md lists the invariants (single use, no cookie overwrite, binding,
// no 200 challenge, fail-open behaviour) and the things that look wrong but
// are not.
package challenge
