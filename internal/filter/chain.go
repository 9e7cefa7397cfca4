package filter

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Stage names a slot in the fixed filter order.
type Stage int

// Stages, in the order the chain runs them. This list is the one place the
// order is fixed (STYLE.md §3); configuration only fills the stages.
const (
	StageAllow     Stage = iota // allow lists: bypass the rest
	StageDeny                   // static deny lists, list files, decisions
	StageGeo                    // country / ASN rules
	StageRateLimit              // per-key rate limits
	StageChallenge              // challenge / clearance
	numStages
)

var stageNames = [...]string{"allow", "deny", "geo", "rate_limit", "challenge"}

// String returns the stage name.
func (s Stage) String() string {
	if s >= 0 && s < numStages {
		return stageNames[s]
	}
	return "unknown"
}

// Chain runs filters in stage order and writes the shield's responses.
// A Chain is immutable once built and safe for concurrent use.
type Chain struct {
	flat      []Filter
	log       *Sampler
	onShadow  func(r *Request, v Verdict)
	challenge func(w http.ResponseWriter, req *http.Request, r *Request, v Verdict)
	onWrite   func(r *Request, v Verdict)
}

// OnWrite sets a callback for every shield response the chain writes (the
// operator's `explain` record). It must be set before the chain is used.
func (c *Chain) OnWrite(f func(r *Request, v Verdict)) { c.onWrite = f }

// OnChallenge sets the writer of Challenge verdicts (the challenge
// service: an interstitial for documents, a machine-readable refusal for
// everything else). Without one, a Challenge verdict is written as a plain
// 503 with Retry-After. It must be set before the chain is used.
func (c *Chain) OnChallenge(f func(w http.ResponseWriter, req *http.Request, r *Request, v Verdict)) {
	c.challenge = f
}

// NewChain builds a chain from filters grouped by stage; within a stage
// filters run in the order given. log may be nil (no logging).
func NewChain(byStage map[Stage][]Filter, log *Sampler) *Chain {
	c := &Chain{log: log}
	for s := Stage(0); s < numStages; s++ {
		c.flat = append(c.flat, byStage[s]...)
	}
	return c
}

// OnShadow sets a callback for verdicts of rules in shadow mode (counted
// and logged, not enforced). It must be set before the chain is used.
func (c *Chain) OnShadow(f func(r *Request, v Verdict)) { c.onShadow = f }

// Filters returns the filters in the order they run.
func (c *Chain) Filters() []Filter { return c.flat }

// Decide runs the filters and returns the first terminal verdict, or a
// Pass/Bypass verdict when the request may go to the origin. It allocates
// nothing unless a shadow callback does.
func (c *Chain) Decide(r *Request) Verdict {
	for _, f := range c.flat {
		v := f.Check(r)
		if v.Action == Pass {
			continue
		}
		if v.Shadow {
			if c.onShadow != nil {
				c.onShadow(r, v)
			}
			if c.log != nil {
				c.log.Log(r, v)
			}
			continue
		}
		return v
	}
	return Verdict{Action: Pass}
}

// Write sends the shield's own response for a terminal verdict: the status,
// Retry-After, X-Request-Id, Cache-Control: no-store, and a short body in
// the client's preferred format (HTML, JSON or text) naming the reason and
// the request id. Drop closes the connection (HTTP/1) or resets the stream
// (HTTP/2) instead. Write logs the verdict through the sampler.
func (c *Chain) Write(w http.ResponseWriter, req *http.Request, r *Request, v Verdict) {
	if c.log != nil {
		c.log.Log(r, v)
	}
	if c.onWrite != nil {
		c.onWrite(r, v)
	}
	if v.Action == Challenge && c.challenge != nil {
		c.challenge(w, req, r, v)
		return
	}
	WriteVerdict(w, req, r.ID, v)
}

// WriteVerdict writes v's response without logging (for callers outside a
// chain, such as the proxy's load shedding, that log themselves). The
// body is assembled without fmt and carries an explicit Content-Length.
// It is the reject path of every flood request, so it allocates only the
// X-Request-Id value, and that only when w's header does not already hold
// exactly id (the edge sets it before the chain runs): Content-Length and
// Retry-After values come from a table of small decimals, the body from a
// pooled buffer.
func WriteVerdict(w http.ResponseWriter, req *http.Request, id string, v Verdict) {
	if v.Action == Drop {
		drop(w)
		return
	}
	h := w.Header()
	if cur := h["X-Request-Id"]; len(cur) != 1 || cur[0] != id {
		h["X-Request-Id"] = []string{id}
	}
	h["Cache-Control"] = noStore
	if v.RetryAfter > 0 {
		secs := int64((v.RetryAfter + 999_999_999) / 1_000_000_000)
		h["Retry-After"] = decimalValue(secs)
	}
	reason := v.Reason
	status := v.StatusCode()
	if reason == "" {
		reason = http.StatusText(status)
	}
	bp := bodyPool.Get().(*[]byte)
	b := (*bp)[:0]
	accept := req.Header.Get("Accept")
	switch {
	case strings.Contains(accept, "text/html"):
		h["Content-Type"] = ctHTML
		b = appendHTMLPage(b, status, reason, id)
	case strings.Contains(accept, "json"):
		h["Content-Type"] = ctJSON
		b = append(b, `{"status":`...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, `,"reason":`...)
		b = strconv.AppendQuote(b, reason)
		b = append(b, `,"request_id":`...)
		b = strconv.AppendQuote(b, id)
		b = append(b, "}\n"...)
	default:
		h["Content-Type"] = ctText
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, ' ')
		b = append(b, reason...)
		b = append(b, "\nrequest id: "...)
		b = append(b, id...)
		b = append(b, '\n')
	}
	h["Content-Length"] = decimalValue(int64(len(b)))
	w.WriteHeader(status)
	w.Write(b)
	*bp = b
	bodyPool.Put(bp)
}

var (
	noStore  = []string{"no-store"}
	ctHTML   = []string{"text/html; charset=utf-8"}
	ctJSON   = []string{"application/json"}
	ctText   = []string{"text/plain; charset=utf-8"}
	bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
	// decimals[n] is the decimal text of n, for header values that are
	// small numbers (Content-Length of a shield body, Retry-After in
	// seconds). Immutable once built.
	decimals = func() *[numDecimals]string {
		var d [numDecimals]string
		var all []byte
		ends := make([]int, numDecimals)
		for n := range numDecimals {
			all = strconv.AppendInt(all, int64(n), 10)
			ends[n] = len(all)
		}
		s, start := string(all), 0 // one string; the values are its substrings
		for n := range numDecimals {
			d[n], start = s[start:ends[n]], ends[n]
		}
		return &d
	}()
)

// numDecimals bounds the decimals table (16 KiB of string headers):
// shield bodies are a few hundred bytes and Retry-After is seconds to
// minutes, so larger numbers are rare and formatted per call.
const numDecimals = 1024

// decimalValue returns n ≥ 0 as a one-element header value. Below
// numDecimals the value is a view of the shared decimals table (capacity
// 1, so an append copies; header values are never written in place) and
// costs no allocation.
func decimalValue(n int64) []string {
	if n >= 0 && n < numDecimals {
		return decimals[n : n+1 : n+1]
	}
	return []string{strconv.FormatInt(n, 10)}
}

// appendHTMLPage appends the HTML shield page for
// status, the public reason and the request id, both HTML-escaped.
func appendHTMLPage(b []byte, status int, reason, id string) []byte {
	b = append(b, htmlHead...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = appendHTMLEscaped(b, reason)
	b = append(b, htmlMid...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, " &mdash; "...)
	b = appendHTMLEscaped(b, reason)
	b = append(b, htmlBody...)
	b = appendHTMLEscaped(b, id)
	return append(b, htmlTail...)
}

// The HTML shield page, in the pieces appendHTMLPage puts around its
// values: <title>STATUS REASON</title> … <h1>STATUS &mdash; REASON</h1> …
// <code>ID</code>.
const (
	htmlHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>`
	htmlMid = `</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>`
	htmlBody = `</h1>
<p>This site is protected by Portcullis. If you think this is a mistake, contact the site's team and quote the request id below.</p>
<p>Request id: <code>`
	htmlTail = `</code></p></main></body></html>
`
)

// appendHTMLEscaped appends s with &, <, > and " replaced by their
// character references (the single quote is left as is: the page puts
// values in element text only).
func appendHTMLEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var ref string
		switch s[i] {
		case '&':
			ref = "&amp;"
		case '<':
			ref = "&lt;"
		case '>':
			ref = "&gt;"
		case '"':
			ref = "&quot;"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, ref...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// drop ends the exchange without an answer: a hijacked HTTP/1 connection is
// closed; for HTTP/2 (no hijack) the handler panics with ErrAbortHandler,
// which resets the stream.
func drop(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// Sampler logs shield verdicts so that logging can never become the
// bottleneck under a flood: up to PerSecond lines each second, then one in
// Every, with a count of what was skipped.
type Sampler struct {
	log       *slog.Logger
	perSecond int64
	every     int64
	state     samplerState
}

// NewSampler returns a sampler logging to log; perSecond ≥ 1, every ≥ 1.
func NewSampler(log *slog.Logger, perSecond, every int) *Sampler {
	if perSecond < 1 {
		perSecond = 1
	}
	if every < 1 {
		every = 1
	}
	return &Sampler{log: log, perSecond: int64(perSecond), every: int64(every)}
}

// Log records one verdict, subject to sampling. Client addresses are
// logged as their aggregate prefix for passes in shadow mode only; shield
// refusals log the address (it is attack evidence).
func (s *Sampler) Log(r *Request, v Verdict) {
	n, skipped, ok := s.state.admit(r.Now, s.perSecond, s.every)
	if !ok {
		return
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "shield response",
		slog.String("request_id", r.ID),
		slog.String("client", r.Addr.String()),
		slog.String("prefix", r.Prefix.String()), // the aggregate key, with its length (case F06)
		slog.String("method", r.Method),
		slog.String("path", r.Path),
		slog.Any("verdict", v),
		slog.Int64("sampled_1_in", n),
		slog.Int64("skipped", skipped),
	)
}
