package edge

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/portcullis/portcullis/internal/filter"
)

// deadlineWriter is an allocation-free http.ResponseWriter with the write
// deadline method of net/http's writers, a no-op that records the
// deadlines set when record is on.
type deadlineWriter struct {
	nopWriter
	record bool
	set    []time.Time
}

func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	if w.record {
		w.set = append(w.set, t)
	}
	return nil
}

// h1Writer also has Hijack, so the edge's response writer takes it for
// net/http's HTTP/1 writer (Hijack itself is never called here).
type h1Writer struct{ deadlineWriter }

func (*h1Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("h1Writer: no connection")
}

// TestWriteDeadlineAcrossRequests checks the write deadline of answers
// on successive requests of one connection, in fake time: on
// HTTP/1 with the connection's record it is set once and renewed only
// when less than half of the write idle timeout is left (an expired one
// always is); without the record each request sets its own; on HTTP/2 it
// is armed and cleared around each write.
func TestWriteDeadlineAcrossRequests(t *testing.T) {
	const idle = 30 * time.Second
	for _, tc := range []struct {
		name    string
		h1      bool
		origin  bool            // answers pass through (no rw.answer), as from the origin
		conn    bool            // the handler has the connection's record
		gaps    []time.Duration // before each request after the first
		wantSet []time.Duration // deadlines set, as offsets from the first request (0 = cleared)
	}{
		{name: "h1 keep-alive within half the timeout", h1: true, conn: true,
			gaps: []time.Duration{time.Second, 10 * time.Second}, wantSet: []time.Duration{idle}},
		{name: "h1 keep-alive past half the timeout renews", h1: true, conn: true,
			gaps: []time.Duration{16 * time.Second, time.Second}, wantSet: []time.Duration{idle, 16*time.Second + idle}},
		{name: "h1 keep-alive after the deadline passed renews", h1: true, conn: true,
			gaps: []time.Duration{time.Minute}, wantSet: []time.Duration{idle, time.Minute + idle}},
		{name: "h1 origin answers share the record", h1: true, origin: true, conn: true,
			gaps: []time.Duration{time.Second, 20 * time.Second}, wantSet: []time.Duration{idle, 21*time.Second + idle}},
		{name: "h1 without a connection record, every request", h1: true,
			gaps: []time.Duration{time.Second}, wantSet: []time.Duration{idle, time.Second + idle}},
		{name: "h2 around each write", conn: true,
			gaps: []time.Duration{time.Second}, wantSet: []time.Duration{idle, 0, idle, 0, time.Second + idle, 0, time.Second + idle, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var dw *deadlineWriter
				var w http.ResponseWriter
				if tc.h1 {
					hw := &h1Writer{deadlineWriter{nopWriter: nopWriter{h: http.Header{}}, record: true}}
					dw, w = &hw.deadlineWriter, hw
				} else {
					dw = &deadlineWriter{nopWriter: nopWriter{h: http.Header{}}, record: true}
					w = dw
				}
				var connArmed *time.Time
				if tc.conn {
					connArmed = new(time.Time)
				}
				first := time.Now()
				var rw responseWriter
				for i := 0; i <= len(tc.gaps); i++ {
					if i > 0 {
						time.Sleep(tc.gaps[i-1]) // fake time
					}
					rw.reset(w, idle, time.Now(), connArmed)
					if !tc.origin {
						rw.answer(filter.Block)
					}
					filter.WriteVerdict(&rw, httptestRequest(), "id", filter.Verdict{Action: filter.Block})
					if rw.status != http.StatusForbidden || rw.bytes == 0 {
						t.Fatalf("request %d: status %d, %d bytes", i, rw.status, rw.bytes)
					}
				}
				if len(dw.set) != len(tc.wantSet) {
					t.Fatalf("deadlines set %v, want offsets %v", offsets(dw.set, first), tc.wantSet)
				}
				for i, d := range dw.set {
					want := time.Time{}
					if tc.wantSet[i] != 0 {
						want = first.Add(tc.wantSet[i])
					}
					if !d.Equal(want) {
						t.Fatalf("deadlines set %v, want offsets %v", offsets(dw.set, first), tc.wantSet)
					}
				}
			})
		})
	}
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://t/", nil)
	return r
}

// offsets renders deadlines as offsets from first (0 for a cleared one).
func offsets(ts []time.Time, first time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		if !t.IsZero() {
			out[i] = t.Sub(first)
		}
	}
	return out
}
