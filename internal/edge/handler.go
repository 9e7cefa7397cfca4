package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/clientip"
	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/proxy"
	"github.com/portcullis/portcullis/internal/ratelimit"
	"github.com/portcullis/portcullis/internal/stats"
)

// Site is one protected site as the handler sees it.
type Site struct {
	// Index is the site's position in the configuration (stats key).
	Index int
	// Name is the site id.
	Name string
	// Chain decides on each request.
	Chain *filter.Chain
	// Origin serves requests that pass (a *proxy.Pool in production).
	Origin http.Handler
	// MaxBodyBytes is the default request body cap; Routes override it.
	MaxBodyBytes int64
	// Routes are per-path-prefix body settings, longest prefix first.
	Routes []Route
	// Endpoints, when set, serves the shield's own endpoints (challenge
	// scripts and verification) after the chain has passed the request;
	// it reports whether it handled the request.
	Endpoints func(w http.ResponseWriter, r *http.Request, fr *filter.Request) bool
}

// Route is a per-path-prefix body setting.
type Route struct {
	// Prefix is the path prefix (the longest match wins).
	Prefix string
	// MaxBodyBytes caps the body (bytes; 0 = the site's MaxBodyBytes).
	MaxBodyBytes int64
	// Stream sends bodies to the origin as they arrive instead of
	// buffering them first (Runtime.Buffer): for large uploads.
	Stream bool
}

// RequestLimits are the per-request limits, reloadable.
type RequestLimits struct {
	// BodyIdleTimeout is the longest pause between body reads (slow POST).
	BodyIdleTimeout time.Duration
	// MinBodyRate (bytes/s; 0 = none) is enforced twice, both as
	// ErrSlowBody (408): on the average since the body began, after
	// BodyGrace; and over the sliding MinBodyRateWindow, so that a fast
	// start buys no credit for a trickle after it.
	MinBodyRate int64
	// BodyGrace is how long a body may arrive before MinBodyRate applies.
	BodyGrace time.Duration
	// WriteIdleTimeout is the longest a single response write may block
	// (slow read); it is renewed on every write, so streams are not cut
	// while data flows.
	WriteIdleTimeout time.Duration
	// H2ResetBudget is the client-cancelled HTTP/2 streams allowed per
	// connection per 10 s.
	H2ResetBudget int
	// H2ResetPenalty is how long a client whose connection exceeded the
	// reset budget is then refused (429) on any connection; 0 = not at all.
	H2ResetPenalty time.Duration
}

// MinBodyRateWindow is the sliding window of the minimum body rate: once a
// body has been arriving for this long (and RequestLimits.BodyGrace has
// passed), the bytes received in the last MinBodyRateWindow must be at
// least MinBodyRate × MinBodyRateWindow at every read, or the body is cut
// with ErrSlowBody (408). Without it, a client could send 1 MiB fast and
// then a byte every few seconds, holding its buffered megabyte for
// 1 MiB ÷ MinBodyRate (17 minutes at 1 KiB/s); with it, a body stops being
// held at most MinBodyRateWindow + BodyIdleTimeout after its bytes stop
// keeping pace. A steady body at or above MinBodyRate is never cut: the
// window is counted in whole seconds and spans 10 to 11 s. The
// accounting is a ring of per-second byte counts in the body reader (no
// allocation per read).
const MinBodyRateWindow = 10 * time.Second

// Runtime is one configuration generation: everything the handler needs,
// swapped atomically on reload.
type Runtime struct {
	Sites    []*Site
	ByHost   map[string]*Site
	Default  *Site
	Resolver *clientip.Resolver
	Limits   RequestLimits
	// Inflight caps concurrent requests per client address (may be nil).
	Inflight *ratelimit.Concurrency
	// Buffer, when set, reads request bodies whole before they are sent
	// to the origin (routes may opt out with Route.Stream).
	Buffer *BodyBuffer
}

// site returns the site for a Host header (case-insensitive, port ignored).
func (rt *Runtime) site(host string) *Site {
	if len(rt.ByHost) > 0 {
		h := host
		if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
			h = h[:i]
		}
		if s, ok := rt.ByHost[h]; ok {
			return s
		}
		if s, ok := rt.ByHost[strings.ToLower(h)]; ok {
			return s
		}
	}
	return rt.Default
}

// Observer receives the accounting record of every request, after the
// response; it must not block or retain the pointer.
type Observer interface {
	ObserveRequest(r *stats.Request)
}

// GeoFunc attributes a client address (and its aggregate prefix) to a
// country code and an AS number; "" and 0 when unknown.
type GeoFunc func(addr netip.Addr, prefix netip.Prefix) (country string, asn uint32)

// SetGeo sets the attribution used for filters and accounting; it must be
// called before the handler serves.
func (h *Handler) SetGeo(g GeoFunc) { h.geo = g }

// Handler is the shield's request path.
type Handler struct {
	geo GeoFunc

	rt    atomic.Pointer[Runtime]
	obs   Observer
	log   *slog.Logger
	start time.Time

	idPrefix [8]byte
	idSeq    atomic.Uint64

	onReset func(site int, peer netip.Addr)
	events  ConnEvents

	// Log budget for unparseable forwarding headers (see logMalformed).
	malSecond, malCount atomic.Int64

	// penalties are clients refused after a rapid-reset flood.
	penalties penaltyBox

	// earlyResetAt is the monotonic time (ns, 0 = never) net/http's own
	// HTTP/2 guard last ended a connection for too many early resets
	// (NoteH2Error).
	earlyResetAt atomic.Int64
}

// h2EarlyResetError is the HTTP/2 error type net/http reports (through
// http.HTTP2Config.CountError) when a connection's queue of handlers not
// yet started exceeds 4 × MaxConcurrentStreams: its own rapid-reset guard
// (golang/go#63417), which ends the connection with ENHANCE_YOUR_CALM.
const h2EarlyResetError = "too_many_early_resets"

// earlyResetAttribution is how long after net/http's guard fired a
// connection may be taken for the one it ended: one that counted more than
// earlyResetBurst client-cancelled streams within earlyResetBurstWithin
// of its first (a rate no browser reaches: cancelling the images of a page
// left is a few dozen streams, and MAX_CONCURRENT_STREAMS is 100).
const (
	earlyResetAttribution = 2 * time.Second
	earlyResetBurst       = 50
	earlyResetBurstWithin = time.Second
)

// NoteH2Error receives net/http's HTTP/2 error counts
// (http.HTTP2Config.CountError). On a CPU-starved server, the handlers of
// reset streams may start too slowly for the shield's reset budget to
// count them before net/http's own early-reset guard ends the connection;
// the connection is then mitigated but its client not penalised. The
// guard's report names no connection, so for earlyResetAttribution after
// it, a connection whose resets came at a rapid-reset rate (more than
// earlyResetBurst within earlyResetBurstWithin) is treated as over its
// budget (logged, penalised, closed), as if the shield's own budget had
// ended it; other connections keep their whole budget.
func (h *Handler) NoteH2Error(errType string) {
	if errType == h2EarlyResetError {
		h.earlyResetAt.Store(max(h.Mono(), 1))
	}
}

// NewHandler returns a handler serving rt. obs may be nil.
func NewHandler(rt *Runtime, obs Observer, log *slog.Logger) *Handler {
	h := &Handler{obs: obs, log: log, start: time.Now()}
	var b [4]byte
	rand.Read(b[:])
	hex.Encode(h.idPrefix[:], b[:])
	h.rt.Store(rt)
	return h
}

// Swap installs a new runtime (config reload); in-flight requests finish on
// the old one.
func (h *Handler) Swap(rt *Runtime) { h.rt.Store(rt) }

// Runtime returns the current runtime.
func (h *Handler) Runtime() *Runtime { return h.rt.Load() }

// SetEvents sets the accounting receiver of slow-body, slow-read and
// HTTP/2 reset events; it must be called before the handler serves.
func (h *Handler) SetEvents(ev ConnEvents) { h.events = ev }

// OnH2Reset sets a callback for connections closed for exceeding the
// rapid-reset budget.
func (h *Handler) OnH2Reset(f func(site int, peer netip.Addr)) { h.onReset = f }

// Mono returns monotonic nanoseconds since the handler started.
func (h *Handler) Mono() int64 { return int64(time.Since(h.start)) }

// newID returns a request id: 8 hex characters fixed per process and a
// sequence number, unique within the process and unguessable across runs.
func (h *Handler) newID() string {
	var b [24]byte
	copy(b[:8], h.idPrefix[:])
	b[8] = '-'
	n := h.idSeq.Add(1)
	i := len(b)
	for {
		i--
		b[i] = "0123456789abcdef"[n&15]
		n >>= 4
		if n == 0 || i == 10 {
			break
		}
	}
	copy(b[9:], b[i:])
	return string(b[:9+len(b)-i])
}

var frPool = sync.Pool{New: func() any { return new(filter.Request) }}
var rwPool = sync.Pool{New: func() any { return new(responseWriter) }}
var srPool = sync.Pool{New: func() any { return new(stats.Request) }}

// ServeHTTP is the request path: client identity → site → verdict chain →
// per-client concurrency → body limits and buffering → origin, then
// accounting.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	mono := int64(now.Sub(h.start))
	rt := h.rt.Load()
	ci := connInfoFrom(r.Context())
	if ci != nil && ci.parked.Load() {
		// The connection is over its reset budget: do no work for it, and
		// reset the stream rather than let net/http answer an empty 200.
		ci.park(h2ResetPark)
		panic(http.ErrAbortHandler)
	}
	var peer netip.Addr
	if ci != nil {
		peer = ci.peer
	} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = ap.Addr().Unmap().WithZone("")
	}
	if ci != nil {
		markServed(ci.conn)
	}
	res := rt.Resolver.Resolve(peer, r.Header)
	if res.Malformed {
		h.logMalformed(mono, peer, res)
	}
	site := rt.site(r.Host)
	if r.ProtoMajor == 2 && ci != nil && r.Context().Err() != nil {
		// Reset before its handler started (rapid reset): there is nobody
		// to answer and nothing to decide. It counts against the reset
		// budget whatever its verdict would have been, so a penalised
		// client cannot reset streams for free.
		if h.events != nil {
			h.events.H2Reset(site.Index)
		}
		h.noteReset(ci, rt, site, res, now, mono)
		return
	}
	id := h.newID()
	idv := []string{id} // the response's X-Request-Id, and later the origin's

	// Request smuggling: Go's parser refuses duplicate or conflicting
	// Content-Length (400) and unknown transfer codings (501); a request with
	// both Transfer-Encoding and Content-Length is framed by
	// Transfer-Encoding alone with Content-Length removed (RFC 9112 §6.3), and
	// re-framed to the origin. RFC 9112 §6.3 also requires closing the
	// connection after such a request, so that a peer that framed it
	// differently cannot smuggle a second request on it: every HTTP/1
	// request with a transfer coding ends its connection.
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
	// Every response carries the request id, so an operator can find the
	// request in the logs (`explain`) whatever the verdict; WriteVerdict
	// finds it set and keeps it.
	w.Header()[proxy.RequestIDHeader] = idv

	fr := frPool.Get().(*filter.Request)
	*fr = filter.Request{ID: id, Site: site.Index, Addr: res.Addr, Prefix: res.Prefix, Peer: peer, Method: r.Method, Path: r.URL.Path, HTTP: r, Now: mono}
	if h.geo != nil {
		fr.Country, fr.ASN = h.geo(res.Addr, res.Prefix)
	}
	defer frPool.Put(fr)

	rw := rwPool.Get().(*responseWriter)
	var connArmed *time.Time
	if ci != nil {
		connArmed = &ci.writeDeadline
	}
	rw.reset(w, rt.Limits.WriteIdleTimeout, now, connArmed)
	defer func() {
		h.account(r, rw, fr, site, now, res)
		rw.reset(nil, 0, time.Time{}, nil)
		rwPool.Put(rw)
	}()

	v := site.Chain.Decide(fr)
	if v.Terminal() && v.Action != filter.Bypass {
		refuse(rw, r, fr, site, v)
		return
	}
	if v.Action != filter.Bypass {
		if d := h.penalties.remaining(res.Addr, mono); d > 0 {
			v := filter.Verdict{Action: filter.Throttle, RetryAfter: d, Rule: "h2_reset_budget",
				Reason: "too many cancelled requests from your address, retry later", Cause: "HTTP/2 rapid reset"}
			refuse(rw, r, fr, site, v)
			return
		}
	}

	// Headers the origin relies on are set by us only (F03, F04), on every
	// request the chain let through; the shield's refusals above never
	// reach the origin and skip the work (no filter reads these headers).
	hd := r.Header
	hd[proxy.RequestIDHeader] = idv
	hd[proxy.ClientHeader] = []string{res.Addr.String()}
	if up := hd["Upgrade"]; len(up) > 0 && !strings.EqualFold(up[0], "websocket") {
		delete(hd, "Upgrade") // only WebSocket upgrades pass (h2c etc. never reach the origin)
	}

	if site.Endpoints != nil && site.Endpoints(rw, r, fr) {
		return
	}

	if rt.Inflight != nil {
		k := ratelimit.KeyFromAddr(res.Addr)
		if !rt.Inflight.Acquire(k) {
			v := filter.Verdict{Action: filter.Throttle, RetryAfter: time.Second, Rule: "max_inflight_per_client", Reason: "too many concurrent requests from your address"}
			refuse(rw, r, fr, site, v)
			return
		}
		defer rt.Inflight.Release(k)
	}

	var br *bodyReader
	if r.Body != nil && r.Body != http.NoBody {
		limit, stream := site.bodyRoute(r.URL.Path)
		if r.ContentLength > limit {
			v := filter.Verdict{Action: filter.Block, Status: http.StatusRequestEntityTooLarge, Rule: "max_body_bytes", Reason: "the request body is too large"}
			refuse(rw, r, fr, site, v)
			return
		}
		br = &bodyReader{rc: r.Body, ctl: http.NewResponseController(w), limit: limit,
			idle: rt.Limits.BodyIdleTimeout, minRate: rt.Limits.MinBodyRate, grace: rt.Limits.BodyGrace, start: now}
		r.Body = br
		if rt.Buffer != nil && !stream {
			bb, err := h.buffer(rt.Buffer, res.Addr, r, br)
			if err != nil {
				h.refuseBody(rw, r, fr, site, err)
				return
			}
			if bb != nil {
				defer bb.Close()
			}
		}
	}

	// Known-good clients (members, peace-time visitors) get priority and
	// the reserved share of origin capacity.
	if fr.Known {
		r = r.WithContext(proxy.WithPriority(r.Context(), proxy.Critical))
	}
	// A stream the client already reset (HTTP/2 rapid reset) or a client
	// that went away costs no origin round trip; it is counted below.
	if r.Context().Err() == nil {
		site.Origin.ServeHTTP(rw, r)
	}

	// A body refused by its limits must never end as net/http's implicit
	// empty 200, which tells the client its upload arrived. On HTTP/1 a
	// body read deadline also cancels the request context, so the origin
	// transport reports context.Canceled rather than ErrSlowBody and the
	// proxy writes nothing; answer for it here (case F15).
	if h.events != nil {
		if br != nil && errors.Is(br.err, ErrSlowBody) {
			h.events.SlowConn(site.Index, stats.SlowPost)
		}
		if rw.writeTimedOut {
			h.events.SlowConn(site.Index, stats.SlowRead)
		}
	}
	if br != nil && br.err != nil && !rw.wroteHeader {
		if v, ok := ClassifyError(br.err); ok {
			refuse(rw, r, fr, site, v)
			return
		}
	}

	if r.ProtoMajor == 2 && ci != nil && errors.Is(r.Context().Err(), context.Canceled) && !rw.wroteHeader {
		// The client cancelled the stream before we answered.
		if h.events != nil {
			h.events.H2Reset(site.Index)
		}
		h.noteReset(ci, rt, site, res, now, mono)
	}
}

// noteReset counts a client-cancelled HTTP/2 stream against its
// connection's reset budget (rapid reset, CVE-2023-44487). Over budget the
// client is penalised and this handler and every later one on the
// connection are held, so that net/http's own early-reset guard sends
// GOAWAY(ENHANCE_YOUR_CALM) while the client keeps going; the connection is
// closed soon after (case F16).
func (h *Handler) noteReset(ci *connInfo, rt *Runtime, site *Site, res clientip.Result, now time.Time, mono int64) {
	if rt.Limits.H2ResetBudget <= 0 {
		return
	}
	burst := 0
	if at := h.earlyResetAt.Load(); at != 0 && mono-at < int64(earlyResetAttribution) {
		// net/http's guard just ended a connection: one resetting
		// streams at a rapid-reset rate is taken for it.
		burst = earlyResetBurst
	}
	if !ci.noteReset(now, rt.Limits.H2ResetBudget, burst, earlyResetBurstWithin) {
		return
	}
	h.log.Warn("closing HTTP/2 connection: reset budget exceeded", "client", res.Addr.String(),
		"budget_per_10s", rt.Limits.H2ResetBudget, "penalty", rt.Limits.H2ResetPenalty)
	if h.onReset != nil {
		h.onReset(site.Index, res.Addr)
	}
	if p := rt.Limits.H2ResetPenalty; p > 0 {
		h.penalties.add(res.Addr, mono, mono+int64(p))
	}
	ci.park(h2ResetPark)
}

// malformedLogPerSecond bounds the log lines about unparseable forwarding
// headers, so that a broken proxy (or a client behind one that passes
// headers through) cannot flood the log.
const malformedLogPerSecond = 10

// logMalformed logs that a trusted proxy sent a forwarding value that could
// not be parsed, so the client fell back to the nearest trusted hop (case
// F01: never an empty key, never a hard failure, but never silent either).
func (h *Handler) logMalformed(mono int64, peer netip.Addr, res clientip.Result) {
	sec := mono / int64(time.Second)
	if old := h.malSecond.Load(); old != sec && h.malSecond.CompareAndSwap(old, sec) {
		h.malCount.Store(0)
	}
	if h.malCount.Add(1) > malformedLogPerSecond {
		return
	}
	h.log.Warn("unparseable forwarding header from a trusted proxy; the client is the nearest trusted hop",
		"peer", peer.String(), "client", res.Addr.String(), "source", res.Source.String())
}

// buffer reads r's body whole (BodyBuffer.Fill) before r goes anywhere
// near the origin pool, and re-frames r for the origin: the buffered body
// with an exact Content-Length, no Transfer-Encoding (RFC 9112 §6.1: one
// framing toward the origin, nothing to smuggle), no Expect (the client's
// 100-continue was answered when its body was read). A body the buffer
// does not take streams as before: nil, nil. client is the resolved client
// address, whose share of the buffer the body counts against.
func (h *Handler) buffer(buf *BodyBuffer, client netip.Addr, r *http.Request, br *bodyReader) (*BufferedBody, error) {
	bb, err := buf.Fill(r.Context(), client, br, r.ContentLength)
	if errors.Is(err, ErrNotBuffered) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.Body = bb
	delete(r.Header, "Expect")
	if !bb.Streaming() {
		br.settled()
		r.ContentLength = bb.Len()
		r.TransferEncoding = nil
		if bb.Len() == 0 {
			r.Body = http.NoBody
		}
	}
	return bb, nil
}

// refuse answers r with the shield's verdict v through the site's chain
// (the only writer of shield responses), notes v for accounting, and
// closes an HTTP/1 connection whose body is not read whole
// (closeIfBodyUnread).
func refuse(rw *responseWriter, r *http.Request, fr *filter.Request, site *Site, v filter.Verdict) {
	rw.answer(v.Action)
	closeIfBodyUnread(rw, r)
	site.Chain.Write(rw, r, fr, v)
}

// closeIfBodyUnread marks a refusal of an HTTP/1 request whose body has
// not been read to close its connection after the answer: otherwise
// net/http reads up to 256 KiB of the unread body before it writes the
// answer, which a client that stalls its body makes wait for ever (the
// server has no ReadTimeout), holding the answer and the connection.
func closeIfBodyUnread(rw *responseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		rw.Header().Set("Connection", "close")
	}
}

// refuseBody answers a body the buffer did not take: 413 over its cap,
// 408 too slow (counted as a slow POST), 429 with Retry-After when the
// client's share of the buffer stayed full, 503 with Retry-After when the
// whole buffer stayed full or could not spool, and a drop when the client went
// away mid-body. Never net/http's implicit empty 200 (case F15).
func (h *Handler) refuseBody(rw *responseWriter, r *http.Request, fr *filter.Request, site *Site, err error) {
	if errors.Is(err, ErrSlowBody) && h.events != nil {
		h.events.SlowConn(site.Index, stats.SlowPost)
	}
	v, ok := ClassifyError(err)
	switch {
	case ok:
	case errors.Is(err, errSpool):
		h.log.Warn("request body not buffered", "request_id", fr.ID, "err", err)
		v = bufferFullVerdict
		v.Cause = "request buffer: spool error"
	default:
		v = filter.Verdict{Action: filter.Drop, Rule: "request_body", Reason: "the request body was incomplete", Cause: "client body read failed"}
	}
	refuse(rw, r, fr, site, v) // the rest of the body may still be on the wire
}

// bodyRoute returns the body cap and streaming choice for a path.
func (s *Site) bodyRoute(path string) (limit int64, stream bool) {
	for _, rt := range s.Routes {
		if strings.HasPrefix(path, rt.Prefix) {
			limit = rt.MaxBodyBytes
			if limit <= 0 {
				limit = s.MaxBodyBytes
			}
			return limit, rt.Stream
		}
	}
	return s.MaxBodyBytes, false
}

func (h *Handler) account(r *http.Request, rw *responseWriter, fr *filter.Request, site *Site, start time.Time, res clientip.Result) {
	if h.obs == nil {
		return
	}
	sr := srPool.Get().(*stats.Request)
	*sr = stats.Request{
		Time: start.UnixNano(), Site: site.Index, Addr: res.Addr, Prefix: res.Prefix,
		Country: fr.Country, ASN: fr.ASN,
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, UserAgent: r.Header.Get("User-Agent"),
		Referer: len(r.Header["Referer"]) > 0, Status: rw.status, Bytes: rw.bytes, Verdict: uint8(rw.verdict),
	}
	if rw.verdict == filter.Pass {
		sr.OriginLatency = rw.headerAt.Sub(start)
		sr.OriginError = rw.status >= 500
	}
	h.obs.ObserveRequest(sr)
	srPool.Put(sr)
}
