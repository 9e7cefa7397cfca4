package stats

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestSentSYNBeforeSlot checks that a host's own SYNs count in its SentSYN
// even when they precede the first packet it receives in the tick (a SYN
// goes out before its SYN-ACK comes back), and that senders that received
// nothing in the tick are listed in NetSnapshot.SYNSenders.
func TestSentSYNBeforeSlot(t *testing.T) {
	client := netip.MustParseAddr("203.0.113.20")
	server := netip.MustParseAddr("198.51.100.7")
	other := netip.MustParseAddr("192.0.2.9")
	syn := func(src, dst netip.Addr) Packet {
		return Packet{Src: src, Dst: dst, Proto: 6, TCPFlags: 0x02, Length: 60, SampleRate: 1}
	}
	synack := func(src, dst netip.Addr) Packet {
		return Packet{Src: src, Dst: dst, Proto: 6, TCPFlags: 0x12, Length: 60, SampleRate: 1}
	}
	tests := []struct {
		name        string
		pkts        []Packet
		wantSentSYN uint64 // client's Dests entry; 0 with no entry
		wantSenders []Counted[netip.Addr]
	}{
		{name: "syn then its syn-ack", pkts: []Packet{syn(client, server), synack(server, client)}, wantSentSYN: 1,
			wantSenders: nil},
		{name: "syns before and after the first packet", pkts: []Packet{syn(client, server), syn(client, server), synack(server, client), syn(client, server)},
			wantSentSYN: 3},
		{name: "sender receives nothing", pkts: []Packet{syn(client, server), syn(client, server), syn(other, server)},
			wantSenders: []Counted[netip.Addr]{{Key: client, Count: 2}, {Key: other, Count: 1}}},
		{name: "unsolicited syn-ack", pkts: []Packet{synack(server, client)}, wantSentSYN: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := mustNew(t, Config{})
			a.Begin(t0)
			for i := range tc.pkts {
				tc.pkts[i].Time = t0 + int64(i)
				a.ObservePacket(&tc.pkts[i])
			}
			s := a.Snapshot(t0 + int64(time.Second))
			var got uint64
			for _, d := range s.Net.Dests {
				if d.Dst == client {
					got = d.SentSYN
				}
			}
			if got != tc.wantSentSYN {
				t.Errorf("client SentSYN = %d, want %d", got, tc.wantSentSYN)
			}
			if !slices.Equal(s.Net.SYNSenders, tc.wantSenders) {
				t.Errorf("SYNSenders = %v, want %v", s.Net.SYNSenders, tc.wantSenders)
			}
			// The next tick starts empty.
			a.ObservePacket(&Packet{Time: t0 + int64(time.Second) + 1, Src: server, Dst: client, Proto: 6, TCPFlags: 0x10, Length: 52, SampleRate: 1})
			s = a.Snapshot(t0 + 2*int64(time.Second))
			if len(s.Net.SYNSenders) != 0 || s.Net.Dests[0].SentSYN != 0 {
				t.Errorf("next tick: SYNSenders %v, SentSYN %d; want none", s.Net.SYNSenders, s.Net.Dests[0].SentSYN)
			}
		})
	}
}
