package report

import (
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// TestHumanDur: below a second the words round to the millisecond as the
// tables' engDur does, so a detection 249.6 ms after the start is "250" in
// the summary and in the timeline alike.
func TestHumanDur(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{name: "rounds up to the table's figure", d: 249*time.Millisecond + 999*time.Microsecond, want: "250 milliseconds"},
		{name: "rounds down", d: 249*time.Millisecond + 400*time.Microsecond, want: "249 milliseconds"},
		{name: "one", d: time.Millisecond, want: "1 millisecond"},
		{name: "just under a second rounds to it", d: time.Second - 100*time.Microsecond, want: "1 second"},
		{name: "seconds", d: 1500 * time.Millisecond, want: "1.5 seconds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := humanDur(tc.d); got != tc.want {
				t.Errorf("humanDur(%v) = %q, want %q", tc.d, got, tc.want)
			}
			if strings.Contains(tc.want, "millisecond") && !strings.HasPrefix(tc.want, strings.TrimSuffix(engDur(tc.d), "ms")+" ") {
				t.Errorf("humanDur(%v) = %q disagrees with engDur %q", tc.d, tc.want, engDur(tc.d))
			}
		})
	}
}

var svgRE = regexp.MustCompile(`(?s)<svg .*?</svg>`)

// TestChartsWellFormed: every inline chart is well-formed XML, also when a
// bar's share is printed as "<0.1%" (a country of a few visitors under a
// flood), so the SVG can be lifted out of the report or parsed by an XML
// tool.
func TestChartsWellFormed(t *testing.T) {
	tests := []struct {
		name   string
		f      Format
		mutate func(*incident.Incident)
	}{
		{name: "markdown", f: Markdown},
		{name: "html", f: HTML},
		{name: "html, a country below 0.1%", f: HTML, mutate: tinyCountry},
		{name: "markdown, a country below 0.1%", f: Markdown, mutate: tinyCountry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := loadFixture(t, "http-flood")
			if tc.mutate != nil {
				tc.mutate(in)
			}
			out := string(render(t, in, tc.f, Options{Now: testNow}))
			svgs := svgRE.FindAllString(out, -1)
			if len(svgs) == 0 {
				t.Fatal("no chart in the report")
			}
			for i, s := range svgs {
				d := xml.NewDecoder(strings.NewReader(s))
				for {
					_, err := d.Token()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("chart %d is not well-formed XML: %v\n%s", i, err, s)
					}
				}
			}
		})
	}
}

// tinyCountry adds a country with a share under 0.1% to the top countries.
func tinyCountry(in *incident.Incident) {
	in.TopCountries = append(in.TopCountries, incident.Count{Key: "NL", Count: 1})
}
