package app

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/stats"
)

// metrics are the app-level Prometheus metrics, registered on the injected
// registry. Per-request counters are resolved per (site, action) once and
// cached so the request path does no label lookups.
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	refused       *prometheus.CounterVec
	h2Closed      prometheus.Counter
	h2Errors      *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	reloadSuccess prometheus.Gauge

	mu    sync.RWMutex
	sites []string
	cache [][]prometheus.Counter // [site][action]
	hist  []prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_http_requests_total",
			Help: "Requests handled, by site and verdict action (pass = sent to the origin)."}, []string{"site", "action"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "portcullis_http_request_duration_seconds",
			Help: "Time from request start to response headers, by site.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"site"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_edge_connections_refused_total",
			Help: "Connections closed at accept for exceeding a cap, by cap (global, per_client)."}, []string{"cap"}),
		h2Closed: prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_edge_h2_reset_budget_exceeded_total",
			Help: "HTTP/2 connections closed for exceeding the stream reset budget (rapid reset)."}),
		h2Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_edge_h2_errors_total",
			Help: "HTTP/2 errors net/http's server counted, by its error type (a fixed set of words, e.g. too_many_early_resets: its own rapid-reset guard ended a connection)."}, []string{"type"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_config_reloads_total",
			Help: "Configuration reloads, by result (success, failure)."}, []string{"result"}),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "portcullis_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load."}),
	}
	reg.MustRegister(m.requests, m.duration, m.refused, m.h2Closed, m.h2Errors, m.reloads, m.reloadSuccess)
	return m
}

// setSites resolves the per-site counters for a new configuration.
func (m *metrics) setSites(names []string) {
	cache := make([][]prometheus.Counter, len(names))
	hist := make([]prometheus.Observer, len(names))
	for i, n := range names {
		cache[i] = make([]prometheus.Counter, filter.Shed+1)
		for a := filter.Pass; a <= filter.Shed; a++ {
			cache[i][a] = m.requests.WithLabelValues(n, a.String())
		}
		hist[i] = m.duration.WithLabelValues(n)
	}
	m.mu.Lock()
	m.sites, m.cache, m.hist = names, cache, hist
	m.mu.Unlock()
}

// observer feeds every request to the metrics and to accounting.
type observer struct {
	m    *metrics
	next func(*stats.Request)
	// good learns peace-time visitors: clients served normally while their
	// site is not under attack.
	good   *goodness
	attack []atomic.Bool
}

// ObserveRequest implements edge.Observer.
func (o *observer) ObserveRequest(r *stats.Request) {
	o.m.mu.RLock()
	if r.Site < len(o.m.cache) && int(r.Verdict) < len(o.m.cache[r.Site]) {
		o.m.cache[r.Site][r.Verdict].Inc()
		if r.OriginLatency > 0 {
			o.m.hist[r.Site].Observe(r.OriginLatency.Seconds())
		}
	}
	o.m.mu.RUnlock()
	if o.good != nil && r.Verdict == uint8(filter.Pass) && r.Status > 0 && r.Status < 400 && r.Site < len(o.attack) && !o.attack[r.Site].Load() {
		o.good.note(r.Addr, r.Prefix, r.ASN)
	}
	if o.next != nil {
		o.next(r)
	}
}
