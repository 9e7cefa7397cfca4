package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/geo"
)

// writeFlood writes the combined log file name (in a temporary directory):
// three quiet minutes of two visitors' requests a second from 81.2.69.1-50
// (AS20712), then 20 s at 1,000 rps whose i-th request of each second
// comes from flood(i).
func writeFlood(t *testing.T, file string, flood func(i int) string) string {
	t.Helper()
	var b strings.Builder
	t0 := time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)
	line := func(at time.Duration, ip, path, ua string) {
		fmt.Fprintf(&b, "%s - - [%s] \"GET %s HTTP/1.1\" 200 512 \"-\" \"%s\"\n", ip, t0.Add(at).Format("02/Jan/2006:15:04:05 -0700"), path, ua)
	}
	for s := range 180 {
		line(time.Duration(s)*time.Second, fmt.Sprintf("81.2.69.%d", s%50+1), "/", "Mozilla/5.0")
		line(time.Duration(s)*time.Second, fmt.Sprintf("81.2.69.%d", s%50+1), "/about", "Mozilla/5.0")
	}
	for s := 180; s < 200; s++ {
		for i := range 1000 {
			line(time.Duration(s)*time.Second, flood(i), "/", "python-requests/2.31")
		}
	}
	name := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestRunNamesASNs: with the repository's ASN excerpt, the incident's ASNs
// carry their registered names (geo.Info.ASOrg), the CSV's escaped quotes
// included.
func TestRunNamesASNs(t *testing.T) {
	g, err := geo.Open(fixtureASN)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	srcs := []string{"8.8.8.%d", "77.88.8.%d", "95.213.1.%d", "2.26.200.%d"}
	log := writeFlood(t, "access.log", func(i int) string { return fmt.Sprintf(srcs[i%len(srcs)], i%200+1) })
	tests := []struct {
		name string
		geo  *geo.DB
		want map[string]string // ASN → name
	}{
		{name: "named from the ASN table", geo: g, want: map[string]string{
			"AS15169": "Google LLC", "AS13238": "YANDEX LLC", "AS47541": "LLC VK", "AS201907": `LLC "SPUTNIK"`}},
		{name: "no geo data: no ASNs, no names", geo: nil, want: map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			sum, err := Run(context.Background(), Options{Files: []string{log}, Geo: tc.geo}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Incidents) != 1 {
				t.Fatalf("%d incidents, want 1", len(sum.Incidents))
			}
			got := map[string]string{}
			for _, c := range sum.Incidents[0].TopASNs {
				if c.Key != "unknown" {
					got[c.Key] = c.Name
				}
			}
			for asn, name := range tc.want {
				if got[asn] != name {
					t.Errorf("%s named %q, want %q (all: %v)", asn, got[asn], name, got)
				}
			}
			if len(tc.want) == 0 && len(got) > 0 {
				t.Errorf("ASNs %v without geo data", got)
			}
		})
	}
}

// TestRunKeepsNetworks: a flood from 32 /24s of about 3% each lists all of
// them (the record once kept only the ten heaviest, so reports named ten
// of 32 networks above the 1% evidence threshold).
func TestRunKeepsNetworks(t *testing.T) {
	log := writeFlood(t, "access.log", func(i int) string { return fmt.Sprintf("198.18.%d.%d", i%32, i/32+1) })
	tests := []struct {
		name string
		cfg  detect.Config
		want int
	}{
		{name: "defaults list every network", want: 32},
		{name: "TopNetworks=8", cfg: detect.Config{TopNetworks: 8}, want: 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			sum, err := Run(context.Background(), Options{Files: []string{log}, Detect: tc.cfg}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Incidents) != 1 {
				t.Fatalf("%d incidents, want 1", len(sum.Incidents))
			}
			in := sum.Incidents[0]
			n := 0
			for _, c := range in.TopPrefixes {
				if strings.HasPrefix(c.Key, "198.18.") {
					n++
					if share := float64(c.Count) / float64(in.Requests); tc.want == 32 && share < 0.025 {
						t.Errorf("%s: %d requests (%.1f%%), sent about 3%%", c.Key, c.Count, 100*share)
					}
				}
			}
			if n != tc.want {
				t.Errorf("%d flood prefixes listed, want %d: %v", n, tc.want, in.TopPrefixes)
			}
		})
	}
}

func TestRunSite(t *testing.T) {
	log := writeFlood(t, "access.log", func(i int) string { return fmt.Sprintf("8.8.8.%d", i%200+1) })
	tests := []struct {
		name    string
		site    string
		sites   []detect.SiteConfig
		want    string
		wantErr error
	}{
		{name: "default", want: DefaultSite},
		{name: "named", site: "www.example.org", want: "www.example.org"},
		{name: "configured site kept", sites: []detect.SiteConfig{{Name: "members"}}, want: "members"},
		{name: "Site names the configured site", site: "donate", sites: []detect.SiteConfig{{Name: "members"}}, want: "donate"},
		{name: "space", site: "our site", wantErr: ErrSite},
		{name: "control character", site: "www\x1b[2J", wantErr: ErrSite},
		{name: "invalid UTF-8", site: "www\xff", wantErr: ErrSite},
		{name: "too long", site: strings.Repeat("a", 65), wantErr: ErrSite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			opts := Options{Files: []string{log}, Site: tc.site, Detect: detect.Config{Sites: tc.sites}}
			sum, err := Run(context.Background(), opts, &out)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Incidents) != 1 {
				t.Fatalf("%d incidents, want 1", len(sum.Incidents))
			}
			in := sum.Incidents[0]
			if in.Site != tc.want || !strings.Contains(in.ID, "-"+tc.want+"-") {
				t.Errorf("site %q id %q, want site %q", in.Site, in.ID, tc.want)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("table does not name the site %q:\n%s", tc.want, out.String())
			}
			if len(tc.sites) > 0 && tc.sites[0].Name != "members" {
				t.Error("Run changed the caller's Detect.Sites")
			}
		})
	}
}
