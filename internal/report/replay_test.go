package report

import (
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
