package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// h1Origin is a loopback origin that counts the connections it accepted.
type h1Origin struct {
	*httptest.Server
	conns atomic.Int64
}

func newH1Origin(t *testing.T, h http.Handler) *h1Origin {
	t.Helper()
	o := &h1Origin{Server: httptest.NewUnstartedServer(h)}
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}
	o.Start()
	t.Cleanup(o.Close)
	return o
}

func newTestH1(respHeaderTimeout time.Duration) *h1Transport {
	d := &net.Dialer{Timeout: 2 * time.Second}
	return newH1Transport(&http.Transport{IdleConnTimeout: 90 * time.Second, DialContext: d.DialContext}, d.DialContext, 8, respHeaderTimeout)
}

func h1Get(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url string, readAll bool) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	var body string
	if readAll {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading body: %v", method, url, err)
		}
		body = string(b)
	}
	resp.Body.Close()
	return resp, body, nil
}

// TestH1KeepAlive: exchanges that end cleanly share one origin connection;
// those that cannot (unread body, Connection: close) never return theirs
// to the pool.
func TestH1KeepAlive(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		io.WriteString(w, "b")
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/notmod", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	tests := []struct {
		name     string
		method   string
		path     string
		readAll  bool
		want     string // body, when readAll
		wantConn int64  // origin connections after 5 exchanges
	}{
		{name: "content-length body read to the end", method: "GET", path: "/page", readAll: true, want: "hello", wantConn: 1},
		{name: "chunked body read to the end", method: "GET", path: "/chunked", readAll: true, want: "ab", wantConn: 1},
		{name: "HEAD has no body", method: "HEAD", path: "/page", wantConn: 1},
		{name: "204 has no body", method: "GET", path: "/empty", wantConn: 1},
		{name: "304 has no body", method: "GET", path: "/notmod", wantConn: 1},
		{name: "body closed unread is not pooled", method: "GET", path: "/big", wantConn: 5},
		{name: "origin says Connection: close", method: "GET", path: "/close", readAll: true, want: "bye", wantConn: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newH1Origin(t, mux)
			tr := newTestH1(0)
			defer tr.Close()
			for i := range 5 {
				resp, body, err := h1Get(t, tr, context.Background(), tc.method, o.URL+tc.path, tc.readAll)
				if err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
				if resp.StatusCode >= 400 {
					t.Fatalf("exchange %d: status %d", i, resp.StatusCode)
				}
				if tc.readAll && body != tc.want {
					t.Fatalf("exchange %d: body %q, want %q", i, body, tc.want)
				}
			}
			if got := o.conns.Load(); got != tc.wantConn {
				t.Errorf("origin accepted %d connections, want %d", got, tc.wantConn)
			}
			if got := tr.dials.Load(); got != tc.wantConn {
				t.Errorf("transport dialled %d times, want %d", got, tc.wantConn)
			}
		})
	}
}

// TestH1RetriesIdleClosedByOrigin: a GET that finds its pooled connection
// closed by the origin (keep-alive timeout) is sent again on a new one,
// once; a connection that fails on its first exchange is not retried.
func TestH1RetriesIdleClosedByOrigin(t *testing.T) {
	var hits atomic.Int64
	o := newH1Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	tr := newTestH1(0)
	defer tr.Close()
	if _, body, err := h1Get(t, tr, context.Background(), "GET", o.URL, true); err != nil || body != "ok" {
		t.Fatalf("first GET: %q %v", body, err)
	}
	o.CloseClientConnections() // the origin drops the idle connection
	if _, body, err := h1Get(t, tr, context.Background(), "GET", o.URL, true); err != nil || body != "ok" {
		t.Fatalf("GET after the origin closed the idle connection: %q %v", body, err)
	}
	if got := tr.dials.Load(); got != 2 {
		t.Errorf("dials = %d, want 2 (one retry on a new connection)", got)
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("origin served %d requests, want 2", got)
	}

	// A fresh connection that the origin closes without an answer is an
	// origin failure, not a stale pool entry: no second attempt.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	}()
	if _, _, err := h1Get(t, tr, context.Background(), "GET", "http://"+ln.Addr().String()+"/", true); err == nil {
		t.Fatal("GET to an origin that hangs up: no error")
	}
	if got := accepted.Load(); got != 1 {
		t.Errorf("origin accepted %d connections, want 1 (no retry on a fresh connection)", got)
	}
}

// TestH1Streams: a streamed response (server-sent events) reaches the
// caller as the origin flushes it, not when it ends (case F20's path).
func TestH1Streams(t *testing.T) {
	release := make(chan struct{})
	o := newH1Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "data: two\n\n")
	}))
	tr := newTestH1(time.Second)
	defer tr.Close()
	req, _ := http.NewRequest("GET", o.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event before the origin finished: %q %v", line, err)
	}
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest of the stream: %q %v", rest, err)
	}
}

// TestH1Timeouts: the response-header timeout and the client's context
// both end a wait for a silent origin, without a retry, and the
// connection is not reused.
func TestH1Timeouts(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  bool
		check   func(err error) bool
	}{
		{name: "response header timeout", timeout: 300 * time.Millisecond, check: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) && isTimeout(err) }},
		{name: "client leaves", cancel: true, check: func(err error) bool { return errors.Is(err, context.Canceled) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			arrived := make(chan struct{}, 4)
			o := newH1Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) == 1 {
					io.WriteString(w, "warm")
					return
				}
				arrived <- struct{}{}
				<-r.Context().Done() // silent until the shield hangs up
			}))
			tr := newTestH1(tc.timeout)
			defer tr.Close()
			if _, _, err := h1Get(t, tr, context.Background(), "GET", o.URL, true); err != nil {
				t.Fatal(err) // a pooled connection, so that a retry would be possible
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				go func() { <-arrived; cancel() }()
			}
			_, _, err := h1Get(t, tr, ctx, "GET", o.URL, true)
			if err == nil || !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
			if got := hits.Load(); got != 2 {
				t.Errorf("origin saw %d requests, want 2 (no retry after a timeout or a cancel)", got)
			}
			if n := len(tr.idle[strings.TrimPrefix(o.URL, "http://")]); n != 0 {
				t.Errorf("%d connections pooled after a failed exchange, want 0", n)
			}
		})
	}
}

// TestH1EarlyHints: informational responses are skipped on the way to the
// final one and passed to the client trace (ReverseProxy forwards them).
func TestH1EarlyHints(t *testing.T) {
	o := newH1Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "page")
	}))
	tr := newTestH1(time.Second)
	defer tr.Close()
	var got []int
	var link string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, code)
		link = h.Get("Link")
		return nil
	}})
	resp, body, err := h1Get(t, tr, ctx, "GET", o.URL, true)
	if err != nil || resp.StatusCode != 200 || body != "page" {
		t.Fatalf("final response: %v %v %q", resp, err, body)
	}
	if len(got) != 1 || got[0] != http.StatusEarlyHints || link != "</app.css>; rel=preload" {
		t.Errorf("1xx seen by the trace: %v %q", got, link)
	}
}

// TestH1Fallback: requests the synchronous path does not take (a body, an
// upgrade, Expect) still reach the origin, through http.Transport.
func TestH1Fallback(t *testing.T) {
	o := newH1Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+":"+string(b))
	}))
	tests := []struct {
		name   string
		method string
		body   string
		header map[string]string
		want   string
	}{
		{name: "POST with a body", method: "POST", body: "a=1", want: "POST:a=1"},
		{name: "PUT", method: "PUT", body: "x", want: "PUT:x"},
		{name: "DELETE without a body", method: "DELETE", want: "DELETE:"},
		{name: "Expect 100-continue", method: "POST", body: "b=2", header: map[string]string{"Expect": "100-continue"}, want: "POST:b=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestH1(time.Second)
			defer tr.Close()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, o.URL, body)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != tc.want {
				t.Errorf("body %q, want %q", b, tc.want)
			}
			if d := tr.dials.Load(); d != 0 {
				t.Errorf("synchronous path dialled %d times for a fallback request", d)
			}
		})
	}
}

// TestH1BadOrigin: malformed responses are errors, never a panic, and
// their connection is not reused.
func TestH1BadOrigin(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		wantErr error // when set, the error must wrap it
	}{
		{name: "not HTTP", reply: "SSH-2.0-OpenSSH\r\n\r\n"},
		{name: "bad status line", reply: "HTTP/1.1 abc OK\r\n\r\n"},
		{name: "bad content length", reply: "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"},
		{name: "too many 1xx", reply: strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 8) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{name: "endless headers", reply: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("a", 1000)+"\r\n", 1100), wantErr: errHeadTooLarge},
		{name: "unasked 101", reply: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				io.WriteString(c, tc.reply)
				io.Copy(io.Discard, c)
			}()
			tr := newTestH1(time.Second)
			defer tr.Close()
			resp, _, err := h1Get(t, tr, context.Background(), "GET", "http://"+ln.Addr().String()+"/", true)
			if err == nil {
				t.Fatalf("no error; status %d", resp.StatusCode)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if n := len(tr.idle[ln.Addr().String()]); n != 0 {
				t.Errorf("%d connections pooled after a bad response", n)
			}
		})
	}
}

// TestH1CloseStopsPooling: a connection whose exchange ends after Close is
// closed, not kept (a reloaded configuration's pool lets go of its origin
// connections).
func TestH1CloseStopsPooling(t *testing.T) {
	o := newH1Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	tr := newTestH1(time.Second)
	req, _ := http.NewRequest("GET", o.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := len(tr.idle); n != 0 {
		t.Errorf("idle map has %d origins after Close", n)
	}
}

// TestH1ReaperClosesDeadIdle: idle connections the origin closed are
// closed by the reaper's check without waiting for traffic (their file
// descriptors are not held through a quiet spell); live ones stay.
func TestH1ReaperClosesDeadIdle(t *testing.T) {
	o := newH1Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	tr := newTestH1(time.Second)
	defer tr.Close()
	if _, _, err := h1Get(t, tr, context.Background(), "GET", o.URL, true); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(o.URL, "http://")
	if !tr.reapOnce() || len(tr.idle[addr]) != 1 {
		t.Fatalf("a live idle connection was reaped: %d left", len(tr.idle[addr]))
	}
	o.CloseClientConnections()
	// The origin's FIN arrives asynchronously: check until it has.
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for tr.reapOnce() {
		select {
		case <-deadline:
			t.Fatal("the dead idle connection is still pooled after 5 s")
		case <-tick.C:
		}
	}
	if n := len(tr.idle); n != 0 {
		t.Errorf("%d origins with idle connections after the reap, want 0", n)
	}
}

// TestH1DefaultPort: an origin URL without a port is dialled on :80, as
// http.Transport does (an origin configured as http://10.0.0.5 works for
// every method, not only those that take the fallback).
func TestH1DefaultPort(t *testing.T) {
	tests := []struct{ name, url, want string }{
		{name: "http without port dials :80", url: "http://origin.invalid/", want: "origin.invalid:80"},
		{name: "explicit port kept", url: "http://origin.invalid:8081/", want: "origin.invalid:8081"},
		{name: "IPv6 without port", url: "http://[2001:db8::1]/", want: "[2001:db8::1]:80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				got = addr
				return nil, errors.New("no dial in test")
			}
			tr := newH1Transport(&http.Transport{IdleConnTimeout: time.Minute}, dial, 4, 0)
			defer tr.Close()
			req, _ := http.NewRequest("GET", tc.url, nil)
			if _, err := tr.RoundTrip(req); err == nil {
				t.Fatal("RoundTrip without a dial: no error")
			}
			if got != tc.want {
				t.Fatalf("dialled %q, want %q", got, tc.want)
			}
		})
	}
}
