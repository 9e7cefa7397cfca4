package app

import (
	"bufio"
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestH2ErrorsCounted: the HTTP/2 errors net/http's server counts (here a
// PING frame on a stream, a protocol error) show in
// portcullis_edge_h2_errors_total by type, so an operator sees net/http's
// own guards (too_many_early_resets) at work.
func TestH2ErrorsCounted(t *testing.T) {
	s := startShield(t, newOrigin(t), nil)
	c := dialFrom(t, "127.0.0.2", s.Addr)
	bw := bufio.NewWriter(c)
	fr := http2.NewFramer(bw, c)
	io.WriteString(bw, http2.ClientPreface)
	fr.WriteSettings()
	fr.WriteRawFrame(http2.FramePing, 0, 1, make([]byte, 8)) // PING must be on stream 0
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"type": "frame_ping_has_stream"}
	if !waitUntil(5*time.Second, func() bool { return s.counter(t, "portcullis_edge_h2_errors_total", labels) >= 1 }) {
		t.Fatalf("portcullis_edge_h2_errors_total%v = %v after a PING on stream 1, want ≥ 1", labels, s.counter(t, "portcullis_edge_h2_errors_total", labels))
	}
}
