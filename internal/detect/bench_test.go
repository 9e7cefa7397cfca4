package detect

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

// BenchmarkPipelineRequest measures replay's cost per request through
// accounting, ticks and detection (without parsing), at 20,000 rps of event
// time from 10,000 sources, with and without the reorder buffer.
func BenchmarkPipelineRequest(b *testing.B) {
	for _, bc := range []struct {
		name     string
		lateness time.Duration
	}{{"lateness=0", 0}, {"lateness=60s", DefaultLateness}} {
		b.Run(bc.name, func(b *testing.B) {
			acc, _ := stats.New(stats.Config{})
			eng, _ := NewEngine(Config{}, 1, &MemorySink{}, Options{})
			p := NewPipeline(acc, eng, WithLateness(bc.lateness))
			ctx := context.Background()
			rs := make([]stats.Request, 10000)
			for i := range rs {
				rs[i] = stats.Request{Addr: netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), Method: "GET",
					Path: "/news/2024/article", UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
					Status: 200, Bytes: 1000}
			}
			t0 := scenarioT0.UnixNano()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := &rs[i%len(rs)]
				r.Time = t0 + int64(i)*int64(50*time.Microsecond)
				_ = p.Request(ctx, r)
			}
			_ = p.Finish(ctx)
		})
	}
}

// BenchmarkAttributionSizes measures the cost of the incident's attribution
// lists during a flood at 20,000 rps of event time from 100,000 sources in
// 2,000 /24s and 500 ASNs: per request through the pipeline (accounting,
// per-tick snapshot lists of StatsTopN, folding them into the incident's
// summaries), and per Engine.Status call (filling an open incident, as
// serve does every tick). "old" is the former sizing (10 entries per list,
// per-tick lists of 20), "new" the default (TopNetworks 100, per-tick
// lists of 100).
func BenchmarkAttributionSizes(b *testing.B) {
	names := &ASNames{}
	for i := range uint32(500) {
		names.Learn(64512+i, "NETWORK-NAME-"+string(rune('A'+i%26)))
	}
	for _, bc := range []struct {
		name      string
		cfg       Config
		statsTopN int
	}{
		{"old", Config{TopNetworks: 10}, 20},
		{"new", Config{}, Config{}.StatsTopN()},
	} {
		setup := func(b *testing.B) (*Pipeline, *Engine, func(i int) *stats.Request) {
			acc, _ := stats.New(stats.Config{TopN: bc.statsTopN})
			eng, _ := NewEngine(bc.cfg, 1, &MemorySink{}, Options{ASName: names.Name})
			p := NewPipeline(acc, eng, WithLateness(0))
			rs := make([]stats.Request, 100_000)
			for i := range rs {
				n := i % 2000
				rs[i] = stats.Request{Addr: netip.AddrFrom4([4]byte{100, 64 + byte(n>>8), byte(n), byte(i / 2000)}), Method: "GET",
					Path: "/", UserAgent: "python-requests/2.31", Status: 200, Bytes: 1000, ASN: 64512 + uint32(n%500), Country: "NL"}
			}
			t0 := scenarioT0.UnixNano()
			return p, eng, func(i int) *stats.Request {
				r := &rs[i%len(rs)]
				r.Time = t0 + int64(i)*int64(50*time.Microsecond)
				return r
			}
		}
		b.Run(bc.name+"/request", func(b *testing.B) {
			p, _, next := setup(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = p.Request(ctx, next(i))
			}
			b.StopTimer()
			_ = p.Finish(ctx)
		})
		b.Run(bc.name+"/status", func(b *testing.B) {
			p, eng, next := setup(b)
			ctx := context.Background()
			for i := range 200_000 { // 10 s of flood: an incident is open
				_ = p.Request(ctx, next(i))
			}
			if st := eng.Status(); st[0].Incident == nil {
				b.Fatal("no open incident")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = eng.Status()
			}
		})
	}
}
