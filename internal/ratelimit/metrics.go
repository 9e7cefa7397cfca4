package ratelimit

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names. Every series carries the const label limiter=<name> given to
// the collector, so several limiters can share one registry.
const (
	metricKeys        = "portcullis_ratelimit_keys"
	metricKeysMax     = "portcullis_ratelimit_keys_max"
	metricDecisions   = "portcullis_ratelimit_decisions_total"
	metricEvictions   = "portcullis_ratelimit_evictions_total"
	metricSwept       = "portcullis_ratelimit_expired_swept_total"
	metricClockSteps  = "portcullis_ratelimit_clock_steps_total"
	metricConcKeys    = "portcullis_ratelimit_concurrency_keys"
	metricConcInUse   = "portcullis_ratelimit_concurrency_in_use"
	metricConcAcquire = "portcullis_ratelimit_concurrency_acquires_total"
	metricConcUnbal   = "portcullis_ratelimit_concurrency_unbalanced_releases_total"
)

// RegisterLimiter registers NewCollector(name, l) on reg. The error (a
// duplicate name, say) is wrapped with a "ratelimit:" prefix.
func RegisterLimiter(reg prometheus.Registerer, name string, l *Limiter) error {
	if err := reg.Register(NewCollector(name, l)); err != nil {
		return fmt.Errorf("ratelimit: register metrics for limiter %q: %w", name, err)
	}
	return nil
}

// RegisterConcurrency registers NewConcurrencyCollector(name, c) on reg.
func RegisterConcurrency(reg prometheus.Registerer, name string, c *Concurrency) error {
	if err := reg.Register(NewConcurrencyCollector(name, c)); err != nil {
		return fmt.Errorf("ratelimit: register metrics for concurrency limiter %q: %w", name, err)
	}
	return nil
}

type limiterCollector struct {
	l                                              *Limiter
	keys, keysMax, decisions, evictions, swept, cs *prometheus.Desc
}

// NewCollector returns a collector that reads l.Stats() at scrape time
// (nothing is counted twice on the hot path) and exports, labelled
// limiter=name: portcullis_ratelimit_keys and _keys_max (gauges: keys held and
// the bound), portcullis_ratelimit_decisions_total{result=allowed|refused|
// invalid_key}, _evictions_total (live entries displaced),
// _expired_swept_total and _clock_steps_total.
func NewCollector(name string, l *Limiter) prometheus.Collector {
	cl := prometheus.Labels{"limiter": name}
	return &limiterCollector{
		l:         l,
		keys:      prometheus.NewDesc(metricKeys, "Keys held by the rate limiter.", nil, cl),
		keysMax:   prometheus.NewDesc(metricKeysMax, "Maximum keys the rate limiter can hold (its memory bound).", nil, cl),
		decisions: prometheus.NewDesc(metricDecisions, "Rate-limit decisions by result.", []string{"result"}, cl),
		evictions: prometheus.NewDesc(metricEvictions, "Live rate-limit entries evicted because their bucket was full.", nil, cl),
		swept:     prometheus.NewDesc(metricSwept, "Expired rate-limit entries cleared by the incremental sweep.", nil, cl),
		cs:        prometheus.NewDesc(metricClockSteps, "Clock steps absorbed by the rate limiter's clock guard.", nil, cl),
	}
}

func (c *limiterCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, c.keys, c.keysMax, c.decisions, c.evictions, c.swept, c.cs)
}

func describe(ch chan<- *prometheus.Desc, descs ...*prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

func (c *limiterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.l.Stats()
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(st.Keys))
	ch <- prometheus.MustNewConstMetric(c.keysMax, prometheus.GaugeValue, float64(st.Capacity))
	ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(st.Allowed), "allowed")
	ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(st.Refused), "refused")
	ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(st.InvalidKeys), "invalid_key")
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(st.Evictions))
	ch <- prometheus.MustNewConstMetric(c.swept, prometheus.CounterValue, float64(st.Swept))
	ch <- prometheus.MustNewConstMetric(c.cs, prometheus.CounterValue, float64(st.ClockSteps))
}

type concCollector struct {
	c                         *Concurrency
	keys, inUse, acq, unbalan *prometheus.Desc
}

// NewConcurrencyCollector returns a collector reading c.Stats() at scrape
// time, labelled limiter=name: portcullis_ratelimit_concurrency_keys and
// _in_use (gauges), _acquires_total{result=acquired|refused|full|invalid_key}
// and _unbalanced_releases_total.
func NewConcurrencyCollector(name string, c *Concurrency) prometheus.Collector {
	cl := prometheus.Labels{"limiter": name}
	return &concCollector{
		c:       c,
		keys:    prometheus.NewDesc(metricConcKeys, "Keys holding at least one concurrency slot.", nil, cl),
		inUse:   prometheus.NewDesc(metricConcInUse, "Concurrency slots held over all keys.", nil, cl),
		acq:     prometheus.NewDesc(metricConcAcquire, "Concurrency slot requests by result.", []string{"result"}, cl),
		unbalan: prometheus.NewDesc(metricConcUnbal, "Releases of a key that held no slot (caller bugs).", nil, cl),
	}
}

func (c *concCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, c.keys, c.inUse, c.acq, c.unbalan)
}

func (c *concCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.c.Stats()
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(st.Keys))
	ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(st.InUse))
	ch <- prometheus.MustNewConstMetric(c.acq, prometheus.CounterValue, float64(st.Acquired), "acquired")
	ch <- prometheus.MustNewConstMetric(c.acq, prometheus.CounterValue, float64(st.Refused), "refused")
	ch <- prometheus.MustNewConstMetric(c.acq, prometheus.CounterValue, float64(st.Full), "full")
	ch <- prometheus.MustNewConstMetric(c.acq, prometheus.CounterValue, float64(st.InvalidKeys), "invalid_key")
	ch <- prometheus.MustNewConstMetric(c.unbalan, prometheus.CounterValue, float64(st.Unbalanced))
}
