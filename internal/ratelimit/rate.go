package ratelimit

import (
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// Sentinel errors. Returned errors wrap one of these with %w and add the
// offending field, so callers can match with errors.Is.
var (
	// ErrInvalidRate reports a Rate that cannot be enforced.
	ErrInvalidRate = errors.New("ratelimit: invalid rate")
	// ErrInvalidOptions reports Options that cannot be honoured.
	ErrInvalidOptions = errors.New("ratelimit: invalid options")
)

// BrowserBurst is the number of requests a browser typically fires at once for
// one page load (HTML, styles, scripts, images over ~6 parallel connections;
// HANDED F07 measures 20). Rate.Validate warns when an explicit burst for a
// period longer than a second is below it (and below Count).
const BrowserBurst = 20

// maxWindow bounds Burst×interval (a key's largest debt) so that TAT
// arithmetic on int64 nanoseconds can never overflow: 2^60 ns ≈ 36.5 years.
const maxWindow = int64(1) << 60

// Rate is "Count requests per Period, with up to Burst at once" for one key.
//
// It is enforced as GCRA (ATM Forum TM 4.0 §4.4.2; ITU-T I.371 Annex A) with
// emission interval T = Period/Count (rounded up to a whole nanosecond, so the
// enforced rate is never above the configured one) and tolerance
// τ = (Burst−1)·T: a fresh key may send Burst requests at the same instant,
// then one every T. Over any interval of length t a key is admitted at most
// Burst + t/T requests.
//
// Burst 0 means the documented default, see EffectiveBurst.
type Rate struct {
	// Count is the number of requests allowed per Period; > 0.
	Count int
	// Period is the window Count applies to; > 0 and at least Count
	// nanoseconds (the limiter's resolution is 1 ns per request).
	Period time.Duration
	// Burst is how many requests a key may make at the same instant; 0 picks
	// the default (EffectiveBurst), negative is an error.
	Burst int
}

// EffectiveBurst returns the burst the limiter enforces. An explicit Burst is
// returned as is. When Burst is 0 the default is
//
//	max(Count, ⌈Count per second⌉)
//
// that is, a key may spend a whole period's allowance at once (what an
// operator who wrote "70 per 100 s" expects: 70 requests in one go, HANDED
// F08), and never less than one second's worth (so "6000 per minute" admits a
// 20-request page load instead of being enforced as "one every 10 ms", HANDED
// F07). For Period ≥ 1 s the default is Count; for shorter periods it is the
// per-second equivalent. Set Burst explicitly for smoother shaping.
func (r Rate) EffectiveBurst() int {
	if r.Burst != 0 {
		return r.Burst
	}
	return max(r.Count, r.perSecond(), 1)
}

// Interval returns the GCRA emission interval T: Period/Count rounded up to a
// whole nanosecond, or 0 when Count or Period is not positive.
func (r Rate) Interval() time.Duration {
	if r.Count <= 0 || r.Period <= 0 {
		return 0
	}
	p, c := int64(r.Period), int64(r.Count)
	return time.Duration((p + c - 1) / c)
}

// perSecond returns ⌈Count·1s/Period⌉ without overflowing, or 0 for a rate
// that does not validate.
func (r Rate) perSecond() int {
	if r.Count <= 0 || r.Period <= 0 || int64(r.Count) > int64(r.Period) {
		return 0
	}
	hi, lo := bits.Mul64(uint64(r.Count), uint64(time.Second))
	q, rem := bits.Div64(hi, lo, uint64(r.Period)) // hi < Period because Count ≤ Period
	if rem != 0 {
		q++
	}
	return int(q)
}

// String formats r as "6000/1m0s burst 6000" with the effective burst.
func (r Rate) String() string {
	return fmt.Sprintf("%d/%s burst %d", r.Count, r.Period, r.EffectiveBurst())
}

// Validate checks r. err wraps ErrInvalidRate and names the field when r
// cannot be enforced: Count or Period not positive, Burst negative, more than
// one request per nanosecond, or Burst×interval above ~36 years. warnings
// (nil when none) describe settings that are enforceable but likely to refuse
// legitimate traffic: an explicit Burst below min(Count, BrowserBurst) or below
// the per-second equivalent when Period is longer than a second (HANDED F07).
func (r Rate) Validate() (warnings []string, err error) {
	switch {
	case r.Count <= 0:
		return nil, fmt.Errorf("%w: count %d must be positive", ErrInvalidRate, r.Count)
	case r.Period <= 0:
		return nil, fmt.Errorf("%w: period %s must be positive", ErrInvalidRate, r.Period)
	case r.Burst < 0:
		return nil, fmt.Errorf("%w: burst %d must not be negative (0 selects the default)", ErrInvalidRate, r.Burst)
	case int64(r.Count) > int64(r.Period):
		return nil, fmt.Errorf("%w: %d per %s is more than one request per nanosecond", ErrInvalidRate, r.Count, r.Period)
	}
	b, t := uint64(r.EffectiveBurst()), uint64(r.Interval())
	if hi, lo := bits.Mul64(b, t); hi != 0 || lo > uint64(maxWindow) {
		return nil, fmt.Errorf("%w: burst %d × interval %s exceeds %s", ErrInvalidRate, b, time.Duration(t), time.Duration(maxWindow))
	}
	if r.Burst > 0 && r.Period > time.Second {
		floor := max(min(r.Count, BrowserBurst), r.perSecond())
		if r.Burst < floor {
			warnings = append(warnings, fmt.Sprintf(
				"ratelimit: burst %d for %d per %s is tiny: requests closer than %s apart are refused, so a page load of ~%d simultaneous requests will see 429s; use burst ≥ %d or leave it 0 for the default %d",
				r.Burst, r.Count, r.Period, r.Interval(), BrowserBurst, floor, Rate{Count: r.Count, Period: r.Period}.EffectiveBurst()))
		}
	}
	return warnings, nil
}

// params is a validated Rate in the integer form the hot path uses. It is
// immutable; SetRate swaps the pointer.
type params struct {
	rate     Rate
	interval int64 // T in ns, ≥ 1
	window   int64 // Burst·T in ns: the largest debt a key may carry, TAT ≤ now+window
	burst    int
}

func newParams(r Rate) (*params, error) {
	if _, err := r.Validate(); err != nil {
		return nil, err
	}
	t := int64(r.Interval())
	b := r.EffectiveBurst()
	return &params{rate: r, interval: t, window: int64(b) * t, burst: b}, nil
}
