package attack

import (
	"strings"
	"testing"
	"time"
)

// TestWrk runs the wrk driver (generated Lua) against a counting origin:
// marker on every request, X-Forwarded-For rotating over the sources, and
// wrk's counts matching what arrived.
func TestWrk(t *testing.T) {
	needTool(t, "wrk", "wrk")
	tests := []struct {
		name  string
		spec  Spec
		proxy bool
		check func(t *testing.T, o seen)
	}{
		{name: "get flood", spec: Spec{Kind: KindGetFlood, Connections: 8, Paths: []string{"/", "/about"}},
			check: func(t *testing.T, o seen) {
				if o.paths["/"] == 0 || o.paths["/about"] == 0 {
					t.Errorf("paths = %v, want both", o.paths)
				}
			}},
		{name: "cache busting", spec: Spec{Kind: KindCacheBusting, Connections: 4, Paths: []string{"/a"}},
			check: func(t *testing.T, o seen) {
				if len(o.paths) < o.requests*9/10 {
					t.Errorf("%d distinct URIs for %d requests", len(o.paths), o.requests)
				}
				for p := range o.paths {
					if !strings.HasPrefix(p, "/a?cb=") {
						t.Fatalf("path %q lacks the cache-busting parameter", p)
					}
				}
			}},
		{name: "login flood", spec: Spec{Kind: KindLoginFlood, Connections: 4, Paths: []string{"/login"}},
			check: func(t *testing.T, o seen) {
				if o.methods["POST"] != o.requests || o.forms != o.requests {
					t.Errorf("methods %v, %d forms; want all %d POSTed credential forms", o.methods, o.forms, o.requests)
				}
			}},
		{name: "PROXY protocol through the relay", proxy: true, spec: Spec{Kind: KindGetFlood, Connections: 6},
			check: func(t *testing.T, o seen) {
				if len(o.peers) != 6 || o.xff[""] != o.requests {
					t.Errorf("peers %v, XFF %d values; want 6 simulated peers and no X-Forwarded-For", o.peers, len(o.xff))
				}
				for p := range o.peers {
					if p.IsLoopback() {
						t.Errorf("loopback peer %v: PROXY header missing", p)
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newOrigin(t, originOpts{proxyProtocol: tt.proxy})
			spec := tt.spec
			spec.Duration = 1200 * time.Millisecond // wrk -d 2s, stopped by SIGINT
			sources := testSources(300)
			begin := time.Now()
			res := runSpec(t, g, tt.proxy, spec, sources)
			if took := time.Since(begin); took > 1800*time.Millisecond {
				t.Errorf("Run took %v, want it stopped near 1.2 s", took)
			}
			o := g.snapshot()
			if o.requests < 50 {
				t.Fatalf("origin saw %d requests", o.requests)
			}
			// wrk may have requests in flight when stopped.
			tol := uint64(spec.Connections) + 2
			if !within(res.Sent, uint64(o.requests), tol, 0.01) || !within(sum(res.Statuses), uint64(o.requests), tol, 0.01) {
				t.Errorf("wrk sent %d, %d responses; origin saw %d", res.Sent, sum(res.Statuses), o.requests)
			}
			if !within(res.Statuses[404], uint64(o.statuses[404]), 2, 0.01) {
				t.Errorf("wrk 404s %d, origin answered %d", res.Statuses[404], o.statuses[404])
			}
			if o.marked != o.requests {
				t.Errorf("%d of %d requests carried the marker", o.marked, o.requests)
			}
			if o.hosts[g.host()] != o.requests {
				t.Errorf("Host headers %v, want all %q", o.hosts, g.host())
			}
			if !tt.proxy && len(o.xff) < min(o.requests, len(sources))*9/10 {
				t.Errorf("%d distinct X-Forwarded-For values over %d requests", len(o.xff), o.requests)
			}
			if res.Connections < uint64(spec.Connections) || res.Errors != 0 {
				t.Errorf("connections %d, errors %d; want ≥ %d, 0", res.Connections, res.Errors, spec.Connections)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

// TestH2load runs the h2load driver against an h2c origin: two rounds of
// two processes each claim a source; everything arrives over HTTP/2 with the
// marker.
func TestH2load(t *testing.T) {
	needTool(t, "h2load", "nghttp2-client")
	tests := []struct {
		name      string
		proxy     bool
		wantXFF   int // distinct X-Forwarded-For values, at least
		wantPeers int
	}{
		{"X-Forwarded-For per process and round", false, 4, 1},
		{"PROXY protocol through the relay", true, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newOrigin(t, originOpts{h2c: true, proxyProtocol: tt.proxy})
			spec := Spec{Kind: KindH2Flood, Connections: 2, Duration: 2200 * time.Millisecond}
			res := runSpec(t, g, tt.proxy, spec, testSources(50))
			o := g.snapshot()
			if o.requests < 50 || o.protos[2] != o.requests {
				t.Fatalf("origin saw %d requests, protocols %v; want many, all HTTP/2", o.requests, o.protos)
			}
			if !within(res.Sent, uint64(o.requests), 2*h2loadStreams*uint64(spec.Connections), 0.01) {
				t.Errorf("h2load started %d, origin saw %d", res.Sent, o.requests)
			}
			if got := res.Statuses[200] + res.Statuses[400]; !within(got, uint64(o.requests), 2*h2loadStreams*uint64(spec.Connections), 0.01) {
				t.Errorf("h2load %d responses, origin saw %d", got, o.requests)
			}
			if o.marked != o.requests {
				t.Errorf("%d of %d requests carried the marker", o.marked, o.requests)
			}
			if o.hosts[g.host()] != o.requests {
				t.Errorf("Host headers %v, want all %q", o.hosts, g.host())
			}
			if len(o.xff) < tt.wantXFF || len(o.peers) < tt.wantPeers {
				t.Errorf("%d X-Forwarded-For values, %d peers; want ≥ %d, ≥ %d", len(o.xff), len(o.peers), tt.wantXFF, tt.wantPeers)
			}
		})
	}
}
