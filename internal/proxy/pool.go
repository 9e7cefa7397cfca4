// Package proxy is the origin side of the shield: a keep-alive transport
// per site, origin pools with active health checks, passive ejection and
// most-headroom load balancing, an adaptive per-origin concurrency limit
// (adaptive.go) with a short deadline queue ordered by route priority and
// a reserved share for critical requests (priority.go), a micro-cache for
// anonymous GETs with request coalescing and serve-stale (cache.go), and a
// reverse proxy built on net/http/httputil over a synchronous HTTP/1.1
// round tripper (h1.go) that sets forwarding headers
// from the resolved client only and never retries a request.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrNoOrigin is returned by Pool.Acquire when every origin is ejected.
var ErrNoOrigin = errors.New("proxy: no healthy origin")

// ErrSaturated is returned by Pool.Acquire when every healthy origin is at
// its concurrency limit for longer than the queue timeout.
var ErrSaturated = errors.New("proxy: origins saturated")

// PoolConfig configures one site's origin pool.
type PoolConfig struct {
	// Site names the pool in logs and metrics.
	Site string
	// Origins are base URLs ("http://10.0.0.5:8080").
	Origins []*url.URL
	// MaxConcurrency bounds in-flight requests per origin (≥1); it is the
	// ceiling of the adaptive limit.
	MaxConcurrency int
	// MinConcurrency is the floor of the adaptive per-origin limit; 0 or
	// ≥ MaxConcurrency fixes the limit at MaxConcurrency.
	MinConcurrency int
	// Adaptive tunes the limit's algorithm (zero = defaults; Min and Max
	// are taken from the fields above).
	Adaptive AdaptiveConfig
	// ReservedShare (0–0.9) of each origin's limit is kept for Critical
	// requests (critical routes, members).
	ReservedShare float64
	// QueueTimeout is how long Acquire waits for a slot.
	QueueTimeout time.Duration
	// MaxQueue bounds waiting requests (0 = MaxConcurrency × origins); a
	// full queue sheds its newest lowest-priority waiter for a
	// higher-priority arrival, or refuses the arrival.
	MaxQueue int
	// Priorities map path prefixes to priorities (default Normal).
	Priorities []RoutePriority
	// Cache configures the micro-cache (zero = off).
	Cache CacheConfig
	// Registerer receives the pool's metrics (nil = none); pools of any
	// number of sites and reloads share one registration.
	Registerer prometheus.Registerer
	// Now is the clock for cache TTLs and limit windows (nil = time.Now).
	Now func() time.Time
	// HealthPath is requested every HealthInterval; "" disables active checks.
	HealthPath     string
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	// UnhealthyAfter consecutive failures eject; HealthyAfter successes readmit.
	UnhealthyAfter, HealthyAfter int
	// Transport settings.
	DialTimeout, ResponseHeaderTimeout time.Duration
	MaxIdleConns                       int
}

// Origin is one backend server of a pool.
type Origin struct {
	// URL is the origin's base URL.
	URL *url.URL
	// Key is "scheme://host" (identity across reloads).
	Key string

	healthy  atomic.Bool
	inflight atomic.Int64 // written under Pool.mu
	lim      *AdaptiveLimit
	fails    atomic.Int32
	oks      atomic.Int32
	proxy    http.Handler
}

// Healthy reports whether the origin receives traffic.
func (o *Origin) Healthy() bool { return o.healthy.Load() }

// Inflight is the number of requests currently at this origin.
func (o *Origin) Inflight() int64 { return o.inflight.Load() }

// Limit is the origin's current (adaptive) concurrency limit.
func (o *Origin) Limit() int { return o.lim.Limit() }

// Pool is one site's origins. Safe for concurrent use.
type Pool struct {
	cfg       PoolConfig
	origins   []*Origin
	transport *h1Transport
	log       *slog.Logger
	next      atomic.Uint64
	peak      atomic.Int64
	stop      context.CancelFunc
	wg        sync.WaitGroup
	onResp    atomic.Pointer[func(*http.Response) error]

	now     func() time.Time
	routes  routeTable
	cache   *Cache
	metrics *Metrics
	// cacheCounters are portcullis_proxy_cache_requests_total{site,result},
	// resolved once (nil without metrics).
	cacheCounters [numResults]prometheus.Counter

	mu     sync.Mutex // admission: origins' in-flight counts and the queue
	queue  [Critical + 1]waitList
	queued int
}

// SetResponseHook installs f, called on every origin response before it is
// copied to the client (member-standing marks, cache rules); f may edit
// the response headers. It can be replaced at any time (config reloads).
func (p *Pool) SetResponseHook(f func(*http.Response) error) { p.onResp.Store(&f) }

// NewPool builds a pool; every origin starts healthy. Start runs the
// health checks. classify (may be nil) maps client-side proxying errors
// (body too large, too slow) to verdicts.
func NewPool(cfg PoolConfig, log *slog.Logger, classify ErrorClassifier) (*Pool, error) {
	if len(cfg.Origins) == 0 {
		return nil, fmt.Errorf("proxy: site %q: no origins", cfg.Site)
	}
	if cfg.MaxConcurrency < 1 {
		cfg.MaxConcurrency = 1
	}
	if cfg.MaxIdleConns < 1 {
		cfg.MaxIdleConns = 64
	}
	if cfg.MinConcurrency < 1 || cfg.MinConcurrency > cfg.MaxConcurrency {
		cfg.MinConcurrency = cfg.MaxConcurrency
	}
	cfg.ReservedShare = max(0, min(0.9, cfg.ReservedShare))
	if cfg.MaxQueue < 1 {
		cfg.MaxQueue = cfg.MaxConcurrency * len(cfg.Origins)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Pool{cfg: cfg, log: log, transport: newTransport(cfg), now: cfg.Now, routes: newRouteTable(cfg.Priorities)}
	if cfg.Registerer != nil {
		m, err := NewMetrics(cfg.Registerer)
		if err != nil {
			return nil, err
		}
		p.metrics = m
	}
	if cfg.Cache.Enabled {
		c, err := NewCache(cfg.Cache, cfg.Now)
		if err != nil {
			return nil, fmt.Errorf("proxy: site %q: %w", cfg.Site, err)
		}
		p.cache = c
	}
	ac := cfg.Adaptive
	ac.Min, ac.Max = cfg.MinConcurrency, cfg.MaxConcurrency
	for _, u := range cfg.Origins {
		o := &Origin{URL: u, Key: u.Scheme + "://" + u.Host, lim: NewAdaptiveLimit(ac)}
		o.healthy.Store(true)
		o.proxy = p.reverseProxy(o, classify)
		p.origins = append(p.origins, o)
	}
	p.metrics.add(p)
	return p, nil
}

// newTransport returns the origin transport (h1Transport for bodiless
// GET and HEAD, over an http.Transport for the rest), keep-alive and sized
// for load: idle connections per origin as configured (the default of 2
// makes a proxy open a new connection for almost every request under
// load), no compression negotiation (bodies pass through untouched),
// HTTP/1.1 to origins.
func newTransport(cfg PoolConfig) *h1Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return newH1Transport(&http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          cfg.MaxIdleConns * len(cfg.Origins),
		MaxIdleConnsPerHost:   cfg.MaxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
		TLSHandshakeTimeout:   cfg.DialTimeout,
	}, d.DialContext, cfg.MaxIdleConns, cfg.ResponseHeaderTimeout)
}

// Origins returns the pool's origins.
func (p *Pool) Origins() []*Origin { return p.origins }

// PeakInflight returns and resets the highest in-flight count seen across
// the pool since the last call.
func (p *Pool) PeakInflight() int64 { return p.peak.Swap(0) }

// Start launches the active health checks until ctx ends or Close.
func (p *Pool) Start(ctx context.Context) {
	if p.cfg.HealthPath == "" || p.cfg.HealthInterval <= 0 {
		return
	}
	ctx, p.stop = context.WithCancel(ctx)
	client := &http.Client{Transport: p.transport.fallback, Timeout: p.cfg.HealthTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, o := range p.origins {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			t := time.NewTicker(p.cfg.HealthInterval)
			defer t.Stop()
			for {
				p.check(ctx, client, o)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
}

func (p *Pool) check(ctx context.Context, c *http.Client, o *Origin) {
	u := *o.URL
	u.Path = p.cfg.HealthPath
	u.RawQuery = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return
	}
	req.Header.Set("User-Agent", "portcullis-health-check")
	resp, err := c.Do(req)
	ok := err == nil && resp.StatusCode < 500
	if resp != nil {
		resp.Body.Close()
	}
	if ctx.Err() != nil {
		return
	}
	p.Report(o, ok)
}

// Report records a success or failure for o (active check or a proxied
// request's transport error) and ejects or readmits it.
func (p *Pool) Report(o *Origin, ok bool) {
	if ok {
		o.fails.Store(0)
		if !o.healthy.Load() && int(o.oks.Add(1)) >= p.cfg.HealthyAfter {
			o.healthy.Store(true)
			o.oks.Store(0)
			p.log.Info("origin readmitted", "site", p.cfg.Site, "origin", o.Key)
			p.dispatch()
		}
		return
	}
	o.oks.Store(0)
	if o.healthy.Load() && int(o.fails.Add(1)) >= p.cfg.UnhealthyAfter {
		o.healthy.Store(false)
		p.log.Warn("origin ejected", "site", p.cfg.Site, "origin", o.Key, "after_failures", p.cfg.UnhealthyAfter)
	}
}

// Acquire takes a slot on the healthy origin with the most headroom for
// the priority WithPriority set on ctx (Normal if none), waiting up to
// QueueTimeout in the priority queue. The caller must call Release(o) when
// the request ends. Errors: ErrNoOrigin, ErrSaturated, or ctx's error.
func (p *Pool) Acquire(ctx context.Context) (*Origin, error) {
	prio, ok := PriorityFrom(ctx)
	if !ok {
		prio = Normal
	}
	return p.acquire(ctx, prio)
}

func (p *Pool) anyHealthy() bool {
	for _, o := range p.origins {
		if o.healthy.Load() {
			return true
		}
	}
	return false
}

// enter counts a granted slot (p.mu held).
func (p *Pool) enter(o *Origin) {
	n := o.inflight.Add(1)
	for {
		peak := p.peak.Load()
		if n <= peak || p.peak.CompareAndSwap(peak, n) {
			return
		}
	}
}

// Release frees o's slot and hands it to the highest-priority waiter.
func (p *Pool) Release(o *Origin) {
	p.mu.Lock()
	o.inflight.Add(-1)
	p.dispatchLocked()
	p.mu.Unlock()
}

// Close stops health checks and closes idle origin connections.
func (p *Pool) Close() {
	if p.stop != nil {
		p.stop()
	}
	p.wg.Wait()
	p.transport.Close()
	p.metrics.remove(p)
}
