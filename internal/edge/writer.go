package edge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/filter"
)

// requestIDHeader is proxy.RequestIDHeader, canonical.
const requestIDHeader = "X-Request-Id"

// responseWriter records status and bytes for accounting, renews a write
// deadline before every write (a client that stops reading — slow read — is
// cut after WriteIdleTimeout of no progress, while a stream that keeps
// flowing never is), flushes the headers of streaming responses at once
// (SSE, NDJSON; case F20), and exposes the underlying writer through
// Unwrap so http.ResponseController finds Flusher and Hijacker (case F21).
type responseWriter struct {
	w http.ResponseWriter
	// ctl reaches w's deadlines; it is held by value (a pointer from
	// http.NewResponseController cost every request an allocation) and
	// valid when deadlines is set.
	ctl       http.ResponseController
	deadlines bool
	writeIdle time.Duration
	// start is the request's arrival (wall and monotonic clock): the
	// writer reads the time as start plus the monotonic time since (now),
	// one clock read where time.Now takes two.
	start time.Time
	// timerDeadline is set for HTTP/2: a stream's write deadline is a
	// timer that resets the stream when it fires, writing or not, so it is
	// armed only around each write (case F20: an SSE stream silent for
	// longer than the timeout must not be cut). HTTP/1 socket deadlines
	// only matter while a write is in progress and stay armed, which also
	// bounds net/http's final flush after the handler returns.
	timerDeadline bool
	status        int
	bytes         int64
	wroteHeader   bool
	headerAt      time.Time
	verdict       filter.Action
	hijacked      bool
	// armed is the HTTP/1 socket deadline last set, renewed only once
	// less than half of writeIdle is left, not before every write
	// (SetWriteDeadline costs a runtime timer update; a profile of the
	// reject path showed ~4% of CPU in it, then ~1.4% set once per
	// request). It points at the connection's record (connInfo) when the
	// handler has one, so keep-alive requests share it (HTTP/1 serves a
	// connection's requests one at a time), else at ownArmed.
	armed    *time.Time
	ownArmed time.Time
	// shield marks the shield's own answer (answer): on HTTP/1 its
	// WriteHeader and Write use the deadline armed there and read no
	// clock, and its content type is never a stream to flush.
	shield bool
	// id1xx is the X-Request-Id set before an informational response,
	// restored on the final one if it was cleared.
	id1xx []string
	// writeTimedOut is set when a write hit the write deadline (slow read).
	writeTimedOut bool
}

// reset readies rw for a request that arrived at start (time.Now, with
// its monotonic reading) and is answered through w; connArmed, when not
// nil, is the connection's record of its HTTP/1 write deadline (see
// armed). reset(nil, 0, time.Time{}, nil) clears rw for the pool.
func (rw *responseWriter) reset(w http.ResponseWriter, writeIdle time.Duration, start time.Time, connArmed *time.Time) {
	*rw = responseWriter{w: w, writeIdle: writeIdle, start: start}
	rw.armed = &rw.ownArmed
	if w != nil && writeIdle > 0 {
		rw.ctl = *http.NewResponseController(w)
		rw.deadlines = true
		_, hijackable := w.(http.Hijacker) // HTTP/1 only
		rw.timerDeadline = !hijackable
		if hijackable && connArmed != nil {
			rw.armed = connArmed
		}
	}
}

// answer readies rw for the shield's own answer to its request (refuse),
// written at once from memory: a header and a body of a few KiB. On
// HTTP/1 the write deadline is checked here, once, and the answer's
// WriteHeader and Write read no clock (headerAt, the origin's latency,
// is not needed); HTTP/2 streams arm theirs around each write as usual.
func (rw *responseWriter) answer(v filter.Action) {
	rw.verdict = v
	if rw.timerDeadline {
		return
	}
	if rw.deadlines {
		rw.deadline(rw.now())
	}
	rw.shield = true
}

// now returns the current time from the monotonic clock alone: start
// plus the monotonic time elapsed since start. Its wall reading follows
// start's, so a wall-clock step during the request does not show; the
// writer's deadlines and latencies are durations, which it never affects.
func (rw *responseWriter) now() time.Time { return rw.start.Add(time.Since(rw.start)) }

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational (103 Early Hints): pass on, not final. The
		// reverse proxy clears the headers after it, the request id the
		// handler set among them: keep it for the final response.
		if id, ok := rw.w.Header()[requestIDHeader]; ok {
			rw.id1xx = id
		}
		rw.w.WriteHeader(code)
		return
	}
	if rw.id1xx != nil {
		if h := rw.w.Header(); h[requestIDHeader] == nil {
			h[requestIDHeader] = rw.id1xx
		}
	}
	rw.wroteHeader = true
	rw.status = code
	if !rw.shield {
		rw.headerAt = rw.now()
		rw.deadline(rw.headerAt)
	}
	rw.w.WriteHeader(code)
	if !rw.shield && isStreaming(rw.w.Header()) {
		rw.flush()
	}
	rw.disarm()
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if !rw.shield {
		rw.deadline(rw.now())
	}
	n, err := rw.w.Write(p)
	rw.disarm()
	if err != nil && isTimeoutErr(err) {
		rw.writeTimedOut = true
	}
	rw.bytes += int64(n)
	return n, err
}

// deadline arms the write deadline writeIdle after now (the caller's
// reading of rw.now, shared with headerAt where it has one).
func (rw *responseWriter) deadline(now time.Time) {
	if !rw.deadlines {
		return
	}
	if !rw.timerDeadline && rw.armed.Sub(now) > rw.writeIdle/2 {
		return
	}
	at := now.Add(rw.writeIdle)
	if !rw.timerDeadline {
		*rw.armed = at
	}
	_ = rw.ctl.SetWriteDeadline(at)
}

// disarm clears an HTTP/2 stream's write deadline after a write returned.
func (rw *responseWriter) disarm() {
	if rw.deadlines && rw.timerDeadline {
		_ = rw.ctl.SetWriteDeadline(time.Time{})
	}
}

// Flush implements http.Flusher.
func (rw *responseWriter) Flush() {
	rw.deadline(rw.now())
	rw.flush()
	rw.disarm()
}

func (rw *responseWriter) flush() {
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(rw.w).Flush()
}

// FlushError implements the interface http.ResponseController prefers.
func (rw *responseWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	rw.deadline(rw.now())
	err := http.NewResponseController(rw.w).Flush()
	rw.disarm()
	return err
}

// Hijack implements http.Hijacker for protocol upgrades (WebSocket). The
// connection's deadlines are cleared: after the upgrade, request and write
// timeouts no longer apply (case F21); the proxy's copy loop owns it.
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rw.w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Time{})
	*rw.armed = time.Time{}
	rw.hijacked = true
	if !rw.wroteHeader {
		rw.wroteHeader, rw.status, rw.headerAt = true, http.StatusSwitchingProtocols, rw.now()
	}
	return c, brw, nil
}

// Unwrap returns the underlying writer (http.ResponseController).
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

func isStreaming(h http.Header) bool {
	ct := h.Get("Content-Type")
	return strings.HasPrefix(ct, "text/event-stream") || strings.HasPrefix(ct, "application/x-ndjson") ||
		strings.HasPrefix(ct, "application/grpc") || strings.HasPrefix(ct, "application/stream+json")
}

// ErrSlowBody is returned by the body reader when a client sends its body
// too slowly (slow POST / R.U.D.Y.): a pause longer than the body idle
// timeout, an average rate under the minimum after the grace period, or
// too few bytes over the last MinBodyRateWindow.
var ErrSlowBody = errors.New("edge: request body too slow")

// rateSlots is the number of one-second counts in the body reader's ring:
// the current (partial) second and the MinBodyRateWindow whole seconds
// before it, so the window summed always spans at least MinBodyRateWindow.
const rateSlots = int64(MinBodyRateWindow/time.Second) + 1

// bodyReader enforces the body cap, the body idle timeout (through a read
// deadline renewed before every read, on HTTP/1 and HTTP/2 alike) and the
// minimum body rate, on the average since the body began and over the
// sliding MinBodyRateWindow.
type bodyReader struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController
	limit   int64
	idle    time.Duration
	minRate int64
	grace   time.Duration
	start   time.Time
	n       int64
	err     error
	// win counts the bytes received in each second since start (second s
	// in win[s % rateSlots]); winSec is the last second counted.
	win    [rateSlots]int64
	winSec int64
}

// BodyTooLargeError is returned when the body exceeds its cap.
type BodyTooLargeError struct{ Limit int64 }

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("edge: request body exceeds %d bytes", e.Limit)
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.idle > 0 {
		_ = b.ctl.SetReadDeadline(time.Now().Add(b.idle))
	}
	if rem := b.limit - b.n + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.err = &BodyTooLargeError{Limit: b.limit}
		return n, b.err
	}
	if isTimeoutErr(err) {
		b.err = ErrSlowBody
		return n, b.err
	}
	if b.minRate > 0 && err == nil {
		el := time.Since(b.start)
		if el > b.grace && float64(b.n) < float64(b.minRate)*(el-b.grace).Seconds() {
			b.err = ErrSlowBody
			return n, b.err
		}
		if b.windowSlow(el, n) {
			b.err = ErrSlowBody
			return n, b.err
		}
	}
	if err == io.EOF && b.idle > 0 {
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.rc.Close() }

// windowSlow counts n bytes received el after the body began and reports
// whether, once the body has been arriving for MinBodyRateWindow (and the
// grace period has passed), the bytes of the last MinBodyRateWindow (plus
// the current partial second) fall short of minRate × MinBodyRateWindow.
func (b *bodyReader) windowSlow(el time.Duration, n int) bool {
	sec := int64(el / time.Second)
	if gap := sec - b.winSec; gap > 0 {
		// Seconds winSec+1 … sec start empty; their slots held seconds
		// now out of the window.
		for s := b.winSec + 1 + max(gap-rateSlots, 0); s <= sec; s++ {
			b.win[s%rateSlots] = 0
		}
		b.winSec = sec
	}
	b.win[sec%rateSlots] += int64(n)
	if el < max(MinBodyRateWindow, b.grace) {
		return false
	}
	var sum int64
	for _, c := range b.win {
		sum += c
	}
	return sum < b.minRate*int64(MinBodyRateWindow/time.Second)
}

// settled clears the read deadline once the body was read whole without
// seeing EOF (a declared length met exactly): a deadline left armed would
// fire during the origin round trip and, on HTTP/1, cancel the request.
func (b *bodyReader) settled() {
	if b.idle > 0 {
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
}

// bufferFullVerdict answers a body refused for want of buffer room.
var bufferFullVerdict = filter.Verdict{Action: filter.Shed, RetryAfter: 2 * time.Second, Rule: "request_buffer_full",
	Reason: "the site is very busy, please retry in a moment", Cause: "request buffer full"}

// bufferShareVerdict answers a body refused because its client already
// holds its share of the buffer: 429 (the client's own doing, like
// max_inflight_per_client), not 503 (the site is not busy for others).
var bufferShareVerdict = filter.Verdict{Action: filter.Throttle, RetryAfter: 2 * time.Second, Rule: "request_buffer_per_client",
	Reason: "too many uploads in progress from your address, please retry in a moment", Cause: "client's request buffer share full"}

// bufferPrefixShareVerdict is bufferShareVerdict when the client's
// network (its aggregate prefix), not its own address, holds its share.
var bufferPrefixShareVerdict = filter.Verdict{Action: filter.Throttle, RetryAfter: 2 * time.Second, Rule: "request_buffer_per_client",
	Reason: "too many uploads in progress from your network, please retry in a moment", Cause: "client network's request buffer share full"}

// isTimeoutErr reports whether err is a deadline error. The common nil
// case returns before te is declared: te escapes to the heap, and declared
// first it would cost every body read an allocation.
func isTimeoutErr(err error) bool {
	if err == nil {
		return false
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// ClassifyError maps the edge's own body errors to the verdict the client
// gets (for proxy.ErrorClassifier): 413 for a body over its cap, 408 for a
// slow body, 429 with Retry-After when the client's share of the request
// buffer is full, 503 with Retry-After when the whole buffer is.
func ClassifyError(err error) (filter.Verdict, bool) {
	var tl *BodyTooLargeError
	switch {
	case errors.As(err, &tl):
		return filter.Verdict{Action: filter.Block, Status: http.StatusRequestEntityTooLarge, Rule: "max_body_bytes", Reason: "the request body is too large"}, true
	case errors.Is(err, ErrSlowBody):
		return filter.Verdict{Action: filter.Drop, Status: http.StatusRequestTimeout, Rule: "min_body_rate", Reason: "the request body arrived too slowly"}, true
	case errors.Is(err, errPrefixShareFull):
		return bufferPrefixShareVerdict, true
	case errors.Is(err, ErrBufferShareFull):
		return bufferShareVerdict, true
	case errors.Is(err, ErrBufferFull):
		return bufferFullVerdict, true
	}
	return filter.Verdict{}, false
}
