package filter

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/netset"
	"github.com/portcullis/portcullis/internal/ratelimit"
)

func mustLimiter(t testing.TB, count int, period time.Duration, burst int) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.NewLimiter(ratelimit.Rate{Count: count, Period: period, Burst: burst}, ratelimit.Options{MaxKeys: 1 << 12})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newTestChain(t testing.TB, log *Sampler) *Chain {
	allow := &AllowList{ID: "allow", Sources: []SetSource{StaticSet{netset.New(netip.MustParsePrefix("192.0.2.0/24"))}}}
	deny := &DenyList{ID: "deny", Sources: []SetSource{StaticSet{netset.New(netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("192.0.2.66/32"))}}}
	shadow := &DenyList{ID: "shadow-deny", Shadow: true, Sources: []SetSource{StaticSet{netset.New(netip.MustParsePrefix("203.0.113.99/32"))}}}
	rl := &RateLimit{ID: "per-address", Key: KeyAddress, Limiter: mustLimiter(t, 2, time.Second, 2)}
	// Given out of order on purpose: the chain fixes the order.
	return NewChain(map[Stage][]Filter{StageRateLimit: {rl}, StageDeny: {deny, shadow}, StageAllow: {allow}}, log)
}

func req(addr string, now int64) *Request {
	a := netip.MustParseAddr(addr)
	return &Request{ID: "t-1", Addr: a, Prefix: netip.PrefixFrom(a, 24).Masked(), Method: "GET", Path: "/", Now: now}
}

func TestChainOrderAndVerdicts(t *testing.T) {
	var shadowed []string
	c := newTestChain(t, nil)
	c.OnShadow(func(r *Request, v Verdict) { shadowed = append(shadowed, v.Rule) })
	names := []string{}
	for _, f := range c.Filters() {
		names = append(names, f.Name())
	}
	if got := strings.Join(names, ","); got != "allow,deny,deny,rate_limit" {
		t.Fatalf("order = %s", got)
	}
	tests := []struct {
		name   string
		addr   string
		want   Action
		status int
	}{
		{name: "allow list bypasses deny (192.0.2.66 is in both)", addr: "192.0.2.66", want: Bypass},
		{name: "deny list blocks", addr: "198.51.100.7", want: Block, status: 403},
		{name: "unlisted passes", addr: "203.0.113.1", want: Pass},
		{name: "second request within burst passes", addr: "203.0.113.1", want: Pass},
		{name: "third request is throttled", addr: "203.0.113.1", want: Throttle, status: 429},
		{name: "shadow deny does not enforce", addr: "203.0.113.99", want: Pass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := c.Decide(req(tc.addr, 1_000_000))
			if v.Action != tc.want {
				t.Fatalf("action = %v, want %v (%+v)", v.Action, tc.want, v)
			}
			if tc.status != 0 && v.StatusCode() != tc.status {
				t.Errorf("status = %d, want %d", v.StatusCode(), tc.status)
			}
			if tc.want == Throttle && v.RetryAfter <= 0 {
				t.Errorf("throttle without Retry-After: %+v", v)
			}
		})
	}
	if len(shadowed) != 1 || shadowed[0] != "shadow-deny" {
		t.Errorf("shadow callbacks = %v", shadowed)
	}
}

func TestWriteVerdict(t *testing.T) {
	tests := []struct {
		name, accept, ctype string
		v                   Verdict
		status              int
		retry               string
	}{
		{name: "html", accept: "text/html,application/xhtml+xml", ctype: "text/html", v: Verdict{Action: Block, Reason: "blocked <here>"}, status: 403},
		{name: "json", accept: "application/json", ctype: "application/json", v: Verdict{Action: Throttle, RetryAfter: 1500 * time.Millisecond, Reason: "slow down"}, status: 429, retry: "2"},
		{name: "text", accept: "*/*", ctype: "text/plain", v: Verdict{Action: Shed, RetryAfter: time.Second}, status: 503, retry: "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept", tc.accept)
			WriteVerdict(rec, r, "abc-123", tc.v)
			if rec.Code != tc.status {
				t.Errorf("status = %d", rec.Code)
			}
			h := rec.Header()
			if h.Get("X-Request-Id") != "abc-123" || h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Type"), tc.ctype) {
				t.Errorf("headers = %v", h)
			}
			if h.Get("Retry-After") != tc.retry {
				t.Errorf("Retry-After = %q, want %q", h.Get("Retry-After"), tc.retry)
			}
			body := rec.Body.String()
			if !strings.Contains(body, "abc-123") {
				t.Errorf("body lacks request id: %s", body)
			}
			if strings.Contains(body, "<here>") {
				t.Errorf("reason not escaped: %s", body)
			}
		})
	}
}

func TestDropHTTP1ClosesConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteVerdict(w, r, "x", Verdict{Action: Drop})
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response %d, want a closed connection", resp.StatusCode)
	}
}

func TestSamplerBoundsLogVolume(t *testing.T) {
	var buf bytes.Buffer
	s := NewSampler(slog.New(slog.NewJSONHandler(&buf, nil)), 10, 100)
	r := req("198.51.100.7", 0)
	for i := 0; i < 10_000; i++ {
		r.Now = int64(i) * 50_000 // 10,000 refusals within 0.5 s
		s.Log(r, Verdict{Action: Block})
	}
	lines := strings.Count(buf.String(), "\n")
	// 10 in full, then 1 in 100 of the remaining 9,990 → 99.
	if lines != 10+99 {
		t.Fatalf("logged %d lines, want 109", lines)
	}
	if !strings.Contains(buf.String(), `"skipped":99`) {
		t.Errorf("skipped counts missing")
	}
}

// BenchmarkDecide measures the decision path for a request that passes
// every stage (allow miss, two deny lookups, one rate limit), over 10,000
// distinct client addresses. Target: ≤1 µs, 0 allocations.
func BenchmarkDecide(b *testing.B) {
	l, _ := ratelimit.NewLimiter(ratelimit.Rate{Count: 1_000_000, Period: time.Second}, ratelimit.Options{})
	deny := netset.New(netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32"))
	c := NewChain(map[Stage][]Filter{
		StageAllow:     {&AllowList{Sources: []SetSource{StaticSet{netset.New(netip.MustParsePrefix("192.0.2.0/24"))}}}},
		StageDeny:      {&DenyList{Sources: []SetSource{StaticSet{deny}}}},
		StageRateLimit: {&RateLimit{Key: KeyAddress, Limiter: l}, &RateLimit{Key: KeyPrefix, Limiter: l}},
	}, nil)
	reqs := make([]Request, 10_000)
	for i := range reqs {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		reqs[i] = Request{Addr: a, Prefix: netip.PrefixFrom(a, 24).Masked(), Path: "/"}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := &reqs[i%len(reqs)]
		r.Now = int64(i) * 1000
		if v := c.Decide(r); v.Action != Pass {
			b.Fatal(v)
		}
	}
}

// BenchmarkDecideDeny measures the reject path: a denied client.
func BenchmarkDecideDeny(b *testing.B) {
	c := NewChain(map[Stage][]Filter{StageDeny: {&DenyList{Sources: []SetSource{StaticSet{netset.New(netip.MustParsePrefix("198.51.100.0/24"))}}}}}, nil)
	r := req("198.51.100.7", 0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if v := c.Decide(r); v.Action != Block {
			b.Fatal(v)
		}
	}
}
