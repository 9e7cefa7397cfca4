package filter

import (
	"strings"

	"github.com/portcullis/portcullis/internal/ratelimit"
)

// KeyKind selects what a rate limit counts per: the client address or its
// aggregate prefix (/24, /64 by default; case F06).
type KeyKind uint8

// Key kinds.
const (
	KeyAddress KeyKind = iota
	KeyPrefix
)

// RateLimit throttles clients that exceed a GCRA rate (package ratelimit)
// with 429 and a Retry-After equal to the real time until the next request
// would be admitted.
type RateLimit struct {
	// ID is the rule id shown in responses and logs.
	ID string
	// Key is what requests are counted per.
	Key KeyKind
	// Paths restricts the rule to these path prefixes; empty = every path.
	Paths []string
	// Limiter holds the per-key state; it is shared across reloads.
	Limiter *ratelimit.Limiter
	// Shadow decides and logs without enforcing.
	Shadow bool
	// Cause is the private description ("per-address 100/10s").
	Cause string
}

// Name implements Filter.
func (l *RateLimit) Name() string { return "rate_limit" }

// Check admits or throttles r. It allocates nothing.
func (l *RateLimit) Check(r *Request) Verdict {
	if len(l.Paths) > 0 && !hasAnyPrefix(r.Path, l.Paths) {
		return Verdict{}
	}
	var k ratelimit.Key
	if l.Key == KeyPrefix {
		k = ratelimit.KeyFromPrefix(r.Prefix)
	} else {
		k = ratelimit.KeyFromAddr(r.Addr)
	}
	d := l.Limiter.AllowAt(k, r.Now)
	if d.Allowed {
		return Verdict{}
	}
	return Verdict{Action: Throttle, RetryAfter: d.RetryAfter, Rule: l.ID, Reason: "too many requests, slow down", Cause: l.Cause, Shadow: l.Shadow}
}

func hasAnyPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}
