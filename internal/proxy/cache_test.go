package proxy

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func testCacheConfig() CacheConfig {
	return CacheConfig{Enabled: true, DefaultTTL: time.Second, StaleFor: 10 * time.Minute, MaxEntries: 100,
		MaxBytes: 1 << 20, MaxObjectBytes: 1 << 10, AnonymousCookies: []string{"portcullis_*"}}
}

// TestCacheRules sends two requests for one resource and counts what
// reached the origin: what may be stored (RFC 9111 for a shared cache,
// anonymous GETs only) is fetched once.
func TestCacheRules(t *testing.T) {
	long := strings.Repeat("x", 2<<10)
	tests := []struct {
		name       string
		status     int
		header     http.Header // origin response headers
		body       string
		method     string // first request (default GET)
		second     string // second request's method (default: method)
		req        map[string]string
		req2       map[string]string // second request's headers (default: req)
		advance    time.Duration     // clock step between the requests
		noMicro    bool
		wantOrigin int64
		wantCache  string // X-Portcullis-Cache of the second answer
		wantStatus int    // of the second answer (default 200/status)
		wantAge    string
	}{
		{name: "unmarked 200 is micro-cached", wantOrigin: 1, wantCache: "HIT", wantAge: "0"},
		{name: "micro-cache TTL expires", advance: 2 * time.Second, wantOrigin: 2, wantCache: "MISS"},
		{name: "max-age outlives the default TTL", header: http.Header{"Cache-Control": {"public, max-age=60"}}, advance: 30 * time.Second, wantOrigin: 1, wantCache: "HIT", wantAge: "30"},
		{name: "s-maxage wins over max-age", header: http.Header{"Cache-Control": {"max-age=60, s-maxage=5"}}, advance: 10 * time.Second, wantOrigin: 2, wantCache: "MISS"},
		{name: "Expires relative to Date", header: http.Header{"Date": {"Sun, 01 Mar 2026 12:00:00 GMT"}, "Expires": {"Sun, 01 Mar 2026 12:01:00 GMT"}}, advance: 30 * time.Second, wantOrigin: 1, wantCache: "HIT"},
		{name: "the origin's Age shortens freshness", header: http.Header{"Cache-Control": {"max-age=10"}, "Age": {"8"}}, advance: 3 * time.Second, wantOrigin: 2, wantCache: "MISS"},
		{name: "Set-Cookie is never cached", header: http.Header{"Set-Cookie": {"session=abc"}}, wantOrigin: 2},
		{name: "no-store is honoured", header: http.Header{"Cache-Control": {"no-store"}}, wantOrigin: 2},
		{name: "private is not stored", header: http.Header{"Cache-Control": {"private, max-age=60"}}, wantOrigin: 2},
		{name: "no-cache is not stored", header: http.Header{"Cache-Control": {"no-cache"}}, wantOrigin: 2},
		{name: "must-revalidate with max-age=0 is not stored", header: http.Header{"Cache-Control": {"max-age=0, must-revalidate"}}, wantOrigin: 2},
		{name: "Vary other than Accept-Encoding is not stored", header: http.Header{"Vary": {"Accept-Encoding, Cookie"}}, wantOrigin: 2},
		{name: "Vary: Accept-Encoding is stored", header: http.Header{"Vary": {"Accept-Encoding"}}, wantOrigin: 1, wantCache: "HIT"},
		{name: "Accept-Encoding classes are separate variants", req: map[string]string{"Accept-Encoding": "gzip"}, req2: map[string]string{"Accept-Encoding": "br"}, wantOrigin: 2, wantCache: "MISS"},
		{name: "equivalent Accept-Encoding shares a variant", req: map[string]string{"Accept-Encoding": "gzip, br"}, req2: map[string]string{"Accept-Encoding": "br;q=1.0,GZIP, identity"}, wantOrigin: 1, wantCache: "HIT"},
		{name: "Authorization bypasses", req: map[string]string{"Authorization": "Bearer x"}, wantOrigin: 2},
		{name: "a session cookie bypasses", req: map[string]string{"Cookie": "portcullis_clearance=1; session=abc"}, wantOrigin: 2},
		{name: "the shield's own cookies are anonymous", req: map[string]string{"Cookie": "portcullis_clearance=1; portcullis_test=1"}, wantOrigin: 1, wantCache: "HIT"},
		{name: "POST is never cached", method: http.MethodPost, wantOrigin: 2},
		{name: "PUT is never cached", method: http.MethodPut, wantOrigin: 2},
		{name: "HEAD is answered from a GET entry", second: http.MethodHead, req: map[string]string{"Accept-Encoding": "gzip"}, wantOrigin: 1, wantCache: "HIT"},
		{name: "an upgrade bypasses", req: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}, wantOrigin: 2},
		{name: "a Range request is answered from the whole entry", req: map[string]string{"Accept-Encoding": "gzip"}, req2: map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=0-1"}, wantOrigin: 1, wantCache: "HIT"},
		{name: "404 is cached", status: http.StatusNotFound, wantOrigin: 1, wantCache: "HIT"},
		{name: "301 is cached", status: http.StatusMovedPermanently, header: http.Header{"Location": {"https://example.org/"}}, wantOrigin: 1, wantCache: "HIT"},
		{name: "302 is not cached", status: http.StatusFound, header: http.Header{"Location": {"/x"}}, wantOrigin: 2, wantCache: "MISS"},
		{name: "500 is not cached", status: http.StatusInternalServerError, wantOrigin: 2, wantCache: "MISS"},
		{name: "an event stream is not cached", header: http.Header{"Content-Type": {"text/event-stream"}}, wantOrigin: 2},
		{name: "a body over max_object_bytes is not cached", body: long, wantOrigin: 2},
		{name: "micro off: unmarked responses are not stored", noMicro: true, wantOrigin: 2},
		{name: "micro off: marked responses are", noMicro: true, header: http.Header{"Cache-Control": {"max-age=60"}}, wantOrigin: 1, wantCache: "HIT"},
		{name: "If-None-Match on a hit gets 304", header: http.Header{"Etag": {`"v1"`}}, req2: map[string]string{"If-None-Match": `W/"v1"`}, wantOrigin: 1, wantCache: "HIT", wantStatus: http.StatusNotModified},
		{name: "hosts are separate entries", req: map[string]string{"Host": "a.example"}, req2: map[string]string{"Host": "b.example"}, wantOrigin: 2, wantCache: "MISS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			body := tt.body
			if body == "" {
				body = "hello"
			}
			org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.WriteHeader(status)
				w.Write([]byte(body))
			})
			clk := newClock()
			cc := testCacheConfig()
			if tt.noMicro {
				cc.DefaultTTL = 0
			}
			s := newShield(t, PoolConfig{Cache: cc, Now: clk.now}, org)
			m1 := tt.method
			if m1 == "" {
				m1 = http.MethodGet
			}
			m2 := tt.second
			if m2 == "" {
				m2 = m1
			}
			r2h := tt.req2
			if r2h == nil {
				r2h = tt.req
			}
			first := s.do(t, m1, "/page", tt.req)
			if first.status != status {
				t.Fatalf("first answer %d, want %d", first.status, status)
			}
			clk.advance(tt.advance)
			got := s.do(t, m2, "/page", r2h)
			if n := org.hits.Load(); n != tt.wantOrigin {
				t.Errorf("origin saw %d requests, want %d", n, tt.wantOrigin)
			}
			if c := got.header.Get(CacheHeader); c != tt.wantCache {
				t.Errorf("%s = %q, want %q", CacheHeader, c, tt.wantCache)
			}
			want := tt.wantStatus
			if want == 0 {
				want = status
			}
			if got.status != want {
				t.Errorf("second answer %d, want %d", got.status, want)
			}
			if want == http.StatusOK && m2 == http.MethodGet && got.body != body {
				t.Errorf("second body %q, want %q", got.body, body)
			}
			if tt.wantAge != "" && got.header.Get("Age") != tt.wantAge {
				t.Errorf("Age %q, want %q", got.header.Get("Age"), tt.wantAge)
			}
			if got.header.Get(RequestIDHeader) != "" && got.header.Get(RequestIDHeader) != "req-test" && tt.wantCache == "HIT" {
				t.Errorf("a hit carries another request's id %q", got.header.Get(RequestIDHeader))
			}
		})
	}
}

// TestCacheCoalescing sends N concurrent requests for one key while the
// origin is slow: a cacheable response is fetched once for all of them;
// an uncacheable one releases the waiters to fetch on their own.
func TestCacheCoalescing(t *testing.T) {
	const n = 20
	tests := []struct {
		name       string
		header     http.Header
		wantOrigin int64
		wantCache  string
	}{
		{name: "cacheable: one origin request", wantOrigin: 1, wantCache: "HIT"},
		{name: "uncacheable: each waiter fetches", header: http.Header{"Set-Cookie": {"s=1"}}, wantOrigin: n, wantCache: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := make(chan struct{})
			org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.Write([]byte("page"))
			})
			s := newShield(t, PoolConfig{Cache: testCacheConfig(), Now: newClock().now}, org)
			var wg sync.WaitGroup
			results := make(chan resp, n)
			for range n {
				wg.Go(func() { results <- s.do(t, http.MethodGet, "/?", nil) })
			}
			waitUntil(t, "all requests coalesced behind one origin request", func() bool {
				return org.hits.Load() == 1 && metricValue(t, s.reg, "portcullis_proxy_cache_requests_total", "site=www", "result=coalesced") == n-1
			})
			if h := org.hits.Load(); h != 1 {
				t.Fatalf("origin saw %d requests while coalescing, want 1", h)
			}
			close(gate)
			wg.Wait()
			close(results)
			hits := 0
			for r := range results {
				if r.status != http.StatusOK || r.body != "page" {
					t.Errorf("answer %d %q", r.status, r.body)
				}
				if r.header.Get(CacheHeader) == "HIT" {
					hits++
				}
			}
			if h := org.hits.Load(); h != tt.wantOrigin {
				t.Errorf("origin saw %d requests, want %d", h, tt.wantOrigin)
			}
			if tt.wantCache == "HIT" && hits != n-1 {
				t.Errorf("%d waiters answered from the cache, want %d", hits, n-1)
			}
		})
	}
}

// TestCacheBusting: random query strings on configured routes share one
// entry (and the origin sees the normalised query); elsewhere only the
// parameter order is normalised.
func TestCacheBusting(t *testing.T) {
	tests := []struct {
		name       string
		paths      []string
		wantOrigin []string
	}{
		{name: "random query on / is dropped", paths: []string{"/?rnd=1", "/?rnd=2", "/"}, wantOrigin: []string{"GET /"}},
		{name: "kept parameters stay in the key", paths: []string{"/?lang=fr&x=1", "/?x=2&lang=fr", "/?lang=de"}, wantOrigin: []string{"GET /?lang=fr", "GET /?lang=de"}},
		{name: "prefix routes", paths: []string{"/news/a?utm_source=x", "/news/a?fbclid=y"}, wantOrigin: []string{"GET /news/a"}},
		{name: "other routes keep their query", paths: []string{"/search?q=1", "/search?q=2"}, wantOrigin: []string{"GET /search?q=1", "GET /search?q=2"}},
		{name: "parameter order is normalised", paths: []string{"/search?a=1&b=2", "/search?b=2&a=1", "/search?a=1&&b=2"}, wantOrigin: []string{"GET /search?a=1&b=2"}},
		{name: "repeated parameters keep their order", paths: []string{"/search?a=1&a=2", "/search?a=2&a=1"}, wantOrigin: []string{"GET /search?a=1&a=2", "GET /search?a=2&a=1"}},
		{name: "an exact route is not a prefix", paths: []string{"/about?x=1", "/about?x=2"}, wantOrigin: []string{"GET /about?x=1", "GET /about?x=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.URL.RawQuery)) })
			cc := testCacheConfig()
			cc.IgnoreQueryOn = []string{"/", "/news/*"}
			cc.KeepQuery = []string{"lang"}
			s := newShield(t, PoolConfig{Cache: cc, Now: newClock().now}, org)
			for _, p := range tt.paths {
				if r := s.do(t, http.MethodGet, p, nil); r.status != http.StatusOK {
					t.Fatalf("%s: %d", p, r.status)
				}
			}
			if got := strings.Join(org.requests(), " | "); got != strings.Join(tt.wantOrigin, " | ") {
				t.Errorf("origin saw %s, want %s", got, strings.Join(tt.wantOrigin, " | "))
			}
		})
	}
}
