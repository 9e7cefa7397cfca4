package stats

import (
	"context"

	"fmt"
	"github.com/cespare/xxhash/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Accountant is one process's traffic accounting for a fixed set of sites
// (known by index) and for packets.
//
// Design: the request path (ObserveRequest, ObservePacket and the connection
// events) only adds to a few per-site atomic counters and copies a compact
// record into a bounded lock-free ring (Vyukov's MPSC variant). All sketch
// work — HyperLogLog, space-saving heavy hitters, histograms, path
// normalisation — happens in the single drain, which holds a mutex no
// request ever waits on:
//   - Drain (or Run in the background) and Snapshot empty the rings;
//   - a producer that finds its ring full drains it in-line if it can take
//     the drain lock without waiting (TryLock), which is how a single-threaded
//     replay stays lossless without a background goroutine; if someone else
//     is draining, the record is dropped from the sketches (the exact
//     counters still have it) and counted in Snapshot.Dropped.
//
// So the request path never blocks, costs a few atomic adds and one record
// copy, and memory is fixed by Config, not by the number of sources. All
// methods are safe for concurrent use.
type Accountant struct {
	cfg    Config
	hot    []siteHot
	reqs   *ring[reqRecord]
	pkts   *ring[pktRecord]
	wake   chan struct{}
	netHot struct {
		packets, bytes atomic.Uint64
		_              [48]byte
	}
	dropped  atomic.Uint64
	zeroRate atomic.Uint64
	badSite  atomic.Uint64

	mu    sync.Mutex // the drain lock; guards everything below
	sites []*siteAcc
	net   *netAcc
	start int64 // Start of the current tick, 0 = unknown
	first int64 // earliest record time drained this tick (when start == 0)
}

// siteHot holds the counters the request path updates directly, padded to
// keep sites on separate cache lines.
type siteHot struct {
	requests, bytes      atomic.Uint64
	connOpen             atomic.Int64
	connNew, connRefused atomic.Uint64
	slow                 [NumSlowKinds]atomic.Uint64
	h2Resets             atomic.Uint64
	_                    [8]byte
}

// New returns an Accountant for cfg (defaulted with Config.Default and
// validated; errors wrap ErrConfig).
func New(cfg Config) (*Accountant, error) {
	cfg = cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Accountant{
		cfg:  cfg,
		hot:  make([]siteHot, len(cfg.Sites)),
		reqs: newRing[reqRecord](cfg.RingSize),
		pkts: newRing[pktRecord](cfg.PacketRingSize),
		wake: make(chan struct{}, 1),
		net:  newNetAcc(&cfg),
	}
	for i := range cfg.Sites {
		a.sites = append(a.sites, newSiteAcc(&cfg, &cfg.Sites[i]))
	}
	return a, nil
}

// Config returns the defaulted configuration in use.
func (a *Accountant) Config() Config { return a.cfg }

// Begin sets the start (Unix ns, event time) of the current tick. Without
// it, the first Snapshot starts at the earliest record time it holds (or at
// now when it holds none, giving a zero-length tick).
func (a *Accountant) Begin(now int64) {
	a.mu.Lock()
	a.start = now
	a.mu.Unlock()
}

// ObserveRequest accounts one request. It never blocks and does not retain
// r. Requests with an out-of-range Site are counted in Snapshot.BadSite and
// otherwise ignored.
func (a *Accountant) ObserveRequest(r *Request) {
	if uint(r.Site) >= uint(len(a.hot)) {
		a.badSite.Add(1)
		return
	}
	w := r.SampleRate
	if w == 0 {
		w = 1
	}
	h := &a.hot[r.Site]
	h.requests.Add(uint64(w))
	if r.Bytes > 0 {
		h.bytes.Add(uint64(r.Bytes) * uint64(w))
	}
	s, pos, ok := a.reqs.claim()
	if !ok {
		if s, pos, ok = claimFull(a, a.reqs); !ok {
			return
		}
	}
	rec := &s.rec
	rec.time = r.Time
	rec.addr = r.Addr
	rec.prefix = r.Prefix
	rec.bytes = r.Bytes
	rec.latency = int64(r.OriginLatency)
	rec.asn = r.ASN
	rec.weight = w
	rec.site = uint16(r.Site)
	rec.status = uint16(min(max(r.Status, 0), 65535))
	rec.country = [2]byte{}
	if len(r.Country) == 2 {
		rec.country = [2]byte{r.Country[0], r.Country[1]}
	}
	rec.verdict = r.Verdict
	rec.method = methodCode(r.Method)
	var fl uint8
	if r.Referer {
		fl |= recReferer
	}
	if r.OriginError {
		fl |= recOriginErr
	}
	rec.queryHash = 0
	if r.Query != "" {
		fl |= recQuery
		rec.queryHash = xxhash.Sum64String(r.Query)
	}
	rec.flags = fl
	rec.pathLen = uint8(copy(rec.path[:], r.Path))
	rec.uaLen = uint8(copy(rec.ua[:], r.UserAgent))
	a.reqs.publish(s, pos)
	a.maybeWake(pos, a.reqs.mask)
}

// ObservePacket accounts one packet or scaled flow record. It never blocks
// and does not retain p.
func (a *Accountant) ObservePacket(p *Packet) {
	w := p.SampleRate
	if w == 0 {
		w = 1
		a.zeroRate.Add(1)
	}
	a.netHot.packets.Add(uint64(w))
	a.netHot.bytes.Add(uint64(max(p.Length, 0)) * uint64(w))
	s, pos, ok := a.pkts.claim()
	if !ok {
		if s, pos, ok = claimFull(a, a.pkts); !ok {
			return
		}
	}
	s.rec = pktRecord{
		time: p.Time, src: p.Src, dst: p.Dst, length: uint32(min(max(p.Length, 0), 1<<31)), weight: w,
		srcPort: p.SrcPort, dstPort: p.DstPort, proto: p.Proto, flags: p.TCPFlags, frag: p.Fragment,
	}
	a.pkts.publish(s, pos)
	a.maybeWake(pos, a.pkts.mask)
}

// claimFull handles a full ring: drain in-line if the drain lock is free,
// else drop.
func claimFull[T any](a *Accountant, r *ring[T]) (*ringSlot[T], uint64, bool) {
	if a.mu.TryLock() {
		a.drainLocked()
		a.mu.Unlock()
		if s, pos, ok := r.claim(); ok {
			return s, pos, true
		}
	}
	a.dropped.Add(1)
	return nil, 0, false
}

// maybeWake nudges Run's drain loop each time a quarter of a ring fills.
func (a *Accountant) maybeWake(pos, mask uint64) {
	if pos&(mask>>2) == 0 {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// ConnOpened counts a connection accepted for site.
func (a *Accountant) ConnOpened(site int) {
	if h := a.site(site); h != nil {
		h.connOpen.Add(1)
		h.connNew.Add(1)
	}
}

// ConnClosed counts a connection of site closed.
func (a *Accountant) ConnClosed(site int) {
	if h := a.site(site); h != nil {
		h.connOpen.Add(-1)
	}
}

// ConnRefused counts a connection refused (limits) for site.
func (a *Accountant) ConnRefused(site int) {
	if h := a.site(site); h != nil {
		h.connRefused.Add(1)
	}
}

// SlowConn counts a connection of site cut for being slow in the given way.
func (a *Accountant) SlowConn(site int, kind SlowKind) {
	if h := a.site(site); h != nil && kind < NumSlowKinds {
		h.slow[kind].Add(1)
	}
}

// H2Reset counts an HTTP/2 stream reset by the client (RST_STREAM) on site.
func (a *Accountant) H2Reset(site int) {
	if h := a.site(site); h != nil {
		h.h2Resets.Add(1)
	}
}

func (a *Accountant) site(i int) *siteHot {
	if uint(i) >= uint(len(a.hot)) {
		a.badSite.Add(1)
		return nil
	}
	return &a.hot[i]
}

// Drain moves queued records into the sketches now. Live, Run calls it in
// the background; replay need not call it (full rings drain in-line).
func (a *Accountant) Drain() {
	a.mu.Lock()
	a.drainLocked()
	a.mu.Unlock()
}

// Run drains the rings every interval (and sooner when a ring fills) until
// ctx ends; it returns ctx's error. Use it live so that snapshots stay cheap
// and producers never drain in-line.
func (a *Accountant) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("stats: drain interval %v must be positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-a.wake:
		}
		a.Drain()
	}
}

func (a *Accountant) drainLocked() {
	for {
		s, ok := a.reqs.pop()
		if !ok {
			break
		}
		a.seen(s.rec.time)
		a.sites[s.rec.site].add(&s.rec)
		a.reqs.release(s)
	}
	for {
		s, ok := a.pkts.pop()
		if !ok {
			break
		}
		a.seen(s.rec.time)
		a.net.add(&s.rec)
		a.pkts.release(s)
	}
}

// seen tracks the earliest record time of a tick whose start is unknown.
func (a *Accountant) seen(t int64) {
	if a.start == 0 && t > 0 && (a.first == 0 || t < a.first) {
		a.first = t
	}
}

// Snapshot drains everything queued and returns the tick that ends at now
// (Unix ns, event time), resetting the per-tick state. Call it once per tick
// from one goroutine (the detection loop or replay driver).
func (a *Accountant) Snapshot(now int64) *Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.drainLocked()
	start := a.start
	if start == 0 {
		start = a.first
	}
	if start == 0 || start > now {
		start = now
	}
	snap := &Snapshot{
		Start: start, End: now,
		Sites:          make([]SiteSnapshot, len(a.sites)),
		Dropped:        a.dropped.Swap(0),
		ZeroSampleRate: a.zeroRate.Swap(0),
		BadSite:        a.badSite.Swap(0),
	}
	for i, sa := range a.sites {
		out := &snap.Sites[i]
		out.Site = i
		h := &a.hot[i]
		out.Requests = h.requests.Swap(0)
		out.Bytes = h.bytes.Swap(0)
		out.ConnOpen = h.connOpen.Load()
		out.ConnNew = h.connNew.Swap(0)
		out.ConnRefused = h.connRefused.Swap(0)
		for k := range h.slow {
			out.Slow[k] = h.slow[k].Swap(0)
		}
		out.H2Resets = h.h2Resets.Swap(0)
		sa.snapshot(out, a.cfg.TopN)
	}
	snap.Net.Total = Traffic{Packets: a.netHot.packets.Swap(0), Bytes: a.netHot.bytes.Swap(0)}
	a.net.snapshot(&snap.Net, a.cfg.TopN)
	a.start = now
	a.first = 0
	return snap
}
