package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzCacheKey feeds attacker-controlled request parts (path, query,
// Accept-Encoding, Cookie) and origin-controlled Cache-Control/Expires/
// Age/Vary values to the key and storage rules: nothing panics, the key
// is stable, an ignore_query_on route keeps only keep_query parameters,
// at most 16 encoding variants exist, and a stored response never has
// negative freshness unless it may be served stale.
func FuzzCacheKey(f *testing.F) {
	f.Add("/", "rnd=1&lang=fr", "gzip, br;q=0", "portcullis_clearance=1; a=b", "max-age=60, s-maxage=5", "Sun, 01 Mar 2026 12:01:00 GMT", "3", "Accept-Encoding")
	f.Add("/news/a", "&&a=1&a=2&b", "GZIP;q=0.0, zstd", "", "no-store", "0", "", "")
	f.Add("/search", "q=%zz&x", "*", "=;;", "must-revalidate, max-age=\"10\"", "bad date", "-5", "Accept-Encoding, Cookie")
	c, err := NewCache(CacheConfig{Enabled: true, DefaultTTL: time.Second, StaleFor: time.Minute, MaxEntries: 10,
		MaxBytes: 1 << 20, MaxObjectBytes: 1 << 10, IgnoreQueryOn: []string{"/", "/news/*"}, KeepQuery: []string{"lang"},
		AnonymousCookies: []string{"portcullis_*"}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, path, query, ae, cookie, cc, expires, age, vary string) {
		r := &http.Request{Method: http.MethodGet, Host: "Example.org", URL: &url.URL{Path: path, RawQuery: query},
			Header: http.Header{"Accept-Encoding": {ae}, "Cookie": {cookie}}}
		c.eligible(r)
		k1, q, rewrite := c.appendKey(nil, r)
		k2, _, _ := c.appendKey(nil, r)
		if string(k1) != string(k2) {
			t.Fatalf("unstable key %q / %q", k1, k2)
		}
		if cls := k1[len(k1)-1] - 'a'; cls >= 16 {
			t.Fatalf("encoding class %d", cls)
		}
		if rewrite && q != "" {
			for _, p := range strings.Split(q, "&") {
				if name, _, _ := strings.Cut(p, "="); !c.keep[name] {
					t.Fatalf("ignored route kept %q in %q", name, q)
				}
			}
		}
		h := http.Header{"Cache-Control": {cc}, "Expires": {expires}, "Date": {"Sun, 01 Mar 2026 12:00:00 GMT"}, "Age": {age}, "Vary": {vary}}
		pol := c.policy(http.StatusOK, h, now)
		if pol.store && pol.fresh <= 0 && pol.noStale {
			t.Fatalf("stored with freshness %v and no stale use: %+v", pol.fresh, h)
		}
		etagMatch(cookie, ae)
	})
}
