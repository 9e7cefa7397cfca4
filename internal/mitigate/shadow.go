package mitigate

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// ShadowLog remembers what shadow decisions would have done: for each
// shadow decision, the requests it matched and how many of them came from
// members, in time buckets over a bounded retention. The request path calls
// RecordShadowHit; the admin API calls WouldHaveBlocked. Memory is bounded:
// at most maxDecisions decisions × (retention / resolution) buckets of 24
// bytes. Safe for concurrent use.
type ShadowLog struct {
	mu         sync.Mutex
	resolution int64 // bucket width, ns
	buckets    int
	max        int
	entries    map[string]*shadowEntry
	hits       uint64
	evicted    uint64
}

type shadowEntry struct {
	d    Decision
	last int64 // epoch of the latest hit
	ring []shadowBucket
}

type shadowBucket struct {
	epoch             int64 // time / resolution; 0 = unused
	requests, members uint64
}

// Default ShadowLog bounds.
const (
	DefaultShadowRetention    = time.Hour
	DefaultShadowResolution   = time.Minute
	DefaultShadowMaxDecisions = 4096
)

// NewShadowLog returns a log keeping retention (default 1 h) of hits in
// buckets of resolution (default 1 min; "the last N minutes" is answered
// to that resolution) for at most maxDecisions shadow decisions (default
// 4,096; the decision hit longest ago is forgotten to admit a new one).
// Zero or negative arguments take the defaults.
func NewShadowLog(retention, resolution time.Duration, maxDecisions int) *ShadowLog {
	if retention <= 0 {
		retention = DefaultShadowRetention
	}
	if resolution <= 0 {
		resolution = DefaultShadowResolution
	}
	if maxDecisions <= 0 {
		maxDecisions = DefaultShadowMaxDecisions
	}
	n := int((retention + resolution - 1) / resolution)
	return &ShadowLog{resolution: int64(resolution), buckets: max(n, 1) + 1, max: maxDecisions,
		entries: map[string]*shadowEntry{}}
}

// RecordShadowHit records that shadow decision d matched a request at now,
// from a member (member standing) or not. It allocates only for the first
// hit of a decision.
func (l *ShadowLog) RecordShadowHit(d Decision, isMember bool, now time.Time) {
	epoch := now.UnixNano()/l.resolution + 1
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hits++
	e := l.entries[d.ID]
	if e == nil {
		if len(l.entries) >= l.max {
			l.evictLocked()
		}
		e = &shadowEntry{ring: make([]shadowBucket, l.buckets)}
		l.entries[d.ID] = e
	}
	if e.d.Action != d.Action || e.d.Expires != d.Expires || e.d.ID == "" {
		e.d = d
	}
	e.last = epoch
	b := &e.ring[epoch%int64(l.buckets)]
	if b.epoch != epoch {
		*b = shadowBucket{epoch: epoch}
	}
	b.requests++
	if isMember {
		b.members++
	}
}

// evictLocked forgets the decision hit longest ago.
func (l *ShadowLog) evictLocked() {
	var victim string
	oldest := int64(-1)
	for id, e := range l.entries {
		if oldest < 0 || e.last < oldest {
			victim, oldest = id, e.last
		}
	}
	delete(l.entries, victim)
	l.evicted++
}

// ShadowCount is what one shadow decision would have done.
type ShadowCount struct {
	// Decision is the shadow decision (as of its latest hit).
	Decision Decision
	// Requests it matched, and MemberRequests of those from members.
	Requests, MemberRequests uint64
}

// Summary answers "what would the shadow decisions have done since Since,
// and how many of those requests were members".
type Summary struct {
	// Since is the start of the period, rounded down to the log's
	// resolution.
	Since time.Time
	// Requests and MemberRequests total the decisions below; Blocked and
	// MemberBlocked count those of Block and Drop decisions only (a shadow
	// challenge or rate limit would not have refused everyone).
	Requests, MemberRequests uint64
	Blocked, MemberBlocked   uint64
	// Decisions lists each decision's counts, most requests first.
	Decisions []ShadowCount
}

// WouldHaveBlocked summarises the hits recorded in buckets starting at or
// after since (rounded down to the resolution; hits older than the
// retention may have been overwritten).
func (l *ShadowLog) WouldHaveBlocked(since time.Time) Summary {
	from := since.UnixNano()/l.resolution + 1
	s := Summary{Since: time.Unix(0, (from-1)*l.resolution)}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		var c ShadowCount
		for i := range e.ring {
			if b := &e.ring[i]; b.epoch >= from {
				c.Requests += b.requests
				c.MemberRequests += b.members
			}
		}
		if c.Requests == 0 {
			continue
		}
		c.Decision = e.d
		s.Requests += c.Requests
		s.MemberRequests += c.MemberRequests
		if e.d.Action == Block || e.d.Action == Drop {
			s.Blocked += c.Requests
			s.MemberBlocked += c.MemberRequests
		}
		s.Decisions = append(s.Decisions, c)
	}
	slices.SortFunc(s.Decisions, func(a, b ShadowCount) int {
		if c := cmp.Compare(b.Requests, a.Requests); c != 0 {
			return c
		}
		return cmp.Compare(a.Decision.ID, b.Decision.ID)
	})
	return s
}

// shadowStats returns the totals for metrics.
func (l *ShadowLog) shadowStats() (hits, evicted uint64, tracked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hits, l.evicted, len(l.entries)
}
