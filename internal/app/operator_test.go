package app

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/portcullis/portcullis/internal/config"
)

// TestOperatorGeoScopesNeedGeoData: a country or ASN decision made while
// no geo data is loaded would match nothing and leave the operator believing
// a block is in force; it is refused with the reason, while address and
// prefix decisions still work. With geo data loaded, the same request is
// accepted.
func TestOperatorGeoScopesNeedGeoData(t *testing.T) {
	asnCSV, err := filepath.Abs("../../testdata/geo/asn-sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		geo    bool
		scope  string
		value  string
		status int
	}{
		{name: "country without geo data", scope: "country", value: "RU", status: http.StatusBadRequest},
		{name: "asn without geo data", scope: "asn", value: "AS64500", status: http.StatusBadRequest},
		{name: "prefix without geo data", scope: "prefix", value: "203.0.113.0/24", status: http.StatusCreated},
		{name: "asn with geo data", geo: true, scope: "asn", value: "AS64500", status: http.StatusCreated},
		{name: "country with geo data", geo: true, scope: "country", value: "RU", status: http.StatusCreated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PORTCULLIS_GEODATA", t.TempDir()) // an empty dir: no open data found
			s := startDemoShield(t, "", func(c *config.Config) {
				if tc.geo {
					c.Geo.ASNCSV = []string{asnCSV}
				}
			})
			req := DecisionRequest{Action: "block", Scope: tc.scope, Value: tc.value, TTL: "1m", Reason: "test"}
			if got := s.adminJSON(t, http.MethodPost, "/api/v1/decisions", req, nil); got != tc.status {
				t.Fatalf("POST decision %s %s: status %d, want %d", tc.scope, tc.value, got, tc.status)
			}
			n := len(s.decisions(t))
			if want := map[bool]int{true: 1, false: 0}[tc.status == http.StatusCreated]; n != want {
				t.Fatalf("decisions in force: %d, want %d", n, want)
			}
		})
	}
}
