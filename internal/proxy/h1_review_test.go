package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Review tests of the synchronous HTTP/1.1 round tripper (h1.go) against
// origins that frame their responses in every way HTTP/1 allows.

// scriptedOrigin is a raw loopback origin: for the n-th request it
// receives (counted from 0 across all its connections) it writes
// reply(n, method) and, when the reply asks for it, closes the connection.
type scriptedOrigin struct {
	ln       net.Listener
	accepted atomic.Int64
	requests atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

type scriptedReply struct {
	text  string
	close bool
}

func newScriptedOrigin(t *testing.T, reply func(req int, method string) scriptedReply) *scriptedOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &scriptedOrigin{ln: ln}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.mu.Lock()
			o.conns = append(o.conns, c)
			o.mu.Unlock()
			o.accepted.Add(1)
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					method, _, _ := strings.Cut(line, " ")
					for {
						l, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if l == "\r\n" {
							break
						}
					}
					r := reply(int(o.requests.Add(1)-1), method)
					if _, err := io.WriteString(c, r.text); err != nil || r.close {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		o.mu.Lock()
		for _, c := range o.conns {
			c.Close()
		}
		o.mu.Unlock()
		o.wg.Wait()
	})
	return o
}

func (o *scriptedOrigin) url() string { return "http://" + o.ln.Addr().String() + "/" }

const goodReply = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"

// TestReviewH1ResponseFraming: each way an origin may frame a response
// (HTTP/1.0, read until close, chunked with trailers, HEAD with a
// Content-Length, 1xx before the answer) is read whole, and its
// connection is pooled exactly when it can carry another exchange; the
// next GET gets its own answer.
func TestReviewH1ResponseFraming(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		first       string // the origin's answer to the first request
		close       bool   // the origin closes after it
		wantBody    string
		wantTrailer string // X-Sum after the body
		wantConns   int64  // connections the origin accepted for both requests
	}{
		{name: "HTTP/1.0 without keep-alive: body until close, not pooled", method: "GET",
			first: "HTTP/1.0 200 OK\r\n\r\nold body", close: true, wantBody: "old body", wantConns: 2},
		{name: "HTTP/1.0 with keep-alive and a length: pooled", method: "GET",
			first: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", wantBody: "ok", wantConns: 1},
		{name: "HTTP/1.1 without a length: body until close, not pooled", method: "GET",
			first: "HTTP/1.1 200 OK\r\n\r\nuntil close", close: true, wantBody: "until close", wantConns: 2},
		{name: "chunked with a trailer: trailer delivered, pooled", method: "GET",
			first:    "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 7\r\n\r\n",
			wantBody: "abcde", wantTrailer: "7", wantConns: 1},
		{name: "HEAD with a Content-Length and no body: pooled", method: "HEAD",
			first: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", wantConns: 1},
		{name: "a stray 100 Continue before a GET's answer is skipped", method: "GET",
			first: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", wantBody: "ok", wantConns: 1},
		{name: "five 103 Early Hints then the answer", method: "GET",
			first: strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", max1xx) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", wantBody: "ok", wantConns: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := firstThenGood(t, tc.first, tc.close)
			tr := newTestH1(time.Second)
			defer tr.Close()
			resp, body, err := h1Get(t, tr, context.Background(), tc.method, o.url(), tc.method == "GET")
			if err != nil || resp.StatusCode != 200 || body != tc.wantBody {
				t.Fatalf("first %s: %v %q, want 200 %q", tc.method, err, body, tc.wantBody)
			}
			if got := resp.Trailer.Get("X-Sum"); got != tc.wantTrailer {
				t.Errorf("trailer X-Sum = %q, want %q", got, tc.wantTrailer)
			}
			resp, body, err = h1Get(t, tr, context.Background(), "GET", o.url(), true)
			if err != nil || resp.StatusCode != 200 || body != "good" {
				t.Fatalf("second GET: %v %q, want 200 \"good\"", err, body)
			}
			if got := o.accepted.Load(); got != tc.wantConns {
				t.Errorf("origin accepted %d connections, want %d", got, tc.wantConns)
			}
		})
	}
}

// TestReviewH1IdlePoolAllStale: when the origin closes all its idle
// connections (keep-alive timeout, restart), the next GET is answered —
// not sent to one dead pooled connection after another.
func TestReviewH1IdlePoolAllStale(t *testing.T) {
	var hits atomic.Int64
	both := make(chan struct{})
	o := newH1Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 2 {
			close(both)
		}
		if r.URL.Path == "/pair" {
			<-both
		}
		io.WriteString(w, "ok")
	}))
	tr := newTestH1(0)
	defer tr.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { h1Get(t, tr, context.Background(), "GET", o.URL+"/pair", true) })
	}
	wg.Wait() // two pooled connections
	o.CloseClientConnections()
	for i := range 3 {
		if _, body, err := h1Get(t, tr, context.Background(), "GET", o.URL+"/", true); err != nil || body != "ok" {
			t.Fatalf("GET %d after the origin closed its idle connections: %q %v", i, body, err)
		}
	}
}

// TestReviewH1BytesBeyondResponse: bytes an origin sends beyond a
// response (a body on a 204/304/HEAD, more than Content-Length, a 408 on
// the idle connection) are never read as the next request's answer.
func TestReviewH1BytesBeyondResponse(t *testing.T) {
	const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"
	tests := []struct {
		name, method, first string
		close               bool
	}{
		{name: "204 with a body", method: "GET", first: "HTTP/1.1 204 No Content\r\n\r\n" + evil},
		{name: "304 with a body", method: "GET", first: "HTTP/1.1 304 Not Modified\r\nContent-Length: 39\r\n\r\n" + evil},
		{name: "HEAD answered with a body", method: "HEAD", first: "HTTP/1.1 200 OK\r\nContent-Length: 39\r\n\r\n" + evil},
		{name: "body longer than Content-Length", method: "GET", first: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + evil},
		{name: "408 on the idle connection", method: "GET", close: true, first: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" +
			"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := firstThenGood(t, tc.first, tc.close)
			tr := newTestH1(time.Second)
			defer tr.Close()
			h1Get(t, tr, context.Background(), tc.method, o.url(), tc.method == "GET")
			resp, body, err := h1Get(t, tr, context.Background(), "GET", o.url(), true)
			if err != nil || resp.StatusCode != 200 || body != "good" {
				t.Fatalf("second GET: %v %q %v, want 200 \"good\"", resp != nil && resp.StatusCode == 200, body, err)
			}
		})
	}
}

// deadlineConn reports when the client-context hook set its past deadline.
type deadlineConn struct {
	net.Conn
	once    sync.Once
	expired chan struct{}
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	err := c.Conn.SetDeadline(t)
	if t.Equal(aLongTimeAgo) {
		c.once.Do(func() { close(c.expired) })
	}
	return err
}

// TestReviewH1CancelBeforeHeadDone: a client that leaves while the
// response head is being read never leaves the body read blocked (the
// header deadline being cleared must not undo the cancel's deadline).
func TestReviewH1CancelBeforeHeadDone(t *testing.T) {
	o := newScriptedOrigin(t, func(int, string) scriptedReply {
		return scriptedReply{text: "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"}
	})
	expired := make(chan struct{})
	d := &net.Dialer{}
	dial := func(ctx context.Context, n, a string) (net.Conn, error) {
		c, err := d.DialContext(ctx, n, a)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, expired: expired}, nil
	}
	tr := newH1Transport(&http.Transport{IdleConnTimeout: 90 * time.Second, DialContext: dial}, dial, 8, time.Second)
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error {
		cancel()
		<-expired
		return nil
	}})
	req, _ := http.NewRequestWithContext(ctx, "GET", o.url(), nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return // the cancel was seen in time: nothing to block
	}
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(resp.Body); done <- err }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		resp.Body.Close()
		t.Fatal("body read still blocked 3 s after the client's context ended")
	}
}

// firstThenGood is a scripted origin that answers its first request with
// first (closing the connection after it when close is set) and every
// later one with goodReply.
func firstThenGood(t *testing.T, first string, close bool) *scriptedOrigin {
	return newScriptedOrigin(t, func(req int, _ string) scriptedReply {
		if req == 0 {
			return scriptedReply{text: first, close: close}
		}
		return scriptedReply{text: goodReply}
	})
}
