package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/filter"
)

// CacheHeader tells the client how the cache answered: HIT, MISS or STALE.
const CacheHeader = "X-Portcullis-Cache"

// streamAfter is how long a response of unknown length may be buffered
// for the cache before it is treated as a stream and passed through (so a
// slow NDJSON or long-poll answer is never held back; case F20).
const streamAfter = 100 * time.Millisecond

var (
	cacheHit     = []string{"HIT"}
	cacheMiss    = []string{"MISS"}
	cacheStale   = []string{"STALE"}
	staleWarning = []string{`110 - "Response is Stale"`}
	ageValues    = func() (a [128][]string) {
		for i := range a {
			a[i] = []string{strconv.Itoa(i)}
		}
		return
	}()
	keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}
)

// serveCached answers an eligible request (Cache.eligible): fresh from the
// cache, or through one coalesced origin fetch per key, or stale when the
// origin is overloaded, erroring or down.
func (p *Pool) serveCached(w http.ResponseWriter, r *http.Request, prio Priority) {
	c := p.cache
	kb := keyBufs.Get().(*[]byte)
	key, query, rewrite := c.appendKey((*kb)[:0], r)
	now := p.now()
	e := c.get(key, now)
	if e != nil && !now.After(e.fresh) {
		*kb = key
		keyBufs.Put(kb)
		p.cacheResult(resultHit)
		p.serveEntry(w, r, e, now, cacheHit)
		return
	}
	passed := c.passed(key, now)
	ks := ""
	if !passed {
		ks = string(key)
	}
	*kb = key
	keyBufs.Put(kb)
	switch {
	case passed:
		p.cacheResult(resultPass)
		p.forward(w, r, prio)
		return
	case r.Method != http.MethodGet || len(r.Header["Range"]) > 0:
		p.cacheResult(resultBypass)
		p.forward(w, r, prio)
		return
	}
	var stale *entry
	if e != nil && !e.noStale {
		stale = e
	}
	f, leader := c.join(ks)
	if leader {
		p.cacheResult(resultMiss)
		p.fill(w, r, prio, ks, query, rewrite, f, stale)
		return
	}
	p.cacheResult(resultCoalesced)
	select {
	case <-f.done:
	case <-r.Context().Done():
		return
	}
	now = p.now()
	switch f.outcome {
	case fillStored:
		if e := c.get([]byte(ks), now); e != nil {
			p.serveEntry(w, r, e, now, cacheHit)
			return
		}
	case fillFailed:
		if stale != nil {
			p.cacheResult(resultStale)
			p.serveEntry(w, r, stale, now, cacheStale)
			return
		}
	}
	p.forward(w, r, prio)
}

// forward proxies r to an origin without the cache.
func (p *Pool) forward(w http.ResponseWriter, r *http.Request, prio Priority) {
	if prio >= Critical && (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.Body == nil || r.Body == http.NoBody) {
		if p.forwardOnce(w, r, prio) {
			return
		}
		// The origin answered 503 (overloaded): one more try after a short
		// pause, for critical bodiless requests only (members, peace-time
		// visitors, critical routes) — a GET is safe to repeat, a form never
		// is.
		t := time.NewTimer(retryPause)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	o, err := p.acquire(r.Context(), prio)
	if err != nil {
		p.writeAcquireError(w, r, err, prio)
		return
	}
	defer p.Release(o)
	o.proxy.ServeHTTP(w, r)
}

// fill fetches r's key from the origin as the leader of its coalesced
// waiters, stores what the response headers allow, and answers r — with
// the stale entry instead when the origin is overloaded, erroring or down.
func (p *Pool) fill(w http.ResponseWriter, r *http.Request, prio Priority, key, query string, rewrite bool, f *fill, stale *entry) {
	c := p.cache
	defer c.finish(key, f, fillPass) // panics and early returns
	o, err := p.acquire(r.Context(), prio)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client left; waiters fetch on their own
		}
		c.finish(key, f, fillFailed)
		if stale != nil {
			p.cacheResult(resultStale)
			p.serveEntry(w, r, stale, p.now(), cacheStale)
			return
		}
		p.writeAcquireError(w, r, err, prio)
		return
	}
	// The fetch outlives a client that leaves (its waiters still want
	// it); conditional headers are dropped so the origin sends a full,
	// storable response, and IgnoreQueryOn routes fetch the normalised
	// query the key names.
	out := new(http.Request)
	*out = *r
	out.Header = r.Header.Clone()
	for _, h := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		delete(out.Header, h)
	}
	if rewrite {
		u := *r.URL
		u.RawQuery = query
		out.URL = &u
		out.RequestURI = ""
	}
	// The fetch outlives the client only while its waiters may need it:
	// once the response streams to this client alone, the client's
	// departure ends it (a long poll or an endless stream would otherwise
	// hold the origin connection and slot for ever).
	fctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	out = out.WithContext(fctx)
	fw := &fillWriter{p: p, w: w, h: http.Header{}, key: key, f: f, holdErrors: stale != nil, cancel: cancel}
	defer context.AfterFunc(r.Context(), fw.clientGone)()
	released := false
	defer func() {
		if !released {
			p.Release(o)
		}
	}()
	if !p.proxyFill(o, fw, out) {
		p.Release(o)
		released = true
		// The origin failed mid-body before anything reached the client.
		c.finish(key, f, fillFailed)
		if stale != nil {
			p.cacheResult(resultStale)
			p.serveEntry(w, r, stale, p.now(), cacheStale)
			return
		}
		filter.WriteVerdict(w, r, r.Header.Get(RequestIDHeader), originErrorVerdict)
		return
	}
	p.Release(o)
	released = true
	fw.complete(r, stale)
}

var originErrorVerdict = filter.Verdict{Action: filter.Shed, Status: http.StatusBadGateway, RetryAfter: 2 * time.Second,
	Reason: "the site could not be reached, please retry shortly", Rule: "origin", Cause: "origin failed mid-response"}

// proxyFill runs the reverse proxy into fw. It returns false when the
// origin's body failed while nothing had reached the client yet (the
// proxy's http.ErrAbortHandler is recovered); once fw streams, the abort
// propagates and net/http cuts the response.
func (p *Pool) proxyFill(o *Origin, fw *fillWriter, out *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler || !fw.abortable() {
				panic(v)
			}
			ok = false
		}
	}()
	o.proxy.ServeHTTP(fw, out)
	return true
}

// Fill writer modes.
const (
	modePending   = iota // no status yet
	modeBuffering        // collecting a storable response
	modeStreaming        // passing through to the client
	modeHolding          // swallowing a 5xx: a stale entry will answer
)

// fillWriter is the ResponseWriter a leader's fetch writes to. A storable
// response is buffered whole (up to MaxObjectBytes) and written to the
// client after the origin slot is released, so a slow client never holds
// the fill its waiters depend on; anything else streams through.
type fillWriter struct {
	p          *Pool
	w          http.ResponseWriter
	h          http.Header // the response's headers until it streams
	key        string
	f          *fill
	holdErrors bool

	cancel context.CancelFunc // ends the origin fetch

	mu       sync.Mutex
	gone     bool // the client left
	mode     int
	status   int
	pol      storePolicy
	body     []byte
	timer    *time.Timer
	timerOff bool
}

func (fw *fillWriter) Header() http.Header {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	switch fw.mode {
	case modeStreaming:
		return fw.w.Header()
	case modeBuffering:
		// The proxy touches headers after WriteHeader only once the body
		// is copied (trailers): the stream timer must no longer fire.
		fw.stopTimerLocked()
	}
	return fw.h
}

func (fw *fillWriter) WriteHeader(code int) {
	if code < 200 {
		return // 1xx (Early Hints) are not relayed on the cache path
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.mode != modePending {
		return
	}
	fw.status = code
	if code >= 500 && fw.holdErrors {
		fw.mode = modeHolding
		return
	}
	fw.pol = fw.p.cache.policy(code, fw.h, fw.p.now())
	if !fw.pol.store {
		fw.streamLocked()
		return
	}
	fw.mode = modeBuffering
	if fw.h.Get("Content-Length") == "" {
		fw.timer = time.AfterFunc(streamAfter, fw.timeout)
	}
}

func (fw *fillWriter) Write(b []byte) (int, error) {
	fw.mu.Lock()
	if fw.mode == modePending {
		fw.mu.Unlock()
		fw.WriteHeader(http.StatusOK)
		fw.mu.Lock()
	}
	defer fw.mu.Unlock()
	switch fw.mode {
	case modeHolding:
		return len(b), nil
	case modeBuffering:
		if int64(len(fw.body)+len(b)) <= fw.p.cache.cfg.MaxObjectBytes {
			fw.body = append(fw.body, b...)
			return len(b), nil
		}
		fw.pol = storePolicy{pass: true} // too large to keep
		fw.streamLocked()
	}
	return fw.w.Write(b)
}

// Flush implements http.Flusher: only a streaming response is flushed.
func (fw *fillWriter) Flush() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.mode == modeStreaming {
		_ = http.NewResponseController(fw.w).Flush()
	}
}

// Unwrap lets http.ResponseController reach the client's writer.
func (fw *fillWriter) Unwrap() http.ResponseWriter { return fw.w }

// timeout turns a response of unknown length that is still arriving after
// streamAfter into a stream.
func (fw *fillWriter) timeout() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.timerOff || fw.mode != modeBuffering {
		return
	}
	fw.pol = storePolicy{pass: true}
	fw.streamLocked()
	_ = http.NewResponseController(fw.w).Flush()
}

func (fw *fillWriter) stopTimerLocked() {
	fw.timerOff = true
	if fw.timer != nil {
		fw.timer.Stop()
	}
}

// clientGone runs when the client's request context ends: a streaming
// fetch, which serves nobody else, is cancelled; a pending or buffering
// one goes on for its waiters (bounded by the response-header timeout,
// MaxObjectBytes and streamAfter) and is cancelled if it turns into a
// stream.
func (fw *fillWriter) clientGone() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.gone = true
	if fw.mode == modeStreaming {
		fw.cancel()
	}
}

// streamLocked commits the headers (and anything buffered) to the client
// and passes the rest through; the waiters are released to fetch on
// their own (fw.mu held).
func (fw *fillWriter) streamLocked() {
	fw.stopTimerLocked()
	dst := fw.w.Header()
	for k, v := range fw.h {
		dst[k] = v
	}
	dst[CacheHeader] = cacheMiss
	fw.mode = modeStreaming
	if fw.gone {
		fw.cancel()
	}
	fw.w.WriteHeader(fw.status)
	if len(fw.body) > 0 {
		fw.w.Write(fw.body)
		fw.body = nil
	}
	outcome := fillPass
	if fw.status >= 500 {
		outcome = fillFailed
	}
	if fw.pol.pass {
		fw.p.cache.markPass(fw.key, fw.p.now())
	}
	fw.p.cache.finish(fw.key, fw.f, outcome)
}

// abortable reports whether nothing has reached the client yet.
func (fw *fillWriter) abortable() bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.stopTimerLocked()
	return fw.mode != modeStreaming
}

// complete ends a fetch that returned normally: it stores a buffered
// response and answers the client from it, or answers with stale after a
// held 5xx.
func (fw *fillWriter) complete(r *http.Request, stale *entry) {
	fw.mu.Lock()
	fw.stopTimerLocked()
	mode := fw.mode
	fw.mu.Unlock()
	c, now := fw.p.cache, fw.p.now()
	switch mode {
	case modePending:
		// The proxy wrote nothing: never let that become an empty 200.
		c.finish(fw.key, fw.f, fillFailed)
		if stale != nil {
			fw.p.cacheResult(resultStale)
			fw.p.serveEntry(fw.w, r, stale, now, cacheStale)
			return
		}
		filter.WriteVerdict(fw.w, r, r.Header.Get(RequestIDHeader), originErrorVerdict)
	case modeHolding:
		c.finish(fw.key, fw.f, fillFailed)
		fw.p.cacheResult(resultStale)
		fw.p.serveEntry(fw.w, r, stale, now, cacheStale)
	case modeBuffering:
		e := fw.entry(now)
		if e != nil {
			c.put(e)
			c.finish(fw.key, fw.f, fillStored)
		} else {
			delete(fw.h, RequestIDHeader) // the edge's id stays
			e = &entry{status: fw.status, header: fw.h, body: fw.body}
		}
		fw.p.serveEntry(fw.w, r, e, now, cacheMiss)
	}
}

// entry builds the cache entry of a buffered response, or nil when it
// must not be stored (truncated, trailers).
func (fw *fillWriter) entry(now time.Time) *entry {
	h := fw.h
	if cl := h.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(fw.body)) {
		return nil
	}
	size := int64(len(fw.body) + len(fw.key) + 256)
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return nil
		}
		for _, v := range vs {
			size += int64(len(k) + len(v) + 16)
		}
	}
	age := ageOf(h)
	h = h.Clone() // values with cap == len: a later Add never writes into shared arrays
	for _, k := range []string{RequestIDHeader, CacheHeader, "Age", "Content-Length", "Warning"} {
		delete(h, k)
	}
	e := &entry{key: fw.key, status: fw.status, header: h, body: fw.body, etag: h.Get("Etag"),
		length: []string{strconv.Itoa(len(fw.body))}, fetched: now, age: age, fresh: now.Add(fw.pol.fresh),
		noStale: fw.pol.noStale, size: size}
	e.staleUntil = e.fresh
	if !e.noStale {
		e.staleUntil = e.fresh.Add(fw.p.cache.cfg.StaleFor)
	}
	return e
}

// serveEntry writes e to the client with Age (RFC 9111 §5.1) and
// CacheHeader; a stale answer also carries Warning 110. A GET whose
// If-None-Match names e's ETag gets 304.
func (p *Pool) serveEntry(w http.ResponseWriter, r *http.Request, e *entry, now time.Time, label []string) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h[CacheHeader] = label
	if e.fetched.IsZero() {
		h[CacheHeader] = cacheMiss // an unstored answer
	} else {
		age := int64((e.age + now.Sub(e.fetched)) / time.Second)
		if age >= 0 && age < int64(len(ageValues)) {
			h["Age"] = ageValues[age]
		} else {
			h["Age"] = []string{strconv.FormatInt(max(age, 0), 10)}
		}
	}
	if len(label) > 0 && label[0] == cacheStale[0] {
		h["Warning"] = staleWarning
	}
	if e.etag != "" && e.status == http.StatusOK && etagMatch(r.Header.Get("If-None-Match"), e.etag) {
		delete(h, "Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	switch {
	case e.length != nil:
		h["Content-Length"] = e.length
	case !hasTrailers(e.header):
		h["Content-Length"] = []string{strconv.Itoa(len(e.body))}
	}
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		w.Write(e.body)
	}
}

func hasTrailers(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// etagMatch is If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatch(inm, etag string) bool {
	if inm == "" {
		return false
	}
	if strings.TrimSpace(inm) == "*" {
		return true
	}
	etag = strings.TrimPrefix(etag, "W/")
	for inm != "" {
		var t string
		t, inm, _ = strings.Cut(inm, ",")
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == etag {
			return true
		}
	}
	return false
}

// writeAcquireError answers a request no origin slot was found for.
func (p *Pool) writeAcquireError(w http.ResponseWriter, r *http.Request, err error, prio Priority) {
	id := r.Header.Get(RequestIDHeader)
	switch {
	case errors.Is(err, ErrNoOrigin):
		filter.WriteVerdict(w, r, id, filter.Verdict{Action: filter.Shed, Status: http.StatusBadGateway, RetryAfter: 5 * time.Second, Reason: "the site is temporarily unavailable, please retry shortly", Rule: "origin"})
	case errors.Is(err, ErrSaturated):
		filter.WriteVerdict(w, r, id, filter.Verdict{Action: filter.Shed, RetryAfter: time.Second, Reason: "the site is very busy, please retry in a moment", Rule: "origin-concurrency", Cause: shedCauses[prio]})
	}
}

var shedCauses = [...]string{"", "origin capacity: low-priority request shed", "origin capacity: queue timeout", "origin capacity: critical request queue timeout"}

// retryPause is the pause before a critical GET refused by an overloaded
// origin is tried again.
const retryPause = 25 * time.Millisecond

// retryMark rides on a critical request's context: the origin response
// hook sets retry when the origin answers 503, and the response is then
// not sent to the client.
type retryMark struct{ retry bool }

type retryKey struct{}

// forwardOnce proxies r once; it reports false, having written nothing,
// when the origin answered 503 and the request should be tried again.
func (p *Pool) forwardOnce(w http.ResponseWriter, r *http.Request, prio Priority) bool {
	o, err := p.acquire(r.Context(), prio)
	if err != nil {
		p.writeAcquireError(w, r, err, prio)
		return true
	}
	defer p.Release(o)
	m := &retryMark{}
	o.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), retryKey{}, m)))
	return !m.retry
}

// errRetry is returned from ModifyResponse to drop an origin 503 that
// forward will retry.
var errRetry = errors.New("proxy: origin overloaded, retrying")

// wantRetry marks resp for a retry when its request carries a retryMark and
// the origin answered 503.
func wantRetry(resp *http.Response) bool {
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Request == nil {
		return false
	}
	m, ok := resp.Request.Context().Value(retryKey{}).(*retryMark)
	if !ok || m.retry {
		return false
	}
	m.retry = true
	return true
}
