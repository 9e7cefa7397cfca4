package detect

import (
	"context"
	"time"
	"unsafe"

	"github.com/portcullis/portcullis/internal/stats"
)

// DefaultLateness is how far out of order a Pipeline accepts records by
// default. Access logs are written in completion order and some (the
// anonymised benchmark log in ../shared/data shuffles each minute) are far
// more disordered than that; 60 s of event time costs memory proportional to
// 60 s of traffic, not CPU.
const DefaultLateness = 60 * time.Second

// DefaultMaxBuffered bounds the records a Pipeline holds for reordering
// (about 60 MiB of requests): at high rates the effective lateness shrinks
// to the time these records cover.
const DefaultMaxBuffered = 1 << 17

// PipelineOption configures a Pipeline.
type PipelineOption func(*Pipeline)

// WithLateness sets how far behind the newest record a record may arrive
// and still be counted in its own tick (default DefaultLateness; 0 counts
// every record in the tick being filled, the cheapest choice for inputs in
// time order such as pcap). Records later than that count in the oldest open
// tick and in LateRecords.
func WithLateness(d time.Duration) PipelineOption {
	return func(p *Pipeline) { p.lateness = max(d, 0) }
}

// WithMaxBuffered bounds the records held for reordering (default
// DefaultMaxBuffered); when it is reached the oldest tick is stepped early.
func WithMaxBuffered(n int) PipelineOption {
	return func(p *Pipeline) { p.maxBuffered = max(n, 1) }
}

// Pipeline drives an Accountant and an Engine on event time, for replay and
// tests. Records are fed in roughly time order; they are held in per-tick
// buckets for the lateness, and a tick is snapshotted and stepped once the
// newest record is more than the lateness past its end. Ticks are aligned
// to multiples of Config.Tick since the Unix epoch. Long idle gaps are
// skipped: once the engine is idle and the window has drained, the pipeline
// jumps to the next record's tick instead of stepping through empty ticks
// (baselines weight samples by the time between them, so the gap is not
// learned as zero traffic).
//
// Requests' strings are copied when buffered, so callers may reuse their
// memory. Not safe for concurrent use; live serving uses the Accountant and
// Engine directly with a wall-clock ticker.
type Pipeline struct {
	acc         *stats.Accountant
	eng         *Engine
	tick        int64
	window      int64
	lateness    time.Duration
	maxBuffered int
	buffered    int

	next    int64 // end of the oldest open tick; 0 before the first record
	newest  int64 // newest record time seen
	buckets []bucket
	pool    []bucket
	head    int // index of the oldest open tick's bucket
	empty   int // consecutive empty ticks stepped
	late    uint64
}

type bucket struct {
	reqs  []stats.Request
	pkts  []stats.Packet
	arena []byte // the buffered requests' strings
}

// bucketPoolSize is the least flushed-bucket storage kept for reuse; the
// pool may grow to the ring's size (the ticks a lateness window keeps in
// flight, whose records maxBuffered already bounds): with a 60 s lateness
// about 242 buckets are in flight, and a pool of 16 made the pipeline
// reallocate most of them every tick (~25% of a dense log replay's feeding
// stage in a profile).
const bucketPoolSize = 16

// recycle empties a flushed bucket, keeping its storage in the pool.
func (p *Pipeline) recycle(b *bucket) {
	if b.reqs == nil && b.pkts == nil && b.arena == nil {
		return
	}
	clear(b.reqs)
	if len(p.pool) < max(bucketPoolSize, len(p.buckets)) {
		p.pool = append(p.pool, bucket{reqs: b.reqs[:0], pkts: b.pkts[:0], arena: b.arena[:0]})
	}
	*b = bucket{}
}

// ready gives an unused bucket storage from the pool.
func (p *Pipeline) ready(b *bucket) {
	if b.reqs == nil && b.pkts == nil && b.arena == nil && len(p.pool) > 0 {
		*b = p.pool[len(p.pool)-1]
		p.pool = p.pool[:len(p.pool)-1]
	}
}

// str copies s into the bucket's arena and returns a string over the copy.
// The copy lives until the bucket is flushed: the accountant copies what it
// keeps (stats.Request's contract), and the arena is only overwritten after
// the flush, when no buffered Request refers to it any more.
func (b *bucket) str(s string) string {
	if s == "" {
		return ""
	}
	off := len(b.arena)
	if cap(b.arena)-off < len(s) {
		// A new array; strings already handed out keep the old one alive.
		b.arena = append(make([]byte, 0, max(2*cap(b.arena), len(s), 4096)), b.arena...)
	}
	b.arena = append(b.arena, s...)
	return unsafe.String(&b.arena[off], len(s))
}

// internMethod returns a constant for the common methods.
func internMethod(m string) (string, bool) {
	switch m {
	case "GET":
		return "GET", true
	case "POST":
		return "POST", true
	case "HEAD":
		return "HEAD", true
	}
	return "", false
}

// NewPipeline returns a pipeline over acc and eng.
func NewPipeline(acc *stats.Accountant, eng *Engine, opts ...PipelineOption) *Pipeline {
	c := eng.Config()
	p := &Pipeline{acc: acc, eng: eng, tick: int64(c.Tick), window: int64(c.Window),
		lateness: DefaultLateness, maxBuffered: DefaultMaxBuffered}
	for _, o := range opts {
		o(p)
	}
	p.buckets = make([]bucket, int64(p.lateness)/p.tick+2)
	return p
}

// LateRecords returns how many records arrived later than the lateness
// allows and were counted in a later tick than their own.
func (p *Pipeline) LateRecords() uint64 { return p.late }

// Request accounts r in its tick, stepping the ticks that are complete.
func (p *Pipeline) Request(ctx context.Context, r *stats.Request) error {
	b, err := p.place(ctx, r.Time)
	if b == nil {
		p.acc.ObserveRequest(r)
		return err
	}
	c := *r
	if m, ok := internMethod(c.Method); ok {
		c.Method = m
	} else {
		c.Method = b.str(c.Method)
	}
	// The accountant keeps at most stats.LabelBytes of paths and user agents.
	c.Path = b.str(c.Path[:min(len(c.Path), stats.LabelBytes)])
	c.UserAgent = b.str(c.UserAgent[:min(len(c.UserAgent), stats.LabelBytes)])
	c.Query = b.str(c.Query)
	c.Country = b.str(c.Country)
	b.reqs = append(b.reqs, c)
	p.buffered++
	return err
}

// Packet accounts pk in its tick, stepping the ticks that are complete.
func (p *Pipeline) Packet(ctx context.Context, pk *stats.Packet) error {
	b, err := p.place(ctx, pk.Time)
	if b == nil {
		p.acc.ObservePacket(pk)
		return err
	}
	b.pkts = append(b.pkts, *pk)
	p.buffered++
	return err
}

// Advance steps every tick that is complete once event time has reached now
// (Unix ns): ticks ending at or before now - lateness.
func (p *Pipeline) Advance(ctx context.Context, now int64) error {
	_, err := p.place(ctx, now)
	return err
}

// place advances event time to t and returns the bucket a record at t
// belongs in, or nil when it goes straight to the accountant (no lateness).
func (p *Pipeline) place(ctx context.Context, t int64) (*bucket, error) {
	if p.next == 0 {
		// The first record may not be the earliest: open the ring a
		// lateness before it.
		first := t - int64(p.lateness)
		start := first - mod(first, p.tick)
		p.acc.Begin(start)
		p.next = start + p.tick
		p.newest = t
	}
	p.newest = max(p.newest, t)
	var err error
	keep := func(e error) {
		if e != nil && err == nil {
			err = e
		}
	}
	// Step ticks whose end plus the lateness has passed, and make room in
	// the bucket ring for t.
	horizon := p.newest - int64(p.lateness)
	span := int64(len(p.buckets)-1) * p.tick
	for p.next <= horizon || t >= p.next+span || p.buffered >= p.maxBuffered {
		keep(p.stepTick(ctx))
		if p.empty > 0 && int64(p.empty)*p.tick > p.window && p.bufferedEmpty() && p.eng.Idle() {
			// Idle gap: jump to the tick holding the earliest of horizon and t.
			to := min(max(horizon, p.next), t)
			if to >= p.next {
				start := to - mod(to, p.tick)
				p.acc.Begin(start)
				p.next = start + p.tick
			}
		}
	}
	if p.lateness == 0 {
		return nil, err
	}
	off := (t - (p.next - p.tick)) / p.tick
	if t < p.next-p.tick {
		off = 0
		p.late++
	}
	b := &p.buckets[(p.head+int(off))%len(p.buckets)]
	p.ready(b)
	return b, err
}

func (p *Pipeline) bufferedEmpty() bool {
	for i := range p.buckets {
		if len(p.buckets[i].reqs) > 0 || len(p.buckets[i].pkts) > 0 {
			return false
		}
	}
	return true
}

// stepTick feeds the oldest bucket to the accountant, snapshots its tick and
// steps the engine.
func (p *Pipeline) stepTick(ctx context.Context) error {
	if p.lateness > 0 {
		b := &p.buckets[p.head]
		for i := range b.reqs {
			p.acc.ObserveRequest(&b.reqs[i])
		}
		for i := range b.pkts {
			p.acc.ObservePacket(&b.pkts[i])
		}
		p.buffered -= len(b.reqs) + len(b.pkts)
		p.recycle(b)
		p.head = (p.head + 1) % len(p.buckets)
	}
	snap := p.acc.Snapshot(p.next)
	if isEmpty(snap) {
		p.empty++
	} else {
		p.empty = 0
	}
	err := p.eng.Step(ctx, snap, time.Unix(0, p.next))
	p.next += p.tick
	return err
}

func isEmpty(s *stats.Snapshot) bool {
	if s.Net.Total.Packets > 0 {
		return false
	}
	for i := range s.Sites {
		t := &s.Sites[i]
		if t.Requests > 0 || t.ConnNew > 0 || t.H2Resets > 0 || t.ConnRefused > 0 {
			return false
		}
		for _, n := range t.Slow {
			if n > 0 {
				return false
			}
		}
	}
	return true
}

// Finish steps the buffered ticks, then empty ticks until every target is
// back to normal (so incidents close with their recovery in the timeline),
// at most RecoverAfter + Window + QuietTicks ticks, and finally closes
// whatever is still open with Engine.Finish.
func (p *Pipeline) Finish(ctx context.Context) error {
	if p.next == 0 {
		return nil
	}
	var errs error
	keep := func(err error) {
		if err != nil && errs == nil {
			errs = err
		}
	}
	for p.next <= p.newest+p.tick || !p.bufferedEmpty() {
		keep(p.stepTick(ctx))
	}
	c := p.eng.Config()
	limit := int((c.RecoverAfter+c.Window)/c.Tick) + c.QuietTicks + 1
	for i := 0; i < limit && !p.eng.Idle(); i++ {
		keep(p.stepTick(ctx))
	}
	keep(p.eng.Finish(ctx, time.Unix(0, p.next-p.tick)))
	return errs
}

// mod returns a mod m in [0, m).
func mod(a, m int64) int64 {
	r := a % m
	if r < 0 {
		r += m
	}
	return r
}
