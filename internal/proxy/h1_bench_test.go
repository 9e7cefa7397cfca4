package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkOriginRoundTrip compares the synchronous h1Transport with the
// http.Transport it falls back to, for the hot path's exchange: a bodiless
// GET to a loopback origin answering 1 KiB, read to the end, on
// keep-alive connections, from parallel callers. The origin (a net/http
// server in the same process) shares the CPU, so compare the two rows of
// one run, not absolute figures.
//
//	go test -run '^$' -bench OriginRoundTrip -benchtime 2s -count 3 ./internal/proxy/
func BenchmarkOriginRoundTrip(b *testing.B) {
	body := strings.Repeat("x", 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer srv.Close()
	d := &net.Dialer{Timeout: 2 * time.Second}
	fallback := func() *http.Transport {
		return &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	}
	for _, bc := range []struct {
		name string
		rt   func() (http.RoundTripper, func())
	}{
		{name: "h1Transport", rt: func() (http.RoundTripper, func()) {
			t := newH1Transport(fallback(), d.DialContext, 64, 0)
			return t, t.Close
		}},
		{name: "http.Transport", rt: func() (http.RoundTripper, func()) {
			t := fallback()
			return t, t.CloseIdleConnections
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rt, done := bc.rt()
			defer done()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 4096)
				for pb.Next() {
					req, _ := http.NewRequest("GET", srv.URL+"/", nil)
					resp, err := rt.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					for {
						if _, err := resp.Body.Read(buf); err != nil {
							break
						}
					}
					resp.Body.Close()
				}
			})
		})
	}
}
