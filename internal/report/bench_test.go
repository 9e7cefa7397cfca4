package report

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// bigIncident synthesises the record of a two-hour HTTP flood of 10
// million requests: a per-second series of 7,200 points, 20,000 timeline
// entries (decisions on 5,000 prefixes: add, escalate, refresh, expire),
// and 1,000 top prefixes, 100 paths and user agents.
func bigIncident() *incident.Incident {
	start := time.Date(2026, 11, 29, 20, 0, 0, 0, time.UTC)
	const seconds = 7200
	const total = 10_000_000
	in := &incident.Incident{
		ID: "20261129T200000Z-members-big", Site: "members.example.org",
		Start: start, Detected: start.Add(2 * time.Second), End: start.Add(seconds * time.Second),
		Vectors:  []string{"http_flood", "distributed_flood", "cache_busting"},
		Requests: total, Sources: 250_000, PeakRPS: 4000,
		Impact:    &incident.Impact{Members: incident.CohortImpact{Requests: 90_000, Served: 89_500}, Cleared: incident.CohortImpact{Requests: 50_000, Served: 49_000}},
		Integrity: &incident.Integrity{OriginRequests: 3_000_000, OriginErrors: 9_000, Routes: []incident.RouteVolume{{Route: "/members/export", Requests: 10, ResponseBytes: 1 << 20, BaselineRequests: 9, BaselineResponseBytes: 1 << 20}}},
	}
	in.Series = make([]incident.SeriesPoint, seconds)
	for i := range in.Series {
		r := uint64(total / seconds)
		in.Series[i] = incident.SeriesPoint{Time: start.Add(time.Duration(i) * time.Second), Requests: r, Passed: r / 4, Challenged: r / 4, Throttled: r / 8, Blocked: r / 4, Shed: r / 16, OriginErrors: 1, OriginLatencyP95: 300 * time.Millisecond}
	}
	for i := 0; i < 1000; i++ {
		in.TopPrefixes = append(in.TopPrefixes, incident.Count{Key: fmt.Sprintf("%d.%d.%d.0/24", 11+i/65536%200, i/256%256, i%256), Count: uint64(200_000 - i*150)})
	}
	for i := 0; i < 50; i++ {
		in.TopCountries = append(in.TopCountries, incident.Count{Key: []string{"US", "CN", "RU", "BR", "IN", "DE", "FR", "GB", "VN", "ID"}[i%10], Count: uint64(1_000_000 - i*15_000)})
		in.TopASNs = append(in.TopASNs, incident.Count{Key: fmt.Sprintf("AS%d", 64500+i), Name: "NET-" + fmt.Sprint(i), Count: uint64(900_000 - i*15_000)})
	}
	for i := 0; i < 100; i++ {
		in.TopPaths = append(in.TopPaths, incident.Count{Key: fmt.Sprintf("/page/%d?x=%d", i, i), Count: uint64(500_000 - i*4000)})
		in.TopUserAgents = append(in.TopUserAgents, incident.Count{Key: fmt.Sprintf("Mozilla/5.0 bot %d", i), Count: uint64(500_000 - i*4000)})
	}
	for i := 0; i < 5000; i++ {
		p := in.TopPrefixes[i%1000].Key
		t := start.Add(time.Duration(i) * time.Second)
		for j, m := range []string{
			"add rate_limit 20/s prefix %s for 10m0s: heavy source (collateral: 0 known-good users; policy)",
			"escalate rate_limit → block prefix %s for 30m0s: still heavy (collateral: 0 known-good users; policy)",
			"refresh block prefix %s for 30m0s: still heavy (collateral: 0 known-good users; policy)",
			"expire block prefix %s (collateral: 0 known-good users; policy)",
		} {
			in.Timeline = append(in.Timeline, incident.Event{Time: t.Add(time.Duration(j) * 10 * time.Second), Kind: "decision",
				Message: fmt.Sprintf(m, p), Evidence: map[string]float64{"ttl_seconds": 600, "collateral": 0, "level": float64(j)}})
		}
	}
	return in
}

// BenchmarkRender10M renders the report of a 10-million-request incident
// in each format (target: ≤ 5 s per report; see BENCHMARKS.md).
func BenchmarkRender10M(b *testing.B) {
	in := bigIncident()
	for _, f := range Formats {
		b.Run(string(f), func(b *testing.B) {
			opts := Options{Reporter: testReporter, Now: testNow}
			for b.Loop() {
				if err := Render(io.Discard, in, f, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("all-pseudonymised", func(b *testing.B) {
		opts := Options{Reporter: testReporter, Now: testNow, Pseudonymise: true, Key: testKey}
		for b.Loop() {
			for _, f := range Formats {
				if err := Render(io.Discard, in, f, opts); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkReportFromStore is the `portcullis report` path for the same
// incident: read it back from the SQLite store (record, series and 20,000
// timeline rows), then render every format.
func BenchmarkReportFromStore(b *testing.B) {
	store, err := incident.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	in := bigIncident()
	if err := store.Create(b.Context(), in); err != nil {
		b.Fatal(err)
	}
	opts := Options{Reporter: testReporter, Now: testNow}
	for b.Loop() {
		got, err := store.Get(b.Context(), in.ID)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range Formats {
			if err := Render(io.Discard, got, f, opts); err != nil {
				b.Fatal(err)
			}
		}
	}
}
