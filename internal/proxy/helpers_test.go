package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// clock is an explicit test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// origin is a loopback upstream that counts the requests it sees.
type origin struct {
	srv  *httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	seen []string // request URIs, in arrival order
}

func newOrigin(t *testing.T, h http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.mu.Lock()
		o.seen = append(o.seen, r.Method+" "+r.URL.RequestURI())
		o.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *origin) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen...)
}

// shield is a pool behind a loopback front server; a request carrying
// X-Test-Priority gets that priority through WithPriority, as the app
// does for members.
type shield struct {
	pool *Pool
	srv  *httptest.Server
	reg  *prometheus.Registry
}

func newShield(t *testing.T, cfg PoolConfig, origins ...*origin) *shield {
	t.Helper()
	for _, o := range origins {
		u, _ := url.Parse(o.srv.URL)
		cfg.Origins = append(cfg.Origins, u)
	}
	if cfg.MaxConcurrency == 0 {
		cfg.MaxConcurrency = 64
	}
	if cfg.UnhealthyAfter == 0 {
		cfg.UnhealthyAfter, cfg.HealthyAfter = 1000, 1
	}
	if cfg.Site == "" {
		cfg.Site = "www"
	}
	reg := prometheus.NewPedanticRegistry()
	cfg.Registerer = reg
	p, err := NewPool(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &shield{pool: p, reg: reg}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set(RequestIDHeader, "req-test")
		if v := r.Header.Get("X-Test-Priority"); v != "" {
			prio, err := ParsePriority(v)
			if err != nil {
				t.Error(err)
			}
			r = r.WithContext(WithPriority(r.Context(), prio))
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { s.srv.CloseClientConnections(); s.srv.Close(); p.Close() })
	return s
}

// resp is what a client got.
type resp struct {
	status int
	header http.Header
	body   string
}

func (s *shield) do(t *testing.T, method, path string, hdr map[string]string) resp {
	t.Helper()
	r, err := s.try(method, path, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// try is do without failing the test (for background requests that the
// test may cut).
func (s *shield) try(method, path string, hdr map[string]string) (resp, error) {
	req, err := http.NewRequest(method, s.srv.URL+path, nil)
	if err != nil {
		return resp{}, err
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	c := *s.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, err
	}
	return resp{status: res.StatusCode, header: res.Header, body: string(b)}, nil
}

// waitUntil spins (yielding, no sleep) until cond holds or 5 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func (p *Pool) queuedLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}

// metricValue returns the value of the series name{labels} ("k=v", any
// order) gathered from reg, or -1 when it is absent.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(labels)
	want := strings.Join(labels, ",")
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			sort.Strings(ls)
			if strings.Join(ls, ",") == want {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

var _ = dto.MetricType_GAUGE
