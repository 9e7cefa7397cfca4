package alert

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/report"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// TestSummary checks what a summary may name: attacking prefixes only above
// the evidence threshold (count and share), pseudonymised on request, and
// never paths or user agents.
func TestSummary(t *testing.T) {
	tests := []struct {
		name     string
		priv     Privacy
		prefixes []incident.Count
		want     []string // AttackingPrefixes keys; "anon" = any pseudonym
	}{
		{"above threshold shown", Privacy{}, []incident.Count{{Key: "203.0.113.0/24", Count: 900_000}}, []string{"203.0.113.0/24"}},
		{"below count hidden", Privacy{MinPrefixCount: 1_000_000}, []incident.Count{{Key: "203.0.113.0/24", Count: 900_000}}, nil},
		{"below share hidden", Privacy{MinPrefixCount: 1, MinPrefixShare: 0.5}, []incident.Count{{Key: "203.0.113.0/24", Count: 900_000}, {Key: "192.0.2.0/24", Count: 50_000}}, []string{"203.0.113.0/24"}},
		{"visitor prefix hidden", Privacy{}, []incident.Count{{Key: "198.51.100.0/24", Count: 40}}, nil},
		{"not a prefix dropped", Privacy{MinPrefixCount: 1}, []incident.Count{{Key: "somewhere", Count: 900_000}, {Key: "2001:db8:1::/48", Count: 900_000}}, []string{"2001:db8:1::/48"}},
		{"pseudonymised", Privacy{Pseudonymise: true}, []incident.Count{{Key: "203.0.113.0/24", Count: 900_000}}, []string{"anon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &privacy{cfg: Config{Privacy: tt.priv}.Default().Privacy, key: testKey}
			in := fixture()
			in.TopPrefixes = tt.prefixes
			s, _ := p.summarise(in, t0.Add(90*time.Second))
			if s.Duration != 90*time.Second {
				t.Errorf("open incident duration %v, want 90s", s.Duration)
			}
			if len(s.AttackingPrefixes) != len(tt.want) {
				t.Fatalf("prefixes %v, want %v", s.AttackingPrefixes, tt.want)
			}
			for i, w := range tt.want {
				got := s.AttackingPrefixes[i].Key
				if w == "anon" {
					if !strings.HasPrefix(got, "net-") || !strings.HasSuffix(got, "/24") || strings.Contains(got, "203.0.113") {
						t.Errorf("pseudonym %q", got)
					}
					continue
				}
				if got != w {
					t.Errorf("prefix %d = %q, want %q", i, got, w)
				}
			}
			out, _ := GenericJSON(&Alert{Kind: KindOpened, At: t0, Incident: s})
			assertNoVisitor(t, "summary", string(out))
		})
	}
}

// TestPseudonymStable checks that pseudonyms are keyed: stable under one
// key, different under another, and distinct for distinct prefixes.
func TestPseudonymStable(t *testing.T) {
	tests := []struct {
		name     string
		a, b     string
		keyB     []byte
		wantSame bool
	}{
		{"same prefix same key", "203.0.113.0/24", "203.0.113.0/24", testKey, true},
		{"unmasked input same pseudonym", "203.0.113.0/24", "203.0.113.77/24", testKey, true},
		{"other prefix", "203.0.113.0/24", "203.0.114.0/24", testKey, false},
		{"other key", "203.0.113.0/24", "203.0.113.0/24", []byte("another key, 16+ bytes"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pa := &privacy{cfg: Privacy{Pseudonymise: true}, key: testKey}
			pb := &privacy{cfg: Privacy{Pseudonymise: true}, key: tt.keyB}
			na, nb := pa.name(netip.MustParsePrefix(tt.a)), pb.name(netip.MustParsePrefix(tt.b))
			if (na == nb) != tt.wantSame {
				t.Errorf("%s → %q, %s → %q: same=%v, want %v", tt.a, na, tt.b, nb, na == nb, tt.wantSame)
			}
		})
	}
}

// TestScrub checks the redaction of addresses in free text.
func TestScrub(t *testing.T) {
	allowed := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:bad::/48")}
	tests := []struct {
		name   string
		pseudo bool
		site   string
		in     string
		want   string
	}{
		{"no address", false, "", "attack confirmed: http_flood, syn_flood", "attack confirmed: http_flood, syn_flood"},
		{"visitor v4", false, "", "allow address 198.51.100.23 until removed", "allow address [address] until removed"},
		{"attacker v4 kept", false, "", "block address 203.0.113.7 for 10m0s", "block address 203.0.113.7 for 10m0s"},
		{"attacking prefix kept", false, "", "block prefix 203.0.113.0/24", "block prefix 203.0.113.0/24"},
		{"wider prefix redacted", false, "", "block prefix 203.0.0.0/16", "block prefix [address]"},
		{"visitor v6", false, "", "allow 2001:db8:beef::7, then", "allow [address], then"},
		{"attacker v6 kept", false, "", "block 2001:db8:bad::1", "block 2001:db8:bad::1"},
		{"v6 loopback", false, "", "from ::1.", "from [address]."},
		{"address with port", false, "", "peer 198.51.100.23:443 reset", "peer [address]:443 reset"},
		{"bracketed v6 with port", false, "", "peer [2001:db8:beef::7]:443", "peer [[address]]:443"},
		{"glued to letters", false, "", "ip198.51.100.23x", "ip[address]x"},
		{"mapped v4", false, "", "from ::ffff:198.51.100.23 ok", "from [address] ok"},
		{"mapped attacker kept", false, "", "from ::ffff:203.0.113.9 ok", "from ::ffff:203.0.113.9 ok"},
		{"zone", false, "", "fe80::1%eth0 link", "[address] link"},
		{"site address kept", false, "192.0.2.10", "SYN flood on 192.0.2.10 from 198.51.100.23", "SYN flood on 192.0.2.10 from [address]"},
		{"pseudonymised attacker", true, "", "block address 203.0.113.7", "block address host-"},
		{"pseudonymised prefix", true, "", "block prefix 203.0.113.0/24", "block prefix net-"},
		{"times and versions untouched", false, "", "for 10m0s at 21:06:36 (v1.2)", "for 10m0s at 21:06:36 (v1.2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &privacy{cfg: Privacy{Pseudonymise: tt.pseudo}, key: testKey}
			got := p.scrub(tt.in, allowed, tt.site)
			if tt.pseudo {
				if !strings.HasPrefix(got, tt.want) || strings.Contains(got, "203.0.113") {
					t.Errorf("scrub(%q) = %q, want prefix %q and no address", tt.in, got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzScrub checks that with nothing allowed no substring of the scrubbed
// text made of address bytes (addrByte) parses as an IP address.
func FuzzScrub(f *testing.F) {
	for _, s := range []string{
		"allow address 198.51.100.23 until removed",
		"peer [2001:db8::7]:443 and 10.0.0.1:80",
		"::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4.5.6.7.8", "12.3.4.56/24", "a1.2.3.4", "1::2::3",
		"attack confirmed: http_flood",
	} {
		f.Add(s)
	}
	p := &privacy{cfg: Privacy{}, key: testKey}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return // alert texts are short; the check is 64 parses per byte
		}
		out := p.scrub(s, nil, "")
		for i := 0; i < len(out); i++ {
			for j := i + 1; j <= min(len(out), i+maxAddrLen) && addrByte(out[j-1]); j++ {
				if a, err := netip.ParseAddr(out[i:j]); err == nil {
					t.Fatalf("scrub(%q) = %q still holds address %v at [%d:%d]", s, out, a, i, j)
				}
			}
		}
	})
}

// TestPseudonymsMatchReport checks that, under one key, an alert and the
// incident report (package report) name an attacking prefix with the same
// pseudonym, and that neither names the visitor's prefix.
func TestPseudonymsMatchReport(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
	}{
		{"IPv4 /24", "203.0.113.0/24"},
		{"IPv6 /48", "2001:db8:bad::/48"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := closed(fixture())
			in.TopPrefixes[0].Key = tt.prefix
			p := &privacy{cfg: Privacy{Pseudonymise: true, MinPrefixCount: 100, MinPrefixShare: report.DefaultMinShare}, key: testKey}
			s, _ := p.summarise(in, in.End)
			if len(s.AttackingPrefixes) != 1 {
				t.Fatalf("alert names %v, want one prefix", s.AttackingPrefixes)
			}
			var b strings.Builder
			if err := report.Render(&b, in, report.JSON, report.Options{Pseudonymise: true, Key: testKey, Now: in.End}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), s.AttackingPrefixes[0].Key) {
				t.Errorf("report does not name %s as %q:\n%s", tt.prefix, s.AttackingPrefixes[0].Key, b.String())
			}
			assertNoVisitor(t, "report", b.String())
		})
	}
}
