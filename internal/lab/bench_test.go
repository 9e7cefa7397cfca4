package lab

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/lab/attack"
)

// BenchmarkOriginCount measures the origin's per-request bookkeeping
// (class, bin, concurrency) on a request that does no work (404 path,
// zero latency), in-process.
func BenchmarkOriginCount(b *testing.B) {
	og := NewOrigin(OriginOptions{MinLatency: time.Nanosecond, MaxLatency: time.Nanosecond})
	og.Start(time.Now())
	r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	r.Header.Set(ClassHeader, "bot")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		og.ServeHTTP(w, r)
	}
}

// BenchmarkCompute scores a 60 s record: 20,000 legitimate requests,
// 600 bins, two vectors.
func BenchmarkCompute(b *testing.B) {
	r := &Record{Phases: Phases{Before: 10 * time.Second, Attack: 40 * time.Second, After: 10 * time.Second}, Bin: Bin,
		Origin: make([]Arrivals, 600), BotHeld: make([]int64, 600),
		Attacks: []AttackOutcome{
			{Spec: attack.Spec{Kind: "get_flood", Start: time.Second, Duration: 30 * time.Second}, Result: attack.Result{Sent: 500000}},
			{Spec: attack.Spec{Kind: "slowloris", Start: time.Second, Duration: 30 * time.Second}, Result: attack.Result{Sent: 1000, Connections: 1000}},
		}}
	for i := range 20000 {
		r.Requests = append(r.Requests, req(time.Duration(i)*3*time.Millisecond, ClassLegit, time.Duration(i%97)*time.Millisecond, 200, i%50 != 0))
	}
	for i := range r.Origin {
		r.Origin[i][ClassBot] = uint64(i % 7)
	}
	b.ReportAllocs()
	for b.Loop() {
		Compute(r)
	}
}
