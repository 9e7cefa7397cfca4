package stats

import "sync/atomic"

// ring is a bounded multi-producer single-consumer queue of fixed-size
// records, after Dmitry Vyukov's bounded MPMC queue (per-slot sequence
// numbers, one CAS per enqueue; "Bounded MPMC queue", 1024cores.net, 2011).
// Producers never block: claim fails when the ring is full. The single
// consumer is whoever holds the Accountant's drain lock.
//
// Protocol: a slot at position pos is free for the producer when its seq ==
// pos, holds a published record when seq == pos+1, and is released for the
// next lap by setting seq = pos+len(slots).
type ring[T any] struct {
	_     [64]byte
	tail  atomic.Uint64 // next position producers claim
	_     [56]byte
	head  uint64 // next position the consumer reads (consumer-owned)
	_     [56]byte
	mask  uint64
	slots []ringSlot[T]
}

type ringSlot[T any] struct {
	seq atomic.Uint64
	rec T
}

func newRing[T any](size int) *ring[T] {
	r := &ring[T]{mask: uint64(size - 1), slots: make([]ringSlot[T], size)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// claim reserves the next slot for a producer. The caller fills slot.rec and
// then calls publish(slot, pos). ok is false when the ring is full.
func (r *ring[T]) claim() (slot *ringSlot[T], pos uint64, ok bool) {
	pos = r.tail.Load()
	for {
		s := &r.slots[pos&r.mask]
		seq := s.seq.Load()
		switch dif := int64(seq - pos); {
		case dif == 0:
			if r.tail.CompareAndSwap(pos, pos+1) {
				return s, pos, true
			}
			pos = r.tail.Load()
		case dif < 0:
			return nil, 0, false // full: the slot still holds last lap's record
		default:
			pos = r.tail.Load() // another producer took pos
		}
	}
}

// publish makes a claimed slot visible to the consumer.
func (r *ring[T]) publish(s *ringSlot[T], pos uint64) { s.seq.Store(pos + 1) }

// pop returns the next published record for the consumer, or ok=false when
// none is ready (empty, or the next producer has claimed but not yet
// published; its record is taken on a later drain). The caller reads
// slot.rec and then calls release(slot).
func (r *ring[T]) pop() (slot *ringSlot[T], ok bool) {
	s := &r.slots[r.head&r.mask]
	if s.seq.Load() != r.head+1 {
		return nil, false
	}
	return s, true
}

// release hands a popped slot back to producers.
func (r *ring[T]) release(s *ringSlot[T]) {
	s.seq.Store(r.head + r.mask + 1)
	r.head++
}

// size returns the ring's capacity.
func (r *ring[T]) size() int { return len(r.slots) }
