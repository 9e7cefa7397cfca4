package proxy

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Cache results (label values of portcullis_proxy_cache_requests_total).
const (
	resultHit       = iota // served fresh from the cache
	resultMiss             // fetched from the origin (stored or not)
	resultStale            // served stale: origin overloaded, erroring or down
	resultCoalesced        // waited for another request's fetch of the same key
	resultPass             // eligible, but the origin marked the resource uncacheable
	resultBypass           // not eligible (method, credentials, upgrade, range)
	numResults
)

var resultNames = [numResults]string{"hit", "miss", "stale", "coalesced", "pass", "bypass"}

// Metrics are the proxy's Prometheus metrics, shared by every pool
// registered on one registry:
//
//   - portcullis_proxy_concurrency_limit{site,origin}: the adaptive limit;
//   - portcullis_proxy_inflight_requests{site,origin}: requests at the origin;
//   - portcullis_proxy_queued_requests{site}: requests in the deadline queue;
//   - portcullis_proxy_shed_total{site,priority,reason}: requests answered 503
//     for want of origin capacity (reason queue_timeout, queue_full, no_origin);
//   - portcullis_proxy_cache_requests_total{site,result}: cache outcomes
//     (hit, miss, stale, coalesced, pass, bypass);
//   - portcullis_proxy_cache_entries{site} and portcullis_proxy_cache_size_bytes{site}.
//
// Gauges are read from the live pools at scrape time; when a reload briefly
// keeps two pools for a site, the newer one is reported.
type Metrics struct {
	shedTotal  *prometheus.CounterVec
	cacheTotal *prometheus.CounterVec
	limit      *prometheus.Desc
	inflight   *prometheus.Desc
	queued     *prometheus.Desc
	entries    *prometheus.Desc
	size       *prometheus.Desc

	mu    sync.Mutex
	seq   uint64
	pools map[*Pool]uint64
}

// NewMetrics registers the proxy metrics on reg, or returns the Metrics
// already registered there. Errors from reg are wrapped.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		shedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_proxy_shed_total",
			Help: "Requests answered 503 for want of origin capacity, by site, priority and reason."}, []string{"site", "priority", "reason"}),
		cacheTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_proxy_cache_requests_total",
			Help: "Requests seen by the micro-cache, by site and result."}, []string{"site", "result"}),
		limit: prometheus.NewDesc("portcullis_proxy_concurrency_limit",
			"Adaptive concurrency limit of an origin (requests in flight).", []string{"site", "origin"}, nil),
		inflight: prometheus.NewDesc("portcullis_proxy_inflight_requests",
			"Requests in flight at an origin.", []string{"site", "origin"}, nil),
		queued: prometheus.NewDesc("portcullis_proxy_queued_requests",
			"Requests waiting in a site's deadline queue for an origin slot.", []string{"site"}, nil),
		entries: prometheus.NewDesc("portcullis_proxy_cache_entries",
			"Responses in a site's micro-cache (fresh or kept for serve-stale).", []string{"site"}, nil),
		size: prometheus.NewDesc("portcullis_proxy_cache_size_bytes",
			"Bytes held by a site's micro-cache (bodies and headers).", []string{"site"}, nil),
		pools: map[*Pool]uint64{},
	}
	if err := reg.Register(m); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*Metrics); ok {
				return old, nil
			}
		}
		return nil, fmt.Errorf("proxy: metrics: %w", err)
	}
	return m, nil
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.shedTotal.Describe(ch)
	m.cacheTotal.Describe(ch)
	for _, d := range []*prometheus.Desc{m.limit, m.inflight, m.queued, m.entries, m.size} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.shedTotal.Collect(ch)
	m.cacheTotal.Collect(ch)
	m.mu.Lock()
	newest := map[string]*Pool{}
	seqs := map[string]uint64{}
	for p, seq := range m.pools {
		if s, ok := seqs[p.cfg.Site]; !ok || seq > s {
			newest[p.cfg.Site], seqs[p.cfg.Site] = p, seq
		}
	}
	m.mu.Unlock()
	for site, p := range newest {
		for _, o := range p.origins {
			ch <- prometheus.MustNewConstMetric(m.limit, prometheus.GaugeValue, float64(o.lim.Limit()), site, o.Key)
			ch <- prometheus.MustNewConstMetric(m.inflight, prometheus.GaugeValue, float64(o.inflight.Load()), site, o.Key)
		}
		p.mu.Lock()
		q := p.queued
		p.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(m.queued, prometheus.GaugeValue, float64(q), site)
		if p.cache != nil {
			n, b := p.cache.Len()
			ch <- prometheus.MustNewConstMetric(m.entries, prometheus.GaugeValue, float64(n), site)
			ch <- prometheus.MustNewConstMetric(m.size, prometheus.GaugeValue, float64(b), site)
		}
	}
}

// add starts reporting p (nil-safe) and resolves its cache counters.
func (m *Metrics) add(p *Pool) {
	if m == nil {
		return
	}
	for i := range p.cacheCounters {
		p.cacheCounters[i] = m.cacheTotal.WithLabelValues(p.cfg.Site, resultNames[i])
	}
	m.mu.Lock()
	m.seq++
	m.pools[p] = m.seq
	m.mu.Unlock()
}

// remove stops reporting p (nil-safe).
func (m *Metrics) remove(p *Pool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.pools, p)
	m.mu.Unlock()
}

// shed counts a request refused for want of capacity (nil-safe).
func (m *Metrics) shed(site string, prio Priority, reason string) {
	if m == nil {
		return
	}
	m.shedTotal.WithLabelValues(site, prio.String(), reason).Inc()
}

// cacheResult counts one cache outcome of p.
func (p *Pool) cacheResult(r int) {
	if c := p.cacheCounters[r]; c != nil {
		c.Inc()
	}
}
