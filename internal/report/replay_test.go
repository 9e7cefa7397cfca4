package report

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/geo"
	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/replay"
)

// sharedData is the project's shared data directory (real captures and the
// open geo data), beside the checkout.
const sharedData = "../../../shared/data"

// TestReplayedCapturesReport replays real attack captures (StopDDoS,
// CIC-DDoS2019) through the detection engine into a temporary store, as
// `portcullis replay --data-dir` does, and renders every incident in every
// format: the attacking countries are named, no address outside the
// attack's top sources (or the target itself) appears, the STIX bundle has
// its required properties and the IODEF document is schema-valid.
func TestReplayedCapturesReport(t *testing.T) {
	captures := []string{
		"stopddos-packet-captures/pkt.TCP.synflood.spoofed.pcap",
		"stopddos-packet-captures/amp.UDP.snmp.src161.pcapng",
		"stopddos-packet-captures/amp.TCP.reflection.SYNACK.pcap",
		"cic-ddos2019-lucid-sample/CIC-DDoS-2019-SynFlood.pcap",
	}
	var files []string
	for _, c := range captures {
		p := filepath.Join(sharedData, c)
		if _, err := os.Stat(p); err != nil {
			t.Skipf("shared capture missing (%v)", err)
		}
		files = append(files, p)
	}
	geoDir := filepath.Join(sharedData, "ip-location-db")
	db, err := geo.Open(filepath.Join(geoDir, "geo-whois-asn-country.mmdb"), filepath.Join(geoDir, "asn-ipv4.csv.gz"))
	if err != nil {
		t.Skipf("shared geo data missing (%v)", err)
	}
	defer db.Close()
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := replay.Run(ctx, replay.Options{Files: files, DataDir: dir, Geo: db, Diagnostics: io.Discard}, io.Discard); err != nil {
		t.Fatal(err)
	}
	store, err := incident.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	list, err := store.List(ctx, incident.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < len(captures) {
		t.Fatalf("%d incidents from %d captures", len(list), len(captures))
	}
	key, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		in, err := store.Get(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		in.Related = Related(in, list)
		// Every address the record holds may appear only if it is one of
		// the attack's top sources or the target.
		var allowed []netip.Prefix
		for _, c := range in.TopPrefixes {
			allowed = append(allowed, netip.MustParsePrefix(c.Key))
		}
		if a, err := netip.ParseAddr(in.Site); err == nil {
			allowed = append(allowed, netip.PrefixFrom(a, a.BitLen()))
		}
		var countries []string
		for _, c := range in.TopCountries {
			if n, ok := countryNames[c.Key]; ok && len(countries) < 3 {
				countries = append(countries, n)
			}
		}
		for _, pseudo := range []bool{false, true} {
			opts := Options{Reporter: testReporter, Now: testNow, Pseudonymise: pseudo, Key: key}
			for _, f := range Formats {
				name := in.ID + "/" + string(f)
				if pseudo {
					name += "/pseudonymised"
				}
				t.Run(name, func(t *testing.T) {
					out := render(t, in, f, opts)
					for _, p := range addressTokens(string(out)) {
						if pseudo {
							t.Errorf("pseudonymised report contains %s", p)
						} else if !allowedIn(p, allowed) {
							t.Errorf("report contains %s, outside the attack's top sources", p)
						}
					}
					if f == Markdown || f == HTML {
						for _, c := range countries {
							if !strings.Contains(string(out), c) {
								t.Errorf("attacking country %q not named", c)
							}
						}
					}
					switch f {
					case STIX:
						for _, e := range checkSTIX(out) {
							t.Error(e)
						}
					case IODEF:
						if msg, err := xmllint(t, out); err != nil {
							t.Errorf("IODEF invalid: %v\n%s", err, msg)
						}
					}
				})
			}
		}
	}
}

// TestReplayedLogNamesNetworks replays a small access log with the
// repository's ASN excerpt (testdata/geo/asn-sample.csv): the flood's
// networks are named with their registered names in the incident and the
// Markdown report, the site is called by its --site name, and the
// visitors' ISP (81.2.69.0/24, AS20712 Andrews & Arnold, 0.2% of the
// traffic during the flood) appears in no format.
func TestReplayedLogNamesNetworks(t *testing.T) {
	db, err := geo.Open("../../testdata/geo/asn-sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	t0 := time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)
	line := func(at time.Duration, ip, ua string) {
		fmt.Fprintf(&b, "%s - - [%s] \"GET / HTTP/1.1\" 200 512 \"-\" \"%s\"\n", ip, t0.Add(at).Format("02/Jan/2006:15:04:05 -0700"), ua)
	}
	floods := []string{"8.8.8.%d", "77.88.8.%d", "95.213.1.%d"}
	for s := range 200 {
		at := time.Duration(s) * time.Second
		line(at, fmt.Sprintf("81.2.69.%d", s%50+1), "Mozilla/5.0")
		line(at, fmt.Sprintf("81.2.69.%d", s%50+1), "Mozilla/5.0")
		if s >= 180 {
			for i := range 1000 {
				line(at, fmt.Sprintf(floods[i%3], i%200+1), "python-requests/2.31")
			}
		}
	}
	log := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(log, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := replay.Run(context.Background(), replay.Options{Files: []string{log}, Geo: db, Site: "www.example.org", Diagnostics: io.Discard}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Incidents) != 1 {
		t.Fatalf("%d incidents, want 1", len(sum.Incidents))
	}
	in := sum.Incidents[0]
	names := map[string]string{}
	for _, c := range in.TopASNs {
		names[c.Key] = c.Name
	}
	named := map[string]string{"AS15169": "Google LLC", "AS13238": "YANDEX LLC", "AS47541": "LLC VK"}
	for k, v := range named {
		if names[k] != v {
			t.Errorf("incident names %s %q, want %q", k, names[k], v)
		}
	}
	if names["AS20712"] != "Andrews & Arnold Ltd" {
		t.Errorf("the record itself should hold the visitors' ISP with its name (the report withholds it): %v", names)
	}
	tests := []struct {
		name string
		opts Options
	}{
		{name: "plain", opts: Options{Now: testNow}},
		{name: "pseudonymised", opts: Options{Now: testNow, Pseudonymise: true, Key: testKey}},
	}
	for _, tc := range tests {
		for _, f := range Formats {
			t.Run(tc.name+"/"+string(f), func(t *testing.T) {
				out := string(render(t, in, f, tc.opts))
				for _, s := range []string{"20712", "Andrews", "81.2.69"} {
					if strings.Contains(out, s) {
						t.Errorf("output names the visitors' network (%q)", s)
					}
				}
				if f == Markdown {
					for k, v := range named {
						if !strings.Contains(out, k+" "+v) {
							t.Errorf("Markdown does not name %s %s", k, v)
						}
					}
					if !strings.Contains(out, "“www.example.org”") || strings.Contains(out, "“default”") {
						t.Error("Markdown does not call the site by its --site name")
					}
				}
			})
		}
	}
}
