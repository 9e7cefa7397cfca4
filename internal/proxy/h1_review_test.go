package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
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
			o := newScriptedOrigin(t, func(req int, method string) scriptedReply {
				if req == 0 {
					return scriptedReply{text: tc.first, close: tc.close}
				}
				return scriptedReply{text: goodReply}
			})
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
