package proxy

import (
	"context"
	"errors"
	"log"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/filter"
)

// ClientHeader is the inbound header the edge sets (always overwriting any
// client-supplied value) to the resolved client address; the proxy copies it
// into X-Forwarded-For and X-Real-IP on the way to the origin. Client-sent
// X-Forwarded-*, Forwarded and X-Real-IP values never reach the origin
// (case F03).
const ClientHeader = "X-Real-Ip"

// RequestIDHeader carries the shield's request id to the origin and client.
const RequestIDHeader = "X-Request-Id"

// ErrorClassifier maps a proxying error to the verdict the client gets;
// the edge supplies one that knows its body-limit and slow-body errors.
// It returns ok=false for errors it does not know.
type ErrorClassifier func(err error) (v filter.Verdict, ok bool)

// reverseProxy returns the reverse proxy for one origin, built on httputil.ReverseProxy (Rewrite mode, so hop-by-hop and
// Connection-nominated headers are removed per RFC 9110 §7.6.1 and inbound
// forwarding headers are dropped), which:
//   - keeps the client's Host and sets X-Forwarded-For / X-Real-IP from
//     ClientHeader, X-Forwarded-Host, X-Forwarded-Proto;
//   - never forwards request trailers (they arrive after every decision was
//     taken; case F19), while response trailers pass;
//   - flushes streaming responses (SSE, chunked) as they arrive (F20);
//   - reports transport failures to the pool (passive ejection) and answers
//     502/504, or what classify says for client-side errors.
func (p *Pool) reverseProxy(o *Origin, classify ErrorClassifier) http.Handler {
	errLog := p.log
	{
		target := o.URL
		return &httputil.ReverseProxy{
			Transport:  &originTransport{p: p, o: o},
			BufferPool: bufferPool{},
			ErrorLog:   log.New(discard{}, "", 0),
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
				h := pr.Out.Header
				// Set from the inbound request, not the outbound copy: a
				// client that names X-Real-IP or X-Request-Id in its
				// Connection header gets them stripped from the copy as
				// hop-by-hop, and must not be able to remove what the
				// shield adds (case F04).
				if c := pr.In.Header[ClientHeader]; len(c) == 1 {
					h["X-Forwarded-For"] = c
					h[ClientHeader] = c
				}
				if id := pr.In.Header[RequestIDHeader]; len(id) == 1 {
					h[RequestIDHeader] = id
				}
				h["X-Forwarded-Host"] = []string{pr.In.Host}
				if pr.In.TLS != nil {
					h["X-Forwarded-Proto"] = protoHTTPS
				} else {
					h["X-Forwarded-Proto"] = protoHTTP
				}
				pr.Out.Trailer = nil
			},
			ModifyResponse: func(resp *http.Response) error {
				if wantRetry(resp) {
					return errRetry
				}
				if f := p.onResp.Load(); f != nil {
					return (*f)(resp)
				}
				return nil
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if errors.Is(err, errRetry) {
					return // forward tries again; nothing was written
				}
				id := r.Header.Get(RequestIDHeader)
				if classify != nil {
					if v, ok := classify(err); ok {
						filter.WriteVerdict(w, r, id, v)
						return
					}
				}
				if r.Context().Err() != nil {
					// The client went away (or reset the stream): nobody
					// to answer, and not the origin's fault.
					return
				}
				p.Report(o, false)
				v := filter.Verdict{Action: filter.Shed, Status: http.StatusBadGateway, RetryAfter: 2 * time.Second, Reason: "the site could not be reached, please retry shortly", Rule: "origin"}
				if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
					v.Status = http.StatusGatewayTimeout
				}
				errLog.Warn("origin error", "site", p.cfg.Site, "origin", o.Key, "request_id", id, "err", err)
				filter.WriteVerdict(w, r, id, v)
			},
		}
	}
}

var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// ServeHTTP proxies r to an origin of the pool at its priority (route,
// raised by WithPriority), answering anonymous GETs from the micro-cache
// when one is configured. It answers 503 with Retry-After when no origin
// slot frees within the queue timeout and 502 when all origins are
// ejected — or, for a cached resource, the stale copy. Requests are never
// retried (a POST body is forwarded once, whole, or refused).
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	prio := p.priorityOf(r)
	if p.cache != nil {
		if p.cache.eligible(r) {
			p.serveCached(w, r, prio)
			return
		}
		p.cacheResult(resultBypass)
	}
	p.forward(w, r, prio)
}

// originTransport is an origin's round tripper: it feeds every exchange's
// time to response headers, and whether the origin signalled overload
// (429, 503, 504, a timeout), to the origin's adaptive limit.
type originTransport struct {
	p *Pool
	o *Origin
}

func (t *originTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.o.lim.Fixed() {
		return t.p.transport.RoundTrip(req)
	}
	start := t.p.now()
	inflight := int(t.o.inflight.Load())
	resp, err := t.p.transport.RoundTrip(req)
	drop := false
	switch {
	case err != nil:
		if req.Context().Err() != nil || !isTimeout(err) {
			return resp, err // the client left, or the origin is down (health's business)
		}
		drop = true
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		drop = true
	}
	now := t.p.now()
	if _, changed := t.o.lim.Sample(now, now.Sub(start), inflight, drop); changed {
		t.p.dispatch()
	}
	return resp, err
}

// bufferPool recycles 32 KiB copy buffers (httputil.BufferPool).
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
