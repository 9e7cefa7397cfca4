package record

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Verdict is what happened to a request, as the per-second series splits
// it (incident.SeriesPoint).
type Verdict uint8

// Verdicts. VerdictNone counts a request without a verdict class (the
// shield's own endpoints: challenge scripts and redemptions).
const (
	VerdictNone Verdict = iota
	// Passed: forwarded to the origin pool (answered by the origin or its
	// cache, or failed by the origin).
	Passed
	// Challenged: answered with a challenge.
	Challenged
	// Throttled: refused by a rate limit (429).
	Throttled
	// Blocked: refused by a block or drop decision, a deny rule or a
	// request limit (403, 413, connection closed).
	Blocked
	// Shed: refused by load shedding (503: no origin capacity).
	Shed
)

// Cohort is a group of legitimate visitors the shield can recognise.
type Cohort uint8

// Cohorts.
const (
	// Anyone: not recognised as legitimate.
	Anyone Cohort = iota
	// Member: carries member standing (a signed-in member).
	Member
	// Cleared: holds a valid clearance (solved a challenge).
	Cleared
)

// Outcome is one request's fate, as Site.Record counts it.
type Outcome struct {
	// Verdict is the request's verdict class.
	Verdict Verdict
	// Cohort is the legitimate-visitor group the request belongs to.
	Cohort Cohort
	// Origin is set when the origin answered (or failed) the request —
	// not the cache, not the shield.
	Origin bool
	// OriginError is set when the origin failed it: a 5xx, a timeout, a
	// refused connection.
	OriginError bool
	// Status is the HTTP status sent to the client (0: none).
	Status int
	// Latency is the time to the response headers of a passed request
	// (0: the shield answered itself; not counted).
	Latency time.Duration
	// Route is the index of the sensitive route (Routes.Match) the path
	// matched, or -1.
	Route int
	// Bytes is the response body size in bytes.
	Bytes int64
	// ChallengeShown is set for a challenge page served; ChallengeSolved
	// for a challenge solved (a clearance issued).
	ChallengeShown, ChallengeSolved bool
}

// Counter indexes of a slot.
const (
	cRequests = iota
	cPassed
	cChallenged
	cThrottled
	cBlocked
	cShed
	cOrigin
	cOriginErr
	cMemberReq
	cMemberServed
	cClearedReq
	cClearedServed
	cShown
	cSolved
	numCounters
)

// Histogram indexes of a slot.
const (
	hOrigin = iota
	hMember
	hCleared
	numHists
)

// claiming marks a slot being reset for a new second.
const claiming = -1

// stripes spreads a second's counters over cache lines: concurrent
// writers (picked by the low bits of their record time) mostly add to
// different lines instead of bouncing one between cores.
const stripes = 4

// stripe is one copy of a second's counters, padded to two cache lines.
type stripe struct {
	c [numCounters]atomic.Uint64
	_ [128 - numCounters*8]byte
}

// slot is one second of one site: a cache line of header, the counter
// stripes, the histograms (padded to a whole number of cache lines).
type slot struct {
	sec   atomic.Int64 // Unix second held; 0 empty, claiming while reset
	peace atomic.Bool  // recorded while the site was in the normal state
	_     [64 - 12]byte
	st    [stripes]stripe
	h     [numHists]liveHist
	_     [320 - numHists*numBuckets*4]byte
}

// count returns counter j summed over the stripes.
func (sl *slot) count(j int) uint64 {
	var n uint64
	for k := range sl.st {
		n += sl.st[k].c[j].Load()
	}
	return n
}

// routeSet is a site's sensitive routes and their counters: for ring slot
// i, route j: requests at [(i*n+j)*2], bytes at [(i*n+j)*2+1].
type routeSet struct {
	routes Routes
	ctr    []atomic.Uint64
}

// Options configure a Recorder.
type Options struct {
	// Seconds is the ring length per site (default 3600: one hour).
	Seconds int
	// BaselineWindow is how far before an incident's start the baseline
	// looks (default 30 minutes; capped at the ring length).
	BaselineWindow time.Duration
}

// Recorder holds the per-second rings of every configured site. It is safe
// for concurrent use.
type Recorder struct {
	seconds int
	window  time.Duration

	mu     sync.Mutex
	byName map[string]*Site

	colMu    sync.Mutex
	colOrder []string
	col      map[string]uint64
}

// SiteConfig names a site and its sensitive routes.
type SiteConfig struct {
	Name   string
	Routes Routes
}

// New returns an empty Recorder; Configure adds the sites.
func New(opts Options) *Recorder {
	if opts.Seconds <= 0 {
		opts.Seconds = 3600
	}
	if opts.BaselineWindow <= 0 {
		opts.BaselineWindow = 30 * time.Minute
	}
	opts.BaselineWindow = min(opts.BaselineWindow, time.Duration(opts.Seconds)*time.Second)
	return &Recorder{seconds: opts.Seconds, window: opts.BaselineWindow, byName: map[string]*Site{}, col: map[string]uint64{}}
}

// Configure sets the sites, in configuration order, and returns their
// handles in that order. A site keeps its ring across calls (matched by
// name); changed routes start counting afresh. Sites no longer listed keep
// their ring (a failed reload must not lose the running sites' record).
// Errors: more than MaxRoutes routes, or an invalid pattern (ErrPattern).
func (r *Recorder) Configure(sites []SiteConfig) ([]*Site, error) {
	for _, sc := range sites {
		if len(sc.Routes) > MaxRoutes {
			return nil, fmt.Errorf("record: site %s: %d sensitive routes, at most %d", sc.Name, len(sc.Routes), MaxRoutes)
		}
		for _, p := range sc.Routes {
			if err := ValidatePattern(p); err != nil {
				return nil, fmt.Errorf("record: site %s: %w", sc.Name, err)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Site, len(sites))
	for i, sc := range sites {
		s := r.byName[sc.Name]
		if s == nil {
			s = &Site{name: sc.Name, slots: make([]slot, r.seconds), window: r.window}
			s.normal.Store(true)
			r.byName[sc.Name] = s
		}
		if rs := s.routes.Load(); rs == nil || !slices.Equal(rs.routes, sc.Routes) {
			s.routes.Store(&routeSet{routes: slices.Clone(sc.Routes), ctr: make([]atomic.Uint64, r.seconds*2*len(sc.Routes))})
		}
		out[i] = s
	}
	return out, nil
}

// Lookup returns the site named name, or nil.
func (r *Recorder) Lookup(name string) *Site {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byName[name]
}

// maxCollateral bounds the incidents whose collateral is remembered.
const maxCollateral = 256

// NoteCollateral records that a mitigation decision of incident id put n
// known-good users at risk (its estimated collateral); Collateral returns
// the largest. The oldest incidents are forgotten beyond 256.
func (r *Recorder) NoteCollateral(id string, n uint64) {
	if id == "" {
		return
	}
	r.colMu.Lock()
	defer r.colMu.Unlock()
	old, ok := r.col[id]
	if !ok {
		if len(r.colOrder) >= maxCollateral {
			delete(r.col, r.colOrder[0])
			r.colOrder = r.colOrder[1:]
		}
		r.colOrder = append(r.colOrder, id)
	}
	r.col[id] = max(old, n)
}

// Collateral returns the largest collateral noted for incident id (0 if
// none).
func (r *Recorder) Collateral(id string) uint64 {
	r.colMu.Lock()
	defer r.colMu.Unlock()
	return r.col[id]
}

// Site is one site's ring. Record and Mark are safe for concurrent use.
type Site struct {
	name   string
	slots  []slot
	window time.Duration
	routes atomic.Pointer[routeSet]
	normal atomic.Bool
	// since is the first second recorded (0: none yet).
	since atomic.Int64
}

// Name returns the site's name.
func (s *Site) Name() string { return s.name }

// Routes returns the site's sensitive routes (do not modify).
func (s *Site) Routes() Routes { return s.routes.Load().routes }

// slot returns the slot of Unix second sec, claiming it if it holds an
// older second; nil when sec is older than the ring or not positive.
func (s *Site) slot(sec int64) (*slot, int) {
	if sec <= 0 {
		return nil, 0
	}
	i := int(sec % int64(len(s.slots)))
	sl := &s.slots[i]
	for {
		cur := sl.sec.Load()
		switch {
		case cur == sec:
			return sl, i
		case cur == claiming:
			runtime.Gosched() // another writer is zeroing it: a few ns
			continue
		case cur > sec:
			return nil, 0
		}
		if !sl.sec.CompareAndSwap(cur, claiming) {
			continue
		}
		for k := range sl.st {
			for j := range sl.st[k].c {
				sl.st[k].c[j].Store(0)
			}
		}
		for h := range sl.h {
			for b := range sl.h[h] {
				sl.h[h][b].Store(0)
			}
		}
		if rs := s.routes.Load(); len(rs.routes) > 0 {
			n := 2 * len(rs.routes)
			for j := i * n; j < (i+1)*n; j++ {
				rs.ctr[j].Store(0)
			}
		}
		sl.peace.Store(s.normal.Load())
		s.since.CompareAndSwap(0, sec)
		sl.sec.Store(sec)
		return sl, i
	}
}

// Record counts one request in the second of unixNano (event time: live,
// when its response ended, so that no record lands in a second already
// read as complete; replay, the log record's time): a few atomic adds, no
// allocation. A request older than the ring is dropped.
func (s *Site) Record(unixNano int64, o *Outcome) {
	sl, i := s.slot(unixNano / int64(time.Second))
	if sl == nil {
		return
	}
	c := &sl.st[(unixNano>>4)&(stripes-1)].c
	c[cRequests].Add(1)
	served := false
	switch o.Verdict {
	case Passed:
		c[cPassed].Add(1)
		served = !o.OriginError
	case Challenged:
		c[cChallenged].Add(1)
	case Throttled:
		c[cThrottled].Add(1)
	case Blocked:
		c[cBlocked].Add(1)
	case Shed:
		c[cShed].Add(1)
	}
	if o.Origin {
		c[cOrigin].Add(1)
		if o.OriginError {
			c[cOriginErr].Add(1)
		}
		if o.Latency > 0 {
			sl.h[hOrigin][bucketOf(o.Latency)].Add(1)
		}
	}
	if o.Cohort != Anyone {
		req, ok, h := cMemberReq, cMemberServed, hMember
		if o.Cohort == Cleared {
			req, ok, h = cClearedReq, cClearedServed, hCleared
		}
		c[req].Add(1)
		if served {
			c[ok].Add(1)
			if o.Latency > 0 {
				sl.h[h][bucketOf(o.Latency)].Add(1)
			}
		}
	}
	if o.ChallengeShown {
		c[cShown].Add(1)
	}
	if o.ChallengeSolved {
		c[cSolved].Add(1)
	}
	if o.Route >= 0 && served && o.Status >= 200 && o.Status < 300 {
		if rs := s.routes.Load(); o.Route < len(rs.routes) {
			j := (i*len(rs.routes) + o.Route) * 2
			rs.ctr[j].Add(1)
			rs.ctr[j+1].Add(uint64(max(o.Bytes, 0)))
		}
	}
}

// Mark records the site's detection state at now: normal (peace time) or
// not. Seconds claimed while the state is not normal are left out of
// baselines; the current second is claimed (so quiet seconds count as
// seconds of no traffic) and, when not normal, taken out of peace time.
func (s *Site) Mark(now time.Time, normal bool) {
	s.normal.Store(normal)
	if sl, _ := s.slot(now.Unix()); sl != nil && !normal {
		sl.peace.Store(false)
	}
}

// ClearPeace takes the recorded seconds in [from, to] out of peace time
// (an incident's start is known only once it is detected).
func (s *Site) ClearPeace(from, to time.Time) {
	for sec := max(from.Unix(), to.Unix()-int64(len(s.slots))+1, 1); sec <= to.Unix(); sec++ {
		sl := &s.slots[sec%int64(len(s.slots))]
		if sl.sec.Load() == sec {
			sl.peace.Store(false)
		}
	}
}
