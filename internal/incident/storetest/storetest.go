// Package storetest is the conformance suite every incident.Backend must
// pass: a backend's test is one call to Run with a constructor of empty
// backends.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// T0 is the base time of the suite's incidents.
var T0 = time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)

// Sample returns a complete incident (every field set) with a two-event
// timeline, starting at T0+offset on site.
func Sample(id, site string, offset time.Duration) *incident.Incident {
	start := T0.Add(offset)
	return &incident.Incident{
		ID: id, Site: site,
		Start: start, Detected: start.Add(750 * time.Millisecond),
		Vectors: []string{"http_flood"},
		PeakRPS: 5000.5, PeakPPS: 12000, PeakBPS: 9.6e7,
		Requests: 123456, Packets: 0, Sources: 4321,
		TopCountries:  []incident.Count{{Key: "RU", Count: 60000}, {Key: "BR", Count: 40000}},
		TopASNs:       []incident.Count{{Key: "AS12389", Count: 30000}},
		TopPrefixes:   []incident.Count{{Key: "203.0.113.0/24", Count: 2000}},
		TopPaths:      []incident.Count{{Key: "/", Count: 100000}},
		TopUserAgents: []incident.Count{{Key: "Mozilla/5.0", Count: 90000}},
		Timeline: []incident.Event{
			{Time: start, Kind: "state", From: incident.StateNormal, To: incident.StateSuspected, Message: "http_flood fired", Evidence: map[string]float64{"http_flood": 1.5, "rps": 900}},
			{Time: start.Add(750 * time.Millisecond), Kind: "state", From: incident.StateSuspected, To: incident.StateAttack, Message: "confirmed", Evidence: map[string]float64{"http_flood": 5.2}},
		},
	}
}

// canon returns the JSON form of in with times in UTC, for comparisons
// that ignore time zones and monotonic readings.
func canon(t testing.TB, in *incident.Incident) string {
	t.Helper()
	c := *in
	c.Start, c.Detected, c.End = c.Start.UTC(), c.Detected.UTC(), c.End.UTC()
	c.Timeline = nil
	for _, e := range in.Timeline {
		e.Time = e.Time.UTC()
		c.Timeline = append(c.Timeline, e)
	}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertSame(t testing.TB, got, want *incident.Incident) {
	t.Helper()
	if g, w := canon(t, got), canon(t, want); g != w {
		t.Errorf("incident differs\n got %s\nwant %s", g, w)
	}
}

func mustErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

// Run runs the conformance suite; open returns a new, empty backend (and
// registers its cleanup on t).
func Run(t *testing.T, open func(t *testing.T) incident.Backend) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, b incident.Backend)
	}{
		{"create and get round trip", func(t *testing.T, b incident.Backend) {
			in := Sample("a", "www", 0)
			if err := b.Create(ctx, in); err != nil {
				t.Fatal(err)
			}
			got, err := b.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			assertSame(t, got, in)
			if !got.Open() {
				t.Error("new incident is not open")
			}
		}},
		{"create rejects duplicates and invalid incidents", func(t *testing.T, b incident.Backend) {
			if err := b.Create(ctx, Sample("a", "www", 0)); err != nil {
				t.Fatal(err)
			}
			mustErr(t, b.Create(ctx, Sample("a", "other", time.Hour)), incident.ErrExists, "duplicate id")
			for _, bad := range []*incident.Incident{
				{Site: "www", Start: T0},
				{ID: "x", Start: T0},
				{ID: "x", Site: "www"},
				nil,
			} {
				mustErr(t, b.Create(ctx, bad), incident.ErrInvalid, fmt.Sprintf("create %+v", bad))
			}
			got, err := b.Get(ctx, "a")
			if err != nil || got.Site != "www" {
				t.Errorf("duplicate create changed the stored incident: %+v, %v", got, err)
			}
		}},
		{"unknown ids", func(t *testing.T, b incident.Backend) {
			_, err := b.Get(ctx, "nope")
			mustErr(t, err, incident.ErrNotFound, "get")
			mustErr(t, b.Update(ctx, Sample("nope", "www", 0)), incident.ErrNotFound, "update")
			mustErr(t, b.AppendEvent(ctx, "nope", incident.Event{Time: T0, Kind: "note"}), incident.ErrNotFound, "append")
			closed := Sample("nope", "www", 0)
			closed.End = T0.Add(time.Minute)
			mustErr(t, b.CloseIncident(ctx, closed), incident.ErrNotFound, "close")
			mustErr(t, b.Delete(ctx, "nope"), incident.ErrNotFound, "delete")
			_, err = b.Latest(ctx, "")
			mustErr(t, err, incident.ErrNotFound, "latest on empty store")
		}},
		{"update replaces figures and appends only new events", func(t *testing.T, b incident.Backend) {
			in := Sample("a", "www", 0)
			if err := b.Create(ctx, in); err != nil {
				t.Fatal(err)
			}
			// An operator note arrives between engine updates.
			note := incident.Event{Time: T0.Add(2 * time.Second), Kind: "operator", Message: "alice: under-attack on"}
			if err := b.AppendEvent(ctx, "a", note); err != nil {
				t.Fatal(err)
			}
			// The engine sends its full timeline again, plus a new event,
			// and new figures.
			in.PeakRPS = 9000
			in.Vectors = append(in.Vectors, "cache_busting")
			in.TopPaths = append(in.TopPaths, incident.Count{Key: "/search", Count: 5})
			vec := incident.Event{Time: T0.Add(3 * time.Second), Kind: "vector", Message: "cache_busting"}
			in.Timeline = append(in.Timeline, vec)
			if err := b.Update(ctx, in); err != nil {
				t.Fatal(err)
			}
			if err := b.Update(ctx, in); err != nil { // idempotent
				t.Fatal(err)
			}
			got, err := b.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			want := *in
			want.Timeline = []incident.Event{in.Timeline[0], in.Timeline[1], note, vec}
			assertSame(t, got, &want)
		}},
		{"timeline is in time order", func(t *testing.T, b incident.Backend) {
			in := Sample("a", "www", 0)
			in.Timeline = nil
			if err := b.Create(ctx, in); err != nil {
				t.Fatal(err)
			}
			times := []time.Duration{5, 1, 3, 3, 0}
			for i, d := range times {
				e := incident.Event{Time: T0.Add(d * time.Second), Kind: "note", Message: fmt.Sprint(i)}
				if err := b.AppendEvent(ctx, "a", e); err != nil {
					t.Fatal(err)
				}
			}
			// Appending an identical event again is a no-op.
			if err := b.AppendEvent(ctx, "a", incident.Event{Time: T0.Add(time.Second), Kind: "note", Message: "1"}); err != nil {
				t.Fatal(err)
			}
			got, err := b.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, e := range got.Timeline {
				msgs = append(msgs, e.Message)
			}
			if fmt.Sprint(msgs) != "[4 1 2 3 0]" {
				t.Errorf("timeline order %v, want [4 1 2 3 0] (by time, ties in insertion order)", msgs)
			}
		}},
		{"close", func(t *testing.T, b incident.Backend) {
			in := Sample("a", "www", 0)
			if err := b.Create(ctx, in); err != nil {
				t.Fatal(err)
			}
			mustErr(t, b.CloseIncident(ctx, in), incident.ErrInvalid, "close without end")
			in.End = T0.Add(time.Minute)
			in.Timeline = append(in.Timeline, incident.Event{Time: in.End, Kind: "state", From: incident.StateRecovering, To: incident.StateNormal, Message: "recovered"})
			if err := b.CloseIncident(ctx, in); err != nil {
				t.Fatal(err)
			}
			got, err := b.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if got.Open() {
				t.Error("closed incident is open")
			}
			assertSame(t, got, in)
		}},
		{"list filters and order", func(t *testing.T, b incident.Backend) {
			mk := func(id, site string, off time.Duration, closed bool, vectors ...string) {
				in := Sample(id, site, off)
				in.Vectors = vectors
				if closed {
					in.End = in.Start.Add(time.Minute)
				}
				if err := b.Create(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			mk("w1", "www", 0, true, "http_flood")
			mk("w2", "www", time.Hour, false, "http_flood", "cache_busting")
			mk("m1", "members", 30*time.Minute, true, "credential_stuffing")
			mk("n1", "10.10.10.10", 2*time.Hour, true, "syn_flood")
			cases := []struct {
				name string
				f    incident.Filter
				want string
			}{
				{"all newest first", incident.Filter{}, "[n1 w2 m1 w1]"},
				{"site", incident.Filter{Site: "www"}, "[w2 w1]"},
				{"since inclusive", incident.Filter{Since: T0.Add(30 * time.Minute)}, "[n1 w2 m1]"},
				{"until exclusive", incident.Filter{Until: T0.Add(time.Hour)}, "[m1 w1]"},
				{"open", incident.Filter{Open: true}, "[w2]"},
				{"closed", incident.Filter{Closed: true}, "[n1 m1 w1]"},
				{"vector", incident.Filter{Vector: "http_flood"}, "[w2 w1]"},
				{"vector not a substring match", incident.Filter{Vector: "flood"}, "[]"},
				{"limit", incident.Filter{Limit: 2}, "[n1 w2]"},
				{"combined", incident.Filter{Site: "www", Closed: true, Vector: "http_flood"}, "[w1]"},
			}
			for _, c := range cases {
				got, err := b.List(ctx, c.f)
				if err != nil {
					t.Fatal(err)
				}
				ids := []string{}
				for _, in := range got {
					ids = append(ids, in.ID)
					if in.Timeline != nil {
						t.Errorf("%s: List returned a timeline for %s", c.name, in.ID)
					}
				}
				if fmt.Sprint(ids) != c.want {
					t.Errorf("%s: got %v, want %s", c.name, ids, c.want)
				}
			}
		}},
		{"latest", func(t *testing.T, b incident.Backend) {
			for _, in := range []*incident.Incident{Sample("w1", "www", 0), Sample("w2", "www", time.Hour), Sample("m1", "members", 30*time.Minute)} {
				if err := b.Create(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			for site, want := range map[string]string{"": "w2", "www": "w2", "members": "m1"} {
				got, err := b.Latest(ctx, site)
				if err != nil {
					t.Fatal(err)
				}
				if got.ID != want || len(got.Timeline) != 2 {
					t.Errorf("latest(%q) = %s with %d events, want %s with its timeline", site, got.ID, len(got.Timeline), want)
				}
			}
			_, err := b.Latest(ctx, "nosuchsite")
			mustErr(t, err, incident.ErrNotFound, "latest for unknown site")
		}},
		{"delete", func(t *testing.T, b incident.Backend) {
			if err := b.Create(ctx, Sample("a", "www", 0)); err != nil {
				t.Fatal(err)
			}
			if err := b.Delete(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			_, err := b.Get(ctx, "a")
			mustErr(t, err, incident.ErrNotFound, "get after delete")
			// The id can be reused, with a fresh timeline.
			in := Sample("a", "www", time.Hour)
			in.Timeline = in.Timeline[:1]
			if err := b.Create(ctx, in); err != nil {
				t.Fatal(err)
			}
			got, err := b.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			assertSame(t, got, in)
		}},
		{"prune removes old closed incidents only", func(t *testing.T, b incident.Backend) {
			mk := func(id string, off, dur time.Duration) {
				in := Sample(id, "www", off)
				if dur > 0 {
					in.End = in.Start.Add(dur)
				}
				if err := b.Create(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			mk("old-closed", 0, time.Minute)
			mk("old-open", 0, 0)
			mk("ends-at-cutoff", 0, time.Hour)
			mk("new-closed", 2*time.Hour, time.Minute)
			n, err := b.Prune(ctx, T0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("pruned %d, want 1", n)
			}
			for id, want := range map[string]bool{"old-closed": false, "old-open": true, "ends-at-cutoff": true, "new-closed": true} {
				_, err := b.Get(ctx, id)
				if (err == nil) != want {
					t.Errorf("%s present = %v, want %v", id, err == nil, want)
				}
			}
			// The pruned incident's timeline went with it: recreating the id
			// starts empty.
			fresh := Sample("old-closed", "www", 3*time.Hour)
			fresh.Timeline = nil
			if err := b.Create(ctx, fresh); err != nil {
				t.Fatal(err)
			}
			got, err := b.Get(ctx, "old-closed")
			if err != nil || len(got.Timeline) != 0 {
				t.Errorf("recreated incident has %d events (%v), want 0", len(got.Timeline), err)
			}
		}},
		{"values are copies", func(t *testing.T, b incident.Backend) {
			in := Sample("a", "www", 0)
			want := canon(t, in)
			if err := b.Create(ctx, in); err != nil {
				t.Fatal(err)
			}
			in.TopCountries[0].Key = "XX"
			in.Timeline[0].Evidence["rps"] = -1
			got, err := b.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			got.Vectors[0] = "changed"
			again, err := b.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if c := canon(t, again); c != want {
				t.Errorf("stored incident changed through a caller's value\n got %s\nwant %s", c, want)
			}
		}},
		{"concurrent writers", func(t *testing.T, b incident.Backend) {
			if err := b.Create(ctx, Sample("a", "www", 0)); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			const workers, each = 4, 10
			errs := make(chan error, workers*(each+1))
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						errs <- b.AppendEvent(ctx, "a", incident.Event{Time: T0.Add(time.Duration(i) * time.Second), Kind: "note", Message: fmt.Sprintf("w%d-%d", w, i)})
					}
					errs <- b.Create(ctx, Sample(fmt.Sprintf("c%d", w), "www", time.Duration(w)*time.Minute))
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			got, err := b.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Timeline) != 2+workers*each {
				t.Errorf("timeline has %d events, want %d", len(got.Timeline), 2+workers*each)
			}
			list, err := b.List(ctx, incident.Filter{})
			if err != nil || len(list) != 1+workers {
				t.Errorf("list has %d incidents (%v), want %d", len(list), err, 1+workers)
			}
		}},
		{"sink adapter", func(t *testing.T, b incident.Backend) {
			s := incident.Sink{B: b}
			in := Sample("a", "www", 0)
			if err := s.Open(ctx, in); err != nil {
				t.Fatal(err)
			}
			// A second run of the same replay opens the same id: replaced.
			again := Sample("a", "www", 0)
			again.Timeline = again.Timeline[:1]
			again.PeakRPS = 1
			if err := s.Open(ctx, again); err != nil {
				t.Fatal(err)
			}
			got, err := b.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			assertSame(t, got, again)
			// Update and Close of an incident the store never saw create it.
			late := Sample("late", "www", time.Hour)
			if err := s.Update(ctx, late); err != nil {
				t.Fatal(err)
			}
			closed := Sample("closed", "www", 2*time.Hour)
			closed.End = closed.Start.Add(time.Minute)
			if err := s.Close(ctx, closed); err != nil {
				t.Fatal(err)
			}
			for _, want := range []*incident.Incident{late, closed} {
				got, err := b.Get(ctx, want.ID)
				if err != nil {
					t.Fatal(err)
				}
				assertSame(t, got, want)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, open(t))
		})
	}
}
