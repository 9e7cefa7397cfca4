package proxy

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Origin behaviours for the serve-stale tests.
const (
	behaveOK = iota
	behave503
	behave500
	behaveReset    // close the connection without an answer
	behaveMidBody  // announce 100 bytes, send 10, close
	behaveBlock    // hold the request until the client leaves
	behaveNoAnswer // (origin server closed)
)

// misbehavingOrigin answers "v1" with the cache headers given, until the
// test switches its behaviour.
func misbehavingOrigin(t *testing.T, cacheControl string, mode *atomic.Int32) *origin {
	return newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case behave503:
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("overloaded"))
			return
		case behave500:
			w.WriteHeader(http.StatusInternalServerError)
			return
		case behaveReset:
			hijackClose(w)
			return
		case behaveMidBody:
			c, buf, _ := http.NewResponseController(w).Hijack()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nCache-Control: max-age=60\r\n\r\n0123456789")
			buf.Flush()
			c.Close()
			return
		case behaveBlock:
			<-r.Context().Done()
			return
		}
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		w.Header().Set("Etag", `"v1"`)
		w.Write([]byte("v1"))
	})
}

func hijackClose(w http.ResponseWriter) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		c.Close()
	}
}

// TestServeStale primes the cache, lets the entry expire, then breaks the
// origin: a GET gets the stale copy (200, Age, Warning 110,
// X-Portcullis-Cache: STALE) instead of the error, within the stale
// window and unless the origin forbade it.
func TestServeStale(t *testing.T) {
	tests := []struct {
		name         string
		cacheControl string
		behave       int32
		eject        bool // passive ejection of the only origin
		overloaded   bool // its only slot is held and the queue times out
		down         bool // the origin server is gone
		advance      time.Duration
		method       string
		wantStatus   int
		wantStale    bool
	}{
		{name: "origin answers 503", behave: behave503, advance: 5 * time.Second, wantStatus: 200, wantStale: true},
		{name: "origin answers 500", behave: behave500, advance: 5 * time.Second, wantStatus: 200, wantStale: true},
		{name: "origin resets the connection", behave: behaveReset, advance: 5 * time.Second, wantStatus: 200, wantStale: true},
		{name: "origin fails mid-body", behave: behaveMidBody, advance: 5 * time.Second, wantStatus: 200, wantStale: true},
		{name: "origin down", down: true, advance: 5 * time.Second, wantStatus: 200, wantStale: true},
		{name: "all origins ejected", eject: true, advance: 5 * time.Second, wantStatus: 200, wantStale: true},
		{name: "origin overloaded: queue timeout", overloaded: true, advance: 5 * time.Second, wantStatus: 200, wantStale: true},
		{name: "marked max-age, stale on 503", cacheControl: "max-age=60", behave: behave503, advance: 2 * time.Minute, wantStatus: 200, wantStale: true},
		{name: "must-revalidate is never served stale", cacheControl: "max-age=1, must-revalidate", behave: behave503, advance: 5 * time.Second, wantStatus: 503},
		{name: "past the stale window the error passes", behave: behave503, advance: 11 * time.Minute, wantStatus: 503},
		{name: "fresh entries need no origin", behave: behave503, wantStatus: 200},
		{name: "POST never gets a stale page", behave: behave503, advance: 5 * time.Second, method: http.MethodPost, wantStatus: 503},
		{name: "a healthy origin refreshes the entry", advance: 5 * time.Second, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mode atomic.Int32
			org := misbehavingOrigin(t, tt.cacheControl, &mode)
			clk := newClock()
			cfg := PoolConfig{Cache: testCacheConfig(), Now: clk.now, MaxConcurrency: 1, QueueTimeout: 50 * time.Millisecond}
			s := newShield(t, cfg, org)
			if r := s.do(t, http.MethodGet, "/page", nil); r.status != 200 || r.body != "v1" {
				t.Fatalf("priming: %d %q", r.status, r.body)
			}
			clk.advance(tt.advance)
			mode.Store(tt.behave)
			if tt.down {
				org.srv.Close()
			}
			if tt.eject {
				s.pool.cfg.UnhealthyAfter = 1
				s.pool.Report(s.pool.Origins()[0], false)
			}
			var held <-chan resp
			if tt.overloaded {
				mode.Store(behaveBlock)
				held = s.async(t, "/held", map[string]string{"Authorization": "x"})
				waitUntil(t, "slot held", func() bool { return s.pool.Origins()[0].Inflight() == 1 })
			}
			m := tt.method
			if m == "" {
				m = http.MethodGet
			}
			got := s.do(t, m, "/page", nil)
			if got.status != tt.wantStatus {
				t.Fatalf("status %d (%q), want %d", got.status, got.body, tt.wantStatus)
			}
			stale := got.header.Get(CacheHeader) == "STALE"
			if stale != tt.wantStale {
				t.Errorf("%s = %q, want stale %v", CacheHeader, got.header.Get(CacheHeader), tt.wantStale)
			}
			if tt.wantStale {
				age, _ := strconv.Atoi(got.header.Get("Age"))
				if got.body != "v1" || age < int(tt.advance/time.Second) || !strings.HasPrefix(got.header.Get("Warning"), "110") {
					t.Errorf("stale answer: body %q Age %q Warning %q", got.body, got.header.Get("Age"), got.header.Get("Warning"))
				}
			}
			if got.status >= 500 && got.header.Get("Retry-After") == "" {
				t.Errorf("error without Retry-After: %v", got.header)
			}
			if held != nil {
				// The client retries a GET cut on a reused connection:
				// let the retry through.
				mode.Store(behaveOK)
				s.srv.CloseClientConnections()
				<-held
			}
		})
	}
}

// TestErrorsNeverStored: the shield's own answers (502 for an origin
// failure, 503 for a queue timeout) and an origin's no-store answer are
// not stored: once the origin is back, the next request reaches it
// (cases F12/F25: a challenge or error page must never be cached).
func TestErrorsNeverStored(t *testing.T) {
	tests := []struct {
		name   string
		behave int32
		hold   bool
		want   int
	}{
		{name: "proxy 502 after a reset", behave: behaveReset, want: http.StatusBadGateway},
		{name: "proxy 502 after a mid-body failure", behave: behaveMidBody, want: http.StatusBadGateway},
		{name: "origin 503", behave: behave503, want: http.StatusServiceUnavailable},
		{name: "shield 503 on queue timeout", hold: true, want: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mode atomic.Int32
			org := misbehavingOrigin(t, "", &mode)
			s := newShield(t, PoolConfig{Cache: testCacheConfig(), Now: newClock().now, MaxConcurrency: 1, QueueTimeout: 30 * time.Millisecond}, org)
			mode.Store(tt.behave)
			var held <-chan resp
			if tt.hold {
				mode.Store(behaveBlock)
				held = s.async(t, "/held", map[string]string{"Authorization": "x"})
				waitUntil(t, "slot held", func() bool { return s.pool.Origins()[0].Inflight() == 1 })
			}
			got := s.do(t, http.MethodGet, "/page", nil)
			if got.status != tt.want {
				t.Fatalf("broken origin: %d %q, want %d", got.status, got.body, tt.want)
			}
			if got.body == "0123456789" {
				t.Fatal("a partial body reached the client")
			}
			mode.Store(behaveOK)
			if held != nil {
				s.srv.CloseClientConnections() // the client's retry of /held gets through
				<-held
			}
			before := org.hits.Load()
			if r := s.do(t, http.MethodGet, "/page", nil); r.status != 200 || r.body != "v1" || r.header.Get(CacheHeader) != "MISS" {
				t.Errorf("after recovery: %d %q %s=%q", r.status, r.body, CacheHeader, r.header.Get(CacheHeader))
			}
			if org.hits.Load() != before+1 {
				t.Errorf("the recovered origin was not asked")
			}
		})
	}
}

// TestCacheNeverHoldsStreams: a cacheable-looking response of unknown
// length that pauses is passed through after streamAfter (never held
// until it ends), and is not stored (case F20).
func TestCacheNeverHoldsStreams(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
	}{
		{name: "chunked text that pauses", contentType: "text/plain"},
		{name: "NDJSON", contentType: "application/x-ndjson"},
		{name: "server-sent events", contentType: "text/event-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := make(chan struct{})
			org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.Write([]byte("line 1\n"))
				w.(http.Flusher).Flush()
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
				w.Write([]byte("line 2\n"))
			})
			s := newShield(t, PoolConfig{Cache: testCacheConfig(), Now: newClock().now}, org)
			res, err := s.srv.Client().Get(s.srv.URL + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "line 1\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			close(next)
			if line, _ := br.ReadString('\n'); line != "line 2\n" {
				t.Fatalf("second line %q", line)
			}
			if r := s.do(t, http.MethodGet, "/stream", nil); r.header.Get(CacheHeader) == "HIT" {
				t.Error("a stream was stored")
			}
			if n, _ := s.pool.cache.Len(); n != 0 {
				t.Errorf("%d cache entries, want none", n)
			}
		})
	}
}
