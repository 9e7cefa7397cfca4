package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestMetrics checks the proxy's series after a miss, a hit, a bypass and
// a shed request, and lints every name (Prometheus conventions,
// portcullis_proxy_ prefix).
func TestMetrics(t *testing.T) {
	g := newGatedOrigin(t)
	cc := testCacheConfig()
	s := newShield(t, PoolConfig{MaxConcurrency: 1, QueueTimeout: 10 * time.Millisecond, Cache: cc, Now: newClock().now,
		Priorities: []RoutePriority{{"/search", Low}}}, g.origin)
	// A miss the gated origin holds (no-store: not stored), then a shed
	// low-priority request.
	held := s.async(t, "/page", nil)
	<-g.arrived
	if r := s.do(t, http.MethodGet, "/search", map[string]string{"Authorization": "x"}); r.status != http.StatusServiceUnavailable {
		t.Fatalf("shed request: %d", r.status)
	}
	g.release("/page")
	<-held

	tests := []struct {
		name   string
		metric string
		labels []string
		want   float64
	}{
		{name: "limit", metric: "portcullis_proxy_concurrency_limit", labels: []string{"site=www", "origin=" + s.pool.Origins()[0].Key}, want: 1},
		{name: "inflight", metric: "portcullis_proxy_inflight_requests", labels: []string{"site=www", "origin=" + s.pool.Origins()[0].Key}, want: 0},
		{name: "queued", metric: "portcullis_proxy_queued_requests", labels: []string{"site=www"}, want: 0},
		{name: "shed", metric: "portcullis_proxy_shed_total", labels: []string{"site=www", "priority=low", "reason=queue_timeout"}, want: 1},
		{name: "miss", metric: "portcullis_proxy_cache_requests_total", labels: []string{"site=www", "result=miss"}, want: 1},
		{name: "bypass", metric: "portcullis_proxy_cache_requests_total", labels: []string{"site=www", "result=bypass"}, want: 1},
		{name: "entries: no-store is not stored", metric: "portcullis_proxy_cache_entries", labels: []string{"site=www"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := metricValue(t, s.reg, tt.metric, tt.labels...); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "portcullis_proxy_") {
			t.Errorf("%s outside portcullis_proxy_", mf.GetName())
		}
	}
}

// TestMetricsSharedAcrossPools: pools of several sites and reloads share
// one registration, and a closed pool's gauges disappear while the newer
// pool of the same site is reported.
func TestMetricsSharedAcrossPools(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	u, _ := url.Parse("http://127.0.0.1:1")
	mk := func(site string, max int) *Pool {
		p, err := NewPool(PoolConfig{Site: site, Origins: []*url.URL{u}, MaxConcurrency: max, Registerer: reg}, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := mk("a", 10), mk("b", 20)
	a2 := mk("a", 30) // a reload of site a
	lim := func(site string) float64 {
		return metricValue(t, reg, "portcullis_proxy_concurrency_limit", "site="+site, "origin=http://127.0.0.1:1")
	}
	if lim("a") != 30 || lim("b") != 20 {
		t.Errorf("limits a=%v b=%v, want the newer pool of a (30) and b (20)", lim("a"), lim("b"))
	}
	a.Close()
	a2.Close()
	if lim("a") != -1 || lim("b") != 20 {
		t.Errorf("after closing a: a=%v b=%v", lim("a"), lim("b"))
	}
	b.Close()
}

// BenchmarkCacheHit measures the hit path: key, lookup, headers, body.
//
//	go test ./internal/proxy -run '^$' -bench CacheHit -benchtime=1s -benchmem
func BenchmarkCacheHit(b *testing.B) {
	org := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Write([]byte(strings.Repeat("<p>campaign news</p>", 500)))
	}))
	defer org.Close()
	u, _ := url.Parse(org.URL)
	cc := testCacheConfig()
	cc.MaxObjectBytes = 64 << 10
	p, err := NewPool(PoolConfig{Site: "www", Origins: []*url.URL{u}, MaxConcurrency: 8, Cache: cc, Registerer: prometheus.NewRegistry()}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := httptest.NewRequest(http.MethodGet, "http://www.example.org/news/article-1?utm_source=x&page=2", nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	req.Header.Set("Cookie", "portcullis_clearance=abc")
	p.ServeHTTP(httptest.NewRecorder(), req)
	w := &discardWriter{h: http.Header{}}
	p.ServeHTTP(w, req)
	if w.status != http.StatusOK || w.h.Get(CacheHeader) != "HIT" {
		b.Fatalf("priming: %d %v", w.status, w.h)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			p.ServeHTTP(w, req)
		}
	})
}

type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }

// BenchmarkAcquireRelease measures taking and freeing an origin slot (the
// admission path every proxied request pays).
//
//	go test ./internal/proxy -run '^$' -bench AcquireRelease -benchtime=1s -benchmem
func BenchmarkAcquireRelease(b *testing.B) {
	u, _ := url.Parse("http://127.0.0.1:1")
	p, err := NewPool(PoolConfig{Site: "www", Origins: []*url.URL{u, u}, MaxConcurrency: 512, MinConcurrency: 4, ReservedShare: 0.2}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			o, err := p.acquire(ctx, Normal)
			if err != nil {
				b.Fatal(err)
			}
			p.Release(o)
		}
	})
}
