package record

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// BenchmarkRecord is the request path's cost: one passed request of a
// member on a sensitive route (the most counters a request touches), and a
// blocked one (the flood's common case).
func BenchmarkRecord(b *testing.B) {
	for _, bc := range []struct {
		name string
		o    Outcome
	}{
		{name: "member_sensitive_route", o: Outcome{Verdict: Passed, Cohort: Member, Origin: true, Status: 200, Latency: 12 * time.Millisecond, Route: 0, Bytes: 4096}},
		{name: "blocked", o: Outcome{Verdict: Blocked, Route: -1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := New(Options{})
			sites, _ := r.Configure([]SiteConfig{{Name: "www", Routes: Routes{"/members/export", "/api/donors"}}})
			s := sites[0]
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				o := bc.o
				for pb.Next() {
					s.Record(time.Now().UnixNano(), &o)
				}
			})
		})
	}
}

// BenchmarkSinkUpdateHour is the cost of one Update of an incident that has
// lasted the whole ring (3600 points), with the JSON encoding the store
// does; it reports the record's size.
func BenchmarkSinkUpdateHour(b *testing.B) {
	r := New(Options{})
	sites, _ := r.Configure([]SiteConfig{{Name: "www", Routes: Routes{"/members/export"}}})
	s := sites[0]
	start := t0
	for sec := range 3600 {
		ns := start.Add(time.Duration(sec) * time.Second).UnixNano()
		for range 50 {
			s.Record(ns, &Outcome{Verdict: Passed, Origin: true, Status: 200, Latency: 20 * time.Millisecond, Route: -1})
			s.Record(ns, &Outcome{Verdict: Blocked, Route: -1})
		}
	}
	now := start.Add(3599 * time.Second)
	sink := &Sink{Next: nopSink{}, Rec: r, Clock: func() time.Time { return now }, Impact: true}
	in := &incident.Incident{ID: "x", Site: "www", Start: start}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		c := *in
		if err := sink.Update(context.Background(), &c); err != nil {
			b.Fatal(err)
		}
		js, _ := json.Marshal(&c)
		size = len(js)
	}
	b.ReportMetric(float64(size), "record_bytes")
}

type nopSink struct{}

func (nopSink) Open(context.Context, *incident.Incident) error   { return nil }
func (nopSink) Update(context.Context, *incident.Incident) error { return nil }
func (nopSink) Close(context.Context, *incident.Incident) error  { return nil }

// BenchmarkRecordSerial is BenchmarkRecord on one goroutine (no cache-line
// contention between cores).
func BenchmarkRecordSerial(b *testing.B) {
	r := New(Options{})
	sites, _ := r.Configure([]SiteConfig{{Name: "www", Routes: Routes{"/members/export", "/api/donors"}}})
	s := sites[0]
	o := Outcome{Verdict: Passed, Cohort: Member, Origin: true, Status: 200, Latency: 12 * time.Millisecond, Route: 0, Bytes: 4096}
	now := time.Now().UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		s.Record(now, &o)
	}
}
