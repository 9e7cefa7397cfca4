package attack

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRunRefusesNonLoopback(t *testing.T) {
	spec := Spec{Kind: KindGetFlood, Tool: ToolGo, Duration: time.Second}
	tests := []struct {
		name string
		url  string // "" = nil URL
	}{
		{"nil URL", ""},
		{"public address", "http://192.0.2.1:80/"},
		{"private address", "http://10.0.0.1:8080/"},
		{"host name", "http://example.org/"},
		{"https", "https://127.0.0.1:8443/"},
		{"unspecified", "http://0.0.0.0:80/"},
		{"zoned link-local", "http://[fe80::1%25lo]:80/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u *url.URL
			if tt.url != "" {
				var err error
				if u, err = url.Parse(tt.url); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Run(t.Context(), Target{URL: u}, spec, nil)
			if !errors.Is(err, ErrNotLoopback) {
				t.Fatalf("Run(%q) = %v, want ErrNotLoopback", tt.url, err)
			}
		})
	}
	for _, ok := range []string{"http://127.0.0.1:1/", "http://[::1]:1/", "http://localhost:1/", "http://127.0.0.2:1/"} {
		u, _ := url.Parse(ok)
		if _, err := loopbackAddr(u); err != nil {
			t.Errorf("loopbackAddr(%q) = %v, want ok", ok, err)
		}
	}
}

func TestRunToolMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	u, _ := url.Parse("http://127.0.0.1:1/")
	tests := []struct {
		name string
		spec Spec
		pkg  string
	}{
		{"wrk", Spec{Kind: KindGetFlood, Duration: time.Second}, "apt-get install wrk"},
		{"h2load", Spec{Kind: KindH2Flood, Duration: time.Second}, "apt-get install nghttp2-client"},
		{"slowhttptest", Spec{Kind: KindSlowloris, Duration: time.Second}, "apt-get install slowhttptest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(t.Context(), Target{URL: u}, tt.spec, nil)
			if !errors.Is(err, ErrToolMissing) || !strings.Contains(err.Error(), tt.pkg) {
				t.Fatalf("Run = %v, want ErrToolMissing naming %q", err, tt.pkg)
			}
		})
	}
}

// TestGoFlood runs the in-process generator for each HTTP kind against a
// counting origin and checks the marker, the source rotation and that the
// client-side counts agree with what arrived.
func TestGoFlood(t *testing.T) {
	tests := []struct {
		name   string
		spec   Spec
		h2     bool
		marker string
		check  func(t *testing.T, o seen)
	}{
		{name: "get flood paced", spec: Spec{Kind: KindGetFlood, Rate: 400, Connections: 8, Paths: []string{"/", "/news"}},
			check: func(t *testing.T, o seen) {
				if o.paths["/"] == 0 || o.paths["/news"] == 0 {
					t.Errorf("paths = %v, want both / and /news", o.paths)
				}
			}},
		{name: "distributed flood unpaced", spec: Spec{Kind: KindDistributedFlood, Connections: 16}},
		{name: "cache busting", spec: Spec{Kind: KindCacheBusting, Rate: 300, Connections: 4, Paths: []string{"/page?x=1"}},
			check: func(t *testing.T, o seen) {
				if len(o.paths) < o.requests*9/10 {
					t.Errorf("%d distinct request URIs for %d requests, want nearly all distinct", len(o.paths), o.requests)
				}
				for p := range o.paths {
					if !strings.HasPrefix(p, "/page?x=1&cb=") {
						t.Fatalf("path %q lacks the cache-busting parameter", p)
					}
				}
			}},
		{name: "login flood posts forms", spec: Spec{Kind: KindLoginFlood, Rate: 300, Connections: 4, Paths: []string{"/login"}},
			check: func(t *testing.T, o seen) {
				if o.methods["POST"] != o.requests || o.forms != o.requests {
					t.Errorf("methods %v, %d credential forms, want all %d requests POSTed forms", o.methods, o.forms, o.requests)
				}
			}},
		{name: "flash crowd is marked crowd", spec: Spec{Kind: KindFlashCrowd, Rate: 200, Connections: 8}, marker: ClassCrowd},
		{name: "h2 flood over h2c", spec: Spec{Kind: KindH2Flood, Tool: ToolGo, Rate: 400, Connections: 2}, h2: true,
			check: func(t *testing.T, o seen) {
				if o.protos[2] != o.requests {
					t.Errorf("protocols %v, want all %d requests over HTTP/2", o.protos, o.requests)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newOrigin(t, originOpts{h2c: tt.h2, marker: tt.marker})
			spec := tt.spec
			spec.Tool, spec.Duration = ToolGo, 1200*time.Millisecond
			sources := testSources(500)
			res := runSpec(t, g, false, spec, sources)
			o := g.snapshot()
			if o.requests == 0 {
				t.Fatal("origin saw no requests")
			}
			// The Go driver waits for every response, so the counts agree
			// exactly.
			if res.Sent != uint64(o.requests) || sum(res.Statuses) != uint64(o.requests) || res.Errors != 0 {
				t.Errorf("Result sent %d, %d responses, %d errors; origin saw %d", res.Sent, sum(res.Statuses), res.Errors, o.requests)
			}
			if res.Statuses[404] != uint64(o.statuses[404]) {
				t.Errorf("Result 404s = %d, origin answered %d", res.Statuses[404], o.statuses[404])
			}
			if o.marked != o.requests || o.hosts[g.host()] != o.requests {
				t.Errorf("%d of %d requests carried the marker; Host headers %v", o.marked, o.requests, o.hosts)
			}
			if want := min(o.requests, len(sources)) * 9 / 10; len(o.xff) < want {
				t.Errorf("%d distinct X-Forwarded-For values, want ≥ %d", len(o.xff), want)
			}
			if spec.Rate > 0 {
				want := uint64(spec.Rate * spec.Duration.Seconds())
				if !within(res.Sent, want, 10, 0.2) {
					t.Errorf("sent %d at %v/s for %v, want about %d", res.Sent, spec.Rate, spec.Duration, want)
				}
			}
			if res.Connections == 0 || res.Connections > uint64(spec.Connections)+1 {
				t.Errorf("Connections = %d, want 1..%d (kept alive)", res.Connections, spec.Connections)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

// TestGoFloodProxyProtocol checks that in PROXY mode each connection
// claims a simulated source (seen by internal/clientip's listener as the
// peer) and no X-Forwarded-For is sent.
func TestGoFloodProxyProtocol(t *testing.T) {
	tests := []struct {
		name      string
		sources   int
		wantPeers int // at least
	}{
		{"more sources than workers rotates connections", 200, 150},
		{"fewer sources than workers", 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newOrigin(t, originOpts{proxyProtocol: true})
			spec := Spec{Kind: KindDistributedFlood, Tool: ToolGo, Rate: 250, Connections: 4, Duration: time.Second}
			sources := testSources(tt.sources)
			res := runSpec(t, g, true, spec, sources)
			o := g.snapshot()
			if len(o.peers) < tt.wantPeers {
				t.Errorf("%d distinct peers, want ≥ %d", len(o.peers), tt.wantPeers)
			}
			for p := range o.peers {
				if p.IsLoopback() {
					t.Errorf("origin saw loopback peer %v: PROXY header missing", p)
				}
			}
			if o.xff[""] != o.requests {
				t.Errorf("X-Forwarded-For values %d, want none in PROXY mode", len(o.xff))
			}
			if res.Sent != uint64(o.requests) {
				t.Errorf("sent %d, origin saw %d", res.Sent, o.requests)
			}
		})
	}
}

// TestRunPulse checks that a pulsed vector sends in bursts: two 300 ms
// bursts at a paced rate send about twice a burst's worth, and Start delays
// the first.
func TestRunPulse(t *testing.T) {
	g := newOrigin(t, originOpts{})
	spec := Spec{Kind: KindGetFlood, Tool: ToolGo, Rate: 200, Connections: 2, Start: 100 * time.Millisecond,
		Duration: 900 * time.Millisecond, Pulse: &Pulse{On: 300 * time.Millisecond, Off: 300 * time.Millisecond}}
	begin := time.Now()
	res := runSpec(t, g, false, spec, testSources(10))
	if took := time.Since(begin); took < 900*time.Millisecond {
		t.Errorf("Run took %v, want ≥ start + last burst end (900 ms)", took)
	}
	// 2 bursts × 0.3 s × 200/s = 120, versus 180 if it ran continuously.
	if !within(res.Sent, 120, 10, 0.2) {
		t.Errorf("sent %d, want about 120 (two 300 ms bursts at 200/s)", res.Sent)
	}
	if o := g.snapshot(); uint64(o.requests) != res.Sent {
		t.Errorf("origin saw %d, sent %d", o.requests, res.Sent)
	}
}

// TestRunNoSources checks that without sources no forwarding header is
// sent.
func TestRunNoSources(t *testing.T) {
	g := newOrigin(t, originOpts{})
	res := runSpec(t, g, false, Spec{Kind: KindGetFlood, Tool: ToolGo, Rate: 100, Connections: 1, Duration: 300 * time.Millisecond}, []netip.Addr{{}})
	if o := g.snapshot(); res.Sent == 0 || o.xff[""] != o.requests {
		t.Errorf("sent %d, XFF %v; want requests without X-Forwarded-For", res.Sent, o.xff)
	}
}
