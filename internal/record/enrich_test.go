package record

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/incident"
)

// scenario drives a recorder and a Sink on event time: peace from second 0
// to start-1, an attack from start to end, sink calls at the given seconds.
type scenario struct {
	ring       int
	start, end int
	// calls are the seconds of Update calls (Open comes at start+1, Close
	// at end+recovery with End at end).
	calls    []int
	recovery int
	impact   bool
}

// play records the scenario's traffic and returns the incident as the sink
// passed it on at Close, and the recorder.
func (sc scenario) play(t *testing.T) (*incident.Incident, *detect.MemorySink) {
	t.Helper()
	r, site := newSite(t, Options{Seconds: sc.ring}, "/members/export")
	mem := &detect.MemorySink{}
	var clock time.Time
	sink := &Sink{Next: mem, Rec: r, Clock: func() time.Time { return clock }, Impact: sc.impact}
	in := &incident.Incident{ID: "20261129T210000Z-www-0001", Site: "www", Start: t0.Add(time.Duration(sc.start)*time.Second + 250*time.Millisecond)}
	r.NoteCollateral(in.ID, 3)
	r.NoteCollateral(in.ID, 7)
	r.NoteCollateral("other", 100)
	ctx := context.Background()
	calls := map[int]bool{}
	for _, c := range sc.calls {
		calls[c] = true
	}
	for s := 0; s <= sc.end+sc.recovery; s++ {
		attack := s >= sc.start && s <= sc.end
		site.Mark(t0.Add(time.Duration(s)*time.Second), s < sc.start) // recovering is not normal either
		ns := at(s, 100)
		site.Record(ns, &Outcome{Verdict: Passed, Cohort: Member, Origin: true, Status: 200, Latency: 8 * time.Millisecond, Route: -1})
		site.Record(ns, &Outcome{Verdict: Passed, Cohort: Cleared, Origin: true, Status: 200, Latency: 20 * time.Millisecond, Route: -1})
		if s%2 == 0 {
			site.Record(ns, &Outcome{Verdict: Passed, Cohort: Member, Origin: true, Status: 200, Latency: 8 * time.Millisecond, Route: 0, Bytes: 5000})
		}
		if attack {
			for range 100 {
				site.Record(ns, &Outcome{Verdict: Blocked, Route: -1})
			}
			for i := range 10 {
				site.Record(ns, &Outcome{Verdict: Challenged, Route: -1, ChallengeShown: i < 4})
			}
			for i := range 20 {
				site.Record(ns, &Outcome{Verdict: Passed, Origin: true, OriginError: i < 2, Status: 200, Latency: 30 * time.Millisecond, Route: -1})
			}
			site.Record(ns, &Outcome{Verdict: VerdictNone, Route: -1, ChallengeSolved: true})
			if s == sc.start+3 {
				site.Record(ns, &Outcome{Verdict: Shed, Cohort: Member, Route: -1})
			}
		}
		clock = t0.Add(time.Duration(s)*time.Second + 500*time.Millisecond)
		switch {
		case s == sc.start+1:
			in.Detected = clock
			if err := sink.Open(ctx, cloneIn(in)); err != nil {
				t.Fatal(err)
			}
		case s == sc.end+sc.recovery:
			c := cloneIn(in)
			c.End = t0.Add(time.Duration(sc.end)*time.Second + 500*time.Millisecond)
			if err := sink.Close(ctx, c); err != nil {
				t.Fatal(err)
			}
		case calls[s]:
			if err := sink.Update(ctx, cloneIn(in)); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := mem.Incidents()
	if len(got) != 1 {
		t.Fatalf("%d incidents", len(got))
	}
	return got[0], mem
}

func cloneIn(in *incident.Incident) *incident.Incident { c := *in; return &c }

func TestSinkEnrichesIncident(t *testing.T) {
	tests := []struct {
		name       string
		sc         scenario
		wantPoints int
		wantNote   bool
	}{
		{name: "within the ring", sc: scenario{ring: 3600, start: 60, end: 90, calls: []int{70, 80}, impact: true}, wantPoints: 31},
		{name: "longer than the ring", sc: scenario{ring: 50, start: 60, end: 150, calls: []int{66, 72, 78, 84, 90, 96, 102, 108, 114, 120, 126, 132, 138, 144}, impact: true}, wantPoints: 50, wantNote: true},
		{name: "replay: no impact", sc: scenario{ring: 3600, start: 60, end: 90, calls: []int{75}}, wantPoints: 31},
		{name: "updates while recovering are not counted after the end", sc: scenario{ring: 3600, start: 60, end: 90, calls: []int{70, 95, 100}, recovery: 12, impact: true}, wantPoints: 31},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, mem := tc.sc.play(t)
			secs := tc.sc.end - tc.sc.start + 1
			if len(in.Series) != tc.wantPoints {
				t.Fatalf("series has %d points, want %d", len(in.Series), tc.wantPoints)
			}
			var blocked, challenged, passed uint64
			for _, p := range in.Series {
				blocked += p.Blocked
				challenged += p.Challenged
				passed += p.Passed
				if p.OriginLatencyP95 < 20*time.Millisecond || p.OriginLatencyP95 > 30*time.Millisecond {
					t.Errorf("%v: origin p95 %v, want 20–30 ms", p.Time, p.OriginLatencyP95)
				}
			}
			if n := uint64(tc.wantPoints); blocked != 100*n || challenged != 10*n {
				t.Errorf("series: blocked %d challenged %d over %d s", blocked, challenged, n)
			}
			last := in.Series[len(in.Series)-1].Time
			if !last.Equal(t0.Add(time.Duration(tc.sc.end) * time.Second)) {
				t.Errorf("last point %v, want the end's second", last)
			}

			notes := 0
			for _, e := range in.Timeline {
				if e.Kind == "note" && strings.Contains(e.Message, "latest 50s") {
					notes++
				}
			}
			if tc.wantNote != (notes == 1) || notes > 1 {
				t.Errorf("%d truncation notes, want note=%v", notes, tc.wantNote)
			}

			ig := in.Integrity
			if ig == nil || len(ig.Routes) != 1 {
				t.Fatalf("integrity %+v", ig)
			}
			// Impact and integrity cover the whole incident, even beyond
			// the ring: every second has 20 + 3 or 4 origin requests.
			exports := uint64((tc.sc.end-tc.sc.start)/2 + 1)
			if want := uint64(secs*22) + exports; ig.OriginRequests != want || ig.OriginErrors != uint64(2*secs) {
				t.Errorf("origin %d/%d, want %d/%d", ig.OriginErrors, ig.OriginRequests, 2*secs, want)
			}
			if ig.BaselineErrorRate != 0 {
				t.Errorf("baseline error rate %v, want 0", ig.BaselineErrorRate)
			}
			rv := ig.Routes[0]
			baseRate := 0.5 // one export every two seconds in peace time
			if tc.sc.start > tc.sc.ring {
				// Only the ring's seconds before the start are known.
				baseRate = 0
			}
			if rv.Route != "/members/export" || rv.Requests != exports || rv.ResponseBytes != 5000*exports {
				t.Errorf("route %+v, want %d requests", rv, exports)
			}
			wantBase := uint64(math.Round(baseRate * float64(secs)))
			if tc.sc.start <= tc.sc.ring && (rv.BaselineRequests < wantBase-1 || rv.BaselineRequests > wantBase+1) {
				t.Errorf("baseline requests %d, want ≈%d", rv.BaselineRequests, wantBase)
			}

			im := in.Impact
			if !tc.sc.impact {
				if im != nil {
					t.Errorf("impact %+v, want nil", im)
				}
				return
			}
			if im == nil {
				t.Fatal("no impact")
			}
			if im.Members.Requests != uint64(secs)+exports+1 || im.Members.Served != uint64(secs)+exports {
				t.Errorf("members %+v", im.Members)
			}
			if im.Cleared.Requests != uint64(secs) || im.Cleared.Served != uint64(secs) {
				t.Errorf("cleared %+v", im.Cleared)
			}
			if im.Members.LatencyP95 < 7*time.Millisecond || im.Members.LatencyP95 > 10*time.Millisecond ||
				im.Cleared.BaselineLatencyP95 < 15*time.Millisecond || im.Cleared.BaselineLatencyP95 > 20*time.Millisecond {
				t.Errorf("latency: members %v, cleared baseline %v", im.Members.LatencyP95, im.Cleared.BaselineLatencyP95)
			}
			if im.Shed != 1 || im.ChallengesShown != uint64(4*secs) || im.ChallengesSolved != uint64(secs) || im.Collateral != 7 {
				t.Errorf("impact %+v", im)
			}
			// Every copy passed on carries the figures (open and updates too).
			for _, c := range mem.Calls() {
				if !strings.HasSuffix(c, in.ID) {
					t.Errorf("call %s", c)
				}
			}
		})
	}
}

// TestSinkPassesUnknownSites: packet-level incidents (named by an address)
// and a sink without a recorder pass unchanged.
func TestSinkPassesUnknownSites(t *testing.T) {
	r, _ := newSite(t, Options{})
	tests := []struct {
		name string
		rec  *Recorder
		site string
	}{
		{name: "address target", rec: r, site: "203.0.113.20"},
		{name: "no recorder", rec: nil, site: "www"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := &detect.MemorySink{}
			s := &Sink{Next: mem, Rec: tc.rec, Clock: func() time.Time { return t0.Add(time.Minute) }, Impact: true}
			in := &incident.Incident{ID: "x", Site: tc.site, Start: t0}
			if err := s.Open(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			got := mem.Incidents()[0]
			if got.Series != nil || got.Impact != nil || got.Integrity != nil {
				t.Errorf("enriched: %+v", got)
			}
		})
	}
}
