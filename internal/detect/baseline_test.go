package detect

import (
	"testing"
	"time"
)

// TestBaselineColdStart: while warming up, a partial baseline lifts the
// threshold above the floor (ordinary traffic near the floor after a
// restart is not an attack), capped at coldCap × floor (a flood stays
// visible); before coldMinLearned and once warm the plain rules hold.
func TestBaselineColdStart(t *testing.T) {
	const tick = 250 * time.Millisecond
	cfg := BaselineConfig{HalfLife: 10 * time.Minute, WarmUp: 2 * time.Minute}
	tests := []struct {
		name    string
		rps     float64
		learn   time.Duration
		wantMin float64
		wantMax float64
	}{
		{name: "nothing learned: the floor", rps: 45, learn: 0, wantMin: 50, wantMax: 50},
		{name: "under coldMinLearned: the floor", rps: 45, learn: time.Second, wantMin: 50, wantMax: 50},
		{name: "ordinary traffic near the floor lifts it", rps: 30, learn: 5 * time.Second, wantMin: 5 * 30, wantMax: 5*30 + 10},
		{name: "capped at coldCap × floor", rps: 400, learn: 5 * time.Second, wantMin: 200, wantMax: 200},
		{name: "quiet site keeps the floor", rps: 2, learn: 5 * time.Second, wantMin: 50, wantMax: 50},
		{name: "warm: no cap", rps: 400, learn: 3 * time.Minute, wantMin: 5 * 400, wantMax: 5*400 + 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBaseline(cfg)
			var r [maxMetrics]float64
			r[RPS] = tc.rps
			now := time.Unix(1_800_000_000, 0)
			for l := time.Duration(0); l < tc.learn; l += tick {
				now = now.Add(tick)
				b.Learn(&r, now, tick)
			}
			got := b.Threshold(RPS, 50, 5)
			if got < tc.wantMin-1e-9 || got > tc.wantMax+1e-9 {
				t.Fatalf("threshold %.1f after learning %v of %.0f rps, want [%.0f, %.0f]", got, tc.learn, tc.rps, tc.wantMin, tc.wantMax)
			}
		})
	}
}
