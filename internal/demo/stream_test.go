package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestUploadStreamsLargeBody sends 50 MiB to /upload and checks the answer's
// length and SHA-256 and that the whole round trip (client and server in this
// process) allocated far less than the body: the handler never holds it.
func TestUploadStreamsLargeBody(t *testing.T) {
	const size = 50 << 20
	srv, c := testSite(t, Options{})
	want := sha256.New()
	if _, err := io.Copy(want, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		chunked bool
	}{
		{name: "content-length", chunked: false},
		{name: "chunked", chunked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/upload", &patternReader{n: size})
			req.Header.Set("Content-Type", "application/octet-stream")
			if !tt.chunked {
				req.ContentLength = size
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got UploadResult
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, decode %v", resp.StatusCode, err)
			}
			if got.Bytes != size || got.SHA256 != hex.EncodeToString(want.Sum(nil)) {
				t.Errorf("got %+v, want %d bytes and the sender's hash", got, size)
			}
			t.Logf("%s: %d bytes allocated for %d bytes uploaded", tt.name, after.TotalAlloc-before.TotalAlloc, size)
			// Buffering the body would allocate ≥ 50 MiB; streaming costs a few
			// fixed buffers. 8 MiB leaves room for runtime noise.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
				t.Errorf("allocated %d bytes for a %d-byte upload; the body is being buffered", grew, size)
			}
		})
	}
}

func TestUploadLimits(t *testing.T) {
	srv, c := testSite(t, Options{MaxUploadBytes: 1000})
	tests := []struct {
		name   string
		body   func() io.Reader
		header http.Header
		status int
		bytes  int64
	}{
		{name: "at the cap", body: func() io.Reader { return &patternReader{n: 1000} }, status: 200, bytes: 1000},
		{name: "empty", body: func() io.Reader { return http.NoBody }, status: 200, bytes: 0},
		{name: "over the cap chunked", body: func() io.Reader { return &patternReader{n: 1001} }, status: 413},
		{name: "over the cap declared", body: func() io.Reader { return bytes.NewReader(make([]byte, 5000)) },
			header: http.Header{"Expect": {"100-continue"}}, status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, c, "POST", srv.URL+"/upload", tt.body(), tt.header)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status)
			}
			if tt.status != 200 {
				return
			}
			var got UploadResult
			if err := json.Unmarshal([]byte(body), &got); err != nil || got.Bytes != tt.bytes {
				t.Errorf("result %+v (%v), want %d bytes", got, err, tt.bytes)
			}
		})
	}
}

// TestEcho checks what proxy tests read from /api/v1/echo: forwarding
// headers, body length and hash, trailers (HANDED F19) and header names
// (HANDED F04), with credentials never echoed.
func TestEcho(t *testing.T) {
	srv, c := testSite(t, Options{})
	tests := []struct {
		name    string
		method  string
		body    string
		header  http.Header
		trailer http.Header
		check   func(t *testing.T, e EchoResponse)
	}{
		{name: "forwarding headers", method: "POST", body: "hello, origin",
			header: http.Header{
				"X-Forwarded-For":   {"198.51.100.7, 10.0.0.1", "192.0.2.1"},
				"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"harbour.example"},
				"X-Request-Id": {"req-42"}, "X-Portcullis-Ray": {"ray-1"},
				"Cookie": {"demo_session=secret"}, "Authorization": {"Bearer secret"},
			},
			check: func(t *testing.T, e EchoResponse) {
				if got := e.Headers["X-Forwarded-For"]; len(got) != 2 || got[0] != "198.51.100.7, 10.0.0.1" || got[1] != "192.0.2.1" {
					t.Errorf("X-Forwarded-For %q", got)
				}
				for k, want := range map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "harbour.example",
					"X-Request-Id": "req-42", "X-Portcullis-Ray": "ray-1"} {
					if got := e.Headers[k]; len(got) != 1 || got[0] != want {
						t.Errorf("%s %q, want %q", k, got, want)
					}
				}
				if e.BodyBytes != 13 || e.BodySHA256 != sha256Hex([]byte("hello, origin")) || e.ContentLength != 13 {
					t.Errorf("body %d bytes %s, content length %d", e.BodyBytes, e.BodySHA256, e.ContentLength)
				}
				raw, _ := json.Marshal(e)
				if bytes.Contains(raw, []byte("secret")) {
					t.Errorf("credential echoed: %s", raw)
				}
				if !strings.Contains(strings.Join(e.HeaderNames, ","), "Authorization") {
					t.Errorf("header names %q lack Authorization", e.HeaderNames)
				}
			}},
		{name: "chunked with trailers", method: "PUT", body: "abc",
			trailer: http.Header{"X-Forwarded-For": {"10.0.0.1"}},
			check: func(t *testing.T, e EchoResponse) {
				if e.ContentLength != -1 || len(e.TransferEncoding) != 1 || e.TransferEncoding[0] != "chunked" {
					t.Errorf("length %d, transfer encoding %q", e.ContentLength, e.TransferEncoding)
				}
				if got := e.Trailers["X-Forwarded-For"]; len(got) != 1 || got[0] != "10.0.0.1" {
					t.Errorf("trailers %v", e.Trailers)
				}
				if _, ok := e.Headers["X-Forwarded-For"]; ok {
					t.Errorf("trailer leaked into headers: %v", e.Headers)
				}
			}},
		{name: "get", method: "GET",
			check: func(t *testing.T, e EchoResponse) {
				if e.Method != "GET" || e.Path != "/api/v1/echo" || e.BodyBytes != 0 ||
					e.BodySHA256 != sha256Hex(nil) || e.Proto != "HTTP/1.1" || e.RemoteAddr == "" {
					t.Errorf("echo %+v", e)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequestWithContext(context.Background(), tt.method, srv.URL+"/api/v1/echo", body)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			if tt.trailer != nil {
				req.ContentLength = -1
				req.Body = io.NopCloser(io.MultiReader(body))
				req.Trailer = tt.trailer
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e EchoResponse
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			tt.check(t, e)
		})
	}
}

type sseEvent struct {
	id, event string
	data      liveEvent
}

// readSSE parses a text/event-stream body until EOF.
func readSSE(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var (
		out []sseEvent
		cur sseEvent
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			out = append(out, cur)
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &cur.data); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLiveEvents(t *testing.T) {
	srv, c := testSite(t, Options{LiveInterval: time.Microsecond})
	tests := []struct {
		name        string
		path        string
		lastEventID string
		wantFirst   int
		wantCount   int
	}{
		{name: "three events", path: "/live?n=3", wantFirst: 1, wantCount: 3},
		{name: "default count", path: "/live", wantFirst: 1, wantCount: DefaultLiveEvents},
		{name: "capped at MaxLiveEvents", path: "/live?n=100000", wantFirst: 1, wantCount: MaxLiveEvents},
		{name: "resume after Last-Event-ID", path: "/live?n=5", lastEventID: "3", wantFirst: 4, wantCount: 2},
		{name: "resume past the end", path: "/live?n=5", lastEventID: "9", wantFirst: 6, wantCount: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.lastEventID != "" {
				h.Set("Last-Event-ID", tt.lastEventID)
			}
			resp, body := do(t, c, "GET", srv.URL+tt.path, nil, h)
			if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("headers %v", resp.Header)
			}
			evs := readSSE(t, strings.NewReader(body))
			if len(evs) != tt.wantCount {
				t.Fatalf("%d events, want %d", len(evs), tt.wantCount)
			}
			for i, ev := range evs {
				seq := tt.wantFirst + i
				if ev.id != strconv.Itoa(seq) || ev.event != "tick" || ev.data.Seq != seq || ev.data.Headline == "" {
					t.Errorf("event %d: %+v", i, ev)
				}
			}
		})
	}
	t.Run("ndjson", func(t *testing.T) {
		resp, body := do(t, c, "GET", srv.URL+"/live.ndjson?n=4", nil, nil)
		if resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d lines, want 4: %q", len(lines), body)
		}
		for i, l := range lines {
			var ev liveEvent
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Seq != i+1 || ev.Of != 4 {
				t.Errorf("line %d %q: %+v %v", i, l, ev, err)
			}
		}
	})
}

// TestLiveFlushesHeadersFirst: the response headers reach the client before
// any event exists (the first is an hour away), and the handler ends as soon
// as the client leaves (HANDED F20: headers not held back until the first
// body bytes).
func TestLiveFlushesHeadersFirst(t *testing.T) {
	done := make(chan string, 4) // paths whose handler returned
	site := NewSite(Options{LiveInterval: time.Hour})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- r.URL.Path }()
		site.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, path, ctype string
	}{
		{name: "sse", path: "/live?n=600", ctype: "text/event-stream"},
		{name: "ndjson", path: "/live.ndjson?n=600", ctype: "application/x-ndjson"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+tt.path, nil)
			resp, err := srv.Client().Do(req) // returns once headers arrive
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.ctype {
				t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			select {
			case p := <-done:
				t.Fatalf("handler for %s ended before the client left", p)
			default:
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("handler still running 10 s after the client left")
			}
		})
	}
}

func TestWebSocketEcho(t *testing.T) {
	srv, _ := testSite(t, Options{})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(2 * wsMaxMessageBytes)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	tests := []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
	}{
		{name: "text", typ: websocket.MessageText, msg: []byte("hello harbour")},
		{name: "binary", typ: websocket.MessageBinary, msg: []byte{0, 1, 2, 255}},
		{name: "64 KiB", typ: websocket.MessageBinary, msg: bytes.Repeat([]byte{7}, wsMaxMessageBytes)},
		{name: "empty", typ: websocket.MessageText, msg: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := conn.Write(ctx, tt.typ, tt.msg); err != nil {
				t.Fatal(err)
			}
			typ, got, err := conn.Read(ctx)
			if err != nil || typ != tt.typ || !bytes.Equal(got, tt.msg) {
				t.Fatalf("echo: %v %d bytes, err %v", typ, len(got), err)
			}
		})
	}
	if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestWebSocketBounds(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		header     http.Header
		send       []byte
		wantStatus websocket.StatusCode
		wantRefuse bool
	}{
		{name: "lifetime reached", opts: Options{WSLifetime: 50 * time.Millisecond}, wantStatus: websocket.StatusGoingAway},
		{name: "message too big", opts: Options{}, send: make([]byte, wsMaxMessageBytes+1), wantStatus: websocket.StatusMessageTooBig},
		{name: "cross-origin refused", opts: Options{}, header: http.Header{"Origin": {"https://evil.example"}}, wantRefuse: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := testSite(t, tt.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws",
				&websocket.DialOptions{HTTPHeader: tt.header})
			if tt.wantRefuse {
				if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("dial err %v, resp %v; want 403", err, resp)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			if tt.send != nil {
				_ = conn.Write(ctx, websocket.MessageBinary, tt.send)
			}
			_, _, err = conn.Read(ctx)
			if got := websocket.CloseStatus(err); got != tt.wantStatus {
				t.Fatalf("close status %v (err %v), want %v", got, err, tt.wantStatus)
			}
		})
	}
}

func TestSlowHonoursClient(t *testing.T) {
	srv, c := testSite(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/slow?ms=10000", nil)
	if _, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the 10 s wait to outlast the client", err)
	}
}

// TestHTTP2 runs the streaming routes over HTTP/2 (TLS, loopback), the
// protocol of HANDED F15's slow-body streams: the upload hash is exact and SSE
// headers arrive before any event.
func TestHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(NewSite(Options{LiveInterval: time.Hour}).Handler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := srv.Client()
	const size = 3 << 20
	tests := []struct {
		name  string
		run   func(t *testing.T) *http.Response
		check func(t *testing.T, resp *http.Response)
	}{
		{name: "upload", run: func(t *testing.T) *http.Response {
			req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/upload", &patternReader{n: size})
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, check: func(t *testing.T, resp *http.Response) {
			h := sha256.New()
			_, _ = io.Copy(h, &patternReader{n: size})
			var got UploadResult
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.Bytes != size || got.SHA256 != hex.EncodeToString(h.Sum(nil)) {
				t.Errorf("upload result %+v, %v", got, err)
			}
		}},
		{name: "sse headers", run: func(t *testing.T) *http.Response {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/live?n=5", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, check: func(t *testing.T, resp *http.Response) {
			if resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.run(t)
			defer resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
				t.Fatalf("proto %s, status %d", resp.Proto, resp.StatusCode)
			}
			tt.check(t, resp)
		})
	}
}
