package attack

import (
	"context"
	"testing"
	"time"
)

// BenchmarkDriverThroughput measures how many requests (streams for rapid
// reset) each unpaced driver gets through a loopback origin in one second,
// reported as req/s. Run with -benchtime=1x; each iteration is a 1 s Run.
func BenchmarkDriverThroughput(b *testing.B) {
	tests := []struct {
		name   string
		spec   Spec
		h2     bool
		binary string
	}{
		{name: "go_http1", spec: Spec{Kind: KindGetFlood, Tool: ToolGo, Connections: 16}},
		{name: "go_h2c", spec: Spec{Kind: KindH2Flood, Tool: ToolGo, Connections: 4}, h2: true},
		{name: "rapid_reset", spec: Spec{Kind: KindRapidReset, Connections: 1, Paths: []string{"/slow"}}, h2: true},
		{name: "wrk", spec: Spec{Kind: KindGetFlood, Tool: ToolWrk, Connections: 16}, binary: "wrk"},
		{name: "wrk_via_proxy_relay", spec: Spec{Kind: KindGetFlood, Tool: ToolWrk, Connections: 16}, binary: "wrk"},
		{name: "h2load", spec: Spec{Kind: KindH2Flood, Connections: 4}, h2: true, binary: "h2load"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			if tt.binary != "" {
				if err := lookTool(tt.binary, tt.binary); err != nil {
					b.Skip(err)
				}
			}
			proxy := tt.name == "wrk_via_proxy_relay"
			g := newOrigin(b, originOpts{h2c: tt.h2, proxyProtocol: proxy})
			spec := tt.spec
			spec.Duration = time.Second
			var sent uint64
			var took time.Duration
			for b.Loop() {
				begin := time.Now()
				res, err := Run(context.Background(), g.target(proxy), spec, testSources(20000))
				took += time.Since(begin)
				if err != nil {
					b.Fatal(err)
				}
				sent += res.Sent
			}
			b.ReportMetric(float64(sent)/took.Seconds(), "req/s")
		})
	}
}
