package attack

import (
	"strings"
	"testing"
	"time"
)

// TestSlowAttacks (HANDED F15) runs slowloris, slow POST and slow read with
// slowhttptest and with the Go driver against a recording origin, and
// checks from the server side that the requests arrived slowly and
// partially, marked and carrying a simulated source and the target's Host.
func TestSlowAttacks(t *testing.T) {
	const conns = 10
	tests := []struct {
		name          string
		kind          string
		tool          string
		headerTimeout time.Duration
		path          string
		// attack reports whether a server-side connection is one of the
		// attack's, and whether it looks as the attack should.
		attack func(c connSnapshot) (is, ok bool)
		// closedByTarget: the origin cuts the connections, so they count as
		// errors.
		closedByTarget bool
	}{
		{name: "slowloris with slowhttptest", kind: KindSlowloris, tool: ToolSlowhttptest, attack: partialHeaders},
		{name: "slowloris with go", kind: KindSlowloris, tool: ToolGo, attack: partialHeaders},
		{name: "slowloris cut by header timeout, slowhttptest", kind: KindSlowloris, tool: ToolSlowhttptest,
			headerTimeout: 300 * time.Millisecond, attack: cutHeaders, closedByTarget: true},
		{name: "slowloris cut by header timeout, go", kind: KindSlowloris, tool: ToolGo,
			headerTimeout: 300 * time.Millisecond, attack: cutHeaders, closedByTarget: true},
		{name: "slow post with slowhttptest", kind: KindSlowPost, tool: ToolSlowhttptest, attack: partialBody},
		{name: "slow post with go", kind: KindSlowPost, tool: ToolGo, attack: partialBody},
		{name: "slow read with slowhttptest", kind: KindSlowRead, tool: ToolSlowhttptest, path: "/big", attack: slowReader},
		{name: "slow read with go", kind: KindSlowRead, tool: ToolGo, path: "/big", attack: slowReader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tool == ToolSlowhttptest {
				needTool(t, "slowhttptest", "slowhttptest")
			}
			g := newOrigin(t, originOpts{headerTimeout: tt.headerTimeout})
			spec := Spec{Kind: tt.kind, Tool: tt.tool, Connections: conns, Rate: 100, Duration: 2 * time.Second}
			if tt.path != "" {
				spec.Paths = []string{tt.path}
			}
			res := runSpec(t, g, false, spec, testSources(100))
			var attacks, good int
			for _, c := range g.connRecords() {
				is, ok := tt.attack(c)
				if !is {
					continue
				}
				attacks++
				if !ok {
					t.Errorf("attack connection does not look right: %d reads over %v, %d bytes read, %d written, blocked %v: %q",
						c.reads, c.span, c.readBytes, c.wrote, c.maxBlocked, trim(c.data))
					continue
				}
				if !strings.Contains(c.data, "X-Forwarded-For: 198.18.") {
					t.Errorf("attack connection without a simulated source: %q", trim(c.data))
				}
				if !strings.Contains(c.data, "\r\nHost: "+g.host()+"\r\n") {
					t.Errorf("attack connection without the target's Host %q: %q", g.host(), trim(c.data))
				}
				if !strings.Contains(c.data, "X-Lab-Class: bot") && !strings.Contains(c.data, "lab_class=bot") {
					t.Errorf("attack connection without the marker: %q", trim(c.data))
				}
				good++
			}
			if attacks < conns {
				t.Errorf("origin saw %d attack connections, want %d", attacks, conns)
			}
			if res.Sent < conns || !within(res.Connections, uint64(attacks), 2, 0) {
				t.Errorf("Result sent %d, connections %d; origin saw %d attack connections", res.Sent, res.Connections, attacks)
			}
			if tt.closedByTarget && res.Errors < conns {
				t.Errorf("Result errors %d, want the %d connections the origin cut", res.Errors, conns)
			}
			if !tt.closedByTarget && res.Errors > 0 {
				t.Errorf("Result errors %d, want 0", res.Errors)
			}
		})
	}
}

// partialHeaders: the request line and more header lines over ≥ 2 reads
// spread over ≥ 500 ms, never the end of the header block.
func partialHeaders(c connSnapshot) (bool, bool) {
	if !strings.HasPrefix(c.data, "GET ") || strings.Contains(c.data, "\r\n\r\n") {
		return false, false
	}
	return true, c.reads >= 2 && c.span >= 500*time.Millisecond
}

// cutHeaders: an unfinished header block the origin closed at its header
// timeout, before a second follow-up could arrive.
func cutHeaders(c connSnapshot) (bool, bool) {
	if !strings.HasPrefix(c.data, "GET ") || strings.Contains(c.data, "\r\n\r\n") {
		return false, false
	}
	return true, c.span < time.Second
}

// partialBody: complete headers announcing a large body, of which only a
// few bytes arrived, over ≥ 2 reads spread over ≥ 500 ms.
func partialBody(c connSnapshot) (bool, bool) {
	head, body, ok := strings.Cut(c.data, "\r\n\r\n")
	if !strings.HasPrefix(c.data, "POST ") || !ok {
		return false, false
	}
	return true, strings.Contains(head, "Content-Length: 100000") && len(body) > 0 && len(body) < 100 &&
		c.reads >= 2 && c.span >= 500*time.Millisecond
}

// slowReader: a GET of /big whose 8 MiB response the origin could not
// finish writing in the 2 s run (loopback would take milliseconds), with a
// write blocked ≥ 100 ms. A complete response is a normal reader
// (slowhttptest's availability probe), not an attack connection.
func slowReader(c connSnapshot) (bool, bool) {
	if !strings.HasPrefix(c.data, "GET /big ") || c.wrote >= 8<<20 {
		return false, false
	}
	return true, c.maxBlocked >= 100*time.Millisecond
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
