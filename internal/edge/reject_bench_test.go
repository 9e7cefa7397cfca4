package edge

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/clientip"
	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/netset"
	"github.com/portcullis/portcullis/internal/stats"
)

// deniedClient is the address the reject-path tests and benchmarks deny;
// it arrives in X-Forwarded-For from trustedPeer, as in bench/profile.sh.
const (
	deniedClient = "198.51.100.7"
	trustedPeer  = "127.0.0.1"
)

// countingObserver counts the accounting records it receives and keeps
// the last one's verdict and status (a copy: the record is pooled).
type countingObserver struct {
	n       int
	verdict uint8
	status  int
}

func (o *countingObserver) ObserveRequest(r *stats.Request) {
	o.n++
	o.verdict, o.status = r.Verdict, r.Status
}

// newRejectHandler returns a handler whose one site denies deniedClient
// (a static deny list, as `--deny` builds) behind a trusted proxy, logs
// shield responses through a sampler, and whose origin fails the test if
// it is ever reached.
func newRejectHandler(tb testing.TB, obs Observer, log *slog.Logger) *Handler {
	tb.Helper()
	res, err := clientip.New(clientip.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix(trustedPeer + "/32")}})
	if err != nil {
		tb.Fatal(err)
	}
	deny := &filter.DenyList{ID: "deny", Sources: []filter.SetSource{filter.StaticSet{S: netset.New(netip.MustParsePrefix(deniedClient + "/32"))}}}
	chain := filter.NewChain(map[filter.Stage][]filter.Filter{filter.StageDeny: {deny}}, filter.NewSampler(log, 50, 1000))
	origin := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { tb.Error("a denied request reached the origin") })
	site := &Site{Name: "t", Chain: chain, Origin: origin, MaxBodyBytes: 10 << 20}
	rt := &Runtime{Sites: []*Site{site}, Default: site, Resolver: res, Limits: RequestLimits{WriteIdleTimeout: 30 * time.Second}}
	return NewHandler(rt, obs, log)
}

// newDeniedRequest is a bodiless GET from deniedClient through trustedPeer.
func newDeniedRequest(accept string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://t/", nil)
	r.RemoteAddr = trustedPeer + ":40000"
	r.Header.Set("X-Forwarded-For", deniedClient)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	return r
}

// TestRejectPath checks the shield's own answer to a denied client, in
// each body format: 403, the reason and the request id in a header and
// the body, Cache-Control: no-store, an exact Content-Length, one
// accounting record with the verdict, and no origin round trip.
func TestRejectPath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		accept string
		ctype  string
	}{
		{name: "text", accept: "", ctype: "text/plain"},
		{name: "html", accept: "text/html,application/xhtml+xml", ctype: "text/html"},
		{name: "json", accept: "application/json", ctype: "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &countingObserver{}
			h := newRejectHandler(t, obs, slog.New(slog.DiscardHandler))
			ids := map[string]bool{}
			for i := range 3 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, newDeniedRequest(tc.accept))
				if rec.Code != http.StatusForbidden {
					t.Fatalf("status %d, want 403", rec.Code)
				}
				hd := rec.Header()
				id := hd.Get("X-Request-Id")
				if id == "" || ids[id] || len(hd["X-Request-Id"]) != 1 {
					t.Fatalf("request %d: X-Request-Id %q (seen before: %v)", i, hd["X-Request-Id"], ids[id])
				}
				ids[id] = true
				body := rec.Body.String()
				if !strings.Contains(body, id) || !strings.Contains(body, "access from your network is blocked") {
					t.Errorf("body does not name the request id %s and the reason: %q", id, body)
				}
				if cl := hd.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
					t.Errorf("Content-Length %q, body %d bytes", cl, len(body))
				}
				if !strings.HasPrefix(hd.Get("Content-Type"), tc.ctype) || hd.Get("Cache-Control") != "no-store" {
					t.Errorf("headers %v", hd)
				}
				if obs.n != i+1 || obs.verdict != uint8(filter.Block) || obs.status != http.StatusForbidden {
					t.Errorf("accounting: %d records, last verdict %d status %d", obs.n, obs.verdict, obs.status)
				}
			}
		})
	}
}

// BenchmarkRejectPath is the whole edge request path for a denied client
// (bench/profile.sh deny, in process): client identity through a trusted
// proxy, the chain's deny verdict, the shield's 403 written through the
// edge's response writer (on its HTTP/1 deadline path), the sampled log
// and accounting. The response writer is allocation-free: the figures are
// the shield's own work on top of net/http's.
func BenchmarkRejectPath(b *testing.B) {
	for _, tc := range []struct {
		name   string
		accept string
	}{
		{name: "text", accept: ""},
		{name: "html", accept: "text/html,application/xhtml+xml"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newRejectHandler(b, &countingObserver{}, slog.New(slog.DiscardHandler))
			r := newDeniedRequest(tc.accept)
			w := &h1Writer{deadlineWriter{nopWriter: nopWriter{h: http.Header{}}}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}
