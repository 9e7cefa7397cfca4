package alert

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons an alert (or one channel's delivery of it) was not sent: the
// "reason" label of portcullis_alert_dropped_total.
const (
	// DropDuplicate: a second opened or closed alert for one incident.
	DropDuplicate = "duplicate"
	// DropCoalesced: an escalation inside EscalationInterval, held back and
	// merged into the incident's next alert.
	DropCoalesced = "coalesced"
	// DropHourlyCap: an escalation held back by EscalationsPerHour, merged
	// into the incident's next alert.
	DropHourlyCap = "hourly_cap"
	// DropQueueFull: a channel's queue was full (per channel).
	DropQueueFull = "queue_full"
	// DropRetriesExhausted: MaxAttempts attempts failed (per channel).
	DropRetriesExhausted = "retries_exhausted"
	// DropRejected: a permanent failure (ErrPermanent; per channel).
	DropRejected = "rejected"
	// DropShutdown: still queued or waiting to retry when Run ended.
	DropShutdown = "shutdown"
)

var dropReasons = []string{DropDuplicate, DropCoalesced, DropHourlyCap, DropQueueFull, DropRetriesExhausted, DropRejected, DropShutdown}

// metrics are the dispatcher's Prometheus series:
//
//	portcullis_alert_sent_total{channel,kind}   alerts delivered
//	portcullis_alert_failures_total{channel}    failed delivery attempts
//	portcullis_alert_dropped_total{reason}      alerts or deliveries not sent
//	portcullis_alert_queue_length{channel}      alerts waiting in a channel's queue
type metrics struct {
	sent     *prometheus.CounterVec
	failures *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

// newMetrics creates the series (every label value of every known channel,
// kind and reason present from the start, at 0) and registers them on reg
// (nil: not registered).
func newMetrics(reg prometheus.Registerer, outs []*outlet) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_alert_sent_total", Help: "Alerts delivered, by channel and kind (opened, escalation, closed).",
		}, []string{"channel", "kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_alert_failures_total", Help: "Failed alert delivery attempts (each retry counts), by channel.",
		}, []string{"channel"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_alert_dropped_total", Help: "Alerts held back (duplicate, coalesced, hourly_cap) or deliveries given up (queue_full, retries_exhausted, rejected, shutdown).",
		}, []string{"reason"}),
	}
	cs := []prometheus.Collector{m.sent, m.failures, m.dropped}
	for _, o := range outs {
		for _, k := range kinds {
			m.sent.WithLabelValues(o.ch.Name(), string(k))
		}
		m.failures.WithLabelValues(o.ch.Name())
		q := o.q
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "portcullis_alert_queue_length", Help: "Alerts waiting in a channel's queue (not counting the one being delivered).",
			ConstLabels: prometheus.Labels{"channel": o.ch.Name()},
		}, func() float64 { return float64(len(q)) }))
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("alert: register metrics: %w", err)
		}
	}
	return m, nil
}
