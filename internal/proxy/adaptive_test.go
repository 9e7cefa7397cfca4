package proxy

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// phase feeds an AdaptiveLimit windows of identical samples: each window
// is 10 samples 10ms apart (so it closes on MinWindow = 100ms).
type phase struct {
	windows  int
	rtt      time.Duration
	dropEach int // every dropEach-th sample is an overload answer (0 = none)
	inflight func(limit int) int
}

func saturated(limit int) int { return limit }
func idle(int) int            { return 1 }

func runPhases(l *AdaptiveLimit, now time.Time, phases []phase) (time.Time, []int) {
	var after []int
	i := 0
	for _, ph := range phases {
		for range ph.windows {
			for range 10 {
				now = now.Add(10 * time.Millisecond)
				i++
				drop := ph.dropEach > 0 && i%ph.dropEach == 0
				l.Sample(now, ph.rtt, ph.inflight(l.Limit()), drop)
			}
		}
		after = append(after, l.Limit())
	}
	return now, after
}

func TestAdaptiveLimit(t *testing.T) {
	tests := []struct {
		name   string
		min    int
		max    int
		phases []phase
		check  func(t *testing.T, after []int)
	}{
		{
			name: "rising latency shrinks the limit, recovery restores it",
			min:  4, max: 200,
			phases: []phase{
				{windows: 30, rtt: 10 * time.Millisecond, inflight: saturated},
				{windows: 30, rtt: 60 * time.Millisecond, inflight: saturated},
				{windows: 60, rtt: 10 * time.Millisecond, inflight: saturated},
			},
			check: func(t *testing.T, after []int) {
				if after[0] != 200 {
					t.Errorf("steady latency: limit %d, want the ceiling 200", after[0])
				}
				if after[1] > 40 {
					t.Errorf("6× latency: limit %d, want ≤ 40", after[1])
				}
				if after[2] != 200 {
					t.Errorf("after recovery: limit %d, want 200", after[2])
				}
			},
		},
		{
			name: "503s back off to the floor and recover",
			min:  4, max: 512,
			phases: []phase{
				{windows: 10, rtt: 5 * time.Millisecond, dropEach: 2, inflight: saturated},
				{windows: 60, rtt: 5 * time.Millisecond, inflight: saturated},
				{windows: 100, rtt: 5 * time.Millisecond, inflight: saturated},
			},
			check: func(t *testing.T, after []int) {
				if after[0] != 4 {
					t.Errorf("half the answers 503: limit %d, want the floor 4", after[0])
				}
				if after[1] < 5 || after[1] > 8 {
					t.Errorf("60 clean windows after the 503s: limit %d, want a few probes above 4", after[1])
				}
				if after[2] != 512 {
					t.Errorf("once the overload level is forgotten: limit %d, want 512", after[2])
				}
			},
		},
		{
			name: "a trickle of 503s below the threshold is ignored",
			min:  4, max: 100,
			phases: []phase{{windows: 50, rtt: 5 * time.Millisecond, dropEach: 11, inflight: saturated}},
			check: func(t *testing.T, after []int) {
				if after[0] != 100 {
					t.Errorf("one 503 a window: limit %d, want 100", after[0])
				}
			},
		},
		{
			name: "an app-limited origin does not grow the limit",
			min:  4, max: 512,
			phases: []phase{
				{windows: 10, rtt: 5 * time.Millisecond, dropEach: 1, inflight: saturated},
				{windows: 50, rtt: 5 * time.Millisecond, inflight: idle},
			},
			check: func(t *testing.T, after []int) {
				if after[1] != after[0] {
					t.Errorf("idle windows moved the limit from %d to %d", after[0], after[1])
				}
			},
		},
		{
			name: "min == max fixes the limit",
			min:  16, max: 16,
			phases: []phase{{windows: 20, rtt: time.Second, dropEach: 1, inflight: saturated}},
			check: func(t *testing.T, after []int) {
				if after[0] != 16 {
					t.Errorf("fixed limit moved to %d", after[0])
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewAdaptiveLimit(AdaptiveConfig{Min: tt.min, Max: tt.max})
			_, after := runPhases(l, time.Unix(0, 0), tt.phases)
			t.Log(after)
			tt.check(t, after)
		})
	}
}

func TestAdaptiveLimitWindowNeedsSamples(t *testing.T) {
	l := NewAdaptiveLimit(AdaptiveConfig{Min: 1, Max: 100})
	now := time.Unix(0, 0)
	// Five overload answers within MinWindow do not close a window.
	for range 5 {
		now = now.Add(time.Millisecond)
		if _, changed := l.Sample(now, time.Millisecond, 100, true); changed {
			t.Fatal("window closed before MinWindow")
		}
	}
	// MaxWindow closes it whatever the count.
	if lim, changed := l.Sample(now.Add(time.Second), time.Millisecond, 100, true); !changed || lim != 50 {
		t.Fatalf("after MaxWindow: limit %d changed %v, want 50 true", lim, changed)
	}
}

// TestAdaptiveLimitFindsCapacity models an application server with 4
// workers that answers 503 to a 5th concurrent request (the live-flood
// origin of issue 4): one window takes the limit from 512 to 4, and
// afterwards it stays within two of the capacity, probing above it only
// now and then.
func TestAdaptiveLimitFindsCapacity(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		windows  int
		maxDrops float64 // share of all answers
	}{
		{name: "4 workers", capacity: 4, windows: 300, maxDrops: 0.02},
		{name: "40 workers", capacity: 40, windows: 300, maxDrops: 0.02},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewAdaptiveLimit(AdaptiveConfig{Min: 2, Max: 512})
			now := time.Unix(0, 0)
			drops, n := 0, 0
			lo, hi := 512, 0
			for w := range tt.windows {
				// One window: requests start at every in-flight count up
				// to the limit.
				k := max(20, l.Limit())
				for i := range k {
					now = now.Add(100 * time.Millisecond / time.Duration(k))
					inflight := 1 + i%l.Limit()
					drop := inflight > tt.capacity
					if drop {
						drops++
					}
					n++
					l.Sample(now, 4*time.Millisecond, inflight, drop)
				}
				if w == 0 && l.Limit() != tt.capacity {
					t.Fatalf("after the first window: limit %d, want %d", l.Limit(), tt.capacity)
				}
				if w > 0 {
					lo, hi = min(lo, l.Limit()), max(hi, l.Limit())
				}
			}
			if lo < tt.capacity-2 || hi > tt.capacity+2 {
				t.Errorf("limit ranged %d..%d, want within two of %d", lo, hi, tt.capacity)
			}
			if share := float64(drops) / float64(n); share > tt.maxDrops {
				t.Errorf("%.1f%% of answers were 503s, want ≤ %.0f%%", 100*share, 100*tt.maxDrops)
			}
		})
	}
}

// TestAdaptiveLimitFromOrigin drives a pool against a real loopback origin
// that answers 503 like an overloaded application server: the limit
// shrinks to its floor and the gauge shows it. The clock advances 20ms
// per reading, standing in for the origin's latency.
func TestAdaptiveLimitFromOrigin(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   func(limit int) bool
	}{
		{name: "503 answers shrink the limit to the floor", status: http.StatusServiceUnavailable, want: func(l int) bool { return l == 2 }},
		{name: "429 answers shrink the limit to the floor", status: http.StatusTooManyRequests, want: func(l int) bool { return l == 2 }},
		{name: "500 answers are not an overload signal", status: http.StatusInternalServerError, want: func(l int) bool { return l == 64 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			tick := func() time.Time { clk.advance(20 * time.Millisecond); return clk.now() }
			org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tt.status) })
			s := newShield(t, PoolConfig{MaxConcurrency: 64, MinConcurrency: 2, Now: tick}, org)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range 60 {
						s.do(t, "POST", "/api", nil)
					}
				})
			}
			wg.Wait()
			o := s.pool.Origins()[0]
			if !tt.want(o.Limit()) {
				t.Errorf("limit %d after 240 answers %d", o.Limit(), tt.status)
			}
			if got := metricValue(t, s.reg, "portcullis_proxy_concurrency_limit", "origin="+o.Key, "site=www"); got != float64(o.Limit()) {
				t.Errorf("gauge %v, limit %d", got, o.Limit())
			}
		})
	}
}
