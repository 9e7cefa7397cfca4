package report

import (
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/incident"
)

// TestImpactNotRecorded: without impact figures (a replayed log, a packet
// capture) every format says the impact was not recorded and none shows a
// share of users served; a cohort with no requests shows no share either.
func TestImpactNotRecorded(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		mutate  func(*incident.Incident)
		want    []string // in the Markdown
		wantNot []string // in the Markdown
		wantXML string   // in the IODEF
	}{
		{
			name: "replayed access log", fixture: "http-flood",
			mutate:  func(in *incident.Incident) { in.Impact = nil },
			want:    []string{"| Impact on users | not recorded |", "recorded access log, which cannot tell signed-in members", "not recorded for this incident"},
			wantNot: []string{"Members (signed in)", "Members kept being served"},
			wantXML: "Impact on legitimate users: not recorded.",
		},
		{
			name: "packet capture", fixture: "syn-flood-spoofed",
			want:    []string{"| Impact on users | not recorded |"},
			wantNot: []string{"Members (signed in)"},
			wantXML: "Impact on legitimate users: not recorded.",
		},
		{
			name: "no verified visitors during the attack", fixture: "http-flood",
			mutate:  func(in *incident.Incident) { in.Impact.Cleared = incident.CohortImpact{} },
			want:    []string{"| Verified visitors (passed a challenge) | 0 | — |"},
			wantNot: []string{"not recorded"},
			wantXML: "Impact on legitimate users: low.",
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
			if x := string(render(t, in, IODEF, opts)); !strings.Contains(x, tc.wantXML) {
				t.Errorf("IODEF lacks %q", tc.wantXML)
			}
		})
	}
}
