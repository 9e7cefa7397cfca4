package edge

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis/portcullis/internal/clientip"
	"github.com/portcullis/portcullis/internal/filter"
)

// nopWriter is an allocation-free http.ResponseWriter.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// rewindBody is a request body the benchmark rewinds (a pointer, so that
// storing it in r.Body allocates nothing).
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// drainOrigin reads and discards the body, as an origin round trip would.
var drainOrigin = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
	}
})

func newBodyHandler(tb testing.TB, buf *BodyBuffer, routes ...Route) *Handler {
	tb.Helper()
	res, err := clientip.New(clientip.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	site := &Site{Name: "t", Chain: filter.NewChain(nil, nil), Origin: drainOrigin, MaxBodyBytes: 10 << 20, Routes: routes}
	rt := &Runtime{Sites: []*Site{site}, Default: site, Resolver: res, Buffer: buf}
	return NewHandler(rt, nil, slog.New(slog.DiscardHandler))
}

// TestBufferingAddsNoAllocationWithoutBody checks that turning buffering on
// costs a bodiless request (GET, HEAD, most of a flood) no allocation: the
// whole body path is skipped.
func TestBufferingAddsNoAllocationWithoutBody(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "http://t/page", nil)
	w := &nopWriter{h: http.Header{}}
	allocs := map[bool]float64{}
	for _, on := range []bool{false, true} {
		var buf *BodyBuffer
		if on {
			buf = newTestBuffer(t, 1<<20, 64<<20, true, nil)
		}
		h := newBodyHandler(t, buf)
		allocs[on] = testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) })
	}
	if allocs[true] != allocs[false] {
		t.Fatalf("a bodiless request allocates %v times with buffering on, %v with it off", allocs[true], allocs[false])
	}
}

// BenchmarkHandlerBody is the whole edge request path for a bodiless GET
// and a 2 KiB form, buffered and streamed (route opt-out), into an origin
// handler that drains the body.
func BenchmarkHandlerBody(b *testing.B) {
	form := pattern(2 << 10)
	for _, tc := range []struct {
		name   string
		method string
		body   []byte
		path   string
	}{
		{"GET_no_body", http.MethodGet, nil, "/page"},
		{"POST_2KiB_buffered", http.MethodPost, form, "/form"},
		{"POST_2KiB_streamed", http.MethodPost, form, "/stream/form"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newBodyHandler(b, newTestBuffer(b, 1<<20, 64<<20, true, nil), Route{Prefix: "/stream", Stream: true})
			req := httptest.NewRequest(tc.method, "http://t"+tc.path, nil)
			w := &nopWriter{h: http.Header{}}
			body := &rewindBody{}
			b.ReportAllocs()
			for b.Loop() {
				if tc.body != nil {
					body.Reset(tc.body)
					req.Body, req.ContentLength = body, int64(len(tc.body))
				}
				h.ServeHTTP(w, req)
			}
		})
	}
}
