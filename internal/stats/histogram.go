package stats

import (
	"math/bits"
	"time"
)

// LatencyBuckets is the number of buckets of a LatencyHistogram.
const LatencyBuckets = 112

// LatencyHistogram is a fixed log-linear histogram of durations with
// microsecond resolution: four buckets per power of two (relative bucket
// width ≤ 25%, in the manner of HdrHistogram), covering 0 to about 9 minutes;
// longer durations land in the last bucket. Fixed memory (112 counters);
// counts are request counts scaled by any sampling rate.
type LatencyHistogram [LatencyBuckets]uint64

// latencyBucket returns the bucket index of d.
func latencyBucket(d time.Duration) int {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	if us < 4 {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us in [2^e, 2^(e+1))
	i := 4*(e-1) + int(us>>(e-2)&3)
	if i >= LatencyBuckets {
		i = LatencyBuckets - 1
	}
	return i
}

// latencyUpper returns the exclusive upper bound of bucket i.
func latencyUpper(i int) time.Duration {
	if i < 4 {
		return time.Duration(i+1) * time.Microsecond
	}
	e := i/4 + 1
	m := uint64(i % 4)
	return time.Duration((5+m)<<(e-2)) * time.Microsecond
}

// Add records n observations of d.
func (h *LatencyHistogram) Add(d time.Duration, n uint64) { h[latencyBucket(d)] += n }

// Merge adds o's counts to h.
func (h *LatencyHistogram) Merge(o *LatencyHistogram) {
	for i, v := range o {
		h[i] += v
	}
}

// Count returns the number of observations.
func (h *LatencyHistogram) Count() uint64 {
	var n uint64
	for _, v := range h {
		n += v
	}
	return n
}

// Quantile returns the upper bound of the bucket holding the q-quantile
// (0 < q ≤ 1), an over-estimate by at most 25%; 0 when h is empty.
func (h *LatencyHistogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, v := range h {
		seen += v
		if seen >= rank {
			return latencyUpper(i)
		}
	}
	return latencyUpper(LatencyBuckets - 1)
}
