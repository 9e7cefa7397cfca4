package stats

import (
	"context"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user+system CPU time. Benchmarks report it
// per op ("cpu-ns/op") because the shared machine's wall clock is noisy.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRequests returns n requests from distinct sources with a realistic mix
// of paths, user agents and query strings.
func benchRequests(n int) []Request {
	paths := []string{"/", "/news/2024/10/article-123", "/static/app.js", "/static/style.css", "/img/logo.png", "/donate", "/api/v1/items/550e8400-e29b-41d4-a716-446655440000"}
	uas := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"curl/8.5.0",
	}
	rs := make([]Request, n)
	for i := range rs {
		a := netip.AddrFrom4([4]byte{byte(11 + i>>16), byte(i >> 8), byte(i), 7})
		rs[i] = Request{
			Time: int64(i) * int64(time.Microsecond), Addr: a, Prefix: DefaultPrefix(a),
			ASN: uint32(64512 + i%50), Country: []string{"DE", "RU", "BR", "US"}[i%4],
			Method: "GET", Path: paths[i%len(paths)], UserAgent: uas[i%len(uas)], Referer: i%2 == 0,
			Status: 200, Bytes: 1500, OriginLatency: time.Duration(i%50) * time.Millisecond,
		}
		if i%5 == 0 {
			rs[i].Query = "q=" + string(rune('a'+i%26))
		}
	}
	return rs
}

// BenchmarkObserveRequest measures the request path at 10,000 distinct
// sources, including the amortised in-line drain (no background goroutine),
// so the figure is producer + sketch cost per request.
func BenchmarkObserveRequest(b *testing.B) {
	a, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	rs := benchRequests(10000)
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		a.ObserveRequest(&rs[i%len(rs)])
		if i%2500 == 2499 {
			a.Snapshot(int64(i))
		}
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkObserveRequestProducer measures only the request path: the
// drain that live serving runs in the background (Run) happens outside the
// timer, so the figure is what a request handler pays.
func BenchmarkObserveRequestProducer(b *testing.B) {
	a, err := New(Config{RingSize: 1 << 14})
	if err != nil {
		b.Fatal(err)
	}
	rs := benchRequests(10000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.ObserveRequest(&rs[i%len(rs)])
		if i%(1<<13) == 1<<13-1 {
			b.StopTimer()
			a.Drain()
			b.StartTimer()
		}
	}
	b.StopTimer()
	if s := a.Snapshot(1); s.Dropped != 0 {
		b.Fatalf("dropped %d", s.Dropped)
	}
}

// BenchmarkObserveRequestParallel runs producers on every CPU with Run
// draining in the background, as live; when producers outpace the drain,
// records are dropped from the sketches (never from the exact counters) and
// reported as dropped/op.
func BenchmarkObserveRequestParallel(b *testing.B) {
	a, err := New(Config{RingSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = a.Run(ctx, time.Millisecond)
		close(done)
	}()
	rs := benchRequests(10000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			a.ObserveRequest(&rs[i%len(rs)])
			i++
		}
	})
	b.StopTimer()
	cancel()
	<-done
	s := a.Snapshot(1)
	b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
}

// BenchmarkObservePacket measures the packet path (in-line drain included)
// for a spoofed SYN flood: every packet from a new source.
func BenchmarkObservePacket(b *testing.B) {
	a, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	ps := make([]Packet, 1<<16)
	for i := range ps {
		ps[i] = Packet{Src: netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 9}),
			Dst: netip.MustParseAddr("10.10.10.10"), SrcPort: uint16(1024 + i), DstPort: 25565,
			Proto: 6, TCPFlags: 0x02, Length: 60, SampleRate: 1}
	}
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		a.ObservePacket(&ps[i%len(ps)])
		if i%(1<<16) == 1<<16-1 {
			a.Snapshot(int64(i))
		}
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}
