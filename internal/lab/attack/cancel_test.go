package attack

import (
	"context"
	"testing"
	"time"
)

// TestRunStopsWithContext checks that every driver returns soon after its
// context ends, without an error and with what it saw so far, however long
// the spec's duration.
func TestRunStopsWithContext(t *testing.T) {
	tests := []struct {
		name   string
		spec   Spec
		binary string
		pkg    string
		h2     bool
		lossy  bool // the tool prints nothing when interrupted
	}{
		{name: "go flood", spec: Spec{Kind: KindGetFlood, Tool: ToolGo, Rate: 100, Connections: 2}},
		{name: "go slowloris", spec: Spec{Kind: KindSlowloris, Tool: ToolGo, Connections: 4}},
		{name: "rapid reset", spec: Spec{Kind: KindRapidReset, Rate: 100, Paths: []string{"/slow"}}, h2: true},
		{name: "wrk", spec: Spec{Kind: KindGetFlood, Tool: ToolWrk, Connections: 2}, binary: "wrk", pkg: "wrk"},
		{name: "h2load", spec: Spec{Kind: KindH2Flood, Connections: 1}, binary: "h2load", pkg: "nghttp2-client", h2: true, lossy: true},
		{name: "slowhttptest", spec: Spec{Kind: KindSlowloris, Connections: 4}, binary: "slowhttptest", pkg: "slowhttptest"},
		{name: "during the start delay", spec: Spec{Kind: KindGetFlood, Tool: ToolGo, Start: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.binary != "" {
				needTool(t, tt.binary, tt.pkg)
			}
			g := newOrigin(t, originOpts{h2c: tt.h2})
			spec := tt.spec
			spec.Duration = time.Minute
			ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
			defer cancel()
			begin := time.Now()
			res, err := Run(ctx, g.target(false), spec, testSources(8))
			took := time.Since(begin)
			if err != nil {
				t.Fatalf("Run = %v, want nil after the context ended", err)
			}
			// In-flight requests get requestTimeout; tools get SIGINT and
			// at most 3 s before being killed.
			if took > 4*time.Second {
				t.Errorf("Run took %v after a 700 ms context", took)
			}
			if spec.Start == 0 && !tt.lossy && res.Sent == 0 {
				t.Errorf("Result %+v, want what was sent before the end", res)
			}
		})
	}
}
