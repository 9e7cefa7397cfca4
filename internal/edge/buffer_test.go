package edge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// value reads a counter.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// pattern returns n bytes that differ with their position, so a body put
// together in the wrong order or from the wrong chunk is noticed.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i/251)
	}
	return p
}

// Test client addresses (RFC 5737 documentation range).
var (
	clientA = netip.MustParseAddr("192.0.2.1")
	clientB = netip.MustParseAddr("192.0.2.2")
	clientC = netip.MustParseAddr("192.0.2.3")
)

func newTestBuffer(t testing.TB, memory, total int64, spool bool, reg prometheus.Registerer) *BodyBuffer {
	t.Helper()
	cfg := BufferConfig{MemoryBytes: memory, TotalBytes: total, Wait: 10 * time.Millisecond}
	if spool {
		cfg.SpoolDir = t.TempDir()
	}
	b, err := NewBodyBuffer(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBodyBufferFill reads bodies of every framing and size class through
// Fill and checks what comes out is byte-exact, where it was kept, and
// that closing returns every byte of memory and disk.
func TestBodyBufferFill(t *testing.T) {
	const memCap = 64 << 10
	tests := []struct {
		name     string
		size     int
		declared bool  // Content-Length known
		spool    bool  // spooling on
		cap      int64 // route cap (0 = none)
		spoolCap int64 // spool budget (0 = default)
		fail     error // the client's error after its bytes (nil = clean end)

		wantErr       error // errors.Is target
		wantTooLarge  int64 // *BodyTooLargeError.Limit
		wantSpooled   bool
		wantStreaming bool
	}{
		{name: "small form, Content-Length", size: 200, declared: true, spool: true},
		{name: "small form, chunked", size: 200, spool: true},
		{name: "empty chunked body", size: 0, spool: true},
		{name: "chunked in memory", size: 50_000, spool: true},
		{name: "exactly the memory cap, chunked: no spool file", size: memCap, spool: true},
		{name: "exactly the memory cap, Content-Length", size: memCap, declared: true, spool: true},
		{name: "Content-Length above the memory cap is spooled", size: 200_000, declared: true, spool: true, wantSpooled: true},
		{name: "chunked body outgrowing memory is spooled", size: 300_001, spool: true, wantSpooled: true},
		{name: "one byte over the memory cap, chunked", size: memCap + 1, spool: true, wantSpooled: true},
		{name: "spooling off: Content-Length above the cap streams", size: 200_000, declared: true, wantErr: ErrNotBuffered},
		{name: "spooling off: chunked streams after the first cap bytes", size: 200_000, wantStreaming: true},
		{name: "chunked over the route cap is 413", size: 100_000, spool: true, cap: 80_000, wantTooLarge: 80_000},
		{name: "chunked over the whole spool is 413", size: 300_000, spool: true, spoolCap: 200_000, wantTooLarge: 200_000},
		{name: "Content-Length over the whole spool streams", size: 300_000, declared: true, spool: true, spoolCap: 200_000, wantErr: ErrNotBuffered},
		{name: "client gone mid-body (memory)", size: 1000, spool: true, fail: io.ErrUnexpectedEOF, wantErr: io.ErrUnexpectedEOF},
		{name: "client gone mid-body (spool)", size: 100_000, spool: true, fail: io.ErrUnexpectedEOF, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := BufferConfig{MemoryBytes: memCap, TotalBytes: 1 << 20, SpoolTotalBytes: tc.spoolCap, Wait: time.Millisecond}
			if tc.spool {
				cfg.SpoolDir = t.TempDir()
			}
			b, err := NewBodyBuffer(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			data := pattern(tc.size)
			var src io.Reader = iotest.HalfReader(bytes.NewReader(data))
			if tc.fail != nil {
				src = io.MultiReader(src, iotest.ErrReader(tc.fail))
			}
			if tc.cap > 0 {
				src = &bodyReader{rc: io.NopCloser(src), limit: tc.cap}
			}
			cl := int64(-1)
			if tc.declared {
				cl = int64(tc.size)
			}
			body, err := b.Fill(context.Background(), clientA, src, cl)
			var tl *BodyTooLargeError
			switch {
			case tc.wantTooLarge > 0:
				if !errors.As(err, &tl) || tl.Limit != tc.wantTooLarge {
					t.Fatalf("error %v, want body too large (limit %d)", err, tc.wantTooLarge)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("Fill: %v", err)
			}
			if err != nil {
				if m, d := b.InUse(); m != 0 || d != 0 {
					t.Fatalf("after a failed Fill: %d bytes of memory and %d of disk still reserved", m, d)
				}
				return
			}
			if body.Spooled() != tc.wantSpooled || body.Streaming() != tc.wantStreaming {
				t.Fatalf("spooled %v streaming %v, want %v %v", body.Spooled(), body.Streaming(), tc.wantSpooled, tc.wantStreaming)
			}
			if !tc.wantStreaming && body.Len() != int64(tc.size) {
				t.Fatalf("Len %d, want %d", body.Len(), tc.size)
			}
			got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(body, 1000)))
			if err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, rest...); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, not the %d sent (first difference at %d)", len(got), len(data), firstDiff(got, data))
			}
			body.Close()
			if m, d := b.InUse(); m != 0 || d != 0 {
				t.Fatalf("after Close: %d bytes of memory and %d of disk still reserved", m, d)
			}
			if n, err := body.Read(make([]byte, 8)); n != 0 || !errors.Is(err, http.ErrBodyReadAfterClose) {
				t.Fatalf("Read after Close = %d, %v; want 0, ErrBodyReadAfterClose", n, err)
			}
			if tc.spool {
				if left, _ := os.ReadDir(cfg.SpoolDir); len(left) != 0 {
					t.Fatalf("spool directory keeps %d files (want them unlinked at once)", len(left))
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestBodyBufferFull fills the memory budget with a body that is held (as
// one waiting for its origin slot would be) and checks that a new body
// waits the configured time and is refused with ErrBufferFull, or is
// admitted when the held body is released during its wait.
func TestBodyBufferFull(t *testing.T) {
	const wait = 250 * time.Millisecond
	tests := []struct {
		name        string
		releaseHeld bool // release the held body while the second waits
		wantErr     error
		wantWaited  time.Duration
	}{
		{name: "refused after the wait", wantErr: ErrBufferFull, wantWaited: wait},
		{name: "admitted when room frees", releaseHeld: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				b, err := NewBodyBuffer(BufferConfig{MemoryBytes: 64 << 10, TotalBytes: 64 << 10, Wait: wait}, reg)
				if err != nil {
					t.Fatal(err)
				}
				held, err := b.Fill(t.Context(), clientA, bytes.NewReader(pattern(36<<10)), 36<<10)
				if err != nil {
					t.Fatal(err)
				}
				if m, _ := b.InUse(); m != 36<<10 {
					t.Fatalf("held body reserves %d bytes, want %d (one 32 KiB and one 4 KiB chunk)", m, 36<<10)
				}
				type result struct {
					body   *BufferedBody
					err    error
					waited time.Duration
				}
				done := make(chan result, 1)
				go func() {
					start := time.Now()
					body, err := b.Fill(t.Context(), clientB, bytes.NewReader(pattern(40<<10)), 40<<10)
					done <- result{body, err, time.Since(start)}
				}()
				synctest.Wait() // the second body is waiting for room
				if tc.releaseHeld {
					held.Close()
				}
				r := <-done
				if !errors.Is(r.err, tc.wantErr) || (tc.wantErr == nil && r.err != nil) {
					t.Fatalf("second body: %v, want %v", r.err, tc.wantErr)
				}
				if r.waited != tc.wantWaited {
					t.Fatalf("second body waited %s, want %s", r.waited, tc.wantWaited)
				}
				refused := value(t, b.metrics.refused[0])
				if want := map[bool]float64{true: 1, false: 0}[tc.wantErr != nil]; refused != want {
					t.Fatalf("refused counter %v, want %v", refused, want)
				}
				if r.body != nil {
					r.body.Close()
				}
				held.Close()
				if m, d := b.InUse(); m != 0 || d != 0 {
					t.Fatalf("after Close: %d/%d bytes reserved", m, d)
				}
			})
		})
	}
}

// TestBufferMetrics checks the counters after a memory body, a spooled
// body, a body spilled from a full memory and a refusal, and lints the
// names (Prometheus conventions, portcullis_edge_ prefix).
func TestBufferMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, err := NewBodyBuffer(BufferConfig{MemoryBytes: 4 << 10, TotalBytes: 8 << 10, SpoolDir: t.TempDir(), SpoolTotalBytes: 100_000,
		Wait: 10 * time.Millisecond}, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1000, 100_000} {
		body, err := b.Fill(context.Background(), clientA, bytes.NewReader(pattern(n)), int64(n))
		if err != nil {
			t.Fatal(err)
		}
		body.Close()
	}
	// 8 KiB in all: two held 4 KiB bodies fill it, a third spills to the
	// spool (reserving 64 KiB of its 100 kB), a fourth finds both full and
	// is refused.
	for _, h := range []struct {
		client netip.Addr
		size   int
	}{{clientA, 4 << 10}, {clientB, 4 << 10}, {clientC, 10}} {
		held, err := b.Fill(context.Background(), h.client, bytes.NewReader(pattern(h.size)), int64(h.size))
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
	}
	if _, err := b.Fill(context.Background(), netip.MustParseAddr("192.0.2.4"), bytes.NewReader(pattern(10)), -1); !errors.Is(err, errMemoryFull) {
		t.Fatalf("want ErrBufferFull (memory), got %v", err)
	}
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{name: "memory bytes", got: value(t, b.metrics.bytes[0]), want: 1000 + 8<<10},
		{name: "disk bytes", got: value(t, b.metrics.bytes[1]), want: 100_000 + 10},
		{name: "refused (memory)", got: value(t, b.metrics.refused[0]), want: 1},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"portcullis_edge_request_buffer_bytes_total", "portcullis_edge_request_buffer_refused_total", "portcullis_edge_request_buffer_in_use_bytes"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// FuzzBufferedBody fills bodies of arbitrary content, framing and read
// pattern and checks they read back byte-exact and release everything.
func FuzzBufferedBody(f *testing.F) {
	f.Add([]byte("amount=10&name=Ada"), false, uint16(0), uint8(1))
	f.Add(bytes.Repeat([]byte("x"), 5000), true, uint16(4), uint8(3))
	f.Add(bytes.Repeat([]byte("yz"), 40_000), false, uint16(4), uint8(255))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, declared bool, memK uint16, readSize uint8) {
		mem := int64(4+memK%64) << 10
		b, err := NewBodyBuffer(BufferConfig{MemoryBytes: mem, TotalBytes: 4 * mem, SpoolDir: dir, Wait: time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cl := int64(-1)
		if declared {
			cl = int64(len(data))
		}
		body, err := b.Fill(context.Background(), clientA, iotest.HalfReader(bytes.NewReader(data)), cl)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, int(readSize)+1)
		for {
			n, err := body.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, sent %d (first difference at %d)", len(got), len(data), firstDiff(got, data))
		}
		body.Close()
		if m, d := b.InUse(); m != 0 || d != 0 {
			t.Fatalf("after Close: %d/%d bytes reserved", m, d)
		}
	})
}

// BenchmarkFill buffers bodies of typical sizes (memory up to 1 MiB, spool
// above) and reads them back, as the origin transport does.
func BenchmarkFill(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
	}{{"2KiB_form", 2 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}, {"4MiB_spooled", 4 << 20}} {
		b.Run(tc.name, func(b *testing.B) {
			buf := newTestBuffer(b, 1<<20, 64<<20, true, nil)
			data := pattern(tc.size)
			rd := bytes.NewReader(data)
			sink := make([]byte, 32<<10)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(data)
				body, err := buf.Fill(context.Background(), clientA, rd, int64(tc.size))
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := body.Read(sink); err != nil {
						break
					}
				}
				body.Close()
			}
		})
	}
}
