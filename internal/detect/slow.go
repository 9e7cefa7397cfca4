package detect

import (
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

// Low-and-slow TCP SYN-ACK reflection. A reflection attack need not be a
// flood: the StopDDoS capture amp.TCP.syn.optionallyACK.optionallysamePort
// sends 10.10.10.10 about 40 SYN-ACKs a minute (from port 21 to port 21)
// for 14 minutes, far below any rate threshold. What gives it away is that
// the SYN-ACKs are unsolicited (REFERENCE.md: "TCP SYN-ACK reflection
// arrives as SYN-ACKs the victim never asked for"): the destination sent no
// SYN in the window, and the SYN-ACKs are most of its inbound TCP, so no
// connection it opened explains them. The destination's figures are summed
// over PacketThresholds.SlowWindow by a slowWatch (one per Engine) and handed
// to the SlowReflection detector in DestView.Slow.

// slowBuckets is the number of buckets a SlowWindow is kept in: the window
// slides by SlowWindow/slowBuckets (10 s for the default 60 s), the oldest
// bucket dropping out whole.
const slowBuckets = 6

// slowHold is the score (fraction of the thresholds) down to which a slow
// reflection is held open between its packets: enter at 1, leave below 0.5.
const slowHold = 0.5

// SlowView is one destination's TCP accounting over the low-and-slow
// window (PacketThresholds.SlowWindow), for SlowReflection. The zero value
// means the destination is not watched (it received no unsolicited SYN-ACK
// in the window).
type SlowView struct {
	// Window is the time the figures cover (≤ SlowWindow; less for a
	// destination watched for a shorter time).
	Window time.Duration
	// SYNACK counts SYN-ACKs received, SentSYN SYNs the destination itself
	// sent (stats.DestSnapshot.SentSYN plus stats.NetSnapshot.SYNSenders)
	// and TCP all inbound TCP packets, over the window (after sampling).
	SYNACK, SentSYN, TCP uint64
	// Sources estimates the distinct sources of all inbound packets over
	// the window (HyperLogLog union, refreshed at most once a second); 0
	// when not estimated because the destination sent SYNs or got fewer
	// than half SlowSYNACKs SYN-ACKs.
	Sources uint64
	// LastSYNACK is the end of the latest tick that brought SYN-ACKs.
	LastSYNACK time.Time
}

// slowBucket is one slice of a watched destination's window.
type slowBucket struct {
	n                    int64 // bucket number: tick start / bucket length; 0 = unused
	synack, sentSYN, tcp uint64
	sources              *stats.HLL // nil until a tick with a sketch
}

// slowDest is one watched destination.
type slowDest struct {
	b      [slowBuckets]slowBucket
	since  int64 // start of the first tick watched, ns
	lastSA int64 // end of the latest tick with SYN-ACKs, ns
	view   SlowView
	// union is the window's sources sketch as of bucket number unionK (0:
	// not kept): the buckets' union plus every tick merged since, valid
	// until the oldest bucket drops out. Its estimate (view.Sources) is
	// refreshed when it changed, at most once a second of event time.
	union   *stats.HLL
	unionK  int64
	changed bool
	estAt   int64
}

// slowWatch sums, per destination, the figures of the low-and-slow
// reflection detector over the long window. It watches a destination from
// the first tick in which it received SYN-ACKs without sending a SYN, and
// forgets it once its window is empty. At most max destinations are watched
// (each costs up to slowBuckets+1 source sketches, 16 KiB each at the
// default stats.Config.DestPrecision: about 7 MiB for 64); when full, one makes room in slowLess order
// (sent SYNs, fewest SYN-ACKs, most recently watched) unless it is itself a
// candidate (no SYN sent, at least half SlowSYNACKs).
type slowWatch struct {
	t       *PacketThresholds
	bucket  int64 // bucket length, ns
	max     int
	dests   map[netip.Addr]*slowDest
	prevSYN []stats.Counted[netip.Addr] // the previous tick's SYNSenders
	spare   *slowDest
}

func newSlowWatch(t *PacketThresholds, limit int) *slowWatch {
	return &slowWatch{t: t, bucket: max(int64(t.SlowWindow)/slowBuckets, 1), max: limit,
		dests: map[netip.Addr]*slowDest{}}
}

// observe folds one tick in and refreshes every watched destination's view.
func (w *slowWatch) observe(net *stats.NetSnapshot, span tickSpan) {
	k := span.start/w.bucket + 1 // +1 keeps 0 free for "unused"
	for i := range net.Dests {
		d := &net.Dests[i]
		sd := w.dests[d.Dst]
		if sd == nil {
			if d.SYNACK == 0 || d.SentSYN > 0 {
				continue
			}
			if sd = w.admit(d.Dst, span.start); sd == nil {
				continue
			}
			// The SYN answered by this SYN-ACK may have gone out in the
			// previous tick, while the destination received nothing.
			for _, s := range w.prevSYN {
				if s.Key == d.Dst {
					w.at(sd, k).sentSYN += s.Count
				}
			}
		}
		b := w.at(sd, k)
		b.synack += d.SYNACK
		b.sentSYN += d.SentSYN
		b.tcp += d.TCP.Packets
		if d.SourcesHLL != nil {
			if b.sources == nil {
				b.sources = d.SourcesHLL.Clone()
			} else {
				_ = b.sources.Merge(d.SourcesHLL) // one accountant: same precision
			}
			if sd.unionK == k {
				_ = sd.union.Merge(d.SourcesHLL)
				sd.changed = true
			}
		}
		if d.SYNACK > 0 {
			sd.lastSA = span.end
		}
	}
	for _, s := range net.SYNSenders {
		if sd := w.dests[s.Key]; sd != nil {
			w.at(sd, k).sentSYN += s.Count
		}
	}
	w.prevSYN = append(w.prevSYN[:0], net.SYNSenders...)
	for a, sd := range w.dests {
		if !w.refresh(sd, k, span.end) {
			delete(w.dests, a)
			w.spare = sd
		}
	}
}

// at returns sd's bucket for bucket number k, reset if it held an older one.
func (w *slowWatch) at(sd *slowDest, k int64) *slowBucket {
	b := &sd.b[k%slowBuckets]
	if b.n != k {
		src := b.sources
		if src != nil {
			src.Reset()
		}
		*b = slowBucket{n: k, sources: src}
	}
	return b
}

// admit starts watching a, making room if needed; nil when full of
// candidates.
func (w *slowWatch) admit(a netip.Addr, start int64) *slowDest {
	if len(w.dests) >= w.max {
		var victim netip.Addr
		var worst *slowDest
		for k, sd := range w.dests {
			if worst == nil || slowLess(sd, k, worst, victim) {
				victim, worst = k, sd
			}
		}
		if worst == nil || (worst.view.SentSYN == 0 && float64(worst.view.SYNACK) >= slowHold*w.t.SlowSYNACKs) {
			return nil
		}
		delete(w.dests, victim)
		w.spare = worst
	}
	sd := w.spare
	w.spare = nil
	if sd == nil {
		sd = &slowDest{}
	}
	for i := range sd.b {
		sd.b[i].n = 0
	}
	sd.since, sd.lastSA, sd.view, sd.unionK, sd.estAt = start, 0, SlowView{}, 0, 0
	w.dests[a] = sd
	return sd
}

// slowLess orders eviction: destinations that sent SYNs first, then the
// fewest SYN-ACKs, then the most recently watched (a churn of hosts each
// getting one SYN-ACK replaces itself, not a destination watched longer),
// then by address.
func slowLess(a *slowDest, aa netip.Addr, b *slowDest, ba netip.Addr) bool {
	rank := func(sd *slowDest) int64 {
		if sd.view.SentSYN > 0 {
			return -1
		}
		return int64(sd.view.SYNACK)
	}
	switch ra, rb := rank(a), rank(b); {
	case ra != rb:
		return ra < rb
	case a.since != b.since:
		return a.since > b.since
	}
	return aa.Less(ba)
}

// refresh recomputes sd.view at bucket number k and tick end; false when
// the window is empty.
func (w *slowWatch) refresh(sd *slowDest, k, end int64) bool {
	v := SlowView{Sources: sd.view.Sources}
	var hlls []*stats.HLL
	live := false
	for i := range sd.b {
		b := &sd.b[i]
		if b.n == 0 || b.n <= k-slowBuckets || b.n > k {
			continue
		}
		live = live || b.tcp > 0 || b.sentSYN > 0
		v.SYNACK += b.synack
		v.SentSYN += b.sentSYN
		v.TCP += b.tcp
		if b.sources != nil {
			hlls = append(hlls, b.sources)
		}
	}
	if !live {
		return false
	}
	v.Window = time.Duration(min(end-sd.since, slowBuckets*w.bucket))
	if sd.lastSA > 0 {
		v.LastSYNACK = time.Unix(0, sd.lastSA)
	}
	switch {
	case v.SentSYN > 0 || float64(v.SYNACK) < slowHold*w.t.SlowSYNACKs || len(hlls) == 0:
		v.Sources, sd.unionK = 0, 0 // not a candidate: no sketch kept up
	case sd.unionK != k:
		// A bucket dropped out (or the sketch was not kept): rebuild.
		if sd.union == nil {
			sd.union = hlls[0].Clone()
		} else {
			sd.union.CopyFrom(hlls[0])
		}
		for _, h := range hlls[1:] {
			_ = sd.union.Merge(h)
		}
		sd.unionK = k
		v.Sources, sd.changed, sd.estAt = sd.union.Estimate(), false, end
	case sd.changed && end-sd.estAt >= int64(time.Second):
		v.Sources, sd.changed, sd.estAt = sd.union.Estimate(), false, end
	}
	sd.view = v
	return true
}

// view returns a's window figures; the zero SlowView when a is not watched.
func (w *slowWatch) view(a netip.Addr) SlowView {
	if sd := w.dests[a]; sd != nil {
		return sd.view
	}
	return SlowView{}
}

// slowScore is the low-and-slow reflection score of s: the lesser of
// SYN-ACKs over SlowSYNACKs and sources over SlowSources; 0 when the
// destination sent a SYN in the window (it opens connections: the SYN-ACKs
// may be answers) or got none; at most slowHold when SYN-ACKs are less than
// SlowShare of its inbound TCP.
func slowScore(t *PacketThresholds, s *SlowView) float64 {
	if s.SentSYN > 0 || s.SYNACK == 0 {
		return 0
	}
	sc := min(float64(s.SYNACK)/t.SlowSYNACKs, float64(s.Sources)/t.SlowSources)
	return gate(share(s.SYNACK, s.TCP) >= t.SlowShare, sc)
}

// ripe reports whether a is a low-and-slow reflection victim this tick (the
// engine then gives it a state machine however low its rate).
func (w *slowWatch) ripe(d *stats.DestSnapshot) bool {
	sd := w.dests[d.Dst]
	return sd != nil && d.SYNACK > 0 && slowScore(w.t, &sd.view) >= 1
}

// SlowReflection is the low-and-slow TCP SYN-ACK reflection detector
// (vector "tcp_reflection:synack", like the flood detector). Over
// PacketThresholds.SlowWindow (DestView.Slow) the destination sent no SYN,
// received at least SlowSYNACKs SYN-ACKs making at least SlowShare of its
// inbound TCP, from at least SlowSources distinct sources: the score is the
// lesser of the two ratios. A sparse attack arrives in single packets
// seconds apart, so the detector fires only on ticks that bring SYN-ACKs
// (the incident's end is the last of them) and in between sets Signal.Hold
// while a SYN-ACK came within SlowIdle and the score is at least 0.5: the
// incident stays open across the gaps and closes once SYN-ACKs stop.
type SlowReflection struct {
	T *PacketThresholds
}

// Name implements NetDetector.
func (d *SlowReflection) Name() string { return "slow_synack_reflection" }

// Observe implements NetDetector.
func (d *SlowReflection) Observe(v *DestView, _ *Baseline, now time.Time) Signal {
	s := &v.Slow
	sig := Signal{Detector: d.Name(), Vector: "tcp_reflection:synack"}
	if s.SYNACK == 0 {
		return sig
	}
	sc := slowScore(d.T, s)
	sig.Evidence = map[string]float64{"synacks": float64(s.SYNACK), "sources": float64(s.Sources),
		"sent_syn": float64(s.SentSYN), "synack_share": share(s.SYNACK, s.TCP), "window_s": s.Window.Seconds()}
	sig.Hold = sc >= slowHold && !s.LastSYNACK.IsZero() && now.Sub(s.LastSYNACK) < d.T.SlowIdle
	if v.Tick != nil && v.Tick.SYNACK > 0 {
		sig.Score = sc
	}
	return sig
}
