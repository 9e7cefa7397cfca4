package detect

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

// Pipeline drives an Accountant and an Engine on event time, for replay and
// tests: records are fed in (roughly) time order and, whenever a record's
// time passes the end of the current tick, the tick is snapshotted and
// stepped first. Ticks are aligned to multiples of Config.Tick since the
// Unix epoch. Records older than the current tick (out of order) count in
// the current tick. Long idle gaps are skipped: once the engine is idle and
// the window has drained, the pipeline jumps to the next record's tick
// rather than stepping through empty ticks (baselines weight samples by the
// time between them, so the gap is not learned as zero traffic).
//
// Not safe for concurrent use. Live serving uses the Accountant and Engine
// directly with a wall-clock ticker.
type Pipeline struct {
	acc    *stats.Accountant
	eng    *Engine
	tick   int64
	window int64
	next   int64 // end of the current tick; 0 before the first record
	empty  int   // consecutive empty ticks stepped
}

// NewPipeline returns a pipeline over acc and eng.
func NewPipeline(acc *stats.Accountant, eng *Engine) *Pipeline {
	c := eng.Config()
	return &Pipeline{acc: acc, eng: eng, tick: int64(c.Tick), window: int64(c.Window)}
}

// Request advances to r.Time and accounts r.
func (p *Pipeline) Request(ctx context.Context, r *stats.Request) error {
	err := p.Advance(ctx, r.Time)
	p.acc.ObserveRequest(r)
	return err
}

// Packet advances to pk.Time and accounts pk.
func (p *Pipeline) Packet(ctx context.Context, pk *stats.Packet) error {
	err := p.Advance(ctx, pk.Time)
	p.acc.ObservePacket(pk)
	return err
}

// Advance steps every tick that ends at or before now (Unix ns).
func (p *Pipeline) Advance(ctx context.Context, now int64) error {
	if p.next == 0 {
		start := now - mod(now, p.tick)
		p.acc.Begin(start)
		p.next = start + p.tick
		return nil
	}
	var err error
	for now >= p.next {
		if e := p.stepTick(ctx); e != nil && err == nil {
			err = e
		}
		// Skip idle gaps once the window has emptied.
		if now >= p.next && int64(p.empty)*p.tick > p.window && p.eng.Idle() {
			start := now - mod(now, p.tick)
			p.acc.Begin(start)
			p.next = start + p.tick
		}
	}
	return err
}

func (p *Pipeline) stepTick(ctx context.Context) error {
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

// Finish steps the last partial tick, then steps empty ticks until every
// target is back to normal (so incidents close with their recovery in the
// timeline), at most RecoverAfter + Window + QuietTicks ticks, and finally
// closes whatever is still open with Engine.Finish.
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
	keep(p.stepTick(ctx))
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
