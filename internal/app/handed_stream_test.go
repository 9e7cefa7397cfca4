package app

// HANDED cases on streaming through the running shield: F19 (trailers),
// F20 (SSE / NDJSON not held back), F21 (WebSocket upgrades through the
// whole request path).

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/portcullis/portcullis/internal/config"
)

func TestF19_Trailers(t *testing.T) {
	o := newOrigin(t)
	// Unannounced response trailers, as gRPC sends them: a streaming
	// answer flushed at once, or an empty text answer whose trailers are
	// all there is.
	o.handle("/grpc", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "ok")
	})
	o.handle("/empty", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "ok")
	})
	s := startShield(t, o, nil)

	t.Run("request trailers never reach the origin", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.2", s.Addr)
		fmt.Fprint(c, "POST /f19 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTrailer: X-Forwarded-For, Authorization, X-Real-IP\r\n\r\n"+
			"3\r\nabc\r\n0\r\nX-Forwarded-For: 10.0.0.1\r\nAuthorization: Bearer forged\r\nX-Real-IP: 10.0.0.1\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var rec *recordedRequest
		for _, r := range o.requests() {
			if r.RequestURI == "/f19" {
				rec = &r
			}
		}
		if rec == nil {
			t.Fatal("origin did not see the request")
		}
		sum := sha256.Sum256([]byte("abc"))
		if rec.BodyLen != 3 || rec.BodySHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("origin body: %d bytes sha256 %s, want \"abc\"", rec.BodyLen, rec.BodySHA256)
		}
		for _, name := range []string{"X-Forwarded-For", "Authorization", "X-Real-Ip"} {
			if v := rec.Trailer.Values(name); len(v) > 0 {
				t.Errorf("origin saw trailer %s: %q", name, v)
			}
		}
		if v := rec.Header.Values("Authorization"); len(v) > 0 {
			t.Errorf("origin saw Authorization %q", v)
		}
		if v := rec.Header.Values("Trailer"); len(v) > 0 {
			t.Errorf("origin saw Trailer announcement %q", v)
		}
		for _, name := range []string{"X-Forwarded-For", "X-Real-Ip"} {
			if v := rec.Header.Values(name); len(v) != 1 || v[0] != "127.0.0.2" {
				t.Errorf("origin saw %s %q, want [127.0.0.2]", name, v)
			}
		}
	})

	cases := []struct {
		name string
		path string
		h2   bool
	}{
		{name: "h2, streaming answer", path: "/grpc", h2: true},
		{name: "h2, empty answer", path: "/empty", h2: true},
		{name: "h1, streaming answer", path: "/grpc"},
		{name: "h1, empty answer", path: "/empty"},
	}
	for _, tc := range cases {
		t.Run("unannounced response trailers reach the client: "+tc.name, func(t *testing.T) {
			c := clientFrom(t, "127.0.0.3")
			if tc.h2 {
				c = h2cClientFrom(t, "127.0.0.3")
			}
			resp, err := c.Get(s.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || (tc.h2 != (resp.ProtoMajor == 2)) {
				t.Fatalf("status %d over %s", resp.StatusCode, resp.Proto)
			}
			if !tc.h2 && (len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked") {
				t.Errorf("h1 answer framed %q (Content-Length %d), want chunked so trailers can follow", resp.TransferEncoding, resp.ContentLength)
			}
			if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
				t.Errorf("trailer grpc-status %q, want \"0\" (trailers %v)", got, resp.Trailer)
			}
			if got := resp.Trailer.Get("Grpc-Message"); got != "ok" {
				t.Errorf("trailer grpc-message %q, want \"ok\"", got)
			}
		})
	}
}

// streamRoute answers with contentType, flushes the headers at once
// (reporting when on sent), waits gap, then writes n lines one interval
// apart, reporting each emission time on emitted.
func streamRoute(contentType string, gap, interval time.Duration, n int, line func(i int) string, sent, emitted chan<- time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		if rc.Flush() != nil {
			return
		}
		sent <- time.Now()
		tm := time.NewTimer(gap)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-r.Context().Done():
			return
		}
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for i := range n {
			if i > 0 {
				select {
				case <-tk.C:
				case <-r.Context().Done():
					return
				}
			}
			emitted <- time.Now()
			if _, err := io.WriteString(w, line(i)); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func TestF20_StreamingNotHeldBack(t *testing.T) {
	const timeout = time.Second
	const events = 5
	routes := []struct {
		path, contentType string
		line              func(i int) string
		sep               string // what ends one event on the wire
	}{
		{path: "/sse", contentType: "text/event-stream", line: func(i int) string { return fmt.Sprintf("data: %d\n\n", i) }, sep: "\n\n"},
		{path: "/ndjson", contentType: "application/x-ndjson", line: func(i int) string { return fmt.Sprintf("{\"n\":%d}\n", i) }, sep: "\n"},
	}
	o := newOrigin(t)
	protos := []string{"h1", "h2"}
	type timing struct{ sent, emitted chan time.Time }
	timings := map[string]timing{}
	for _, proto := range protos {
		for _, rt := range routes {
			tm := timing{sent: make(chan time.Time, 1), emitted: make(chan time.Time, events)}
			timings["/"+proto+rt.path] = tm
			// A silent gap longer than every timeout, then events.
			o.handle("/"+proto+rt.path, streamRoute(rt.contentType, timeout+timeout/2, 200*time.Millisecond, events, rt.line, tm.sent, tm.emitted))
		}
	}
	s := startShield(t, o, func(c *config.Config) {
		c.Limits.ReadHeaderTimeout = dur(timeout)
		c.Limits.IdleTimeout = dur(timeout)
		c.Limits.WriteIdleTimeout = dur(timeout)
		c.Limits.BodyIdleTimeout = dur(timeout)
	})
	for _, proto := range protos {
		for _, rt := range routes {
			path := "/" + proto + rt.path
			t.Run(proto+" "+rt.path, func(t *testing.T) {
				t.Parallel()
				c := clientFrom(t, "127.0.0.2")
				if proto == "h2" {
					c = h2cClientFrom(t, "127.0.0.2")
				}
				tm := timings[path]
				req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
				req.Header.Set("Accept-Encoding", "gzip")
				resp, err := c.Transport.RoundTrip(req) // not Client.Do: no transparent decompression
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				gotHeaders := time.Now()
				sent := <-tm.sent
				if d := gotHeaders.Sub(sent); d > 100*time.Millisecond {
					t.Errorf("headers reached the client %s after the origin flushed them, want ≤ 100ms", d)
				}
				if ce := resp.Header.Get("Content-Encoding"); ce != "" {
					t.Errorf("Content-Encoding %q: the shield must not compress (and buffer) streams", ce)
				}
				br := bufio.NewReader(resp.Body)
				for i := range events {
					var got strings.Builder
					for !strings.HasSuffix(got.String(), rt.sep) || got.Len() < len(rt.sep)+1 {
						b, err := br.ReadByte()
						if err != nil {
							t.Fatalf("event %d: stream cut after %q: %v", i, got.String(), err)
						}
						got.WriteByte(b)
					}
					arrived := time.Now()
					emitted := <-tm.emitted
					if got.String() != rt.line(i) {
						t.Errorf("event %d: %q, want %q", i, got.String(), rt.line(i))
					}
					if d := arrived.Sub(emitted); d > 200*time.Millisecond {
						t.Errorf("event %d arrived %s after the origin emitted it, want ≤ 200ms", i, d)
					}
					if br.Buffered() > 0 {
						t.Errorf("event %d arrived together with the next one (batched)", i)
					}
				}
				if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
					t.Errorf("stream end: %q, %v", rest, err)
				}
			})
		}
	}
}

// wsEcho is an origin WebSocket endpoint that echoes every message.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := context.Background()
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if c.Write(ctx, typ, b) != nil {
			return
		}
	}
}

// wsClient is an open WebSocket with a reader goroutine (needed for
// pings to see their pongs).
type wsClient struct {
	c    *websocket.Conn
	msgs chan string
}

func dialWS(t *testing.T, src, url string) (*wsClient, *http.Response, error) {
	t.Helper()
	tr := &http.Transport{DialContext: dialerFrom(src).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		return nil, resp, err
	}
	ws := &wsClient{c: c, msgs: make(chan string, 8)}
	go func() {
		defer close(ws.msgs)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			ws.msgs <- string(b)
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return ws, resp, nil
}

func (ws *wsClient) echo(t *testing.T, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	select {
	case got, ok := <-ws.msgs:
		if !ok || got != msg {
			t.Fatalf("echo of %q: %q (open %v)", msg, got, ok)
		}
	case <-ctx.Done():
		t.Fatalf("no echo of %q", msg)
	}
}

func TestF21_WebSocketThroughTheWholePath(t *testing.T) {
	const timeout = time.Second
	o := newOrigin(t)
	o.handle("/ws", wsEcho)
	s := startShield(t, o, func(c *config.Config) {
		c.Limits.ReadHeaderTimeout = dur(timeout)
		c.Limits.IdleTimeout = dur(timeout)
		c.Limits.WriteIdleTimeout = dur(timeout)
		c.Limits.BodyIdleTimeout = dur(timeout)
		c.Limits.MaxInflightPerClient = 2       // the per-IP concurrent limit
		c.Sites[0].OriginTimeout = dur(timeout) // the request timeout
		// Every filter runs: the allow list (not matching), a rate limit.
		c.Rules.Allow = []config.Prefix{mustPrefix(t, "203.0.113.0/24")}
		c.Rules.RateLimits = []config.RateLimit{{Name: "per-ip", Rate: config.RateSpec{Count: 100, Period: time.Minute}}}
	})
	url := "ws" + strings.TrimPrefix(s.URL, "http") + "/ws"

	a, resp, err := dialWS(t, "127.0.0.2", url)
	if err != nil {
		t.Fatalf("first socket: %v (response %v)", err, resp)
	}
	t.Run("101 with the shield's headers, echo before and after a long idle", func(t *testing.T) {
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Error("101 lacks the shield's X-Request-Id")
		}
		a.echo(t, "hello")
		// Idle for longer than every timeout (request/origin, write, idle,
		// header), with pings spaced further apart than any of them.
		for range 2 {
			tm := time.NewTimer(timeout + timeout/4)
			<-tm.C
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := a.c.Ping(ctx)
			cancel()
			if err != nil {
				t.Fatalf("ping after idle: %v", err)
			}
		}
		a.echo(t, "again")
	})

	b, _, err := dialWS(t, "127.0.0.2", url)
	if err != nil {
		t.Fatalf("second socket: %v", err)
	}
	t.Run("third socket from the same address refused, the others unaffected", func(t *testing.T) {
		_, resp, err := dialWS(t, "127.0.0.2", url)
		if err == nil {
			t.Fatal("third socket accepted with a per-address limit of 2")
		}
		if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
			t.Fatalf("third socket: %v (response %v), want 429 or 503", err, resp)
		}
		a.echo(t, "a still works")
		b.echo(t, "b still works")
	})
	t.Run("closing a socket frees its slot within 1s", func(t *testing.T) {
		a.c.Close(websocket.StatusNormalClosure, "bye")
		deadline := time.Now().Add(time.Second)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			c, _, err := dialWS(t, "127.0.0.2", url)
			if err == nil {
				c.echo(t, "replacement")
				break
			}
			var ce websocket.CloseError
			if time.Now().After(deadline) || errors.As(err, &ce) {
				t.Fatalf("no new socket within 1s of closing one: %v", err)
			}
			<-tk.C
		}
	})
}
