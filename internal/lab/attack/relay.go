package attack

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
)

// relayMode is how the relay carries the simulated source of a connection.
type relayMode int

const (
	// relayProxy prefixes each upstream connection with a PROXY v1 header.
	relayProxy relayMode = iota
	// relayXFF inserts an X-Forwarded-For line after the first request
	// line of each connection (HTTP/1.x only; later requests on the same
	// connection are passed unchanged).
	relayXFF
)

// relay is a loopback TCP relay that lets an external tool which cannot set
// forwarding headers appear to come from the simulated sources, one per
// connection in rotation, and rewrites the Host header of the first
// request from the relay's address to the target's. It records the first
// response status line of each connection.
type relay struct {
	ln       net.Listener
	j        *job
	mode     relayMode
	slowRead bool
	hostFrom []byte // "Host: <relay address>\r\n", rewritten to hostTo
	hostTo   []byte // "Host: <target URL host>\r\n"
	next     atomic.Uint64
	accepted atomic.Uint64
	dialErrs atomic.Uint64
	cut      atomic.Uint64 // connections the target closed first
	wg       sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	statuses map[int]uint64
	closed   bool
}

// relayStats is what a relay saw over its life.
type relayStats struct {
	accepted   uint64         // client connections accepted
	dialErrors uint64         // upstream connections that failed
	cut        uint64         // connections the target closed before the client
	statuses   map[int]uint64 // first response status per connection
}

// startRelay listens on 127.0.0.1:0 and relays to j's target. slowRead
// shrinks the relay's buffers so a slow-reading client stays slow towards
// the target; rewriteHost replaces the relay's address in the first
// request's Host header with the target's (for tools that take the Host
// from the URL they are given).
func startRelay(j *job, mode relayMode, slowRead, rewriteHost bool) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("attack: relay: %w", err)
	}
	r := &relay{ln: ln, j: j, mode: mode, slowRead: slowRead,
		conns: make(map[net.Conn]struct{}), statuses: make(map[int]uint64)}
	if rewriteHost {
		r.hostFrom = []byte("Host: " + ln.Addr().String() + "\r\n")
		r.hostTo = []byte("Host: " + j.target.URL.Host + "\r\n")
	}
	r.wg.Go(r.accept)
	return r, nil
}

// addr is the relay's listening host:port.
func (r *relay) addr() string { return r.ln.Addr().String() }

// accept serves connections until the listener closes.
func (r *relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c) {
			c.Close()
			return
		}
		r.accepted.Add(1)
		r.wg.Go(func() { r.serve(c) })
	}
}

// track registers c for closing; false once the relay is closed.
func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

// untrack forgets closed connections.
func (r *relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		delete(r.conns, c)
	}
}

// close stops the relay, closes every connection, waits for its goroutines
// and returns what it saw.
func (r *relay) close() relayStats {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return relayStats{accepted: r.accepted.Load(), dialErrors: r.dialErrs.Load(), cut: r.cut.Load(), statuses: r.statuses}
}

// serve relays one client connection to the target.
func (r *relay) serve(c net.Conn) {
	defer r.untrack(c)
	defer c.Close()
	var src netip.Addr
	if n := uint64(len(r.j.sources)); n > 0 {
		src = r.j.sources[(r.next.Add(1)-1)%n]
	}
	up, err := net.DialTimeout("tcp", r.j.addr, requestTimeout)
	if err != nil {
		r.dialErrs.Add(1)
		return
	}
	defer up.Close()
	if !r.track(up) {
		return
	}
	defer r.untrack(up)
	if r.slowRead {
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(4096)
		}
	}
	if r.mode == relayProxy && src.IsValid() {
		port := 0
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			port = a.Port
		}
		if err := writeProxyHeader(up, up, src, port); err != nil {
			r.dialErrs.Add(1)
			return
		}
	}
	done := make(chan struct{})
	var clientDone atomic.Bool
	go func() {
		defer close(done)
		var extra []byte
		if r.mode == relayXFF && src.IsValid() {
			extra = []byte("X-Forwarded-For: " + src.String() + "\r\n")
		}
		_ = copyInjecting(up, c, extra, r.hostFrom, r.hostTo)
		clientDone.Store(true) // before the target can see the client's end
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	code, ok, eof := copyFirstStatus(c, up)
	if ok {
		r.mu.Lock()
		r.statuses[code]++
		r.mu.Unlock()
	}
	if eof && !clientDone.Load() {
		r.mu.Lock()
		if !r.closed {
			r.cut.Add(1)
		}
		r.mu.Unlock()
	}
	c.Close()
	up.Close()
	<-done
}

// copyInjecting copies src to dst, inserting extra right after the first
// line (the request line) and replacing the header line hostFrom with hostTo
// (so the target sees its own Host, not the relay's). Before forwarding
// anything it waits for the first line and, when hostFrom is set, for a
// complete Host line or the end of the header block; a head longer than
// 8 KiB, or a source that ends first, is passed on unchanged.
func copyInjecting(dst io.Writer, src io.Reader, extra, hostFrom, hostTo []byte) error {
	buf := make([]byte, 0, 8<<10)
	var err error
	for len(buf) < cap(buf) && !headReady(buf, hostFrom) && err == nil {
		var n int
		n, err = src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
	}
	out := buf
	if i := bytes.IndexByte(buf, '\n'); i >= 0 && headReady(buf, hostFrom) {
		rest := buf[i+1:]
		if len(hostFrom) > 0 {
			rest = bytes.Replace(rest, hostFrom, hostTo, 1)
		}
		out = make([]byte, 0, len(buf)+len(extra)+len(hostTo))
		out = append(append(append(out, buf[:i+1]...), extra...), rest...)
	}
	if _, werr := dst.Write(out); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	return err
}

// headReady reports whether b holds the first line and, when hostFrom is
// set, a complete Host line or the end of the header block.
func headReady(b, hostFrom []byte) bool {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return false
	}
	if len(hostFrom) == 0 {
		return true
	}
	rest := b[i+1:]
	if bytes.Contains(rest, hostFrom) || bytes.Contains(rest, []byte("\r\n\r\n")) || bytes.HasPrefix(rest, []byte("\r\n")) {
		return true
	}
	for line := range bytes.Lines(rest) {
		if bytes.HasSuffix(line, []byte("\n")) && len(line) > 5 && bytes.EqualFold(line[:5], []byte("host:")) {
			return true
		}
	}
	return false
}

// copyFirstStatus copies src to dst and returns the status code of the
// first HTTP/1.x status line it carried, if any, and whether the copy ended
// at src's end (rather than a failure on either side).
func copyFirstStatus(dst io.Writer, src io.Reader) (code int, found, eof bool) {
	buf := make([]byte, 0, 1024)
	for len(buf) < cap(buf) {
		n, err := src.Read(buf[len(buf):cap(buf)])
		chunk := buf[len(buf) : len(buf)+n]
		buf = buf[:len(buf)+n]
		if n > 0 {
			if _, werr := dst.Write(chunk); werr != nil {
				code, found = parseStatusLine(buf)
				return code, found, false
			}
		}
		if bytes.IndexByte(buf, '\n') >= 0 {
			break
		}
		if err != nil {
			code, found = parseStatusLine(buf)
			return code, found, err == io.EOF
		}
	}
	code, found = parseStatusLine(buf)
	_, err := io.Copy(dst, src)
	return code, found, err == nil
}

// parseStatusLine reads the code from "HTTP/1.x NNN ..." at the start of b.
func parseStatusLine(b []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("HTTP/1."))
	if !ok || len(rest) < 5 || rest[1] != ' ' {
		return 0, false
	}
	code, err := strconv.Atoi(string(rest[2:5]))
	if err != nil || code < 100 || code > 999 {
		return 0, false
	}
	return code, true
}
