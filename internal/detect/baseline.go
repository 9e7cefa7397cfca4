package detect

import (
	"math"
	"time"
)

// Metric indexes a rate tracked by a Baseline.
type Metric int

// Site (request-level) metrics, per second over the sliding window unless
// noted.
const (
	RPS             Metric = iota // requests/s
	BytesPS                       // response bytes/s
	Sources                       // distinct sources in the window
	NewConnPS                     // connections accepted/s
	SlowPS                        // slow connections/s (all kinds)
	H2ResetPS                     // HTTP/2 client resets/s
	OriginP99                     // origin p99 latency, seconds
	OriginErrRatio                // origin errors / origin requests
	DistinctQueries               // distinct (path, query) pairs in the window
	NumSiteMetrics
)

// Destination (packet-level) metrics, per second over the window.
const (
	PPS Metric = iota // packets/s
	BPS               // bits/s
	SYNPPS
	ACKPPS
	RSTPPS
	SYNACKPPS
	UDPPPS
	ICMPPPS
	FragPPS
	NumNetMetrics
)

// maxMetrics is the array size of a Baseline (the larger metric set).
const maxMetrics = max(int(NumSiteMetrics), int(NumNetMetrics))

// Baseline is an exponentially weighted moving average (EWMA) of a target's
// rates with an EW mean absolute deviation, learned only from ticks the
// engine judged normal (attacks do not poison it). The weight of a sample
// taken dt after the previous one is 1-2^(-dt/HalfLife), so irregular gaps
// (sparse logs) are handled. Until WarmUp of samples have been learned,
// Warm() is false and detectors use floors and static thresholds only.
type Baseline struct {
	Mean    [maxMetrics]float64
	Dev     [maxMetrics]float64
	learned time.Duration
	last    time.Time
	cfg     BaselineConfig
}

// NewBaseline returns an empty baseline.
func NewBaseline(cfg BaselineConfig) *Baseline { return &Baseline{cfg: cfg} }

// Warm reports whether enough normal traffic has been learned to trust the
// averages.
func (b *Baseline) Warm() bool { return b != nil && b.learned >= b.cfg.WarmUp }

// Learned returns how much normal traffic time has been learned.
func (b *Baseline) Learned() time.Duration { return b.learned }

// Learn folds one normal tick's rates, observed at now, into the averages.
func (b *Baseline) Learn(r *[maxMetrics]float64, now time.Time, tick time.Duration) {
	dt := tick
	if !b.last.IsZero() {
		dt = now.Sub(b.last)
	}
	if dt <= 0 {
		return
	}
	b.last = now
	alpha := 1 - math.Exp2(-float64(dt)/float64(b.cfg.HalfLife))
	if b.learned == 0 {
		alpha = 1
	}
	// Warm-up learns faster so a baseline forms in WarmUp rather than in
	// several half-lives.
	if b.learned < b.cfg.WarmUp && b.cfg.WarmUp > 0 {
		alpha = max(alpha, float64(dt)/float64(b.learned+dt))
	}
	for i, v := range r {
		d := math.Abs(v - b.Mean[i])
		b.Mean[i] += alpha * (v - b.Mean[i])
		b.Dev[i] += alpha * (d - b.Dev[i])
	}
	b.learned += min(dt, tick)
}

// Cold start: while the baseline is warming up, a partial baseline of at
// least coldMinLearned raises the threshold above the floor — up to
// coldCap × floor — so a site whose ordinary traffic sits near the floor
// does not raise an alarm in its first minutes after a (re)start (found by
// the attack lab: a shield started in front of ~50 req/s of visitors
// confirmed an http_flood 5 s later). Attack ticks are never learned, and
// the cap keeps a flood above coldCap × floor visible even if the shield
// starts in the middle of one.
const (
	coldMinLearned = 2 * time.Second
	coldCap        = 4
)

// Threshold returns the alarm level for metric m: max(floor, mult × mean +
// 3 × deviation) once warm; while warming up, the same from the partial
// baseline capped at coldCap × floor once coldMinLearned is learned, and
// the floor before.
func (b *Baseline) Threshold(m Metric, floor, mult float64) float64 {
	if !b.Warm() {
		if b == nil || b.learned < coldMinLearned || floor <= 0 {
			return floor
		}
		return max(floor, min(mult*b.Mean[m]+3*b.Dev[m], coldCap*floor))
	}
	return max(floor, mult*b.Mean[m]+3*b.Dev[m])
}
