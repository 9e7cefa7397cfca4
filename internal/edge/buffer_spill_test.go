package edge

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Spilling: when a few networks at their prefix shares fill the memory
// budget, a body that would be kept in memory goes to the (far larger)
// spool at once instead of waiting for memory and getting 503; only when
// the spool is full too (or the client is over a share) is it refused
// (HANDED F06, F15 slow POST; review finding 5).

// memoryFlood is eight addresses, two in each of four /24s: each holding
// one 64 KiB body (its address share, its prefix's half) they fill a
// 512 KiB memory budget exactly.
func memoryFlood() []netip.Addr {
	var a []netip.Addr
	for _, f := range []string{"198.51.100.%d", "198.51.101.%d", "198.51.102.%d", "198.51.103.%d"} {
		a = append(a, addrs(2, f)...)
	}
	return a
}

// TestBufferMemoryFullSpills fills the memory budget from four networks,
// each at its prefix share, and sends one more body: it spills to the
// spool at once (no memory charged, its declared length and at least
// spillReserve of spool reserved) and reads back byte-exact, unless the
// spool has no room for it either (wait, then 503, or taken in memory if
// a memory body ends meanwhile) or the client is over its own memory or
// spool share (wait, then 429).
func TestBufferMemoryFullSpills(t *testing.T) {
	const (
		mem, total = 64 << 10, 512 << 10 // 64 KiB an address, 128 KiB a prefix
		wait       = 250 * time.Millisecond
	)
	outsider := netip.MustParseAddr("203.0.113.7")
	type spooled struct {
		addr netip.Addr
		size int
	}
	tests := []struct {
		name         string
		spoolTotal   int64     // 0 = 16 × total (8 MiB: 1 MiB an address, 2 MiB a prefix)
		spoolHolders []spooled // bodies spooled before the memory flood, held
		room         bool      // the flood leaves 32 KiB of memory free
		client       netip.Addr
		size         int
		declared     bool
		releaseHeld  bool // a flood body ends while the client waits

		wantErr     error
		wantWaited  time.Duration
		wantSpooled bool
	}{
		{name: "a form from another network spools at once", client: outsider, size: 20, declared: true, wantSpooled: true},
		{name: "a chunked form spools at once", client: outsider, size: 20, wantSpooled: true},
		{name: "a body at the memory cap spools at once", client: outsider, size: mem, declared: true, wantSpooled: true},
		{name: "memory full mid-body: the chunks read so far move to the spool", room: true, client: outsider, size: 40 << 10, declared: true, wantSpooled: true},
		{name: "memory full mid-body, chunked", room: true, client: outsider, size: 40 << 10, wantSpooled: true},
		{name: "a large upload spools with its copy buffer outside the memory budget", client: outsider, size: 200_000, declared: true, wantSpooled: true},
		{name: "memory and spool full: waits, then 503",
			spoolTotal: 200_000, spoolHolders: []spooled{{netip.MustParseAddr("192.0.2.9"), 150_000}},
			client: outsider, size: 20, declared: true, wantErr: errMemoryFull, wantWaited: wait},
		{name: "memory and spool full, a memory body ends during the wait: taken in memory",
			spoolTotal: 200_000, spoolHolders: []spooled{{netip.MustParseAddr("192.0.2.9"), 150_000}},
			client: outsider, size: 20, declared: true, releaseHeld: true},
		{name: "the client over its own memory share does not spill: waits, then 429",
			client: memoryFlood()[0], size: 20, declared: true, wantErr: ErrBufferShareFull, wantWaited: wait},
		{name: "the client's network over its spool share: waits, then 429",
			spoolHolders: []spooled{{netip.MustParseAddr("203.0.113.1"), 1 << 20}, {netip.MustParseAddr("203.0.113.2"), 1 << 20}},
			client:       outsider, size: 20, declared: true, wantErr: errPrefixShareFull, wantWaited: wait},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := NewBodyBuffer(BufferConfig{MemoryBytes: mem, TotalBytes: total, SpoolTotalBytes: tc.spoolTotal,
					SpoolDir: t.TempDir(), Wait: wait}, nil)
				if err != nil {
					t.Fatal(err)
				}
				var held []*BufferedBody
				defer func() {
					for _, body := range held {
						body.Close()
					}
				}()
				for _, h := range tc.spoolHolders {
					body, err := b.Fill(t.Context(), h.addr, bytes.NewReader(pattern(h.size)), int64(h.size))
					if err != nil || !body.Spooled() {
						t.Fatalf("spooling %d bytes for %v: %v", h.size, h.addr, err)
					}
					held = append(held, body)
				}
				flooders := memoryFlood()
				bodies, refused := flood(t, b, flooders, 1, mem)
				held = append(held, bodies...)
				if len(refused) != 0 {
					t.Fatalf("filling memory: %v", refused[0])
				}
				if tc.room { // one flooder holds half a body: 32 KiB free
					held[len(tc.spoolHolders)].Close()
					body, err := b.Fill(t.Context(), flooders[0], bytes.NewReader(pattern(32<<10)), 32<<10)
					if err != nil {
						t.Fatal(err)
					}
					held = append(held, body)
				}
				memBefore, diskBefore := b.InUse()
				if wantMem := int64(total) - map[bool]int64{true: 32 << 10}[tc.room]; memBefore != wantMem {
					t.Fatalf("the flood holds %d bytes of memory, want %d", memBefore, wantMem)
				}

				type result struct {
					body   *BufferedBody
					err    error
					waited time.Duration
				}
				done := make(chan result, 1)
				data := pattern(tc.size)
				cl := int64(-1)
				if tc.declared {
					cl = int64(tc.size)
				}
				go func() {
					start := time.Now()
					body, err := b.Fill(t.Context(), tc.client, bytes.NewReader(data), cl)
					done <- result{body, err, time.Since(start)}
				}()
				synctest.Wait()
				if tc.releaseHeld {
					held[len(held)-1].Close()
				}
				r := <-done
				if tc.wantErr != nil {
					if !errors.Is(r.err, tc.wantErr) {
						t.Fatalf("Fill: %v, want %v", r.err, tc.wantErr)
					}
				} else if r.err != nil {
					t.Fatalf("Fill: %v", r.err)
				}
				if r.waited != tc.wantWaited {
					t.Fatalf("waited %s, want %s", r.waited, tc.wantWaited)
				}
				if r.body != nil {
					if r.body.Spooled() != tc.wantSpooled {
						t.Fatalf("spooled %v, want %v", r.body.Spooled(), tc.wantSpooled)
					}
					if tc.wantSpooled {
						memAfter, diskAfter := b.InUse()
						if memAfter != memBefore {
							t.Fatalf("the spilled body holds %d bytes of memory", memAfter-memBefore)
						}
						if got, want := diskAfter-diskBefore, max(spillReserve, int64(tc.size)); got != want {
							t.Fatalf("the spilled body reserves %d bytes of spool, want %d", got, want)
						}
					}
					if got, _ := io.ReadAll(r.body); !bytes.Equal(got, data) {
						t.Fatalf("read back %d bytes, sent %d (first difference at %d)", len(got), len(data), firstDiff(got, data))
					}
					r.body.Close()
				}
				for _, body := range held {
					body.Close()
				}
				checkAllReleased(t, b)
			})
		})
	}
}

// TestBufferSpilledFormHTTP sends POSTs through the edge handler while four
// networks at their prefix shares fill the memory budget: a form from
// another network is spooled and reaches the origin byte-exact; a
// flooding address over its own share gets 429, and with spooling off
// the form gets 503 (both with Retry-After and Connection: close, never
// the origin).
func TestBufferSpilledFormHTTP(t *testing.T) {
	const mem, total = 64 << 10, 512 << 10
	form := []byte("name=alice&msg=hello&amount=10")
	tests := []struct {
		name       string
		spool      bool
		client     netip.Addr
		wantStatus int
		wantDisk   float64 // body bytes spooled (metric)
	}{
		{name: "a form from another network: spooled, served byte-exact", spool: true,
			client: netip.MustParseAddr("203.0.113.7"), wantStatus: http.StatusOK, wantDisk: float64(len(form))},
		{name: "an IPv6 form: spooled, served byte-exact", spool: true,
			client: netip.MustParseAddr("2001:db8:ffff::7"), wantStatus: http.StatusOK, wantDisk: float64(len(form))},
		{name: "a flooding address over its share: 429", spool: true,
			client: memoryFlood()[0], wantStatus: http.StatusTooManyRequests},
		{name: "spooling off: 503",
			client: netip.MustParseAddr("203.0.113.7"), wantStatus: http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := BufferConfig{MemoryBytes: mem, TotalBytes: total, Wait: 50 * time.Millisecond}
				if tc.spool {
					cfg.SpoolDir = t.TempDir()
				}
				b, err := NewBodyBuffer(cfg, prometheus.NewRegistry())
				if err != nil {
					t.Fatal(err)
				}
				held, refused := flood(t, b, memoryFlood(), 1, mem)
				defer func() {
					for _, body := range held {
						body.Close()
					}
				}()
				if len(refused) != 0 {
					t.Fatalf("filling memory: %v", refused[0])
				}
				if err := newRecordingHandler(t, b).post(tc.client, form, tc.wantStatus); err != nil {
					t.Fatal(err)
				}
				if got := value(t, b.metrics.bytes[1]); got != tc.wantDisk {
					t.Fatalf("%v body bytes spooled, want %v", got, tc.wantDisk)
				}
				if m, d := b.InUse(); m != total || d != 0 {
					t.Fatalf("after the request: %d bytes of memory (want the flood's %d) and %d of spool (want 0) reserved", m, total, d)
				}
			})
		})
	}
}
