package proxy

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// Second review of the synchronous HTTP/1.1 round tripper (h1.go): the
// stale-reuse retry is bounded, and a pool whose every idle connection
// the origin dropped at once (a restart) serves a concurrent burst.

// TestReview2H1StaleRetryBounded: a reused connection that fails before
// any byte arrives is retried once on a new connection and never more;
// an origin that keeps hanging up yields an error after exactly two
// connections, and the next good answer is served.
func TestReview2H1StaleRetryBounded(t *testing.T) {
	tests := []struct {
		name         string
		failFrom     int  // requests with this index and later (until healFrom) get no answer
		healFrom     int  // from this request on the origin answers again
		wantErr      bool // the second GET fails
		wantAccepted int64
	}{
		{name: "origin hangs up on reuse and on the retry", failFrom: 1, healFrom: 3, wantErr: true, wantAccepted: 2},
		{name: "origin hangs up on reuse only", failFrom: 1, healFrom: 2, wantAccepted: 2},
		{name: "origin healthy", failFrom: 1 << 30, healFrom: 1 << 30, wantAccepted: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newScriptedOrigin(t, func(req int, _ string) scriptedReply {
				if req >= tc.failFrom && req < tc.healFrom {
					return scriptedReply{close: true}
				}
				return scriptedReply{text: goodReply}
			})
			tr := newTestH1(0)
			defer tr.Close()
			if _, body, err := h1Get(t, tr, context.Background(), "GET", o.url(), true); err != nil || body != "good" {
				t.Fatalf("first GET: %q %v", body, err)
			}
			_, body, err := h1Get(t, tr, context.Background(), "GET", o.url(), true)
			if (err != nil) != tc.wantErr {
				t.Fatalf("second GET: %q, err %v; want error %v", body, err, tc.wantErr)
			}
			if got := o.accepted.Load(); got != tc.wantAccepted {
				t.Errorf("origin accepted %d connections, want %d", got, tc.wantAccepted)
			}
			if _, body, err := h1Get(t, tr, context.Background(), "GET", o.url(), true); err != nil || body != "good" {
				t.Fatalf("GET after: %q %v", body, err)
			}
		})
	}
}

// TestReview2H1RestartDropsWholePool: n connections go idle, the origin
// closes them all (a restart or keep-alive timeout), and n concurrent
// GETs all succeed, each dialling at most one new connection.
func TestReview2H1RestartDropsWholePool(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{name: "one idle connection", n: 1},
		{name: "eight idle connections", n: 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var arrived sync.WaitGroup
			arrived.Add(tc.n)
			release := make(chan struct{})
			var first atomic.Bool
			first.Store(true)
			var inBurst atomic.Int64
			o := newH1Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if first.Load() && inBurst.Add(1) <= int64(tc.n) {
					arrived.Done()
					<-release // hold all n so that n connections are open at once
				}
				io.WriteString(w, "ok")
			}))
			tr := newTestH1(0)
			defer tr.Close()
			burst := func() []error {
				errs := make([]error, tc.n)
				var wg sync.WaitGroup
				for i := range tc.n {
					wg.Go(func() {
						_, body, err := h1Get(t, tr, context.Background(), "GET", o.URL, true)
						if err == nil && body != "ok" {
							err = io.ErrUnexpectedEOF
						}
						errs[i] = err
					})
				}
				if first.Load() {
					arrived.Wait()
					close(release)
				}
				wg.Wait()
				return errs
			}
			for i, err := range burst() {
				if err != nil {
					t.Fatalf("warm-up GET %d: %v", i, err)
				}
			}
			first.Store(false)
			if got := tr.dials.Load(); got != int64(tc.n) {
				t.Fatalf("warm-up dialled %d connections, want %d", got, tc.n)
			}
			o.CloseClientConnections()
			for i, err := range burst() {
				if err != nil {
					t.Errorf("GET %d after the origin dropped the pool: %v", i, err)
				}
			}
			if got := tr.dials.Load(); got > int64(2*tc.n) {
				t.Errorf("dials = %d after the drop, want at most %d (one new connection per GET)", got, 2*tc.n)
			}
		})
	}
}
