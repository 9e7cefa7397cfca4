package edge

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultH2ResetPenalty is how long a client whose HTTP/2 connection
// exceeded its reset budget (rapid reset, CVE-2023-44487) is refused with
// 429 afterwards, on every connection (RequestLimits.H2ResetPenalty).
const DefaultH2ResetPenalty = time.Minute

// h2ResetPark is how long handlers of a connection over its reset budget
// are held before the connection is closed. While they are held, a client
// that keeps opening and resetting streams fills net/http's queue of
// unstarted handlers (4 × MAX_CONCURRENT_STREAMS), and net/http ends the
// connection with GOAWAY(ENHANCE_YOUR_CALM) itself — there is no API to
// send a GOAWAY from a handler. A client that stops is cut when the hold
// ends. The hold costs at most MAX_CONCURRENT_STREAMS idle goroutines per
// abusive connection. It matches net/http's own close delay after a GOAWAY
// (1 s) and is the fallback: the connection is closed goAwayLinger after
// the GOAWAY goes out (see park). A fixed short hold (250 ms was tried)
// closes a connection without GOAWAY on a loaded machine, before net/http
// has read the 400 queued streams that trigger it.
const h2ResetPark = time.Second

// maxPenalties bounds the penalty box; when it is full of live entries new
// penalties are not recorded (the connections are still closed).
const maxPenalties = 1 << 16

// penaltyBox holds client addresses temporarily refused after abusing the
// protocol. The empty box costs one atomic load per request.
type penaltyBox struct {
	n     atomic.Int32
	mu    sync.RWMutex
	until map[netip.Addr]int64 // monotonic ns (Handler.Mono scale)
}

// add refuses a until the monotonic time until; now prunes expired entries
// when the box is full.
func (p *penaltyBox) add(a netip.Addr, now, until int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until == nil {
		p.until = make(map[netip.Addr]int64)
	}
	if len(p.until) >= maxPenalties {
		for k, u := range p.until {
			if u <= now {
				delete(p.until, k)
			}
		}
		if len(p.until) >= maxPenalties {
			return
		}
	}
	p.until[a] = max(p.until[a], until)
	p.n.Store(int32(len(p.until)))
}

// remaining returns how long a stays refused at monotonic time now (0 when
// it is not); an expired entry is removed.
func (p *penaltyBox) remaining(a netip.Addr, now int64) time.Duration {
	if p.n.Load() == 0 {
		return 0
	}
	p.mu.RLock()
	u, ok := p.until[a]
	p.mu.RUnlock()
	if !ok {
		return 0
	}
	if u > now {
		return time.Duration(u - now)
	}
	p.mu.Lock()
	if u, ok := p.until[a]; ok && u <= now {
		delete(p.until, a)
		p.n.Store(int32(len(p.until)))
	}
	p.mu.Unlock()
	return 0
}

// goAwayLinger is how long an over-budget connection stays open after the
// shield first writes to it (in practice net/http's GOAWAY): long enough
// for the frame to reach the client, short enough that the attacker's
// queued frames are not parsed for net/http's whole 1 s GOAWAY timeout.
const goAwayLinger = 50 * time.Millisecond

// park holds the calling handler of a connection over its reset budget
// until the connection is released. The first call starts the hold: the
// connection is closed goAwayLinger after the next write to it (the
// GOAWAY), or after d at the latest.
func (ci *connInfo) park(d time.Duration) {
	ci.mu.Lock()
	if ci.release == nil {
		rel := make(chan struct{})
		ci.release = rel
		ci.parked.Store(true)
		conn := ci.conn
		var once sync.Once
		end := func() {
			once.Do(func() {
				close(rel)
				conn.Close()
			})
		}
		time.AfterFunc(d, end)
		if lc := findLimitConn(conn); lc != nil {
			var wrote atomic.Bool
			f := func() {
				if wrote.CompareAndSwap(false, true) {
					time.AfterFunc(goAwayLinger, end)
				}
			}
			lc.afterWrite.Store(&f)
		}
	}
	rel := ci.release
	ci.mu.Unlock()
	<-rel
}
