package detect

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

func TestSlowConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       PacketThresholds
		wantErr string
	}{
		{name: "defaults"},
		{name: "window shorter than Window", p: PacketThresholds{SlowWindow: 500 * time.Millisecond}, wantErr: "Packet.SlowWindow"},
		{name: "window over an hour", p: PacketThresholds{SlowWindow: 2 * time.Hour}, wantErr: "Packet.SlowWindow"},
		{name: "idle beyond window", p: PacketThresholds{SlowIdle: 2 * time.Minute}, wantErr: "Packet.SlowIdle"},
		{name: "negative idle", p: PacketThresholds{SlowIdle: -time.Second}, wantErr: "Packet.SlowIdle"},
		{name: "share above one", p: PacketThresholds{SlowShare: 1.5}, wantErr: "Packet.SlowShare"},
		{name: "negative synacks", p: PacketThresholds{SlowSYNACKs: -1}, wantErr: "Packet.SlowSYNACKs"},
		{name: "negative sources", p: PacketThresholds{SlowSources: -1}, wantErr: "Packet.SlowSources"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Packet: tc.p}.Default()
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want ErrConfig mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// TestSlowWatch drives the long-window accounting with a real Accountant:
// its figures for a victim of unsolicited SYN-ACKs, its bound when many
// client hosts each receive a SYN-ACK, and forgetting an idle destination.
func TestSlowWatch(t *testing.T) {
	victim := netip.MustParseAddr("203.0.113.20")
	reflector := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{100, 64, 0, byte(i)}) }
	client := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }
	const tick = int64(250 * time.Millisecond)
	t0 := time.Date(2026, 5, 4, 20, 0, 0, 0, time.UTC).UnixNano()
	tests := []struct {
		name        string
		max         int
		clients     int   // one a tick receives one SYN-ACK
		ticks       int64 // ticks of one SYN-ACK a second to the victim
		idleAfter   int64 // further empty ticks
		wantWatched bool
		wantSYNACK  uint64
		wantSources uint64
		wantLen     int // at most
	}{
		{name: "victim figures over the window", max: 64, ticks: 120, wantWatched: true, wantSYNACK: 30, wantSources: 30, wantLen: 1},
		{name: "window slides", max: 64, ticks: 400, wantWatched: true, wantSYNACK: 60, wantSources: 60, wantLen: 1},
		{name: "bounded, victim kept", max: 4, clients: 500, ticks: 120, wantWatched: true, wantSYNACK: 30, wantSources: 30, wantLen: 4},
		{name: "idle destination forgotten", max: 64, ticks: 120, idleAfter: 300, wantLen: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Config{}.Default().Packet
			w := newSlowWatch(&p, tc.max)
			acc, err := stats.New(stats.Config{Sites: []stats.SiteConfig{{Name: "www"}}})
			if err != nil {
				t.Fatal(err)
			}
			acc.Begin(t0)
			c := 0
			for i := range tc.ticks + tc.idleAfter {
				start := t0 + i*tick
				if i < tc.ticks && i%4 == 0 {
					acc.ObservePacket(&stats.Packet{Time: start, Src: reflector(int(i / 4 % 200)), Dst: victim,
						SrcPort: 21, DstPort: 21, Proto: 6, TCPFlags: 0x12, Length: 46, SampleRate: 1})
				}
				if c < tc.clients {
					acc.ObservePacket(&stats.Packet{Time: start + 1, Src: reflector(1), Dst: client(c),
						SrcPort: 443, DstPort: 40000, Proto: 6, TCPFlags: 0x12, Length: 60, SampleRate: 1})
					c++
				}
				snap := acc.Snapshot(start + tick)
				w.observe(&snap.Net, tickSpan{start, start + tick})
				if len(w.dests) > tc.max {
					t.Fatalf("tick %d: %d destinations watched, max %d", i, len(w.dests), tc.max)
				}
			}
			if len(w.dests) > tc.wantLen {
				t.Errorf("%d destinations watched, want at most %d", len(w.dests), tc.wantLen)
			}
			_, watched := w.dests[victim]
			if watched != tc.wantWatched {
				t.Fatalf("victim watched %v, want %v", watched, tc.wantWatched)
			}
			if !watched {
				return
			}
			v := w.view(victim)
			if v.SYNACK != tc.wantSYNACK || v.Sources != tc.wantSources || v.SentSYN != 0 || v.TCP != tc.wantSYNACK {
				t.Errorf("view %+v, want %d SYN-ACKs from %d sources", v, tc.wantSYNACK, tc.wantSources)
			}
		})
	}
}

// BenchmarkSlowWatchObserve measures the long-window accounting per tick in
// its worst case: every one of 256 destinations of the tick receives
// unsolicited SYN-ACKs (64 watched, the rest refused or churning), each
// watched one's sources union estimated every tick.
func BenchmarkSlowWatchObserve(b *testing.B) {
	acc, err := stats.New(stats.Config{Sites: []stats.SiteConfig{{Name: "www"}}})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 5, 4, 20, 0, 0, 0, time.UTC).UnixNano()
	acc.Begin(t0)
	for d := range 256 {
		for s := range 20 {
			acc.ObservePacket(&stats.Packet{Time: t0, Src: netip.AddrFrom4([4]byte{100, 64, byte(d), byte(s)}),
				Dst: netip.AddrFrom4([4]byte{203, 0, byte(d >> 8), byte(d)}), SrcPort: 21, DstPort: 21,
				Proto: 6, TCPFlags: 0x12, Length: 46, SampleRate: 1})
		}
	}
	const tick = int64(250 * time.Millisecond)
	snap := acc.Snapshot(t0 + tick)
	p := Config{}.Default().Packet
	w := newSlowWatch(&p, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range int64(b.N) {
		start := t0 + i*tick
		w.observe(&snap.Net, tickSpan{start, start + tick})
	}
}
