package app

// Non-browser and degraded clients meeting under-attack mode through the
// whole shield, in front of the demo site: HANDED F23 (parallel requests of
// one page load), F24 (feed readers), F25 (crawlers) and F27 (no cookies).

import (
	"github.com/portcullis/portcullis/internal/config"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const (
	minifluxUA    = "Miniflux/2.2 (+https://miniflux.app; Mozilla compatible)"
	thunderbirdUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.1"
	feedAccept    = "application/atom+xml, application/rss+xml"
	googlebotUA   = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

// TestF24_FeedsUnderAttack: feed readers without cookies or JavaScript get
// 200 XML (never the HTML challenge), and 304 on a conditional GET.
func TestF24_FeedsUnderAttack(t *testing.T) {
	s := startDemoShield(t, "", nil)
	s.underAttack(t, true)
	c := clientFrom(t, trustedPeer)
	tests := []struct {
		name, path, ua string
	}{
		{name: "RSS, Miniflux", path: "/feed.xml", ua: minifluxUA},
		{name: "RSS under /feed/, Miniflux", path: "/feed/", ua: minifluxUA},
		{name: "Atom, Miniflux", path: "/index.atom", ua: minifluxUA},
		{name: "Atom by query on the root, Miniflux", path: "/?format=atom", ua: minifluxUA},
		{name: "RSS, Thunderbird", path: "/feed.xml", ua: thunderbirdUA},
		{name: "Atom, Thunderbird", path: "/index.atom", ua: thunderbirdUA},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			xff := "198.51.100." + string(rune('1'+i))
			r := hGet(c, s.URL+tc.path, "User-Agent", tc.ua, "Accept", feedAccept, "X-Forwarded-For", xff)
			ct := r.Header.Get("Content-Type")
			if r.Status == http.StatusOK && strings.Contains(ct, "html") {
				t.Fatalf("feed reader got 200 HTML (%s)", ct)
			}
			if r.Status != http.StatusOK || !strings.Contains(ct, "xml") {
				t.Fatalf("want 200 XML, got %d %q", r.Status, ct)
			}
			etag := r.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag on the feed")
			}
			if r2 := hGet(c, s.URL+tc.path, "User-Agent", tc.ua, "Accept", feedAccept, "X-Forwarded-For", xff, "If-None-Match", etag); r2.Status != http.StatusNotModified {
				t.Errorf("conditional GET: want 304, got %d", r2.Status)
			}
		})
	}
}

// TestF24_FeedFloodUnderAttack (step 4): exempting feeds from the
// challenge must not make them a bypass: one address hammering /feed.xml
// is limited per address.
func TestF24_FeedFloodUnderAttack(t *testing.T) {
	s := startDemoShield(t, "", nil)
	s.underAttack(t, true)
	c := clientFrom(t, trustedPeer)
	codes := map[int]int{}
	var retry []string
	for range 120 {
		r := hGet(c, s.URL+"/feed.xml", "User-Agent", minifluxUA, "Accept", feedAccept, "X-Forwarded-For", "198.51.100.99")
		codes[r.Status]++
		if r.Status == http.StatusTooManyRequests {
			retry = append(retry, r.RetryAfter)
			if strings.Contains(r.Header.Get("Content-Type"), "html") {
				t.Errorf("feed reader refused with HTML")
			}
		}
	}
	t.Logf("120 feed requests at once from one address: %v", codes)
	// The allowance is 60 a minute with the minute's worth as burst.
	if codes[http.StatusOK] < 60 || codes[http.StatusOK] > 62 || codes[http.StatusTooManyRequests] != 120-codes[http.StatusOK] {
		t.Errorf("want 60 (+ refill) served and the rest 429, got %v", codes)
	}
	for _, ra := range retry {
		if n, err := strconv.Atoi(ra); err != nil || n < 1 {
			t.Errorf("429 without a Retry-After of at least 1 s: %q", ra)
			break
		}
	}
	// Another reader is not affected.
	if r := hGet(c, s.URL+"/feed.xml", "User-Agent", thunderbirdUA, "Accept", feedAccept, "X-Forwarded-For", "198.51.100.100"); r.Status != http.StatusOK {
		t.Errorf("another address: %d", r.Status)
	}
}

// TestF25_CrawlersUnderAttack: a crawler's User-Agent from an address that
// is not a verified crawler range is an ordinary client: challenged with a
// non-2xx, no-store answer that carries no noindex.
func TestF25_CrawlersUnderAttack(t *testing.T) {
	s := startDemoShield(t, "", nil)
	s.underAttack(t, true)
	c := clientFrom(t, trustedPeer)
	tests := []struct{ name, ua, accept string }{
		{name: "Googlebot UA from an unverified address", ua: googlebotUA, accept: browserAccept},
		{name: "browser from an unverified address", ua: browserUA, accept: browserAccept},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := hGet(c, s.URL+"/about", "User-Agent", tc.ua, "Accept", tc.accept, "X-Forwarded-For", "203.0.113.66")
			if r.Status < 300 {
				t.Fatalf("challenge answered %d", r.Status)
			}
			if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") || r.RetryAfter == "" {
				t.Errorf("challenge: Cache-Control %q Retry-After %q", r.Header.Get("Cache-Control"), r.RetryAfter)
			}
			if strings.Contains(strings.ToLower(r.Body), "noindex") || r.Header.Get("X-Robots-Tag") != "" {
				t.Errorf("challenge carries noindex")
			}
		})
	}
	t.Run("Googlebot from a verified crawler range", func(t *testing.T) {
		// 127.0.0.66 stands in for a published crawler range (HANDED F25).
		vs := startDemoShield(t, "", func(c *config.Config) {
			c.Challenge.VerifiedCrawlers = []config.Prefix{mustPrefix(t, "127.0.0.66/32")}
		})
		vs.underAttack(t, true)
		crawler := clientFrom(t, "127.0.0.66")
		for _, ua := range []string{googlebotUA, "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)"} {
			r := hGet(crawler, vs.URL+"/about", "User-Agent", ua, "Accept", browserAccept)
			if r.Status != http.StatusOK || !strings.Contains(r.Body, "<h1") {
				t.Errorf("%s from the verified range: status %d, want 200 with the real page", ua, r.Status)
			}
		}
		// The same UA from elsewhere is an ordinary client.
		if r := hGet(clientFrom(t, "127.0.0.2"), vs.URL+"/about", "User-Agent", googlebotUA, "Accept", browserAccept); r.Status < 300 {
			t.Errorf("Googlebot UA from 127.0.0.2: status %d, want the challenge", r.Status)
		}
	})
}

// TestF23_PageLoadUnderAttack: one page load fires a document request,
// API calls and a stylesheet at once without cookies; only the document
// gets the HTML interstitial, the others a machine-readable refusal; after
// one solved challenge every resource loads, and solving a second,
// parallel challenge does not replace the clearance.
func TestF23_PageLoadUnderAttack(t *testing.T) {
	s := startDemoShield(t, "", nil)
	s.underAttack(t, true)
	b := newBrowser(t, s.URL, "192.0.2.23")
	type req struct{ path, accept string }
	reqs := []req{{"/", browserAccept}, {"/api/v1/news", "application/json"}, {"/api/v1/events", "application/json"},
		{"/api/v1/news/1", "application/json"}, {"/api/v1/news/2", "application/json"}, {"/static/site.css", "text/css,*/*;q=0.1"}}
	load := func() []hResult {
		out := make([]hResult, len(reqs))
		var wg sync.WaitGroup
		for i, q := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = b.get(q.path, "Accept", q.accept)
			}()
		}
		wg.Wait()
		return out
	}
	first := load()
	var pages []challengePage
	for i, r := range first {
		p, isPage := parseChallenge(r.Body)
		html := strings.Contains(r.Header.Get("Content-Type"), "html")
		switch {
		case i == 0 && (r.Status != http.StatusServiceUnavailable || !isPage):
			t.Errorf("GET %s: want the 503 interstitial, got %d", reqs[i].path, r.Status)
		case i > 0 && (r.Status < 400 || html || r.RetryAfter == ""):
			t.Errorf("GET %s: want a non-HTML refusal with Retry-After, got %d %q", reqs[i].path, r.Status, r.Header.Get("Content-Type"))
		}
		if isPage {
			pages = append(pages, p)
		}
	}
	// A second tab's challenge, issued before the first is answered.
	second, ok := parseChallenge(b.get("/about").Body)
	if len(pages) != 1 || !ok {
		t.Fatalf("want one interstitial per tab, got %d and %v", len(pages), ok)
	}
	if v := b.redeem(pages[0], solvePoW(t, pages[0].Seed, pages[0].Bits)); v.Status != http.StatusSeeOther {
		t.Fatalf("first answer: %d", v.Status)
	}
	v := b.redeem(second, solvePoW(t, second.Seed, second.Bits))
	if v.Status != http.StatusSeeOther {
		t.Fatalf("the outstanding second challenge's valid answer: %d, want 303", v.Status)
	}
	if len(v.Header.Values("Set-Cookie")) > 0 && strings.Contains(strings.Join(v.Header.Values("Set-Cookie"), ";"), "clearance") {
		t.Errorf("the second answer replaced a valid clearance: %q", v.Header.Values("Set-Cookie"))
	}
	for i, r := range load() {
		if r.Status != http.StatusOK {
			t.Errorf("after passing: GET %s = %d", reqs[i].path, r.Status)
		}
	}
}
