package stats

import (
	"net/netip"
	"slices"
)

// pktRecord is a Packet as it travels through the ring.
type pktRecord struct {
	time             int64
	src, dst         netip.Addr
	length           uint32
	weight           uint32
	srcPort, dstPort uint16
	proto            uint8
	flags            uint8
	frag             bool
}

// TCP flag bits as in Packet.TCPFlags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// destAcc accumulates one destination address.
type destAcc struct {
	d       DestSnapshot // counters only; HLL fields unused here
	sources *HLL
	flows   *HLL
}

// netAcc is the drain-side packet accumulator of the current tick.
type netAcc struct {
	tot                                 Traffic // sketch-side total (exact total is atomic)
	tcp, udp, icmp, other, fragments    Traffic
	syn, synack, ack, ackData, rst, fin uint64
	sources                             *HLL
	topSrc                              *TopK[addrKey]
	topPfx                              *TopK[addrKey]
	idx                                 map[netip.Addr]int32
	dests                               []destAcc // preallocated, len = MaxDestinations
	used                                int
	otherDst                            Traffic
	synFrom                             []synSender // SYN senders without a slot (open addressing)
}

// synSender counts the SYNs of one source address that had no destination
// slot when it sent them (see netAcc.addSentSYN); n == 0 marks a free entry.
type synSender struct {
	hi, lo, n uint64
}

// synProbes is how many entries a synFrom lookup probes; a sender that finds
// none free is not counted (a spoofed SYN flood fills the table with its
// sources, and later senders of the tick are lost).
const synProbes = 4

func newNetAcc(c *Config) *netAcc {
	n := &netAcc{
		sources: NewHLL(c.SourcePrecision),
		topSrc:  NewTopK[addrKey](c.TopK),
		topPfx:  NewTopK[addrKey](c.TopK),
		idx:     make(map[netip.Addr]int32, c.MaxDestinations),
		dests:   make([]destAcc, c.MaxDestinations),
		synFrom: make([]synSender, synTableSize(c.MaxDestinations)),
	}
	for i := range n.dests {
		n.dests[i].sources = NewHLL(c.DestPrecision)
		n.dests[i].flows = NewHLL(8)
	}
	return n
}

func (n *netAcc) add(p *pktRecord) {
	w := uint64(p.weight)
	b := uint64(p.length) * w
	n.tot.add(w, b)
	hi, lo := halves(p.src)
	sh := hash128(hi, lo)
	n.sources.AddHash(sh)
	n.topSrc.Add(addrKey{hi: hi, lo: lo, bits: -1}, w)
	n.topPfx.Add(keyOfDefaultPrefix(hi, lo), w)

	var d *destAcc
	if i, ok := n.idx[p.dst]; ok {
		d = &n.dests[i]
	} else if n.used < len(n.dests) {
		d = &n.dests[n.used]
		d.d = DestSnapshot{Dst: p.dst}
		d.sources.Reset()
		d.flows.Reset()
		n.idx[p.dst] = int32(n.used)
		n.used++
	} else {
		n.otherDst.add(w, b)
	}
	if d != nil {
		d.d.Traffic.add(w, b)
		d.sources.AddHash(sh)
		d.flows.AddHash(mix64(sh ^ uint64(p.srcPort)<<24 ^ uint64(p.dstPort)<<8 ^ uint64(p.proto)))
	}

	if p.frag {
		n.fragments.add(w, b)
		if d != nil {
			d.d.Fragments.add(w, b)
		}
	}
	switch p.proto {
	case 6:
		n.tcp.add(w, b)
		f := p.flags
		var cls *uint64
		var dcls *uint64
		switch {
		case f&tcpRST != 0:
			cls = &n.rst
			if d != nil {
				dcls = &d.d.RST
			}
		case f&tcpSYN != 0 && f&tcpACK != 0:
			cls = &n.synack
			if d != nil {
				dcls = &d.d.SYNACK
			}
		case f&tcpSYN != 0:
			cls = &n.syn
			if d != nil {
				dcls = &d.d.SYN
			}
			if i, ok := n.idx[p.src]; ok {
				n.dests[i].d.SentSYN += w
			} else {
				n.addSentSYN(hi, lo, sh, w)
			}
		case f&tcpFIN != 0:
			cls = &n.fin
			if d != nil {
				dcls = &d.d.FIN
			}
		case f&tcpACK != 0 && p.length <= SmallPacketBytes:
			cls = &n.ack
			if d != nil {
				dcls = &d.d.ACK
			}
		case f&tcpACK != 0:
			cls = &n.ackData
			if d != nil {
				dcls = &d.d.ACKData
			}
		}
		if cls != nil {
			*cls += w
		}
		if dcls != nil {
			*dcls += w
		}
		if d != nil {
			d.d.TCP.add(w, b)
		}
	case 17:
		n.udp.add(w, b)
		if d != nil {
			d.d.UDP.add(w, b)
			if i := amplificationIndex(p.srcPort); i >= 0 {
				d.d.Amplification[i].add(w, b)
			} else {
				d.d.UDPOther.add(w, b)
			}
		}
	case 1, 58:
		n.icmp.add(w, b)
		if d != nil {
			d.d.ICMP.add(w, b)
		}
	default:
		n.other.add(w, b)
		if d != nil {
			d.d.Other.add(w, b)
		}
	}
}

// snapshot fills out (except Total) and resets the accumulator.
func (n *netAcc) snapshot(out *NetSnapshot, topN int) {
	if n.tot.Packets == 0 {
		return // nothing drained this tick
	}
	out.TCP, out.UDP, out.ICMP, out.Other, out.Fragments = n.tcp, n.udp, n.icmp, n.other, n.fragments
	out.SYN, out.SYNACK, out.ACK, out.ACKData, out.RST, out.FIN = n.syn, n.synack, n.ack, n.ackData, n.rst, n.fin
	out.Sources = n.sources.Estimate()
	out.SourcesHLL = n.sources.Clone()
	out.TopSources = topAddrs(n.topSrc, topN)
	out.TopSourcePrefixes = topPrefixes(n.topPfx, topN)
	out.OtherDestinations = n.otherDst
	if n.used > 0 {
		out.Dests = make([]DestSnapshot, n.used)
		for i := range n.used {
			d := &n.dests[i]
			d.d.SentSYN += n.takeSentSYN(d.d.Dst)
			out.Dests[i] = d.d
			out.Dests[i].Sources = d.sources.Estimate()
			out.Dests[i].SourcesHLL = d.sources.Clone()
			out.Dests[i].Flows = d.flows.Estimate()
		}
		slices.SortStableFunc(out.Dests, func(a, b DestSnapshot) int {
			if a.Packets != b.Packets {
				if a.Packets > b.Packets {
					return -1
				}
				return 1
			}
			return a.Dst.Compare(b.Dst)
		})
	}
	out.SYNSenders = n.synSenders(len(n.dests))
	n.reset()
}

func (n *netAcc) reset() {
	*n = netAcc{
		sources: n.sources, topSrc: n.topSrc, topPfx: n.topPfx,
		idx: n.idx, dests: n.dests, synFrom: n.synFrom,
	}
	clear(n.synFrom)
	n.sources.Reset()
	n.topSrc.Reset()
	n.topPfx.Reset()
	clear(n.idx)
}

// synTableSize returns the synFrom table size: a power of two of at least
// 4 × maxDests entries (24 bytes each).
func synTableSize(maxDests int) int {
	size := 64
	for size < 4*maxDests {
		size <<= 1
	}
	return size
}

// addSentSYN counts w SYNs sent by the address (hi, lo) with hash h, which
// has no destination slot yet: they are credited to its slot at the end of
// the tick if it receives packets later in the tick, and reported in
// NetSnapshot.SYNSenders otherwise.
func (n *netAcc) addSentSYN(hi, lo, h, w uint64) {
	mask := uint64(len(n.synFrom) - 1)
	for j := range uint64(synProbes) {
		e := &n.synFrom[(h+j)&mask]
		if e.n == 0 {
			*e = synSender{hi: hi, lo: lo, n: w}
			return
		}
		if e.hi == hi && e.lo == lo {
			e.n += w
			return
		}
	}
}

// takeSentSYN returns and forgets the SYNs a counted before it had a slot.
func (n *netAcc) takeSentSYN(a netip.Addr) uint64 {
	hi, lo := halves(a)
	h := hash128(hi, lo)
	mask := uint64(len(n.synFrom) - 1)
	for j := range uint64(synProbes) {
		e := &n.synFrom[(h+j)&mask]
		if e.n > 0 && e.hi == hi && e.lo == lo {
			c := e.n
			e.n = 0
			return c
		}
	}
	return 0
}

// synSenders lists the remaining SYN senders, most SYNs first, at most max.
func (n *netAcc) synSenders(max int) []Counted[netip.Addr] {
	var out []Counted[netip.Addr]
	for _, e := range n.synFrom {
		if e.n > 0 {
			out = append(out, Counted[netip.Addr]{Key: addrKey{hi: e.hi, lo: e.lo, bits: -1}.addr(), Count: e.n})
		}
	}
	slices.SortFunc(out, func(a, b Counted[netip.Addr]) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return a.Key.Compare(b.Key)
	})
	if len(out) > max {
		out = out[:max]
	}
	return out
}
