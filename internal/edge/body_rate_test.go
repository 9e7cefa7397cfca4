package edge

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"
)

// The minimum body rate over a sliding window (case F15, slow POST; the
// reviewer's fast-then-trickle hole): a fast start buys no credit, and a
// slow but steady body at or above the rate is never cut. Every test runs
// in a synctest bubble: the body's pauses are fake time.

// sendStep is one write of a scripted client: n bytes, after a pause.
type sendStep struct {
	after time.Duration
	n     int
}

// repeat returns k copies of a step.
func repeat(k int, s sendStep) []sendStep {
	out := make([]sendStep, k)
	for i := range out {
		out[i] = s
	}
	return out
}

// scriptedBody is a client body that delivers its steps on (fake) time,
// each as one read, then io.EOF; it counts what it delivered.
type scriptedBody struct {
	steps []sendStep
	data  []byte
	off   int
}

func newScriptedBody(steps ...[]sendStep) *scriptedBody {
	var all []sendStep
	for _, s := range steps {
		all = append(all, s...)
	}
	n := 0
	for _, s := range all {
		n += s.n
	}
	return &scriptedBody{steps: all, data: pattern(n)}
}

func (s *scriptedBody) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := &s.steps[0]
	if st.after > 0 {
		<-time.After(st.after) // fake time inside the bubble
		st.after = 0
	}
	n := copy(p, s.data[s.off:s.off+st.n])
	s.off += n
	if st.n -= n; st.n == 0 {
		s.steps = s.steps[1:]
	}
	return n, nil
}

func (s *scriptedBody) Close() error { return nil }

// Body rate settings of the tests: the defaults.
const (
	testMinRate = 1 << 10
	testGrace   = 5 * time.Second
	testIdle    = 10 * time.Second
)

var (
	// fastMiB is 1 MiB in the first 100 ms.
	fastMiB = repeat(32, sendStep{after: 3 * time.Millisecond, n: 32 << 10})
	// fastEnd is when fastMiB has been sent.
	fastEnd = 32 * 3 * time.Millisecond
)

// readBody reads br to its end in 32 KiB reads, as Fill's chunks and the
// origin transport do, and returns what it read.
func readBody(br io.Reader) ([]byte, error) {
	var got []byte
	p := make([]byte, 32<<10)
	for {
		n, err := br.Read(p)
		got = append(got, p[:n]...)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

// TestBodyRateWindow drives the body reader with scripted clients and
// checks which are cut with ErrSlowBody, and when.
func TestBodyRateWindow(t *testing.T) {
	tests := []struct {
		name  string
		steps [][]sendStep
		// wantCut: the body is cut with ErrSlowBody in [cutFrom, cutBy]
		// after it began; otherwise it is read whole.
		wantCut        bool
		cutFrom, cutBy time.Duration
	}{
		{
			// The reviewer's hole: 1 MiB fast, then a byte every 9 s (under
			// the idle timeout). The average since the start stays above
			// 1 KiB/s for 17 minutes; the window cuts it at the first byte
			// once the fast part has left the window.
			name:    "F15 fast MiB then a byte every 9 s is cut within the window",
			steps:   [][]sendStep{fastMiB, repeat(120, sendStep{after: 9 * time.Second, n: 1})},
			wantCut: true, cutFrom: fastEnd + MinBodyRateWindow, cutBy: fastEnd + MinBodyRateWindow + 9*time.Second,
		},
		{
			name:    "F15 fast 64 KiB then 100 B/s is cut within the window",
			steps:   [][]sendStep{repeat(2, sendStep{after: time.Millisecond, n: 32 << 10}), repeat(1200, sendStep{after: time.Second, n: 100})},
			wantCut: true, cutFrom: MinBodyRateWindow, cutBy: MinBodyRateWindow + 2*time.Second,
		},
		{
			// The average since the start catches this only after 41 s.
			name:    "steady just under the rate is cut once the window is full",
			steps:   [][]sendStep{repeat(120, sendStep{after: time.Second, n: 900})},
			wantCut: true, cutFrom: MinBodyRateWindow, cutBy: MinBodyRateWindow + time.Second,
		},
		{
			name:  "steady at exactly the rate for 3 minutes is never cut",
			steps: [][]sendStep{repeat(180, sendStep{after: time.Second, n: testMinRate})},
		},
		{
			name:  "steady at the rate in quarter-second pieces is never cut",
			steps: [][]sendStep{repeat(600, sendStep{after: 250 * time.Millisecond, n: testMinRate / 4})},
		},
		{
			name:  "steady 10% above the rate, 7 s apart pieces, is never cut",
			steps: [][]sendStep{repeat(30, sendStep{after: 7 * time.Second, n: 7 * testMinRate * 11 / 10})},
		},
		{
			name:  "fast start then steady at the rate is never cut",
			steps: [][]sendStep{fastMiB, repeat(120, sendStep{after: time.Second, n: testMinRate})},
		},
		{
			name:  "bursts of 8 KiB every 5 s (1.6 KiB/s) are never cut",
			steps: [][]sendStep{repeat(40, sendStep{after: 5 * time.Second, n: 8 << 10})},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := newScriptedBody(tc.steps...)
				br := &bodyReader{rc: src, limit: 1 << 30, minRate: testMinRate, grace: testGrace, start: time.Now()}
				got, err := readBody(br)
				took := time.Since(br.start)
				if !tc.wantCut {
					if err != nil {
						t.Fatalf("cut after %s with %d bytes read: %v", took, len(got), err)
					}
					if !bytes.Equal(got, src.data) {
						t.Fatalf("read %d bytes, sent %d (first difference at %d)", len(got), len(src.data), firstDiff(got, src.data))
					}
					return
				}
				if !errors.Is(err, ErrSlowBody) {
					t.Fatalf("after %s and %d of %d bytes: %v, want ErrSlowBody", took, len(got), len(src.data), err)
				}
				if took < tc.cutFrom || took > tc.cutBy {
					t.Fatalf("cut after %s, want between %s and %s", took, tc.cutFrom, tc.cutBy)
				}
				if n, err := br.Read(make([]byte, 8)); n != 0 || !errors.Is(err, ErrSlowBody) {
					t.Fatalf("Read after the cut = %d, %v; want 0, ErrSlowBody", n, err)
				}
			})
		})
	}
}

// serve runs h on req and reports whether the handler dropped the
// exchange (http.ErrAbortHandler: the connection closed or the stream
// reset, as a slow body is answered).
func serve(h http.Handler, w http.ResponseWriter, req *http.Request) (dropped bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			dropped = true
		}
	}()
	h.ServeHTTP(w, req)
	return false
}

// TestSlowBodyThroughHandler sends scripted bodies through the handler
// with the request buffer on: the fast-then-trickle body is cut (408 or,
// where the edge cannot answer mid-body, a drop) and the buffer memory it
// held is released as soon as it is cut (not 17 minutes later); a steady
// body at the minimum rate reaches the origin byte-exact.
func TestSlowBodyThroughHandler(t *testing.T) {
	tests := []struct {
		name       string
		steps      [][]sendStep
		wantCut    bool
		wantHeldBy time.Duration // the buffer is empty again this long after the start
	}{
		{
			name:    "F15 fast 900 KiB then a byte every 9 s is cut",
			steps:   [][]sendStep{repeat(30, sendStep{after: 3 * time.Millisecond, n: 30 << 10}), repeat(120, sendStep{after: 9 * time.Second, n: 1})},
			wantCut: true, wantHeldBy: 20 * time.Second,
		},
		{
			name:  "steady at the minimum rate for a minute: 200",
			steps: [][]sendStep{repeat(60, sendStep{after: time.Second, n: testMinRate})},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				buf := newTestBuffer(t, 1<<20, 64<<20, false, nil)
				var seen []byte
				h := newBodyHandler(t, buf)
				rt := *h.Runtime()
				site := *rt.Default
				site.Origin = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					seen, _ = io.ReadAll(r.Body)
				})
				rt.Default, rt.Sites = &site, []*Site{&site}
				rt.Limits = RequestLimits{BodyIdleTimeout: testIdle, MinBodyRate: testMinRate, BodyGrace: testGrace}
				h.Swap(&rt)

				src := newScriptedBody(tc.steps...)
				req := httptest.NewRequest(http.MethodPost, "http://t/form", src)
				req.ContentLength = int64(len(src.data))
				w := httptest.NewRecorder()
				start := time.Now()
				dropped := serve(h, w, req)
				if cut := dropped || w.Code == http.StatusRequestTimeout; cut != tc.wantCut || (!cut && w.Code != http.StatusOK) {
					t.Fatalf("status %d (dropped %v), want cut %v", w.Code, dropped, tc.wantCut)
				}
				if m, _ := buf.InUse(); m != 0 || buf.Clients() != 0 {
					t.Fatalf("after the response: %d bytes of buffer held by %d clients", m, buf.Clients())
				}
				if tc.wantCut {
					if took := time.Since(start); took > tc.wantHeldBy {
						t.Fatalf("the body held the buffer for %s, want ≤ %s", took, tc.wantHeldBy)
					}
					if seen != nil {
						t.Fatal("the origin was reached by a body cut as too slow")
					}
					return
				}
				if !bytes.Equal(seen, src.data) {
					t.Fatalf("origin got %d bytes, sent %d", len(seen), len(src.data))
				}
			})
		})
	}
}

// TestBodyReaderReadAllocatesNothing checks that a body read costs no
// allocation, with the minimum rate (average and sliding window) on or off.
func TestBodyReaderReadAllocatesNothing(t *testing.T) {
	tests := []struct {
		name    string
		minRate int64
	}{{name: "minimum rate off", minRate: 0}, {name: "minimum rate on", minRate: 1}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := pattern(4 << 10)
			p := make([]byte, len(data))
			rd := bytes.NewReader(data)
			br := &bodyReader{rc: io.NopCloser(rd), limit: 1 << 62, minRate: tc.minRate, start: time.Now()}
			allocs := testing.AllocsPerRun(100, func() {
				rd.Reset(data)
				if _, err := br.Read(p); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("a body read allocates %v times", allocs)
			}
		})
	}
}

// BenchmarkBodyReaderRead is the cost of one body read with the minimum
// rate on (the average and the sliding window): 32 KiB reads from memory.
func BenchmarkBodyReaderRead(b *testing.B) {
	data := pattern(32 << 10)
	p := make([]byte, 32<<10)
	rd := bytes.NewReader(data)
	br := &bodyReader{rc: io.NopCloser(rd), limit: 1 << 62, minRate: 1, grace: 0, start: time.Now()}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(data)
		if _, err := br.Read(p); err != nil {
			b.Fatal(err)
		}
	}
}
