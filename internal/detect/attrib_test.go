package detect

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/stats"
)

// spreadFlood replays a 20 s flood at 4,000 rps from `networks` /24s of
// equal weight (198.18.<n>.0/24 in AS 64512+n, country code by n mod 15,
// paths by n mod 30) plus one light network (203.0.113.0/24, AS 64999, one
// request in 1,000) through a Pipeline, and returns the one incident.
func spreadFlood(t *testing.T, networks int, cfg Config, statsTopN int, opts Options) (*incident.Incident, map[string]uint64) {
	t.Helper()
	cfg.Sites = []SiteConfig{{Name: "www"}}
	acc, err := stats.New(stats.Config{Sites: cfg.StatsSites(), TopN: statsTopN})
	if err != nil {
		t.Fatal(err)
	}
	sink := &MemorySink{}
	opts.Clock = func() time.Time { return scenarioT0 }
	eng, err := NewEngine(cfg, 1, sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline(acc, eng, WithLateness(0))
	ctx := context.Background()
	const rps, seconds = 4000, 20
	sent := map[string]uint64{}
	for i := range rps * seconds {
		r := stats.Request{Time: scenarioT0.Add(time.Duration(i) * time.Second / rps).UnixNano(), Method: "GET", Status: 200, Bytes: 500}
		n := i % networks
		if i%1000 == 999 {
			r.Addr, r.ASN, r.Country, r.Path = netip.AddrFrom4([4]byte{203, 0, 113, byte(i / 1000)}), 64999, "NL", "/"
		} else {
			r.Addr = netip.AddrFrom4([4]byte{198, 18, byte(n), byte(i / networks)})
			r.ASN = 64512 + uint32(n)
			r.Country = string([]byte{'A', 'A' + byte(n%15)})
			r.Path = fmt.Sprintf("/p%d", n%30)
		}
		sent[netip.PrefixFrom(r.Addr, 24).Masked().String()]++
		sent[incident.ASNKey(r.ASN)]++
		if err := p.Request(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	ins := sink.Incidents()
	if len(ins) != 1 {
		t.Fatalf("%d incidents, want 1", len(ins))
	}
	return ins[0], sent
}

func TestAttributionKeepsNetworks(t *testing.T) {
	tests := []struct {
		name        string
		networks    int
		topNetworks int
		wantListed  int // prefixes and ASNs listed
		wantExact   bool
	}{
		// 40 networks of 2.5% each: every one is above a 1% evidence
		// threshold, so every one must be listed, with its whole count.
		{name: "default keeps 40 networks at 2.5% each", networks: 40, wantListed: 41, wantExact: true},
		{name: "default keeps 90 networks at 1.1% each", networks: 90, wantListed: 91, wantExact: true},
		{name: "TopNetworks=10 keeps ten", networks: 40, topNetworks: 10, wantListed: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{TopNetworks: tc.topNetworks}
			in, sent := spreadFlood(t, tc.networks, cfg, cfg.StatsTopN(), Options{})
			if len(in.TopPrefixes) != tc.wantListed || len(in.TopASNs) != tc.wantListed {
				t.Fatalf("listed %d prefixes and %d ASNs, want %d each", len(in.TopPrefixes), len(in.TopASNs), tc.wantListed)
			}
			// Countries, paths and user agents stay at TopN.
			if len(in.TopCountries) != 10 || len(in.TopPaths) != 10 {
				t.Errorf("countries %d, paths %d; want TopN = 10 each", len(in.TopCountries), len(in.TopPaths))
			}
			if !tc.wantExact {
				return
			}
			// Each network is counted in full: what it sent, scaled by the
			// share of the flood the incident covers (it opens on the first
			// tick), within 2%.
			cover := float64(in.Requests) / float64(4000*20)
			for _, l := range [][]incident.Count{in.TopPrefixes, in.TopASNs} {
				for _, c := range l {
					want := float64(sent[c.Key]) * cover
					if d := float64(c.Count) - want; d < -0.02*want || d > 0.02*want {
						t.Errorf("%s counted %d, sent ≈%.0f", c.Key, c.Count, want)
					}
				}
			}
		})
	}
}

// TestStatsTopNCoversNetworks: the accountant's per-tick lists must be as
// long as the incident's, or networks ranked below the per-tick cut are
// undercounted (per-tick lists of 20 from 40 equal networks count each in
// about half the ticks).
func TestStatsTopNCoversNetworks(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want int
	}{
		{name: "defaults", cfg: Config{}, want: 100},
		{name: "TopN larger", cfg: Config{TopN: 150, TopNetworks: 20}, want: 150},
		{name: "TopNetworks set", cfg: Config{TopNetworks: 40}, want: 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.StatsTopN(); got != tc.want {
				t.Errorf("StatsTopN = %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("per-tick lists of 20 lose counts", func(t *testing.T) {
		in, _ := spreadFlood(t, 40, Config{}, 20, Options{})
		var sum uint64
		for _, c := range in.TopPrefixes {
			sum += c.Count
		}
		if float64(sum) > 0.9*float64(in.Requests) {
			t.Errorf("prefixes account for %d of %d requests with per-tick lists of 20; expected a visible loss", sum, in.Requests)
		}
	})
}

func TestAttributionNamesASNs(t *testing.T) {
	names := &ASNames{}
	names.Learn(64512, "FIRST NETWORK")
	names.Learn(64513, "SECOND NETWORK")
	tests := []struct {
		name   string
		asName func(uint32) string
		want   map[string]string // ASN key → name
	}{
		{name: "names from ASNames", asName: names.Name, want: map[string]string{"AS64512": "FIRST NETWORK", "AS64513": "SECOND NETWORK", "AS64514": ""}},
		{name: "no ASName leaves names empty", want: map[string]string{"AS64512": "", "AS64513": ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, _ := spreadFlood(t, 3, Config{}, 0, Options{ASName: tc.asName})
			got := map[string]string{}
			for _, c := range in.TopASNs {
				got[c.Key] = c.Name
			}
			for k, v := range tc.want {
				if n, ok := got[k]; !ok || n != v {
					t.Errorf("%s named %q (listed %v), want %q", k, n, ok, v)
				}
			}
		})
	}
}

func TestASNames(t *testing.T) {
	tests := []struct {
		name  string
		learn func(a *ASNames)
		asn   uint32
		want  string
	}{
		{name: "learned", learn: func(a *ASNames) { a.Learn(8359, "MTS PJSC") }, asn: 8359, want: "MTS PJSC"},
		{name: "first name wins", learn: func(a *ASNames) { a.Learn(8359, "MTS PJSC"); a.Learn(8359, "OTHER") }, asn: 8359, want: "MTS PJSC"},
		{name: "empty name not learned", learn: func(a *ASNames) { a.Learn(8359, ""); a.Learn(8359, "MTS PJSC") }, asn: 8359, want: "MTS PJSC"},
		{name: "ASN 0 never named", learn: func(a *ASNames) { a.Learn(0, "UNKNOWN") }, asn: 0, want: ""},
		{name: "unknown ASN", learn: func(a *ASNames) { a.Learn(8359, "MTS PJSC") }, asn: 13335, want: ""},
		{name: "full table drops new names", learn: func(a *ASNames) {
			for i := range uint32(MaxASNames) {
				a.Learn(i+1, "n")
			}
			a.Learn(MaxASNames+1, "LATE")
		}, asn: MaxASNames + 1, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &ASNames{}
			tc.learn(a)
			if got := a.Name(tc.asn); got != tc.want {
				t.Errorf("Name(%d) = %q, want %q", tc.asn, got, tc.want)
			}
			if a.Len() > MaxASNames {
				t.Errorf("Len %d above MaxASNames", a.Len())
			}
		})
	}
	var nilNames *ASNames
	nilNames.Learn(1, "x")
	if nilNames.Name(1) != "" || nilNames.Len() != 0 || strings.Contains(fmt.Sprint(nilNames), "x") {
		t.Error("nil ASNames must answer empty")
	}
}
