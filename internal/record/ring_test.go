package record

import (
	"sync"
	"testing"
	"time"
)

// t0 is the event-time origin of the tests.
var t0 = time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC)

// at returns t0 + s seconds + ms milliseconds in Unix nanoseconds.
func at(s, ms int) int64 {
	return t0.Add(time.Duration(s)*time.Second + time.Duration(ms)*time.Millisecond).UnixNano()
}

func newSite(t *testing.T, opts Options, routes ...string) (*Recorder, *Site) {
	t.Helper()
	r := New(opts)
	sites, err := r.Configure([]SiteConfig{{Name: "www", Routes: routes}})
	if err != nil {
		t.Fatal(err)
	}
	return r, sites[0]
}

func TestSeriesCountsByVerdict(t *testing.T) {
	type rec struct {
		at int64
		o  Outcome
	}
	passed := func(lat time.Duration) Outcome {
		return Outcome{Verdict: Passed, Origin: true, Status: 200, Latency: lat, Route: -1}
	}
	tests := []struct {
		name string
		recs []rec
		want []struct{ req, passed, chal, thr, blk, shed, oerr uint64 }
		p95  []time.Duration
	}{
		{
			name: "one second of each verdict",
			recs: []rec{
				{at(0, 10), passed(4 * time.Millisecond)},
				{at(0, 20), Outcome{Verdict: Challenged, Route: -1, ChallengeShown: true}},
				{at(0, 30), Outcome{Verdict: Throttled, Route: -1}},
				{at(0, 40), Outcome{Verdict: Blocked, Route: -1}},
				{at(0, 50), Outcome{Verdict: Shed, Route: -1}},
				{at(0, 999), Outcome{Verdict: Passed, Origin: true, OriginError: true, Status: 502, Latency: time.Second, Route: -1}},
			},
			want: []struct{ req, passed, chal, thr, blk, shed, oerr uint64 }{{6, 2, 1, 1, 1, 1, 1}},
			// Two origin answers: 4 ms (bucket 3–5 ms) and 1 s (bucket
			// 700 ms–1 s); the p95 rank 1.9 lies 90% into the second.
			p95: []time.Duration{970 * time.Millisecond},
		},
		{
			name: "seconds are split at the boundary, a quiet second is a zero point",
			recs: []rec{
				{at(0, 999), passed(time.Millisecond)},
				{at(1, 0), passed(time.Millisecond)},
				{at(1, 1), Outcome{Verdict: VerdictNone, Route: -1, ChallengeSolved: true}},
				{at(3, 0), Outcome{Verdict: Blocked, Route: -1}},
			},
			want: []struct{ req, passed, chal, thr, blk, shed, oerr uint64 }{{1, 1, 0, 0, 0, 0, 0}, {2, 1, 0, 0, 0, 0, 0}, {}, {1, 0, 0, 0, 1, 0, 0}},
			p95:  []time.Duration{950 * time.Microsecond, 950 * time.Microsecond, 0, 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, s := newSite(t, Options{})
			for _, r := range tc.recs {
				s.Record(r.at, &r.o)
			}
			pts, cut := s.Series(time.Unix(0, at(0, 0)), time.Unix(0, at(len(tc.want)-1, 500)))
			if cut || len(pts) != len(tc.want) {
				t.Fatalf("got %d points (cut %v), want %d", len(pts), cut, len(tc.want))
			}
			for i, w := range tc.want {
				p := pts[i]
				got := struct{ req, passed, chal, thr, blk, shed, oerr uint64 }{p.Requests, p.Passed, p.Challenged, p.Throttled, p.Blocked, p.Shed, p.OriginErrors}
				if got != w {
					t.Errorf("second %d: got %+v, want %+v", i, got, w)
				}
				if !p.Time.Equal(t0.Add(time.Duration(i) * time.Second)) {
					t.Errorf("second %d: time %v", i, p.Time)
				}
				if d := p.OriginLatencyP95 - tc.p95[i]; d < -time.Microsecond || d > time.Microsecond {
					t.Errorf("second %d: p95 %v, want %v", i, p.OriginLatencyP95, tc.p95[i])
				}
			}
		})
	}
}

func TestRingKeepsLatestSeconds(t *testing.T) {
	tests := []struct {
		name      string
		ring      int
		span      int // seconds recorded, one request each
		wantLen   int
		wantCut   bool
		wantFirst int
	}{
		{name: "fits", ring: 10, span: 10, wantLen: 10, wantFirst: 0},
		{name: "longer than the ring", ring: 10, span: 25, wantLen: 10, wantCut: true, wantFirst: 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, s := newSite(t, Options{Seconds: tc.ring})
			for i := range tc.span {
				s.Record(at(i, 0), &Outcome{Verdict: Passed, Route: -1})
			}
			pts, cut := s.Series(t0, t0.Add(time.Duration(tc.span-1)*time.Second))
			if len(pts) != tc.wantLen || cut != tc.wantCut {
				t.Fatalf("got %d points cut=%v, want %d cut=%v", len(pts), cut, tc.wantLen, tc.wantCut)
			}
			if !pts[0].Time.Equal(t0.Add(time.Duration(tc.wantFirst) * time.Second)) {
				t.Errorf("first point %v", pts[0].Time)
			}
			for _, p := range pts {
				if p.Requests != 1 {
					t.Errorf("%v: %d requests, want 1 (a slot reused without reset?)", p.Time, p.Requests)
				}
			}
			// A record older than the ring is dropped, not counted in a
			// newer second's slot.
			s.Record(at(0, 0), &Outcome{Verdict: Blocked, Route: -1})
			if tc.wantCut {
				if tot := s.Totals(t0, t0.Add(time.Duration(tc.span-1)*time.Second)); tot.Blocked != 0 {
					t.Errorf("a stale record was counted: %+v", tot)
				}
			}
		})
	}
}

func TestRouteMatch(t *testing.T) {
	rs := Routes{"/members/export", "/api/donors*", "/files/"}
	tests := []struct {
		name string
		path string
		want int
	}{
		{name: "exact", path: "/members/export", want: 0},
		{name: "below", path: "/members/export/2026.csv", want: 0},
		{name: "sibling is not below", path: "/members/exports", want: -1},
		{name: "star prefix", path: "/api/donors-list", want: 1},
		{name: "star exact", path: "/api/donors", want: 1},
		{name: "trailing slash pattern", path: "/files/a", want: 2},
		{name: "unrelated", path: "/", want: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rs.Match(tc.path); got != tc.want {
				t.Errorf("Match(%q) = %d, want %d", tc.path, got, tc.want)
			}
		})
	}
}

func TestConfigureValidates(t *testing.T) {
	many := make(Routes, MaxRoutes+1)
	for i := range many {
		many[i] = "/r"
	}
	tests := []struct {
		name   string
		routes Routes
		ok     bool
	}{
		{name: "good", routes: Routes{"/a", "/b*"}, ok: true},
		{name: "relative", routes: Routes{"a"}},
		{name: "inner star", routes: Routes{"/a*/b"}},
		{name: "too many", routes: many},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{}).Configure([]SiteConfig{{Name: "s", Routes: tc.routes}})
			if (err == nil) != tc.ok {
				t.Errorf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestConfigureKeepsRing(t *testing.T) {
	r, s := newSite(t, Options{}, "/export")
	s.Record(at(0, 0), &Outcome{Verdict: Passed, Status: 200, Route: 0, Bytes: 10})
	tests := []struct {
		name      string
		routes    Routes
		wantReq   uint64
		wantRoute uint64
	}{
		{name: "same routes keep everything", routes: Routes{"/export"}, wantReq: 1, wantRoute: 1},
		{name: "changed routes start their counts afresh", routes: Routes{"/export", "/donors"}, wantReq: 1, wantRoute: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sites, err := r.Configure([]SiteConfig{{Name: "www", Routes: tc.routes}})
			if err != nil {
				t.Fatal(err)
			}
			if sites[0] != s {
				t.Fatal("the site's ring was replaced")
			}
			tot := s.Totals(t0, t0)
			if tot.Requests != tc.wantReq || tot.RouteRequests[0] != tc.wantRoute {
				t.Errorf("requests %d route %v, want %d and %d", tot.Requests, tot.RouteRequests, tc.wantReq, tc.wantRoute)
			}
		})
	}
}

// TestRecordConcurrent: writers on one second lose nothing (run with -race).
func TestRecordConcurrent(t *testing.T) {
	tests := []struct {
		name             string
		writers, perEach int
	}{
		{name: "8 writers", writers: 8, perEach: 5000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, s := newSite(t, Options{}, "/x")
			var wg sync.WaitGroup
			for w := range tc.writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					o := Outcome{Verdict: Passed, Origin: true, Status: 200, Latency: time.Millisecond, Route: 0, Bytes: 3, Cohort: Cohort(w % 3)}
					for range tc.perEach {
						s.Record(at(5, w), &o)
					}
				}()
			}
			wg.Wait()
			tot := s.Totals(t0.Add(5*time.Second), t0.Add(5*time.Second))
			n := uint64(tc.writers * tc.perEach)
			if tot.Requests != n || tot.Passed != n || tot.OriginLatency.Count() != n || tot.RouteBytes[0] != 3*n {
				t.Errorf("totals %+v, want %d each", tot, n)
			}
		})
	}
}

func TestHistQuantile(t *testing.T) {
	tests := []struct {
		name string
		obs  []time.Duration
		q    float64
		want time.Duration
	}{
		{name: "empty", q: 0.95, want: 0},
		{name: "one sub-millisecond", obs: []time.Duration{100 * time.Microsecond}, q: 0.95, want: 950 * time.Microsecond},
		{name: "overflow", obs: []time.Duration{time.Minute}, q: 0.95, want: 10 * time.Second},
		{name: "p95 of 100 with 5 slow", obs: append(repeat(2*time.Millisecond, 95), repeat(400*time.Millisecond, 5)...), q: 0.95, want: 2 * time.Millisecond},
		{name: "p95 of 100 with 6 slow", obs: append(repeat(2*time.Millisecond, 94), repeat(400*time.Millisecond, 6)...), q: 0.95, want: 300*time.Millisecond + 200*time.Millisecond/6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Hist
			for _, d := range tc.obs {
				h[bucketOf(d)]++
			}
			if got := h.Quantile(tc.q); got-tc.want > time.Microsecond || tc.want-got > time.Microsecond {
				t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestBaselinePeaceTimeOnly(t *testing.T) {
	export := Outcome{Verdict: Passed, Origin: true, Status: 200, Latency: time.Millisecond, Route: 0, Bytes: 1000}
	failed := Outcome{Verdict: Passed, Origin: true, OriginError: true, Status: 500, Latency: time.Millisecond, Route: -1}
	tests := []struct {
		name        string
		run         func(s *Site)
		before      int
		wantSeconds int64
		wantRoute   uint64
		wantErrRate float64
	}{
		{
			name: "quiet seconds count as peace time",
			run: func(s *Site) {
				s.Record(at(0, 0), &export)
				s.Record(at(9, 0), &export)
			},
			before: 10, wantSeconds: 10, wantRoute: 2,
		},
		{
			name: "seconds marked not normal are left out",
			run: func(s *Site) {
				s.Mark(t0, true)
				s.Record(at(0, 0), &export)
				s.Mark(t0.Add(5*time.Second), false)
				s.Record(at(5, 0), &export)
				s.Record(at(6, 0), &failed)
				s.Mark(t0.Add(7*time.Second), true)
				s.Record(at(8, 0), &failed)
				s.Record(at(8, 0), &export)
			},
			// Seconds 0..9 less 5 and 6 (claimed while not normal); second
			// 7 was claimed by the normal mark. Origin: the exports of
			// seconds 0 and 8 and the failure of second 8.
			before: 10, wantSeconds: 8, wantRoute: 2, wantErrRate: 1.0 / 3,
		},
		{
			name: "cleared afterwards (an incident's start is known late)",
			run: func(s *Site) {
				for i := range 10 {
					s.Record(at(i, 0), &export)
				}
				s.ClearPeace(t0.Add(8*time.Second), t0.Add(9*time.Second))
			},
			before: 10, wantSeconds: 8, wantRoute: 8,
		},
		{
			name: "nothing before the first record",
			run: func(s *Site) {
				s.Record(at(5, 0), &export)
			},
			before: 10, wantSeconds: 5, wantRoute: 1,
		},
		{
			name: "window bound",
			run: func(s *Site) {
				for i := range 100 {
					s.Record(at(i, 0), &export)
				}
			},
			before: 100, wantSeconds: 60, wantRoute: 60,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, s := newSite(t, Options{BaselineWindow: time.Minute}, "/export")
			tc.run(s)
			b := s.Baseline(t0.Add(time.Duration(tc.before) * time.Second))
			if b.Seconds != tc.wantSeconds || b.RouteRequests[0] != tc.wantRoute || b.ErrorRate() != tc.wantErrRate {
				t.Errorf("baseline: %d s, route %d, error rate %v; want %d s, %d, %v",
					b.Seconds, b.RouteRequests[0], b.ErrorRate(), tc.wantSeconds, tc.wantRoute, tc.wantErrRate)
			}
			if b.RouteBytes[0] != 1000*tc.wantRoute {
				t.Errorf("route bytes %d", b.RouteBytes[0])
			}
		})
	}
}
