package challenge

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/portcullis/portcullis/internal/filter"
)

// BenchmarkVerifyClearance: one clearance check on a request carrying a
// typical Cookie header (the hot path for cleared visitors under attack).
func BenchmarkVerifyClearance(b *testing.B) {
	s, clk := newTestServiceB(b)
	p := netip.MustParsePrefix("198.51.100.0/24")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("User-Agent", browserUA)
	r.Header.Set("Cookie", "_ga=GA1.2.3; lang=en; "+s.clearanceName+"="+clearanceFor(s, p, browserUA, clk.Now())+"; theme=dark")
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, ok := s.Verify(r, p); !ok {
			b.Fatal("not verified")
		}
	}
}

// BenchmarkFilterCheckCleared: the whole challenge-stage decision for a
// cleared visitor.
func BenchmarkFilterCheckCleared(b *testing.B) {
	s, clk := newTestServiceB(b)
	f := NewFilter(s, FilterOptions{ShouldChallenge: func(*filter.Request) bool { return true }})
	p := netip.MustParsePrefix("198.51.100.0/24")
	r := httptest.NewRequest(http.MethodGet, "/news/1", nil)
	r.Header.Set("User-Agent", browserUA)
	r.Header.Set("Accept", browserAccept)
	r.Header.Set("Cookie", s.clearanceName+"="+clearanceFor(s, p, browserUA, clk.Now()))
	fr := &filter.Request{Addr: p.Addr(), Prefix: p, Method: r.Method, Path: r.URL.Path, HTTP: r}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if v := f.Check(fr); v.Action != filter.Pass {
			b.Fatal("challenged")
		}
	}
}

// BenchmarkIssueChallenge: minting one challenge token (what every
// challenged document request costs, besides rendering).
func BenchmarkIssueChallenge(b *testing.B) {
	s, clk := newTestServiceB(b)
	p := netip.MustParsePrefix("198.51.100.0/24")
	now := clk.Now()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		s.issueChallenge(p, browserUA, now)
	}
}

// BenchmarkWriteInterstitial: the whole interstitial response (token,
// template, headers).
func BenchmarkWriteInterstitial(b *testing.B) {
	s, _ := newTestServiceB(b)
	p := netip.MustParsePrefix("198.51.100.0/24")
	r := httptest.NewRequest(http.MethodGet, "/news/1", nil)
	r.Header.Set("User-Agent", browserUA)
	r.Header.Set("Accept", browserAccept)
	fr := &filter.Request{ID: "req-1", Addr: p.Addr(), Prefix: p, Method: r.Method, Path: r.URL.Path, HTTP: r}
	v := filter.Verdict{Action: filter.Challenge, Status: 503, Rule: RuleInterstitial}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		s.Write(httptest.NewRecorder(), r, fr, v)
	}
}

// reportCPU adds a cpu-ns/op metric: the process's user+system CPU time
// per operation. On a shared, oversubscribed machine the wall-clock ns/op
// includes time the benchmark spent waiting for a core; this does not.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func newTestServiceB(b *testing.B) (*Service, *testClock) {
	clk := newClock()
	s, err := New(Options{Now: clk.Now, Logger: discardLogger(), Keys: NewKeyring(KeyringOptions{Logger: discardLogger()}, clk.Now())})
	if err != nil {
		b.Fatal(err)
	}
	return s, clk
}

// TestMetrics: the counters move, and their names pass the Prometheus
// linter with the portcullis_challenge_ prefix.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice did not fail")
	}
	sh := newShield(t, shieldConfig{opts: Options{Metrics: m}})
	c := noFollow(sh.client("127.0.0.2", false))
	p := parsePage(t, c.do(t, http.MethodGet, "/", "", "Accept", browserAccept).body)
	c.do(t, http.MethodGet, "/api/v1/news", "", "Accept", "application/json")
	c.submit(t, p, solve(p.seed, p.bits))
	c.submit(t, p, solve(p.seed, p.bits))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	want := map[string]float64{
		metricResponses + `{format="html",rule="challenge"}`:                 1,
		metricResponses + `{format="machine",rule="challenge:non-document"}`: 1,
		metricRedemptions + `{result="work"}`:                                1,
		metricRedemptions + `{result="replayed"}`:                            1,
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			k := mf.GetName() + "{"
			for i, l := range mm.GetLabel() {
				if i > 0 {
					k += ","
				}
				k += l.GetName() + `="` + l.GetValue() + `"`
			}
			got[k+"}"] = mm.GetCounter().GetValue()
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
