package alert

import (
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// TestSummaryNetworks: source networks (ASNs) pass the same evidence
// threshold as attacking prefixes; the rest are one "other" row, never
// named, whatever the channel renders.
func TestSummaryNetworks(t *testing.T) {
	tests := []struct {
		name string
		priv Privacy
		want []string // "key name count" rows
	}{
		{name: "default threshold folds the visitors' ISPs", priv: Privacy{Pseudonymise: true},
			want: []string{"AS64500 EXAMPLE-HOSTING 900000", "AS64501  100000", "other 2 other networks 54"}},
		{name: "share threshold", priv: Privacy{MinPrefixShare: 0.5},
			want: []string{"AS64500 EXAMPLE-HOSTING 900000", "other 3 other networks 100054"}},
		{name: "count threshold alone", priv: Privacy{MinPrefixCount: 20, MinPrefixShare: 1e-6},
			want: []string{"AS64500 EXAMPLE-HOSTING 900000", "AS64501  100000", "AS64510 MEMBER-HOME-ISP 27", "AS64511 VISITOR-MOBILE-NET 27"}},
		{name: "count threshold folds a heavy network too", priv: Privacy{MinPrefixCount: 200_000},
			want: []string{"AS64500 EXAMPLE-HOSTING 900000", "other 3 other networks 100054"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &privacy{cfg: Config{Privacy: tc.priv}.Default().Privacy, key: testKey}
			s, _ := p.summarise(fixture(), t0.Add(time.Minute))
			var got []string
			for _, c := range s.TopASNs {
				got = append(got, fmt.Sprintf("%s %s %d", c.Key, c.Name, c.Count))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("TopASNs %q, want %q", got, tc.want)
			}
			if len(s.TopCountries) != 2 {
				t.Errorf("countries %v: aggregates must stay", s.TopCountries)
			}
		})
	}
	t.Run("single folded network", func(t *testing.T) {
		in := fixture()
		in.TopASNs = in.TopASNs[:3]
		p := &privacy{cfg: Config{}.Default().Privacy, key: testKey}
		s, _ := p.summarise(in, t0)
		last := s.TopASNs[len(s.TopASNs)-1]
		if last != (incident.Count{Key: "other", Count: 27, Name: "1 other network"}) {
			t.Errorf("last row %+v", last)
		}
		if got := counts(s.TopASNs); got != "AS64500 EXAMPLE-HOSTING 900000, AS64501 100000, 1 other network 27" {
			t.Errorf("rendered %q", got)
		}
	})
}
