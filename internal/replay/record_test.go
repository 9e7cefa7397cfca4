package replay

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// recordLog is a small combined log: two minutes of a party site's normal
// traffic — pages, an occasional 500, the members' export every 5 s — with a
// 15-second flood in the middle whose answers are mixed (200, 429, 403,
// 503, 502). It returns the file and, per second, what the log holds.
func recordLog(t *testing.T) (string, map[int64]*incident.SeriesPoint) {
	t.Helper()
	var b strings.Builder
	want := map[int64]*incident.SeriesPoint{}
	line := func(s int, ip, path string, status, size int) {
		sec := recordT0.Unix() + int64(s)
		fmt.Fprintf(&b, "%s - - [%s] \"GET %s HTTP/1.1\" %d %d \"-\" \"Mozilla/5.0\"\n", ip, recordT0.Add(time.Duration(s)*time.Second).Format("02/Jan/2006:15:04:05 -0700"), path, status, size)
		p := want[sec]
		if p == nil {
			p = &incident.SeriesPoint{Time: time.Unix(sec, 0).UTC()}
			want[sec] = p
		}
		p.Requests++
		switch {
		case status == 429:
			p.Throttled++
		case status == 403:
			p.Blocked++
		default:
			p.Passed++
			if status >= 500 {
				p.OriginErrors++
			}
		}
	}
	for s := range 120 {
		line(s, fmt.Sprintf("81.2.69.%d", s%20+1), "/", 200, 512)
		line(s, fmt.Sprintf("81.2.69.%d", s%20+2), "/news/1", 200, 2048)
		if s%5 == 0 {
			line(s, "81.2.69.5", "/members/export", 200, 10_000)
		}
		if s%30 == 0 {
			line(s, "81.2.69.9", "/broken", 500, 0)
		}
		if s >= 60 && s < 75 {
			for i := range 150 {
				status := [...]int{200, 200, 200, 200, 200, 200, 429, 403, 503, 502}[i%10]
				line(s, fmt.Sprintf("8.8.%d.%d", i/100, i%100+1), fmt.Sprintf("/?q=%d", s*1000+i), status, 300)
			}
		}
	}
	name := filepath.Join(t.TempDir(), "record.log")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name, want
}

// recordT0 is the first second of recordLog.
var recordT0 = time.Date(2026, 6, 17, 10, 0, 0, 0, time.UTC)

// TestReplayRecord: a replayed access log's incident carries the
// per-second series by status and the integrity evidence of the sensitive
// route against the log's pre-incident part; impact stays unrecorded.
func TestReplayRecord(t *testing.T) {
	log, want := recordLog(t)
	tests := []struct {
		name   string
		routes []string
	}{
		{name: "with a sensitive route", routes: []string{"/members/export"}},
		{name: "without sensitive routes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sum, err := Run(context.Background(), Options{Files: []string{log}, SensitiveRoutes: tc.routes, DataDir: dir}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Incidents) != 1 {
				t.Fatalf("%d incidents, want 1", len(sum.Incidents))
			}
			st, err := incident.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			in, err := st.Get(context.Background(), sum.Incidents[0].ID)
			if err != nil {
				t.Fatal(err)
			}

			// The series: one point per second of [Start, End], each as the
			// log has it.
			first, last := in.Start.Unix(), in.End.Unix()
			if int64(len(in.Series)) != last-first+1 {
				t.Fatalf("series of %d points for %v → %v", len(in.Series), in.Start, in.End)
			}
			var errs, origin uint64
			for _, p := range in.Series {
				w := want[p.Time.Unix()]
				if w == nil {
					w = &incident.SeriesPoint{Time: p.Time}
				}
				if p != *w {
					t.Errorf("%v: got %+v, want %+v", p.Time.Format(time.TimeOnly), p, *w)
				}
				errs += w.OriginErrors
				origin += w.Passed
			}
			if in.Series[0].Throttled == 0 && in.Series[len(in.Series)-1].Throttled == 0 {
				t.Errorf("the flood is not at the ends of the series: %v … %v", in.Series[0], in.Series[len(in.Series)-1])
			}

			// Integrity: origin errors from the 5xx; the export against its
			// rate before the incident (every 5 s).
			ig := in.Integrity
			if ig == nil {
				t.Fatal("no integrity evidence")
			}
			if ig.OriginRequests != origin || ig.OriginErrors != errs {
				t.Errorf("origin %d/%d, want %d/%d", ig.OriginErrors, ig.OriginRequests, errs, origin)
			}
			// Before the flood: 2 pages a second, an export every 5 s and a
			// 500 every 30 s.
			if base := 2.0 / (60*2 + 12 + 2); math.Abs(ig.BaselineErrorRate-base) > 0.01 {
				t.Errorf("baseline error rate %.4f, want ≈%.4f", ig.BaselineErrorRate, base)
			}
			if len(ig.Routes) != len(tc.routes) {
				t.Fatalf("routes %+v, want %v", ig.Routes, tc.routes)
			}
			if len(tc.routes) > 0 {
				rv := ig.Routes[0]
				var n uint64
				for s := first; s <= last; s++ {
					if (s-recordT0.Unix())%5 == 0 {
						n++
					}
				}
				secs := float64(last - first + 1)
				if rv.Route != "/members/export" || rv.Requests != n || rv.ResponseBytes != 10_000*n {
					t.Errorf("route %+v, want %d exports", rv, n)
				}
				if wantBase := uint64(math.Round(secs / 5)); rv.BaselineRequests < wantBase-1 || rv.BaselineRequests > wantBase+1 {
					t.Errorf("baseline %d exports, want ≈%d over %v s", rv.BaselineRequests, wantBase, secs)
				}
			}
			if in.Impact != nil {
				t.Errorf("impact %+v: a log cannot tell members", in.Impact)
			}
		})
	}
}
