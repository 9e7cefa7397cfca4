package edge

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

// ConnEvents receives the connection-level events traffic accounting needs
// for the slow-connection and HTTP/2-abuse detectors; *stats.Accountant
// implements it. Connections are not tied to a site until a request names
// one, so connection events count on the default site. Methods must not
// block.
type ConnEvents interface {
	ConnOpened(site int)
	ConnClosed(site int)
	ConnRefused(site int)
	SlowConn(site int, kind stats.SlowKind)
	H2Reset(site int)
}

// connState returns the http.Server ConnState hook: opened/closed counts,
// and a connection closed without ever completing a request after at least
// most of the header deadline is a slowloris connection (its header read
// timed out).
func connState(ev ConnEvents, site func() int, headerTimeout time.Duration) func(net.Conn, http.ConnState) {
	return func(c net.Conn, s http.ConnState) {
		lc := asLimitConn(c)
		switch s {
		case http.StateNew:
			ev.ConnOpened(site())
			if lc != nil {
				lc.opened = time.Now()
			}
		case http.StateHijacked:
			ev.ConnClosed(site())
		case http.StateClosed:
			ev.ConnClosed(site())
			if lc != nil && !lc.served.Load() && headerTimeout > 0 && time.Since(lc.opened) >= headerTimeout*9/10 {
				ev.SlowConn(site(), stats.Slowloris)
			}
		}
	}
}

func asLimitConn(c net.Conn) *limitConn {
	for i := 0; i < 4 && c != nil; i++ {
		switch v := c.(type) {
		case *limitConn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// markServed records that conn delivered a complete request.
func markServed(c net.Conn) {
	if lc := asLimitConn(c); lc != nil && !lc.served.Load() {
		lc.served.Store(true)
	}
}
