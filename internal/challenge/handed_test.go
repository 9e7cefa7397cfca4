package challenge

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/netset"
)

// TestF23ParallelChallenges: a page load fires a document request, API
// calls and a style sheet at once with no cookies. Only the document gets
// the HTML challenge; every outstanding challenge's answer is accepted; no
// response overwrites a valid clearance; all resources are reachable after
// at most 2 pass submissions.
func TestF23ParallelChallenges(t *testing.T) {
	sh := newShield(t, shieldConfig{})
	c := noFollow(sh.client("127.0.0.2", false))

	type fire struct {
		name, path, accept string
		wantHTML           bool
	}
	fires := []fire{
		{name: "document", path: "/", accept: browserAccept, wantHTML: true},
		{name: "api 1", path: "/api/v1/news", accept: "application/json"},
		{name: "api 2", path: "/api/v1/events", accept: "application/json"},
		{name: "api 3", path: "/api/v1/news?page=2", accept: "application/json"},
		{name: "api 4", path: "/api/v1/events?x=1", accept: "application/json"},
		{name: "css", path: "/static/site.css", accept: "text/css,*/*;q=0.1"},
	}
	results := make([]resp, len(fires))
	var wg sync.WaitGroup
	for i, f := range fires {
		wg.Go(func() { results[i] = c.do(t, http.MethodGet, f.path, "", "Accept", f.accept) })
	}
	wg.Wait()
	var first page
	for i, f := range fires {
		r := results[i]
		t.Run(f.name, func(t *testing.T) {
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", r.status)
			}
			if r.header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			isHTML := strings.HasPrefix(r.header.Get("Content-Type"), "text/html")
			if isHTML != f.wantHTML {
				t.Errorf("Content-Type %q, want HTML %v", r.header.Get("Content-Type"), f.wantHTML)
			}
			if contains(setCookies(r.header), sh.svc.clearanceName) {
				t.Error("challenge response sets the clearance cookie")
			}
		})
		if f.wantHTML {
			first = parsePage(t, r.body)
		}
	}

	// A second tab is challenged after the first challenge was issued.
	second := parsePage(t, c.do(t, http.MethodGet, "/about", "", "Accept", browserAccept).body)

	// Solve the first challenge after the second was issued: accepted.
	r1 := c.submit(t, first, solve(first.seed, first.bits))
	if r1.status != http.StatusSeeOther || r1.header.Get("Location") != "/" {
		t.Fatalf("first submission: %d Location %q, want 303 /", r1.status, r1.header.Get("Location"))
	}
	if !contains(setCookies(r1.header), sh.svc.clearanceName) {
		t.Fatal("first submission did not set clearance")
	}
	// The second tab's answer is accepted too, and does not overwrite.
	r2 := c.submit(t, second, solve(second.seed, second.bits))
	if r2.status != http.StatusSeeOther || r2.header.Get("Location") != "/about" {
		t.Fatalf("second submission: %d Location %q, want 303 /about", r2.status, r2.header.Get("Location"))
	}
	if len(r2.header.Values("Set-Cookie")) != 0 {
		t.Errorf("second submission sets cookies %v over a valid clearance", r2.header.Values("Set-Cookie"))
	}
	for _, f := range fires {
		if r := c.do(t, http.MethodGet, f.path, "", "Accept", f.accept); r.status != http.StatusOK {
			t.Errorf("%s after 2 submissions: %d, want 200", f.path, r.status)
		}
	}
}

// TestF24Feeds: feed readers never get the HTML challenge. By default feeds
// pass (200 XML, 304 on revalidation); an operator who challenges feeds
// sends non-2xx machine-readable answers with Retry-After.
func TestF24Feeds(t *testing.T) {
	uas := []struct{ name, ua string }{
		{"miniflux", "Miniflux/2.2 (+https://miniflux.app; Mozilla compatible)"},
		{"thunderbird", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0"},
	}
	paths := []string{"/feed.xml", "/feed/", "/index.atom", "/?format=atom"}
	const accept = "application/atom+xml, application/rss+xml"
	for _, challengeFeeds := range []bool{false, true} {
		sh := newShield(t, shieldConfig{fopts: FilterOptions{ChallengeFeeds: challengeFeeds}})
		c := sh.client("127.0.0.2", true)
		for _, u := range uas {
			for _, p := range paths {
				t.Run(u.name+p+map[bool]string{false: " default", true: " challenged"}[challengeFeeds], func(t *testing.T) {
					r := c.do(t, http.MethodGet, p, "", "User-Agent", u.ua, "Accept", accept)
					ct := r.header.Get("Content-Type")
					if strings.Contains(ct, "html") || strings.Contains(r.body, "<html") {
						t.Fatalf("HTML answer %d %q", r.status, ct)
					}
					if !challengeFeeds {
						if r.status != http.StatusOK || !strings.Contains(ct, "xml") {
							t.Fatalf("status %d %q, want 200 XML", r.status, ct)
						}
						etag := r.header.Get("ETag")
						if etag == "" {
							t.Fatal("feed has no ETag")
						}
						if r2 := c.do(t, http.MethodGet, p, "", "User-Agent", u.ua, "Accept", accept, "If-None-Match", etag); r2.status != http.StatusNotModified {
							t.Errorf("conditional GET: %d, want 304", r2.status)
						}
						return
					}
					if r.status < 400 || r.header.Get("Retry-After") == "" {
						t.Errorf("challenged feed: %d Retry-After %q, want non-2xx with Retry-After", r.status, r.header.Get("Retry-After"))
					}
				})
			}
		}
	}
}

// TestF25Crawlers: a crawler from a verified range passes; its UA from
// elsewhere is an ordinary client; the challenge is 503 + no-store and
// never carries noindex.
func TestF25Crawlers(t *testing.T) {
	sh := newShield(t, shieldConfig{fopts: FilterOptions{VerifiedCrawlers: netset.New(netip.MustParsePrefix("127.0.0.66/32"))}})
	const (
		googlebot  = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
		inspection = "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)"
	)
	tests := []struct {
		name, from, ua string
		wantStatus     int
	}{
		{name: "googlebot verified", from: "127.0.0.66", ua: googlebot, wantStatus: 200},
		{name: "inspection tool verified", from: "127.0.0.66", ua: inspection, wantStatus: 200},
		{name: "googlebot unverified", from: "127.0.0.2", ua: googlebot, wantStatus: 503},
		{name: "browser", from: "127.0.0.2", ua: browserUA, wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sh.client(tt.from, false).do(t, http.MethodGet, "/about", "", "User-Agent", tt.ua, "Accept", browserAccept)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d", r.status, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				if strings.Contains(r.body, "pc-form") {
					t.Error("crawler got the challenge page")
				}
				return
			}
			if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Retry-After") == "" {
				t.Errorf("Cache-Control %q Retry-After %q", r.header.Get("Cache-Control"), r.header.Get("Retry-After"))
			}
			if strings.Contains(strings.ToLower(r.body), "noindex") || r.header.Get("X-Robots-Tag") != "" {
				t.Error("challenge carries noindex")
			}
			parsePage(t, r.body)
		})
	}
}

// TestF27NoJavaScript: a text browser completes the no-JS path after the
// wait, both by the form and by the meta refresh; early submissions are
// told to wait and keep the same challenge.
func TestF27NoJavaScript(t *testing.T) {
	for _, via := range []string{"form", "meta refresh"} {
		t.Run(via, func(t *testing.T) {
			sh := newShield(t, shieldConfig{})
			c := sh.client("127.0.0.2", false)
			r := c.do(t, http.MethodGet, "/about", "", "User-Agent", "Lynx/2.9.0 libwww-FM/2.14", "Accept", "text/html, text/plain")
			p := parsePage(t, r.body)
			if p.refresh == "" || !strings.Contains(r.body, "<noscript>") {
				t.Fatal("no no-JS path on the page")
			}
			send := func() resp {
				if via == "form" {
					return noFollow(c).do(t, http.MethodPost, p.action, url.Values{"t": {p.token}, "r": {p.target}}.Encode(), "User-Agent", "Lynx/2.9.0 libwww-FM/2.14", "Accept", "text/html")
				}
				_, u, _ := strings.Cut(p.refresh, ";url=")
				return noFollow(c).do(t, http.MethodGet, u, "", "User-Agent", "Lynx/2.9.0 libwww-FM/2.14", "Accept", "text/html")
			}
			early := send()
			if early.status != http.StatusServiceUnavailable || early.header.Get("Retry-After") == "" {
				t.Fatalf("early: %d Retry-After %q, want 503 with Retry-After", early.status, early.header.Get("Retry-After"))
			}
			if again := parsePage(t, early.body); again.token != p.token {
				t.Error("the wait page issued a different challenge")
			}
			sh.clk.Advance(DefaultNoJSWait)
			done := send()
			if done.status != http.StatusSeeOther || !contains(setCookies(done.header), sh.svc.clearanceName) {
				t.Fatalf("after the wait: %d cookies %v", done.status, setCookies(done.header))
			}
			if r := c.do(t, http.MethodGet, "/about", "", "User-Agent", "Lynx/2.9.0 libwww-FM/2.14", "Accept", "text/html"); r.status != 200 {
				t.Fatalf("page after no-JS pass: %d", r.status)
			}
		})
	}
}

// TestF27CookieRefuser: a scripted client that solves every challenge but
// never stores cookies gets "cookies required" after its first attempt and
// at most 2 challenges a minute.
func TestF27CookieRefuser(t *testing.T) {
	sh := newShield(t, shieldConfig{})
	c := sh.client("127.0.0.2", true)
	challenges, cookiePages := 0, 0
	for i := range 20 {
		r := c.do(t, http.MethodGet, "/", "", "Accept", browserAccept)
		if strings.Contains(r.body, `id="pc-form"`) {
			challenges++
			p := parsePage(t, r.body)
			v := noFollow(c).submit(t, p, solve(p.seed, p.bits))
			if v.status != http.StatusForbidden || !strings.Contains(v.body, "Cookies required") {
				t.Fatalf("attempt %d: %d, want 403 cookies required:\n%s", i, v.status, v.body)
			}
			continue
		}
		if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Cookies required") || r.header.Get("Retry-After") == "" {
			t.Fatalf("request %d: %d, want 429 cookies required with Retry-After", i, r.status)
		}
		cookiePages++
	}
	if challenges > RefuserChallengesPerMinute || cookiePages == 0 {
		t.Fatalf("%d challenges, %d cookies-required pages in a minute; want ≤ %d challenges", challenges, cookiePages, RefuserChallengesPerMinute)
	}
	sh.clk.Advance(time.Minute)
	if r := c.do(t, http.MethodGet, "/", "", "Accept", browserAccept); !strings.Contains(r.body, `id="pc-form"`) {
		t.Errorf("no challenge a minute later: %d", r.status)
	}
	// Another client on the same address with cookies is not affected.
	if r := sh.client("127.0.0.2", false).do(t, http.MethodGet, "/", "", "Accept", browserAccept, "User-Agent", "Other/1.0"); !strings.Contains(r.body, `id="pc-form"`) {
		t.Errorf("other client got %d, want a challenge", r.status)
	}
}
