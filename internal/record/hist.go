package record

import (
	"sync/atomic"
	"time"
)

// bucketBounds are the upper bounds of the latency buckets; a last,
// overflow bucket holds everything above the largest.
var bucketBounds = [...]time.Duration{
	1 * time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond, 7 * time.Millisecond,
	10 * time.Millisecond, 15 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 50 * time.Millisecond, 70 * time.Millisecond,
	100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond, 700 * time.Millisecond,
	1 * time.Second, 1500 * time.Millisecond, 2 * time.Second, 3 * time.Second, 5 * time.Second, 10 * time.Second,
}

// numBuckets counts the buckets, overflow included.
const numBuckets = len(bucketBounds) + 1

// bucketOf returns the bucket of latency d: the first whose bound is ≥ d.
// The scan is short for the common case (fast answers hit the first
// buckets).
func bucketOf(d time.Duration) int {
	for i, b := range bucketBounds {
		if d <= b {
			return i
		}
	}
	return len(bucketBounds)
}

// liveHist is one second's latency histogram, written by the request path.
type liveHist [numBuckets]atomic.Uint32

// Hist is a latency histogram: counts per fixed bucket (see the package
// doc). The zero value is empty; Add merges.
type Hist [numBuckets]uint64

// addLive adds a live histogram's counts.
func (h *Hist) addLive(l *liveHist) {
	for i := range l {
		h[i] += uint64(l[i].Load())
	}
}

// Add merges o into h.
func (h *Hist) Add(o *Hist) {
	for i := range o {
		h[i] += o[i]
	}
}

// Count returns the number of observations.
func (h *Hist) Count() uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 < q ≤ 1) of the observations,
// interpolated linearly inside its bucket (the lower bound of the first
// bucket is 0; a quantile in the overflow bucket is reported as the largest
// bound, 10 s). It returns 0 for an empty histogram.
func (h *Hist) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var cum float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		if cum+float64(c) < rank {
			cum += float64(c)
			continue
		}
		if i == len(bucketBounds) {
			return bucketBounds[len(bucketBounds)-1]
		}
		var lo time.Duration
		if i > 0 {
			lo = bucketBounds[i-1]
		}
		hi := bucketBounds[i]
		frac := (rank - cum) / float64(c)
		return lo + time.Duration(frac*float64(hi-lo))
	}
	return bucketBounds[len(bucketBounds)-1]
}
