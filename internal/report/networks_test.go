package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/incident"
)

// smallNetworksIncident is the HTTP flood fixture with two visitors' ISPs
// (27 requests each: a member's and a visitor's) listed next to the heavy
// attacking ASNs, and an earlier incident sharing one of them.
func smallNetworksIncident(t *testing.T) *incident.Incident {
	t.Helper()
	in := loadFixture(t, "http-flood")
	in.TopASNs = append(in.TopASNs,
		incident.Count{Key: "AS64496", Count: 27, Name: "MEMBERS-HOME-ISP Ltd"},
		incident.Count{Key: "AS64497", Count: 27, Name: "VISITOR-MOBILE-NET"})
	in.Related = []incident.Related{{ID: "20261101T120000Z-members-77aa", Shared: []string{"203.0.113.0/24", "AS14061", "AS64496"}}}
	return in
}

// TestSmallNetworksNotNamed: a source network (ASN) below the evidence
// threshold never appears, by number or by name, in any format, plain or
// pseudonymised, nor among related incidents' shared sources; it is counted
// in one "other networks" row. Networks above the threshold keep their
// numbers and names everywhere.
func TestSmallNetworksNotNamed(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		named    []string // AS numbers that must appear
		hidden   []string // numbers and names that must not
		otherCnt uint64   // the "other networks" row's count
	}{
		{name: "default 1%", opts: Options{Now: testNow},
			named:  []string{"14061", "12389", "4134", "16509"},
			hidden: []string{"64496", "64497", "MEMBERS-HOME-ISP", "VISITOR-MOBILE-NET", "2856", "BT-UK-AS"}, otherCnt: 8054},
		{name: "pseudonymised", opts: Options{Now: testNow, Pseudonymise: true, Key: testKey},
			named:  []string{"14061", "12389", "4134", "16509"},
			hidden: []string{"64496", "64497", "MEMBERS-HOME-ISP", "VISITOR-MOBILE-NET", "2856", "BT-UK-AS"}, otherCnt: 8054},
		{name: "10%", opts: Options{Now: testNow, MinShare: 0.1},
			named:  []string{"14061", "12389", "4134"},
			hidden: []string{"16509", "AMAZON-02", "64496", "MEMBERS-HOME-ISP"}, otherCnt: 158054},
	}
	for _, tc := range tests {
		in := smallNetworksIncident(t)
		for _, f := range Formats {
			t.Run(tc.name+"/"+string(f), func(t *testing.T) {
				out := string(render(t, in, f, tc.opts))
				for _, s := range tc.hidden {
					if strings.Contains(out, s) {
						t.Errorf("output names %q, a network below the threshold", s)
					}
				}
				for _, s := range tc.named {
					if !strings.Contains(out, s) {
						t.Errorf("output does not name AS%s", s)
					}
				}
				switch f {
				case Markdown, HTML:
					if !strings.Contains(out, "other networks (each below") {
						t.Error("no “other networks” row")
					}
				case STIX, IODEF:
					if !strings.Contains(out, "other networks, each below that threshold") {
						t.Error("the other networks are not accounted for")
					}
				case JSON:
					var doc struct {
						Report   map[string]any    `json:"report"`
						Incident incident.Incident `json:"incident"`
					}
					if err := json.Unmarshal([]byte(out), &doc); err != nil {
						t.Fatal(err)
					}
					asns := doc.Incident.TopASNs
					last := asns[len(asns)-1]
					if last.Key != "other" || last.Count != tc.otherCnt {
						t.Errorf("last top_asns row %+v, want key other with %d", last, tc.otherCnt)
					}
					if asns[0].Name != "DIGITALOCEAN-ASN" {
						t.Errorf("heaviest ASN lost its name: %+v", asns[0])
					}
					if doc.Report["withheld_asns"] == nil {
						t.Error("report metadata lacks withheld_asns")
					}
				}
			})
		}
	}
}
