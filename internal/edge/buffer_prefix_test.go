package edge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/portcullis/portcullis/internal/clientip"
	"github.com/portcullis/portcullis/internal/ratelimit"
)

// The prefix share of the request buffer: the addresses of one network
// (an IPv6 /64 holds 2^64 of them, an IPv4 /24 256) together hold at most
// PrefixShareFactor × one address's share of the memory and of the spool,
// so a flood rotating addresses inside one network cannot fill either and
// a client from another network still gets its POST through (HANDED F06,
// F15 slow POST); a single body is never refused by a share.

// addrs returns n addresses made by format from 1..n.
func addrs(n int, format string) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.MustParseAddr(fmt.Sprintf(format, i+1))
	}
	return out
}

// flood has every address in attackers send bodies of size bytes (Content-
// Length declared), each its own (perAddr) times, and holds those the
// buffer takes, as a slow POST holds them waiting for its trickle to end.
// It returns the held bodies and the errors of the refused ones.
func flood(t *testing.T, b *BodyBuffer, attackers []netip.Addr, perAddr, size int) (held []*BufferedBody, refused []error) {
	t.Helper()
	data := pattern(size)
	for range perAddr {
		for _, a := range attackers {
			body, err := b.Fill(t.Context(), a, bytes.NewReader(data), int64(size))
			if err != nil {
				refused = append(refused, err)
				continue
			}
			held = append(held, body)
		}
	}
	return held, refused
}

// TestBufferPrefixShareKeepsRoomForOtherPrefixes floods the buffer from
// many addresses of one prefix, holding every body it takes, and checks
// that the flood holds no more than its prefix's share of memory (or of
// the spool), is refused as over a share (429, not 503), and that a
// client of another prefix is then served at once. The last cases turn
// aggregation off (/32 and /128 prefixes) and see the hole the prefix
// share closes: the flood fills the buffer and the other client is refused.
func TestBufferPrefixShareKeepsRoomForOtherPrefixes(t *testing.T) {
	const (
		wait = 250 * time.Millisecond
		// memory: 64 KiB bodies, 512 KiB in all, 64 KiB an address
		// (total/8), 128 KiB a prefix.
		mem, total, share = 64 << 10, 512 << 10, 64 << 10
		// spool: 4 KiB in memory, 64 KiB of memory, 1 MiB of spool; 128
		// KiB an address, 256 KiB a prefix; 100 kB bodies.
		spoolMem, spoolTotal, spoolBody = 4 << 10, 64 << 10, 100_000
	)
	tests := []struct {
		name       string
		spool      bool
		v4, v6     int
		attackers  []netip.Addr
		perAddr    int // bodies each attacking address sends
		outsider   netip.Addr
		maxHeld    int64 // bytes the flood may hold in its store
		wantRefuse error // what the flood's refused bodies get
		wantErr    error // what the outsider gets
	}{
		{name: "memory: 1000 addresses of one IPv6 /64 hold at most the prefix share; another /64 is served",
			attackers: addrs(1000, "2001:db8:1:2::%x"), perAddr: 1, outsider: netip.MustParseAddr("2001:db8:1:3::1"),
			maxHeld: 2 * share, wantRefuse: ErrBufferShareFull},
		{name: "memory: 16 addresses of one IPv4 /24 hold at most the prefix share; another /24 is served",
			attackers: addrs(16, "198.51.100.%d"), perAddr: 1, outsider: netip.MustParseAddr("198.51.101.1"),
			maxHeld: 2 * share, wantRefuse: ErrBufferShareFull},
		{name: "memory: IPv4-mapped IPv6 addresses count in the same /24",
			attackers: append(addrs(8, "198.51.100.%d"), addrs(8, "::ffff:198.51.100.%d")...), perAddr: 1,
			outsider: netip.MustParseAddr("203.0.113.9"), maxHeld: 2 * share, wantRefuse: ErrBufferShareFull},
		{name: "memory: one address sending many bodies holds at most its own share",
			attackers: addrs(1, "198.51.100.%d"), perAddr: 20, outsider: netip.MustParseAddr("198.51.100.200"),
			maxHeld: share, wantRefuse: ErrBufferShareFull},
		{name: "memory: configured /48 makes addresses of many /64s one prefix",
			v6: 48, attackers: addrs(100, "2001:db8:1:%x::1"), perAddr: 1, outsider: netip.MustParseAddr("2001:db8:2::1"),
			maxHeld: 2 * share, wantRefuse: ErrBufferShareFull},
		{name: "memory: without aggregation (/32) 8 addresses of one /24 fill the buffer; the other client gets 503",
			v4: 32, attackers: addrs(16, "198.51.100.%d"), perAddr: 1, outsider: netip.MustParseAddr("198.51.101.1"),
			maxHeld: total, wantRefuse: ErrBufferFull, wantErr: ErrBufferFull},
		{name: "spool: 200 addresses of one IPv6 /64 hold at most the spool's prefix share; another /64 spools",
			spool: true, attackers: addrs(200, "2001:db8:1:2::%x"), perAddr: 1, outsider: netip.MustParseAddr("2001:db8:1:3::1"),
			maxHeld: 256 << 10, wantRefuse: ErrBufferShareFull},
		{name: "spool: 16 addresses of one IPv4 /24 hold at most the spool's prefix share; another /24 spools",
			spool: true, attackers: addrs(16, "198.51.100.%d"), perAddr: 1, outsider: netip.MustParseAddr("198.51.101.1"),
			maxHeld: 256 << 10, wantRefuse: ErrBufferShareFull},
		{name: "spool: one address sending many bodies holds at most its own spool share",
			spool: true, attackers: addrs(1, "198.51.100.%d"), perAddr: 20, outsider: netip.MustParseAddr("198.51.100.200"),
			maxHeld: 128 << 10, wantRefuse: ErrBufferShareFull},
		{name: "spool: without aggregation (/128) addresses of one /64 fill the spool; the other client gets 503",
			spool: true, v6: 128, attackers: addrs(16, "2001:db8:1:2::%x"), perAddr: 1, outsider: netip.MustParseAddr("2001:db8:1:3::1"),
			maxHeld: 1 << 20, wantRefuse: ErrBufferFull, wantErr: ErrBufferFull},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := BufferConfig{MemoryBytes: mem, TotalBytes: total, Wait: wait, IPv4PrefixBits: tc.v4, IPv6PrefixBits: tc.v6}
				size := mem
				if tc.spool {
					cfg.MemoryBytes, cfg.TotalBytes, cfg.SpoolDir = spoolMem, spoolTotal, t.TempDir()
					size = spoolBody
				}
				b, err := NewBodyBuffer(cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				held, refused := flood(t, b, tc.attackers, tc.perAddr, size)
				defer func() {
					for _, body := range held {
						body.Close()
					}
				}()
				if len(refused) == 0 {
					t.Fatalf("the flood had all %d bodies taken", len(held))
				}
				for _, err := range refused {
					if !errors.Is(err, tc.wantRefuse) {
						t.Fatalf("a flood body got %v, want %v", err, tc.wantRefuse)
					}
				}
				memUse, diskUse := b.InUse()
				inUse := memUse
				if tc.spool {
					inUse = diskUse
				}
				if inUse > tc.maxHeld {
					t.Fatalf("the flood holds %d bytes, want at most %d", inUse, tc.maxHeld)
				}
				data := pattern(size)
				start := time.Now()
				body, err := b.Fill(t.Context(), tc.outsider, bytes.NewReader(data), int64(size))
				waited := time.Since(start)
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("the other client got %v, want %v", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("the other client was refused: %v", err)
				}
				defer body.Close()
				if waited != 0 {
					t.Fatalf("the other client waited %s for room", waited)
				}
				if body.Spooled() != tc.spool {
					t.Fatalf("the other client's body spooled %v, want %v", body.Spooled(), tc.spool)
				}
				if got, _ := io.ReadAll(body); !bytes.Equal(got, data) {
					t.Fatalf("the other client's body read back %d bytes, sent %d", len(got), len(data))
				}
			})
		})
	}
}

// TestBufferSingleBodyNeverRefusedByShares sends one body, of every store
// and framing, from a client whose address and prefix hold nothing, with
// the smallest shares a configuration allows, and checks it is taken at
// once and byte-exact however far it is over a share: shares bound how
// many bodies one network keeps open, not how large one may be. Another
// prefix's flood holding its share changes nothing.
func TestBufferSingleBodyNeverRefusedByShares(t *testing.T) {
	const mem = 64 << 10
	tests := []struct {
		name       string
		total      int64
		perClient  int64
		spoolTotal int64
		size       int
		declared   bool
		flood      bool // another /24 holds its share first
		wantSpool  bool
	}{
		{name: "memory body at the cap, smallest share (one body)", total: 1 << 20, perClient: mem, size: mem, declared: true},
		{name: "memory body at the cap, chunked, smallest share", total: 1 << 20, perClient: mem, size: mem},
		{name: "spooled body over the spool's address and prefix shares", total: 1 << 20, perClient: mem, size: 3 << 20, declared: true, wantSpool: true},
		{name: "chunked body outgrowing memory, over both spool shares", total: 1 << 20, perClient: mem, size: 3 << 20, wantSpool: true},
		{name: "fixed small spool: body many times the spool's share", total: 1 << 20, spoolTotal: 400_000, size: 300_000, declared: true, wantSpool: true},
		{name: "memory body while another prefix holds its share", total: 1 << 20, perClient: mem, size: mem, declared: true, flood: true},
		{name: "spooled body while another prefix holds its share", total: 1 << 20, perClient: mem, size: 3 << 20, declared: true, flood: true, wantSpool: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := NewBodyBuffer(BufferConfig{MemoryBytes: mem, TotalBytes: tc.total, PerClientBytes: tc.perClient,
					SpoolDir: t.TempDir(), SpoolTotalBytes: tc.spoolTotal, Wait: 250 * time.Millisecond}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.flood {
					held, _ := flood(t, b, addrs(50, "198.51.100.%d"), 1, tc.size)
					defer func() {
						for _, body := range held {
							body.Close()
						}
					}()
				}
				client := netip.MustParseAddr("2001:db8:5::1")
				data := pattern(tc.size)
				cl := int64(-1)
				if tc.declared {
					cl = int64(tc.size)
				}
				start := time.Now()
				body, err := b.Fill(t.Context(), client, bytes.NewReader(data), cl)
				if err != nil {
					t.Fatalf("the single body was refused: %v", err)
				}
				if waited := time.Since(start); waited != 0 {
					t.Fatalf("the single body waited %s", waited)
				}
				if body.Spooled() != tc.wantSpool {
					t.Fatalf("spooled %v, want %v", body.Spooled(), tc.wantSpool)
				}
				if got, _ := io.ReadAll(body); !bytes.Equal(got, data) {
					t.Fatalf("read back %d bytes, sent %d (first difference at %d)", len(got), len(data), firstDiff(got, data))
				}
				body.Close()
				if !tc.flood {
					checkAllReleased(t, b)
				}
			})
		})
	}
}

// checkAllReleased fails t unless b holds no bytes of memory or spool and
// its per-address and per-prefix tables are empty (every body closed).
func checkAllReleased(t *testing.T, b *BodyBuffer) {
	t.Helper()
	mAddrs, mPrefixes := b.mem.holders()
	dAddrs, dPrefixes := b.disk.holders()
	if m, d := b.InUse(); m+d != 0 || mAddrs+mPrefixes+dAddrs+dPrefixes != 0 {
		t.Fatalf("after Close: %d/%d bytes reserved, %d/%d memory and %d/%d spool table entries",
			m, d, mAddrs, mPrefixes, dAddrs, dPrefixes)
	}
}

// TestBufferPrefixShareHTTP sends POSTs through the edge handler while
// addresses of one /64 (or /24) hold their prefix's share of memory or
// spool: another address of that network gets 429 with Retry-After and
// Connection: close and never reaches the origin; a client of another
// network is served byte-exact.
func TestBufferPrefixShareHTTP(t *testing.T) {
	const mem, total = 64 << 10, 512 << 10 // 64 KiB an address, 128 KiB a prefix
	tests := []struct {
		name       string
		spool      bool
		holders    []netip.Addr // each holds one body of the store's size
		client     netip.Addr
		wantStatus int
	}{
		{name: "memory: another address of the /64: 429", holders: addrs(2, "2001:db8:7:7::%x"),
			client: netip.MustParseAddr("2001:db8:7:7::ffff"), wantStatus: http.StatusTooManyRequests},
		{name: "memory: a client of another /64: served", holders: addrs(2, "2001:db8:7:7::%x"),
			client: netip.MustParseAddr("2001:db8:7:8::1"), wantStatus: http.StatusOK},
		{name: "memory: another address of the /24: 429", holders: addrs(2, "198.51.100.%d"),
			client: netip.MustParseAddr("198.51.100.77"), wantStatus: http.StatusTooManyRequests},
		{name: "memory: a client of another /24: served", holders: addrs(2, "198.51.100.%d"),
			client: netip.MustParseAddr("198.51.99.77"), wantStatus: http.StatusOK},
		{name: "spool: another address of the /64: 429", spool: true, holders: addrs(2, "2001:db8:7:7::%x"),
			client: netip.MustParseAddr("2001:db8:7:7::ffff"), wantStatus: http.StatusTooManyRequests},
		{name: "spool: a client of another /64: served", spool: true, holders: addrs(2, "2001:db8:7:7::%x"),
			client: netip.MustParseAddr("2001:db8:7:8::1"), wantStatus: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := NewBodyBuffer(BufferConfig{MemoryBytes: mem, TotalBytes: total, SpoolDir: t.TempDir(), Wait: 50 * time.Millisecond}, nil)
				if err != nil {
					t.Fatal(err)
				}
				// The spool's prefix share is 16 × 128 KiB = 2 MiB: two
				// 1 MiB bodies fill it.
				size := mem
				if tc.spool {
					size = 1 << 20
				}
				held, refused := flood(t, b, tc.holders, 1, size)
				defer func() {
					for _, body := range held {
						body.Close()
					}
				}()
				if len(refused) != 0 {
					t.Fatalf("holding the prefix's share: %v", refused[0])
				}
				if err := newRecordingHandler(t, b).post(tc.client, pattern(size), tc.wantStatus); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestBufferPrefixMatchesResolver checks that the prefix a body counts
// against is the one the rest of the shield keys the client on: the
// resolver's Result.Prefix at the same lengths, keyed with
// ratelimit.KeyFromPrefix.
func TestBufferPrefixMatchesResolver(t *testing.T) {
	tests := []struct {
		name   string
		v4, v6 int
		addr   string
	}{
		{name: "IPv4, default /24", addr: "198.51.100.200"},
		{name: "IPv6, default /64", addr: "2001:db8:1:2:3:4:5:6"},
		{name: "IPv4-mapped IPv6", addr: "::ffff:198.51.100.200"},
		{name: "IPv6 with a zone", addr: "fe80::1%eth0"},
		{name: "IPv4 /16, IPv6 /48", v4: 16, v6: 48, addr: "198.51.100.200"},
		{name: "IPv6 /48", v4: 16, v6: 48, addr: "2001:db8:1:2:3:4:5:6"},
		{name: "IPv4 /32", v4: 32, addr: "198.51.100.200"},
		{name: "IPv6 /128", v6: 128, addr: "2001:db8::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := clientip.New(clientip.Config{IPv4PrefixBits: tc.v4, IPv6PrefixBits: tc.v6})
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewBodyBuffer(BufferConfig{MemoryBytes: 4 << 10, TotalBytes: 64 << 10, IPv4PrefixBits: tc.v4, IPv6PrefixBits: tc.v6}, nil)
			if err != nil {
				t.Fatal(err)
			}
			a := netip.MustParseAddr(tc.addr)
			r := res.Resolve(a, nil)
			got, want := b.claimOf(a), claim{addr: ratelimit.KeyFromAddr(r.Addr), prefix: ratelimit.KeyFromPrefix(r.Prefix)}
			if got != want || !got.prefix.IsPrefix() {
				t.Fatalf("body counts against %v and %v, the shield keys %v and %v", got.addr, got.prefix, want.addr, want.prefix)
			}
		})
	}
}

// TestClassifyShareRefusals: a refusal for the network's share says
// "your network", one for the address's share "your address"; both 429.
func TestClassifyShareRefusals(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "address share", err: ErrBufferShareFull, want: "from your address"},
		{name: "prefix share", err: errPrefixShareFull, want: "from your network"},
		{name: "wrapped prefix share", err: fmt.Errorf("edge: body: %w", errPrefixShareFull), want: "from your network"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := ClassifyError(tc.err)
			if !ok || v.StatusCode() != http.StatusTooManyRequests || !strings.Contains(v.Reason, tc.want) {
				t.Errorf("ClassifyError(%v) = %+v %v, want 429 naming %q", tc.err, v, ok, tc.want)
			}
		})
	}
}
