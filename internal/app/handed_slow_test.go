package app

// HANDED cases on slow and abusive clients through the running shield:
// F15 (slowloris headers over HTTP/1.1, slow bodies over HTTP/1.1 and
// HTTP/2) and F16 (HTTP/2 rapid reset, CVE-2023-44487).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/portcullis/portcullis/internal/config"
)

// sseRoute serves an endless text/event-stream: one event every interval
// until the client goes away or 30 s pass.
func sseRoute(interval time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		end := time.After(30 * time.Second)
		for i := 0; ; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-end:
				return
			case <-tk.C:
			}
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// sseWatch reads an SSE stream from url until stop is closed and returns
// the largest gap between events and whether the stream ended early.
func sseWatch(t *testing.T, c *http.Client, url string, stop <-chan struct{}) (maxGap func() (time.Duration, int, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("SSE: %v", err)
	}
	var mu sync.Mutex
	var gap time.Duration
	var events int
	var endErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		last := time.Now()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				mu.Lock()
				endErr = err
				mu.Unlock()
				return
			}
			if strings.HasPrefix(line, "data:") {
				now := time.Now()
				mu.Lock()
				gap = max(gap, now.Sub(last))
				events++
				mu.Unlock()
				last = now
			}
		}
	}()
	go func() { <-stop; cancel() }()
	t.Cleanup(func() { cancel(); <-done })
	return func() (time.Duration, int, error) {
		mu.Lock()
		defer mu.Unlock()
		return gap, events, endErr
	}
}

func TestF15_SlowlorisAndSlowBodies(t *testing.T) {
	const timeout, headerTimeout = time.Second, 3 * time.Second
	o := newOrigin(t)
	o.handle("/sse", sseRoute(200*time.Millisecond))
	s := startShield(t, o, func(c *config.Config) {
		c.Limits.ReadHeaderTimeout = dur(headerTimeout)
		c.Limits.BodyIdleTimeout = dur(timeout)
		c.Limits.BodyGrace = dur(timeout)
		c.Limits.WriteIdleTimeout = dur(timeout)
		c.Limits.MaxConns = 1000
		// 100 uploads from one address exceed the default in-flight cap
		// (64), which would answer some 429 at once; raise it so that
		// every stream meets the body limits.
		c.Limits.MaxInflightPerClient = 200
	})
	lim := s.cfg.Limits

	// An SSE stream through the proxy for the whole test (step 4).
	stopSSE := make(chan struct{})
	sse := sseWatch(t, clientFrom(t, "127.0.0.20"), s.URL+"/sse", stopSSE)

	normal := clientFrom(t, "127.0.0.30")
	baseline := hProbe(normal, s.URL+"/normal", 40, 25*time.Millisecond)
	fdsBefore := openFDs(t)

	// Step 1, scaled: 400 slowloris connections from 127.0.0.2–.9 that
	// send a partial header and trickle a byte before the header timeout.
	const slowConns = 400
	type closeResult struct {
		took   time.Duration
		closed bool
		data   []byte
	}
	h1 := make([]closeResult, slowConns)
	// ready counts attackers that have not yet started: the normal
	// client's measurement starts once the attack is in place, so that it
	// measures the shield under attack rather than this process setting
	// up 560 connections on a shared CPU.
	var wg, ready sync.WaitGroup
	for i := range slowConns {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now() // the shield's header clock starts after this
			c, err := dialerFrom(fmt.Sprintf("127.0.0.%d", 2+i%8)).Dial("tcp", s.Addr)
			if err != nil {
				h1[i] = closeResult{data: []byte("dial: " + err.Error())}
				ready.Done()
				return
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\nX-a: ")
			ready.Done()
			tr := time.NewTimer(headerTimeout / 2)
			<-tr.C
			c.Write([]byte("b"))
			data, _, closed := readUntilClosed(c, headerTimeout+5*time.Second)
			h1[i] = closeResult{took: time.Since(start), closed: closed, data: data}
		}()
	}

	// Step 2: slow bodies, over HTTP/2 (100 streams on one connection)
	// and HTTP/1.1, stalled after one byte or trickling under the
	// minimum rate.
	// A stalled body is cut at the idle timeout; a trickle that keeps it
	// alive is cut at the first read after the grace period where the
	// average rate is under the minimum.
	const trickle = 300 * time.Millisecond
	bodyCases := []struct {
		name    string
		h2      bool
		streams int
		trickle time.Duration // 0: one byte, then nothing
		cutAt   time.Duration // when the setting cuts it
		slack   time.Duration // how much later it may happen
	}{
		{name: "h2 body idle", h2: true, streams: 100, cutAt: lim.BodyIdleTimeout.D()},
		{name: "h2 below minimum rate", h2: true, streams: 20, trickle: trickle, cutAt: lim.BodyGrace.D(), slack: trickle},
		{name: "h1 body idle", streams: 20, cutAt: lim.BodyIdleTimeout.D()},
		{name: "h1 below minimum rate", streams: 20, trickle: trickle, cutAt: lim.BodyGrace.D(), slack: trickle},
	}
	type bodyResult struct {
		took   time.Duration
		status int
		err    error
	}
	bodies := make([][]bodyResult, len(bodyCases))
	for ci, bc := range bodyCases {
		bodies[ci] = make([]bodyResult, bc.streams)
		var h2c *http.Client
		if bc.h2 {
			h2c = h2cClientFrom(t, "127.0.0.11")
		}
		for i := range bc.streams {
			wg.Add(1)
			ready.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				var st int
				var err error
				if bc.h2 {
					st, err = slowPostH2(h2c, s.URL+"/upload", bc.trickle, ready.Done)
				} else {
					st, err = slowPostH1(s.Addr, bc.trickle, ready.Done)
				}
				bodies[ci][i] = bodyResult{took: time.Since(start), status: st, err: err}
			}()
		}
	}

	// Step 3: the normal client keeps going meanwhile, measured once the
	// attack has settled: every upload is at the origin and both ends of
	// every slowloris connection are open.
	ready.Wait()
	uploads := 0
	for _, bc := range bodyCases {
		uploads += bc.streams
	}
	settled := time.Now().Add(3 * time.Second)
	tk := time.NewTicker(10 * time.Millisecond)
	for (o.inflight.Load() < int64(uploads) || openFDs(t) < fdsBefore+2*slowConns) && time.Now().Before(settled) {
		<-tk.C
	}
	tk.Stop()
	during := hProbe(normal, s.URL+"/normal", 60, 25*time.Millisecond)
	wg.Wait()
	after := hProbe(normal, s.URL+"/normal", 40, 25*time.Millisecond)
	close(stopSSE)

	t.Run("h1 slowloris closed at the header timeout", func(t *testing.T) {
		rt := lim.ReadHeaderTimeout.D()
		for i, r := range h1 {
			if !r.closed {
				t.Fatalf("conn %d: still open after %s (%q)", i, r.took, r.data)
			}
			if r.took < rt-100*time.Millisecond || r.took > rt+1500*time.Millisecond {
				t.Fatalf("conn %d: closed after %s, want the header timeout %s (+≤1.5s)", i, r.took, rt)
			}
			if len(r.data) > 0 && !bytes.HasPrefix(r.data, []byte("HTTP/1.1 408")) {
				t.Fatalf("conn %d: answered %q, want a close or 408", i, r.data)
			}
		}
	})
	for ci, bc := range bodyCases {
		t.Run(bc.name+" cut by its setting, never held until the origin timeout", func(t *testing.T) {
			for i, r := range bodies[ci] {
				if r.err == nil && r.status != http.StatusRequestTimeout {
					t.Fatalf("stream %d: status %d, want a reset/close or 408", i, r.status)
				}
				if hi := bc.cutAt + bc.slack + 1500*time.Millisecond; r.took > hi {
					t.Fatalf("stream %d: cut after %s, want ≤ %s (origin timeout %s)", i, r.took, hi, s.cfg.Sites[0].OriginTimeout.D())
				}
				if r.took < bc.cutAt-100*time.Millisecond {
					t.Fatalf("stream %d: cut after %s, before its limit %s", i, r.took, bc.cutAt)
				}
			}
		})
	}
	t.Run("normal client unaffected", func(t *testing.T) {
		checkLatency(t, "normal client", baseline, during, after)
	})
	t.Run("SSE stream not cut", func(t *testing.T) {
		gap, events, err := sse()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("SSE stream ended: %v", err)
		}
		if events < 10 || gap > timeout {
			t.Errorf("SSE: %d events, largest gap %s (events every 200ms)", events, gap)
		}
	})
}

// slowPostH2 posts 1,000,000 announced bytes over h2c, sending one byte
// (then calling started) and then one per trickle (never, when 0); it
// returns the status or the stream error.
func slowPostH2(c *http.Client, url string, trickle time.Duration, started func()) (int, error) {
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, url, pr)
	req.ContentLength = 1_000_000
	done := make(chan struct{})
	defer close(done)
	go func() {
		pw.Write([]byte("x"))
		started()
		if trickle <= 0 {
			return
		}
		tk := time.NewTicker(trickle)
		defer tk.Stop()
		for range 50 {
			select {
			case <-done:
				return
			case <-tk.C:
				if _, err := pw.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// slowPostH1 does the same over a raw HTTP/1.1 connection from 127.0.0.12
// and returns the status, or an error when the connection was closed
// without an answer.
func slowPostH1(addr string, trickle time.Duration, started func()) (int, error) {
	c, err := dialerFrom("127.0.0.12").Dial("tcp", addr)
	if err != nil {
		started()
		return 0, err
	}
	defer c.Close()
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\nx")
	started()
	done := make(chan struct{})
	defer close(done)
	if trickle > 0 {
		go func() {
			tk := time.NewTicker(trickle)
			defer tk.Stop()
			for range 50 {
				select {
				case <-done:
					return
				case <-tk.C:
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
	}
	c.SetReadDeadline(time.Now().Add(40 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestF15_ConnectionCapBoundsDescriptors(t *testing.T) {
	o := newOrigin(t)
	s := startShield(t, o, func(c *config.Config) {
		c.Limits.ReadHeaderTimeout = dur(time.Second)
		c.Limits.MaxConns = 100
	})
	before := openFDs(t)
	const n = 150
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := dialerFrom(fmt.Sprintf("127.0.0.%d", 2+i%8)).Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\nX-a: ")
		conns = append(conns, c)
	}
	// Both ends live in this process: n client descriptors plus at most
	// the cap on the shield's side.
	if peak := openFDs(t) - before; peak > n+s.cfg.Limits.MaxConns+10 {
		t.Errorf("%d descriptors opened for %d client connections with a cap of %d", peak, n, s.cfg.Limits.MaxConns)
	}
	// Over the cap, a connection is closed at accept: at once.
	refused := 0
	for _, c := range conns {
		if _, took, closed := readUntilClosed(c, 3*time.Second); closed && took < 500*time.Millisecond {
			refused++
		}
	}
	want := n - s.cfg.Limits.MaxConns
	if refused < want {
		t.Errorf("%d connections closed at once, want ≥ %d over the cap of %d", refused, want, s.cfg.Limits.MaxConns)
	}
	if got := s.counter(t, "portcullis_edge_connections_refused_total", map[string]string{"cap": "global"}); int(got) < want {
		t.Errorf("refused-connection metric %v, want ≥ %d", got, want)
	}
	for _, c := range conns {
		c.Close()
	}
	// Every descriptor is given back once the slow connections are gone.
	deadline := time.Now().Add(5 * time.Second)
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	for openFDs(t) > before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors still open after the slow connections ended", openFDs(t)-before)
		}
		<-tk.C
	}
}

// rapidReset runs the CVE-2023-44487 pattern on one h2c connection from
// src: HEADERS(GET path, END_STREAM) then RST_STREAM(CANCEL), up to n
// times, until the server ends the connection. It returns the GOAWAY the
// server sent (nil if none), the number of pairs written and whether the
// connection ended.
func rapidReset(t *testing.T, src, addr, path string, n int, budget time.Duration) (goaway *http2.GoAwayFrame, pairs int, ended bool) {
	t.Helper()
	c := dialFrom(t, src, addr)
	c.SetDeadline(time.Now().Add(budget))
	bw := bufio.NewWriterSize(c, 64<<10)
	fr := http2.NewFramer(bw, c)
	io.WriteString(bw, http2.ClientPreface)
	fr.WriteSettings()
	bw.Flush()

	var gotAway atomic.Pointer[http2.GoAwayFrame]
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		rfr := http2.NewFramer(io.Discard, c)
		for {
			f, err := rfr.ReadFrame()
			if err != nil {
				return
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				cp := *ga
				gotAway.Store(&cp)
			}
		}
	}()

	// Pre-encode the HEADERS+RST_STREAM pairs in batches and patch the
	// stream ids, so that generating the flood costs this process (which
	// also hosts the shield and the second client) next to nothing.
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "t"}, {Name: ":path", Value: path}} {
		enc.WriteField(f)
	}
	var pair bytes.Buffer
	pfr := http2.NewFramer(&pair, nil)
	pfr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	rstAt := pair.Len()
	pfr.WriteRSTStream(1, http2.ErrCodeCancel)
	const batch = 64
	buf := bytes.Repeat(pair.Bytes(), batch)
	for i := 0; i < n && gotAway.Load() == nil; i += batch {
		k := min(batch, n-i)
		for j := range k {
			id := uint32(2*(i+j) + 1)
			off := j * pair.Len()
			binary.BigEndian.PutUint32(buf[off+5:], id)
			binary.BigEndian.PutUint32(buf[off+rstAt+5:], id)
		}
		if _, err := bw.Write(buf[:k*pair.Len()]); err != nil {
			break
		}
		pairs += k
	}
	bw.Flush()
	select {
	case <-readDone:
		ended = true
	case <-time.After(budget):
	}
	c.Close()
	<-readDone
	return gotAway.Load(), pairs, ended
}

func TestF16_HTTP2RapidReset(t *testing.T) {
	o := newOrigin(t)
	var slowInflight, slowPeak atomic.Int64
	o.handle("/slow", func(w http.ResponseWriter, r *http.Request) {
		n := slowInflight.Add(1)
		defer slowInflight.Add(-1)
		for p := slowPeak.Load(); n > p && !slowPeak.CompareAndSwap(p, n); p = slowPeak.Load() {
		}
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	s := startShield(t, o, nil)
	lim := s.cfg.Limits

	normal := h2cClientFrom(t, "127.0.0.30")
	baseline := hProbe(normal, s.URL+"/normal", 100, 10*time.Millisecond)

	var during []hResult
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		during = hProbe(normal, s.URL+"/normal", 150, 10*time.Millisecond)
	}()
	goaway, pairs, ended := rapidReset(t, "127.0.0.2", s.Addr, "/slow", 100_000, 10*time.Second)
	<-probeDone
	after := hProbe(normal, s.URL+"/normal", 100, 10*time.Millisecond)
	slowSeen := o.count(func(r recordedRequest) bool { return r.RequestURI == "/slow" })
	handled := s.counter(t, "portcullis_http_requests_total", map[string]string{"site": "test"}) - float64(len(baseline)+len(during)+len(after))
	var code http2.ErrCode
	if goaway != nil {
		code = goaway.ErrCode
	}
	t.Logf("%d HEADERS+RST pairs written; GOAWAY %v (%v); shield handled %.0f streams; origin saw %d /slow requests, peak %d in flight",
		pairs, goaway != nil, code, handled, slowSeen, slowPeak.Load())

	t.Run("connection ended with GOAWAY before 1,000 resets", func(t *testing.T) {
		if !ended {
			t.Fatal("the server never ended the connection")
		}
		if goaway == nil {
			t.Fatal("connection closed without GOAWAY")
		}
		if goaway.ErrCode != http2.ErrCodeEnhanceYourCalm && goaway.ErrCode != http2.ErrCodeProtocol {
			t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM or PROTOCOL_ERROR", goaway.ErrCode)
		}
		if handled >= 1000 {
			t.Errorf("the shield handled %.0f reset streams before ending the connection, want < 1000", handled)
		}
		if got := s.counter(t, "portcullis_edge_h2_reset_budget_exceeded_total", nil); got < 1 {
			t.Errorf("reset-budget metric %v, want ≥ 1", got)
		}
	})
	t.Run("origin load bounded", func(t *testing.T) {
		if p := slowPeak.Load(); p > int64(lim.H2MaxConcurrentStreams) {
			t.Errorf("origin saw %d concurrent /slow requests, above MAX_CONCURRENT_STREAMS %d", p, lim.H2MaxConcurrentStreams)
		}
		if slowSeen >= 1000 {
			t.Errorf("origin saw %d /slow requests, want < 1000", slowSeen)
		}
	})
	t.Run("attacker penalised", func(t *testing.T) {
		r := hGet(clientFrom(t, "127.0.0.2"), s.URL+"/after")
		if r.Err == nil && r.Status == http.StatusOK {
			t.Errorf("127.0.0.2 gets 200 right after a rapid-reset flood, want a throttle or block")
		}
		if r.Err == nil && r.Status != http.StatusOK && r.RetryAfter == "" {
			t.Errorf("penalty %d without Retry-After", r.Status)
		}
	})
	t.Run("other client unaffected", func(t *testing.T) {
		checkLatency(t, "second client", baseline, during, after)
	})
}

// checkLatency asserts that every request in during succeeded and that
// their p99 stays below 2× the baseline: the larger p99 of the probes just
// before and just after the attack (so that a change in the shared
// machine's load while the test runs is not blamed on the shield), and at
// least latencyFloor.
func checkLatency(t *testing.T, who string, before, during, after []hResult) {
	t.Helper()
	if tl := hTally(during); tl[http.StatusOK] != len(during) {
		t.Fatalf("%s during the attack: %v", who, tl)
	}
	pb, pd, pa := hPercentile(hLatencies(before), 99), hPercentile(hLatencies(during), 99), hPercentile(hLatencies(after), 99)
	base := max(pb, pa, latencyFloor)
	t.Logf("%s p99: %s before, %s during, %s after the attack", who, pb, pd, pa)
	if pd > 2*base {
		t.Errorf("%s p99 %s during the attack, want < 2 × %s", who, pd, base)
		for i, r := range during {
			if r.Latency > 2*base {
				t.Logf("slow request %d: %s", i, r.Latency)
			}
		}
	}
}
