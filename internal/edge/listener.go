// Package edge is the client-facing side of the shield: listeners with
// connection caps, PROXY protocol and TLS, hardened http.Server settings
// (header deadline, idle timeout, header size, HTTP/2 stream caps and a
// reset budget), and the request handler that resolves the client, runs the
// verdict chain and hands the request to the origin proxy with body limits,
// a minimum body rate and a progress-based write deadline, after reading its
// body whole at the edge (buffer.go: a slow POST never holds an origin slot).
package edge

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/clientip"
)

// ConnLimits caps open connections on a listener.
type ConnLimits struct {
	// Max is the cap on open connections (0 = none).
	Max int
	// PerPeer caps open connections per peer address (0 = none).
	PerPeer int
	// Exempt reports peers not subject to PerPeer (trusted proxies, which
	// carry many clients).
	Exempt func(netip.Addr) bool
	// OnRefuse is called for each refused connection (metrics).
	OnRefuse func(peer netip.Addr, global bool)
}

// limitListener enforces ConnLimits at Accept: a connection over a cap is
// closed at once, before any byte is read, so it costs no goroutine.
type limitListener struct {
	net.Listener
	lim   ConnLimits
	open  atomic.Int64
	mu    sync.Mutex
	peers map[netip.Addr]int32
}

// LimitListener wraps ln with connection caps.
func LimitListener(ln net.Listener, lim ConnLimits) net.Listener {
	return &limitListener{Listener: ln, lim: lim, peers: make(map[netip.Addr]int32)}
}

// Accept returns the next connection within the caps; connections over a
// cap are closed and not returned.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := peerAddr(c.RemoteAddr())
		if l.lim.Max > 0 && l.open.Load() >= int64(l.lim.Max) {
			c.Close()
			if l.lim.OnRefuse != nil {
				l.lim.OnRefuse(peer, true)
			}
			continue
		}
		tracked := l.lim.PerPeer > 0 && peer.IsValid() && (l.lim.Exempt == nil || !l.lim.Exempt(peer))
		if tracked {
			l.mu.Lock()
			if int(l.peers[peer]) >= l.lim.PerPeer {
				l.mu.Unlock()
				c.Close()
				if l.lim.OnRefuse != nil {
					l.lim.OnRefuse(peer, false)
				}
				continue
			}
			l.peers[peer]++
			l.mu.Unlock()
		}
		l.open.Add(1)
		lc := &limitConn{Conn: c, l: l}
		if tracked {
			lc.peer = peer
		}
		return lc, nil
	}
}

// Open returns the number of open connections.
func (l *limitListener) Open() int64 { return l.open.Load() }

type limitConn struct {
	net.Conn
	l    *limitListener
	peer netip.Addr
	once sync.Once
	// afterWrite, when set, runs after every Write (connInfo.park uses it
	// to notice net/http's GOAWAY on an abusive connection).
	afterWrite atomic.Pointer[func()]
	// opened and served feed the slowloris count (see connState).
	opened time.Time
	served atomic.Bool
}

func (c *limitConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if f := c.afterWrite.Load(); f != nil {
		(*f)()
	}
	return n, err
}

// findLimitConn returns the *limitConn under c (through TLS), or nil.
func findLimitConn(c net.Conn) *limitConn {
	for range 4 {
		if lc, ok := c.(*limitConn); ok {
			return lc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		if c.peer.IsValid() {
			c.l.mu.Lock()
			if n := c.l.peers[c.peer] - 1; n <= 0 {
				delete(c.l.peers, c.peer)
			} else {
				c.l.peers[c.peer] = n
			}
			c.l.mu.Unlock()
		}
	})
	return err
}

// NetConn returns the wrapped connection (for TLS state and PROXY info).
func (c *limitConn) NetConn() net.Conn { return c.Conn }

// peerAddr returns the normalised IP of a net.Addr (TCP or PROXY-protocol
// source), invalid when it has none.
func peerAddr(a net.Addr) netip.Addr {
	ip, _ := clientip.PeerAddr(a)
	return ip
}

// connInfo is per-connection state, created once in ConnContext and found
// by requests through their context.
type connInfo struct {
	conn net.Conn
	peer netip.Addr

	// HTTP/2 rapid-reset accounting: client-cancelled streams in the
	// current window.
	mu          sync.Mutex
	resetWindow time.Time
	resets      int
	closed      bool

	// Once over budget, handlers on the connection park until release is
	// closed (see park).
	parked  atomic.Bool
	release chan struct{}

	writeDeadline time.Time // HTTP/1 write deadline last set on conn (responseWriter.armed)
}

type connInfoKey struct{}

func withConnInfo(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connInfoKey{}, &connInfo{conn: c, peer: peerAddr(c.RemoteAddr())})
}

func connInfoFrom(ctx context.Context) *connInfo {
	ci, _ := ctx.Value(connInfoKey{}).(*connInfo)
	return ci
}

// noteReset counts a client-cancelled stream and reports whether the
// connection exceeded budget resets in a 10 s window (rapid reset,
// CVE-2023-44487); the caller then closes it. With burst > 0 it also
// reports a connection that counted more than burst resets within
// burstWithin of its window's first.
func (ci *connInfo) noteReset(now time.Time, budget, burst int, burstWithin time.Duration) bool {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.closed {
		return false
	}
	if now.Sub(ci.resetWindow) > 10*time.Second {
		ci.resetWindow, ci.resets = now, 0
	}
	ci.resets++
	if ci.resets > budget || (burst > 0 && ci.resets > burst && now.Sub(ci.resetWindow) < burstWithin) {
		ci.closed = true
		return true
	}
	return false
}
