package ratelimit

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
		want      string
		names     []string
	}{
		{
			name:      "limiter",
			collector: NewCollector("per_ip", l),
			names:     []string{metricKeys, metricKeysMax, metricDecisions, metricEvictions},
			want: `
# HELP portcullis_ratelimit_decisions_total Rate-limit decisions by result.
# TYPE portcullis_ratelimit_decisions_total counter
portcullis_ratelimit_decisions_total{limiter="per_ip",result="allowed"} 2
portcullis_ratelimit_decisions_total{limiter="per_ip",result="invalid_key"} 1
portcullis_ratelimit_decisions_total{limiter="per_ip",result="refused"} 1
# HELP portcullis_ratelimit_keys Keys held by the rate limiter.
# TYPE portcullis_ratelimit_keys gauge
portcullis_ratelimit_keys{limiter="per_ip"} 1
# HELP portcullis_ratelimit_keys_max Maximum keys the rate limiter can hold (its memory bound).
# TYPE portcullis_ratelimit_keys_max gauge
portcullis_ratelimit_keys_max{limiter="per_ip"} 8
# HELP portcullis_ratelimit_evictions_total Live rate-limit entries evicted because their bucket was full.
# TYPE portcullis_ratelimit_evictions_total counter
portcullis_ratelimit_evictions_total{limiter="per_ip"} 0
`,
		},
		{
			name:      "concurrency",
			collector: NewConcurrencyCollector("per_ip_ws", c),
			names:     []string{metricConcAcquire, metricConcInUse},
			want: `
# HELP portcullis_ratelimit_concurrency_acquires_total Concurrency slot requests by result.
# TYPE portcullis_ratelimit_concurrency_acquires_total counter
portcullis_ratelimit_concurrency_acquires_total{limiter="per_ip_ws",result="acquired"} 1
portcullis_ratelimit_concurrency_acquires_total{limiter="per_ip_ws",result="full"} 0
portcullis_ratelimit_concurrency_acquires_total{limiter="per_ip_ws",result="invalid_key"} 0
portcullis_ratelimit_concurrency_acquires_total{limiter="per_ip_ws",result="refused"} 1
# HELP portcullis_ratelimit_concurrency_in_use Concurrency slots held over all keys.
# TYPE portcullis_ratelimit_concurrency_in_use gauge
portcullis_ratelimit_concurrency_in_use{limiter="per_ip_ws"} 1
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems, err := testutil.CollectAndLint(tt.collector)
			if err != nil || len(problems) > 0 {
				t.Fatalf("lint: %v %v", err, problems)
			}
			if err := testutil.CollectAndCompare(tt.collector, strings.NewReader(tt.want), tt.names...); err != nil {
				t.Fatal(err)
			}
			ch := make(chan *prometheus.Desc, 16)
			tt.collector.Describe(ch)
			close(ch)
			for d := range ch {
				if !strings.Contains(d.String(), `fqName: "portcullis_ratelimit_`) {
					t.Errorf("metric outside portcullis_ratelimit_: %s", d)
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
