package report

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

func TestRedactorText(t *testing.T) {
	allowed := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:66::/48"), netip.MustParsePrefix("10.10.10.10/32")}
	tests := []struct {
		name, in, want string
		key            []byte
		agent          bool
	}{
		{name: "reportable prefix kept", in: "block prefix 203.0.113.0/24 for 10m0s", want: "block prefix 203.0.113.0/24 for 10m0s"},
		{name: "address inside a reportable prefix kept", in: "client 203.0.113.7 sent 90%", want: "client 203.0.113.7 sent 90%"},
		{name: "visitor withheld", in: "add allow address 81.2.69.160 until removed", want: "add allow address [address withheld] until removed"},
		{name: "sentence end", in: "office is 81.2.69.160.", want: "office is [address withheld]."},
		{name: "address with port", in: "from 203.0.113.9:443 and 81.2.69.160:5060", want: "from 203.0.113.9:443 and [address withheld]"},
		{name: "bracketed IPv6 with port", in: "peer [2001:db8:1::5]:443", want: "peer [address withheld]"},
		{name: "bracketed IPv6", in: "peer [2001:db8:1::5] left", want: "peer [address withheld] left"},
		{name: "IPv6 inside a reportable prefix", in: "heaviest 2001:db8:66::1", want: "heaviest 2001:db8:66::1"},
		{name: "IPv6 prefix outside", in: "block 2001:db8::/32 now", want: "block [address withheld] now"},
		{name: "IPv4-mapped visitor", in: "from ::ffff:81.2.69.160", want: "from [address withheld]"},
		{name: "broader prefix than the evidence withheld", in: "block 203.0.0.0/16", want: "block [address withheld]"},
		{name: "site address kept", in: "target 10.10.10.10", want: "target 10.10.10.10"},
		{name: "addresses inside paths", in: "/lookup/81.2.69.160 /code/81.2.69.160 /u?ip=81.2.69.160&x id81.2.69.160", want: "/lookup/[address withheld] /code/[address withheld] /u?ip=[address withheld]&x id[address withheld]"},
		{name: "times, durations, ASNs and long numbers untouched", in: "at 10:30:21.250 for 1.5s AS64500 build 10.0.19041.1", want: "at 10:30:21.250 for 1.5s AS64500 build 10.0.19041.1"},
		{name: "a quad inside a longer number withheld", in: "x 1.2.3.4.5 and 981.2.69.160 and .81.2.69.160", want: "x [address withheld] and [address withheld] and .[address withheld]"},
		{name: "dotted version in free text withheld", in: "Edg/120.0.0.0", want: "Edg/[address withheld]"},
		{name: "user agent versions kept", in: "Mozilla/5.0 Chrome/120.0.0.0 Version/17.0.0.1", want: "Mozilla/5.0 Chrome/120.0.0.0 Version/17.0.0.1", agent: true},
		{name: "visitor inside a user agent withheld", in: "Mozilla/5.0 (X11; visitor 81.2.69.160)", want: "Mozilla/5.0 (X11; visitor [address withheld])", agent: true},
		{name: "pseudonymised prefix", in: "block 203.0.113.0/24", want: "block net-", key: testKey},
		{name: "pseudonymised visitor still withheld", in: "allow 81.2.69.160", want: "allow [address withheld]", key: testKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &redactor{key: tc.key, allowed: allowed}
			got := r.text(tc.in)
			if tc.agent {
				got = r.agent(tc.in)
			}
			if tc.key != nil {
				if !strings.HasPrefix(got, tc.want) || strings.Contains(got, "203.0.113") || strings.Contains(got, "81.2.69") {
					t.Errorf("text(%q) = %q, want prefix %q and no address", tc.in, got, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Errorf("text(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestPseudonyms(t *testing.T) {
	p := netip.MustParsePrefix("203.0.113.0/24")
	a, b := &redactor{key: testKey}, &redactor{key: []byte("another key, 32 bytes long......")}
	tests := []struct {
		name string
		got  string
		want string
		same bool
	}{
		{name: "stable under one key", got: a.prefix(p), want: a.prefix(p), same: true},
		{name: "keeps the prefix length", got: a.prefix(p)[len(a.prefix(p))-3:], want: "/24", same: true},
		{name: "differs between keys", got: a.prefix(p), want: b.prefix(p), same: false},
		{name: "differs between prefixes", got: a.prefix(p), want: a.prefix(netip.MustParsePrefix("203.0.114.0/24")), same: false},
		{name: "address form", got: a.addr(netip.MustParseAddr("203.0.113.7"))[:5], want: "host-", same: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.got == tc.want) != tc.same {
				t.Errorf("got %q, want %q (same=%v)", tc.got, tc.want, tc.same)
			}
		})
	}
}

// Independent of the redactor's scanner: any dotted quad anywhere (even
// inside a version number) and any colon-hex run that parses as IPv6.
var (
	v4Re = regexp.MustCompile(`\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?`)
	v6Re = regexp.MustCompile(`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:/\d{1,3})?`)
)

// addressTokens returns every address or prefix written in s.
func addressTokens(s string) []netip.Prefix {
	var out []netip.Prefix
	for _, re := range []*regexp.Regexp{v4Re, v6Re} {
		for _, m := range re.FindAllString(s, -1) {
			if p, err := netip.ParsePrefix(m); err == nil {
				out = append(out, p)
			} else if a, err := netip.ParseAddr(strings.SplitN(m, "/", 2)[0]); err == nil {
				out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			}
		}
	}
	return out
}

// allowedIn reports whether p lies inside one of the allowed prefixes.
func allowedIn(p netip.Prefix, allowed []netip.Prefix) bool {
	for _, a := range allowed {
		if a.Bits() <= p.Bits() && a.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// TestNoVisitorInReports renders every golden case in every format and
// checks that no address appears outside the reportable attacking prefixes
// (and the target itself), that no personal data from paths or user agents
// leaks, and that pseudonymised reports carry no address at all.
func TestNoVisitorInReports(t *testing.T) {
	forbidden := []string{"81.2.69", "100.64.7", "jane@example.org", "amount=50", "visitor 81"}
	for _, tc := range goldenCases {
		in := tc.load(t)
		fx := build(in, tc.opts)
		var allowed []netip.Prefix
		for _, a := range fx.Attackers {
			allowed = append(allowed, a.Prefix)
		}
		if site, err := netip.ParseAddr(in.Site); err == nil {
			allowed = append(allowed, netip.PrefixFrom(site, site.BitLen()))
		}
		for _, f := range Formats {
			t.Run(tc.name+"/"+string(f), func(t *testing.T) {
				out := string(render(t, in, f, tc.opts))
				for _, s := range forbidden {
					if strings.Contains(out, s) {
						t.Errorf("output contains %q", s)
					}
				}
				for _, p := range addressTokens(out) {
					if tc.opts.Pseudonymise {
						t.Errorf("pseudonymised output contains address %s", p)
					} else if !allowedIn(p, allowed) {
						t.Errorf("output contains %s, outside the reportable sources %v", p, allowed)
					}
				}
				if !tc.opts.Pseudonymise && len(fx.Attackers) > 0 && !strings.Contains(out, fx.Attackers[0].Prefix.String()) {
					t.Errorf("output does not name the heaviest attacking prefix %s", fx.Attackers[0].Prefix)
				}
			})
		}
	}
}

func TestEvidenceThreshold(t *testing.T) {
	in := loadFixture(t, "http-flood")
	tests := []struct {
		name     string
		minShare float64
		named    []string
		withheld []string
	}{
		{name: "default 1%", named: []string{"203.0.113.0/24", "198.51.100.0/24", "2001:db8:66::/48", "192.0.2.0/24"}, withheld: []string{"100.64.7.0/24", "81.2.69.0/24"}},
		{name: "20%", minShare: 0.2, named: []string{"203.0.113.0/24"}, withheld: []string{"198.51.100.0/24", "192.0.2.0/24", "100.64.7.0/24"}},
		{name: "0.5%", minShare: 0.005, named: []string{"203.0.113.0/24", "100.64.7.0/24"}, withheld: []string{"81.2.69.0/24", "81.2.69.160"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range Formats {
				out := string(render(t, in, f, Options{Now: testNow, MinShare: tc.minShare}))
				for _, s := range tc.named {
					if !strings.Contains(out, s) {
						t.Errorf("%s: %s not named", f, s)
					}
				}
				for _, s := range tc.withheld {
					if strings.Contains(out, s) {
						t.Errorf("%s: %s named below the threshold", f, s)
					}
				}
			}
		})
	}
}

// TestTargetNetworkNotAnAttacker: in the CIC-DDoS2019 capture the victim's
// own /24 carries its replies; it must not become an indicator.
func TestTargetNetworkNotAnAttacker(t *testing.T) {
	in := loadFixture(t, "cic-syn-flood")
	fx := build(in, Options{Now: testNow})
	var got []string
	for _, a := range fx.Attackers {
		got = append(got, a.Prefix.String())
	}
	if len(got) != 1 || got[0] != "172.16.0.0/24" {
		t.Fatalf("attackers = %v, want [172.16.0.0/24] (never the target's 192.168.50.0/24)", got)
	}
	if stix := string(render(t, in, STIX, Options{Now: testNow})); strings.Contains(stix, "192.168.50.0/24") {
		t.Error("STIX names the target's own network")
	}
}

func TestDataAccessFinding(t *testing.T) {
	routes := func(r ...incident.RouteVolume) *incident.Integrity {
		return &incident.Integrity{OriginRequests: 1000, OriginErrors: 10, BaselineErrorRate: 0.01, Routes: r}
	}
	tests := []struct {
		name        string
		integrity   *incident.Integrity
		packet      bool
		wantKnown   bool
		wantConcern bool
		wantText    string
	}{
		{name: "no evidence, web incident", wantText: "neither confirm nor rule out"},
		{name: "no evidence, packet incident", packet: true, wantText: "network packets"},
		{name: "routes within baseline", integrity: routes(incident.RouteVolume{Route: "/members/export", Requests: 3, ResponseBytes: 3 << 20, BaselineRequests: 4, BaselineResponseBytes: 4 << 20}),
			wantKnown: true, wantText: "No sign of data being accessed"},
		{name: "export far above baseline", integrity: routes(incident.RouteVolume{Route: "/members/export", Requests: 40, ResponseBytes: 90 << 20, BaselineRequests: 4, BaselineResponseBytes: 4 << 20}),
			wantKnown: true, wantConcern: true, wantText: "Investigate before stating"},
		{name: "small excess is noise", integrity: routes(incident.RouteVolume{Route: "/api/donors", Requests: 3, ResponseBytes: 30 << 10, BaselineRequests: 1, BaselineResponseBytes: 10 << 10}),
			wantKnown: true, wantText: "No sign of data being accessed"},
		{name: "no sensitive routes configured", integrity: routes(), wantKnown: true, wantText: "No sensitive routes are configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &incident.Incident{ID: "x", Site: "www", Start: testNow.Add(-time.Minute), End: testNow, Requests: 100, Integrity: tc.integrity}
			if tc.packet {
				in.Vectors, in.Requests, in.Packets = []string{"syn_flood"}, 0, 100
			}
			f := build(in, Options{Now: testNow}).Access
			if f.Known != tc.wantKnown || f.Concern != tc.wantConcern || !strings.Contains(f.Summary, tc.wantText) {
				t.Errorf("finding = %+v, want known=%v concern=%v text %q", f, tc.wantKnown, tc.wantConcern, tc.wantText)
			}
			md := string(render(t, in, Markdown, Options{Now: testNow}))
			if !strings.Contains(md, tc.wantText) {
				t.Errorf("Markdown lacks %q", tc.wantText)
			}
			// Unless the sensitive routes answered the question, the next
			// steps send the reader to the origin's logs.
			conclusive := tc.integrity != nil && len(tc.integrity.Routes) > 0
			if got := strings.Contains(md, "Confirm from the origin's own logs"); got == conclusive && !tc.wantConcern {
				t.Errorf("next steps advise checking the origin's logs = %v, want %v", got, !conclusive)
			}
		})
	}
}

func TestMarkupEscaping(t *testing.T) {
	in := loadFixture(t, "http-flood")
	tests := []struct {
		name   string
		f      Format
		want   string
		reject string
	}{
		{name: "markdown", f: Markdown, want: `&lt;script&gt;alert(1)&lt;/script&gt; \| \*bold\*`, reject: "<script>"},
		{name: "html", f: HTML, want: "&lt;script&gt;alert(1)&lt;/script&gt;", reject: "<script>"},
		{name: "iodef", f: IODEF, want: "", reject: "<script>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := string(render(t, in, tc.f, Options{Now: testNow}))
			if tc.want != "" && !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q", tc.want)
			}
			if strings.Contains(out, tc.reject) {
				t.Errorf("output contains raw %q", tc.reject)
			}
		})
	}
}

// FuzzRedactor: whatever the text, after redaction no address remains
// outside the permitted prefixes (found by the independent regexps), and
// with a key none at all.
func FuzzRedactor(f *testing.F) {
	for _, s := range []string{
		"add allow address 81.2.69.160 until removed", "peer [2001:db8:1::5]:443", "from ::ffff:81.2.69.160",
		"block 203.0.113.0/24", "/lookup/81.2.69.160.json", "at 10:30:21.250 AS64500", "ab2001:db8::1", "981.2.69.160",
		"Mozilla/5.0 Chrome/120.0.0.0", "1.2.3.4.5.6.7.8", "fe80::1%eth0", "2001:db8:66::1/64",
	} {
		f.Add(s, false)
	}
	allowed := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:66::/48")}
	f.Fuzz(func(t *testing.T, s string, pseudo bool) {
		r := &redactor{allowed: allowed}
		if pseudo {
			r.key = testKey
		}
		out := r.text(s)
		for _, p := range addressTokens(out) {
			if p.Addr().IsUnspecified() {
				continue // "::", "0.0.0.0": nobody's address
			}
			if pseudo || !allowedIn(p, allowed) {
				// A token the input did not contain was formed by the
				// rewrite: that is a bug too.
				t.Errorf("text(%q) = %q still contains %s", s, out, p)
			}
		}
	})
}
