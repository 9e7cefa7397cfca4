package incident

import (
	"testing"
	"time"
)

func TestSumSeries(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		points []SeriesPoint
		want   SeriesPoint
	}{
		{name: "none", want: SeriesPoint{}},
		{name: "counts add, time is the first, latency the worst second",
			points: []SeriesPoint{
				{Time: t0, Requests: 10, Passed: 6, Challenged: 2, Throttled: 1, Blocked: 1, OriginErrors: 1, OriginLatencyP95: 40 * time.Millisecond},
				{Time: t0.Add(time.Second), Requests: 5, Passed: 1, Shed: 4, Packets: 7, Bits: 800, OriginLatencyP95: 90 * time.Millisecond},
			},
			want: SeriesPoint{Time: t0, Requests: 15, Passed: 7, Challenged: 2, Throttled: 1, Blocked: 1, Shed: 4, Packets: 7, Bits: 800,
				OriginErrors: 1, OriginLatencyP95: 90 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SumSeries(tc.points); got != tc.want {
				t.Fatalf("SumSeries = %+v, want %+v", got, tc.want)
			}
		})
	}
}
