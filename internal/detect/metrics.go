package detect

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/incident"
)

// RegisterMetrics registers a collector exposing the engine on reg:
//
//	portcullis_detect_state{target,state}            1 for the current state
//	portcullis_detect_score_ratio{target,detector}   latest detector score (≥ 1 fires)
//	portcullis_detect_flash_crowd{target}            1 during a recognised flash crowd
//	portcullis_detect_lag_seconds                    wall clock − end of latest tick
//	portcullis_detect_steps_total                    ticks processed
//	portcullis_detect_incidents_opened_total / _closed_total
//	portcullis_detect_transitions_total
//	portcullis_detect_sink_errors_total
//
// Values are read at scrape time. Packet destinations appear as targets named
// by address, bounded by Config.MaxTargets.
func (e *Engine) RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(&collector{e: e}); err != nil {
		return fmt.Errorf("detect: register metrics: %w", err)
	}
	return nil
}

var (
	descState = prometheus.NewDesc("portcullis_detect_state",
		"Attack state of each target (1 for the current state).", []string{"target", "state"}, nil)
	descScore = prometheus.NewDesc("portcullis_detect_score_ratio",
		"Latest detector score: observed value over threshold; 1 or more fires.", []string{"target", "detector"}, nil)
	descFlash = prometheus.NewDesc("portcullis_detect_flash_crowd",
		"1 while a legitimate surge (flash crowd) is recognised.", []string{"target"}, nil)
	descLag = prometheus.NewDesc("portcullis_detect_lag_seconds",
		"How far behind the wall clock the latest processed tick ended.", nil, nil)
	descSteps = prometheus.NewDesc("portcullis_detect_steps_total",
		"Accounting ticks processed.", nil, nil)
	descOpened = prometheus.NewDesc("portcullis_detect_incidents_opened_total",
		"Incidents opened.", nil, nil)
	descClosed = prometheus.NewDesc("portcullis_detect_incidents_closed_total",
		"Incidents closed.", nil, nil)
	descTrans = prometheus.NewDesc("portcullis_detect_transitions_total",
		"State-machine transitions.", nil, nil)
	descSinkErr = prometheus.NewDesc("portcullis_detect_sink_errors_total",
		"Failed incident store writes.", nil, nil)
)

var allStates = []incident.State{incident.StateNormal, incident.StateSuspected, incident.StateAttack, incident.StateRecovering}

type collector struct{ e *Engine }

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descScore, descFlash, descLag, descSteps, descOpened, descClosed, descTrans, descSinkErr} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; it reads Engine.Status.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.e.Status() {
		for _, s := range allStates {
			v := 0.0
			if st.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, st.Name, string(s))
		}
		for det, score := range st.Scores {
			ch <- prometheus.MustNewConstMetric(descScore, prometheus.GaugeValue, score, st.Name, det)
		}
		flash := 0.0
		if st.FlashCrowd {
			flash = 1
		}
		ch <- prometheus.MustNewConstMetric(descFlash, prometheus.GaugeValue, flash, st.Name)
	}
	m := &c.e.metrics
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, c.e.Lag().Seconds())
	ch <- prometheus.MustNewConstMetric(descSteps, prometheus.CounterValue, float64(m.steps.Load()))
	ch <- prometheus.MustNewConstMetric(descOpened, prometheus.CounterValue, float64(m.opened.Load()))
	ch <- prometheus.MustNewConstMetric(descClosed, prometheus.CounterValue, float64(m.closed.Load()))
	ch <- prometheus.MustNewConstMetric(descTrans, prometheus.CounterValue, float64(m.transitions.Load()))
	ch <- prometheus.MustNewConstMetric(descSinkErr, prometheus.CounterValue, float64(m.sinkErrors.Load()))
}
