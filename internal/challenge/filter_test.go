package challenge

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/netset"
)

func TestCheck(t *testing.T) {
	s, clk := newTestService(t, Options{})
	home := netip.MustParsePrefix("198.51.100.0/24")
	clear := s.clearanceName + "=" + clearanceFor(s, home, browserUA, clk.Now())
	standing := s.standingName + "=" + standingValue(t, s, "M-9")
	crawlers := netset.New(netip.MustParsePrefix("66.249.64.0/19"))
	tests := []struct {
		name      string
		off       bool // ShouldChallenge says no
		fopts     FilterOptions
		method    string
		target    string
		addr      string
		headers   []string
		wantRule  string // "" = pass
		wantShadw bool
	}{
		{name: "not under attack", off: true, target: "/", headers: []string{"Accept", browserAccept}},
		{name: "document", target: "/", headers: []string{"Accept", browserAccept}, wantRule: RuleInterstitial},
		{name: "HEAD document", method: http.MethodHead, target: "/", headers: []string{"Accept", browserAccept}, wantRule: RuleInterstitial},
		{name: "document with clearance", target: "/", headers: []string{"Accept", browserAccept, "Cookie", clear}},
		{name: "clearance from another /24", addr: "198.51.101.7", target: "/", headers: []string{"Accept", browserAccept, "Cookie", clear}, wantRule: RuleInterstitial},
		{name: "document with standing from anywhere", addr: "2001:db8::1", target: "/", headers: []string{"Accept", browserAccept, "Cookie", standing}},
		{name: "endpoints always pass", target: PathPrefix + "verify", headers: []string{"Accept", browserAccept}},
		{name: "verified crawler", addr: "66.249.66.1", fopts: FilterOptions{VerifiedCrawlers: crawlers}, target: "/", headers: []string{"Accept", browserAccept}},
		{name: "crawler UA elsewhere", target: "/", headers: []string{"Accept", browserAccept, "User-Agent", "Googlebot/2.1"}, wantRule: RuleInterstitial},
		{name: "JSON API", target: "/api/v1/news", headers: []string{"Accept", "application/json"}, wantRule: RuleNonDocument},
		{name: "API path even if it accepts HTML", target: "/api/v1/news", headers: []string{"Accept", browserAccept}, wantRule: RuleNonDocument},
		{name: "configured API path", fopts: FilterOptions{APIPaths: []string{"/graphql"}}, target: "/graphql", headers: []string{"Accept", browserAccept}, wantRule: RuleNonDocument},
		{name: "style sheet", target: "/static/site.css", headers: []string{"Accept", "text/css,*/*;q=0.1"}, wantRule: RuleNonDocument},
		{name: "image by fetch metadata", target: "/img", headers: []string{"Accept", browserAccept, "Sec-Fetch-Dest", "image"}, wantRule: RuleNonDocument},
		{name: "XHR by fetch metadata", target: "/page", headers: []string{"Accept", browserAccept, "Sec-Fetch-Dest", "empty"}, wantRule: RuleNonDocument},
		{name: "navigation by fetch metadata", target: "/page", headers: []string{"Accept", browserAccept, "Sec-Fetch-Dest", "document"}, wantRule: RuleInterstitial},
		{name: "curl", target: "/", headers: []string{"Accept", "*/*", "User-Agent", "curl/8.5.0"}, wantRule: RuleNonDocument},
		{name: "feed passes", target: "/feed.xml", headers: []string{"Accept", "application/rss+xml, text/html;q=0.5"}},
		{name: "feed challenged when configured", fopts: FilterOptions{ChallengeFeeds: true}, target: "/feed/", headers: []string{"Accept", "application/rss+xml, text/html;q=0.5"}, wantRule: RuleNonDocument},
		{name: "feed type on an unknown path: machine answer", target: "/news", headers: []string{"Accept", "application/atom+xml"}, wantRule: RuleNonDocument},
		{name: "query feed only at the root", target: "/search?q=x&format=atom", headers: []string{"Accept", browserAccept}, wantRule: RuleInterstitial},
		{name: "health check passes", target: "/healthz", headers: []string{"Accept", "*/*"}},
		{name: "health check challenged when configured", fopts: FilterOptions{ChallengeHealth: true}, target: "/healthz", headers: []string{"Accept", "*/*"}, wantRule: RuleNonDocument},
		{name: "POST without clearance", method: http.MethodPost, target: "/donate", headers: []string{"Accept", browserAccept}, wantRule: RuleForm},
		{name: "POST with clearance", method: http.MethodPost, target: "/donate", headers: []string{"Accept", browserAccept, "Cookie", clear}},
		{name: "POST with standing", method: http.MethodPost, target: "/donate", headers: []string{"Accept", browserAccept, "Cookie", standing}},
		{name: "DELETE without clearance", method: http.MethodDelete, target: "/x", wantRule: RuleForm},
		{name: "OPTIONS preflight", method: http.MethodOptions, target: "/api/v1/news", wantRule: RuleNonDocument},
		{name: "shadow", fopts: FilterOptions{Shadow: true}, target: "/", headers: []string{"Accept", browserAccept}, wantRule: RuleInterstitial, wantShadw: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fo := tt.fopts
			fo.ShouldChallenge = func(*filter.Request) bool { return !tt.off }
			f := NewFilter(s, fo)
			if tt.method == "" {
				tt.method = http.MethodGet
			}
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Header.Set("User-Agent", browserUA)
			for i := 0; i+1 < len(tt.headers); i += 2 {
				r.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			addr := netip.MustParseAddr("198.51.100.7")
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			v := f.Check(&filter.Request{Addr: addr, Prefix: aggregate(addr), Method: tt.method, Path: r.URL.Path, HTTP: r})
			if tt.wantRule == "" {
				if v.Action != filter.Pass {
					t.Fatalf("verdict %v, want pass", v.LogValue())
				}
				return
			}
			if v.Action != filter.Challenge || v.Rule != tt.wantRule || v.Shadow != tt.wantShadw {
				t.Fatalf("verdict %v, want challenge rule %q shadow %v", v.LogValue(), tt.wantRule, tt.wantShadw)
			}
			if v.StatusCode() < 400 || v.RetryAfter <= 0 {
				t.Errorf("status %d Retry-After %v", v.StatusCode(), v.RetryAfter)
			}
		})
	}
}

// TestCheckAllocations: passing on a cookie and deciding a challenge
// allocate nothing.
func TestCheckAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	s, clk := newTestService(t, Options{})
	p := netip.MustParsePrefix("198.51.100.0/24")
	f := NewFilter(s, FilterOptions{ShouldChallenge: func(*filter.Request) bool { return true }})
	tests := []struct {
		name   string
		cookie string
		accept string
	}{
		{name: "clearance", cookie: s.clearanceName + "=" + clearanceFor(s, p, browserUA, clk.Now()), accept: browserAccept},
		{name: "standing", cookie: s.standingName + "=" + standingValue(t, s, "M-1"), accept: browserAccept},
		{name: "interstitial", accept: browserAccept},
		{name: "json", accept: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/page", nil)
			r.Header.Set("User-Agent", browserUA)
			r.Header.Set("Accept", tt.accept)
			if tt.cookie != "" {
				r.Header.Set("Cookie", "a=b; "+tt.cookie+"; c=d")
			}
			fr := &filter.Request{Addr: p.Addr(), Prefix: p, Method: r.Method, Path: r.URL.Path, HTTP: r}
			if n := testing.AllocsPerRun(100, func() { f.Check(fr) }); n != 0 {
				t.Errorf("%v allocations per Check", n)
			}
		})
	}
}

func TestIsFeed(t *testing.T) {
	tests := []struct {
		path, query string
		want        bool
	}{
		{"/feed.xml", "", true},
		{"/feed/", "", true},
		{"/blog/feed", "", true},
		{"/index.atom", "", true},
		{"/news.RSS", "", true},
		{"/sitemap.xml", "", true},
		{"/", "format=atom", true},
		{"/", "feed=rss2", true},
		{"/", "FORMAT=RSS", true},
		{"/", "q=1", false},
		{"/search", "format=atom", false},
		{"/feedback", "", false},
		{"/about", "", false},
		{"/atomic/page", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path+"?"+tt.query, func(t *testing.T) {
			if got := IsFeed(tt.path, tt.query); got != tt.want {
				t.Errorf("IsFeed = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzSafeTarget: whatever comes in, the redirect target is a path on this
// site — never another origin, never an endpoint.
func FuzzSafeTarget(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil", `/\evil`, "https://evil/", "/\t/evil", "/%2F/evil", "/.portcullis/verify", "", "javascript:alert(1)", "/a#frag", "/@evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeTarget(s)
		if got != "/" && got != s {
			t.Fatalf("%q became %q", s, got)
		}
		if got[0] != '/' || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) {
			t.Fatalf("%q: unsafe %q", s, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("%q: %q parses as another origin (%v)", s, got, err)
		}
		// What a browser resolves it to stays on the site.
		base, _ := url.Parse("https://site.example/x/y")
		if r := base.ResolveReference(u); r.Host != "site.example" || strings.HasPrefix(r.Path, PathPrefix) {
			t.Fatalf("%q resolves to %v", got, r)
		}
	})
}
