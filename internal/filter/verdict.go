// Package filter is the shield's verdict chain. Filters inspect a request
// and return a Verdict; the Chain runs them in one fixed order (Order) and
// is the only code that writes shield responses (403, 429, 503, drops),
// each naming its public reason and the request id.
package filter

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// Action is what the chain does with a request.
type Action uint8

// Actions, from least to most severe. The numeric values are stable: they
// are stored in stats.Request.Verdict and shown in metrics.
const (
	// Pass means "no objection": the next filter runs; a request that
	// passes every filter goes to the origin.
	Pass Action = iota
	// Bypass ends the chain and sends the request to the origin (allow list).
	Bypass
	// Throttle answers 429 with Retry-After (rate limits).
	Throttle
	// Block answers 403.
	Block
	// Drop closes the connection (HTTP/1) or resets the stream (HTTP/2)
	// without an answer.
	Drop
	// Challenge answers with a challenge (arrives with the mitigation work).
	Challenge
	// Shed answers 503 with Retry-After (load shedding, origin unavailable).
	Shed
)

var actionNames = [...]string{"pass", "bypass", "throttle", "block", "drop", "challenge", "shed"}

// String returns the lower-case action name used in logs and metrics.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "unknown"
}

// Verdict is a filter's decision on one request. Verdicts are values and
// carry only static strings on the hot path, so deciding allocates nothing.
type Verdict struct {
	// Action is what to do.
	Action Action
	// Status overrides the default HTTP status of Action when non-zero.
	Status int
	// RetryAfter, when > 0, is sent as Retry-After (rounded up to seconds).
	RetryAfter time.Duration
	// Reason is the public reason shown to the client ("rate limit exceeded").
	Reason string
	// Cause is the private detail for logs ("per-address 100/10s"); never
	// shown to the client.
	Cause string
	// Rule is the id of the rule that decided ("deny-list:spamhaus-drop").
	Rule string
	// Shadow marks a verdict from a rule in shadow mode: logged and counted
	// but not enforced.
	Shadow bool
}

// Terminal reports whether the verdict ends the chain.
func (v Verdict) Terminal() bool { return v.Action != Pass && !v.Shadow }

// StatusCode is the HTTP status the chain writes for this verdict.
func (v Verdict) StatusCode() int {
	if v.Status != 0 {
		return v.Status
	}
	switch v.Action {
	case Throttle:
		return http.StatusTooManyRequests
	case Block:
		return http.StatusForbidden
	case Shed, Challenge:
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// LogValue implements slog.LogValuer.
func (v Verdict) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("action", v.Action.String())}
	if v.Rule != "" {
		attrs = append(attrs, slog.String("rule", v.Rule))
	}
	if v.Reason != "" {
		attrs = append(attrs, slog.String("reason", v.Reason))
	}
	if v.Cause != "" {
		attrs = append(attrs, slog.String("cause", v.Cause))
	}
	if v.RetryAfter > 0 {
		attrs = append(attrs, slog.Duration("retry_after", v.RetryAfter))
	}
	if v.Shadow {
		attrs = append(attrs, slog.Bool("shadow", true))
	}
	return slog.GroupValue(attrs...)
}

// Request is what filters see of one request. The edge fills it once per
// request (from a pool); filters must not retain it.
type Request struct {
	// ID is the request id (also sent to the origin and the client).
	ID string
	// Site is the index of the matched site.
	Site int
	// Addr is the resolved client address; Prefix its aggregate prefix.
	Addr   netip.Addr
	Prefix netip.Prefix
	// Peer is the TCP peer (or PROXY-protocol source) address.
	Peer netip.Addr
	// Country (ISO 3166-1 alpha-2, "" unknown) and ASN (0 unknown) of Addr.
	Country string
	ASN     uint32
	// Challenge is set by an earlier stage (a mitigation decision) to ask
	// the challenge stage to challenge this request.
	Challenge bool
	// Member is set when the request carries valid member standing.
	Member bool
	// Known is set for known-good clients (members and peace-time
	// visitors): the origin proxy gives them priority and reserved capacity.
	Known bool
	// Method and Path (no query) of the request.
	Method, Path string
	// HTTP is the underlying request (headers etc.); read-only.
	HTTP *http.Request
	// Now is the monotonic time of arrival in nanoseconds since process
	// start (for limiters).
	Now int64
}

// Filter is one stage of the chain.
type Filter interface {
	// Name identifies the filter in logs and metrics.
	Name() string
	// Check decides on r. It must not block and should not allocate.
	Check(r *Request) Verdict
}
