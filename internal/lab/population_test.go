package lab

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/portcullis/portcullis/internal/geo"
)

// sharedGeoDir is the open geo data shipped with the workspace
// (../shared/data, see SOURCES.md); tests that need it skip without it.
const sharedGeoDir = "../../../shared/data/ip-location-db"

func inAny(a netip.Addr, ps []string) bool {
	for _, s := range ps {
		if netip.MustParsePrefix(s).Contains(a) {
			return true
		}
	}
	return false
}

func TestBuiltinPopulation(t *testing.T) {
	p := BuiltinPopulation()
	rng := func() *rand.Rand { return rand.New(rand.NewPCG(7, 7)) }
	nl, err := p.Draw(rng(), map[string]float64{"NL": 1}, 2000, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := p.Draw(rng(), map[string]float64{"NL": 1}, 2000, nil)
	mix, err := p.Draw(rng(), map[string]float64{"RU": 3, "BR": 1}, 4000, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ru int
	for _, a := range mix {
		if inAny(a, builtinNetworks["RU"]) {
			ru++
		}
	}
	excluded := netip.MustParsePrefix("77.160.0.0/12")
	ex, err := p.Draw(rng(), map[string]float64{"NL": 1}, 500, func(a netip.Addr) bool { return excluded.Contains(a) })
	if err != nil {
		t.Fatal(err)
	}
	_, unknownErr := p.Draw(rng(), map[string]float64{"AQ": 1}, 1, nil)

	tests := []struct {
		name string
		ok   bool
	}{
		{"2000 distinct addresses", len(nl) == 2000 && distinct(nl) == 2000},
		{"all inside the country's networks", !slices.ContainsFunc(nl, func(a netip.Addr) bool { return !inAny(a, builtinNetworks["NL"]) })},
		{"all public", !slices.ContainsFunc(nl, func(a netip.Addr) bool { return !geo.Public(a) })},
		{"same seed, same draw", slices.Equal(nl, again)},
		{"weights respected (RU 3 : BR 1)", ru > 2800 && ru < 3200},
		{"exclude honoured", len(ex) == 500 && !slices.ContainsFunc(ex, excluded.Contains)},
		{"country without networks is an error", unknownErr != nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Fail()
			}
		})
	}
}

func TestOpenPopulation(t *testing.T) {
	empty := t.TempDir()
	p, fallback, err := OpenPopulation([]string{"NL", "RU"}, "", empty)
	if err != nil || !fallback || p.Source != "built-in table" {
		t.Fatalf("without data: %v, fallback %v, source %q; want the built-in table", err, fallback, p.Source)
	}
	if _, _, err := OpenPopulation([]string{"AQ"}, empty); err == nil {
		t.Error("a country missing from the built-in table must be an error")
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, countryMMDB), []byte("not an mmdb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenPopulation([]string{"NL"}, bad); err == nil {
		t.Error("a corrupt mmdb must be an error, not a silent fallback")
	}

	if _, err := os.Stat(filepath.Join(sharedGeoDir, countryMMDB)); err != nil {
		t.Skipf("open geo data absent (%v); run scripts/fetch-geodata.sh", err)
	}
	p, fallback, err = OpenPopulation([]string{"NL", "RU"}, empty, sharedGeoDir)
	if err != nil || fallback {
		t.Fatalf("with data: %v, fallback %v", err, fallback)
	}
	if p.Networks("NL") < 1000 || p.Networks("RU") < 1000 {
		t.Errorf("NL %d, RU %d networks: want the whole country tables", p.Networks("NL"), p.Networks("RU"))
	}
	db, err := geo.Open(filepath.Join(sharedGeoDir, countryMMDB))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	addrs, err := p.Draw(rand.New(rand.NewPCG(1, 1)), map[string]float64{"RU": 1}, 20000, nil)
	if err != nil {
		t.Fatal(err)
	}
	prefixes := map[netip.Prefix]bool{}
	for _, a := range addrs {
		if c := db.Lookup(a).Country; c != "RU" {
			t.Fatalf("%s is in %q, want RU", a, c)
		}
		prefixes[netip.PrefixFrom(a, 24).Masked()] = true
	}
	if len(prefixes) < 15000 {
		t.Errorf("20,000 sources in %d /24s: want them spread like a botnet", len(prefixes))
	}
}

func distinct(as []netip.Addr) int {
	m := map[netip.Addr]bool{}
	for _, a := range as {
		m[a] = true
	}
	return len(m)
}
