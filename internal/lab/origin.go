package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/lab/attack"
)

// Class is who sent a request, as the lab's traffic declares it in the
// X-Lab-Class header (or, for tools that cannot set headers, the lab_class
// cookie).
type Class uint8

// Classes. Legit, Member, Feed and API are the legitimate traffic models;
// Bot is attack traffic; Crowd is a flash crowd (legitimate-looking
// traffic from the attack drivers); Probe is the lab's readiness check.
const (
	ClassUnknown Class = iota
	ClassLegit
	ClassMember
	ClassFeed
	ClassAPI
	ClassBot
	ClassCrowd
	ClassProbe
	NumClasses
)

// ClassHeader and ClassCookie carry a request's Class.
const (
	ClassHeader = attack.ClassHeader
	ClassCookie = attack.ClassCookie
)

// SumHeader carries the hex SHA-256 of a form body the client sent;
// SumEchoHeader the hex SHA-256 of the body the origin received.
const (
	SumHeader     = "X-Lab-Sum"
	SumEchoHeader = "X-Lab-Sum-Echo"
)

var classNames = [NumClasses]string{"unknown", "legit", "member", "feed", "api", "bot", "crowd", "probe"}

// String returns the class name used in headers and JSON ("bot").
func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "unknown"
}

// ParseClass returns the Class named s (case-insensitive), ClassUnknown
// when s names none.
func ParseClass(s string) Class {
	for i, n := range classNames {
		if strings.EqualFold(s, n) {
			return Class(i)
		}
	}
	return ClassUnknown
}

// MarshalText writes the class name.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a class name; unknown names are ClassUnknown.
func (c *Class) UnmarshalText(b []byte) error {
	*c = ParseClass(string(b))
	return nil
}

// IsLegit reports whether c is one of the legitimate traffic models.
func (c Class) IsLegit() bool { return c >= ClassLegit && c <= ClassAPI }

// classOf reads the class of r from ClassHeader, else ClassCookie.
func classOf(r *http.Request) Class {
	if v := r.Header.Get(ClassHeader); v != "" {
		return ParseClass(v)
	}
	if c, err := r.Cookie(ClassCookie); err == nil {
		return ParseClass(c.Value)
	}
	return ClassUnknown
}

// Arrivals counts requests that reached the origin, by Class.
type Arrivals [NumClasses]uint64

// OriginOptions configure an Origin. Zero values take the defaults.
type OriginOptions struct {
	// Bin is the width of the arrival series (default 100 ms).
	Bin time.Duration
	// Span is how long after Start arrivals are binned (default 1 h);
	// later arrivals land in the last bin.
	Span time.Duration
	// MinLatency and MaxLatency bound the uniform base service time of a
	// request (default 5 ms and 20 ms).
	MinLatency, MaxLatency time.Duration
	// Knee is the concurrency at which service time has doubled: a request
	// takes base·(1 + (inflight/Knee)²), at most LatencyCap, so overload
	// shows as latency (default 32).
	Knee int
	// LatencyCap bounds the service time (default 10 s).
	LatencyCap time.Duration
}

// Origin is the lab's instrumented origin: a small campaign site (pages and
// their assets, login and donation forms, member pages, a feed, a JSON API)
// that counts arrivals per bin by Class, tracks its concurrency, verifies
// form bodies against SumHeader and echoes what it received in
// SumEchoHeader. Its service time is a few milliseconds, growing with the
// square of its concurrency. Safe for concurrent use.
type Origin struct {
	opts       OriginOptions
	epoch      atomic.Int64 // Start time in Unix ns; 0 = not started
	bins       []atomic.Uint64
	inflight   atomic.Int64
	peak       atomic.Int64
	classIn    [NumClasses]atomic.Int64 // in flight by class
	classPeak  [NumClasses]atomic.Int64
	mismatches atomic.Uint64
	mux        *http.ServeMux
}

// NewOrigin returns an Origin that counts nothing until Start.
func NewOrigin(o OriginOptions) *Origin {
	if o.Bin <= 0 {
		o.Bin = 100 * time.Millisecond
	}
	if o.Span <= 0 {
		o.Span = time.Hour
	}
	if o.MinLatency <= 0 {
		o.MinLatency = 5 * time.Millisecond
	}
	if o.MaxLatency < o.MinLatency {
		o.MaxLatency = max(o.MinLatency, 20*time.Millisecond)
	}
	if o.Knee <= 0 {
		o.Knee = 32
	}
	if o.LatencyCap <= 0 {
		o.LatencyCap = 10 * time.Second
	}
	n := int(o.Span/o.Bin) + 1
	og := &Origin{opts: o, bins: make([]atomic.Uint64, n*int(NumClasses))}
	og.routes()
	return og
}

// Start sets the origin's time zero: arrivals are binned from t0 on, and
// those before are not counted.
func (o *Origin) Start(t0 time.Time) { o.epoch.Store(t0.UnixNano()) }

// Arrivals returns a copy of the arrival series: element i counts the
// requests whose handling began in [t0+i·Bin, t0+(i+1)·Bin), up to the
// last non-empty bin.
func (o *Origin) Arrivals() []Arrivals {
	n := len(o.bins) / int(NumClasses)
	out := make([]Arrivals, n)
	last := -1
	for i := range n {
		for c := range NumClasses {
			if v := o.bins[i*int(NumClasses)+int(c)].Load(); v > 0 {
				out[i][c] = v
				last = i
			}
		}
	}
	return out[:last+1]
}

// Concurrency returns the requests being handled now.
func (o *Origin) Concurrency() int64 { return o.inflight.Load() }

// PeakConcurrency returns the most requests handled at once since creation.
func (o *Origin) PeakConcurrency() int64 { return o.peak.Load() }

// IntegrityMismatches counts form bodies whose SHA-256 did not match the
// SumHeader the client sent.
func (o *Origin) IntegrityMismatches() uint64 { return o.mismatches.Load() }

// ConcurrencyOf returns the requests of class c being handled now.
func (o *Origin) ConcurrencyOf(c Class) int64 { return o.classIn[c].Load() }

// PeakConcurrencyOf returns the most requests of class c handled at once
// (for slow attacks: how many origin slots the attack held).
func (o *Origin) PeakConcurrencyOf(c Class) int64 { return o.classPeak[c].Load() }

// ServeHTTP counts the request, then serves it.
func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := classOf(r)
	if e := o.epoch.Load(); e != 0 {
		if d := time.Now().UnixNano() - e; d >= 0 {
			i := min(int(d/int64(o.opts.Bin)), len(o.bins)/int(NumClasses)-1)
			o.bins[i*int(NumClasses)+int(c)].Add(1)
		}
	}
	raise(&o.peak, o.inflight.Add(1))
	raise(&o.classPeak[c], o.classIn[c].Add(1))
	defer func() {
		o.inflight.Add(-1)
		o.classIn[c].Add(-1)
	}()
	o.mux.ServeHTTP(w, r)
}

// raise sets peak to n when n is larger.
func raise(peak *atomic.Int64, n int64) {
	for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
	}
}

// work waits the service time for the current concurrency (cost scales it;
// search costs 3). It returns false when the client went away.
func (o *Origin) work(r *http.Request, cost float64) bool {
	base := o.opts.MinLatency
	if span := o.opts.MaxLatency - o.opts.MinLatency; span > 0 {
		base += rand.N(span)
	}
	x := float64(o.inflight.Load()) / float64(o.opts.Knee)
	d := min(time.Duration(float64(base)*cost*(1+x*x)), o.opts.LatencyCap)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (o *Origin) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	for _, p := range []string{"/{$}", "/about", "/news/{id}", "/events", "/search"} {
		m.HandleFunc("GET "+p, o.page)
	}
	m.HandleFunc("GET /static/{file}", o.asset)
	m.HandleFunc("GET /login", o.formPage)
	m.HandleFunc("GET /donate", o.formPage)
	m.HandleFunc("POST /login", o.form)
	m.HandleFunc("POST /donate", o.form)
	m.HandleFunc("GET /account", o.memberPage)
	m.HandleFunc("GET /members/{page}", o.memberPage)
	m.HandleFunc("GET /feed.xml", o.feed)
	m.HandleFunc("GET /api/v1/{what}", o.api)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if o.work(r, 1) {
			http.NotFound(w, r)
		}
	})
	o.mux = m
}

// filler is the body text of the origin's pages (≈ 6 KiB).
var filler = strings.Repeat("<p>Our campaign is about schools, clinics and clean air. Volunteers knock on doors every weekend; join them, donate, or read the latest news below.</p>\n", 40)

func (o *Origin) page(w http.ResponseWriter, r *http.Request) {
	cost := 1.0
	if r.URL.Path == "/search" {
		cost = 3
	}
	if !o.work(r, cost) {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Campaign — %s</title>
<link rel="stylesheet" href="/static/site.css"><script src="/static/app.js" defer></script></head>
<body><img src="/static/logo.png" alt="logo"><h1>%s</h1>%s</body></html>
`, r.URL.Path, r.URL.Path, filler)
}

func (o *Origin) asset(w http.ResponseWriter, r *http.Request) {
	if !o.work(r, 0.3) {
		return
	}
	f := r.PathValue("file")
	ct := map[string]string{".css": "text/css", ".js": "text/javascript", ".png": "image/png"}[path.Ext(f)]
	if ct == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Header().Set("ETag", `"`+f+`-v1"`)
	io.WriteString(w, filler[:2048])
}

func (o *Origin) formPage(w http.ResponseWriter, r *http.Request) {
	if !o.work(r, 1) {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>%s</title></head><body>
<form method="post" action="%s"><input name="user"><input name="message"><button>Send</button></form></body></html>
`, r.URL.Path, r.URL.Path)
}

// maxFormBytes bounds a form body the origin reads.
const maxFormBytes = 1 << 20

// form reads the whole body, checks it against SumHeader and echoes the
// checksum of what arrived. A member login (user "m-…") gets the member
// header; logins answer 303 to /account, donations 200.
func (o *Origin) form(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(body)
	echo := hex.EncodeToString(sum[:])
	w.Header().Set(SumEchoHeader, echo)
	w.Header().Set("Cache-Control", "no-store")
	if want := r.Header.Get(SumHeader); want != "" && !strings.EqualFold(want, echo) {
		o.mismatches.Add(1)
		http.Error(w, "body checksum mismatch", http.StatusBadRequest)
		return
	}
	if !o.work(r, 2) {
		return
	}
	if r.URL.Path == "/login" {
		form, _ := url.ParseQuery(string(body))
		user := form.Get("user")
		if strings.HasPrefix(user, "m-") {
			w.Header().Set(MemberHeader, user)
		}
		http.SetCookie(w, &http.Cookie{Name: "lab_session", Value: hex.EncodeToString(sum[:8]), Path: "/", HttpOnly: true})
		w.Header().Set("Location", "/account")
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, "<!doctype html><title>Thank you</title><p>Thank you for your donation.</p>\n")
}

func (o *Origin) memberPage(w http.ResponseWriter, r *http.Request) {
	if !o.work(r, 1.5) {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-store")
	fmt.Fprintf(w, "<!doctype html><title>Members</title><h1>%s</h1>%s\n", r.URL.Path, filler[:3000])
}

const feedETag = `"feed-v1"`

func (o *Origin) feed(w http.ResponseWriter, r *http.Request) {
	if !o.work(r, 0.5) {
		return
	}
	w.Header().Set("ETag", feedETag)
	if r.Header.Get("If-None-Match") == feedETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
	io.WriteString(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>Campaign news</title>
<item><title>Door knocking this weekend</title><link>https://example.org/news/1</link></item>
</channel></rss>
`)
}

func (o *Origin) api(w http.ResponseWriter, r *http.Request) {
	if !o.work(r, 1) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `{"what":%q,"items":[{"id":1,"title":"Door knocking"},{"id":2,"title":"Town hall"}]}`+"\n", r.PathValue("what"))
}
