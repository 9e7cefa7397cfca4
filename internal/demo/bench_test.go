package demo

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchServe runs one request through the site's handler (no network).
func benchServe(b *testing.B, method, path string, body func() *bytes.Reader, size int64) {
	h := NewSite(Options{Logger: slog.New(slog.DiscardHandler)}).Handler()
	if size > 0 {
		b.SetBytes(size)
	}
	b.ReportAllocs()
	for b.Loop() {
		var req *http.Request
		if body != nil {
			req = httptest.NewRequest(method, path, body())
		} else {
			req = httptest.NewRequest(method, path, nil)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkHome(b *testing.B)   { benchServe(b, "GET", "/", nil, 0) }
func BenchmarkSearch(b *testing.B) { benchServe(b, "GET", "/search?q=harbour", nil, 0) }
func BenchmarkFeed(b *testing.B)   { benchServe(b, "GET", "/feed.xml", nil, 0) }

func BenchmarkUpload1MiB(b *testing.B) {
	buf := make([]byte, 1<<20)
	_, _ = (&patternReader{n: int64(len(buf))}).Read(buf)
	benchServe(b, "POST", "/upload", func() *bytes.Reader { return bytes.NewReader(buf) }, int64(len(buf)))
}
