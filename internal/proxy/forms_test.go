package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestNeverLoseAForm: a request body is forwarded once and whole, or the
// request is refused whole; an origin failing mid-body is never retried
// (issue 4 item 7).
func TestNeverLoseAForm(t *testing.T) {
	body := bytes.Repeat([]byte("donation=25&name=Ada&"), 20000) // ~420 KB
	sum := sha256.Sum256(body)
	tests := []struct {
		name       string
		method     string
		header     map[string]string
		failMid    bool
		wantStatus int
	}{
		{name: "POST arrives whole", method: http.MethodPost, wantStatus: http.StatusOK},
		{name: "PUT arrives whole", method: http.MethodPut, wantStatus: http.StatusOK},
		{name: "POST cut by the origin is not retried", method: http.MethodPost, failMid: true, wantStatus: http.StatusBadGateway},
		{name: "PATCH cut by the origin is not retried", method: http.MethodPatch, failMid: true, wantStatus: http.StatusBadGateway},
		{name: "POST with Idempotency-Key cut by the origin is not retried", method: http.MethodPost, header: map[string]string{"Idempotency-Key": "k1"}, failMid: true, wantStatus: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.failMid {
					io.CopyN(io.Discard, r.Body, 1000)
					hijackClose(w)
					return
				}
				b, _ := io.ReadAll(r.Body)
				s := sha256.Sum256(b)
				w.Write([]byte(hex.EncodeToString(s[:])))
			})
			s := newShield(t, PoolConfig{Cache: testCacheConfig(), Now: newClock().now}, org)
			for range 2 { // the second time on a reused connection
				req, _ := http.NewRequest(tt.method, s.srv.URL+"/donate", bytes.NewReader(body))
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				res, err := s.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != tt.wantStatus {
					t.Fatalf("status %d (%q), want %d", res.StatusCode, got, tt.wantStatus)
				}
				if tt.wantStatus == http.StatusOK && string(got) != hex.EncodeToString(sum[:]) {
					t.Fatalf("the origin received a different body (sha256 %s)", got)
				}
				if res.Header.Get(CacheHeader) != "" {
					t.Errorf("%s on a %s: %q", CacheHeader, tt.method, res.Header.Get(CacheHeader))
				}
			}
			if n := org.hits.Load(); n != 2 {
				t.Errorf("origin saw %d requests for 2 sent (a retry or a cached answer)", n)
			}
		})
	}
}

// TestFormRefusedWholeWhenSaturated: a POST that finds no origin slot is
// answered 503 + Retry-After before any of its body is forwarded.
func TestFormRefusedWholeWhenSaturated(t *testing.T) {
	g := newGatedOrigin(t)
	s := newShield(t, PoolConfig{MaxConcurrency: 1, QueueTimeout: 20 * time.Millisecond}, g.origin)
	held := s.async(t, "/a", nil)
	<-g.arrived
	res, err := s.srv.Client().Post(s.srv.URL+"/donate", "application/x-www-form-urlencoded", bytes.NewReader([]byte("amount=25")))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("status %d Retry-After %q, want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if got := g.requests(); len(got) != 1 {
		t.Errorf("origin saw %v; the refused POST must not reach it", got)
	}
	g.release("/a")
	<-held
}
