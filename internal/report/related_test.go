package report

import (
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/internal/incident"
)

func TestRelated(t *testing.T) {
	mk := func(id string, prefixes []string, asns ...string) *incident.Incident {
		in := &incident.Incident{ID: id}
		for _, p := range prefixes {
			in.TopPrefixes = append(in.TopPrefixes, incident.Count{Key: p, Count: 10})
		}
		for _, a := range asns {
			in.TopASNs = append(in.TopASNs, incident.Count{Key: a, Count: 10})
		}
		return in
	}
	in := mk("now", []string{"203.0.113.0/24", "198.51.100.0/24"}, "AS14061", "AS16509", "unknown")
	tests := []struct {
		name   string
		others []*incident.Incident
		want   string
	}{
		{name: "shared prefix and ASN", others: []*incident.Incident{mk("a", []string{"203.0.113.0/24"}, "AS14061")}, want: "[{a [203.0.113.0/24 AS14061]}]"},
		{name: "shared ASN alone is not a link", others: []*incident.Incident{mk("b", []string{"192.0.2.0/24"}, "AS14061", "AS16509")}, want: "[]"},
		{name: "itself skipped", others: []*incident.Incident{mk("now", []string{"203.0.113.0/24"})}, want: "[]"},
		{name: "several, in order", others: []*incident.Incident{mk("c", []string{"198.51.100.0/24"}), mk("d", []string{"203.0.113.0/24", "198.51.100.0/24"}, "AS64500")},
			want: "[{c [198.51.100.0/24]} {d [203.0.113.0/24 198.51.100.0/24]}]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Related(in, tc.others)
			if s := fmt.Sprint(got); s != tc.want && !(tc.want == "[]" && len(got) == 0) {
				t.Errorf("Related = %v, want %s", s, tc.want)
			}
		})
	}
}
