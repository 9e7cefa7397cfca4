package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/geo"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

// newTestPipeline wires a pipeline the way Run does (default config, one
// site, per-tick lists of StatsTopN, engine clock on event time, geo
// through a cache that teaches names, ASNs named from names).
func newTestPipeline(t testing.TB, g *geo.DB, names *detect.ASNames, now *time.Time) (*detect.Pipeline, *detect.MemorySink) {
	t.Helper()
	cfg := detect.Config{Sites: []detect.SiteConfig{{Name: DefaultSite}}}
	acc, err := stats.New(stats.Config{Sites: cfg.StatsSites(), TopN: cfg.StatsTopN()})
	if err != nil {
		t.Fatal(err)
	}
	sink := &detect.MemorySink{}
	dopts := detect.Options{Clock: func() time.Time { return *now }}
	if gc := newGeoCache(g, names); gc != nil {
		dopts.Geo = gc.countryASN
		dopts.ASName = names.Name
	}
	eng, err := detect.NewEngine(cfg, len(cfg.Sites), sink, dopts)
	if err != nil {
		t.Fatal(err)
	}
	return detect.NewPipeline(acc, eng), sink
}

// sequentialReplay is the oracle: the single-goroutine replay loop that Run
// used before it was split in two stages. It reads every file record by
// record straight from its reader into the pipeline.
func sequentialReplay(t testing.TB, files []string, g *geo.DB) ([]*incident.Incident, []FileSummary) {
	t.Helper()
	ctx := context.Background()
	var now time.Time
	names := &detect.ASNames{}
	pipe, sink := newTestPipeline(t, g, names, &now)
	gc := newGeoCache(g, names)
	attribute := func(r *stats.Request) {
		if gc != nil {
			info := gc.lookup(r.Addr)
			r.Country, r.ASN = info.Country, info.ASN
		}
	}
	var sums []FileSummary
	for _, name := range files {
		in, err := openInput(name, &Options{})
		if err != nil {
			t.Fatal(err)
		}
		var fs FileSummary
		var req stats.Request
		var pkt stats.Packet
		see := func(at int64) {
			if fs.First.IsZero() || at < fs.First.UnixNano() {
				fs.First = time.Unix(0, at).UTC()
			}
			if at > fs.Last.UnixNano() {
				fs.Last = time.Unix(0, at).UTC()
			}
			now = time.Unix(0, at)
		}
		if lr := in.log; lr != nil {
			for lr.Next(&req) {
				see(req.Time)
				attribute(&req)
				if err := pipe.Request(ctx, &req); err != nil {
					t.Fatal(err)
				}
				fs.Requests++
			}
			fs.Lines, fs.Malformed.Count = lr.Lines(), lr.Malformed().Count
		} else {
			pr := in.pcap
			for pr.Next(&pkt, &req) {
				see(pkt.Time)
				if err := pipe.Packet(ctx, &pkt); err != nil {
					t.Fatal(err)
				}
				if pr.HTTP() {
					attribute(&req)
					if err := pipe.Request(ctx, &req); err != nil {
						t.Fatal(err)
					}
					fs.Requests++
				}
			}
			fs.Packets, fs.Duplicates, fs.Malformed.Count = pr.Packets(), pr.Duplicates(), pr.Malformed().Count
		}
		in.Close()
		sums = append(sums, fs)
	}
	if err := pipe.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	return sink.Incidents(), sums
}

// messyLog writes a combined log of several batches: a flood from
// 8.8.8.0/24 whose paths and user agents vary (so that strings from
// different batches meet in the top-paths lists), blank and comment lines,
// malformed lines, and lines whose user agent is longer than a batch's
// whole arena.
func messyLog(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	t0 := time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)
	line := func(at time.Duration, ip, path, ua string) {
		fmt.Fprintf(&b, "%s - - [%s] \"GET %s HTTP/1.1\" 200 512 \"-\" \"%s\"\n", ip, t0.Add(at).Format("02/Jan/2006:15:04:05 -0700"), path, ua)
	}
	long := strings.Repeat("L", batchArenaBytes+1000)
	for s := range 120 {
		line(time.Duration(s)*time.Second, fmt.Sprintf("81.2.69.%d", s%50+1), "/", "Mozilla/5.0")
		line(time.Duration(s)*time.Second, fmt.Sprintf("81.2.69.%d", s%50+1), fmt.Sprintf("/about/%d", s), long[:s*500])
	}
	for s := 120; s < 135; s++ {
		for i := range 800 {
			switch {
			case i == 7:
				b.WriteString("\n# a comment\n")
			case i == 9:
				b.WriteString("not a log line\n")
			case i%97 == 0:
				line(time.Duration(s)*time.Second, fmt.Sprintf("8.8.8.%d", i%200+1), "/"+long[:i], long[:i*13])
			}
			line(time.Duration(s)*time.Second+time.Duration(i)*time.Millisecond, fmt.Sprintf("8.8.8.%d", i%200+1),
				fmt.Sprintf("/search/%d?q=%d", i%40, i), fmt.Sprintf("bot/%d", i%30))
		}
	}
	line(136*time.Second, "8.8.4.4", "/"+long, long)
	name := filepath.Join(t.TempDir(), "messy.log")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestRunMatchesSequentialReplay checks that the two-stage replay feeds
// detection exactly what the single-goroutine loop fed it: the same
// incidents (compared field by field, timelines, top lists and their keys
// included) and the same counts, across batch boundaries, arena growth,
// several files sharing the batches, and geo attribution.
func TestRunMatchesSequentialReplay(t *testing.T) {
	g, err := geo.Open(fixtureASN)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	log := messyLog(t)
	capture := densePcap(t, 60_000)
	tests := []struct {
		name          string
		files         []string
		geo           *geo.DB
		wantIncidents bool
	}{
		{name: "log with long strings and malformed lines", files: []string{log}, geo: g, wantIncidents: true},
		{name: "capture with HTTP requests", files: []string{capture}, wantIncidents: true},
		{name: "log then capture then log", files: []string{log, capture, log}, geo: g, wantIncidents: true},
		{name: "benign fixture", files: []string{apacheFixture}, geo: g},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq, wantFiles := sequentialReplay(t, tc.files, tc.geo)
			want, err := json.Marshal(seq)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := Run(context.Background(), Options{Files: tc.files, Geo: tc.geo, JSON: true}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			// Detection is compared; the record's series and integrity
			// (record.go) are the replay's own addition.
			detected := make([]incident.Incident, len(sum.Incidents))
			for i, in := range sum.Incidents {
				if in.Site == DefaultSite && (in.Series == nil || in.Integrity == nil) {
					t.Errorf("incident %s has no series or integrity", in.ID)
				}
				detected[i] = *in
				detected[i].Series, detected[i].Integrity = nil, nil
			}
			got, err := json.Marshal(detected)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("incidents differ from the sequential replay:\n got %.2000s\nwant %.2000s", got, want)
			}
			if tc.wantIncidents != (len(sum.Incidents) > 0) {
				t.Errorf("%d incidents, want some: %v", len(sum.Incidents), tc.wantIncidents)
			}
			for i, w := range wantFiles {
				f := sum.Files[i]
				if f.Requests != w.Requests || f.Lines != w.Lines || f.Packets != w.Packets || f.Duplicates != w.Duplicates ||
					f.Malformed.Count != w.Malformed.Count || !f.First.Equal(w.First) || !f.Last.Equal(w.Last) {
					t.Errorf("file %d summary %+v, want %+v", i, f, w)
				}
			}
		})
	}
}

// TestFeederStopsReader replays a file in several batches and stops early
// (the context cancelled before the start, or while pacing): the error is
// the context's, the reader goroutine has finished and every batch is back
// in the free list, so nothing leaks and the next file can reuse them.
func TestFeederStopsReader(t *testing.T) {
	name := messyLog(t)
	tests := []struct {
		name         string
		cancelBefore bool
		cancelAfter  time.Duration // of replayed (event) time, then the pacer cancels
		wantFed      [2]uint64     // least and most requests fed
	}{
		{name: "cancelled before the start", cancelBefore: true},
		{name: "cancelled while pacing the first batch", cancelAfter: 3 * time.Second, wantFed: [2]uint64{4, 10}},
		{name: "cancelled while pacing a later batch", cancelAfter: 125 * time.Second, wantFed: [2]uint64{3 * batchRecords, 4600}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelBefore {
				cancel()
			}
			var now time.Time
			pipe, _ := newTestPipeline(t, nil, nil, &now)
			clk := &fakeClock{now: time.Unix(1e9, 0)}
			pace := pacer{speed: 1, now: clk.Now, sleep: func(ctx context.Context, d time.Duration) error {
				if clk.slept+d >= tc.cancelAfter {
					cancel()
				}
				return clk.Sleep(ctx, d)
			}}
			in, err := openInput(name, &Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			free := newBatchPool()
			f := feeder{ctx: ctx, pipe: pipe, free: free, pace: &pace, bar: &progress{}, eventNow: &now,
				file: 1, files: 1, in: in, sink: &fanout{mem: &detect.MemorySink{}}}
			var fs FileSummary
			err = f.run(&fs)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if fs.Requests < tc.wantFed[0] || fs.Requests > tc.wantFed[1] {
				t.Errorf("%d requests fed, want %d to %d", fs.Requests, tc.wantFed[0], tc.wantFed[1])
			}
			if n := len(free); n != batchesInFlight {
				t.Errorf("%d of %d batches back in the free list", n, batchesInFlight)
			}
		})
	}
}
