package edge

import (
	"context"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/ratelimit"
)

// budget is a byte semaphore whose acquirers may wait a bounded time for
// room. With a per-key share (the request buffer's memory: one key per
// resolved client address) no single key may hold more than perKey bytes,
// so one client cannot take the whole budget.
//
// The per-key table holds an entry only while its key holds bytes: every
// entry holds at least one 4 KiB chunk, so the table never has more than
// total/4 KiB entries however many addresses a flood rotates through
// (HANDED F11: bounded memory, nothing to sweep).
type budget struct {
	mu     sync.Mutex
	used   int64
	total  int64
	perKey int64                   // bytes one key may hold; 0 = no share
	keys   map[ratelimit.Key]int64 // bytes held per key (nil = not tracked)
	wake   chan struct{}           // closed when room frees; nil while nobody waits
}

// refusal says why budget.acquire did not reserve.
type refusal uint8

const (
	admitted     refusal = iota
	refusedFull          // the whole budget stayed full
	refusedShare         // the key's share stayed full
)

// err maps a refusal to the error Fill returns: ErrBufferShareFull for the
// key's share, full for the whole budget, nil when admitted.
func (r refusal) err(full error) error {
	switch r {
	case refusedShare:
		return ErrBufferShareFull
	case refusedFull:
		return full
	}
	return nil
}

// trackKeys turns on the per-key table (before first use).
func (g *budget) trackKeys() { g.keys = map[ratelimit.Key]int64{} }

func (g *budget) setTotal(n int64) {
	g.mu.Lock()
	g.total = n
	g.wakeLocked()
	g.mu.Unlock()
}

// setPerKey sets the per-key share (bytes; 0 = none). Keys already above a
// lowered share keep what they hold and get no more until under it.
func (g *budget) setPerKey(n int64) {
	g.mu.Lock()
	g.perKey = n
	g.wakeLocked()
	g.mu.Unlock()
}

func (g *budget) limit() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

func (g *budget) inUse() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used
}

// holders is the number of keys holding bytes now.
func (g *budget) holders() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys)
}

// tryLocked reserves n bytes for k if both the key's share and the whole
// budget have room. The share is checked first: a client over its share
// is told so (429) even when the whole budget is full too. The invalid
// key (no client identity) has no share, only the whole budget.
func (g *budget) tryLocked(k ratelimit.Key, n int64) refusal {
	keyed := g.keys != nil && k.IsValid()
	var held int64
	if keyed {
		held = g.keys[k]
		if g.perKey > 0 && held+n > g.perKey {
			return refusedShare
		}
	}
	if g.used+n > g.total {
		return refusedFull
	}
	g.used += n
	if keyed {
		g.keys[k] = held + n
	}
	return admitted
}

// acquire reserves n bytes for k, waiting up to wait for room; it reports
// why it did not (n exceeds the whole budget or the share, the wait
// ended, or ctx ended).
func (g *budget) acquire(ctx context.Context, k ratelimit.Key, n int64, wait time.Duration) refusal {
	g.mu.Lock()
	r := g.tryLocked(k, n)
	if r == admitted || n > g.total || (r == refusedShare && n > g.perKey) {
		g.mu.Unlock()
		return r
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		ch := g.wake
		g.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return r
		case <-ctx.Done():
			return r
		}
		g.mu.Lock()
		if r = g.tryLocked(k, n); r == admitted {
			g.mu.Unlock()
			return r
		}
	}
}

// release returns n bytes k acquired.
func (g *budget) release(k ratelimit.Key, n int64) {
	if n == 0 {
		return
	}
	g.mu.Lock()
	g.used -= n
	if g.keys != nil && k.IsValid() {
		if left := g.keys[k] - n; left > 0 {
			g.keys[k] = left
		} else {
			delete(g.keys, k)
		}
	}
	g.wakeLocked()
	g.mu.Unlock()
}

func (g *budget) wakeLocked() {
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
}
