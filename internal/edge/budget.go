package edge

import (
	"context"
	"math/bits"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/ratelimit"
)

// budget is a byte semaphore whose acquirers may wait a bounded time for
// room. With shares (the request buffer's memory and spool) a reservation
// counts against a claim — the client's address and its aggregate prefix
// (/24, /64) — as well as the whole budget: no single address may hold
// more than perAddr bytes and no single prefix more than perPrefix, so
// neither one client nor many addresses of one network can take the whole
// budget (HANDED F06: a flood rotating addresses inside one /64 is one
// client).
//
// A share never refuses a body that is the only one its address (or
// prefix) holds in the budget (held == own): one body, however large, is
// bounded by the whole budget and the route's cap, not by a share. Shares
// bound how many bodies a client keeps open, not how large one body may be.
//
// The per-key tables hold an entry only while its key holds bytes. Every
// body holding bytes holds at least one 4 KiB chunk of memory (a spooling
// body its copy buffer) or 4 KiB of disk (a spooled one its whole size >
// MemoryBytes, one spilled from a full memory at least spillReserve), so
// each table has at most total/4 KiB entries for memory and (memory total
// + spool total)/4 KiB for the spool, however many addresses a flood
// rotates through (HANDED F11: bounded memory, nothing to sweep).
type budget struct {
	mu        sync.Mutex
	used      int64
	total     int64
	perAddr   int64                   // bytes one address may hold; 0 = no share
	perPrefix int64                   // bytes one prefix may hold; 0 = no share
	addrs     map[ratelimit.Key]int64 // bytes held per address (nil = not tracked)
	prefixes  map[ratelimit.Key]int64 // bytes held per prefix (nil = not tracked)
	wake      chan struct{}           // closed when room frees; nil while nobody waits
}

// claim names whom a reservation counts against: a client address and its
// aggregate prefix (ratelimit keys; the zero Key has no share, only the
// whole budget). A body keeps its claim from first reservation to release,
// so a reload that changes the prefix lengths cannot unbalance the tables.
type claim struct{ addr, prefix ratelimit.Key }

// refusal says why budget.acquire did not reserve.
type refusal uint8

const (
	admitted           refusal = iota
	refusedFull                // the whole budget stayed full
	refusedShare               // the address's share stayed full
	refusedPrefixShare         // the prefix's share stayed full
)

// err maps a refusal to the error Fill returns: ErrBufferShareFull for the
// address's share, errPrefixShareFull (wrapping it) for the prefix's, full
// for the whole budget, nil when admitted.
func (r refusal) err(full error) error {
	switch r {
	case refusedShare:
		return ErrBufferShareFull
	case refusedPrefixShare:
		return errPrefixShareFull
	case refusedFull:
		return full
	}
	return nil
}

// trackKeys turns on the per-address and per-prefix tables (before first
// use).
func (g *budget) trackKeys() {
	g.addrs = map[ratelimit.Key]int64{}
	g.prefixes = map[ratelimit.Key]int64{}
}

// setLimits sets the whole budget and the shares of one address and one
// prefix (bytes; a share of 0 = none). Keys already above a lowered share
// keep what they hold and get no more until under it.
func (g *budget) setLimits(total, perAddr, perPrefix int64) {
	g.mu.Lock()
	g.total, g.perAddr, g.perPrefix = total, perAddr, perPrefix
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

// holders is the number of addresses and of prefixes holding bytes now.
func (g *budget) holders() (addrs, prefixes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.addrs), len(g.prefixes)
}

// overShare reports whether share (0 = none) refuses n more bytes for a
// key that holds held bytes, own of them the requesting body's.
func overShare(share, held, own, n int64) bool {
	return share > 0 && held+n > share && held > own
}

// tryLocked reserves n bytes for c if the address's share, the prefix's
// share and the whole budget all have room; own is what the requesting
// body already holds here (see the type's comment). The shares are
// checked first, the address's before the prefix's: a client over a share
// is told so (429) even when the whole budget is full too.
func (g *budget) tryLocked(c claim, own, n int64) refusal {
	if n <= 0 {
		return admitted // nothing to hold: no table entry
	}
	var addrHeld, prefixHeld int64
	addr := g.addrs != nil && c.addr.IsValid()
	prefix := g.prefixes != nil && c.prefix.IsValid()
	if addr {
		if addrHeld = g.addrs[c.addr]; overShare(g.perAddr, addrHeld, own, n) {
			return refusedShare
		}
	}
	if prefix {
		if prefixHeld = g.prefixes[c.prefix]; overShare(g.perPrefix, prefixHeld, own, n) {
			return refusedPrefixShare
		}
	}
	if g.used+n > g.total {
		return refusedFull
	}
	g.used += n
	if addr {
		g.addrs[c.addr] = addrHeld + n
	}
	if prefix {
		g.prefixes[c.prefix] = prefixHeld + n
	}
	return admitted
}

// try reserves n bytes for c if there is room now, without waiting; own
// as for tryLocked.
func (g *budget) try(c claim, own, n int64) refusal {
	g.mu.Lock()
	r := g.tryLocked(c, own, n)
	g.mu.Unlock()
	return r
}

// acquire reserves n bytes for c, waiting up to wait for room; own is what
// the requesting body already holds in this budget. It reports why it did
// not reserve (n exceeds the whole budget, the wait ended, or ctx ended).
// A share refusal waits too: the client's other bodies may end meanwhile.
func (g *budget) acquire(ctx context.Context, c claim, own, n int64, wait time.Duration) refusal {
	g.mu.Lock()
	r := g.tryLocked(c, own, n)
	if r == admitted || n > g.total {
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
		if r = g.tryLocked(c, own, n); r == admitted {
			g.mu.Unlock()
			return r
		}
	}
}

// release returns n bytes c acquired.
func (g *budget) release(c claim, n int64) {
	if n <= 0 {
		return
	}
	g.mu.Lock()
	g.used -= n
	if g.addrs != nil && c.addr.IsValid() {
		releaseKey(g.addrs, c.addr, n)
	}
	if g.prefixes != nil && c.prefix.IsValid() {
		releaseKey(g.prefixes, c.prefix, n)
	}
	g.wakeLocked()
	g.mu.Unlock()
}

// releaseKey takes n bytes off k's entry in m, deleting it at zero.
func releaseKey(m map[ratelimit.Key]int64, k ratelimit.Key, n int64) {
	if left := m[k] - n; left > 0 {
		m[k] = left
	} else {
		delete(m, k)
	}
}

// prefixShare is the share of one prefix given one address's share and
// the whole budget: PrefixShareFactor × perAddr, or none (0) where that
// comes to the whole budget.
func prefixShare(perAddr, total int64) int64 {
	if perAddr > (total-1)/PrefixShareFactor { // PrefixShareFactor × perAddr ≥ total
		return 0
	}
	return PrefixShareFactor * perAddr
}

// scale returns x × num / den (num ≤ den, all positive) without
// overflowing int64.
func scale(x, num, den int64) int64 {
	hi, lo := bits.Mul64(uint64(x), uint64(num))
	q, _ := bits.Div64(hi, lo, uint64(den))
	return int64(q)
}

func (g *budget) wakeLocked() {
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
}

// A body's reservations in the budgets: its memory in pooled chunks, and
// the spill to the spool when memory is full.

// Chunk sizes: a body's first chunk is small (most forms fit), later ones
// larger. Both are pooled as fixed-size arrays, so pooled memory is bounded
// by the chunks in use at the peak (itself bounded by the budget).
const (
	smallChunk = 4 << 10
	bigChunk   = 32 << 10
)

var (
	smallChunks = sync.Pool{New: func() any { return new([smallChunk]byte) }}
	bigChunks   = sync.Pool{New: func() any { return new([bigChunk]byte) }}
)

func getChunk(size int64) []byte {
	if size == smallChunk {
		return smallChunks.Get().(*[smallChunk]byte)[:]
	}
	return bigChunks.Get().(*[bigChunk]byte)[:]
}

func putChunk(c []byte) {
	if cap(c) == smallChunk {
		smallChunks.Put((*[smallChunk]byte)(c[:smallChunk]))
		return
	}
	bigChunks.Put((*[bigChunk]byte)(c[:bigChunk]))
}

// reserveMemory reserves n more bytes of memory for the body, waiting for
// room as budget.acquire does — except when the memory budget is full
// (not one of the client's shares) and the body can spill to the spool
// (reserveSpill): then it reserves no memory, does not wait, and reports
// spilled. When neither has room it waits for memory; if none frees, the
// error is the memory's (ErrBufferFull, 503), or ErrBufferShareFull (429)
// when it was one of the client's spool shares that kept the body off the
// spool.
func (body *BufferedBody) reserveMemory(ctx context.Context, n, contentLength int64) (spilled bool, err error) {
	b := body.b
	r := b.mem.try(body.who, body.mem, n)
	if r == admitted {
		body.mem += n
		return false, nil
	}
	spill := refusedFull
	if r == refusedFull && b.spoolDir != "" {
		if spill = body.reserveSpill(contentLength); spill == admitted {
			return true, nil
		}
	}
	if r = b.mem.acquire(ctx, body.who, body.mem, n, b.wait); r == admitted {
		body.mem += n
		return false, nil
	}
	if r == refusedFull && spill != refusedFull {
		r = spill // over a spool share as well: the client's doing
	}
	return false, r.err(errMemoryFull)
}

// spillReserve is the least spool a body spilled from a full memory
// reserves (bytes): 16 times its 4 KiB copy buffer, which is not charged
// to the memory budget, so those buffers together take at most
// SpoolTotalBytes/16 of memory (TotalBytes, by default). Forms are far
// smaller; the spool is 16 times the memory budget (SpoolFactor).
const spillReserve = 16 * smallChunk

// reserveSpill reserves at once, without waiting, all the spool a body
// spilled from a full memory may hold: its declared length (or what it
// has read so far, for a body of unknown length), at least spillReserve.
// It marks the body spilled, or reports which spool limit refused it.
func (body *BufferedBody) reserveSpill(contentLength int64) refusal {
	want := max(spillReserve, contentLength, body.size, body.disk)
	r := body.b.disk.try(body.who, body.disk, want-body.disk)
	if r == admitted {
		body.disk, body.spilled = want, true
	}
	return r
}

// copySize is the size of a spooling body's copy buffer: a big chunk,
// unless the per-body cap is smaller.
func (b *BodyBuffer) copySize() int64 {
	if b.memBytes.Load() < bigChunk {
		return smallChunk
	}
	return bigChunk
}

// spoolFull is the error for a spool reservation of n more bytes refused
// for r: a body that could never fit the whole spool is too large (413),
// one over its client's share gets ErrBufferShareFull (429), otherwise the
// spool is busy (503).
func (body *BufferedBody) spoolFull(r refusal, n int64) error {
	if lim := body.b.disk.limit(); body.disk+n > lim {
		return &BodyTooLargeError{Limit: lim}
	}
	return r.err(errSpoolFull)
}
