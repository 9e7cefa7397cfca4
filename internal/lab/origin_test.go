package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOrigin(t *testing.T) {
	og := NewOrigin(OriginOptions{Bin: time.Hour})
	srv := httptest.NewServer(og)
	t.Cleanup(srv.Close)

	// Not counted: before Start.
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	og.Start(time.Now())

	good := "user=m-7&password=x"
	sum := sha256.Sum256([]byte(good))
	goodSum := hex.EncodeToString(sum[:])
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		wantStatus               int
		wantHeader               map[string]string
	}{
		{"page by a visitor", "GET", "/", "", map[string]string{ClassHeader: "legit"}, 200, map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{"bot by header", "GET", "/news/3", "", map[string]string{ClassHeader: "bot"}, 200, nil},
		{"bot by cookie (slowhttptest)", "GET", "/", "", map[string]string{"Cookie": "lab_class=bot"}, 200, nil},
		{"crowd", "GET", "/events", "", map[string]string{ClassHeader: "crowd"}, 200, nil},
		{"asset cacheable", "GET", "/static/site.css", "", map[string]string{ClassHeader: "legit"}, 200, map[string]string{"Cache-Control": "public, max-age=86400"}},
		{"feed", "GET", "/feed.xml", "", map[string]string{ClassHeader: "feed"}, 200, map[string]string{"Content-Type": "application/rss+xml; charset=utf-8", "ETag": feedETag}},
		{"feed conditional", "GET", "/feed.xml", "", map[string]string{ClassHeader: "feed", "If-None-Match": feedETag}, 304, nil},
		{"api", "GET", "/api/v1/news", "", map[string]string{ClassHeader: "api"}, 200, map[string]string{"Content-Type": "application/json"}},
		{"member login: checksum echoed, member header", "POST", "/login", good,
			map[string]string{ClassHeader: "member", SumHeader: goodSum, "Content-Type": "application/x-www-form-urlencoded"}, 303,
			map[string]string{SumEchoHeader: goodSum, MemberHeader: "m-7", "Location": "/account"}},
		{"visitor login: no member header", "POST", "/login", "user=v-1",
			map[string]string{ClassHeader: "legit", "Content-Type": "application/x-www-form-urlencoded"}, 303, map[string]string{MemberHeader: ""}},
		{"corrupted body refused, received checksum echoed", "POST", "/donate", good + "X",
			map[string]string{ClassHeader: "legit", SumHeader: goodSum}, 400, map[string]string{SumEchoHeader: sumOf(good + "X")}},
		{"unknown path", "GET", "/wp-login.php", "", map[string]string{ClassHeader: "bot"}, 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
	arr := og.Arrivals()
	if len(arr) != 1 {
		t.Fatalf("%d bins, want 1 (one-hour bins)", len(arr))
	}
	want := Arrivals{ClassLegit: 4, ClassBot: 3, ClassCrowd: 1, ClassFeed: 2, ClassAPI: 1, ClassMember: 1}
	if arr[0] != want {
		t.Errorf("arrivals %v, want %v (the health check before Start not counted)", arr[0], want)
	}
	if n := og.IntegrityMismatches(); n != 1 {
		t.Errorf("integrity mismatches %d, want 1", n)
	}
}

func sumOf(s string) string {
	b := sha256.Sum256([]byte(s))
	return hex.EncodeToString(b[:])
}

// TestOriginOverload checks that concurrency is tracked and slows service:
// 64 requests at once against a knee of 8 take far longer than one alone.
func TestOriginOverload(t *testing.T) {
	og := NewOrigin(OriginOptions{MinLatency: 20 * time.Millisecond, MaxLatency: 20 * time.Millisecond, Knee: 8})
	srv := httptest.NewServer(og)
	t.Cleanup(srv.Close)
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	get := func() time.Duration {
		start := time.Now()
		resp, err := hc.Get(srv.URL + "/")
		if err != nil {
			t.Error(err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	alone := get()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for range 64 {
		wg.Go(func() {
			d := get()
			mu.Lock()
			slowest = max(slowest, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	if p := og.PeakConcurrency(); p < 32 {
		t.Errorf("peak concurrency %d, want ≥ 32 of 64 parallel requests", p)
	}
	if slowest < 5*alone {
		t.Errorf("slowest of 64 parallel requests took %v, alone %v: want overload to show as latency", slowest, alone)
	}
	if p := og.PeakConcurrencyOf(ClassUnknown); p != og.PeakConcurrency() {
		t.Errorf("peak of unclassified requests %d, want the overall peak %d", p, og.PeakConcurrency())
	}
	if p := og.PeakConcurrencyOf(ClassBot); p != 0 {
		t.Errorf("bot peak %d, want 0", p)
	}
	if og.Concurrency() != 0 {
		t.Errorf("concurrency %d after all requests ended", og.Concurrency())
	}
}

func TestParseClass(t *testing.T) {
	for c := ClassUnknown; c < NumClasses; c++ {
		if got := ParseClass(strings.ToUpper(c.String())); got != c {
			t.Errorf("ParseClass(%q) = %v", strings.ToUpper(c.String()), got)
		}
	}
	if ParseClass("robot") != ClassUnknown {
		t.Error("an unknown name must be ClassUnknown")
	}
}
