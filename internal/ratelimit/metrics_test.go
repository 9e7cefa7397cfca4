package ratelimit

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMetrics(t *testing.T) {
	l := mustLimiter(t, Rate{Count: 2, Period: time.Second}, Options{MaxKeys: 8, Shards: 1})
	k := addrKey("192.0.2.1")
	for range 3 {
		l.AllowAt(k, 0)
	}
	l.AllowAt(Key{}, 0)
	c, err := NewConcurrency(1, Options{MaxKeys: 8})
	if err != nil {
		t.Fatal(err)
	}
	c.Acquire(k)
	c.Acquire(k)

	tests := []struct {
		name      string
		collector prometheus.Collector
		want      map[string]float64 // "name{label=value,...}" (labels sorted) -> value
	}{
		{
			name:      "limiter",
			collector: NewCollector("per_ip", l),
			want: map[string]float64{
				`portcullis_ratelimit_decisions_total{limiter=per_ip,result=allowed}`:     2,
				`portcullis_ratelimit_decisions_total{limiter=per_ip,result=refused}`:     1,
				`portcullis_ratelimit_decisions_total{limiter=per_ip,result=invalid_key}`: 1,
				`portcullis_ratelimit_keys{limiter=per_ip}`:                               1,
				`portcullis_ratelimit_keys_max{limiter=per_ip}`:                           8,
				`portcullis_ratelimit_evictions_total{limiter=per_ip}`:                    0,
				`portcullis_ratelimit_expired_swept_total{limiter=per_ip}`:                0,
				`portcullis_ratelimit_clock_steps_total{limiter=per_ip}`:                  0,
			},
		},
		{
			name:      "concurrency",
			collector: NewConcurrencyCollector("per_ip_ws", c),
			want: map[string]float64{
				`portcullis_ratelimit_concurrency_acquires_total{limiter=per_ip_ws,result=acquired}`:    1,
				`portcullis_ratelimit_concurrency_acquires_total{limiter=per_ip_ws,result=refused}`:     1,
				`portcullis_ratelimit_concurrency_acquires_total{limiter=per_ip_ws,result=full}`:        0,
				`portcullis_ratelimit_concurrency_acquires_total{limiter=per_ip_ws,result=invalid_key}`: 0,
				`portcullis_ratelimit_concurrency_in_use{limiter=per_ip_ws}`:                            1,
				`portcullis_ratelimit_concurrency_keys{limiter=per_ip_ws}`:                              1,
				`portcullis_ratelimit_concurrency_unbalanced_releases_total{limiter=per_ip_ws}`:         0,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry() // checks descriptors against samples
			reg.MustRegister(tt.collector)
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, mf := range mfs {
				name := mf.GetName()
				if !strings.HasPrefix(name, "portcullis_ratelimit_") {
					t.Errorf("metric %s outside portcullis_ratelimit_", name)
				}
				if isCounter := mf.GetType() == dto.MetricType_COUNTER; isCounter != strings.HasSuffix(name, "_total") {
					t.Errorf("metric %s: counter %v but _total suffix %v", name, isCounter, !isCounter)
				}
				for _, m := range mf.GetMetric() {
					var labels []string
					for _, lp := range m.GetLabel() {
						labels = append(labels, lp.GetName()+"="+lp.GetValue())
					}
					v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
					got[name+"{"+strings.Join(labels, ",")+"}"] = v
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d series, want %d: %v", len(got), len(tt.want), got)
			}
			for series, want := range tt.want {
				if v, ok := got[series]; !ok || v != want {
					t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
				}
			}
		})
	}
}

func TestRegister(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	l := mustLimiter(t, Rate{Count: 1, Period: time.Second}, Options{MaxKeys: 8})
	c, _ := NewConcurrency(1, Options{MaxKeys: 8})
	if err := RegisterLimiter(reg, "a", l); err != nil {
		t.Fatal(err)
	}
	if err := RegisterLimiter(reg, "b", l); err != nil {
		t.Fatalf("second limiter with another name: %v", err)
	}
	if err := RegisterLimiter(reg, "a", l); err == nil || !strings.HasPrefix(err.Error(), "ratelimit:") {
		t.Fatalf("duplicate registration: %v", err)
	}
	if err := RegisterConcurrency(reg, "a", c); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
