package edge

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/clientip"
)

// TestEarlyResetAttribution (case F16): when net/http's own rapid-reset
// guard ends a connection before the shield's handlers counted the reset
// budget (a CPU-starved server), a connection that is resetting streams
// right after is penalised as if the budget had ended it; without the
// guard's report, or for another error type, or after the attribution
// window, the full budget applies.
func TestEarlyResetAttribution(t *testing.T) {
	const budget = 200
	tests := []struct {
		name      string
		errType   string        // reported through NoteH2Error ("" = none)
		after     time.Duration // between the report and the resets
		resets    int
		spread    time.Duration // the resets' span (0 = all at once)
		penalised bool
	}{
		{name: "no guard report: under budget", resets: 100},
		{name: "no guard report: over budget", resets: budget + 1, penalised: true},
		{name: "guard fired: a rapid-reset burst is taken for it", errType: h2EarlyResetError, resets: earlyResetBurst + 1, penalised: true},
		{name: "guard fired: a browser cancelling 25 images is not", errType: h2EarlyResetError, resets: 25},
		{name: "guard fired: a burst at the threshold is not", errType: h2EarlyResetError, resets: earlyResetBurst},
		{name: "guard fired: 150 resets over 5 s are not a burst", errType: h2EarlyResetError, resets: 150, spread: 5 * time.Second},
		{name: "another HTTP/2 error", errType: "bad_frame", resets: 100},
		{name: "guard fired long ago", errType: h2EarlyResetError, after: earlyResetAttribution + time.Second, resets: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := &Runtime{Limits: RequestLimits{H2ResetBudget: budget, H2ResetPenalty: time.Minute}}
			h := NewHandler(rt, nil, slog.New(slog.DiscardHandler))
			var penalised netip.Addr
			h.OnH2Reset(func(_ int, a netip.Addr) { penalised = a })
			client := netip.MustParseAddr("127.0.0.2")
			c1, c2 := net.Pipe()
			defer c2.Close()
			ci := &connInfo{conn: c1, peer: client}
			site := &Site{}
			if tc.errType != "" {
				h.NoteH2Error(tc.errType)
			}
			mono := h.Mono() + int64(tc.after)
			now := time.Now()
			for i := range tc.resets {
				step := time.Duration(0)
				if tc.resets > 1 {
					step = tc.spread * time.Duration(i) / time.Duration(tc.resets-1)
				}
				h.noteReset(ci, rt, site, clientip.Result{Addr: client}, now.Add(step), mono)
			}
			if got := penalised.IsValid(); got != tc.penalised {
				t.Fatalf("penalised %v, want %v", got, tc.penalised)
			}
			if got := h.penalties.remaining(client, mono) > 0; got != tc.penalised {
				t.Errorf("penalty box holds the client: %v, want %v", got, tc.penalised)
			}
		})
	}
}
