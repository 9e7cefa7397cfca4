package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCriticalGETRetriedOnceAfterOrigin503 checks the retry for known-good
// clients: an overloaded origin's 503 to a critical GET is tried once
// more; a normal GET gets the 503, and a POST is never repeated (a form is
// forwarded whole once or refused).
func TestCriticalGETRetriedOnceAfterOrigin503(t *testing.T) {
	var calls atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		io.Copy(io.Discard, r.Body)
		if n%2 == 1 { // every first attempt finds the origin overloaded
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "busy")
			return
		}
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	u, _ := url.Parse(origin.URL)
	p, err := NewPool(PoolConfig{Site: "www", Origins: []*url.URL{u}, MaxConcurrency: 8, Registerer: prometheus.NewRegistry()}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tests := []struct {
		name       string
		method     string
		critical   bool
		wantStatus int
		wantCalls  int64
	}{
		{name: "critical GET is retried", method: "GET", critical: true, wantStatus: 200, wantCalls: 2},
		{name: "normal GET is not", method: "GET", wantStatus: 503, wantCalls: 1},
		{name: "critical POST is never repeated", method: "POST", critical: true, wantStatus: 503, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader("amount=10")
			}
			r := httptest.NewRequest(tc.method, "http://shield/x", body)
			if tc.critical {
				r = r.WithContext(WithPriority(r.Context(), Critical))
			}
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			if w.Code != tc.wantStatus || calls.Load() != tc.wantCalls {
				t.Fatalf("status %d after %d origin calls, want %d after %d (body %q)", w.Code, calls.Load(), tc.wantStatus, tc.wantCalls, w.Body.String())
			}
		})
	}
}
