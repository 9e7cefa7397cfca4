package mitigate

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names.
const (
	metricDecisions   = "portcullis_mitigate_decisions"
	metricChanges     = "portcullis_mitigate_changes_total"
	metricApplyErrors = "portcullis_mitigate_apply_errors_total"
	metricLevel       = "portcullis_mitigate_ladder_level"
	metricShadowHits  = "portcullis_mitigate_shadow_hits_total"
	metricShadowTrack = "portcullis_mitigate_shadow_decisions_tracked"
)

// RegisterMetrics registers on reg a collector that reads, at scrape time:
//
//	portcullis_mitigate_decisions{action,scope,mode}   active decisions (mode enforced|shadow)
//	portcullis_mitigate_changes_total{kind}            changes applied (add, escalate, relax, refresh, remove, expire)
//	portcullis_mitigate_apply_errors_total             batches the set partly refused
//	portcullis_mitigate_ladder_level{site}             each site's ladder level (0 observe … 4 drop)
//	portcullis_mitigate_shadow_hits_total              shadow decision hits recorded (when shadow is not nil)
//	portcullis_mitigate_shadow_decisions_tracked       shadow decisions in the log
//
// Errors (a duplicate registration) are wrapped with a "mitigate:" prefix.
func RegisterMetrics(reg prometheus.Registerer, c *Controller, shadow *ShadowLog) error {
	if err := reg.Register(newCollector(c, shadow)); err != nil {
		return fmt.Errorf("mitigate: register metrics: %w", err)
	}
	return nil
}

type collector struct {
	c                                          *Controller
	shadow                                     *ShadowLog
	decisions, changes, errs, level, hits, trk *prometheus.Desc
}

func newCollector(c *Controller, shadow *ShadowLog) *collector {
	return &collector{
		c: c, shadow: shadow,
		decisions: prometheus.NewDesc(metricDecisions, "Active mitigation decisions by action, scope and mode (enforced or shadow).", []string{"action", "scope", "mode"}, nil),
		changes:   prometheus.NewDesc(metricChanges, "Mitigation decision changes applied, by kind.", []string{"kind"}, nil),
		errs:      prometheus.NewDesc(metricApplyErrors, "Change batches the decision set partly refused (invalid decisions or set full).", nil, nil),
		level:     prometheus.NewDesc(metricLevel, "Escalation ladder level per site (0 observe, 1 rate limit, 2 challenge, 3 block, 4 drop).", []string{"site"}, nil),
		hits:      prometheus.NewDesc(metricShadowHits, "Requests matched by shadow decisions (recorded, not enforced).", nil, nil),
		trk:       prometheus.NewDesc(metricShadowTrack, "Shadow decisions held in the shadow log.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.decisions, m.changes, m.errs, m.level, m.hits, m.trk} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *collector) Collect(ch chan<- prometheus.Metric) {
	counts := m.c.set.Counts()
	modes := [2]string{"enforced", "shadow"}
	for a := range numActions {
		for s := range numScopes {
			for mode := range 2 {
				ch <- prometheus.MustNewConstMetric(m.decisions, prometheus.GaugeValue, float64(counts[a][s][mode]),
					a.String(), s.String(), modes[mode])
			}
		}
	}
	for k := range numChangeKinds {
		ch <- prometheus.MustNewConstMetric(m.changes, prometheus.CounterValue, float64(m.c.changes[k].Load()), k.String())
	}
	ch <- prometheus.MustNewConstMetric(m.errs, prometheus.CounterValue, float64(m.c.errs.Load()))
	for _, st := range m.c.Status() {
		ch <- prometheus.MustNewConstMetric(m.level, prometheus.GaugeValue, float64(st.Level), strconv.Itoa(st.Site))
	}
	if m.shadow != nil {
		hits, _, tracked := m.shadow.shadowStats()
		ch <- prometheus.MustNewConstMetric(m.hits, prometheus.CounterValue, float64(hits))
		ch <- prometheus.MustNewConstMetric(m.trk, prometheus.GaugeValue, float64(tracked))
	}
}
