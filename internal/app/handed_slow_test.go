package app

// HANDED case F15 through the running shield: slowloris headers over
// HTTP/1.1, slow bodies over HTTP/1.1 and HTTP/2 (F16, HTTP/2 rapid reset,
// is in handed_h2_test.go).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/config"
)

// sseRoute serves an endless text/event-stream: one event every interval
// until the client goes away or 2 minutes pass.
func sseRoute(interval time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		end := time.After(2 * time.Minute)
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

	// An SSE stream through the proxy for the whole test (step 4), read by
	// a client without clientFrom's 20 s limit on the whole exchange.
	stopSSE := make(chan struct{})
	sseClient := clientFrom(t, "127.0.0.20")
	sseClient.Timeout = 0
	sse := sseWatch(t, sseClient, s.URL+"/sse", stopSSE)

	// Step 2's slow bodies, over HTTP/2 (100 streams on one connection)
	// and HTTP/1.1, stalled after one byte or trickling under the
	// minimum rate. A stalled body is cut at the idle timeout; a trickle
	// that keeps it alive is cut at the first read after the grace period
	// where the average rate is under the minimum.
	const trickle = 300 * time.Millisecond
	bodyCases := []slowBodyCase{
		{name: "h2 body idle", h2: true, streams: 100, cutAt: lim.BodyIdleTimeout.D()},
		{name: "h2 below minimum rate", h2: true, streams: 20, trickle: trickle, cutAt: lim.BodyGrace.D(), slack: trickle},
		{name: "h1 body idle", streams: 20, cutAt: lim.BodyIdleTimeout.D()},
		{name: "h1 below minimum rate", streams: 20, trickle: trickle, cutAt: lim.BodyGrace.D(), slack: trickle},
	}

	// The attack runs in rounds, each between two quiet probes of the
	// normal client (step 3), so that its latency under attack is compared
	// with a baseline measured in the same conditions: a shared 2-core
	// machine's load changes from second to second, and one window's p99
	// is little more than its worst stall (see checkLatencyRounds).
	const rounds = 5
	normal := clientFrom(t, "127.0.0.30")
	probe := func(n int) []hResult { return hProbe(normal, s.URL+"/normal", n, 25*time.Millisecond) }
	quiet := [][]hResult{probe(40)}
	var attacks []slowRound
	for range rounds {
		attacks = append(attacks, slowAttack(t, s, headerTimeout, bodyCases, func() []hResult { return probe(60) }))
		quiet = append(quiet, probe(40))
	}
	close(stopSSE)

	t.Run("h1 slowloris closed at the header timeout", func(t *testing.T) {
		rt := lim.ReadHeaderTimeout.D()
		for ri, a := range attacks {
			for i, r := range a.h1 {
				if !r.closed {
					t.Fatalf("round %d conn %d: still open after %s (%q)", ri, i, r.took, r.data)
				}
				if r.took < rt-100*time.Millisecond || r.took > rt+1500*time.Millisecond {
					t.Fatalf("round %d conn %d: closed after %s, want the header timeout %s (+≤1.5s)", ri, i, r.took, rt)
				}
				if len(r.data) > 0 && !bytes.HasPrefix(r.data, []byte("HTTP/1.1 408")) {
					t.Fatalf("round %d conn %d: answered %q, want a close or 408", ri, i, r.data)
				}
			}
		}
	})
	for ci, bc := range bodyCases {
		t.Run(bc.name+" cut by its setting, never held until the origin timeout", func(t *testing.T) {
			for ri, a := range attacks {
				for i, r := range a.bodies[ci] {
					if r.err == nil && r.status != http.StatusRequestTimeout {
						t.Fatalf("round %d stream %d: status %d, want a reset/close or 408", ri, i, r.status)
					}
					if hi := bc.cutAt + bc.slack + 1500*time.Millisecond; r.took > hi {
						t.Fatalf("round %d stream %d: cut after %s, want ≤ %s (origin timeout %s)", ri, i, r.took, hi, s.cfg.Sites[0].OriginTimeout.D())
					}
					if r.took < bc.cutAt-100*time.Millisecond {
						t.Fatalf("round %d stream %d: cut after %s, before its limit %s", ri, i, r.took, bc.cutAt)
					}
				}
			}
		})
	}
	t.Run("normal client unaffected", func(t *testing.T) {
		during := make([][]hResult, len(attacks))
		for i, a := range attacks {
			during[i] = a.during
		}
		// A normal request held behind a slow client would wait for one of
		// its timeouts: a second or more here.
		checkLatencyRounds(t, "normal client", quiet, during, 500*time.Millisecond)
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

// slowBodyCase is one kind of slow upload in TestF15: over HTTP/2 (streams
// on one connection) or HTTP/1.1 (one connection each), stalled after one
// byte (trickle 0) or trickling a byte every trickle.
type slowBodyCase struct {
	name    string
	h2      bool
	streams int
	trickle time.Duration // 0: one byte, then nothing
	cutAt   time.Duration // when the setting cuts it
	slack   time.Duration // how much later it may happen
}

// slowEnd is how one slow connection or upload ended, after took: for a
// slowloris connection, by a close (rather than the read deadline) after
// data; for an upload, with status or a reset/close (err).
type slowEnd struct {
	took   time.Duration
	closed bool
	data   []byte
	status int
	err    error
}

// slowRound is one round of TestF15's attack: how every slowloris
// connection and every slow upload (by body case) ended, and the normal
// client's probe while the attack was in place.
type slowRound struct {
	h1     []slowEnd
	bodies [][]slowEnd
	during []hResult
}

// slowAttack runs one round of TestF15's attack on s and returns once every
// connection of it has ended: step 1, scaled, is 400 slowloris connections
// from 127.0.0.2–.9 that send a partial header and trickle a byte before
// the header timeout; step 2 the slow uploads of bodyCases. probe (the
// normal client, step 3) runs once the attack is in place.
func slowAttack(t *testing.T, s *testShield, headerTimeout time.Duration, bodyCases []slowBodyCase, probe func() []hResult) slowRound {
	t.Helper()
	const slowConns = 400
	fdsBefore := openFDs(t)
	r := slowRound{h1: make([]slowEnd, slowConns), bodies: make([][]slowEnd, len(bodyCases))}
	// ready counts attackers that have not yet started: the normal
	// client's measurement starts once the attack is in place, so that it
	// measures the shield under attack rather than this process setting
	// up 560 connections on a shared CPU. They arrive one a millisecond,
	// as an attack's connections do: both ends of 560 connections set up
	// in the same instant live in this process and stall it, SSE stream
	// included, for up to a second on a loaded machine.
	arrive := time.NewTicker(time.Millisecond)
	defer arrive.Stop()
	var wg, ready sync.WaitGroup
	for i := range slowConns {
		<-arrive.C
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now() // the shield's header clock starts after this
			c, err := dialerFrom(fmt.Sprintf("127.0.0.%d", 2+i%8)).Dial("tcp", s.Addr)
			if err != nil {
				r.h1[i] = slowEnd{data: []byte("dial: " + err.Error())}
				ready.Done()
				return
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\nX-a: ")
			ready.Done()
			// One byte before the header timeout, at a time of its own
			// between ¼ and ¾ of it: the case's connections trickle
			// independently, and 400 bytes at the same instant would be a
			// burst of this process's own making.
			tr := time.NewTimer(headerTimeout/4 + time.Duration(i)*headerTimeout/(2*slowConns))
			<-tr.C
			c.Write([]byte("b"))
			data, _, closed := readUntilClosed(c, headerTimeout+5*time.Second)
			r.h1[i] = slowEnd{took: time.Since(start), closed: closed, data: data}
		}()
	}
	for ci, bc := range bodyCases {
		r.bodies[ci] = make([]slowEnd, bc.streams)
		var h2c *http.Client
		if bc.h2 {
			h2c = h2cClientFrom(t, "127.0.0.11")
		}
		for i := range bc.streams {
			<-arrive.C
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
				r.bodies[ci][i] = slowEnd{took: time.Since(start), status: st, err: err}
			}()
		}
	}
	// The attack is in place once every upload has sent its first byte
	// (the edge buffers a body whole before it takes an origin slot, so
	// an incomplete upload never reaches the origin) and both ends of
	// every slowloris connection are open (a few descriptors of earlier
	// keep-alive connections may close meanwhile).
	ready.Wait()
	want := fdsBefore + 2*slowConns - 8
	if !waitUntil(3*time.Second, func() bool { return openFDs(t) >= want }) {
		t.Fatalf("attack not in place after 3s: %d descriptors open, want ≥ %d", openFDs(t), want)
	}
	// Let the setting up drain before measuring.
	waitIdle(time.Second)
	r.during = probe()
	wg.Wait()
	return r
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
