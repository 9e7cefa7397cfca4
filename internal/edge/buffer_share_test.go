package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/clientip"
)

// One client's share of the request buffer: a single address holding
// bodies open cannot take the whole buffer, so every other client's POST
// is still taken (case F15, slow POST; the per-client table is bounded,
// F11).

// TestBufferShare holds bodies for one client up to its share and checks
// what its next body and another client's body get.
func TestBufferShare(t *testing.T) {
	const (
		mem   = 64 << 10
		total = 256 << 10
		share = 128 << 10
		wait  = 250 * time.Millisecond
	)
	tests := []struct {
		name      string
		perClient int64
		held      int        // bodies of `mem` bytes clientA holds
		anon      bool       // the held bodies have no client identity (the zero Addr)
		next      netip.Addr // who sends the next body
		releaseA  bool       // one of clientA's bodies ends while the next waits

		wantErr    error
		wantWaited time.Duration
	}{
		{name: "the client over its share waits, then is refused", perClient: share, held: 2, next: clientA, wantErr: ErrBufferShareFull, wantWaited: wait},
		{name: "another client is taken at once", perClient: share, held: 2, next: clientB},
		{name: "the client is taken when its own body ends", perClient: share, held: 2, next: clientA, releaseA: true},
		{name: "under its share the client is taken at once", perClient: share, held: 1, next: clientA},
		{name: "no client identity: only the whole budget", perClient: share, held: 3, anon: true, next: netip.Addr{}},
		{name: "IPv4-mapped IPv6 is the same client", perClient: share, held: 2, next: netip.AddrFrom16(clientA.As16()), wantErr: ErrBufferShareFull, wantWaited: wait},
		{name: "default share (total/8, at least one body) refuses the second body", held: 1, next: clientA, wantErr: ErrBufferShareFull, wantWaited: wait},
		{name: "share = total: one client fills the buffer, the next is refused as full", perClient: total, held: 4, next: clientB, wantErr: ErrBufferFull, wantWaited: wait},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				b, err := NewBodyBuffer(BufferConfig{MemoryBytes: mem, TotalBytes: total, PerClientBytes: tc.perClient, Wait: wait}, reg)
				if err != nil {
					t.Fatal(err)
				}
				var held []*BufferedBody
				holder, holders := clientA, 1
				if tc.anon {
					holder, holders = netip.Addr{}, 0
				}
				for range tc.held {
					body, err := b.Fill(t.Context(), holder, bytes.NewReader(pattern(mem)), mem)
					if err != nil {
						t.Fatalf("held body %d: %v", len(held), err)
					}
					held = append(held, body)
				}
				if b.Clients() != holders {
					t.Fatalf("%d clients hold memory, want %d", b.Clients(), holders)
				}
				type result struct {
					body   *BufferedBody
					err    error
					waited time.Duration
				}
				done := make(chan result, 1)
				data := pattern(10_000)
				go func() {
					start := time.Now()
					body, err := b.Fill(t.Context(), tc.next, bytes.NewReader(data), -1)
					done <- result{body, err, time.Since(start)}
				}()
				synctest.Wait()
				if tc.releaseA {
					held[0].Close()
				}
				r := <-done
				if (tc.wantErr == nil) != (r.err == nil) || !errors.Is(r.err, tc.wantErr) && tc.wantErr != nil {
					t.Fatalf("next body: %v, want %v", r.err, tc.wantErr)
				}
				if r.waited != tc.wantWaited {
					t.Fatalf("next body waited %s, want %s", r.waited, tc.wantWaited)
				}
				wantShareRefused := map[bool]float64{true: 1}[errors.Is(tc.wantErr, ErrBufferShareFull)]
				if got := value(t, b.metrics.shareRefused); got != wantShareRefused {
					t.Errorf("client refused counter %v, want %v", got, wantShareRefused)
				}
				if r.body != nil {
					got, _ := io.ReadAll(r.body)
					if !bytes.Equal(got, data) {
						t.Fatalf("next body read back %d bytes, sent %d", len(got), len(data))
					}
					r.body.Close()
				}
				for _, body := range held {
					body.Close()
				}
				if m, d := b.InUse(); m != 0 || d != 0 || b.Clients() != 0 {
					t.Fatalf("after Close: %d/%d bytes reserved by %d clients", m, d, b.Clients())
				}
			})
		})
	}
}

// TestBufferShareHTTP checks the answer to a body over its client's
// share: 429 with Retry-After and Connection: close (the rest of its body
// is not read first), never the origin; another client's body is served
// byte-exact meanwhile.
func TestBufferShareHTTP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBodyBuffer(BufferConfig{MemoryBytes: 64 << 10, TotalBytes: 256 << 10, PerClientBytes: 64 << 10, Wait: 50 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		held, err := b.Fill(t.Context(), clientA, bytes.NewReader(pattern(64<<10)), 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		h := newRecordingHandler(t, b)
		tests := []struct {
			name       string
			client     netip.Addr
			wantStatus int
		}{
			{name: "the client holding its share: 429", client: clientA, wantStatus: http.StatusTooManyRequests},
			{name: "another client: served", client: clientB, wantStatus: http.StatusOK},
		}
		for _, tc := range tests {
			if err := h.post(tc.client, pattern(5000), tc.wantStatus); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
	})
}

// recordingHandler is the edge handler over a buffer, with an origin that
// records the bodies it gets.
type recordingHandler struct {
	*Handler
	reached [][]byte
}

func newRecordingHandler(t *testing.T, b *BodyBuffer) *recordingHandler {
	t.Helper()
	h := &recordingHandler{Handler: newBodyHandler(t, b)}
	rt := *h.Runtime()
	site := *rt.Default
	site.Origin = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		h.reached = append(h.reached, got)
	})
	rt.Default, rt.Sites = &site, []*Site{&site}
	h.Swap(&rt)
	return h
}

// post sends data as a POST from client and checks the answer: wantStatus
// 200 with the origin given the body byte-exact, or a refusal with
// Retry-After and Connection: close (the unread rest of the body is not
// waited for) that never reached the origin.
func (h *recordingHandler) post(client netip.Addr, data []byte, wantStatus int) error {
	req := httptest.NewRequest(http.MethodPost, "http://t/form", bytes.NewReader(data))
	req.RemoteAddr = netip.AddrPortFrom(client, 40000).String()
	w := httptest.NewRecorder()
	h.reached = nil
	h.ServeHTTP(w, req)
	switch {
	case w.Code != wantStatus:
		return fmt.Errorf("status %d, want %d", w.Code, wantStatus)
	case wantStatus == http.StatusOK:
		if len(h.reached) != 1 || !bytes.Equal(h.reached[0], data) {
			return errors.New("the origin did not get the body byte-exact")
		}
	case w.Header().Get("Retry-After") == "" || len(h.reached) != 0:
		return fmt.Errorf("Retry-After %q, origin reached %d times", w.Header().Get("Retry-After"), len(h.reached))
	case w.Header().Get("Connection") != "close":
		return fmt.Errorf("Connection %q, want close", w.Header().Get("Connection"))
	}
	return nil
}

// TestBufferShareTableBounded fills the buffer from many addresses (a
// flood rotating its source, each address in a /64 of its own so no
// prefix share stops it first) and checks the per-address and per-prefix
// tables never hold more entries than the budget has 4 KiB chunks, and are
// empty once the bodies end (F11: bounded memory, nothing to sweep).
func TestBufferShareTableBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const total = 64 << 10
		b, err := NewBodyBuffer(BufferConfig{MemoryBytes: 4 << 10, TotalBytes: total, Wait: time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var held []*BufferedBody
		refused := 0
		for i := range 1000 {
			addr := netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::1", i+1))
			body, err := b.Fill(context.Background(), addr, bytes.NewReader(pattern(100)), 100)
			switch {
			case errors.Is(err, ErrBufferFull):
				refused++
			case err != nil:
				t.Fatal(err)
			default:
				held = append(held, body)
			}
			if n, p := b.mem.holders(); n > total/smallChunk || p > total/smallChunk {
				t.Fatalf("%d addresses and %d prefixes in the tables, want ≤ %d each", n, p, total/smallChunk)
			}
		}
		if len(held) != total/smallChunk || refused != 1000-len(held) {
			t.Fatalf("held %d bodies, refused %d; want %d held", len(held), refused, total/smallChunk)
		}
		for _, body := range held {
			body.Close()
		}
		if n, p := b.mem.holders(); n != 0 || p != 0 {
			t.Fatalf("%d addresses and %d prefixes left in the tables after every body ended", n, p)
		}
	})
}

// TestBufferSetLimitsShare checks the shares' bounds and defaults: the
// per-address share, the per-prefix share (PrefixShareFactor × it, none
// where that reaches the whole budget), the spool's shares in proportion
// to its budget, and the prefix lengths.
func TestBufferSetLimitsShare(t *testing.T) {
	tests := []struct {
		name                  string
		memory, total, client int64
		spool                 int64
		v4, v6                int

		wantErr                error // errors.Is target; errAny = any error
		wantShare, wantPrefix  int64
		wantSpoolShare         int64
		wantSpoolPrefix        int64
		wantV4Bits, wantV6Bits int
	}{
		{name: "default: total/8, prefix twice that, spool in proportion", memory: 1 << 20, total: 64 << 20,
			wantShare: 8 << 20, wantPrefix: 16 << 20, wantSpoolShare: 128 << 20, wantSpoolPrefix: 256 << 20, wantV4Bits: 24, wantV6Bits: 64},
		{name: "default never below one body", memory: 1 << 20, total: 4 << 20,
			wantShare: 1 << 20, wantPrefix: 2 << 20, wantSpoolShare: 16 << 20, wantSpoolPrefix: 32 << 20, wantV4Bits: 24, wantV6Bits: 64},
		{name: "set", memory: 1 << 20, total: 64 << 20, client: 2 << 20,
			wantShare: 2 << 20, wantPrefix: 4 << 20, wantSpoolShare: 32 << 20, wantSpoolPrefix: 64 << 20, wantV4Bits: 24, wantV6Bits: 64},
		{name: "prefix share reaching the total is not enforced", memory: 1 << 20, total: 64 << 20, client: 32 << 20,
			wantShare: 32 << 20, wantSpoolShare: 512 << 20, wantV4Bits: 24, wantV6Bits: 64},
		{name: "equal to the total", memory: 1 << 20, total: 64 << 20, client: 64 << 20,
			wantShare: 64 << 20, wantSpoolShare: 1 << 30, wantV4Bits: 24, wantV6Bits: 64},
		{name: "fixed spool budget: shares in proportion", memory: 1 << 20, total: 64 << 20, spool: 80 << 20,
			wantShare: 8 << 20, wantPrefix: 16 << 20, wantSpoolShare: 10 << 20, wantSpoolPrefix: 20 << 20, wantV4Bits: 24, wantV6Bits: 64},
		{name: "prefix lengths set", memory: 1 << 20, total: 64 << 20, v4: 16, v6: 48,
			wantShare: 8 << 20, wantPrefix: 16 << 20, wantSpoolShare: 128 << 20, wantSpoolPrefix: 256 << 20, wantV4Bits: 16, wantV6Bits: 48},
		{name: "below one body", memory: 1 << 20, total: 64 << 20, client: 512 << 10, wantErr: errAny},
		{name: "above the total", memory: 1 << 20, total: 64 << 20, client: 65 << 20, wantErr: errAny},
		{name: "IPv4 prefix too short", memory: 1 << 20, total: 64 << 20, v4: 4, wantErr: clientip.ErrPrefixBits},
		{name: "IPv6 prefix too short", memory: 1 << 20, total: 64 << 20, v6: 32, wantErr: clientip.ErrPrefixBits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBuffer(t, 4<<10, 4<<10, false, nil)
			err := b.SetLimits(BufferConfig{MemoryBytes: tc.memory, TotalBytes: tc.total, PerClientBytes: tc.client,
				SpoolTotalBytes: tc.spool, IPv4PrefixBits: tc.v4, IPv6PrefixBits: tc.v6})
			switch {
			case tc.wantErr == errAny && err != nil:
				return
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("SetLimits: %v, want %v", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("SetLimits: %v", err)
			}
			got := []int64{b.mem.perAddr, b.mem.perPrefix, b.disk.perAddr, b.disk.perPrefix}
			want := []int64{tc.wantShare, tc.wantPrefix, tc.wantSpoolShare, tc.wantSpoolPrefix}
			if !slices.Equal(got, want) {
				t.Fatalf("shares (memory address, prefix, spool address, prefix) %d, want %d", got, want)
			}
			if pb := b.prefixBits.Load(); int(pb>>8) != tc.wantV4Bits || int(pb&0xff) != tc.wantV6Bits {
				t.Fatalf("prefix lengths /%d /%d, want /%d /%d", pb>>8, pb&0xff, tc.wantV4Bits, tc.wantV6Bits)
			}
		})
	}
}

// errAny in a test table wants some error, whichever.
var errAny = errors.New("any error")
