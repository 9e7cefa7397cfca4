package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// TestOperatorDecisionsSurviveRestart: the staff's blocks and under-attack
// mode are in force again after the shield restarts on the same data dir
// (an upgrade or crash mid-attack), with their remaining lifetime; an
// expired one is not brought back, and a removed one stays removed.
func TestOperatorDecisionsSurviveRestart(t *testing.T) {
	dataDir := t.TempDir()
	origin := startDemoOrigin(t)
	admin := freeLoopbackPort(t)
	newCfg := func() *config.Config {
		cfg := baseConfig(t, origin)
		cfg.DataDir = dataDir
		cfg.Admin.Address = admin
		cfg.Mitigation.Mode = "enforce"
		cfg.ApplyDefaults()
		if err := cfg.Validate("test", nil); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	run := func() (*demoShield, func()) {
		ready := make(chan struct{}, 1)
		a, err := New(Options{Load: func() (*config.Config, error) { return newCfg(), nil }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Registry: prometheus.NewRegistry(), Ready: func([]net.Addr, net.Addr) { ready <- struct{}{} }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		select { // the admin listener is bound before Ready
		case <-ready:
		case err := <-done:
			cancel()
			t.Fatalf("Run returned before ready: %v", err)
		case <-time.After(10 * time.Second):
			cancel()
			t.Fatal("shield not ready within 10s")
		}
		s := &demoShield{testShield: &testShield{app: a}, Admin: admin}
		return s, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}

	s, stop := run()
	site := s.app.gen.cfg.Sites[0].Name
	for _, req := range []DecisionRequest{
		{Action: "block", Scope: "prefix", Value: "203.0.113.0/24", TTL: "1h", Reason: "botnet C2 range", Who: "alice"},
		{Action: "block", Scope: "address", Value: "198.51.100.7", Reason: "scanner", Who: "bob"},
		{Action: "block", Scope: "address", Value: "192.0.2.1", TTL: "1h", Reason: "to be removed", Who: "bob"},
	} {
		if code := s.adminJSON(t, http.MethodPost, "/api/v1/decisions", req, nil); code != http.StatusCreated {
			t.Fatalf("POST %v: %d", req, code)
		}
	}
	if code := s.adminJSON(t, http.MethodPost, "/api/v1/sites/"+site+"/under-attack", UnderAttackRequest{On: true, TTL: "30m", Who: "carol"}, nil); code >= 300 {
		t.Fatalf("under-attack on: %d", code)
	}
	removed := ""
	for _, d := range s.decisions(t) {
		if d.Prefix == "192.0.2.1/32" {
			removed = d.ID
		}
	}
	if code := s.adminJSON(t, http.MethodDelete, "/api/v1/decisions/"+removed, nil, nil); code >= 300 {
		t.Fatalf("DELETE %s: %d", removed, code)
	}
	stop()

	s, stop = run()
	defer stop()
	got := map[string]decisionView{}
	for _, d := range s.decisions(t) {
		got[d.Scope+" "+d.Prefix] = d
	}
	for _, want := range []struct{ key, reason string }{
		{"prefix 203.0.113.0/24", "botnet C2 range"},
		{"address 198.51.100.7/32", "scanner"},
	} {
		d, ok := got[want.key]
		if !ok {
			t.Errorf("%s not restored; in force: %v", want.key, got)
			continue
		}
		if d.Reason != want.reason || d.Action != "block" {
			t.Errorf("%s restored as %+v", want.key, d)
		}
	}
	if _, ok := got["address 192.0.2.1/32"]; ok {
		t.Error("a removed decision came back after restart")
	}
	if _, ok := got["site "]; !ok {
		t.Errorf("under-attack mode not restored; in force: %v", got)
	}
	if len(got) != 3 {
		t.Errorf("%d decisions in force after restart, want 3: %v", len(got), got)
	}
}
