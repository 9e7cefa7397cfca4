package challenge

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names.
const (
	metricResponses   = "portcullis_challenge_responses_total"
	metricRedemptions = "portcullis_challenge_redemptions_total"
	metricStanding    = "portcullis_challenge_standing_issued_total"
)

// Metrics counts the challenge stage's responses and redemptions. One
// Metrics may be shared by several Services (sites); a nil *Metrics counts
// nothing.
type Metrics struct {
	responses   map[[2]string]prometheus.Counter
	redemptions map[string]prometheus.Counter
	standing    prometheus.Counter
}

// NewMetrics registers on reg: portcullis_challenge_responses_total{rule,
// format} (rule: a Rule* id; format: html or machine),
// portcullis_challenge_redemptions_total{result} (work, wait, invalid,
// bad_work, too_early, no_cookies, replayed, too_old, nojs_disabled) and
// portcullis_challenge_standing_issued_total. Errors from reg are wrapped.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	resp := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricResponses,
		Help: "Challenge-stage responses written, by verdict rule and format."}, []string{"rule", "format"})
	red := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRedemptions,
		Help: "Challenge redemption attempts at the verify endpoint, by result."}, []string{"result"})
	st := prometheus.NewCounter(prometheus.CounterOpts{Name: metricStanding,
		Help: "Member standing cookies issued."})
	for _, c := range []prometheus.Collector{resp, red, st} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("challenge: register metrics: %w", err)
		}
	}
	m := &Metrics{responses: map[[2]string]prometheus.Counter{}, redemptions: map[string]prometheus.Counter{}, standing: st}
	for _, rule := range []string{RuleInterstitial, RuleForm, RuleNonDocument, RuleCookies} {
		for _, f := range []string{"html", "machine"} {
			m.responses[[2]string{rule, f}] = resp.WithLabelValues(rule, f)
		}
	}
	for _, r := range []string{resultWork, resultWait, resultInvalid, resultBadWork, resultTooEarly, resultNoCookies, resultReplayed, resultTooOld, resultNoJSOff} {
		m.redemptions[r] = red.WithLabelValues(r)
	}
	return m, nil
}

func (m *Metrics) response(rule string, html bool) {
	if m == nil {
		return
	}
	f := "machine"
	if html {
		f = "html"
	}
	if c := m.responses[[2]string{rule, f}]; c != nil {
		c.Inc()
	}
}

func (m *Metrics) redeemed(result string) {
	if m == nil {
		return
	}
	if c := m.redemptions[result]; c != nil {
		c.Inc()
	}
}

func (m *Metrics) standingIssued() {
	if m != nil {
		m.standing.Inc()
	}
}
