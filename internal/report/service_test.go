package report

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// TestServiceImpact: section 4 says how the site's own server fared (origin
// error rate against peace time, per-second origin latency), in Markdown
// and in IODEF's SystemImpact; when the effect on people was not recorded
// (a replayed log) the opening says what the origin's errors show instead.
func TestServiceImpact(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		mutate  func(*incident.Incident)
		want    []string // in the Markdown
		wantNot []string // in the Markdown
		wantXML []string // in the IODEF
	}{
		{
			name: "served by the shield", fixture: "http-flood",
			want: []string{"The service:", "failed 3,100 of the 210,000 requests passed to it (1.5%); before the attack it failed 0.2%",
				"420 ms in a typical second of the incident and 1.9 s in the slowest"},
			wantNot: []string{"The site's own server failed 1.5% of the requests that reached it"},
			wantXML: []string{"failed 3,100 of the 210,000 requests passed to it"},
		},
		{
			name: "replayed log with origin failures", fixture: "http-flood",
			mutate: func(in *incident.Incident) {
				in.Impact = nil
				in.Integrity.OriginErrors, in.Integrity.BaselineErrorRate = 124000, 0
				for i := range in.Series {
					in.Series[i].OriginLatencyP95 = 0 // a log has no response times
				}
			},
			want:    []string{"not recorded for this incident. The site's own server failed 59% of the requests that reached it during the attack (0% before it).", "failed 124,000 of the 210,000"},
			wantNot: []string{"typical second"},
			wantXML: []string{"failed 124,000 of the 210,000"},
		},
		{
			name: "replayed log without origin failures", fixture: "http-flood",
			mutate:  func(in *incident.Incident) { in.Impact, in.Integrity.OriginErrors = nil, 0 },
			want:    []string{"The site's own server answered every request that reached it without error."},
			wantXML: []string{"failed 0 of the 210,000"},
		},
		{
			name: "packet capture: no origin figures", fixture: "syn-flood-spoofed",
			wantNot: []string{"The service:", "own server"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := loadFixture(t, tc.fixture)
			if tc.mutate != nil {
				tc.mutate(in)
			}
			opts := Options{Reporter: testReporter, Now: testNow}
			md := string(render(t, in, Markdown, opts))
			checkMarkdown(t, md, tc.want, tc.wantNot)
			x := string(render(t, in, IODEF, opts))
			for _, w := range tc.wantXML {
				if !strings.Contains(x, w) {
					t.Errorf("IODEF lacks %q", w)
				}
			}
			if out, err := xmllint(t, []byte(x)); err != nil {
				t.Errorf("IODEF not valid: %v\n%s", err, out)
			}
		})
	}
}

// TestIndicatorCoverage: the indicators say what share of the traffic the
// named networks carry, and when the record's prefix list was cut while
// still above the threshold (the engine keeps only the heaviest few), say
// that further networks may have reached it.
func TestIndicatorCoverage(t *testing.T) {
	// Thirty-two /24s of 2% each and a thin remainder, as a botnet spread
	// over one provider's block; the record keeps the heaviest ten.
	spread := func(in *incident.Incident) {
		in.TopPrefixes = nil
		for i := range 10 {
			in.TopPrefixes = append(in.TopPrefixes, incident.Count{Key: fmt.Sprintf("203.0.%d.0/24", 100+i), Count: in.Requests / 50})
		}
	}
	tests := []struct {
		name          string
		mutate        func(*incident.Incident)
		want, wantNot []string // in the Markdown
		truncated     bool
	}{
		{name: "list reaches below the threshold", want: []string{"The 4 networks named here sent 45% of the incident's traffic."}, wantNot: []string{"keeps only"}},
		{name: "list cut above the threshold", mutate: spread, truncated: true,
			want: []string{"The 10 networks named here sent 20% of the incident's traffic.", "The record keeps only the 10 heaviest source networks", "the other 80% of the traffic"}},
		{name: "no prefixes recorded", mutate: func(in *incident.Incident) { in.TopPrefixes = nil },
			want: []string{"No source network reached the threshold"}, wantNot: []string{"networks named here", "keeps only"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := loadFixture(t, "http-flood")
			if tc.mutate != nil {
				tc.mutate(in)
			}
			opts := Options{Reporter: testReporter, Now: testNow}
			md := string(render(t, in, Markdown, opts))
			checkMarkdown(t, md, tc.want, tc.wantNot)
			var doc struct {
				Report meta `json:"report"`
			}
			if err := json.Unmarshal(render(t, in, JSON, opts), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Report.PrefixListTruncated != tc.truncated {
				t.Errorf("JSON prefix_list_truncated = %v, want %v", doc.Report.PrefixListTruncated, tc.truncated)
			}
		})
	}
}

// TestTimeTicks: the traffic chart's time axis is marked on whole, round
// multiples of a step (UTC), at most six marks, never outside the span.
func TestTimeTicks(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("15:04:05.000", s)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 5, 10, v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.UTC)
	}
	tests := []struct {
		name   string
		t0, t1 string
		want   []string
	}{
		{name: "two minutes of a replayed log", t0: "19:40:00.000", t1: "19:42:01.000", want: []string{"19:40:00", "19:40:30", "19:41:00", "19:41:30", "19:42:00"}},
		{name: "a 21-second flood starting mid-second", t0: "00:18:01.068", t1: "00:18:22.000", want: []string{"00:18:05", "00:18:10", "00:18:15", "00:18:20"}},
		{name: "under two seconds", t0: "14:50:40.000", t1: "14:50:41.000", want: []string{"14:50:40", "14:50:40.500", "14:50:41"}},
		{name: "an evening", t0: "18:10:00.000", t1: "23:20:00.000", want: []string{"19:00:00", "20:00:00", "21:00:00", "22:00:00", "23:00:00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, tt := range timeTicks(timeAxis{at(tc.t0), at(tc.t1)}) {
				got = append(got, fmtClock(tt))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("ticks = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestChartLegendStates: the traffic chart's legend names only the state
// bands it draws; a recovery that began after the last recorded second is
// neither drawn nor in the legend.
func TestChartLegendStates(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*incident.Incident)
		recovering bool
	}{
		{name: "recovery inside the series", recovering: true},
		{name: "recovery after the series", mutate: func(in *incident.Incident) {
			last := in.Series[len(in.Series)-1].Time
			in.End = last
			for i, e := range in.Timeline {
				if e.Kind == "state" && e.To == incident.StateRecovering {
					in.Timeline[i].Time = last.Add(2 * time.Second)
				}
				if e.Kind == "state" && e.From == incident.StateRecovering {
					in.Timeline[i].Time = last.Add(10 * time.Second)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := loadFixture(t, "http-flood")
			if tc.mutate != nil {
				tc.mutate(in)
			}
			svg := trafficChart(build(in, Options{Now: testNow}))
			band := `fill="` + stateColors[incident.StateRecovering] + `"/>`
			if got := strings.Contains(svg, ">recovering</text>"); got != tc.recovering {
				t.Errorf("legend names recovering = %v, want %v", got, tc.recovering)
			}
			if got := strings.Contains(svg, band); got != tc.recovering {
				t.Errorf("recovering band drawn = %v, want %v", got, tc.recovering)
			}
			if !strings.Contains(svg, ">under attack</text>") {
				t.Error("legend lacks the attack band")
			}
		})
	}
}

// TestChartOriginErrors: the traffic chart draws the origin's failures (a
// part of "passed") as a line with its own legend entry, and none when the
// origin failed nothing; a legend too long for one row wraps inside the
// chart's width.
func TestChartOriginErrors(t *testing.T) {
	legendX := regexp.MustCompile(`<text x="([0-9.]+)" y="[0-9]+">([^<]+)</text>`)
	tests := []struct {
		name       string
		mutate     func(*incident.Incident)
		wantLine   bool
		wantHeight int // of the viewBox
	}{
		{name: "origin failed some requests", wantLine: true, wantHeight: chartH + legendRowHeight},
		{name: "origin failed none", mutate: func(in *incident.Incident) {
			for i := range in.Series {
				in.Series[i].OriginErrors = 0
			}
		}, wantHeight: chartH},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := loadFixture(t, "http-flood")
			if tc.mutate != nil {
				tc.mutate(in)
			}
			svg := trafficChart(build(in, Options{Now: testNow}))
			line := strings.Contains(svg, `<polyline`) && strings.Contains(svg, ">origin errors (part of passed)</text>")
			if line != tc.wantLine {
				t.Errorf("origin error line drawn = %v, want %v", line, tc.wantLine)
			}
			if want := fmt.Sprintf(`viewBox="0 0 %d %d"`, chartW, tc.wantHeight); !strings.Contains(svg, want) {
				t.Errorf("chart lacks %s", want)
			}
			for _, m := range legendX.FindAllStringSubmatch(svg, -1) {
				x, _ := strconv.ParseFloat(m[1], 64)
				if end := x + float64(len(m[2]))*6; end > chartW {
					t.Errorf("legend entry %q ends at x=%.0f, beyond the chart's %d", m[2], end, chartW)
				}
			}
		})
	}
}

// TestChallengesExplained: section 4 accounts for the series' challenged
// requests even when none of them could show a challenge page (a flood
// that does not ask for HTML), instead of leaving the figure unexplained.
func TestChallengesExplained(t *testing.T) {
	noChallenges := func(in *incident.Incident) {
		for i := range in.Series {
			in.Series[i].Challenged = 0
		}
	}
	tests := []struct {
		name          string
		mutate        func(*incident.Incident)
		want, wantNot []string
	}{
		{name: "pages shown", want: []string{"260,000 challenges shown, 14,900 solved"}, wantNot: []string{"pending a browser check"}},
		{name: "challenged, no page shown", mutate: func(in *incident.Incident) { in.Impact.ChallengesShown, in.Impact.ChallengesSolved = 0, 0 },
			want: []string{"536,314 requests were refused pending a browser check, but none asked for a page"}, wantNot: []string{"challenges shown"}},
		{name: "nothing challenged", mutate: func(in *incident.Incident) {
			noChallenges(in)
			in.Impact.ChallengesShown, in.Impact.ChallengesSolved = 0, 0
		}, wantNot: []string{"pending a browser check", "challenges shown"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := loadFixture(t, "http-flood")
			if tc.mutate != nil {
				tc.mutate(in)
			}
			md := string(render(t, in, Markdown, Options{Now: testNow}))
			checkMarkdown(t, md, tc.want, tc.wantNot)
		})
	}
}

// checkMarkdown fails t for each of want that md lacks and each of wantNot
// that it contains.
func checkMarkdown(t *testing.T, md string, want, wantNot []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("Markdown lacks %q", w)
		}
	}
	for _, w := range wantNot {
		if strings.Contains(md, w) {
			t.Errorf("Markdown contains %q", w)
		}
	}
}
