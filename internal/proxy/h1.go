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
// was read to its end, neither side asked to close, and the client's
// context did not end during the exchange. A request that fails on a
// reused connection before any byte of a response arrived (the origin
// closed it while idle) is sent once more on a new connection: GET and
// HEAD are idempotent (RFC 9110 §9.2.2), the same rule http.Transport
// applies.
type h1Transport struct {
	fallback          *http.Transport
	dial              func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle           int
	idleTimeout       time.Duration
	respHeaderTimeout time.Duration
	now               func() time.Time

	mu     sync.Mutex
	idle   map[string][]*h1Conn // origin host:port → idle connections, newest last
	closed bool                 // Close was called: no more pooling

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

// aLongTimeAgo is a deadline in the past: setting it unblocks any pending
// read or write on a connection at once.
var aLongTimeAgo = time.Unix(1, 0)

func newH1Transport(fallback *http.Transport, dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int, respHeaderTimeout time.Duration) *h1Transport {
	return &h1Transport{
		fallback:          fallback,
		dial:              dial,
		maxIdle:           maxIdle,
		idleTimeout:       fallback.IdleConnTimeout,
		respHeaderTimeout: respHeaderTimeout,
		now:               time.Now,
		idle:              make(map[string][]*h1Conn),
	}
}

// h1Conn is one pooled origin connection. It counts the bytes read since
// the current exchange began, to tell "the origin closed an idle
// connection" (nothing read: retry) from a failure mid-response.
type h1Conn struct {
	conn   net.Conn
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
	for attempt := 0; ; attempt++ {
		pc, err := t.get(ctx, req.URL.Host)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, pc, req)
		if err == nil {
			return resp, nil
		}
		if attempt == 0 && pc.reused && pc.read == 0 && ctx.Err() == nil && !isTimeout(err) {
			continue // the origin closed the idle connection: once more, fresh
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
	if complete && b.keep && b.stop() {
		b.t.put(b.pc)
		return
	}
	b.stop()
	b.pc.conn.Close()
}

// get returns an idle connection to addr or dials one.
func (t *h1Transport) get(ctx context.Context, addr string) (*h1Conn, error) {
	now := t.now()
	t.mu.Lock()
	list := t.idle[addr]
	for len(list) > 0 {
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		if now.Sub(pc.idleAt) < t.idleTimeout {
			t.idle[addr] = list
			t.mu.Unlock()
			pc.reused = true
			return pc, nil
		}
		pc.conn.Close()
	}
	t.idle[addr] = list
	t.mu.Unlock()
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.dials.Add(1)
	pc := &h1Conn{conn: conn, key: addr}
	pc.br = bufio.NewReaderSize(pc, h1ReadBuffer)
	pc.bw = bufio.NewWriterSize(pc, h1WriteBuffer)
	return pc, nil
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
	t.mu.Unlock()
}

// Close closes every idle connection of both transports; connections
// still in use are closed when their exchange ends, not pooled.
func (t *h1Transport) Close() {
	t.mu.Lock()
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
