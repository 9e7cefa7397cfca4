package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// h1Transport is the origin round tripper of the proxied hot path: for a
// bodiless GET or HEAD to an http:// origin it writes the request and
// reads the response on the caller's goroutine, over a keep-alive
// connection from its own pool. Everything else — requests with a body,
// upgrades (WebSocket), Expect: 100-continue, https:// origins — goes to
// the fallback http.Transport.
//
// Why: http.Transport hands every exchange to two goroutines per
// connection (writeLoop, readLoop) over channels and parks the readLoop in
// a Peek for the next response; on this path that machinery was 27–30 % of
// the shield's CPU (BENCHMARKS.md, "where Portcullis' request path spends
// its CPU"). The wire format stays net/http's own: the request is written
// by (*http.Request).Write and the response parsed by http.ReadResponse,
// which also frames its body (Content-Length, chunked, until close).
//
// Keep-alive: a connection returns to its origin's idle stack (LIFO, at
// most maxIdle, none older than idleTimeout) only when the response body
// was read to its end with nothing buffered beyond it, neither side asked
// to close, and the client's context did not end during the exchange.
// Before an idle connection is reused, one non-blocking MSG_PEEK recv
// checks that the origin has neither closed it (keep-alive timeouts, a
// restart) nor written to it unasked (a 408 on an idle connection, bytes
// beyond a response): either way it is closed, never read as the next
// answer — the check http.Transport makes with its idle read loop. A
// reaper goroutine, running only while connections are idle, makes the
// same check every reapInterval so that dead sockets do not hold file
// descriptors through a quiet spell. A request that still fails on a
// reused connection before any byte of a response arrived is sent once
// more on a newly dialled connection, after the origin's other idle
// connections (as old or older) are closed: GET and HEAD are idempotent
// (RFC 9110 §9.2.2), the same rule http.Transport applies.
type h1Transport struct {
	fallback          *http.Transport
	dial              func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle           int
	idleTimeout       time.Duration
	respHeaderTimeout time.Duration
	now               func() time.Time

	mu      sync.Mutex
	idle    map[string][]*h1Conn // origin host:port → idle connections, newest last
	closed  bool                 // Close was called: no more pooling
	reaping bool                 // the reaper goroutine runs
	done    chan struct{}        // closed by Close: the reaper stops

	// dials counts new origin connections (tests, metrics).
	dials atomic.Int64
}

// max1xx bounds the informational responses skipped before the final one
// (http.Transport's limit too).
const max1xx = 5

// h1ReadBuffer and h1WriteBuffer size a pooled connection's buffers
// (bytes): responses are read in 32 KiB gulps like the fallback
// transport's; a request head rarely exceeds 4 KiB (larger ones are
// written in several pieces).
const (
	h1ReadBuffer  = 32 << 10
	h1WriteBuffer = 4 << 10
)

// maxResponseHead bounds what is read of an origin's response before its
// head is complete (bytes; the status line, headers and any informational
// responses), as http.Transport's MaxResponseHeaderBytes does: a broken
// origin that sends headers without end costs 1 MiB, not the heap.
const maxResponseHead = 1 << 20

var errHeadTooLarge = errors.New("proxy: origin response head larger than 1 MiB")

// reapInterval is how often idle connections are checked while any exist.
const reapInterval = 10 * time.Second

// aLongTimeAgo is a deadline in the past: setting it unblocks any pending
// read or write on a connection at once.
var aLongTimeAgo = time.Unix(1, 0)

func newH1Transport(fallback *http.Transport, dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int, respHeaderTimeout time.Duration) *h1Transport {
	if maxIdle < 1 {
		maxIdle = http.DefaultMaxIdleConnsPerHost
	}
	return &h1Transport{
		fallback:          fallback,
		dial:              dial,
		maxIdle:           maxIdle,
		idleTimeout:       fallback.IdleConnTimeout,
		respHeaderTimeout: respHeaderTimeout,
		now:               time.Now,
		idle:              make(map[string][]*h1Conn),
		done:              make(chan struct{}),
	}
}

// h1Conn is one pooled origin connection. It counts the bytes read since
// the current exchange began, to tell "the origin closed an idle
// connection" (nothing read: retry) from a failure mid-response.
type h1Conn struct {
	conn   net.Conn
	raw    syscall.RawConn // nil when conn has no file descriptor
	peekFn func(fd uintptr) bool
	peekOK bool // the last peek found the connection open and silent
	br     *bufio.Reader
	bw     *bufio.Writer
	key    string
	read   int64     // bytes read in the current exchange
	limit  int64     // while > 0, reading beyond it fails (the response head)
	idleAt time.Time // when it last went idle
	reused bool      // it served an exchange before this one
}

func (c *h1Conn) Read(p []byte) (int, error) {
	if c.limit > 0 && c.read >= c.limit {
		return 0, errHeadTooLarge
	}
	n, err := c.conn.Read(p)
	c.read += int64(n)
	return n, err
}

func (c *h1Conn) Write(p []byte) (int, error) { return c.conn.Write(p) }

// idleOK reports whether an idle connection may carry the next exchange:
// nothing is left in its read buffer, and a non-blocking MSG_PEEK finds
// the socket open with nothing to read (EAGAIN). End of stream (the
// origin closed it) or unread bytes (an answer nobody asked for) mean no.
func (c *h1Conn) idleOK() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.raw == nil {
		return true
	}
	c.peekOK = false
	if err := c.raw.Read(c.peekFn); err != nil {
		return false
	}
	return c.peekOK
}

// eligible reports whether req takes the synchronous path.
func eligible(req *http.Request) bool {
	if req.URL.Scheme != "http" || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	h := req.Header
	return len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0
}

// RoundTrip implements http.RoundTripper.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !eligible(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80") // as http.Transport dials
	}
	for attempt := 0; ; attempt++ {
		pc, err := t.get(ctx, addr, attempt > 0)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, pc, req)
		if err == nil {
			return resp, nil
		}
		if attempt == 0 && pc.reused && pc.read == 0 && ctx.Err() == nil && !isTimeout(err) {
			// The origin closed the idle connection as we reused it: its
			// other idle connections are as old or older, so they go too,
			// and the request is sent once more on a new connection.
			t.flush(addr)
			continue
		}
		return nil, err
	}
}

// exchange writes req on pc and reads the response head. On error pc is
// closed; on success the returned body owns pc.
func (t *h1Transport) exchange(ctx context.Context, pc *h1Conn, req *http.Request) (*http.Response, error) {
	pc.read, pc.limit = 0, maxResponseHead
	// A client that leaves (or an HTTP/2 stream reset) unblocks whatever
	// the exchange waits on; the connection is then not reused.
	stop := context.AfterFunc(ctx, func() { pc.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.conn.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	if err := req.Write(pc.bw); err != nil {
		return fail(fmt.Errorf("proxy: writing request to origin: %w", err))
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(fmt.Errorf("proxy: writing request to origin: %w", err))
	}
	if t.respHeaderTimeout > 0 {
		pc.conn.SetReadDeadline(t.now().Add(t.respHeaderTimeout))
		if err := ctx.Err(); err != nil {
			// The context ended before the deadline was set and its
			// hook's past deadline was just overwritten.
			return fail(err)
		}
	}
	var resp *http.Response
	for n := 0; ; n++ {
		r, err := http.ReadResponse(pc.br, req)
		if err != nil {
			if isTimeout(err) && ctx.Err() == nil {
				err = fmt.Errorf("proxy: timeout awaiting response headers: %w", context.DeadlineExceeded)
			}
			return fail(err)
		}
		if r.StatusCode >= 200 || r.StatusCode == http.StatusSwitchingProtocols {
			resp = r
			break
		}
		if n >= max1xx {
			return fail(errors.New("proxy: too many 1xx informational responses from origin"))
		}
		// Informational (103 Early Hints, a stray 100): ReverseProxy
		// forwards them through the client trace, as with http.Transport.
		if tr := httptrace.ContextClientTrace(ctx); tr != nil && tr.Got1xxResponse != nil {
			if err := tr.Got1xxResponse(r.StatusCode, map[string][]string(r.Header)); err != nil {
				return fail(err)
			}
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// Never asked for (upgrades take the fallback).
		return fail(errors.New("proxy: origin switched protocols unasked"))
	}
	pc.limit = 0
	if t.respHeaderTimeout > 0 {
		pc.conn.SetReadDeadline(time.Time{})
		if err := ctx.Err(); err != nil {
			// As above: the cleared deadline may have replaced the hook's.
			return fail(err)
		}
	}
	b := &h1Body{t: t, pc: pc, body: resp.Body, stop: stop, keep: !resp.Close && !req.Close}
	resp.Body = b
	if resp.ContentLength == 0 || req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		// No body follows: the connection is free now.
		b.release(true)
	}
	return resp, nil
}

// h1Body is a response body that hands its connection back to the pool
// when read to its end and closes it otherwise.
type h1Body struct {
	t    *h1Transport
	pc   *h1Conn
	body io.ReadCloser
	stop func() bool
	keep bool
	done atomic.Bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.release(true)
	case err != nil:
		b.release(false)
	}
	return n, err
}

// Close ends the body; an unfinished body's connection is closed, not
// drained (the rest may never end: an event stream).
func (b *h1Body) Close() error {
	b.release(false)
	return nil
}

// release gives the connection back (complete: the body was read to its
// end) or closes it; only the first call acts.
func (b *h1Body) release(complete bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	if complete && b.keep && b.pc.br.Buffered() == 0 && b.stop() {
		b.t.put(b.pc)
		return
	}
	b.stop()
	b.pc.conn.Close()
}

// get returns an idle connection to addr that passes idleOK, or dials
// one (always, when fresh).
func (t *h1Transport) get(ctx context.Context, addr string, fresh bool) (*h1Conn, error) {
	now := t.now()
	for !fresh {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if now.Sub(pc.idleAt) < t.idleTimeout && pc.idleOK() {
			pc.reused = true
			return pc, nil
		}
		pc.conn.Close()
	}
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.dials.Add(1)
	pc := &h1Conn{conn: conn, key: addr}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			pc.raw = raw
			pc.peekFn = pc.peek
		}
	}
	pc.br = bufio.NewReaderSize(pc, h1ReadBuffer)
	pc.bw = bufio.NewWriterSize(pc, h1WriteBuffer)
	return pc, nil
}

// flush closes every idle connection to addr.
func (t *h1Transport) flush(addr string) {
	t.mu.Lock()
	list := t.idle[addr]
	delete(t.idle, addr)
	t.mu.Unlock()
	for _, pc := range list {
		pc.conn.Close()
	}
}

// put returns pc to its idle stack, dropping the oldest connections beyond
// maxIdle or idleTimeout.
func (t *h1Transport) put(pc *h1Conn) {
	now := t.now()
	pc.idleAt = now
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		pc.conn.Close()
		return
	}
	list := append(t.idle[pc.key], pc)
	drop := 0
	for drop < len(list)-1 && (len(list)-drop > t.maxIdle || now.Sub(list[drop].idleAt) >= t.idleTimeout) {
		list[drop].conn.Close()
		drop++
	}
	if drop > 0 {
		n := copy(list, list[drop:])
		clear(list[n:])
		list = list[:n]
	}
	t.idle[pc.key] = list
	if !t.reaping {
		t.reaping = true
		go t.reap()
	}
	t.mu.Unlock()
}

// reap checks the idle connections every reapInterval, closing those idle
// for idleTimeout or failing idleOK, and ends when none are left or the
// transport is closed.
func (t *h1Transport) reap() {
	tick := time.NewTicker(reapInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
		if !t.reapOnce() {
			return
		}
	}
}

// reapOnce closes the idle connections that are too old or fail idleOK;
// it reports whether any remain (false also stops the reaper).
func (t *h1Transport) reapOnce() bool {
	now := t.now()
	t.mu.Lock()
	for addr, list := range t.idle {
		kept := list[:0]
		for _, pc := range list {
			if now.Sub(pc.idleAt) < t.idleTimeout && pc.idleOK() {
				kept = append(kept, pc)
			} else {
				pc.conn.Close()
			}
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = kept
		}
	}
	if len(t.idle) == 0 {
		t.reaping = false
		t.mu.Unlock()
		return false
	}
	t.mu.Unlock()
	return true
}

// Close closes every idle connection of both transports; connections
// still in use are closed when their exchange ends, not pooled.
func (t *h1Transport) Close() {
	t.mu.Lock()
	if !t.closed {
		close(t.done)
	}
	t.closed = true
	idle := t.idle
	t.idle = make(map[string][]*h1Conn)
	t.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			pc.conn.Close()
		}
	}
	t.fallback.CloseIdleConnections()
}
