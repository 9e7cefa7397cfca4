package edge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Review tests of the request buffer's address and prefix shares (HANDED
// F06, F15 slow POST) under concurrent, still-arriving bodies.

// trickle is a request body arriving step bytes per Read, one Read every
// every (fake time under synctest), as a slow POST sends it; sample, when
// set, runs before each Read.
type trickle struct {
	data   []byte
	step   int
	every  time.Duration
	sample func()
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.sample != nil {
		r.sample()
	}
	time.Sleep(r.every)
	n := copy(p[:min(len(p), r.step)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestReviewBufferConcurrentSlowFlood: bodies that are still arriving
// (not whole bodies held, as the other share tests use) from many
// addresses of one /64 and one /24 race for the buffer at once, while a
// form and a spooled upload from other networks trickle in beside them.
// At every step of the outsiders' bodies each flooding prefix holds at
// most its share of memory and of the spool; the outsiders' bodies are
// taken whole and byte-exact; every flood body is either taken or refused
// as over a share (429), never as buffer full (503).
func TestReviewBufferConcurrentSlowFlood(t *testing.T) {
	const (
		mem, total = 64 << 10, 512 << 10 // 64 KiB an address, 128 KiB a prefix
		prefixMem  = 2 * (total / PerClientDivisor)
	)
	tests := []struct {
		name     string
		floods   [][]netip.Addr // one list per flooding prefix
		size     int            // each flood body (Content-Length)
		outsider netip.Addr
		outSize  int
		spooled  bool // the outsider's body is above MemoryBytes
	}{
		{name: "memory: 40 addresses of a /64 and 40 of a /24; a form from a third network",
			floods: [][]netip.Addr{addrs(40, "2001:db8:1:2::%x"), addrs(40, "198.51.100.%d")}, size: mem,
			outsider: netip.MustParseAddr("203.0.113.7"), outSize: 2000},
		{name: "memory and spool: flood bodies spool; a 300 kB upload from another /64",
			floods: [][]netip.Addr{addrs(40, "2001:db8:1:2::%x"), addrs(40, "198.51.100.%d")}, size: 200_000,
			outsider: netip.MustParseAddr("2001:db8:9::7"), outSize: 300_000, spooled: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := NewBodyBuffer(BufferConfig{MemoryBytes: mem, TotalBytes: total, Wait: 250 * time.Millisecond, SpoolDir: t.TempDir()}, nil)
				if err != nil {
					t.Fatal(err)
				}
				b.disk.mu.Lock()
				spoolPerPrefix := b.disk.perPrefix
				b.disk.mu.Unlock()
				var mu sync.Mutex
				var errs []error
				var wg sync.WaitGroup
				for _, fl := range tc.floods {
					for _, a := range fl {
						wg.Go(func() {
							src := &trickle{data: pattern(tc.size), step: 4 << 10, every: 100 * time.Millisecond}
							body, err := b.Fill(t.Context(), a, src, int64(tc.size))
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
							if err == nil {
								time.Sleep(time.Minute) // held, as a slow POST's origin exchange
								body.Close()
							}
						})
					}
				}
				check := func() {
					b.mem.mu.Lock()
					defer b.mem.mu.Unlock()
					b.disk.mu.Lock()
					defer b.disk.mu.Unlock()
					for _, fl := range tc.floods {
						k := b.claimOf(fl[0]).prefix
						if got := b.mem.prefixes[k]; got > prefixMem {
							t.Errorf("prefix of %v holds %d bytes of memory, share %d", fl[0], got, prefixMem)
						}
						if got := b.disk.prefixes[k]; got > spoolPerPrefix {
							t.Errorf("prefix of %v holds %d bytes of spool, share %d", fl[0], got, spoolPerPrefix)
						}
					}
				}
				time.Sleep(time.Second) // the flood is under way
				data := pattern(tc.outSize)
				src := &trickle{data: data, step: 8 << 10, every: 50 * time.Millisecond, sample: check}
				body, err := b.Fill(t.Context(), tc.outsider, src, int64(tc.outSize))
				if err != nil {
					t.Fatalf("the outsider's body: %v", err)
				}
				if body.Spooled() != tc.spooled {
					t.Errorf("outsider spooled = %v, want %v", body.Spooled(), tc.spooled)
				}
				if got, _ := io.ReadAll(body); !bytes.Equal(got, data) {
					t.Errorf("outsider's body read back %d bytes, sent %d", len(got), len(data))
				}
				body.Close()
				wg.Wait()
				refused := 0
				for _, err := range errs {
					switch {
					case err == nil:
					case errors.Is(err, ErrBufferShareFull):
						refused++
					default:
						t.Errorf("a flood body got %v, want nil or ErrBufferShareFull", err)
					}
				}
				if refused == 0 {
					t.Errorf("no flood body was refused: the shares were never reached")
				}
				if m, d := b.InUse(); m != 0 || d != 0 {
					t.Errorf("after every body closed: %d bytes of memory, %d of spool still reserved", m, d)
				}
			})
		})
	}
}

// TestReviewBufferSmallFormSurvivesFewNetworks (finding 5): five networks,
// each at its prefix share, fill the memory budget; a small form from
// anyone else must still be taken (spilled to the nearly empty spool), not
// wait and get 503.
func TestReviewBufferSmallFormSurvivesFewNetworks(t *testing.T) {
	const mem, total = 64 << 10, 512 << 10
	nets := func(f string) []netip.Addr {
		var a []netip.Addr
		for i := range 5 {
			a = append(a, addrs(2, fmt.Sprintf(f, i))...)
		}
		return a
	}
	tests := []struct {
		name      string
		attackers []netip.Addr
		outsider  netip.Addr
	}{
		{name: "five IPv4 /24s", attackers: nets("198.51.10%d.%%d"), outsider: netip.MustParseAddr("203.0.113.7")},
		{name: "five /64s of one /56", attackers: nets("2001:db8:0:10%d::%%x"), outsider: netip.MustParseAddr("2001:db8:ffff::7")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, _ := NewBodyBuffer(BufferConfig{MemoryBytes: mem, TotalBytes: total, Wait: 250 * time.Millisecond, SpoolDir: t.TempDir()}, nil)
				held, _ := flood(t, b, tc.attackers, 1, mem)
				defer func() {
					for _, h := range held {
						h.Close()
					}
				}()
				form := []byte("name=alice&msg=hello")
				body, err := b.Fill(t.Context(), tc.outsider, bytes.NewReader(form), int64(len(form)))
				if err != nil {
					t.Fatalf("small form from another network: %v", err) // got: request buffer full (memory), 8 bodies hold 524288/524288
				}
				body.Close()
			})
		})
	}
}
