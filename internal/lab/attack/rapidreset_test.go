package attack

import (
	"testing"
	"time"
)

// TestRapidReset runs the HTTP/2 rapid-reset frame writer (HANDED F16)
// against an x/net/http2 h2c server whose /slow handler waits for its
// request to end: the server must see the streams reset (handler contexts
// cancelled), every stream marked and carrying a simulated source.
func TestRapidReset(t *testing.T) {
	tests := []struct {
		name        string
		proxy       bool
		rate        float64
		connections int
	}{
		{"paced over X-Forwarded-For", false, 2000, 1},
		{"two connections over PROXY protocol", true, 2000, 2},
		{"unpaced", false, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newOrigin(t, originOpts{h2c: true, proxyProtocol: tt.proxy})
			spec := Spec{Kind: KindRapidReset, Rate: tt.rate, Connections: tt.connections,
				Paths: []string{"/slow"}, Duration: time.Second}
			res := runSpec(t, g, tt.proxy, spec, testSources(64))
			o := g.snapshot()
			resets := g.resets.Load()
			if tt.rate > 0 && !within(res.Sent, uint64(tt.rate), 20, 0.2) {
				t.Errorf("sent %d streams, want about %v", res.Sent, tt.rate)
			}
			if o.requests == 0 || uint64(o.requests) > res.Sent {
				t.Fatalf("origin saw %d requests for %d streams sent", o.requests, res.Sent)
			}
			// Go's server drops a stream reset before its handler runs, so
			// not every stream reaches the handler; most that do are reset
			// while waiting.
			if resets < int64(o.requests)/2 {
				t.Errorf("origin saw %d resets for %d requests, want most reset", resets, o.requests)
			}
			if o.protos[2] != o.requests || o.marked != o.requests {
				t.Errorf("protocols %v, %d of %d marked; want all HTTP/2 and marked", o.protos, o.marked, o.requests)
			}
			if tt.proxy {
				if len(o.peers) != tt.connections || o.xff[""] != o.requests {
					t.Errorf("peers %v, %d XFF values; want %d simulated peers, no X-Forwarded-For", o.peers, len(o.xff), tt.connections)
				}
			} else if len(o.xff) < 32 {
				t.Errorf("%d distinct X-Forwarded-For values, want ≥ 32 of 64", len(o.xff))
			}
			if res.Connections < uint64(tt.connections) {
				t.Errorf("connections %d, want ≥ %d", res.Connections, tt.connections)
			}
			t.Logf("sent %d streams over %d connections (%d errors); origin: %d requests, %d resets", res.Sent, res.Connections, res.Errors, o.requests, resets)
		})
	}
}
