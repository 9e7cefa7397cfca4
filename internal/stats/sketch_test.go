package stats

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestHLLEstimate(t *testing.T) {
	tests := []struct {
		name   string
		p      uint8
		n      int
		relErr float64 // allowed relative error (≈4 standard errors)
	}{
		{name: "empty", p: 14, n: 0},
		{name: "one", p: 14, n: 1, relErr: 0},
		{name: "small linear counting", p: 14, n: 100, relErr: 0.02},
		{name: "thousands", p: 14, n: 5000, relErr: 0.033},
		{name: "spoofed syn flood size", p: 12, n: 37600, relErr: 0.065},
		{name: "million", p: 14, n: 1_000_000, relErr: 0.033},
		{name: "tiny sketch", p: 8, n: 20000, relErr: 0.26},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHLL(tc.p)
			for i := range tc.n {
				h.AddHash(mix64(uint64(i) + 1))
				h.AddHash(mix64(uint64(i) + 1)) // duplicates do not count
			}
			got := float64(h.Estimate())
			if tc.n == 0 {
				if got != 0 {
					t.Fatalf("empty estimate %v", got)
				}
				return
			}
			if rel := math.Abs(got-float64(tc.n)) / float64(tc.n); rel > tc.relErr {
				t.Fatalf("estimate %v for %d distinct: relative error %.4f > %.4f", got, tc.n, rel, tc.relErr)
			}
		})
	}
}

func TestHLLMerge(t *testing.T) {
	a, b := NewHLL(12), NewHLL(12)
	for i := range 30000 {
		a.AddHash(mix64(uint64(i)))
		b.AddHash(mix64(uint64(i + 20000))) // 10,000 overlap
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if got := float64(a.Estimate()); math.Abs(got-50000)/50000 > 0.065 {
		t.Fatalf("union estimate %v, want ≈50000", got)
	}
	if err := a.Merge(NewHLL(10)); err == nil {
		t.Fatal("merging different precisions succeeded")
	}
}

func TestTopKGuarantees(t *testing.T) {
	tests := []struct {
		name     string
		k        int
		distinct int
		heavy    map[int]uint64 // key → extra weight
	}{
		{name: "heavy among many singletons", k: 64, distinct: 100000, heavy: map[int]uint64{-1: 5000, -2: 3000, -3: 2000}},
		{name: "fewer keys than counters", k: 64, distinct: 10, heavy: map[int]uint64{-1: 7}},
		{name: "one counter", k: 1, distinct: 1000, heavy: map[int]uint64{-1: 2000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := NewTopK[int](tc.k)
			truth := map[int]uint64{}
			rng := rand.New(rand.NewPCG(1, 2))
			var stream []int
			for i := range tc.distinct {
				stream = append(stream, i)
			}
			for key, n := range tc.heavy {
				for range n {
					stream = append(stream, key)
				}
			}
			rng.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
			for _, key := range stream {
				tk.Add(key, 1)
				truth[key]++
			}
			n := tk.Total()
			if n != uint64(len(stream)) {
				t.Fatalf("total %d, want %d", n, len(stream))
			}
			got := map[int]Counted[int]{}
			for _, e := range tk.Top(nil, tc.k) {
				got[e.Key] = e
				if e.Count < truth[e.Key] || e.Count-e.Err > truth[e.Key] {
					t.Errorf("key %d: count %d err %d, true %d", e.Key, e.Count, e.Err, truth[e.Key])
				}
				if e.Err > n/uint64(tc.k) {
					t.Errorf("key %d: err %d > N/k = %d", e.Key, e.Err, n/uint64(tc.k))
				}
			}
			for key, w := range truth {
				if w > n/uint64(tc.k) {
					if _, ok := got[key]; !ok {
						t.Errorf("key %d with weight %d > N/k=%d missing", key, w, n/uint64(tc.k))
					}
				}
			}
			top := tk.Top(nil, 1)
			if len(top) != 1 || top[0].Key != -1 {
				t.Errorf("heaviest = %+v, want key -1", top)
			}
		})
	}
}

func TestLatencyHistogram(t *testing.T) {
	tests := []struct {
		name     string
		values   []time.Duration
		q        float64
		min, max time.Duration
	}{
		{name: "empty", q: 0.5},
		{name: "single", values: []time.Duration{10 * time.Millisecond}, q: 0.99, min: 10 * time.Millisecond, max: 12500 * time.Microsecond},
		{name: "p50 of 1..100ms", values: ramp(100, time.Millisecond), q: 0.5, min: 50 * time.Millisecond, max: 63 * time.Millisecond},
		{name: "p99 of 1..100ms", values: ramp(100, time.Millisecond), q: 0.99, min: 99 * time.Millisecond, max: 124 * time.Millisecond},
		{name: "beyond range", values: []time.Duration{time.Hour}, q: 0.5, min: 8 * time.Minute, max: 10 * time.Minute},
		{name: "sub-microsecond", values: []time.Duration{100}, q: 0.5, min: 0, max: time.Microsecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h LatencyHistogram
			for _, v := range tc.values {
				h.Add(v, 1)
			}
			got := h.Quantile(tc.q)
			if got < tc.min || got > tc.max {
				t.Fatalf("q%.2f = %v, want in [%v, %v]", tc.q, got, tc.min, tc.max)
			}
		})
	}
	for i := range LatencyBuckets - 1 {
		if latencyUpper(i) >= latencyUpper(i+1) {
			t.Fatalf("bucket bounds not increasing at %d", i)
		}
		if lo := latencyUpper(i); latencyBucket(lo) != i+1 && i >= 4 {
			t.Fatalf("upper bound of bucket %d (%v) lands in %d", i, lo, latencyBucket(lo))
		}
	}
}

func ramp(n int, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * step
	}
	return out
}
