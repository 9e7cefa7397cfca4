package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestFillEndsWhenStreamingClientLeaves: on the cache path, a response
// that streams to its client alone (uncacheable, or of unknown length
// past streamAfter) stops being fetched when that client leaves — the
// origin request ends, freeing its connection and slot — while the
// response is a long poll or an endless event stream.
func TestFillEndsWhenStreamingClientLeaves(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
	}{
		{name: "uncacheable stream", header: map[string]string{"Cache-Control": "no-store", "Content-Type": "text/event-stream"}},
		{name: "cacheable, unknown length, turns into a stream", header: map[string]string{"Cache-Control": "public, max-age=60"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			originDone := make(chan struct{})
			o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				defer close(originDone)
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				io.WriteString(w, "data: first\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done() // nothing more until the shield hangs up
			})
			cfg := PoolConfig{Cache: testCacheConfig(), ResponseHeaderTimeout: time.Second}
			s := newShield(t, cfg, o)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.srv.URL+"/poll", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "data: first\n" {
				t.Fatalf("first event: %q %v", line, err)
			}
			cancel() // the client leaves
			resp.Body.Close()
			select {
			case <-originDone:
			case <-time.After(5 * time.Second):
				t.Fatal("the origin request still runs 5 s after its only client left")
			}
		})
	}
}
