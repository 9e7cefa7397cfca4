package app

import (
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"testing"
)

// TestEarlyHintsKeepRequestID: an origin's 103 Early Hints reach the
// client, and the final response still carries the shield's request id
// (httputil.ReverseProxy clears the response headers after a 1xx). The
// request carries a session cookie: anonymous GETs take the micro-cache
// path, which does not relay informational responses.
func TestEarlyHintsKeepRequestID(t *testing.T) {
	o := newOrigin(t)
	o.handle("/hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Write([]byte("page"))
	})
	s := startShield(t, o, nil)
	tests := []struct {
		name   string
		client *http.Client
		url    string
	}{
		{name: "HTTP/1.1", client: clientFrom(t, "127.0.0.1"), url: "http://" + s.Addr + "/hints"},
		{name: "HTTP/2 cleartext", client: h2cClientFrom(t, "127.0.0.1"), url: "http://" + s.Addr + "/hints"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hints []int
			var link string
			ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints = append(hints, code)
				link = h.Get("Link")
				return nil
			}})
			req, _ := http.NewRequestWithContext(ctx, "GET", tc.url, nil)
			req.Header.Set("Cookie", "session=member-1")
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if len(hints) != 1 || hints[0] != http.StatusEarlyHints || link != "</app.css>; rel=preload" {
				t.Errorf("informational responses seen: %v, Link %q", hints, link)
			}
			if id := resp.Header.Get("X-Request-Id"); id == "" {
				t.Errorf("final response after a 103 has no X-Request-Id; headers %v", resp.Header)
			}
		})
	}
}
