package detect

import (
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

// gate returns s when cond holds, and otherwise at most 0.5 (visible as a
// score, never firing).
func gate(cond bool, s float64) float64 {
	if cond {
		return s
	}
	return min(s, 0.5)
}

func share(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// PacketFlood is one packet-level volumetric detector (see NewPacketDetectors
// for the vectors). Thresholds are per destination, in packets per second
// after sampling, max(floor, Multiplier × baseline) once warm.
type PacketFlood struct {
	name string
	T    *PacketThresholds
	obs  func(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64)
	sus  func(d *PacketFlood, v *DestView) bool // optional Sustain test
}

// Name implements NetDetector.
func (d *PacketFlood) Name() string { return d.name }

// Observe implements NetDetector.
func (d *PacketFlood) Observe(v *DestView, b *Baseline, _ time.Time) Signal {
	s, ev := d.obs(d, v, b)
	sig := Signal{Detector: d.name, Vector: d.name, Score: s, Evidence: ev}
	if d.sus != nil {
		sig.Sustain = d.sus(d, v)
	}
	return sig
}

// NewPacketDetectors returns one destination's packet detectors:
//
//   - syn_flood: SYNs (without ACK) above SYNPPS making at least SYNShare of
//     inbound TCP (spoofed or not, one source or many);
//   - ack_flood: payload-less ACKs above ACKPPS over at least MinFlows flows
//     (one download or speed test is one flow of full-size data segments:
//     not an attack, HANDED case F28);
//   - rst_flood: RSTs above RSTPPS, net of answers to the destination's own
//     SYNs (backscatter of its own connections);
//   - tcp_reflection:synack: SYN-ACKs above SYNACKPPS net of the
//     destination's own SYNs, from at least MinSources reflectors;
//   - ACK, RST and SYN-ACK floods must also be at least FlagShare of the
//     destination's inbound TCP; a SYN flood incident is sustained by a
//     tail of spoofed SYNs (Signal.Sustain);
//   - udp_flood: UDP from non-reflector ports above UDPPPS;
//   - udp_amplification:<name>: UDP from one reflector source port (DNS 53,
//     NTP 123, SNMP 161, … see stats.AmplificationVectors) above
//     AmplificationPPS or AmplificationBPS, from at least MinSources;
//   - icmp_flood: ICMP above ICMPPPS; ip_fragments: fragments above FragmentPPS;
//   - slow_synack_reflection (vector tcp_reflection:synack): unsolicited
//     SYN-ACKs at any rate over SlowWindow (see SlowReflection).
func NewPacketDetectors(t *PacketThresholds) []NetDetector {
	ds := []NetDetector{
		&PacketFlood{name: "syn_flood", T: t, obs: obsSYN, sus: susSYN},
		&PacketFlood{name: "ack_flood", T: t, obs: obsACK},
		&PacketFlood{name: "rst_flood", T: t, obs: obsRST},
		&PacketFlood{name: "tcp_reflection:synack", T: t, obs: obsSYNACK},
		&PacketFlood{name: "udp_flood", T: t, obs: obsUDP},
		&PacketFlood{name: "icmp_flood", T: t, obs: obsICMP},
		&PacketFlood{name: "ip_fragments", T: t, obs: obsFrag},
		&SlowReflection{T: t},
	}
	for i, av := range stats.AmplificationVectors() {
		ds = append(ds, &PacketFlood{name: "udp_amplification:" + av.Name, T: t, obs: obsAmp(i)})
	}
	return ds
}

func obsSYN(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64) {
	rate := v.Rate(SYNPPS)
	thr := b.Threshold(SYNPPS, d.T.SYNPPS, d.T.Multiplier)
	sh := share(v.Sum.SYN, v.Sum.TCP.Packets)
	return gate(sh >= d.T.SYNShare, score(rate, thr)),
		map[string]float64{"syn_pps": rate, "threshold_pps": thr, "syn_share": sh, "sources": float64(v.WindowSources)}
}

// susSYN sustains a SYN flood incident through a low-rate tail of spoofed
// SYNs: at least 10 SYN/s, 90% of inbound TCP, from about as many sources
// as packets.
func susSYN(d *PacketFlood, v *DestView) bool {
	syn := v.Sum.SYN
	return v.Rate(SYNPPS) >= 10 && share(syn, v.Sum.TCP.Packets) >= 0.9 &&
		float64(v.WindowSources) >= 0.5*float64(syn)
}

func obsACK(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64) {
	rate := v.Rate(ACKPPS)
	thr := b.Threshold(ACKPPS, d.T.ACKPPS, d.T.Multiplier)
	flows := float64(v.Sum.Flows)
	sh := share(v.Sum.ACK, v.Sum.TCP.Packets)
	return gate(flows >= d.T.MinFlows && sh >= d.T.FlagShare, score(rate, thr)),
		map[string]float64{"ack_pps": rate, "threshold_pps": thr, "flows": flows, "ack_share": sh}
}

// net returns a - b, floored at 0.
func netOf(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

func obsRST(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64) {
	rst := netOf(v.Sum.RST, v.Sum.SentSYN)
	rate := perSecond(float64(rst), v.Window)
	thr := b.Threshold(RSTPPS, d.T.RSTPPS, d.T.Multiplier)
	sh := share(rst, v.Sum.TCP.Packets)
	return gate(sh >= d.T.FlagShare, score(rate, thr)), map[string]float64{"rst_pps": rate, "threshold_pps": thr, "rst_share": sh}
}

func obsSYNACK(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64) {
	sa := netOf(v.Sum.SYNACK, v.Sum.SentSYN)
	rate := perSecond(float64(sa), v.Window)
	thr := b.Threshold(SYNACKPPS, d.T.SYNACKPPS, d.T.Multiplier)
	src := float64(v.WindowSources)
	sh := share(sa, v.Sum.TCP.Packets)
	return gate(src >= d.T.MinSources && sh >= d.T.FlagShare, score(rate, thr)),
		map[string]float64{"synack_pps": rate, "threshold_pps": thr, "sources": src, "synack_share": sh}
}

func obsUDP(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64) {
	rate := perSecond(float64(v.Sum.UDPOther.Packets), v.Window)
	thr := b.Threshold(UDPPPS, d.T.UDPPPS, d.T.Multiplier)
	return score(rate, thr), map[string]float64{"udp_pps": rate, "threshold_pps": thr}
}

func obsICMP(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64) {
	rate := v.Rate(ICMPPPS)
	thr := b.Threshold(ICMPPPS, d.T.ICMPPPS, d.T.Multiplier)
	return score(rate, thr), map[string]float64{"icmp_pps": rate, "threshold_pps": thr}
}

func obsFrag(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64) {
	rate := v.Rate(FragPPS)
	thr := b.Threshold(FragPPS, d.T.FragmentPPS, d.T.Multiplier)
	return score(rate, thr), map[string]float64{"fragment_pps": rate, "threshold_pps": thr}
}

func obsAmp(i int) func(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64) {
	return func(d *PacketFlood, v *DestView, b *Baseline) (float64, map[string]float64) {
		t := v.Sum.Amplification[i]
		if t.Packets == 0 {
			return 0, nil
		}
		pps := perSecond(float64(t.Packets), v.Window)
		bps := 8 * perSecond(float64(t.Bytes), v.Window)
		thr := b.Threshold(UDPPPS, d.T.AmplificationPPS, d.T.Multiplier)
		s := max(score(pps, thr), score(bps, d.T.AmplificationBPS))
		src := float64(v.WindowSources)
		return gate(src >= d.T.MinSources, s),
			map[string]float64{"pps": pps, "bps": bps, "threshold_pps": thr, "sources": src}
	}
}
