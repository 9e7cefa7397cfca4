package record

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/incident"
)

// maxOpen bounds the incidents whose running totals a Sink keeps.
const maxOpen = 64

// Sink decorates the detection engine's sink: every incident it passes on
// carries the Series of [Start, now] (only the latest Options.Seconds when
// longer, with a timeline note saying so), the Integrity evidence and, when
// Impact is set, the Impact on real people — from the Recorder's site of the
// incident's name. Incidents of a site the Recorder does not know
// (packet-level incidents name an address) pass unchanged, as do all
// incidents while Rec is nil.
//
// Series, Impact and Integrity cover [Start, now] while the incident is
// open and [Start, End] when it closes (End is the last second the attack
// was seen; the engine closes the incident once the site has been quiet for
// a while after it). Impact and Integrity cover the whole incident even
// when it outlasts the ring: each call folds the seconds older than half
// the ring into running totals kept per open incident, and reads the rest
// afresh — so a recovery that turns out to lie after End is never folded in,
// unless it lasted longer than half the ring. The baseline is taken when the
// incident is first seen and kept until it closes. Calls must come from one
// goroutine at a time (the engine's).
type Sink struct {
	// Next receives the enriched incidents.
	Next detect.Sink
	// Rec is the recorder read (nil: pass through).
	Rec *Recorder
	// Clock returns the current event time (live: time.Now; replay: the
	// latest record's time). Close uses the incident's End instead.
	Clock func() time.Time
	// Impact fills Incident.Impact; replay leaves it nil (a log cannot tell
	// members from anyone else).
	Impact bool

	mu   sync.Mutex
	open map[string]*running
}

// running is what a Sink keeps for an open incident.
type running struct {
	base Baseline
	acc  Totals
	upto int64 // last second folded into acc
	seen time.Time
}

// Open implements detect.Sink.
func (s *Sink) Open(ctx context.Context, in *incident.Incident) error {
	s.enrich(in, s.now(), false)
	return s.Next.Open(ctx, in)
}

// Update implements detect.Sink.
func (s *Sink) Update(ctx context.Context, in *incident.Incident) error {
	s.enrich(in, s.now(), false)
	return s.Next.Update(ctx, in)
}

// Close implements detect.Sink.
func (s *Sink) Close(ctx context.Context, in *incident.Incident) error {
	end := in.End
	if end.IsZero() {
		end = s.now()
	}
	s.enrich(in, end, true)
	return s.Next.Close(ctx, in)
}

func (s *Sink) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock()
}

// enrich fills in's Series, Impact and Integrity up to now.
func (s *Sink) enrich(in *incident.Incident, now time.Time, closing bool) {
	if s.Rec == nil || in.Start.IsZero() {
		return
	}
	site := s.Rec.Lookup(in.Site)
	if site == nil {
		return
	}
	if now.Before(in.Start) {
		now = in.Start
	}
	// The incident's seconds are not peace time (it is known only from
	// detection on, after its start); after it, the site is normal again.
	site.ClearPeace(in.Start, now)
	site.Mark(now, closing)

	run := s.running(in, site, now)
	// Fold the seconds older than half the ring into the running totals;
	// read the rest afresh.
	if done := now.Unix() - int64(len(site.slots)/2); done > run.upto {
		t := site.Totals(time.Unix(run.upto+1, 0), time.Unix(done, 0))
		run.acc.Merge(&t)
		run.upto = done
	}
	tot := cloneTotals(&run.acc)
	if run.upto < now.Unix() {
		fresh := site.Totals(time.Unix(run.upto+1, 0), now)
		tot.Merge(&fresh)
	}

	series, cut := site.Series(in.Start, now)
	in.Series = series
	if cut {
		noteTruncated(in, len(site.slots))
	}
	if s.Impact {
		in.Impact = impact(&tot, &run.base, s.Rec.Collateral(in.ID))
	}
	in.Integrity = integrity(&tot, &run.base, site.Routes())
	if closing {
		s.mu.Lock()
		delete(s.open, in.ID)
		s.mu.Unlock()
	}
}

// running returns in's running state, creating it (and taking the
// baseline) on first sight.
func (s *Sink) running(in *incident.Incident, site *Site, now time.Time) *running {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		s.open = map[string]*running{}
	}
	if r, ok := s.open[in.ID]; ok {
		return r
	}
	if len(s.open) >= maxOpen {
		var oldest string
		var t time.Time
		for id, r := range s.open {
			if oldest == "" || r.seen.Before(t) {
				oldest, t = id, r.seen
			}
		}
		delete(s.open, oldest)
	}
	n := len(site.Routes())
	r := &running{base: site.Baseline(in.Start), upto: in.Start.Unix() - 1, seen: now,
		acc: Totals{RouteRequests: make([]uint64, n), RouteBytes: make([]uint64, n)}}
	s.open[in.ID] = r
	return r
}

func cloneTotals(t *Totals) Totals {
	c := *t
	c.RouteRequests = slices.Clone(t.RouteRequests)
	c.RouteBytes = slices.Clone(t.RouteBytes)
	return c
}

// noteTruncated adds (once: the same content every time, which the store
// keeps once) a timeline note that the series lost its start.
func noteTruncated(in *incident.Incident, seconds int) {
	ring := time.Duration(seconds) * time.Second
	e := incident.Event{Time: time.Unix(in.Start.Unix()+int64(seconds), 0).UTC(), Kind: "note",
		Message: fmt.Sprintf("The incident outlasted the %s per-second record: its series keeps only the latest %s (the impact and integrity figures still cover the whole incident).", ring, ring)}
	for _, x := range in.Timeline {
		if x.Kind == e.Kind && x.Message == e.Message {
			return
		}
	}
	in.Timeline = append(in.Timeline, e)
	slices.SortStableFunc(in.Timeline, func(a, b incident.Event) int { return a.Time.Compare(b.Time) })
}

func impact(t *Totals, b *Baseline, collateral uint64) *incident.Impact {
	return &incident.Impact{
		Members: incident.CohortImpact{Requests: t.MemberRequests, Served: t.MemberServed,
			LatencyP95: t.MemberLatency.Quantile(0.95), BaselineLatencyP95: b.MemberLatency.Quantile(0.95)},
		Cleared: incident.CohortImpact{Requests: t.ClearedRequests, Served: t.ClearedServed,
			LatencyP95: t.ClearedLatency.Quantile(0.95), BaselineLatencyP95: b.ClearedLatency.Quantile(0.95)},
		Shed:             t.Shed,
		ChallengesShown:  t.ChallengesShown,
		ChallengesSolved: t.ChallengesSolved,
		Collateral:       collateral,
	}
}

func integrity(t *Totals, b *Baseline, routes Routes) *incident.Integrity {
	ig := &incident.Integrity{OriginRequests: t.OriginRequests, OriginErrors: t.OriginErrors, BaselineErrorRate: b.ErrorRate()}
	secs := float64(t.Seconds)
	for j, p := range routes {
		rv := incident.RouteVolume{Route: p}
		if j < len(t.RouteRequests) {
			rv.Requests, rv.ResponseBytes = t.RouteRequests[j], t.RouteBytes[j]
		}
		if j < len(b.RouteRequests) {
			rv.BaselineRequests = uint64(math.Round(b.PerSecond(b.RouteRequests[j]) * secs))
			rv.BaselineResponseBytes = uint64(math.Round(b.PerSecond(b.RouteBytes[j]) * secs))
		}
		ig.Routes = append(ig.Routes, rv)
	}
	return ig
}
