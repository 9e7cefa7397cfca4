package app

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/portcullis/portcullis/internal/challenge"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/proxy"
	"github.com/portcullis/portcullis/internal/record"
)

// recorder feeds the incident record (package record) from the request
// path: every request ends in exactly one of three places, and each counts
// it once —
//
//   - the chain's OnWrite hook: a shield refusal (throttle, block, drop,
//     challenge), with the filter.Request at hand;
//   - the origin wrapper (siteRecorder.origin): a request the chain passed,
//     with the status and bytes the client got and the time to headers;
//     a 503 the proxy wrote itself is load shedding, a 5xx the origin
//     answered (marked by the origin response hook) or a 502/504 the proxy
//     wrote for an unreachable or slow origin is an origin error;
//   - the shield's endpoints (challenge scripts and redemptions): counted
//     as requests without a verdict; a redemption that sets a clearance is
//     a solved challenge.
//
// What the chain learns about a request — member standing (the standing
// filter), a valid clearance (cohortFilter) — and what the origin hook sees
// reaches the origin wrapper through tags keyed by the request id.
type recorder struct {
	rec  *record.Recorder
	tags tagTable
}

func newRecorder() *recorder { return &recorder{rec: record.New(record.Options{})} }

// configure sets the recorder's sites from cfg and returns each site's
// recording hooks, in configuration order.
func (r *recorder) configure(cfg *config.Config) ([]*siteRecorder, error) {
	scs := make([]record.SiteConfig, len(cfg.Sites))
	for i, s := range cfg.Sites {
		scs[i] = record.SiteConfig{Name: s.Name, Routes: record.Routes(s.SensitiveRoutes)}
	}
	sites, err := r.rec.Configure(scs)
	if err != nil {
		return nil, err
	}
	out := make([]*siteRecorder, len(sites))
	for i, s := range sites {
		out[i] = &siteRecorder{r: r, site: s}
	}
	return out, nil
}

// noteDecision keeps the estimated collateral of an enforced decision of
// incident id (mitigate.Event's "collateral" evidence).
func (r *recorder) noteDecision(id string, ev incident.Event) {
	if ev.Kind != "decision" || ev.Evidence["shadow"] == 1 {
		return
	}
	if c := ev.Evidence["collateral"]; c > 0 {
		r.rec.NoteCollateral(id, uint64(c))
	}
}

// Tag bits of a request.
const (
	tagMember    = 1 << iota // valid member standing
	tagCleared               // valid clearance
	tagOrigin5xx             // the origin itself answered with a 5xx
	tagMask      = 0xf
)

// tagTable carries a few bits per in-flight request from the chain and the
// origin hook to the origin wrapper, keyed by the request id: slot
// (hash>>4 mod size) holds the hash's upper 60 bits and the tag bits. Two
// requests that share a slot at the same moment lose the older one's tags
// (it then counts as nobody's); with 16,384 slots and only legitimate
// cohorts and origin 5xx answers tagged, that is rare. 128 KiB; lock-free.
type tagTable struct {
	slots [1 << 14]atomic.Uint64
}

func tagKey(id string) (key uint64, slot int) {
	h := xxhash.Sum64String(id)
	return h &^ tagMask, int(h>>4) & (1<<14 - 1)
}

// set adds bits to id's tags.
func (t *tagTable) set(id string, bits uint64) {
	k, i := tagKey(id)
	sl := &t.slots[i]
	for {
		old := sl.Load()
		v := k | bits
		if old&^tagMask == k {
			v = old | bits
		}
		if old == v || sl.CompareAndSwap(old, v) {
			return
		}
	}
}

// get returns id's tags (0: none).
func (t *tagTable) get(id string) uint64 {
	k, i := tagKey(id)
	if v := t.slots[i].Load(); v&^tagMask == k {
		return v & tagMask
	}
	return 0
}

func cohortOf(tags uint64) record.Cohort {
	switch {
	case tags&tagMember != 0:
		return record.Member
	case tags&tagCleared != 0:
		return record.Cleared
	}
	return record.Anyone
}

// cohortFilter tags requests that hold a valid clearance (allow stage,
// after the standing filter); it never decides. A request without cookies
// costs a header lookup; one with a clearance cookie an HMAC.
type cohortFilter struct {
	svc  *challenge.Service
	tags *tagTable
}

func (f *cohortFilter) Name() string { return "cohort" }

func (f *cohortFilter) Check(r *filter.Request) filter.Verdict {
	if len(r.HTTP.Header["Cookie"]) > 0 {
		if _, ok := f.svc.Verify(r.HTTP, r.Prefix); ok {
			f.tags.set(r.ID, tagCleared)
		}
	}
	return filter.Verdict{}
}

// siteRecorder is one site's recording hooks for one configuration
// generation.
type siteRecorder struct {
	r    *recorder
	site *record.Site
}

// verdictOf maps a shield refusal onto the series' verdict classes.
func verdictOf(a filter.Action) record.Verdict {
	switch a {
	case filter.Throttle:
		return record.Throttled
	case filter.Block, filter.Drop:
		return record.Blocked
	case filter.Challenge:
		return record.Challenged
	case filter.Shed:
		return record.Shed
	}
	return record.VerdictNone
}

// onWrite returns the chain's OnWrite hook: it records the refusal, then
// calls next.
func (sr *siteRecorder) onWrite(next func(*filter.Request, filter.Verdict)) func(*filter.Request, filter.Verdict) {
	return func(fr *filter.Request, v filter.Verdict) {
		o := record.Outcome{Verdict: verdictOf(v.Action), Status: v.StatusCode(), Route: -1,
			ChallengeShown: v.Action == filter.Challenge && (v.Rule == challenge.RuleInterstitial || v.Rule == challenge.RuleForm)}
		if fr.Member {
			o.Cohort = record.Member
		} else {
			o.Cohort = cohortOf(sr.r.tags.get(fr.ID))
		}
		sr.site.Record(time.Now().UnixNano(), &o)
		if next != nil {
			next(fr, v)
		}
	}
}

// hook returns the origin response hook: it marks a 5xx the origin itself
// answered (so the origin wrapper tells it from the proxy's own 503), then
// calls next.
func (sr *siteRecorder) hook(next func(*http.Response) error) func(*http.Response) error {
	return func(resp *http.Response) error {
		if resp.StatusCode >= 500 && resp.Request != nil {
			if id := resp.Request.Header[proxy.RequestIDHeader]; len(id) == 1 {
				sr.r.tags.set(id[0], tagOrigin5xx)
			}
		}
		return next(resp)
	}
}

// endpoints wraps the site's shield endpoints: requests under the
// challenge prefix are counted, a redemption that sets a clearance as a
// solved challenge.
func (sr *siteRecorder) endpoints(next func(http.ResponseWriter, *http.Request, *filter.Request) bool) func(http.ResponseWriter, *http.Request, *filter.Request) bool {
	return func(w http.ResponseWriter, r *http.Request, fr *filter.Request) bool {
		if !challenge.Handles(r.URL.Path) {
			return next(w, r, fr)
		}
		rw := getRecWriter(w)
		defer putRecWriter(rw)
		handled := next(rw, r, fr)
		if handled {
			o := record.Outcome{Status: rw.status, Route: -1, Cohort: cohortOf(sr.r.tags.get(fr.ID)),
				ChallengeSolved: r.URL.Path == challenge.PathPrefix+"verify" && rw.status == http.StatusSeeOther && len(w.Header()["Set-Cookie"]) > 0}
			sr.site.Record(time.Now().UnixNano(), &o)
		}
		return handled
	}
}

// origin wraps the site's origin pool (see recorder).
func (sr *siteRecorder) origin(next http.Handler) http.Handler {
	return &originRecorder{sr: sr, next: next}
}

type originRecorder struct {
	sr   *siteRecorder
	next http.Handler
}

// Origins exposes the wrapped pool's origins (status).
func (o *originRecorder) Origins() []*proxy.Origin {
	if p, ok := o.next.(interface{ Origins() []*proxy.Origin }); ok {
		return p.Origins()
	}
	return nil
}

// ServeHTTP forwards to the pool and records the outcome. A request that
// got no answer (the client went away, or the edge answers for a failed
// body afterwards through the chain) is not counted here.
func (o *originRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := getRecWriter(w)
	defer putRecWriter(rw)
	start := time.Now()
	o.next.ServeHTTP(rw, r)
	if rw.status == 0 {
		return
	}
	var tags uint64
	if id := r.Header[proxy.RequestIDHeader]; len(id) == 1 {
		tags = o.sr.r.tags.get(id[0])
	}
	out := record.Outcome{Verdict: record.Passed, Cohort: cohortOf(tags), Status: rw.status, Bytes: rw.bytes, Route: -1}
	switch {
	case rw.status >= 500 && tags&tagOrigin5xx != 0:
		out.Origin, out.OriginError = true, true
	case rw.status == http.StatusServiceUnavailable:
		out.Verdict = record.Shed // the proxy's own: no origin capacity
	case rw.status >= 500:
		out.Origin, out.OriginError = true, true // unreachable or too slow
	case !servedFromCache(rw.Header()):
		out.Origin = true
	}
	if out.Verdict == record.Passed {
		out.Latency = rw.headerAt.Sub(start)
	}
	if routes := o.sr.site.Routes(); len(routes) > 0 {
		out.Route = routes.Match(r.URL.Path)
	}
	o.sr.site.Record(time.Now().UnixNano(), &out)
}

// servedFromCache reports whether the proxy's micro-cache answered (a hit
// or a stale copy).
func servedFromCache(h http.Header) bool {
	v := h[proxy.CacheHeader]
	return len(v) == 1 && (v[0] == "HIT" || v[0] == "STALE")
}

// recWriter notes the status, the time of the headers and the body bytes
// of a response on its way to the client. Flush, Hijack and deadlines reach
// the writer below through Unwrap (http.ResponseController).
type recWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	headerAt time.Time
}

var recWriters = sync.Pool{New: func() any { return new(recWriter) }}

func getRecWriter(w http.ResponseWriter) *recWriter {
	rw := recWriters.Get().(*recWriter)
	rw.ResponseWriter = w
	return rw
}

func putRecWriter(rw *recWriter) {
	*rw = recWriter{}
	recWriters.Put(rw)
}

func (w *recWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status, w.headerAt = code, time.Now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status, w.headerAt = http.StatusOK, time.Now()
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap returns the writer below (http.ResponseController).
func (w *recWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
